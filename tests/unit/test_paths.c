/* test_paths.c -- path_find (analyze/paths.c): a hand-built heap with known shortest
 * paths, then random graphs where every returned path must be made of real edges and as
 * short as a forward BFS from that root says. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "paths.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(uint32_t bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % bound);
}

static void build(hs_graph *g, uint32_t n, const uint32_t (*ed)[2], uint32_t m,
		  const uint32_t *roots, const uint8_t *kinds, uint32_t nr)
{
	memset(g, 0, sizeof *g);
	g->n = n;
	g->m = m;
	g->edge_start = calloc(n + 1, 4);
	g->edge_dst = calloc(m + 1, 4);
	g->size = calloc(n, 8);
	for (uint32_t e = 0; e < m; e++)
		g->edge_start[ed[e][0] + 1]++;
	for (uint32_t i = 0; i < n; i++)
		g->edge_start[i + 1] += g->edge_start[i];
	uint32_t *fill = calloc(n, 4);
	for (uint32_t e = 0; e < m; e++)
		g->edge_dst[g->edge_start[ed[e][0]] + fill[ed[e][0]]++] = ed[e][1];
	free(fill);
	g->n_roots = nr;
	g->root_dst = malloc(4 * (nr + 1));
	g->root_kind = malloc(nr + 1);
	memcpy(g->root_dst, roots, 4 * nr);
	memcpy(g->root_kind, kinds, nr);
}

static void release(hs_graph *g)
{
	free(g->edge_start);
	free(g->edge_dst);
	free(g->size);
	free(g->root_dst);
	free(g->root_kind);
}

static void hand(void)
{
	/* stack root -> 0 -> 1 -> 2 -> 5; global -> 3 -> 4 -(interior)-> 5; 6 unreachable -> 5 */
	static const uint32_t ed[][2] = { { 0, 1 }, { 1, 2 }, { 2, 5 }, { 3, 4 },
					  { 4, 5 | GRAPH_INTERIOR }, { 6, 5 } };
	static const uint32_t roots[] = { 0, 3, 3 | GRAPH_INTERIOR };
	static const uint8_t kinds[] = { GRAPH_ROOT_STACK, GRAPH_ROOT_GLOBAL, GRAPH_ROOT_OTHER };
	hs_graph g;
	build(&g, 7, ed, 6, roots, kinds, 3);
	path_set p;
	CHECK_EQ(path_find(&g, 5, 1, &p), 0);
	CHECK_EQ(p.n_reaching, 3);
	CHECK_EQ(p.n_paths, 1);
	CHECK_EQ(p.paths[0].root, 1); /* shortest, then GLOBAL before OTHER */
	CHECK_EQ(p.paths[0].len, 3);
	CHECK_EQ(p.paths[0].node[0], 3);
	CHECK_EQ(p.paths[0].node[1], 4);
	CHECK_EQ(p.paths[0].node[2], 5);
	CHECK_EQ(p.paths[0].edge[0], 3);
	CHECK_EQ(p.paths[0].edge[1], 4);
	path_free(&p);
	CHECK_EQ(path_find(&g, 5, 10, &p), 0);
	CHECK_EQ(p.n_paths, 3);
	CHECK_EQ(p.paths[1].root, 2);
	CHECK_EQ(p.paths[2].root, 0);
	CHECK_EQ(p.paths[2].len, 4);
	path_free(&p);
	CHECK_EQ(path_find(&g, 6, 10, &p), 0); /* unreachable: no path */
	CHECK_EQ(p.n_paths, 0);
	CHECK_EQ(p.n_reaching, 0);
	path_free(&p);
	release(&g);
}

static void random_graphs(void)
{
	uint32_t ed[400][2], roots[8], dist[64], queue[64];
	uint8_t kinds[8];
	for (int iter = 0; iter < 500; iter++) {
		uint32_t n = 1 + rnd(60), m = rnd(n * 3 + 1), nr = 1 + rnd(8);
		for (uint32_t e = 0; e < m; e++) {
			ed[e][0] = rnd(n);
			ed[e][1] = rnd(n) | (rnd(3) ? 0 : GRAPH_INTERIOR);
		}
		for (uint32_t r = 0; r < nr; r++) {
			roots[r] = rnd(n);
			kinds[r] = (uint8_t)rnd(GRAPH_ROOT_KIND_COUNT);
		}
		hs_graph g;
		build(&g, n, ed, m, roots, kinds, nr);
		uint32_t target = rnd(n);
		path_set p;
		CHECK_EQ(path_find(&g, target, 8, &p), 0);
		uint32_t reaching = 0, prev_len = 0;
		for (uint32_t r = 0; r < nr; r++) {
			/* forward BFS from this root */
			for (uint32_t i = 0; i < n; i++)
				dist[i] = 0xffffffffu;
			uint32_t head = 0, tail = 0;
			dist[roots[r]] = 0;
			queue[tail++] = roots[r];
			while (head < tail) {
				uint32_t u = queue[head++];
				for (uint32_t e = g.edge_start[u]; e < g.edge_start[u + 1]; e++) {
					uint32_t t = GRAPH_NODE(g.edge_dst[e]);
					if (dist[t] == 0xffffffffu) {
						dist[t] = dist[u] + 1;
						queue[tail++] = t;
					}
				}
			}
			if (dist[target] != 0xffffffffu)
				reaching++;
			for (uint32_t i = 0; i < p.n_paths; i++)
				if (p.paths[i].root == r)
					CHECK_EQ(p.paths[i].len, dist[target] + 1);
		}
		CHECK_EQ(p.n_reaching, reaching);
		CHECK_EQ(p.n_paths, reaching < 8 ? reaching : 8);
		for (uint32_t i = 0; i < p.n_paths; i++) {
			const path_one *q = &p.paths[i];
			CHECK(q->len >= prev_len);
			prev_len = q->len;
			CHECK_EQ(q->node[0], roots[q->root]);
			CHECK_EQ(q->node[q->len - 1], target);
			for (uint32_t h = 0; h + 1 < q->len; h++) {
				uint32_t e = q->edge[h];
				CHECK(e >= g.edge_start[q->node[h]] && e < g.edge_start[q->node[h] + 1]);
				CHECK_EQ(GRAPH_NODE(g.edge_dst[e]), q->node[h + 1]);
			}
		}
		path_free(&p);
		release(&g);
	}
}

int main(void)
{
	hand();
	random_graphs();
	return 0;
}
