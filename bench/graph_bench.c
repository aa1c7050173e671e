/* graph_bench.c -- retention analysis at scale (issue #4): builds a synthetic pointer
 * graph in memory (default 10 million chunks, about 2 edges each) and times dominators +
 * retained sizes, the leak classification and one path query, with peak RSS per chunk.
 *
 * Shape: chunk i gets a "tree" edge from a chunk up to 4096 before it (address
 * locality, like a list or tree built in allocation order) and one random cross edge
 * (20% interior). 1000 global roots. The last 5% of chunks form a leaked region: their
 * tree edges stay inside it and nothing outside points into it.
 *
 * With --file SNAP, the graph comes from a snapshot instead (graph_load, timed too): the
 * phases of `heapsnap dominators` and `leaks` without their printing.
 *
 * usage: graph_bench [CHUNKS]          figures go to bench/README.md by hand
 *        graph_bench --file SNAP
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "dominators.h"
#include "leaks.h"
#include "paths.h"
#include "snapshot.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint32_t rnd(uint32_t bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % bound);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double maxrss_bytes(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss * 1024.0;
}

/* CSR built in source order: chunk u's edges are its tree children and its cross edge. */
static void build(hs_graph *g, uint32_t n)
{
	uint32_t leak_from = n - n / 20;
	uint32_t *parent = malloc((size_t)n * sizeof *parent);

	memset(g, 0, sizeof *g);
	g->n = n;
	g->addr = malloc((size_t)n * 8);
	g->size = malloc((size_t)n * 8);
	g->edge_start = calloc((size_t)n + 1, 4);
	for (uint32_t i = 0; i < n; i++) {
		g->addr[i] = 0x10000000ull + 64ull * i;
		g->size[i] = 32 + 16 * rnd(4);
		uint32_t lo = i >= leak_from ? leak_from : 0;
		parent[i] = i > lo ? i - 1 - rnd(i - lo < 4096 ? i - lo : 4096) : i;
		if (parent[i] != i)
			g->edge_start[parent[i] + 1]++;
		g->edge_start[i + 1]++; /* cross edge */
	}
	for (uint32_t i = 0; i < n; i++)
		g->edge_start[i + 1] += g->edge_start[i];
	g->m = g->edge_start[n];
	g->edge_dst = malloc((size_t)g->m * 4);
	uint32_t *fill = parent; /* reuse: parent[i] is read before fill overwrites it */
	/* place tree edges from the end of each range, cross edge first */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t lo = i >= leak_from ? leak_from : 0;
		uint32_t t = i >= leak_from ? rnd(n) : rnd(leak_from);
		(void)lo;
		g->edge_dst[g->edge_start[i]] = t | (rnd(5) == 0 ? GRAPH_INTERIOR : 0);
	}
	uint32_t *cur = malloc((size_t)n * 4);
	for (uint32_t i = 0; i < n; i++)
		cur[i] = g->edge_start[i] + 1;
	for (uint32_t i = 0; i < n; i++)
		if (fill[i] != i)
			g->edge_dst[cur[fill[i]]++] = i;
	free(cur);
	free(parent);
	g->n_roots = 1000;
	g->root_dst = malloc(g->n_roots * 4);
	g->root_kind = malloc(g->n_roots);
	g->root_dst[0] = 0;
	g->root_kind[0] = GRAPH_ROOT_GLOBAL;
	for (uint32_t r = 1; r < g->n_roots; r++) {
		g->root_dst[r] = rnd(leak_from);
		g->root_kind[r] = (uint8_t)rnd(GRAPH_ROOT_KIND_COUNT);
	}
}

int main(int argc, char **argv)
{
	uint32_t n;
	hs_graph g;
	double t0 = now();
	if (argc > 2 && !strcmp(argv[1], "--file")) {
		snap *s;
		char err[512];
		if (snap_open(argv[2], &s, err, sizeof err) != 0) {
			fprintf(stderr, "%s\n", err);
			return 2;
		}
		if (graph_load(s, &g, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		snap_close(s);
		n = g.n ? g.n : 1;
	} else {
		n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 10000000;
		build(&g, n);
	}
	double t1 = now(), rss_graph = maxrss_bytes();
	printf("graph: %u chunks, %u edges, %u roots, %s in %.2f s, peak RSS %.1f B/chunk\n",
	       g.n, g.m, g.n_roots, argc > 2 ? "loaded" : "built", t1 - t0, rss_graph / n);

	dom_tree t;
	if (dom_build_graph(&g, &t) < 0) {
		perror("dom_build");
		return 1;
	}
	double t2 = now();
	uint64_t top = 0;
	for (uint32_t i = 0; i < n; i++)
		if (t.idom[i] == DOM_SUPER && t.retained[i] > top)
			top = t.retained[i];
	printf("dominators + retained: %.2f s; reached %u chunks, %llu bytes; largest "
	       "root-level retained %llu bytes; peak RSS %.1f B/chunk\n", t2 - t1, t.reached,
	       (unsigned long long)t.reached_bytes, (unsigned long long)top, maxrss_bytes() / n);
	dom_free(&t);

	leak_report lr;
	double t3 = now();
	if (leak_classify(&g, &lr) < 0) {
		perror("leak_classify");
		return 1;
	}
	double t4 = now();
	printf("leaks: %.2f s; definite %llu, indirect %llu, possible %llu, reachable %llu "
	       "chunks; %u leak roots; peak RSS %.1f B/chunk\n", t4 - t3,
	       (unsigned long long)lr.count[LEAK_DEFINITE],
	       (unsigned long long)lr.count[LEAK_INDIRECT],
	       (unsigned long long)lr.count[LEAK_POSSIBLE],
	       (unsigned long long)lr.count[LEAK_REACHABLE], lr.n_roots, maxrss_bytes() / n);
	leak_free(&lr);

	path_set ps;
	double t5 = now();
	if (path_find(&g, n / 2, 1, &ps) < 0) {
		perror("path_find");
		return 1;
	}
	double t6 = now();
	printf("path to chunk %u: %.2f s, %u hops\n", n / 2, t6 - t5,
	       ps.n_paths ? ps.paths[0].len - 1 : 0);
	path_free(&ps);
	printf("total dominators + retained + leaks: %.2f s; peak RSS %.1f B/chunk "
	       "(graph alone %.1f)\n", (t2 - t1) + (t4 - t3), maxrss_bytes() / n, rss_graph / n);
	graph_free(&g);
	return 0;
}
