/* big_heap.c -- benchmark target: about 4 million live chunks (about 600 MB) from two
 * threads (two arenas), with some frees so every free state exists, then it waits.
 * usage: big_heap [NCHUNKS]   (prints "ready" when built)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long n_total = 4000000;
static void **blocks[2];

static void *build(void *arg)
{
	long id = (long)arg, n = n_total / 2;
	uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
	void **b = blocks[id] = malloc(n * sizeof *b);
	for (long i = 0; i < n; i++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		size_t sz = 16 + s % 240;         /* mean request 136 B: chunk about 150 B */
		b[i] = malloc(sz);
		((volatile char *)b[i])[0] = 1;
		if (i % 3 == 0)
			*(void **)b[i] = b[i / 2];   /* some pointers between blocks */
	}
	for (long i = 0; i < n; i += 64) { /* a few holes: bins, tcache, fastbins */
		free(b[i]);
		b[i] = NULL;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		n_total = atol(argv[1]);
	pthread_t t;
	pthread_create(&t, NULL, build, (void *)1L);
	build((void *)0L);
	pthread_join(t, NULL);
	printf("ready pid %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
