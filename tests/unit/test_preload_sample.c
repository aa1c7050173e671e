/* test_preload_sample.c -- Poisson byte sampling (HEAPSNAP_SAMPLE): over several runs
 * (seeds) the scaled estimate of each site of known size is within tolerance, and no
 * allocation of at least the interval is ever missed. Skips (77) without the library.
 *
 * Tolerances, for R = 16384 and 10 sites of 20000 x 64 bytes (p = 1 - e^(-64/R), about
 * 78 samples per site, so a relative standard deviation of about 11% per site and 3.6%
 * for the 10 sites of a run): each site within 50%, each run's total within 15%, and
 * the mean over 5 runs within 7% (all above 4 standard deviations). */
#include <math.h>

#include "test_preload_util.h"

#define R 16384
#define RUNS 5

int main(void)
{
	(void)check_failures;
	tp_setup();
	const char *own[] = { "fx_track_sample", NULL };
	char interval[32], seed[64], samp[64];
	snprintf(interval, sizeof interval, "%d", R);
	snprintf(samp, sizeof samp, "HEAPSNAP_SAMPLE=%d", R);
	const double p = 1 - exp(-64.0 / R), truth = 20000.0 * 64;
	double sum_all = 0;
	for (int run = 0; run < RUNS; run++) {
		const char *dump = tp_path("sample.dump");
		snprintf(seed, sizeof seed, "HEAPSNAP_SEED=%d", 1000 + run);
		const char *args[] = { dump, interval, NULL };
		const char *env[] = { "LD_PRELOAD", samp, seed, NULL };
		CHECK_EQ(tp_run("fx_track_sample", args, env, NULL, NULL, 30), 0);
		struct tp_dump d = tp_load(dump, own);
		CHECK_EQ(tp_header(&d, "sample"), R);
		double total = 0;
		for (int k = 0; k < 10; k++) {
			char key[32];
			long c, b;
			snprintf(key, sizeof key, "site%d<main", k);
			tp_sum(&d, key, &c, &b);
			CHECK_EQ(b, c * 64);
			double est = c * 64 / p;
			if (fabs(est - truth) > 0.5 * truth) {
				fprintf(stderr, "run %d %s: %ld samples, estimate %.0f vs %.0f\n", run, key, c, est, truth);
				tp_print(&d);
				return 1;
			}
			total += est;
		}
		CHECK(fabs(total - 10 * truth) < 0.15 * 10 * truth);
		sum_all += total;
		/* >= the interval: always recorded */
		EXPECT_SITE(&d, "big_site<main", 50, 50L * R);
		EXPECT_SITE(&d, "huge_site<main", 30, 30L * 100000);
		fprintf(stderr, "run %d: estimate %.0f of %.0f bytes (%+.1f%%)\n", run, total,
			10 * truth, 100 * (total / (10 * truth) - 1));
	}
	double mean = sum_all / RUNS;
	fprintf(stderr, "mean over %d runs: %+.2f%%\n", RUNS, 100 * (mean / (10 * truth) - 1));
	CHECK(fabs(mean - 10 * truth) < 0.07 * 10 * truth);

	/* without sampling the same fixture is exact */
	const char *dump = tp_path("full.dump");
	const char *args[] = { dump, interval, NULL };
	const char *env[] = { "LD_PRELOAD", NULL };
	CHECK_EQ(tp_run("fx_track_sample", args, env, NULL, NULL, 30), 0);
	struct tp_dump d = tp_load(dump, own);
	for (int k = 0; k < 10; k++) {
		char key[32];
		snprintf(key, sizeof key, "site%d<main", k);
		EXPECT_SITE(&d, key, 20000, 20000L * 64);
	}

	/* blocks the sampler skips have no header and are glibc's own: every API on them,
	 * all skipped (an interval of 10^12 bytes) and mixed (4096), with the same output
	 * as without the library (fx_track_skip checks itself) */
	char *o0 = tp_path("skip.out0"), *o1 = tp_path("skip.out1"), *o2 = tp_path("skip.out2");
	const char *all_skip[] = { "LD_PRELOAD", "HEAPSNAP_SAMPLE=1000000000000", NULL };
	const char *mixed[] = { "LD_PRELOAD", "HEAPSNAP_SAMPLE=4096", "HEAPSNAP_SEED=7", NULL };
	const char *a_all[] = { "1000000000000", NULL }, *a_mixed[] = { "4096", NULL };
	CHECK_EQ(tp_run("fx_track_skip", a_mixed, NULL, o0, NULL, 30), 0);
	CHECK_EQ(tp_run("fx_track_skip", a_all, all_skip, o1, NULL, 30), 0);
	CHECK_EQ(tp_run("fx_track_skip", a_mixed, mixed, o2, NULL, 30), 0);
	char *s0 = tp_slurp(o0), *s1 = tp_slurp(o1), *s2 = tp_slurp(o2);
	CHECK(strstr(s1, "all ok: 1") != NULL);
	CHECK_STR(s0, s1);
	CHECK_STR(s0, s2);
	tp_cleanup();
	return 0;
}
