/* window.c -- owns the frozen window of one capture, end to end:
 *
 *   before:  read maps, find libc (safe points), plan + pre-fault the copy buffers
 *   frozen:  attach every thread -> safe points -> re-read maps, re-plan (stacks trimmed
 *            to their live part) -> copy memory
 *   after:   detach (every path, including signals), then verify the copy; repeat up to
 *            max_attempts while verify says the heap was caught mid-update
 *
 * Test hook: HEAPSNAP_TEST_FROZEN_SLEEP_MS=N sleeps N ms while the target is frozen
 * (after the safe points, before the copy), so tests can signal the capture or kill the
 * target in the middle of the window.
 */
#define _GNU_SOURCE
#include "window.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"
#include "safepoint.h"
#include "tracking.h"

void fw_options_default(fw_options *o)
{
	memset(o, 0, sizeof *o);
	o->max_attempts = 5;
	o->thread_budget_ns = 50000000ull;
}

void fw_result_release(fw_result *r)
{
	img_release(&r->img);
	mc_vmas_release(&r->maps);
	free(r->threads);
	r->threads = NULL;
	r->n_threads = 0;
}

#define EPERM_MSG "not permitted to trace process %d: run as its user or root, and check " \
	"/proc/sys/kernel/yama/ptrace_scope (0 allows tracing non-children) or CAP_SYS_PTRACE"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* State letter and start time (clock ticks) of the process; state 0 if gone. */
static char proc_state(pid_t pid, uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	char st = p[2];
	/* field 22 (starttime): 19 more fields after the state */
	char *q = p + 2;
	for (int f = 3; f < 22 && q; f++) {
		q = strchr(q, ' ');
		if (q)
			q++;
	}
	if (start)
		*start = q ? strtoull(q, NULL, 10) : 0;
	return st;
}

static int process_alive(pid_t pid, uint64_t start_ticks)
{
	uint64_t st = 0;
	char c = proc_state(pid, &st);
	return c && c != 'Z' && c != 'X' && st == start_ticks;
}

static const char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int is_libc_name(const char *path)
{
	const char *b = basename_of(path);
	return !strncmp(b, "libc.so", 7) || (!strncmp(b, "libc-2.", 7) && strstr(b, ".so"));
}

/* 1 if the offset-0 mapping i starts a load image: an executable mapping of the same
 * file follows before the file's next offset-0 mapping. A file can also be mapped whole
 * and read-only by code in the target (libdw in the tracking library maps the ELF files
 * it reads), which must not be taken for its load base. */
static int starts_image(const mc_vmas *m, size_t i)
{
	for (size_t j = i; j < m->n && j < i + 32; j++) {
		const mc_vma *v = &m->v[j];
		if (v->path[0] && strcmp(v->path, m->v[i].path))
			break;
		if (j > i && v->path[0] && v->offset == 0)
			break;
		if (v->path[0] && v->perms[2] == 'x')
			return 1;
	}
	return 0;
}

/* Open the allocator side of the target: its libc, or a static executable. */
static sp_libc *open_libc(pid_t pid, const mc_vmas *m, int no_debug)
{
	const mc_vma *hit = NULL;
	for (size_t i = 0; i < m->n && !hit; i++)
		if (m->v[i].offset == 0 && m->v[i].path[0] == '/' && is_libc_name(m->v[i].path) &&
		    starts_image(m, i))
			hit = &m->v[i];
	for (size_t i = 0; i < m->n && !hit; i++)   /* no executable mapping seen: the first */
		if (m->v[i].offset == 0 && m->v[i].path[0] == '/' && is_libc_name(m->v[i].path))
			hit = &m->v[i];
	char exe[256] = "";
	if (!hit) {
		/* no libc.so mapped: a static executable is its own libc */
		char link[64];
		snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
		ssize_t n = readlink(link, exe, sizeof exe - 1);
		if (n <= 0)
			return NULL;
		exe[n] = 0;
		for (size_t i = 0; i < m->n && !hit; i++)
			if (m->v[i].offset == 0 && !strcmp(m->v[i].path, exe) && starts_image(m, i))
				hit = &m->v[i];
		for (size_t i = 0; i < m->n && !hit; i++)
			if (m->v[i].offset == 0 && !strcmp(m->v[i].path, exe))
				hit = &m->v[i];
		if (!hit)
			return NULL;
	}
	char path[512];
	/* the very file mapped (also when replaced on disk since), then the target's root */
	snprintf(path, sizeof path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, hit->lo, hit->hi);
	sp_libc *l = sp_libc_open(path, hit->lo, no_debug);
	if (!l) {
		snprintf(path, sizeof path, "/proc/%d/root%s", (int)pid, hit->path);
		l = sp_libc_open(path, hit->lo, no_debug);
	}
	if (!l)
		l = sp_libc_open(hit->path, hit->lo, no_debug);
	return l;
}

static uint64_t wall_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000ull + (uint64_t)tv.tv_usec;
}

/* Sleep ms while frozen (test hook), cut short by an interrupt. */
static void frozen_sleep(long ms)
{
	uint64_t end = frz_now_ns() + (uint64_t)ms * 1000000ull;
	while (!frz_interrupted) {
		uint64_t now = frz_now_ns();
		if (now >= end)
			break;
		uint64_t rem = end - now;
		struct timespec ts = { (time_t)(rem / 1000000000ull), (long)(rem % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int fill_threads(fw_result *r, const frz_session *s, const enum hs_safepoint *outc,
			const int *sysnr)
{
	free(r->threads);
	r->threads = NULL;
	r->n_threads = 0;
	if (!s->n)
		return 0;
	r->threads = calloc((size_t)s->n, sizeof *r->threads);
	if (!r->threads)
		return -ENOMEM;
	for (int i = 0; i < s->n; i++) {
		const frz_thread *t = &s->t[i];
		if (t->gone || (t->st != FRZ_T_DETACHED && t->st != FRZ_T_ATTACHED))
			continue;
		fw_thread *o = &r->threads[r->n_threads++];
		o->tid = t->tid;
		o->state = t->state;
		o->was_stopped = t->was_stopped;
		o->regs = t->regs;
		o->regs_valid = t->regs_valid;
		o->safepoint = outc ? outc[i] : HS_SP_CLEAN;
		o->syscall_nr = sysnr ? sysnr[i] : -1;
	}
	return 0;
}

int fw_capture(pid_t pid, const fw_options *o, fw_result *r, char *err, size_t errlen)
{
	fw_options def;
	if (!o) {
		fw_options_default(&def);
		o = &def;
	}
	memset(r, 0, sizeof *r);
	img_init(&r->img);
	if (err && errlen)
		err[0] = 0;
	if (pid <= 0)
		return fail(err, errlen, -ESRCH, "no such process %d", (int)pid);
	if (pid == getpid())
		return fail(err, errlen, -EINVAL, "cannot capture the capturing process itself");

	uint64_t start_ticks = 0;
	char st0 = proc_state(pid, &start_ticks);
	if (!st0 || st0 == 'Z' || st0 == 'X')
		return fail(err, errlen, -ESRCH, "no such process %d", (int)pid);

	long sleep_ms = 0;
	const char *env = getenv("HEAPSNAP_TEST_FROZEN_SLEEP_MS");
	if (env)
		sleep_ms = strtol(env, NULL, 10);
	int max_attempts = o->max_attempts > 0 ? o->max_attempts : 1;

	frz_session s;
	int rc = frz_init(&s, pid);
	if (rc)
		return fail(err, errlen, rc, "out of memory");
	frz_interrupted = 0;

	mc_vmas pre = { 0 }, now = { 0 };
	sp_libc *lc = NULL;
	enum hs_safepoint *outc = NULL;
	int *sysnr = NULL;
	uint64_t *sps = NULL;
	int ret;

	rc = mc_read_maps(pid, &pre);
	if (rc == -EACCES || rc == -EPERM) {
		ret = fail(err, errlen, -EPERM, EPERM_MSG, (int)pid);
		goto out;
	}
	if (rc) {
		ret = rc == -ESRCH ? fail(err, errlen, -ESRCH, "no such process %d", (int)pid)
				   : fail(err, errlen, rc, "cannot read /proc/%d/maps: %s", (int)pid, strerror(-rc));
		goto out;
	}
	if (!o->no_safepoints) {
		lc = open_libc(pid, &pre, o->no_debug);
		uint64_t trk_state, trk_lo, trk_hi;
		if (lc && !trk_locate(pid, &pre, &trk_state, &trk_lo, &trk_hi))
			sp_libc_set_tracker(lc, trk_state, trk_lo, trk_hi);
		frz_hwbp_works();   /* probed now, outside the frozen window */
	}
	outc = calloc(FRZ_MAX_THREADS, sizeof *outc);
	sysnr = calloc(FRZ_MAX_THREADS, sizeof *sysnr);
	sps = calloc(FRZ_MAX_THREADS, sizeof *sps);
	if (!outc || !sysnr || !sps) {
		ret = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}

	for (int attempt = 1;; attempt++) {
		if (attempt > 1) {
			nap_ms(2 + rand() % 9);   /* let the target move on before the next try */
			rc = mc_read_maps(pid, &pre);
			if (rc == -ESRCH) {
				ret = fail(err, errlen, -ESRCH, "process %d exited during the capture", (int)pid);
				goto out;
			}
		}
		if (frz_interrupted) {
			ret = fail(err, errlen, -EINTR, "capture of process %d interrupted", (int)pid);
			goto out;
		}
		/* before the freeze: buffers for everything but the stacks, pre-faulted */
		int64_t planned = mc_plan(&r->img, &pre, NULL, 0);
		if (planned < 0) {
			ret = fail(err, errlen, (int)planned, "cannot allocate the copy buffers: %s",
				   strerror((int)-planned));
			goto out;
		}
		mc_premap(pid, &r->img);   /* best effort: without it the window checks all */

		/* our handlers only while the target may be frozen: a signal then resumes it;
		 * outside (planning, the caller's verify) the caller's dispositions apply */
		frz_install_handlers(&s);
		rc = frz_attach_all(&s);
		if (rc) {
			frz_uninstall_handlers(&s);
			if (rc == -EINTR)
				ret = fail(err, errlen, -EINTR, "capture of process %d interrupted", (int)pid);
			else if (rc == -EPERM)
				ret = fail(err, errlen, -EPERM, EPERM_MSG, (int)pid);
			else if (rc == -EBUSY)
				ret = fail(err, errlen, -EPERM,
					   "process %d is already traced by another tracer (a debugger?)",
					   (int)pid);
			else if (rc == -ESRCH)
				ret = fail(err, errlen, -ESRCH, attempt > 1 || !process_alive(pid, start_ticks)
					   ? "process %d exited during the capture" : "no such process %d",
					   (int)pid);
			else
				ret = fail(err, errlen, rc, "cannot stop process %d: %s", (int)pid,
					   strerror(-rc));
			goto out;
		}
		r->capture_time_us = wall_us();
		uint64_t t_frozen = frz_now_ns();

		/* safe points */
		sp_result spr;
		memset(&spr, 0, sizeof spr);
		spr.budget_ns = o->thread_budget_ns;
		for (int i = 0; i < s.n; i++) {
			outc[i] = HS_SP_CLEAN;
			sysnr[i] = -1;
		}
		if (!o->no_safepoints && lc)
			sp_reach_safepoints(&s, lc, outc, sysnr, &spr);
		else
			sp_reach_safepoints(&s, NULL, outc, sysnr, &spr);
		uint64_t t_sp = frz_now_ns();

		if (sleep_ms > 0)
			frozen_sleep(sleep_ms);

		int64_t copied = 0;
		uint64_t t_copy0 = frz_now_ns(), t_copy1 = t_copy0;
		if (!frz_interrupted) {
			/* while frozen: the maps as they are now, stacks trimmed to the live part */
			rc = mc_read_maps(pid, &now);
			if (rc == 0) {
				size_t nsp = 0;
				for (int i = 0; i < s.n; i++)
					if (s.t[i].st == FRZ_T_ATTACHED && !s.t[i].gone && s.t[i].regs_valid)
						sps[nsp++] = s.t[i].regs.rsp;
				int64_t p = mc_plan(&r->img, &now, sps, nsp);
				t_copy0 = frz_now_ns();
				copied = p < 0 ? p : mc_copy(pid, &r->img);
				t_copy1 = frz_now_ns();
			} else {
				copied = rc;
			}
		}
		frz_detach_all(&s);
		frz_uninstall_handlers(&s);

		hs_freezeinfo *fi = &r->info;
		fi->attempts = attempt;
		fi->pause_us = s.t_first_stop_ns && s.t_resumed_ns > s.t_first_stop_ns
			       ? (s.t_resumed_ns - s.t_first_stop_ns) / 1000 : 0;
		fi->freeze_us = s.t_all_stopped_ns > s.t_first_stop_ns
				? (s.t_all_stopped_ns - s.t_first_stop_ns) / 1000 : 0;
		fi->safepoint_us = (t_sp - t_frozen) / 1000;
		fi->copy_us = (t_copy1 - t_copy0) / 1000;
		fi->copy_bytes = copied > 0 ? (uint64_t)copied : 0;
		fi->threads_ran_out = spr.ran_out;
		fi->threads_in_flux = spr.in_flux;
		fi->threads_in_tracker = spr.in_tracker;
		if (fill_threads(r, &s, outc, sysnr)) {
			ret = fail(err, errlen, -ENOMEM, "out of memory");
			goto out;
		}
		mc_vmas_release(&r->maps);
		r->maps = now;
		memset(&now, 0, sizeof now);

		if (frz_interrupted) {
			ret = fail(err, errlen, -EINTR, "capture of process %d interrupted", (int)pid);
			goto out;
		}
		if (copied == -ESRCH || !process_alive(pid, start_ticks)) {
			ret = fail(err, errlen, -ESRCH, "process %d exited during the capture", (int)pid);
			goto out;
		}
		if (copied < 0) {
			ret = fail(err, errlen, (int)copied, "cannot copy the memory of process %d: %s",
				   (int)pid, strerror((int)-copied));
			goto out;
		}
		if (!o->verify) {
			ret = 0;
			goto out;
		}
		int v = o->verify(r, o->verify_arg);
		if (v > 0) {
			ret = 0;
			goto out;
		}
		if (v < 0) {
			ret = fail(err, errlen, v, "checking the copy of process %d failed", (int)pid);
			goto out;
		}
		if (attempt >= max_attempts) {
			ret = fail(err, errlen, -EAGAIN,
				   "the heap of process %d was caught mid-update in all %d attempts",
				   (int)pid, attempt);
			goto out;
		}
	}
out:
	frz_release(&s);
	frz_uninstall_handlers(&s);
	sp_libc_close(lc);
	mc_vmas_release(&pre);
	mc_vmas_release(&now);
	free(outc);
	free(sysnr);
	free(sps);
	return ret;
}
