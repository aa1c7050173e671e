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
 * Per thread slot:  FREE -> SEIZING -> ATTACHED -> DETACHED   (or GONE when it exited)
 *
 * The registry is kept consistent at every instant, because the fatal-signal and
 * SIGINT/SIGTERM/SIGHUP handlers installed by frz_install_handlers() read it to detach
 * every thread before the capture process dies. The detach path never trusts the
 * registry's idea of "stopped": it probes each thread, collects any stop report not yet
 * read, interrupts a thread that runs, and only then clears the debug registers,
 * drains a queued SIGTRAP, restores the signal mask and detaches, re-injecting a signal
 * the thread was about to receive. A thread that was in group-stop (SIGSTOP) before we
 * attached is left stopped at detach (the kernel re-enters the group stop).
 *
 * Only the thread that attached (the tracer thread) can ptrace; a handler running on
 * another thread forwards the signal to it.
 *
 * Errors: functions return 0 or a negative errno-style code; nothing here prints.
 */
#ifndef HEAPSNAP_FREEZE_H
#define HEAPSNAP_FREEZE_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#define FRZ_MAX_THREADS 8192

enum frz_tstate {
	FRZ_T_FREE = 0,   /* slot unused */
	FRZ_T_SEIZING,    /* PTRACE_SEIZE in flight: may or may not be traced */
	FRZ_T_ATTACHED,   /* traced by us */
	FRZ_T_DETACHED,   /* released */
	FRZ_T_GONE,       /* exited while we held it (or before we could seize it) */
};

typedef struct {
	pid_t tid;
	volatile int st;              /* enum frz_tstate */
	int gone;                     /* exited while we held it */
	int was_stopped;              /* in group-stop before we came: stays stopped */
	char state;                   /* /proc state letter before attach */
	int pending_sig;              /* signal of the signal-delivery-stop it sits in; re-injected
				       * at the next resume or at detach (0: none) */
	int dr_set;                   /* a hardware breakpoint may be armed (debug registers) */
	int mask_saved;               /* we replaced its signal mask */
	uint64_t oldmask, applied_mask;
	uint64_t added_mask;          /* the bits we blocked that the thread had not blocked */
	int stepped;                  /* it ran under our control (breakpoint run or single
				       * step): it may have a SIGTRAP queued */
	int stopped;                  /* we collected a ptrace-stop and did not resume it since */
	int group_stop;               /* its current stop is a group-stop */
	struct user_regs_struct regs; /* at the last stop */
	int regs_valid;
} frz_thread;

typedef struct {
	pid_t pid;
	frz_thread *t;                /* FRZ_MAX_THREADS slots */
	volatile int n;               /* slots in use (published after the slot is filled) */
	volatile int frozen;          /* between the first seize and the end of detach */
	pid_t tracer_tid;             /* the thread that attached (only it may ptrace) */
	uint64_t t_first_stop_ns;     /* CLOCK_MONOTONIC when the first thread was stopped */
	uint64_t t_all_stopped_ns;    /* when every thread was stopped */
	uint64_t t_resumed_ns;        /* when the last thread was resumed */
	int stuck;                    /* threads that never reached a stop (left traced) */
	int chld_blocked;             /* we blocked SIGCHLD in the tracer thread */
	sigset_t saved_mask;
	int boosted;                  /* we raised the tracer thread's priority: 1 nice, 2 FIFO */
	int old_nice, old_policy, old_prio;
} frz_session;

/* What a stop reported by waitpid() was. */
enum frz_stop {
	FRZ_STOP_GONE = -1,           /* exited or was killed */
	FRZ_STOP_INTERRUPT = 0,       /* PTRACE_EVENT_STOP from PTRACE_INTERRUPT */
	FRZ_STOP_GROUP,               /* PTRACE_EVENT_STOP of a group-stop (SIGSTOP & co) */
	FRZ_STOP_TRAP,                /* our own SIGTRAP (hardware breakpoint or single step):
				       * suppressed, never re-injected */
	FRZ_STOP_SIGNAL,              /* signal-delivery-stop: t->pending_sig is set */
	FRZ_STOP_OTHER,               /* another ptrace event (not requested; ignored) */
};

uint64_t frz_now_ns(void);

/* Allocate the registry (no freeze yet). */
int frz_init(frz_session *s, pid_t pid);
/* Detach if still frozen, free the registry. */
void frz_release(frz_session *s);

/* Install handlers for SIGINT, SIGTERM, SIGHUP (flag + detach) and SIGSEGV, SIGBUS,
 * SIGABRT, SIGFPE, SIGILL, SIGQUIT (detach, then die by the same signal through the
 * previous disposition) for session s. One session at a time. */
void frz_install_handlers(frz_session *s);
/* Put the previous dispositions back. */
void frz_uninstall_handlers(frz_session *s);
/* Set by SIGINT/SIGTERM/SIGHUP: the capture must stop and report "interrupted". */
extern volatile sig_atomic_t frz_interrupted;

/* Stop every thread; re-scan /proc/PID/task until the set is stable; read registers.
 * While frozen the tracer thread runs SCHED_FIFO at the lowest real-time priority, or
 * else at nice -20, when allowed (CAP_SYS_NICE): a target whose threads keep every CPU
 * busy would otherwise starve it and stretch the pause (measured on a 4-thread malloc
 * storm on 2 cores: median 11 ms at normal priority, about 2 ms boosted).
 * Returns 0, -ESRCH if the process is gone, -EPERM without permission (-EBUSY when
 * another tracer holds it), -EINTR if interrupted (everything already detached then). */
int frz_attach_all(frz_session *s);

/* Resume every thread exactly as found: clear debug registers, drain a queued SIGTRAP,
 * restore the signal mask, re-inject a pending signal, detach. Idempotent. Safe to call
 * from a signal handler (uses only async-signal-safe calls). */
void frz_detach_all(frz_session *s);

/* Wait for a stop of one thread with a timeout. Returns 1 stopped (*status set),
 * 0 timeout, -1 gone (or no longer ours, e.g. after an interrupt detached it). */
int frz_wait_stop(frz_session *s, frz_thread *t, int *status, uint64_t timeout_ns);

/* Classify a status from frz_wait_stop and update t (stopped, pending_sig, gone). */
enum frz_stop frz_stop_kind(frz_thread *t, int status);

/* Resume t (PTRACE_CONT, or PTRACE_SINGLESTEP when step), injecting t->pending_sig. */
int frz_resume(frz_thread *t, int step);

/* Stop a running t again: PTRACE_INTERRUPT, then wait for its next stop (whatever it is:
 * the interrupt, a trap or a signal that raced it). Returns the stop kind, or
 * FRZ_STOP_GONE. */
enum frz_stop frz_interrupt(frz_session *s, frz_thread *t);

/* PTRACE_GETREGS into t->regs. 0 or -errno. */
int frz_getregs(frz_thread *t);

/* Arm / disarm hardware breakpoint 0 (execute) at addr. */
int frz_set_hwbp(frz_thread *t, uint64_t addr);
void frz_clear_hwbp(frz_thread *t);

/* Whether execute breakpoints set through the debug registers fire on this machine.
 * Some virtual machines (Firecracker guests, for one) accept the registers and never
 * trap. Probed once on a forked child of ours, cached; call it before a freeze so the
 * fork stays out of the frozen window. */
int frz_hwbp_works(void);

/* Block every asynchronous signal in t (never SIGTRAP/SEGV/BUS/ILL/FPE/SYS/KILL/STOP),
 * remembering what to restore; re-applies itself if the program changed its mask. */
int frz_block_async(frz_thread *t);

/* The /proc state letter of a thread ('R', 'S', 'T', 't', 'Z'...), or 0 if gone. */
char frz_thread_state(pid_t pid, pid_t tid);

/* Live memory read from the frozen target (process_vm_readv). 0 or -1. */
int frz_read(const frz_session *s, uint64_t addr, void *buf, size_t n);

#endif
