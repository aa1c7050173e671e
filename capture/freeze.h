/* freeze.h -- the frozen window's thread registry: stop every thread of a target with
 * PTRACE_SEIZE + PTRACE_INTERRUPT, and put every one back as it was, on every path.
 *
 * Life cycle of a session (one capture may freeze several times):
 *
 *   IDLE --frz_attach_all--> FROZEN --frz_detach_all--> IDLE
 *                              |  ^
 *        safepoint.c runs one  |  | thread at a time while the others stay stopped
 *                              v  |
 *                            STEPPING
 *
 * The registry is kept consistent at every instant, because the fatal-signal and
 * SIGINT/SIGTERM/SIGHUP handlers installed by frz_install_handlers() read it to detach
 * every thread before the capture process dies. A thread that was in group-stop
 * (SIGSTOP) before we attached is left stopped at detach.
 *
 * Errors: functions return 0 or a negative errno-style code; nothing here prints
 * except the fatal-signal path (write(2) only).
 */
#ifndef HEAPSNAP_FREEZE_H
#define HEAPSNAP_FREEZE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#define FRZ_MAX_THREADS 8192

typedef struct {
	pid_t tid;
	int gone;                     /* exited while we held it */
	int was_stopped;              /* in group-stop before we came: stays stopped */
	char state;                   /* /proc state letter before attach */
	int pending_sig;              /* signal to re-inject at the next resume/detach */
	int dr_set;                   /* a hardware breakpoint is armed (debug registers) */
	int mask_saved;               /* we replaced its signal mask */
	uint64_t oldmask, applied_mask;
	int stepped;                  /* it was single-stepped (may have a queued SIGTRAP) */
	struct user_regs_struct regs; /* at the last stop */
	int regs_valid;
} frz_thread;

typedef struct {
	pid_t pid;
	frz_thread *t;                /* FRZ_MAX_THREADS slots */
	volatile int n;               /* slots in use (published after the slot is filled) */
	volatile int frozen;
	uint64_t t_first_stop_ns;     /* CLOCK_MONOTONIC when the first thread was stopped */
	uint64_t t_resumed_ns;        /* when the last thread was resumed */
} frz_session;

uint64_t frz_now_ns(void);

/* Allocate the registry (no freeze yet). */
int frz_init(frz_session *s, pid_t pid);
void frz_release(frz_session *s);

/* Install handlers for SIGINT, SIGTERM, SIGHUP (flag + detach) and SIGSEGV, SIGBUS,
 * SIGABRT, SIGFPE, SIGILL (detach, then die with the same signal) for session s. */
void frz_install_handlers(frz_session *s);
/* Set by SIGINT/SIGTERM/SIGHUP: the capture must stop and report "interrupted". */
extern volatile int frz_interrupted;

/* Stop every thread; re-scan /proc/PID/task until the set is stable; read registers.
 * Returns 0, -ESRCH if the process is gone, -EPERM without permission, -EINTR if
 * interrupted (everything already detached in that case). */
int frz_attach_all(frz_session *s);

/* Resume every thread exactly as found: clear debug registers, drain a queued SIGTRAP,
 * restore the signal mask, re-inject a pending signal, detach. Idempotent. Safe to call
 * from a signal handler (uses only async-signal-safe calls). */
void frz_detach_all(frz_session *s);

/* Wait for a stop of one thread with a timeout. Returns 1 stopped (*status set),
 * 0 timeout, -1 gone. */
int frz_wait_stop(frz_session *s, frz_thread *t, int *status, uint64_t timeout_ns);

/* Live memory read from the frozen target (process_vm_readv). 0 or -1. */
int frz_read(const frz_session *s, uint64_t addr, void *buf, size_t n);

#endif
