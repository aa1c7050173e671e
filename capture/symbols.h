/* symbols.h -- symbolization with libdw/libdwfl over the modules of a capture (offline:
 * the files on disk, reported at the load biases the target used): function (demangled
 * for C++), source file:line and inlined frames where debug info exists (also separate
 * debuginfo found by build-id), and always module + offset.
 */
#ifndef HEAPSNAP_SYMBOLS_H
#define HEAPSNAP_SYMBOLS_H

#include "model.h"

typedef struct sym_session sym_session;

/* root: prefix to open target files ("/proc/PID/root" or ""). */
sym_session *sym_open(const hs_capture *c, const char *root);
void sym_close(sym_session *s);

/* Frame index in c->frames for a pc (interned: the same pc gives the same index).
 * is_return_addr: pc is a return address (look up pc-1 for line info).
 * For inlined code the returned index is the outermost real frame and *n_inline (if not
 * NULL) receives how many inlined frames precede it in c->frames. -1 on OOM. */
long sym_frame_for_pc(sym_session *s, hs_capture *c, uint64_t pc, int is_return_addr);

/* Build the callsite chain for pcs[0..n) (pcs[0] innermost). Returns the innermost
 * callsite index, or -1. Inlined frames become their own callsites. */
long sym_callsite_for_stack(sym_session *s, hs_capture *c, const uint64_t *pcs, int n);

#endif
