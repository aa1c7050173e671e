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

/* Why a backtrace stopped early (hs_thread.unwind_error; 0 = it reached the outermost
 * frame). uw_strerror() gives the text for the snapshot. */
enum uw_stop {
	UW_E_NOREGS = -1,    /* no registers for the thread */
	UW_E_NOINFO = -2,    /* no unwind info for a pc, and no frame-pointer chain to follow */
	UW_E_BADPC = -3,     /* unwinding produced a pc outside executable code */
	UW_E_NOMEM = -4,     /* the unwind needed memory that was not copied */
	UW_E_LOOP = -5,      /* the stack pointer did not advance */
	UW_E_DEPTH = -6,     /* more than the frame limit */
	UW_E_LIBUNWIND = -7, /* libunwind failed otherwise */
	UW_E_NOSYM = -8,     /* symbolization failed (out of memory) */
};
const char *uw_strerror(int stop);

/* Unwind one thread from its registers: pcs[0] is the pc, then return addresses.
 * root: where module files are opened ("/proc/PID/root" or ""). *stop (may be NULL)
 * gets 0 or an enum uw_stop. Returns the number of frames (>= 1 when regs are valid)
 * or a negative errno (-EINVAL without registers, -ENOMEM). */
int uw_backtrace(img_image *im, const hs_capture *c, const char *root, const hs_thread *t,
		 uint64_t *pcs, int max, int *stop);

/* Unwind and symbolize every thread of c: sets thread.callsite (-1 if none) and
 * thread.unwind_error. Module files are opened under sym_root(sy).
 * 0, or -ENOMEM. */
int uw_unwind_threads(img_image *im, hs_capture *c, sym_session *sy);

/* For tests: 1 = ignore .eh_frame_hdr and use our own index of .eh_frame (the path
 * static executables, linked without --eh-frame-hdr, take). */
void uw_set_ignore_eh_frame_hdr(int on);

#endif
