/* test_dominators.c -- dom_build (analyze/dominators.c) against a brute force on random
 * graphs: d dominates v iff v is reachable from the super-root and unreachable once d is
 * removed. Exact equality of every idom and retained size on 1500 graphs (sparse, dense
 * cycles, deep chains, interior edges, self loops, unreachable and skipped chunks), then
 * a long linked list to prove there is no recursion (10M nodes; 1M under ASan). On graphs
 * without skipped chunks, ret_groups (retained.c) of every single chunk must equal its
 * retained size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "graph_fixture.h"
#include "dominators.h"
#include "retained.h"

#define NIL_NODE 0xffffffffu

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return bound ? (uint32_t)(rng_state % bound) : 0;
}

/* A graph from an edge list (src, dst with GRAPH_INTERIOR bit), random sizes. */
static void build(hs_graph *g, uint32_t n, const uint32_t *es, const uint32_t *ed, uint32_t m)
{
	tg_csr(g, n, es, ed, m);
	for (uint32_t i = 0; i < n; i++)
		g->size[i] = 16 + 16 * rnd(8);
}

/* reach[v] = 1 if v is reachable from the roots without passing through removed or skip */
static void brute_reach(const hs_graph *g, const uint32_t *roots, uint32_t nr,
			const uint8_t *skip, uint32_t removed, uint8_t *reach, uint32_t *queue)
{
	uint32_t head = 0, tail = 0;
	memset(reach, 0, g->n);
	for (uint32_t r = 0; r < nr; r++) {
		uint32_t t = GRAPH_NODE(roots[r]);
		if (t == removed || (skip && skip[t]) || reach[t])
			continue;
		reach[t] = 1;
		queue[tail++] = t;
	}
	while (head < tail) {
		uint32_t u = queue[head++];
		for (uint32_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++) {
			uint32_t t = GRAPH_NODE(g->edge_dst[e]);
			if (t == removed || (skip && skip[t]) || reach[t])
				continue;
			reach[t] = 1;
			queue[tail++] = t;
		}
	}
}

static void check_graph(const hs_graph *g, const uint32_t *roots, uint32_t nr, const uint8_t *skip)
{
	uint32_t n = g->n;
	uint8_t *all = malloc(n + 1), *without = malloc(n + 1);
	uint32_t *queue = malloc(4 * (n + 1));
	uint8_t *dom = calloc((size_t)n * n + 1, 1); /* dom[d*n+v]: d dominates v */
	uint32_t *depth = calloc(n + 1, 4);

	brute_reach(g, roots, nr, skip, NIL_NODE, all, queue);
	for (uint32_t d = 0; d < n; d++) {
		if (!all[d])
			continue;
		brute_reach(g, roots, nr, skip, d, without, queue);
		for (uint32_t v = 0; v < n; v++)
			if (all[v] && !without[v]) {
				dom[(size_t)d * n + v] = 1;
				depth[v]++;
			}
	}
	dom_tree t;
	CHECK_EQ(dom_build(g, roots, nr, skip, &t), 0);
	uint32_t reached = 0;
	uint64_t reached_bytes = 0;
	for (uint32_t v = 0; v < n; v++) {
		if (!all[v]) {
			CHECK_EQ(t.idom[v], DOM_NONE);
			CHECK_EQ(t.retained[v], 0);
			continue;
		}
		reached++;
		reached_bytes += g->size[v];
		/* idom: the strict dominator with the most dominators of its own */
		uint32_t idom = DOM_SUPER, best = 0;
		uint64_t retained = 0;
		for (uint32_t d = 0; d < n; d++) {
			if (d != v && dom[(size_t)d * n + v] && depth[d] > best) {
				best = depth[d];
				idom = d;
			}
			if (dom[(size_t)v * n + d])
				retained += g->size[d];
		}
		if (t.idom[v] != idom || t.retained[v] != retained)
			fprintf(stderr, "node %u of %u: idom %u want %u, retained %llu want %llu\n",
				v, n, t.idom[v], idom, (unsigned long long)t.retained[v],
				(unsigned long long)retained);
		CHECK_EQ(t.idom[v], idom);
		CHECK_EQ(t.retained[v], retained);
	}
	CHECK_EQ(t.reached, reached);
	CHECK_EQ(t.reached_bytes, reached_bytes);
	if (!skip && roots == g->root_dst && n <= 40) {
		uint32_t *group_of = malloc(4 * (n + 1));
		for (uint32_t v = 0; v < n; v++) {
			uint64_t b, c;
			for (uint32_t i = 0; i < n; i++)
				group_of[i] = i == v ? 0 : RET_NO_GROUP;
			CHECK_EQ(ret_groups(g, group_of, 1, &b, &c), 0);
			CHECK_EQ(b, t.retained[v]);
		}
		free(group_of);
	}

	/* dom_children: every reached node appears once, under its idom */
	uint32_t *cs, *cc;
	CHECK_EQ(dom_children(&t, &cs, &cc), 0);
	CHECK_EQ(cs[n + 1], reached);
	for (uint32_t p = 0; p <= n; p++)
		for (uint32_t i = cs[p]; i < cs[p + 1]; i++)
			CHECK_EQ(t.idom[cc[i]], p == n ? DOM_SUPER : p);
	free(cs);
	free(cc);
	dom_free(&t);
	free(all);
	free(without);
	free(queue);
	free(dom);
	free(depth);
}

static void random_graphs(void)
{
	uint32_t es[4096], ed[4096], roots[64];
	uint8_t skip[200];

	for (int iter = 0; iter < 1500; iter++) {
		uint32_t shape = iter % 6;
		uint32_t n = 1 + rnd(iter < 1000 ? 24 : 120), m = 0;
		switch (shape) {
		case 0: /* sparse random */
			for (uint32_t i = 0; i < n * 2 && m < 4096; i++, m++) {
				es[m] = rnd(n);
				ed[m] = rnd(n);
			}
			break;
		case 1: /* dense with cycles */
			for (uint32_t i = 0; i < n * 6 && m < 4096; i++, m++) {
				es[m] = rnd(n);
				ed[m] = rnd(n);
			}
			break;
		case 2: /* deep chain, a few back and skip edges */
			for (uint32_t i = 0; i + 1 < n; i++, m++) {
				es[m] = i;
				ed[m] = i + 1;
			}
			for (uint32_t i = 0; i < n / 4 + 1 && m < 4096; i++, m++) {
				es[m] = rnd(n);
				ed[m] = rnd(n);
			}
			break;
		case 3: /* a ring plus chords */
			for (uint32_t i = 0; i < n; i++, m++) {
				es[m] = i;
				ed[m] = (i + 1) % n;
			}
			for (uint32_t i = 0; i < n / 3; i++, m++) {
				es[m] = rnd(n);
				ed[m] = rnd(n);
			}
			break;
		case 4: /* a tree (or DAG) in reversed address order */
			for (uint32_t i = 1; i < n; i++, m++) {
				es[m] = n - 1 - rnd(i);
				ed[m] = n - 1 - i;
			}
			for (uint32_t i = 0; i < n / 5; i++, m++) {
				uint32_t a = rnd(n), b = rnd(n);
				es[m] = a > b ? a : b;
				ed[m] = a > b ? b : a;
			}
			break;
		default: /* self loops and duplicate edges */
			for (uint32_t i = 0; i < n * 3 && m < 4096; i++, m++) {
				es[m] = rnd(n);
				ed[m] = rnd(3) ? rnd(n) : es[m];
			}
			break;
		}
		for (uint32_t e = 0; e < m; e++)
			if (rnd(4) == 0)
				ed[e] |= GRAPH_INTERIOR;
		hs_graph g;
		build(&g, n, es, ed, m);
		uint32_t nr = rnd(5) + (shape == 2 ? 0 : 1);
		for (uint32_t r = 0; r < nr; r++)
			roots[r] = (shape == 2 && r == 0 ? 0 : rnd(n)) | (rnd(3) ? 0 : GRAPH_INTERIOR);
		g.n_roots = nr;
		g.root_dst = malloc(4 * (nr + 1));
		memcpy(g.root_dst, roots, 4 * nr);
		check_graph(&g, g.root_dst, nr, NULL);
		if (iter % 3 == 0) {
			for (uint32_t i = 0; i < n; i++)
				skip[i] = rnd(6) == 0;
			check_graph(&g, roots, nr, skip);
		}
		tg_release(&g);
	}
}

/* Known small answers, by hand. */
static void diamond(void)
{
	/* root -> 0; 0 -> 1, 0 -> 2; 1 -> 3; 2 -> 3; 3 -> 4 */
	uint32_t es[] = { 0, 0, 1, 2, 3 }, ed[] = { 1, 2, 3, 3, 4 }, roots[] = { 0 };
	hs_graph g;
	build(&g, 5, es, ed, 5);
	for (int i = 0; i < 5; i++)
		g.size[i] = 100u << i;
	dom_tree t;
	CHECK_EQ(dom_build(&g, roots, 1, NULL, &t), 0);
	CHECK_EQ(t.idom[0], DOM_SUPER);
	CHECK_EQ(t.idom[1], 0);
	CHECK_EQ(t.idom[2], 0);
	CHECK_EQ(t.idom[3], 0);
	CHECK_EQ(t.idom[4], 3);
	CHECK_EQ(t.retained[3], 800 + 1600);
	CHECK_EQ(t.retained[1], 200);
	CHECK_EQ(t.retained[0], 3100);
	dom_free(&t);
	tg_release(&g);
}

static void long_chain(uint32_t n, int reversed)
{
	hs_graph g;
	memset(&g, 0, sizeof g);
	g.n = n;
	g.m = n - 1;
	g.size = malloc(8ull * n);
	g.edge_start = malloc(4ull * (n + 1));
	g.edge_dst = malloc(4ull * n);
	for (uint32_t i = 0; i < n; i++) {
		g.size[i] = 32;
		g.edge_start[i] = reversed ? (i == 0 ? 0 : i - 1) : i;
		if (!reversed && i + 1 < n)
			g.edge_dst[i] = i + 1;
		if (reversed && i > 0)
			g.edge_dst[i - 1] = i - 1;
	}
	g.edge_start[n] = n - 1;
	uint32_t root = reversed ? n - 1 : 0;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	dom_tree t;
	CHECK_EQ(dom_build(&g, &root, 1, NULL, &t), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECK_EQ(t.reached, n);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t depth = reversed ? n - 1 - i : i;
		uint32_t want = depth == 0 ? DOM_SUPER : (reversed ? i + 1 : i - 1);
		if (t.idom[i] != want)
			CHECK_EQ(t.idom[i], want);
		if (t.retained[i] != 32ull * (n - depth))
			CHECK_EQ(t.retained[i], 32ull * (n - depth));
	}
	fprintf(stderr, "chain of %u (%s): %.2f s\n", n, reversed ? "reversed" : "forward",
		(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	dom_free(&t);
	free(g.size);
	free(g.edge_start);
	free(g.edge_dst);
}

static void empty(void)
{
	hs_graph g;
	uint32_t es[1] = { 0 }, ed[1] = { 0 }, roots[1] = { 0 };
	build(&g, 0, es, ed, 0);
	check_graph(&g, roots, 0, NULL);
	tg_release(&g);
	build(&g, 3, es, ed, 1); /* no roots: nothing reached */
	check_graph(&g, roots, 0, NULL);
	tg_release(&g);
}

int main(void)
{
	empty();
	diamond();
	random_graphs();
	uint32_t big = 10000000;
#if defined(__SANITIZE_ADDRESS__)
	big = 1000000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	big = 1000000;
#endif
#endif
	if (getenv("HEAPSNAP_TEST_CHAIN"))
		big = (uint32_t)strtoul(getenv("HEAPSNAP_TEST_CHAIN"), NULL, 0);
	long_chain(big, 0);
	long_chain(big, 1);
	return 0;
}
