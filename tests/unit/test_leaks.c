/* test_leaks.c -- leak_classify (analyze/leaks.c) and dominators on one hand-built heap
 * holding every shape of issue #4, with answers worked out by hand from memcheck's rules:
 * a tree under a global, a list held by a stack slot, a reachable cycle, a leaked cycle,
 * a diamond shared by two roots, a leaked subtree, chunks reached only through interior
 * pointers, memcheck's clique order effects, and a possible chunk upgraded to reachable.
 * Also the exact retained size of groups (retained.c) on the same heap. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dominators.h"
#include "leaks.h"
#include "retained.h"

#define N 28
#define I GRAPH_INTERIOR

static const uint32_t edges[][2] = {
	{ 0, 1 }, { 0, 2 },             /* tree under a global: 0 -> 1, 2 */
	{ 3, 4 }, { 4, 5 },             /* list held by a stack slot: 3 -> 4 -> 5 */
	{ 6, 7 }, { 7, 6 },             /* reachable cycle */
	{ 8, 9 }, { 9, 8 },             /* leaked cycle: 8 definite, 9 indirect */
	{ 10, 12 }, { 11, 12 }, { 12, 13 }, /* diamond under two roots */
	{ 14, 15 }, { 14, 16 }, { 16, 17 | I }, /* leaked subtree (interior hop still claims) */
	{ 18, 19 | I }, { 19, 20 },     /* 19 by interior pointer, 20 from a possible chunk */
	{ 22, 23 }, { 23, 22 }, { 24, 23 }, /* 23 claimed by 22 first: 24 stays alone */
	{ 26, 25 },                     /* 25 leads first, then joins 26's clique */
	{ 18, 27 },                     /* 27: interior root, but a start pointer from 18 */
};

static const uint32_t roots[] = { 0, 3, 6, 10, 11, 18, 21 | I, 27 | I };

static void build(hs_graph *g)
{
	uint32_t m = sizeof edges / sizeof *edges;
	memset(g, 0, sizeof *g);
	g->n = N;
	g->m = m;
	g->addr = calloc(N, 8);
	g->size = calloc(N, 8);
	g->edge_start = calloc(N + 1, 4);
	g->edge_dst = calloc(m, 4);
	for (uint32_t i = 0; i < N; i++) {
		g->addr[i] = 0x10000 + 0x1000 * i;
		g->size[i] = 16 * (i + 1);
	}
	for (uint32_t e = 0; e < m; e++)
		g->edge_start[edges[e][0] + 1]++;
	for (uint32_t i = 0; i < N; i++)
		g->edge_start[i + 1] += g->edge_start[i];
	uint32_t fill[N] = { 0 };
	for (uint32_t e = 0; e < m; e++)
		g->edge_dst[g->edge_start[edges[e][0]] + fill[edges[e][0]]++] = edges[e][1];
	g->n_roots = sizeof roots / sizeof *roots;
	g->root_dst = malloc(sizeof roots);
	memcpy(g->root_dst, roots, sizeof roots);
	g->root_kind = calloc(g->n_roots, 1);
}

static uint64_t sz(uint32_t i)
{
	return 16 * (i + 1);
}

static void leaks(const hs_graph *g)
{
	static const uint8_t want[N] = {
		[0] = LEAK_REACHABLE, [1] = LEAK_REACHABLE, [2] = LEAK_REACHABLE,
		[3] = LEAK_REACHABLE, [4] = LEAK_REACHABLE, [5] = LEAK_REACHABLE,
		[6] = LEAK_REACHABLE, [7] = LEAK_REACHABLE,
		[8] = LEAK_DEFINITE, [9] = LEAK_INDIRECT,
		[10] = LEAK_REACHABLE, [11] = LEAK_REACHABLE, [12] = LEAK_REACHABLE,
		[13] = LEAK_REACHABLE,
		[14] = LEAK_DEFINITE, [15] = LEAK_INDIRECT, [16] = LEAK_INDIRECT,
		[17] = LEAK_INDIRECT,
		[18] = LEAK_REACHABLE, [19] = LEAK_POSSIBLE, [20] = LEAK_POSSIBLE,
		[21] = LEAK_POSSIBLE,
		[22] = LEAK_DEFINITE, [23] = LEAK_INDIRECT, [24] = LEAK_DEFINITE,
		[25] = LEAK_INDIRECT, [26] = LEAK_DEFINITE,
		[27] = LEAK_REACHABLE,
	};
	leak_report r;
	CHECK_EQ(leak_classify(g, &r), 0);
	uint64_t count[LEAK_KIND_COUNT] = { 0 }, bytes[LEAK_KIND_COUNT] = { 0 };
	for (uint32_t i = 0; i < N; i++) {
		if (r.kind[i] != want[i])
			fprintf(stderr, "chunk %u\n", i);
		CHECK_EQ(r.kind[i], want[i]);
		count[want[i]]++;
		bytes[want[i]] += sz(i);
	}
	for (int k = 0; k < LEAK_KIND_COUNT; k++) {
		CHECK_EQ(r.count[k], count[k]);
		CHECK_EQ(r.bytes[k], bytes[k]);
	}
	CHECK_EQ(r.count[LEAK_DEFINITE], 5);
	CHECK_EQ(r.count[LEAK_INDIRECT], 6);
	CHECK_EQ(r.count[LEAK_POSSIBLE], 3);
	/* leak roots, largest first: 14 (14..17: 1056 B), 26 (26, 25: 848 B), 22 (22, 23:
	 * 752 B), 24 (alone: 400 B), 8 (8, 9: 304 B) */
	static const uint32_t want_node[] = { 14, 26, 22, 24, 8 };
	static const uint32_t want_blocks[] = { 4, 2, 2, 1, 2 };
	static const uint64_t want_bytes[] = { 1056, 848, 752, 400, 304 };
	CHECK_EQ(r.n_roots, 5);
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(r.roots[i].node, want_node[i]);
		CHECK_EQ(r.roots[i].blocks, want_blocks[i]);
		CHECK_EQ(r.roots[i].bytes, want_bytes[i]);
	}
	CHECK_EQ(sz(14) + sz(15) + sz(16) + sz(17), 1056);
	leak_free(&r);
	CHECK_STR(leak_kind_key(LEAK_DEFINITE), "definitely_lost");
	CHECK_STR(leak_kind_name(LEAK_POSSIBLE), "possibly lost");
}

static void dominators(const hs_graph *g)
{
	dom_tree t;
	CHECK_EQ(dom_build_graph(g, &t), 0);
	CHECK_EQ(t.retained[0], sz(0) + sz(1) + sz(2));
	CHECK_EQ(t.retained[3], sz(3) + sz(4) + sz(5));
	CHECK_EQ(t.idom[5], 4);
	CHECK_EQ(t.retained[6], sz(6) + sz(7));
	CHECK_EQ(t.idom[7], 6);
	/* the diamond's shared part is retained by neither root */
	CHECK_EQ(t.retained[10], sz(10));
	CHECK_EQ(t.retained[11], sz(11));
	CHECK_EQ(t.idom[12], DOM_SUPER);
	CHECK_EQ(t.retained[12], sz(12) + sz(13));
	/* interior pointers keep chunks alive: 18 retains 19 and 20, not 27 (a root) */
	CHECK_EQ(t.retained[18], sz(18) + sz(19) + sz(20));
	CHECK_EQ(t.idom[27], DOM_SUPER);
	for (uint32_t i = 8; i <= 9; i++)
		CHECK_EQ(t.idom[i], DOM_NONE);
	for (uint32_t i = 14; i <= 17; i++)
		CHECK_EQ(t.idom[i], DOM_NONE);
	for (uint32_t i = 22; i <= 26; i++)
		CHECK_EQ(t.idom[i], DOM_NONE);
	CHECK_EQ(t.reached, 17);
	dom_free(&t);
}

static void groups(const hs_graph *g)
{
	uint32_t group_of[N];
	uint64_t bytes[3], count[3];
	for (uint32_t i = 0; i < N; i++)
		group_of[i] = RET_NO_GROUP;
	group_of[10] = group_of[11] = 0; /* both diamond roots: retain the shared part */
	group_of[10 - 10] = 1;           /* the tree under the global */
	group_of[8] = group_of[14] = 2;  /* leaked chunks retain nothing */
	CHECK_EQ(ret_groups(g, group_of, 3, bytes, count), 0);
	CHECK_EQ(bytes[0], sz(10) + sz(11) + sz(12) + sz(13));
	CHECK_EQ(count[0], 4);
	CHECK_EQ(bytes[1], sz(0) + sz(1) + sz(2));
	CHECK_EQ(count[1], 3);
	CHECK_EQ(bytes[2], 0);
	CHECK_EQ(count[2], 0);
	/* a single-chunk group retains exactly its dominator-tree retained size */
	dom_tree t;
	CHECK_EQ(dom_build_graph(g, &t), 0);
	for (uint32_t v = 0; v < N; v++) {
		for (uint32_t i = 0; i < N; i++)
			group_of[i] = i == v ? 0 : RET_NO_GROUP;
		CHECK_EQ(ret_groups(g, group_of, 1, bytes, count), 0);
		CHECK_EQ(bytes[0], t.retained[v]);
	}
	dom_free(&t);
}

int main(void)
{
	hs_graph g;
	build(&g);
	leaks(&g);
	dominators(&g);
	groups(&g);
	free(g.addr);
	free(g.size);
	free(g.edge_start);
	free(g.edge_dst);
	free(g.root_dst);
	free(g.root_kind);
	return 0;
}
