/* track_live.c -- memory cost of tracking per live allocation: THREADS threads build a
 * live set of N blocks between them (sizes 16..512 as in malloc-bench, from a few call
 * sites), and while it is all live the process prints its own memory from
 * /proc/self/smaps_rollup: "rss_kb pss_kb private_dirty_kb". Private_Dirty is the memory
 * the process alone consumes (heap, anonymous, written data); RSS also counts the
 * pages of shared libraries' code it maps, which sit in the page cache for every
 * process. Run it with and without the library; bench/track_bench.sh does.
 * usage: track_live N [THREADS] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long g_per;
static pthread_barrier_t g_built, g_measured;

__attribute__((noinline)) static void *site(int k, size_t n)
{
	void *p = k ? site(k - 1, n) : malloc(n);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

static void *build(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	void **v = calloc((size_t)g_per, sizeof *v);
	for (long i = 0; i < g_per; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		v[i] = site((int)(i & 7), 16 + s % 497);
		((volatile char *)v[i])[0] = 1;
	}
	pthread_barrier_wait(&g_built);
	pthread_barrier_wait(&g_measured);
	return v;
}

static long rollup(const char *key, const char *text)
{
	const char *p = strstr(text, key);
	return p ? atol(p + strlen(key)) : -1;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	int nt = argc > 2 ? atoi(argv[2]) : 1;
	if (nt < 1 || nt > 64 || n < 0)
		return 2;
	g_per = n / nt;
	pthread_t th[64];
	pthread_barrier_init(&g_built, NULL, (unsigned)nt + 1);
	pthread_barrier_init(&g_measured, NULL, (unsigned)nt + 1);
	for (int i = 0; i < nt; i++)
		pthread_create(&th[i], NULL, build, (void *)(uintptr_t)i);
	pthread_barrier_wait(&g_built);
	static char text[8192];
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
	text[len] = 0;
	if (f)
		fclose(f);
	printf("%ld %ld %ld\n", rollup("\nRss:", text), rollup("\nPss:", text),
	       rollup("\nPrivate_Dirty:", text));
	pthread_barrier_wait(&g_measured);
	for (int i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	return 0;
}
