/* freeze.c -- owns the registry of stopped threads of one target: attach every thread
 * (PTRACE_SEIZE + PTRACE_INTERRUPT, re-scanning /proc/PID/task until the set is stable),
 * the small ptrace primitives the safe-point code builds on (resume, interrupt, debug
 * registers, signal masks), and the detach path that puts every thread back exactly as
 * it was found -- from normal code and from signal handlers alike.
 *
 * Everything on the detach path (detach_one and what it calls) is async-signal-safe:
 * raw syscalls, no stdio, no malloc, no locks. It trusts nothing in the registry about
 * whether a thread is stopped: it collects unread stop reports, probes with a request
 * that only works on a stopped tracee, and interrupts a thread that runs.
 *
 * Pitfalls handled here (each one stalled or killed a target in the experiment of
 * shared/reference/safepoint/):
 *  - debug registers survive PTRACE_DETACH: cleared on every path;
 *  - a single step into a blocking syscall queues a SIGTRAP behind the interrupt stop
 *    (as does a breakpoint hit racing PTRACE_INTERRUPT): if it is still queued at
 *    detach it kills the target, so it is drained first (SigPnd of the thread);
 *  - an interrupt racing a trap or a signal yields one extra stop later;
 *  - a signal-delivery-stop's signal must be re-injected, never dropped;
 *  - a group-stopped thread must stay stopped: detaching with no signal lets the
 *    kernel put it back into the group stop.
 */
#define _GNU_SOURCE
#include "freeze.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#ifndef TRAP_HWBKPT
#define TRAP_HWBKPT 4
#endif

volatile sig_atomic_t frz_interrupted;

/* The session the handlers act on (one at a time). */
static frz_session *volatile g_sess;

#define FENCE() __atomic_signal_fence(__ATOMIC_SEQ_CST)

uint64_t frz_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void nap_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	nanosleep(&ts, NULL);
}

/* ---- async-signal-safe /proc helpers ---- */

/* Append the decimal form of v to p; returns the new end. */
static char *put_dec(char *p, long v)
{
	char tmp[24];
	int n = 0;
	if (v < 0) {
		*p++ = '-';
		v = -v;
	}
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < (int)sizeof tmp);
	while (n)
		*p++ = tmp[--n];
	*p = 0;
	return p;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	*p = 0;
	return p;
}

/* "/proc/PID/task/TID/<leaf>" into buf (at least 64 bytes). */
static void task_path(char *buf, pid_t pid, pid_t tid, const char *leaf)
{
	char *p = put_str(buf, "/proc/");
	p = put_dec(p, pid);
	p = put_str(p, "/task/");
	p = put_dec(p, tid);
	*p++ = '/';
	put_str(p, leaf);
}

/* Read up to cap-1 bytes of a small /proc file; returns length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	return (ssize_t)n;
}

char frz_thread_state(pid_t pid, pid_t tid)
{
	char path[96], buf[512];
	task_path(path, pid, tid, "stat");
	ssize_t n = read_small(path, buf, sizeof buf);
	if (n <= 0)
		return 0;
	/* "tid (comm) S ...": comm may hold ')' and spaces, so take the last ')' */
	char *rp = NULL;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == ')')
			rp = buf + i;
	if (!rp || rp + 2 >= buf + n)
		return 0;
	return rp[2];
}

/* Is SIGTRAP in the thread's private pending set? */
static int sigtrap_pending(pid_t pid, pid_t tid)
{
	char path[96], buf[2048];
	task_path(path, pid, tid, "status");
	ssize_t n = read_small(path, buf, sizeof buf);
	if (n <= 0)
		return 0;
	const char *key = "\nSigPnd:";
	for (ssize_t i = 0; i + 8 < n; i++) {
		if (memcmp(buf + i, key, 8) != 0)
			continue;
		uint64_t m = 0;
		const char *p = buf + i + 8;
		while (*p == ' ' || *p == '\t')
			p++;
		for (int k = 0; k < 16 && *p; k++, p++) {
			int d = (*p >= '0' && *p <= '9') ? *p - '0'
				: (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 : -1;
			if (d < 0)
				break;
			m = (m << 4) | (uint64_t)d;
		}
		return (int)((m >> (SIGTRAP - 1)) & 1);
	}
	return 0;
}

/* ---- signal sets ---- */

static void async_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

/* Block the async signals our handlers act on, so that a handler cannot run in the
 * middle of a registry transition of the tracer thread. */
static void block_async_here(sigset_t *old)
{
	sigset_t set;
	async_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void restore_mask_here(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- stops ---- */

static int is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

enum frz_stop frz_stop_kind(frz_thread *t, int status)
{
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		t->gone = 1;
		t->stopped = 0;
		t->pending_sig = 0;
		t->st = FRZ_T_GONE;
		return FRZ_STOP_GONE;
	}
	if (!WIFSTOPPED(status))
		return FRZ_STOP_OTHER;
	t->stopped = 1;
	t->group_stop = 0;
	int sig = WSTOPSIG(status);
	unsigned ev = (unsigned)status >> 16;
	if (ev == PTRACE_EVENT_STOP) {
		if (is_stop_signal(sig)) {
			t->group_stop = 1;
			return FRZ_STOP_GROUP;
		}
		return FRZ_STOP_INTERRUPT;
	}
	if (ev)
		return FRZ_STOP_OTHER;
	if (sig == SIGTRAP && t->stepped) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) == 0 &&
		    (si.si_code == TRAP_BRKPT || si.si_code == TRAP_TRACE || si.si_code == TRAP_HWBKPT))
			return FRZ_STOP_TRAP;
	}
	t->pending_sig = sig;
	return FRZ_STOP_SIGNAL;
}

int frz_wait_stop(frz_session *s, frz_thread *t, int *status, uint64_t timeout_ns)
{
	uint64_t deadline = frz_now_ns() + timeout_ns;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (int spin = 0;; spin++) {
		pid_t r = waitpid(t->tid, status, __WALL | WNOHANG);
		if (r == t->tid)
			return 1;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;   /* ECHILD: exited and reaped, or no longer ours */
		}
		if (frz_interrupted && !s->frozen)
			return -1;
		uint64_t now = frz_now_ns();
		if (now >= deadline)
			return 0;
		if (spin < 64)
			continue;    /* a breakpoint hit usually arrives within microseconds */
		uint64_t rem = deadline - now;
		if (rem > 200000)
			rem = 200000;
		struct timespec ts = { 0, (long)rem };
		/* every tracee stop queues SIGCHLD to us; the cap covers a SIGCHLD taken by
		 * another thread of ours or ignored with SA_NOCLDSTOP */
		if (s->chld_blocked)
			sigtimedwait(&chld, NULL, &ts);
		else
			nanosleep(&ts, NULL);
	}
}

/* Poll for a stop without SIGCHLD (async-signal-safe). 1 stopped or gone, 0 timeout. */
static int poll_stop(frz_thread *t, uint64_t deadline)
{
	for (;;) {
		int status;
		pid_t r = waitpid(t->tid, &status, __WALL | WNOHANG);
		if (r == t->tid) {
			if (frz_stop_kind(t, status) != FRZ_STOP_OTHER)
				return 1;
			continue;
		}
		if (r < 0 && errno != EINTR) {
			/* not our tracee any more (or reaped): nothing to wait for */
			return -1;
		}
		if (frz_now_ns() >= deadline)
			return 0;
		nap_ns(20000);
	}
}

int frz_getregs(frz_thread *t)
{
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs)) {
		t->regs_valid = 0;
		return -errno;
	}
	t->regs_valid = 1;
	return 0;
}

int frz_resume(frz_thread *t, int step)
{
	int sig = t->pending_sig;
	sigset_t old;
	int blocked = 0;
	if (sig) {           /* clear + resume must not be split by our handler */
		block_async_here(&old);
		blocked = 1;
	}
	t->stepped = 1;
	t->stopped = 0;
	t->group_stop = 0;
	FENCE();
	long r = ptrace(step ? PTRACE_SINGLESTEP : PTRACE_CONT, t->tid, 0, (long)sig);
	int e = errno;
	if (r == 0)
		t->pending_sig = 0;
	else
		t->stopped = 1;
	FENCE();
	if (blocked)
		restore_mask_here(&old);
	return r ? -e : 0;
}

enum frz_stop frz_interrupt(frz_session *s, frz_thread *t)
{
	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) && errno == ESRCH) {
		/* dead, or not ours any more */
		int status;
		if (waitpid(t->tid, &status, __WALL | WNOHANG) == t->tid)
			return frz_stop_kind(t, status);
		return FRZ_STOP_GONE;
	}
	for (int i = 0; i < 64; i++) {
		int status;
		int r = frz_wait_stop(s, t, &status, 2000000000ull);
		if (r <= 0)
			return FRZ_STOP_GONE;
		enum frz_stop k = frz_stop_kind(t, status);
		if (k != FRZ_STOP_OTHER)
			return k;
	}
	return FRZ_STOP_GONE;
}

/* ---- debug registers and signal masks ---- */

#define DR_OFF(i) (offsetof(struct user, u_debugreg) + (size_t)(i) * sizeof(long))

int frz_set_hwbp(frz_thread *t, uint64_t addr)
{
	t->dr_set = 1;   /* first: a handler running now must clear them */
	FENCE();
	if (ptrace(PTRACE_POKEUSER, t->tid, DR_OFF(0), (long)addr))
		return -errno;
	/* DR7: L0 = 1, R/W0 = 00 (instruction), LEN0 = 00 */
	if (ptrace(PTRACE_POKEUSER, t->tid, DR_OFF(7), 1L)) {
		int e = errno;
		frz_clear_hwbp(t);
		return -e;
	}
	ptrace(PTRACE_POKEUSER, t->tid, DR_OFF(6), 0L);
	return 0;
}

void frz_clear_hwbp(frz_thread *t)
{
	if (!t->dr_set)
		return;
	int ok = ptrace(PTRACE_POKEUSER, t->tid, DR_OFF(7), 0L) == 0;
	ptrace(PTRACE_POKEUSER, t->tid, DR_OFF(0), 0L);
	ptrace(PTRACE_POKEUSER, t->tid, DR_OFF(6), 0L);
	if (ok)
		t->dr_set = 0;
}

__attribute__((noinline)) static void hwbp_probe_target(void)
{
	__asm__ volatile("" ::: "memory");
}

static int hwbp_probe(void)
{
	pid_t c = fork();
	if (c < 0)
		return 0;
	if (c == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) == 0 && raise(SIGSTOP) == 0)
			hwbp_probe_target();
		_exit(0);
	}
	int works = 0, status;
	if (waitpid(c, &status, 0) == c && WIFSTOPPED(status) &&
	    ptrace(PTRACE_POKEUSER, c, DR_OFF(0), (long)(uintptr_t)hwbp_probe_target) == 0 &&
	    ptrace(PTRACE_POKEUSER, c, DR_OFF(7), 1L) == 0 && ptrace(PTRACE_CONT, c, 0, 0) == 0 &&
	    waitpid(c, &status, 0) == c)
		works = WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP;
	kill(c, SIGKILL);
	while (waitpid(c, &status, 0) < 0 && errno == EINTR)
		;
	return works;
}

int frz_hwbp_works(void)
{
	static int known = -1;
	if (known < 0)
		known = hwbp_probe();
	return known;
}

static uint64_t sig_bit(int sig)
{
	return 1ull << (sig - 1);
}

int frz_block_async(frz_thread *t)
{
	uint64_t cur;
	if (ptrace(PTRACE_GETSIGMASK, t->tid, sizeof cur, &cur))
		return -errno;
	if (t->mask_saved && cur == t->applied_mask)
		return 0;
	/* synchronous signals stay deliverable: the kernel turns a blocked forced signal
	 * into SIG_DFL for the whole process (force_sig_info_to_task) */
	uint64_t sync = sig_bit(SIGTRAP) | sig_bit(SIGSEGV) | sig_bit(SIGBUS) | sig_bit(SIGILL) |
			sig_bit(SIGFPE) | sig_bit(SIGSYS) | sig_bit(SIGKILL) | sig_bit(SIGSTOP);
	uint64_t want = cur | ~sync;
	if (!t->mask_saved) {
		t->oldmask = cur;
		t->added_mask = 0;
	}
	/* cumulative: if the program changed its mask (a handler running at the freeze
	 * returned), what we restore is its current mask minus everything we added */
	t->added_mask |= want & ~cur;
	t->applied_mask = want;
	t->mask_saved = 1;
	FENCE();
	if (ptrace(PTRACE_SETSIGMASK, t->tid, sizeof want, &want))
		return -errno;
	return 0;
}

static void restore_sigmask(frz_thread *t)
{
	if (!t->mask_saved)
		return;
	uint64_t cur;
	if (ptrace(PTRACE_GETSIGMASK, t->tid, sizeof cur, &cur))
		cur = t->applied_mask;
	uint64_t m = cur & ~t->added_mask;
	if (ptrace(PTRACE_SETSIGMASK, t->tid, sizeof m, &m) == 0)
		t->mask_saved = 0;
}

/* ---- detach (async-signal-safe) ---- */

/* Is the thread in a ptrace-stop of ours? GETSIGMASK only works on a stopped tracee. */
static int probe_stopped(pid_t tid)
{
	uint64_t m;
	return ptrace(PTRACE_GETSIGMASK, tid, sizeof m, &m) == 0;
}

/* Deliver and discard a SIGTRAP that our stepping queued behind the current stop. */
static void drain_sigtrap(frz_session *s, frz_thread *t, uint64_t deadline)
{
	for (int i = 0; i < 6 && !t->gone; i++) {
		if (!sigtrap_pending(s->pid, t->tid))
			return;
		int sig = t->pending_sig;
		t->stopped = 0;
		FENCE();
		if (ptrace(PTRACE_CONT, t->tid, 0, (long)sig)) {
			t->stopped = 1;
			return;
		}
		t->pending_sig = 0;
		uint64_t dl = frz_now_ns() + 100000000ull;
		if (dl > deadline)
			dl = deadline;
		int r = poll_stop(t, dl);
		if (r < 0)
			return;
		if (r == 0) {
			ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
			if (poll_stop(t, deadline) <= 0)
				return;
		}
		/* FRZ_STOP_TRAP: ours, dropped. A SIGTRAP the program sent itself is a
		 * signal-delivery-stop with pending_sig set and goes back at detach. */
		if (t->pending_sig == SIGTRAP)
			return;
	}
}

/* Detach one thread. Returns 1 when it is done with (detached, gone, not ours), 0 when
 * it has not reached a stop within wait_ns: dying (the group leader's death is only
 * reported once the other threads are reaped) or in uninterruptible sleep. */
static int detach_one(frz_session *s, frz_thread *t, uint64_t wait_ns, uint64_t deadline)
{
	int st = t->st;
	if (st != FRZ_T_SEIZING && st != FRZ_T_ATTACHED)
		return 1;
	pid_t tid = t->tid;

	/* stop reports nobody read yet (a handler may have cut a wait short) */
	for (int k = 0; k < 16; k++) {
		int status;
		if (waitpid(tid, &status, __WALL | WNOHANG) != tid)
			break;
		if (frz_stop_kind(t, status) == FRZ_STOP_GONE)
			break;
	}
	if (t->gone) {
		t->st = FRZ_T_GONE;
		return 1;
	}

	if (!probe_stopped(tid)) {
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) && errno == ESRCH) {
			/* not traced by us (a seize that never happened, or detached already) */
			t->st = FRZ_T_DETACHED;
			return 1;
		}
		uint64_t dl = frz_now_ns() + wait_ns;
		int r = poll_stop(t, dl < deadline ? dl : deadline);
		if (r < 0 || t->gone) {
			t->st = t->gone ? FRZ_T_GONE : FRZ_T_DETACHED;
			return 1;
		}
		if (r == 0)
			return 0;
	}

	frz_clear_hwbp(t);
	if (t->stepped)
		drain_sigtrap(s, t, deadline);
	if (t->gone) {
		t->st = FRZ_T_GONE;
		return 1;
	}
	frz_clear_hwbp(t);
	restore_sigmask(t);

	int sig = t->pending_sig;
	if (ptrace(PTRACE_DETACH, tid, 0, (long)sig) == 0) {
		t->pending_sig = 0;
		t->stopped = 0;
		t->st = FRZ_T_DETACHED;
		return 1;
	}
	/* ESRCH: killed meanwhile; its death report comes later */
	t->stopped = 0;
	return 0;
}

static void detach_all_impl(frz_session *s)
{
	if (!s || !s->t)
		return;
	uint64_t deadline = frz_now_ns() + 3000000000ull;
	int n = s->n, pending = 0;
	if (n > FRZ_MAX_THREADS)
		n = FRZ_MAX_THREADS;
	for (int i = 0; i < n; i++)
		pending += !detach_one(s, &s->t[i], 20000000ull, deadline);
	/* dying threads (reaping the others lets the leader's death through) and threads in
	 * uninterruptible sleep: go round until each is done with, or the deadline */
	while (pending && frz_now_ns() < deadline) {
		pending = 0;
		for (int i = 0; i < n; i++)
			pending += !detach_one(s, &s->t[i], 1000000ull, deadline);
		if (pending)
			nap_ns(200000);
	}
	/* what never stopped stays traced until we exit; it cannot run user code before
	 * it stops, and the kernel releases it then */
	s->stuck = pending;
	s->t_resumed_ns = frz_now_ns();
	FENCE();
	s->frozen = 0;
}

/* The tracer thread's priority for the window: the target's threads must not starve it.
 * SCHED_FIFO at priority 1 (reset on fork), else nice -20, else nothing. Everything we
 * do while boosted is bounded (budgets, deadlines) and sleeps while it waits. */
static void boost(frz_session *s)
{
	if (s->boosted)
		return;
	int pol = sched_getscheduler(0);
	struct sched_param op;
	if (pol == SCHED_OTHER && sched_getparam(0, &op) == 0) {
		struct sched_param sp = { .sched_priority = 1 };
		if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0) {
			s->old_policy = pol;
			s->old_prio = op.sched_priority;
			s->boosted = 2;
			return;
		}
	}
	errno = 0;
	int old = getpriority(PRIO_PROCESS, (id_t)my_tid());
	if (errno || old <= -20)
		return;
	if (setpriority(PRIO_PROCESS, (id_t)my_tid(), -20) == 0) {
		s->old_nice = old;
		s->boosted = 1;
	}
}

static void unboost(frz_session *s)
{
	if (!s->boosted || my_tid() != s->tracer_tid)
		return;
	if (s->boosted == 2) {
		struct sched_param sp = { .sched_priority = s->old_prio };
		sched_setscheduler(0, s->old_policy, &sp);
	} else {
		setpriority(PRIO_PROCESS, (id_t)my_tid(), s->old_nice);
	}
	s->boosted = 0;
}

void frz_detach_all(frz_session *s)
{
	if (!s || !s->t)
		return;
	sigset_t old;
	block_async_here(&old);
	if (s->frozen)
		detach_all_impl(s);
	unboost(s);
	if (s->chld_blocked && my_tid() == s->tracer_tid) {
		/* drop SIGCHLDs our tracees queued, then give back the caller's mask */
		sigset_t chld;
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&chld, NULL, &zero) == SIGCHLD)
			;
		s->chld_blocked = 0;
		if (!sigismember(&s->saved_mask, SIGCHLD))
			sigdelset(&old, SIGCHLD);
	}
	restore_mask_here(&old);
}

/* ---- signal handlers ---- */

#define N_ASYNC 3
#define N_FATAL 6
static const int async_sigs[N_ASYNC] = { SIGINT, SIGTERM, SIGHUP };
static const int fatal_sigs[N_FATAL] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT };
static struct sigaction old_async[N_ASYNC], old_fatal[N_FATAL];
static int handlers_installed;

static void on_async(int sig)
{
	int e = errno;
	frz_interrupted = 1;
	frz_session *s = g_sess;
	if (s && s->frozen) {
		if (my_tid() == s->tracer_tid)
			detach_all_impl(s);
		else   /* only the tracer thread can ptrace: let it act */
			syscall(SYS_tgkill, getpid(), s->tracer_tid, sig);
	}
	errno = e;
}

static void on_fatal(int sig)
{
	frz_session *s = g_sess;
	if (s && s->frozen) {
		if (my_tid() == s->tracer_tid) {
			detach_all_impl(s);
		} else {
			/* ask the tracer thread to detach, give it a moment */
			syscall(SYS_tgkill, getpid(), s->tracer_tid, SIGTERM);
			for (int i = 0; i < 200 && s->frozen; i++)
				nap_ns(10000000ull);
		}
	}
	/* die by the same signal through whatever was there before us (a sanitizer's
	 * report, or the default action) */
	for (int i = 0; i < N_FATAL; i++)
		if (fatal_sigs[i] == sig) {
			struct sigaction sa = old_fatal[i];
			if (sa.sa_handler == SIG_IGN || sa.sa_handler == on_fatal) {
				memset(&sa, 0, sizeof sa);
				sa.sa_handler = SIG_DFL;
			}
			sigaction(sig, &sa, NULL);
		}
	raise(sig);   /* pending until we return; a hardware fault simply recurs */
}

void frz_install_handlers(frz_session *s)
{
	g_sess = s;
	if (handlers_installed)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	/* no SA_RESTART: waits return EINTR and the main path sees frz_interrupted */
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < N_ASYNC; i++)
		sigaddset(&sa.sa_mask, async_sigs[i]);
	for (int i = 0; i < N_FATAL; i++)
		sigaddset(&sa.sa_mask, fatal_sigs[i]);
	sa.sa_handler = on_async;
	for (int i = 0; i < N_ASYNC; i++)
		sigaction(async_sigs[i], &sa, &old_async[i]);
	sa.sa_handler = on_fatal;
	for (int i = 0; i < N_FATAL; i++)
		sigaction(fatal_sigs[i], &sa, &old_fatal[i]);
	handlers_installed = 1;
}

void frz_uninstall_handlers(frz_session *s)
{
	if (!handlers_installed)
		return;
	for (int i = 0; i < N_ASYNC; i++)
		sigaction(async_sigs[i], &old_async[i], NULL);
	for (int i = 0; i < N_FATAL; i++)
		sigaction(fatal_sigs[i], &old_fatal[i], NULL);
	handlers_installed = 0;
	if (g_sess == s)
		g_sess = NULL;
}

/* ---- session ---- */

int frz_init(frz_session *s, pid_t pid)
{
	memset(s, 0, sizeof *s);
	s->pid = pid;
	s->t = calloc(FRZ_MAX_THREADS, sizeof *s->t);
	if (!s->t)
		return -ENOMEM;
	return 0;
}

void frz_release(frz_session *s)
{
	if (!s->t)
		return;
	frz_detach_all(s);
	if (g_sess == s)
		g_sess = NULL;
	free(s->t);
	s->t = NULL;
	s->n = 0;
}

int frz_read(const frz_session *s, uint64_t addr, void *buf, size_t n)
{
	struct iovec l = { buf, n }, r = { (void *)(uintptr_t)addr, n };
	return process_vm_readv(s->pid, &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -1;
}

/* ---- attach ---- */

/* The tids of /proc/PID/task; returns the count, or -errno. */
static int list_tasks(pid_t pid, pid_t *out, int cap)
{
	char path[64];
	char *p = put_str(path, "/proc/");
	p = put_dec(p, pid);
	put_str(p, "/task");
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < cap) {
		char *end;
		long v = strtol(e->d_name, &end, 10);
		if (*end || v <= 0)
			continue;
		out[n++] = (pid_t)v;
	}
	closedir(d);
	return n;
}

static int known_tid(const frz_session *s, pid_t tid)
{
	for (int i = 0; i < s->n; i++)
		if (s->t[i].tid == tid)
			return 1;
	return 0;
}

/* TracerPid of the process, 0 if none or unknown. */
static pid_t tracer_of(pid_t pid)
{
	char path[64], buf[2048];
	char *p = put_str(path, "/proc/");
	p = put_dec(p, pid);
	put_str(p, "/status");
	if (read_small(path, buf, sizeof buf) <= 0)
		return 0;
	char *k = strstr(buf, "\nTracerPid:");
	return k ? (pid_t)strtol(k + 11, NULL, 10) : 0;
}

/* Wait until every attached, not yet stopped thread of slots [from, s->n) reports a
 * stop (or exits), up to the deadline. */
static void collect_stops(frz_session *s, int from, uint64_t deadline)
{
	for (int i = from; i < s->n; i++) {
		frz_thread *t = &s->t[i];
		while (t->st == FRZ_T_ATTACHED && !t->stopped && !t->gone) {
			uint64_t now = frz_now_ns();
			if (now >= deadline || frz_interrupted)
				break;
			int status;
			int r = frz_wait_stop(s, t, &status, deadline - now);
			if (r < 0) {
				if (!frz_interrupted) {
					t->gone = 1;
					t->st = FRZ_T_GONE;
				}
				break;
			}
			if (r == 0)
				break;
			enum frz_stop k = frz_stop_kind(t, status);
			if (k == FRZ_STOP_GROUP)
				t->was_stopped = 1;
		}
	}
}

int frz_attach_all(frz_session *s)
{
	if (!s->t)
		return -EINVAL;
	if (s->frozen)
		return -EBUSY;
	pid_t *tids = malloc(FRZ_MAX_THREADS * sizeof *tids);
	char *pre_state = malloc(FRZ_MAX_THREADS);
	pid_t *pre_tid = malloc(FRZ_MAX_THREADS * sizeof *pre_tid);
	if (!tids || !pre_state || !pre_tid) {
		free(tids);
		free(pre_state);
		free(pre_tid);
		return -ENOMEM;
	}
	int ret = 0, first_err = 0, n_attached = 0;

	/* State letters before anything is stopped (outside the pause). */
	int n_pre = list_tasks(s->pid, pre_tid, FRZ_MAX_THREADS);
	if (n_pre < 0) {
		ret = n_pre;
		goto out;
	}
	if (n_pre == 0) {
		ret = -ESRCH;
		goto out;
	}
	for (int i = 0; i < n_pre; i++)
		pre_state[i] = frz_thread_state(s->pid, pre_tid[i]);

	s->n = 0;
	s->stuck = 0;
	s->t_first_stop_ns = s->t_all_stopped_ns = s->t_resumed_ns = 0;
	s->tracer_tid = my_tid();
	boost(s);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (!s->chld_blocked) {
		pthread_sigmask(SIG_BLOCK, &chld, &s->saved_mask);
		s->chld_blocked = 1;
	}
	s->frozen = 1;
	FENCE();

	uint64_t deadline = frz_now_ns() + 1500000000ull;  /* for every thread to stop */
	for (int round = 0; round < 256; round++) {
		int nt = list_tasks(s->pid, tids, FRZ_MAX_THREADS);
		if (nt < 0) {
			ret = nt;
			goto fail;
		}
		int first = s->n, fresh = 0;
		for (int i = 0; i < nt; i++) {
			pid_t tid = tids[i];
			if (known_tid(s, tid))
				continue;
			char state = 0;
			for (int k = 0; k < n_pre; k++)
				if (pre_tid[k] == tid)
					state = pre_state[k];
			if (!state)
				state = frz_thread_state(s->pid, tid);
			if (state == 0 || state == 'Z' || state == 'X')
				continue;   /* exited: cannot be seized and holds nothing */
			if (s->n >= FRZ_MAX_THREADS) {
				ret = -E2BIG;
				goto fail;
			}
			sigset_t old;
			block_async_here(&old);
			frz_thread *t = &s->t[s->n];
			memset(t, 0, sizeof *t);
			t->tid = tid;
			t->state = state;
			t->st = FRZ_T_SEIZING;
			FENCE();
			s->n++;
			FENCE();
			int err = 0;
			if (ptrace(PTRACE_SEIZE, tid, 0, 0) == 0) {
				if (!s->t_first_stop_ns)
					s->t_first_stop_ns = frz_now_ns();
				ptrace(PTRACE_INTERRUPT, tid, 0, 0);
				t->st = FRZ_T_ATTACHED;
				n_attached++;
			} else {
				err = errno;
				t->st = FRZ_T_GONE;
				t->gone = 1;
			}
			FENCE();
			restore_mask_here(&old);
			fresh++;
			if (err == EPERM) {
				char now_state = frz_thread_state(s->pid, tid);
				if (now_state && now_state != 'Z' && now_state != 'X' && !first_err)
					first_err = EPERM;
			} else if (err && err != ESRCH && !first_err) {
				first_err = err;
			}
			if (frz_interrupted)
				break;
		}
		if (frz_interrupted) {
			ret = -EINTR;
			goto fail;
		}
		if (first_err == EPERM) {
			/* a live thread we cannot stop (another tracer holds it, or no permission):
			 * a partial freeze is no freeze */
			pid_t tr = tracer_of(s->pid);
			ret = (tr && tr != getpid()) || n_attached ? -EBUSY : -EPERM;
			goto fail;
		}
		collect_stops(s, first, deadline);
		if (frz_interrupted) {
			ret = -EINTR;
			goto fail;
		}
		if (!fresh)
			break;   /* every known thread stopped and no new one appeared */
	}

	int alive = 0;
	for (int i = 0; i < s->n; i++) {
		frz_thread *t = &s->t[i];
		if (t->st != FRZ_T_ATTACHED || t->gone)
			continue;
		alive++;
		if (t->stopped)
			frz_getregs(t);
	}
	s->t_all_stopped_ns = frz_now_ns();
	if (!alive) {
		ret = first_err == EPERM ? -EPERM : -ESRCH;
		goto fail;
	}
	ret = 0;
	goto out;
fail:
	frz_detach_all(s);
out:
	free(tids);
	free(pre_state);
	free(pre_tid);
	return ret;
}
