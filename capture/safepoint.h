/* safepoint.h -- bring every frozen thread to a point where no arena is mid-update,
 * following shared/DESIGN.md (Safe points): find the threads inside glibc's allocator
 * (RIP in malloc's code, or a libc frame of malloc's on the stack, found by unwinding
 * libc's frames with its .eh_frame CFI through libdw), then let only that thread run
 * until the outermost allocator frame returns (a hardware breakpoint on the return
 * address, accepted when RSP is back at the caller's CFA); leave threads parked on a
 * futex or in an unrelated syscall alone; bound each run; single-step only as fallback.
 */
#ifndef HEAPSNAP_SAFEPOINT_H
#define HEAPSNAP_SAFEPOINT_H

#include "freeze.h"
#include "model.h"

typedef struct sp_libc sp_libc;   /* libc's malloc code range and CFI, opaque */

/* Prepare from libc's file mapped at load_base in the target (before the freeze).
 * path is the file to open (e.g. /proc/PID/root/usr/lib/x86_64-linux-gnu/libc.so.6).
 * Uses libc debug symbols (exact malloc.c range) when present unless no_debug is set.
 * For a static glibc executable pass the executable. Returns NULL if no allocator code
 * can be identified (non-glibc target): then there are no safe points to reach. */
sp_libc *sp_libc_open(const char *path, uint64_t load_base, int no_debug);
void sp_libc_close(sp_libc *l);

typedef struct {
	uint64_t budget_ns;           /* per-thread bound for running out (default 50 ms) */
	int ran_out, parked, in_flux; /* results */
} sp_result;

/* For every thread of the frozen session: classify; run the ones inside the allocator
 * out of it. Fills out[i] (one per s->t[i]) with the outcome and syscall number.
 * On return every thread is stopped again (or gone). */
int sp_reach_safepoints(frz_session *s, sp_libc *l, enum hs_safepoint *out, int *syscall_nr,
			sp_result *res);

/* Is this address in the allocator's code? (for tests and diagnostics) */
int sp_in_allocator(const sp_libc *l, uint64_t pc);

#endif
