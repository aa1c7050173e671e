/* big_graph.c -- benchmark target for the pointer graph (issue #4): N live blocks
 * (default 10 million, 24..56 bytes requested: 32..64-byte chunks) in the main arena,
 * each pointing at the next one (a 10M-long list from the global g_head) and at one
 * random earlier block: about 2N edges. Prints "ready" when built, then waits.
 * usage: big_graph [N]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct node {
	struct node *next, *other;
} node;

node *g_head;

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000000;
	uint64_t s = 0x9E3779B97F4A7C15ull;
	node **all = malloc((size_t)n * sizeof *all);   /* freed before waiting */
	if (!all)
		return 1;
	node *prev = NULL;
	for (long i = 0; i < n; i++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		node *b = malloc(24 + (s % 5) * 8);
		if (!b)
			return 1;
		b->next = NULL;
		b->other = i ? all[s % (uint64_t)i] : NULL;
		all[i] = b;
		if (prev)
			prev->next = b;
		else
			g_head = b;
		prev = b;
	}
	free(all);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
