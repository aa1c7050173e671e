/* graph_fixture.h -- in-memory pointer graphs (analyze/graph.h) for the unit tests: a
 * CSR graph from an edge list, and its release. Header-only, test code only. */
#ifndef HEAPSNAP_TEST_GRAPH_FIXTURE_H
#define HEAPSNAP_TEST_GRAPH_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "graph.h"

/* n nodes at 0x1000 + 0x100 * i with size 0 (the caller sets sizes), edges es[k] ->
 * ed[k] (ed may carry GRAPH_INTERIOR; sources in any order), no roots. */
static inline void tg_csr(hs_graph *g, uint32_t n, const uint32_t *es, const uint32_t *ed,
			  uint32_t m)
{
	memset(g, 0, sizeof *g);
	g->n = n;
	g->m = m;
	g->addr = calloc(n + 1, 8);
	g->size = calloc(n + 1, 8);
	g->edge_start = calloc(n + 2, 4);
	g->edge_dst = calloc(m + 1, 4);
	uint32_t *fill = calloc(n + 1, 4);
	CHECK(g->addr && g->size && g->edge_start && g->edge_dst && fill);
	for (uint32_t i = 0; i < n; i++)
		g->addr[i] = 0x1000 + 0x100ull * i;
	for (uint32_t e = 0; e < m; e++)
		g->edge_start[es[e] + 1]++;
	for (uint32_t i = 0; i < n; i++)
		g->edge_start[i + 1] += g->edge_start[i];
	for (uint32_t e = 0; e < m; e++)
		g->edge_dst[g->edge_start[es[e]] + fill[es[e]]++] = ed[e];
	free(fill);
}

static inline void tg_release(hs_graph *g)
{
	free(g->addr);
	free(g->size);
	free(g->edge_start);
	free(g->edge_dst);
	free(g->root_dst);
	free(g->root_kind);
	memset(g, 0, sizeof *g);
}

#endif
