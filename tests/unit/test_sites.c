/* test_sites.c -- sites.c on synthetic snapshots written by the real writer: live bytes
 * and counts per site, function, line, module and stack; library frames (libc) skipped
 * when naming a site; the "(no stack)" row; chunks the library made for itself left
 * out; sampling estimates with the 1/P(s) weights; and a snapshot without tracking. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "model.h"
#include "sites.h"
#include "snapwrite.h"

static char *dup_(const char *s)
{
	char *d = strdup(s);
	CHECK(d);
	return d;
}

static void add_module(hs_capture *c, const char *path, const char *bid, uint64_t base)
{
	c->modules = realloc(c->modules, (c->n_modules + 1) * sizeof *c->modules);
	CHECK(c->modules);
	hs_module *m = &c->modules[c->n_modules++];
	memset(m, 0, sizeof *m);
	m->path = dup_(path);
	m->build_id = bid ? dup_(bid) : NULL;
	m->load_base = base;
	m->start = base;
	m->end = base + 0x100000;
}

static int frame(hs_capture *c, int mod, uint64_t rel, const char *fn, const char *file, int line)
{
	hs_frame f = { .module_idx = mod, .rel_pc = rel, .pc = c->modules[mod].load_base + rel,
		       .function = dup_(fn), .file = file ? dup_(file) : NULL, .line = line };
	long i = hs_add_frame(c, &f);
	CHECK(i >= 0);
	return (int)i;
}

/* a chain outermost first; returns the innermost callsite */
static int chain(hs_capture *c, const int *frames, int n)
{
	long p = -1;
	for (int i = 0; i < n; i++)
		CHECK((p = hs_add_callsite(c, (int)p, frames[i], i)) >= 0);
	return (int)p;
}

static uint64_t next_addr = 0x555500001000ull;

static void alloc(hs_capture *c, int cs, int origin, uint64_t req, int n)
{
	for (int i = 0; i < n; i++) {
		hs_chunk ch = { .addr = next_addr, .size = 64 + (req + 15) / 16 * 16, .state = HS_CH_IN_USE, .arena = -1, .mmapped = 1 };
		next_addr += ch.size;
		CHECK(hs_add_chunk(c, &ch) >= 0);
		c->allocs = realloc(c->allocs, (c->n_allocs + 1) * sizeof *c->allocs);
		CHECK(c->allocs);
		c->allocs[c->n_allocs++] = (hs_alloc){ .addr = ch.addr, .requested = req,
			.usable = ch.size - 24, .seq = c->n_allocs, .stack_id = 1, .origin = (uint8_t)origin,
			.callsite = origin == HS_AO_STACK ? cs : -1 };
	}
}

static void build(hs_capture *c, uint64_t interval, int tracked)
{
	hs_capture_init(c);
	c->proc.pid = 4242;
	add_module(c, "/usr/bin/app", "aabbccdd", 0x555500000000ull);
	add_module(c, "/usr/lib/x86_64-linux-gnu/libc.so.6", "11223344", 0x7f0000000000ull);
	int f_malloc = frame(c, 1, 0x100, "malloc", NULL, 0);
	int f_wrap = frame(c, 1, 0x200, "__libc_wrapper", NULL, 0);
	int f_c = frame(c, 0, 0x1010, "c_alloc", "/src/app.c", 10);
	int f_b1 = frame(c, 0, 0x1020, "b_one", "/src/app.c", 20);
	int f_b2 = frame(c, 0, 0x1030, "b_two", "/src/app.c", 30);
	int f_main = frame(c, 0, 0x1040, "main", "/src/app.c", 40);
	int f_d = frame(c, 0, 0x1050, "d_alloc", "/src/app.c", 50);
	int s1[] = { f_main, f_b1, f_c, f_wrap, f_malloc };
	int s2[] = { f_main, f_b2, f_c, f_malloc };
	int s3[] = { f_main, f_d };
	int cs1 = chain(c, s1, 5), cs2 = chain(c, s2, 4), cs3 = chain(c, s3, 2);
	if (!tracked)
		return;
	c->tracking.found = c->tracking.valid = 1;
	c->tracking.lib_path = dup_("/opt/heapsnap/libheapsnap_preload.so");
	c->tracking.module_idx = -1;
	c->tracking.sample_interval = interval;
	c->tracking.untracked_count = 3;
	c->tracking.untracked_bytes = 300;
	alloc(c, cs1, HS_AO_STACK, 100, 10);
	alloc(c, cs2, HS_AO_STACK, 200, 20);
	alloc(c, cs3, HS_AO_STACK, 5000, 2);
	alloc(c, -1, HS_AO_NO_STACK, 7, 3);
	alloc(c, -1, HS_AO_INTERNAL, 1000, 4);   /* the library's own: never shown */
	alloc(c, -1, HS_AO_UNSAMPLED, 64, 5);    /* sampling skipped: no weight of its own */
}

static snap *write_open(hs_capture *c, const char *path)
{
	char err[512];
	if (sw_write(c, path, err, sizeof err))
		fprintf(stderr, "%s\n", err);
	CHECK(!err[0]);
	hs_capture_free(c);
	snap *s;
	CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
	return s;
}

static const sites_row *row(const sites_result *r, const char *key)
{
	for (size_t i = 0; i < r->n_rows; i++)
		if (!strcmp(r->rows[i].key, key))
			return &r->rows[i];
	return NULL;
}

int main(void)
{
	(void)check_failures;
	char path[] = "/tmp/test_sites-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);

	CHECK(sites_is_library_module("/usr/lib/x86_64-linux-gnu/libc.so.6"));
	CHECK(sites_is_library_module("/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30"));
	CHECK(sites_is_library_module("/lib64/ld-linux-x86-64.so.2"));
	CHECK(sites_is_library_module("/x/libheapsnap_preload.so"));
	CHECK(!sites_is_library_module("/usr/lib/libcrypto.so.3"));
	CHECK(!sites_is_library_module(NULL));

	/* full tracking */
	hs_capture c;
	build(&c, 0, 1);
	snap *s = write_open(&c, path);
	sites_result r;
	CHECK_EQ(sites_load(s, SITES_BY_FUNCTION, &r, NULL), 0);
	CHECK_EQ(r.tracked, 1);
	CHECK_EQ(r.n_rows, 3);                 /* c_alloc, d_alloc, (no stack) */
	const sites_row *w = row(&r, "c_alloc");
	CHECK(w);
	CHECK_EQ(w->count, 30);
	CHECK_EQ(w->bytes, 10 * 100 + 20 * 200);
	CHECK(w->est_bytes == 5000.0);
	CHECK_STR(w->stack.f[w->site].function, "c_alloc");
	CHECK(w->site >= 1);                   /* libc frames skipped */
	CHECK_STR(w->stack.f[w->site + 1].function, "b_two");   /* the heavier stack */
	w = row(&r, "(no stack)");
	CHECK(w && w->count == 3 && w->bytes == 21 && w->site == -1 && w->stack.n == 0);
	CHECK_EQ(r.total_count, 30 + 2 + 3);
	CHECK_EQ(r.total_bytes, 5000 + 10000 + 21);
	CHECK_EQ(r.untracked_count, 3);
	CHECK_STR(r.rows[0].key, "d_alloc");   /* largest first */
	sites_free(&r);

	CHECK_EQ(sites_load(s, SITES_BY_SITE, &r, NULL), 0);
	CHECK(row(&r, "aabbccdd+0x1010") && row(&r, "aabbccdd+0x1010")->count == 30);
	sites_free(&r);
	CHECK_EQ(sites_load(s, SITES_BY_LINE, &r, NULL), 0);
	CHECK(row(&r, "/src/app.c:10") && row(&r, "/src/app.c:50")->bytes == 10000);
	sites_free(&r);
	CHECK_EQ(sites_load(s, SITES_BY_MODULE, &r, NULL), 0);
	CHECK(row(&r, "/usr/bin/app") && row(&r, "/usr/bin/app")->count == 32);
	sites_free(&r);
	CHECK_EQ(sites_load(s, SITES_BY_STACK, &r, NULL), 0);
	CHECK_EQ(r.n_rows, 4);
	for (size_t i = 0; i < r.n_rows; i++)
		if (r.rows[i].stack.n == 5)
			CHECK_EQ(r.rows[i].bytes, 1000);
	sites_free(&r);
	snap_close(s);

	/* sampled: weights 1/P(s), P(s) = 1 - exp(-s/R); s >= R counts for itself */
	const double R = 4096;
	build(&c, 4096, 1);
	s = write_open(&c, path);
	CHECK_EQ(sites_load(s, SITES_BY_FUNCTION, &r, NULL), 0);
	CHECK_EQ(r.sample_interval, 4096);
	w = row(&r, "c_alloc");
	double want = 10 * 100 / (1 - exp(-100 / R)) + 20 * 200 / (1 - exp(-200 / R));
	CHECK(fabs(w->est_bytes - want) < 1e-6 * want);
	CHECK_EQ(w->bytes, 5000);                  /* recorded, exact */
	w = row(&r, "d_alloc");
	CHECK(w->est_bytes == 10000.0 && w->est_count == 2.0);
	CHECK(fabs(sites_weight(64, 4096) - 1 / (1 - exp(-64 / R))) < 1e-9);
	CHECK(sites_weight(4096, 4096) == 1.0 && sites_weight(100, 0) == 1.0);
	sites_free(&r);
	snap_close(s);

	/* no tracking: no rows, tracked 0 */
	build(&c, 0, 0);
	s = write_open(&c, path);
	CHECK_EQ(sites_load(s, SITES_BY_SITE, &r, NULL), 0);
	CHECK_EQ(r.tracked, 0);
	CHECK_EQ(r.n_rows, 0);
	sites_free(&r);
	snap_close(s);
	unlink(path);
	printf("sites: grouping by site/function/line/module/stack, library frames skipped, "
	       "sampling weights, untracked snapshot\n");
	return 0;
}
