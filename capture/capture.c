/* capture.c -- runs one capture end to end (see capture.h for the sequence): owns the
 * order of the phases and the hand-over of the frozen window's copy to the modules that
 * describe it. Each phase lives in its own module; this file only wires them.
 */
#define _GNU_SOURCE
#include "capture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>
#include <time.h>

#include "glibc.h"
#include "modules.h"
#include "procmaps.h"
#include "ptrscan.h"
#include "symbols.h"
#include "tracking.h"
#include "unwind.h"
#include "window.h"

_Static_assert(sizeof(struct user_regs_struct) == HS_NREGS * sizeof(uint64_t),
	       "hs_reg_names must match struct user_regs_struct");

void cap_options_default(cap_options *o)
{
	memset(o, 0, sizeof *o);
	o->max_attempts = 5;
	o->thread_budget_ns = 50 * 1000 * 1000ull;
}

/* State shared with the verify callback: the facts the heap walk needs, and the walk
 * of the copy it accepted, so the walk is not done twice. */
typedef struct {
	const hs_capture *base;    /* process facts */
	const gh_options *gh;
	hs_capture walked;         /* maps, threads, heap of the last copy walked */
	int walked_valid;
	int rc;
} verify_state;

static void threads_from_window(hs_capture *c, const fw_result *r)
{
	for (size_t i = 0; i < r->n_threads; i++) {
		const fw_thread *ft = &r->threads[i];
		hs_thread *t = &c->threads[i];
		memset(t, 0, sizeof *t);
		t->tid = ft->tid;
		t->state = ft->state;
		t->was_stopped = ft->was_stopped;
		t->regs_valid = ft->regs_valid;
		if (ft->regs_valid) {
			memcpy(t->regs, &ft->regs, sizeof t->regs);
			t->fs_base = ft->regs.fs_base;
			t->sp = ft->regs.rsp;
			t->pc = ft->regs.rip;
		}
		t->safepoint = ft->safepoint;
		t->syscall_nr = ft->syscall_nr;
		t->callsite = -1;
	}
	c->n_threads = r->n_threads;
}

/* Build maps and threads of c from a window result. */
static int describe_copy(hs_capture *c, const fw_result *r)
{
	free(c->threads);
	c->threads = calloc(r->n_threads ? r->n_threads : 1, sizeof *c->threads);
	if (!c->threads)
		return -ENOMEM;
	threads_from_window(c, r);
	for (size_t i = 0; i < c->n_maps; i++) {
		free(c->maps[i].path);
		free(c->maps[i].extra);
		free(c->maps[i].vmflags);
	}
	free(c->maps);
	c->maps = NULL;
	c->n_maps = 0;
	return pm_maps_from_vmas(c, &r->maps);
}

static void drop_heap(hs_capture *c)
{
	for (size_t i = 0; i < c->n_arenas; i++) {
		free(c->arenas[i].heaps);
		free(c->arenas[i].note);
	}
	free(c->arenas);
	c->arenas = NULL;
	c->n_arenas = 0;
	free(c->chunks);
	c->chunks = NULL;
	c->n_chunks = c->cap_chunks = 0;
	free(c->heap.note);
	free(c->heap.glibc_version);
	memset(&c->heap, 0, sizeof c->heap);
}

/* After each resume: walk the copy; accept it when every arena is consistent (or when
 * there is no glibc heap at all, where nothing can be in flux). */
static int verify_copy(fw_result *r, void *arg)
{
	verify_state *vs = arg;
	hs_capture *w = &vs->walked;

	drop_heap(w);
	w->proc.pid = vs->base->proc.pid;
	free(w->proc.exe);
	w->proc.exe = vs->base->proc.exe ? strdup(vs->base->proc.exe) : NULL;
	int rc = describe_copy(w, r);
	if (!rc)
		rc = gh_walk(&r->img, w, vs->gh);
	if (rc) {
		vs->rc = rc;
		return rc;
	}
	vs->walked_valid = 1;
	return !w->heap.found || gh_all_consistent(w);
}

/* Move the heap walk's results from the verify state into the final capture. */
static void take_heap(hs_capture *c, hs_capture *w)
{
	drop_heap(c);
	c->heap = w->heap;
	c->arenas = w->arenas;
	c->n_arenas = w->n_arenas;
	c->chunks = w->chunks;
	c->n_chunks = w->n_chunks;
	c->cap_chunks = w->cap_chunks;
	memset(&w->heap, 0, sizeof w->heap);
	w->arenas = NULL;
	w->chunks = NULL;
	w->n_arenas = w->n_chunks = w->cap_chunks = 0;
	/* per-thread heap facts found by the walk (tcache, arena, tcache holdings) */
	for (size_t i = 0; i < c->n_threads && i < w->n_threads; i++)
		if (c->threads[i].tid == w->threads[i].tid) {
			int cs = c->threads[i].callsite;
			char name[sizeof c->threads[i].name];
			memcpy(name, c->threads[i].name, sizeof name);
			c->threads[i] = w->threads[i];
			c->threads[i].callsite = cs;
			memcpy(c->threads[i].name, name, sizeof name);
		}
}

static uint64_t now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

int cap_run(const cap_options *o, hs_capture *c, cap_timings *tm, char *err, size_t errlen)
{
	char root[64];
	int rc;
	cap_timings tdummy;
	if (!tm)
		tm = &tdummy;
	memset(tm, 0, sizeof *tm);
	uint64_t t0 = now_us();

	snprintf(root, sizeof root, "/proc/%d/root", (int)o->pid);
	c->tool_version = strdup(HEAPSNAP_VERSION);
	rc = pm_read_process(o->pid, c);
	if (rc) {
		if (rc == -ENOENT || rc == -ESRCH)
			snprintf(err, errlen, "no process with pid %d", (int)o->pid);
		else if (rc == -EACCES || rc == -EPERM) {
			snprintf(err, errlen, "not permitted to capture pid %d (run as its user or root)",
				 (int)o->pid);
			return -EPERM;
		} else
			snprintf(err, errlen, "cannot read /proc/%d: %s", (int)o->pid, strerror(-rc));
		return rc == -ENOENT ? -ESRCH : rc;
	}

	uint64_t t1 = now_us();
	tm->facts_us = t1 - t0;
	gh_options gh = { .no_debug = o->no_debug, .root = root };
	verify_state vs = { .base = c, .gh = &gh };
	hs_capture_init(&vs.walked);

	fw_options fo;
	fw_options_default(&fo);
	fo.max_attempts = o->max_attempts;
	fo.thread_budget_ns = o->thread_budget_ns;
	fo.no_safepoints = o->no_safepoints;
	fo.no_debug = o->no_debug;
	fo.verify = verify_copy;
	fo.verify_arg = &vs;

	fw_result r;
	memset(&r, 0, sizeof r);
	rc = fw_capture(o->pid, &fo, &r, err, errlen);
	if (rc && rc != -EAGAIN) {
		if (vs.rc && !err[0])
			snprintf(err, errlen, "heap walk failed: %s", strerror(-vs.rc));
		hs_capture_free(&vs.walked);
		fw_result_release(&r);
		return rc;
	}
	/* -EAGAIN: every attempt caught an arena mid-update; keep the last copy, its arenas
	 * are marked inconsistent with a note, and say so in the heap note */
	int all_in_flux = rc == -EAGAIN;
	uint64_t t2 = now_us();
	tm->window_us = t2 - t1;
	c->freeze = r.info;
	c->proc.capture_time_us = r.capture_time_us;

	rc = describe_copy(c, &r);
	if (rc)
		goto fail;
	if (vs.walked_valid)
		take_heap(c, &vs.walked);
	else if ((rc = gh_walk(&r.img, c, &gh)))
		goto fail;
	if (all_in_flux && c->heap.found) {
		char note[160];
		snprintf(note, sizeof note, "every one of %d freezes caught an arena mid-update; "
			 "inconsistent arenas are marked", r.info.attempts);
		free(c->heap.note);
		c->heap.note = strdup(note);
	}

	rc = pm_read_smaps(o->pid, c);
	if (rc == -ENOENT || rc == -ESRCH) {
		snprintf(err, errlen, "process %d exited during the capture", (int)o->pid);
		rc = -ESRCH;
		goto out;
	}
	pm_read_thread_names(o->pid, c);
	if ((rc = mod_collect(c, root)))
		goto fail;
	pm_classify(c); /* also sets each thread's stack bounds */
	if ((rc = trk_read(&r.img, c, root)))  /* the tracking library's headers and tables */
		goto fail;

	uint64_t t3 = now_us();
	tm->describe_us = t3 - t2;
	if (!o->no_unwind || c->n_allocs) {
		sym_session *sy = sym_open(c, root);
		if (sy) {
			if (!o->no_unwind)
				uw_unwind_threads(&r.img, c, sy);
			rc = trk_symbolize(&r.img, c, sy);  /* last: may add dlclosed modules */
			sym_close(sy);
			if (rc)
				goto fail;
		}
	}
	tm->unwind_us = now_us() - t3;
	if (!o->no_graph && c->heap.found) {
		uint64_t t4 = now_us();
		ps_options po = { .contents = o->contents, .root = root };
		if ((rc = ps_scan(&r.img, c, &po, &c->graph)))
			goto fail;
		tm->graph_us = now_us() - t4;
	}
	rc = 0;
	goto out;
fail:
	snprintf(err, errlen, "capture of pid %d failed: %s", (int)o->pid, strerror(-rc));
out:
	hs_capture_free(&vs.walked);
	fw_result_release(&r);
	return rc;
}
