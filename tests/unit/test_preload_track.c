/* test_preload_track.c -- the tracking library on fixtures with known call paths: exact
 * blocks and bytes per site (by function chain and by file:line), C++ new/delete and
 * exceptions, realloc, every aligned kind and malloc_usable_size, threads, fork,
 * dlopen/dlclose, unknown pointers, identical program output, and HEAPSNAP_CHECK
 * (every fast stack equal to libunwind's). Skips (77) when the library is not built. */
#include "test_preload_util.h"

static const char *const PRE[] = { "LD_PRELOAD", "HEAPSNAP_CHECK=1", NULL };
static const char *const PRE_FAST[] = { "LD_PRELOAD", NULL };

static void check_stats(const struct tp_dump *d)
{
	CHECK_EQ(tp_header(d, "mismatch"), 0);
	CHECK(tp_header(d, "checked") > 0);
}

/* site file:line printed by the fixture ("site NAME FILE:LINE") vs the dump's */
static void check_lines(const struct tp_dump *d, const char *err, const char *fn)
{
	char want[512] = "", pat[128];
	snprintf(pat, sizeof pat, "site %s ", fn);
	const char *p = strstr(err, pat);
	CHECK(p != NULL);
	sscanf(p + strlen(pat), "%511s", want);
	int seen = 0;
	for (int i = 0; i < d->n; i++) {
		if (strncmp(d->l[i].key, fn, strlen(fn)) || d->l[i].key[strlen(fn)] != '<')
			continue;
		CHECK(d->l[i].site != NULL);
		CHECK_STR(d->l[i].site, want);
		seen++;
	}
	CHECK(seen > 0);
}

static void test_calls(void)
{
	const char *dump = tp_path("calls.dump");
	const char *args[] = { dump, NULL };
	char *o1 = tp_path("calls.out1"), *o2 = tp_path("calls.out2"), *e2 = tp_path("calls.err");
	CHECK_EQ(tp_run("fx_track_calls", NULL, NULL, o1, NULL, 30), 0);
	CHECK_EQ(tp_run("fx_track_calls", args, PRE, o2, e2, 30), 0);
	char *s1 = tp_slurp(o1), *s2 = tp_slurp(o2), *err = tp_slurp(e2);
	CHECK_STR(s1, s2);                              /* same output with and without */
	CHECK(strstr(s2, "realloc moved: 1") != NULL);
	CHECK(strstr(s2, "all ok: 1") != NULL);
	const char *own[] = { "fx_track_calls", NULL };
	struct tp_dump d = tp_load(dump, own);
	check_stats(&d);
	EXPECT_SITE(&d, "c_alloc<b_one<a_path<main", 10, 1000);
	EXPECT_SITE(&d, "c_alloc<b_two<a_path<main", 20, 4000);
	EXPECT_SITE(&d, "calloc_site<main", 5, 750);
	EXPECT_SITE(&d, "realloc_grow<main", 1, 1 << 22);
	EXPECT_SITE(&d, "rarray_site<main", 1, 480);
	EXPECT_SITE(&d, "al_memalign<main", 1, 100);
	EXPECT_SITE(&d, "al_posix<main", 1, 200);
	EXPECT_SITE(&d, "al_aligned<main", 1, 512);
	EXPECT_SITE(&d, "al_valloc<main", 1, 300);
	EXPECT_SITE(&d, "al_pvalloc<main", 1, 5000);
	EXPECT_SITE(&d, "t_alloc<thread_main", 21, 693);
	EXPECT_SITE(&d, "freed_site<main", 0, 0);
	EXPECT_SITE(&d, "x_alloc<xthread_main", 0, 0);
	CHECK(tp_header(&d, "foreign") >= 2);
	for (const char *const *f = (const char *const[]){ "c_alloc", "calloc_site", "realloc_grow",
		"rarray_site", "al_memalign", "al_posix", "al_aligned", "al_valloc", "al_pvalloc",
		"t_alloc", NULL }; *f; f++)
		check_lines(&d, err, *f);
	/* the same without HEAPSNAP_CHECK: memo and walk paths only */
	CHECK_EQ(tp_run("fx_track_calls", args, PRE_FAST, NULL, NULL, 30), 0);
	struct tp_dump d2 = tp_load(dump, own);
	EXPECT_SITE(&d2, "c_alloc<b_two<a_path<main", 20, 4000);
	EXPECT_SITE(&d2, "t_alloc<thread_main", 21, 693);
	CHECK(tp_header(&d2, "memo") > 0);
	fprintf(stderr, "calls: ok\n");
}

static void test_cxx(void)
{
	const char *dump = tp_path("cxx.dump");
	const char *args[] = { dump, NULL };
	char *o1 = tp_path("cxx.out1"), *o2 = tp_path("cxx.out2");
	CHECK_EQ(tp_run("fx_track_cxx", NULL, NULL, o1, NULL, 30), 0);
	CHECK_EQ(tp_run("fx_track_cxx", args, PRE, o2, NULL, 30), 0);
	CHECK_STR(tp_slurp(o1), tp_slurp(o2));
	CHECK(strstr(tp_slurp(o2), "caught 200 aligned 1") != NULL);
	const char *own[] = { "fx_track_cxx", NULL };
	struct tp_dump d = tp_load(dump, own);
	check_stats(&d);
	EXPECT_SITE(&d, "cx_new<main", 4, 400);
	EXPECT_SITE(&d, "cx_obj<main", 3, 144);
	EXPECT_SITE(&d, "cx_aligned<main", 2, 512);
	EXPECT_SITE(&d, "cx_survivor<cx_mid<main", 200, 4800);
	EXPECT_SITE(&d, "cx_throw<cx_mid<main", 0, 0);
	fprintf(stderr, "cxx: ok\n");
}

static void test_fork(void)
{
	const char *dump = tp_path("fork.dump");
	const char *args[] = { dump, NULL };
	char *o = tp_path("fork.out");
	CHECK_EQ(tp_run("fx_track_fork", args, PRE_FAST, o, NULL, 30), 0);
	CHECK(strstr(tp_slurp(o), "fork ok") != NULL);
	const char *own[] = { "fx_track_fork", NULL };
	char p[4400];
	snprintf(p, sizeof p, "%s.parent", dump);
	struct tp_dump dp = tp_load(p, own);
	EXPECT_SITE(&dp, "p_alloc<main", 3, 120);
	EXPECT_SITE(&dp, "c_alloc<child_work<main", 0, 0);
	snprintf(p, sizeof p, "%s.child", dump);
	struct tp_dump dc = tp_load(p, own);
	EXPECT_SITE(&dc, "p_alloc<main", 2, 80);
	EXPECT_SITE(&dc, "c_alloc<child_work<main", 4, 200);
	CHECK(tp_header(&dc, "pid") != tp_header(&dp, "pid"));
	fprintf(stderr, "fork: ok\n");
}

static void test_dl(void)
{
	const char *dump = tp_path("dl.dump");
	char plugin[4400];
	snprintf(plugin, sizeof plugin, "%s/fx_track_plugin.so", g_fx);
	const char *args[] = { dump, plugin, NULL };
	CHECK_EQ(tp_run("fx_track_dl", args, PRE, NULL, NULL, 30), 0);
	const char *own[] = { "fx_track_dl", "fx_track_plugin", NULL };
	char p[4400];
	snprintf(p, sizeof p, "%s.1", dump);
	struct tp_dump d1 = tp_load(p, own);
	check_stats(&d1);
	EXPECT_SITE(&d1, "pre_dl<main", 2, 48);
	EXPECT_SITE(&d1, "pl_inner<pl_outer<main", 3, 120);
	snprintf(p, sizeof p, "%s.2", dump);
	struct tp_dump d2 = tp_load(p, own);
	check_stats(&d2);
	EXPECT_SITE(&d2, "pre_dl<main", 2, 48);
	EXPECT_SITE(&d2, "pl_inner<pl_outer<main", 4, 161);  /* named through the unload table */
	EXPECT_SITE(&d2, "post_dl<main", 2, 112);
	CHECK(tp_header(&d2, "unloads") >= 2);
	fprintf(stderr, "dl: ok\n");
}

static void test_memo_check(void)
{
	/* every memo hit and every walk compared with libunwind: no difference allowed */
	const char *fx[] = { "fx_track_memo", "fx_track_memo_nofp" };
	for (int i = 0; i < 2; i++) {
		const char *dump = tp_path("memo.dump");
		const char *args[] = { dump, "40000", NULL };
		CHECK_EQ(tp_run(fx[i], args, PRE, NULL, NULL, 60), 0);
		struct tp_dump d = tp_load(dump, NULL);
		check_stats(&d);
		CHECK(tp_header(&d, "memo") > 1000);
		CHECK(tp_header(&d, "walk") > 10);
		fprintf(stderr, "%s: checked %ld memo %ld walk %ld fallback %ld: ok\n", fx[i],
			tp_header(&d, "checked"), tp_header(&d, "memo"), tp_header(&d, "walk"),
			tp_header(&d, "fallback"));
	}
}

int main(int argc, char **argv)
{
	(void)check_failures;
	tp_setup();
	const char *only = argc > 1 ? argv[1] : NULL;
	if (!only || !strcmp(only, "calls"))
		test_calls();
	if (!only || !strcmp(only, "cxx"))
		test_cxx();
	if (!only || !strcmp(only, "fork"))
		test_fork();
	if (!only || !strcmp(only, "dl"))
		test_dl();
	if (!only || !strcmp(only, "memo"))
		test_memo_check();
	tp_cleanup();
	return 0;
}
