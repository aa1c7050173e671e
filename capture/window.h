/* window.h -- the whole frozen window of one capture, as one call: freeze every thread,
 * bring them to safe points, copy registers, /proc/PID/maps and memory, resume. The
 * caller's verify callback runs on the copy after the resume; if it says the heap was
 * caught mid-update the window is repeated (up to max_attempts).
 *
 * Nothing here parses the heap, unwinds, symbolizes or writes files: that all happens
 * on the copy after the target runs again.
 *
 * While a target may be frozen, fw_capture installs handlers for SIGINT/SIGTERM/SIGHUP
 * (the target is resumed at once and the call returns -EINTR) and for fatal signals (the
 * target is resumed, then the process dies by the signal); the previous dispositions are
 * back as soon as the target runs again (before verify is called).
 *
 * Test hook: the environment variable HEAPSNAP_TEST_FROZEN_SLEEP_MS=N makes it sleep
 * N ms while the target is frozen (after the safe points, before the copy).
 */
#ifndef HEAPSNAP_WINDOW_H
#define HEAPSNAP_WINDOW_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "image.h"
#include "memcopy.h"
#include "model.h"

typedef struct {
	pid_t tid;
	char state;                   /* /proc state letter before we attached */
	int was_stopped;              /* group-stopped before we came (left stopped) */
	struct user_regs_struct regs;
	int regs_valid;
	enum hs_safepoint safepoint;
	int syscall_nr;               /* -1 if not blocked in a syscall */
} fw_thread;

typedef struct fw_result {
	img_image img;                /* the copied memory */
	mc_vmas maps;                 /* /proc/PID/maps as read while frozen */
	fw_thread *threads;
	size_t n_threads;
	hs_freezeinfo info;           /* pause, timings, attempts */
	uint64_t capture_time_us;     /* UTC at the (last) freeze */
} fw_result;

typedef struct {
	int max_attempts;             /* freezes to try for a consistent heap (default 5) */
	uint64_t thread_budget_ns;    /* per-thread safe-point budget (default 50 ms) */
	int no_safepoints;            /* skip the safe-point phase (diagnostics) */
	int no_debug;                 /* do not use libc debug symbols */
	/* Called after each resume with the copy; return 1 to accept, 0 to freeze again,
	 * <0 to abort. NULL accepts the first copy. */
	int (*verify)(struct fw_result *r, void *arg);
	void *verify_arg;
} fw_options;

void fw_options_default(fw_options *o);

/* Returns 0, or a negative errno with a one-line message in err:
 *   -ESRCH  no such process / it exited during the capture
 *   -EPERM  not permitted (ptrace_scope, other user, already traced)
 *   -EINTR  the capture was interrupted (SIGINT/SIGTERM/SIGHUP); target resumed
 *   -EAGAIN every attempt was rejected by verify (the last copy is still returned)
 *   -EINVAL pid is the calling process
 * On every return the target runs again, exactly as it was found. */
int fw_capture(pid_t pid, const fw_options *o, fw_result *r, char *err, size_t errlen);
void fw_result_release(fw_result *r);

#endif
