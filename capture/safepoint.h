/* safepoint.h -- bring every frozen thread to a point where no arena is mid-update,
 * following shared/DESIGN.md (Safe points): find the threads inside glibc's allocator
 * (RIP in malloc's code, or a libc frame of malloc's on the stack, found by unwinding
 * libc's frames with its .eh_frame CFI through libdw -- also the frames below a signal
 * handler that interrupted malloc), then let only that thread run until the outermost
 * allocator frame returns (a hardware breakpoint on the return address, accepted when
 * RSP is back at that frame's CFA); leave threads parked on a futex or in an unrelated
 * syscall alone; bound each run; single-step only as fallback.
 *
 * Threads that were group-stopped (SIGSTOP) before the capture are never run: if one
 * is inside the allocator it is reported in flux.
 *
 * Test hook: HEAPSNAP_TEST_SINGLESTEP=1 skips the hardware breakpoints and uses only the
 * single-step fallback. HEAPSNAP_TEST_NO_ALLOC_RANGES=1 forgets the allocator's code
 * ranges, so that only the tracking library's flags and the rule for libc frames called
 * from its code find threads inside the allocator.
 */
#ifndef HEAPSNAP_SAFEPOINT_H
#define HEAPSNAP_SAFEPOINT_H

#include "freeze.h"
#include "model.h"

typedef struct sp_libc sp_libc;   /* libc's malloc code range and CFI, opaque */

/* Prepare from libc's file mapped at load_base in the target (before the freeze).
 * load_base is the address where file offset 0 is mapped.
 * path is the file to open (e.g. /proc/PID/map_files/... or /proc/PID/root/...).
 * Uses libc debug symbols (exact malloc.c range, /usr/lib/debug/.build-id/) when present
 * unless no_debug is set; a .symtab in the file itself (static executables) is always
 * used. For a static glibc executable pass the executable. Returns NULL if no allocator
 * code can be identified (non-glibc target): then there are no safe points to reach. */
sp_libc *sp_libc_open(const char *path, uint64_t load_base, int no_debug);
void sp_libc_close(sp_libc *l);

/* The target runs the tracking library (heapsnap run): its exported state is at
 * state_addr. Each thread's `where` flag there then also decides its safe point: a
 * thread inside a hook (where != HP_WHERE_OUT) runs on until the hook is done, since
 * the library's state (a block header, a counter) may be mid-update even when no glibc
 * allocator frame is on its stack. The library's code is [text_lo, text_hi): libc
 * frames called from there are the real allocator called by a hook (the paths for
 * blocks that sampling skips do not set the flag), so that thread is inside the
 * allocator whatever the allocator's symbol ranges say. */
void sp_libc_set_tracker(sp_libc *l, uint64_t state_addr, uint64_t text_lo, uint64_t text_hi);

/* 1 if the allocator range came from symbols (.symtab or debug file), 0 if estimated
 * from .dynsym. */
int sp_libc_exact(const sp_libc *l);

typedef struct {
	uint64_t budget_ns;           /* per-thread bound for running out (default 50 ms) */
	int ran_out, parked, in_flux; /* results */
	int unknown;                  /* threads whose libc frames could not be unwound */
	int bp_runs, steps;           /* breakpoint runs and single steps used */
	int below_handler;            /* threads found inside the allocator below a signal handler */
	int in_tracker;               /* threads inside a tracking-library hook at the freeze */
} sp_result;

/* For every thread of the frozen session: classify; run the ones inside the allocator
 * out of it. Fills out[i] and syscall_nr[i] (one per s->t[i]) with the outcome and the
 * syscall the thread is blocked in (-1 if none). With l == NULL (not glibc) every thread
 * is HS_SP_CLEAN. On return every thread is stopped again (or gone). Returns 0, or
 * -EINTR when the capture was interrupted meanwhile. */
int sp_reach_safepoints(frz_session *s, sp_libc *l, enum hs_safepoint *out, int *syscall_nr,
			sp_result *res);

/* Is this address in the allocator's code? (for tests and diagnostics) */
int sp_in_allocator(const sp_libc *l, uint64_t pc);

/* Classify one stopped thread as it is now, without running it: 1 if it is inside the
 * allocator (RIP in its code, or an allocator frame among its libc frames, also below a
 * signal frame), 0 if not, negative if its libc frames could not be unwound. */
int sp_thread_in_allocator(frz_session *s, sp_libc *l, frz_thread *t);

#endif
