/* test_root_groups.c -- ret_root_groups (analyze/retained.c): the precise retained size of
 * groups of root edges, against a brute force on random graphs: remove the group's root
 * edges, and what is no longer reachable from the remaining roots is what the group
 * retains. Also a hand-built case (a chunk shared by two groups is retained by neither;
 * a diamond under one group's two roots is that group's), checks that the graph comes
 * back unchanged, and a long chain (no recursion). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "graph_fixture.h"
#include "retained.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t rnd(uint32_t bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return bound ? (uint32_t)(rng_state % bound) : 0;
}

/* CSR from an edge list (ed may carry GRAPH_INTERIOR); sizes random unless given */
static void build(hs_graph *g, uint32_t n, const uint32_t *es, const uint32_t *ed, uint32_t m,
		  const uint64_t *size)
{
	tg_csr(g, n, es, ed, m);
	for (uint32_t i = 0; i < n; i++)
		g->size[i] = size ? size[i] : 16 + 16 * rnd(8);
}

static void set_roots(hs_graph *g, const uint32_t *dst, uint32_t nr)
{
	g->n_roots = nr;
	g->root_dst = malloc((nr + 1) * 4);
	g->root_kind = calloc(nr + 1, 1);
	CHECK(g->root_dst && g->root_kind);
	if (nr)
		memcpy(g->root_dst, dst, nr * 4);
}

/* reach[v]: v is reachable from the root edges whose group is not `removed` */
static void brute_reach(const hs_graph *g, const uint32_t *group_of, uint32_t removed,
			uint8_t *reach, uint32_t *queue)
{
	uint32_t head = 0, tail = 0;
	memset(reach, 0, g->n);
	for (uint32_t r = 0; r < g->n_roots; r++) {
		uint32_t t = GRAPH_NODE(g->root_dst[r]);
		if ((removed != RET_NO_GROUP && group_of[r] == removed) || reach[t])
			continue;
		reach[t] = 1;
		queue[tail++] = t;
	}
	while (head < tail) {
		uint32_t u = queue[head++];
		for (uint32_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++) {
			uint32_t t = GRAPH_NODE(g->edge_dst[e]);
			if (!reach[t]) {
				reach[t] = 1;
				queue[tail++] = t;
			}
		}
	}
}

/* ret_root_groups == brute force for every group, and g unchanged afterwards */
static void check_graph(hs_graph *g, const uint32_t *group_of, uint32_t ng)
{
	uint32_t n = g->n, m = g->m;
	uint64_t *bytes = calloc(ng + 1, 8), *count = calloc(ng + 1, 8);
	uint8_t *all = malloc(n + 1), *without = malloc(n + 1);
	uint32_t *queue = malloc((n + 1) * 4);
	uint32_t *es = malloc((n + 1) * 4), *ed = malloc((m + 1) * 4);
	uint64_t *sz = malloc((n + 1) * 8);
	CHECK(bytes && count && all && without && queue && es && ed && sz);
	memcpy(es, g->edge_start, (n + 1) * 4);
	memcpy(ed, g->edge_dst, m * 4);
	memcpy(sz, g->size, n * 8);

	CHECK_EQ(ret_root_groups(g, group_of, ng, bytes, count), 0);
	CHECK_EQ(g->n, n);
	CHECK_EQ(g->m, m);
	CHECK(!memcmp(es, g->edge_start, (n + 1) * 4));
	CHECK(!memcmp(ed, g->edge_dst, m * 4));
	CHECK(!memcmp(sz, g->size, n * 8));

	brute_reach(g, group_of, RET_NO_GROUP, all, queue);
	for (uint32_t gi = 0; gi < ng; gi++) {
		uint64_t want_b = 0, want_c = 0;
		brute_reach(g, group_of, gi, without, queue);
		for (uint32_t i = 0; i < n; i++)
			if (all[i] && !without[i]) {
				want_b += g->size[i];
				want_c++;
			}
		CHECK_EQ(bytes[gi], want_b);
		CHECK_EQ(count[gi], want_c);
	}
	free(bytes);
	free(count);
	free(all);
	free(without);
	free(queue);
	free(es);
	free(ed);
	free(sz);
}

/* Chunks: 0 A, 1 B, 2 S (A -> S, B -> S), 3 C, 4 D, 5 E (C -> E, D -> E), 6 F, 7 G (F -> G).
 * Roots: group 0 -> A and -> G; group 1 -> B; group 2 -> C and -> D; ungrouped -> F.
 * Group 0 retains A (S is shared with group 1, G is also held through F): 100 bytes.
 * Group 1 retains B: 1000. Group 2 retains C, D and the diamond's E: 10000 + 20000 + 40000.
 * Group 3 has no roots: nothing. */
static void test_hand(void)
{
	static const uint32_t es[] = { 0, 1, 3, 4, 6 }, ed[] = { 2, 2, 5, 5 | GRAPH_INTERIOR, 7 };
	static const uint64_t size[] = { 100, 1000, 5, 10000, 20000, 40000, 7, 9 };
	static const uint32_t roots[] = { 0, 7, 1, 3 | GRAPH_INTERIOR, 4, 6 };
	static const uint32_t group_of[] = { 0, 0, 1, 2, 2, RET_NO_GROUP };
	hs_graph g;
	uint64_t bytes[4], count[4];

	build(&g, 8, es, ed, 5, size);
	set_roots(&g, roots, 6);
	CHECK_EQ(ret_root_groups(&g, group_of, 4, bytes, count), 0);
	CHECK_EQ(bytes[0], 100);
	CHECK_EQ(count[0], 1);
	CHECK_EQ(bytes[1], 1000);
	CHECK_EQ(count[1], 1);
	CHECK_EQ(bytes[2], 70000);
	CHECK_EQ(count[2], 3);
	CHECK_EQ(bytes[3], 0);
	CHECK_EQ(count[3], 0);
	check_graph(&g, group_of, 4);
	tg_release(&g);
}

static void test_random(void)
{
	for (int round = 0; round < 3000; round++) {
		uint32_t n = 1 + rnd(round < 2000 ? 12 : 60);
		uint32_t shape = rnd(4), m = 0, cap = n * 4 + 4;
		uint32_t *es = malloc(cap * 4), *ed = malloc(cap * 4);
		CHECK(es && ed);
		if (shape == 0) {           /* a chain with a few shortcuts */
			for (uint32_t i = 0; i + 1 < n; i++) {
				es[m] = i;
				ed[m++] = i + 1;
			}
			for (uint32_t k = rnd(3); k-- > 0 && m < cap;) {
				es[m] = rnd(n);
				ed[m++] = rnd(n);
			}
		} else {                    /* sparse to dense, cycles and self loops included */
			uint32_t want = rnd(shape == 3 ? cap : n + 2);
			while (m < want) {
				es[m] = rnd(n);
				ed[m++] = rnd(n) | (rnd(4) ? 0 : GRAPH_INTERIOR);
			}
		}
		hs_graph g;
		build(&g, n, es, ed, m, NULL);
		uint32_t nr = rnd(8), ng = 1 + rnd(4);
		uint32_t *roots = malloc((nr + 1) * 4), *group_of = malloc((nr + 1) * 4);
		CHECK(roots && group_of);
		for (uint32_t r = 0; r < nr; r++) {
			roots[r] = rnd(n) | (rnd(3) ? 0 : GRAPH_INTERIOR);
			group_of[r] = rnd(5) ? rnd(ng) : RET_NO_GROUP;
		}
		set_roots(&g, roots, nr);
		check_graph(&g, group_of, ng);
		tg_release(&g);
		free(roots);
		free(group_of);
		free(es);
		free(ed);
	}
}

/* a 2M-link list under one group root, a second group holding its middle */
static void test_chain(void)
{
	uint32_t n = 2000000;
	uint32_t *es = malloc(n * 4), *ed = malloc(n * 4);
	CHECK(es && ed);
	for (uint32_t i = 0; i + 1 < n; i++) {
		es[i] = i;
		ed[i] = i + 1;
	}
	hs_graph g;
	uint64_t *size = malloc(n * 8);
	CHECK(size);
	for (uint32_t i = 0; i < n; i++)
		size[i] = 32;
	build(&g, n, es, ed, n - 1, size);
	uint32_t roots[] = { 0, n / 2 }, group_of[] = { 0, 1 };
	set_roots(&g, roots, 2);
	uint64_t bytes[2], count[2];
	CHECK_EQ(ret_root_groups(&g, group_of, 2, bytes, count), 0);
	CHECK_EQ(count[0], n / 2);
	CHECK_EQ(bytes[0], 32ull * (n / 2));
	CHECK_EQ(count[1], 0);       /* the second half is reachable from group 0 too */
	tg_release(&g);
	free(size);
	free(es);
	free(ed);
}

int main(void)
{
	test_hand();
	test_random();
	test_chain();
	printf("ok: root groups = brute force\n");
	return 0;
}
