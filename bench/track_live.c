/* track_live.c -- memory cost of tracking per live allocation: builds a live set of N
 * blocks (sizes 16..512 as in malloc-bench, from a few call sites), then exits; run it
 * under /usr/bin/time for the max RSS. usage: track_live N */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void *site(int k, size_t n)
{
	void *p = k ? site(k - 1, n) : malloc(n);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	void **v = calloc((size_t)n, sizeof *v);
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (long i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		v[i] = site((int)(i & 7), 16 + s % 497);
		((volatile char *)v[i])[0] = 1;
	}
	printf("%ld\n", n);
	return 0;
}
