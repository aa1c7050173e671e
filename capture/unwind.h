/* unwind.h -- thread backtraces from the copied stacks and registers, with libunwind's
 * remote interface over the image (no ptrace after the resume), symbolized through
 * symbols.h into c->frames and c->callsites; sets thread.callsite and unwind_error.
 */
#ifndef HEAPSNAP_UNWIND_H
#define HEAPSNAP_UNWIND_H

#include "image.h"
#include "model.h"
#include "symbols.h"

#define UW_MAX_FRAMES 256

/* Unwind one thread from its registers: pcs[0] is the pc, then return addresses.
 * Returns the number of frames (>= 1 when regs are valid) or a negative error. */
int uw_backtrace(img_image *im, const hs_capture *c, const hs_thread *t, uint64_t *pcs, int max);

/* Unwind and symbolize every thread of c. */
int uw_unwind_threads(img_image *im, hs_capture *c, sym_session *sy);

#endif
