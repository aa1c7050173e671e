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

/* The root the session opens files under ("" for none). */
const char *sym_root(const sym_session *s);

/* Frame index in c->frames for a pc (interned: the same pc gives the same index).
 * is_return_addr: pc is a return address (look up pc-1 for symbol and line).
 * For inlined code the returned index is the real (outermost, inline_depth 0) frame and
 * the inlined frames sit just before it: c->frames[idx - k] has inline_depth k, for
 * k = 1..*n_inline (the innermost inlined function last). n_inline may be NULL.
 * Always gives module + rel_pc, even when nothing else is known. -1 on OOM. */
long sym_frame_for_pc(sym_session *s, hs_capture *c, uint64_t pc, int is_return_addr,
		      int *n_inline);

/* Build the callsite chain for pcs[0..n) (pcs[0] innermost: an exact pc; the others are
 * return addresses). Returns the innermost callsite index, or -1 (n == 0 or OOM).
 * Inlined frames become their own callsites, below the real frame they are inlined in. */
long sym_callsite_for_stack(sym_session *s, hs_capture *c, const uint64_t *pcs, int n);

/* The same, with exact[i] = 1 where pcs[i] is not a return address (the innermost pc, a
 * signal trampoline, the frame a signal interrupted); exact NULL means only pcs[0]. */
long sym_callsite_for_pcs(sym_session *s, hs_capture *c, const uint64_t *pcs,
			  const unsigned char *exact, int n);

#endif
