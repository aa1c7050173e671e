/* paths.c -- shortest root-to-chunk paths (paths.h): a reverse CSR, a backwards BFS from
 * the target for distances, then one forward walk per chosen root. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

#define FAR 0xffffffffu

typedef struct {
	uint32_t root, dist;
	uint8_t kind;
} path_cand;

static int cmp_cand(const void *a, const void *b)
{
	const path_cand *x = a, *y = b;
	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->root < y->root ? -1 : x->root > y->root;
}

/* dist[v] = edges from v to target, FAR if v cannot reach it */
static int path_distances(const hs_graph *g, uint32_t target, uint32_t *dist)
{
	uint32_t n = g->n;
	uint32_t *start = calloc((size_t)n + 1, sizeof *start);
	uint32_t *src = malloc((g->m ? g->m : 1) * sizeof *src);
	uint32_t *queue = malloc((n ? n : 1) * sizeof *queue);

	if (!start || !src || !queue) {
		free(start);
		free(src);
		free(queue);
		return -1;
	}
	for (uint32_t e = 0; e < g->m; e++)
		if (GRAPH_NODE(g->edge_dst[e]) < n)
			start[GRAPH_NODE(g->edge_dst[e])]++;
	uint32_t acc = 0;
	for (uint32_t i = 0; i < n; i++) {
		acc += start[i];
		start[i] = acc;
	}
	start[n] = acc;
	for (uint32_t u = 0; u < n; u++)
		for (uint32_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++)
			if (GRAPH_NODE(g->edge_dst[e]) < n)
				src[--start[GRAPH_NODE(g->edge_dst[e])]] = u;
	for (uint32_t i = 0; i < n; i++)
		dist[i] = FAR;
	uint32_t head = 0, tail = 0;
	dist[target] = 0;
	queue[tail++] = target;
	while (head < tail) {
		uint32_t v = queue[head++];
		for (uint32_t e = start[v]; e < start[v + 1]; e++) {
			uint32_t u = src[e];
			if (dist[u] == FAR) {
				dist[u] = dist[v] + 1;
				queue[tail++] = u;
			}
		}
	}
	free(start);
	free(src);
	free(queue);
	return 0;
}

static int path_walk(const hs_graph *g, const uint32_t *dist, uint32_t root, path_one *p)
{
	uint32_t u = GRAPH_NODE(g->root_dst[root]);

	p->root = root;
	p->len = dist[u] + 1;
	p->node = malloc(p->len * sizeof *p->node);
	p->edge = malloc(p->len * sizeof *p->edge);
	if (!p->node || !p->edge)
		return -1;
	p->node[0] = u;
	for (uint32_t i = 1; i < p->len; i++) {
		uint32_t e = g->edge_start[u];
		while (dist[GRAPH_NODE(g->edge_dst[e])] != dist[u] - 1)
			e++;
		p->edge[i - 1] = e;
		u = GRAPH_NODE(g->edge_dst[e]);
		p->node[i] = u;
	}
	return 0;
}

int path_find(const hs_graph *g, uint32_t target, uint32_t max_paths, path_set *out)
{
	uint32_t *dist = NULL;
	path_cand *cand = NULL;

	memset(out, 0, sizeof *out);
	if (target >= g->n)
		return 0;
	dist = malloc((size_t)g->n * sizeof *dist);
	cand = malloc((g->n_roots ? g->n_roots : 1) * sizeof *cand);
	if (!dist || !cand || path_distances(g, target, dist) < 0)
		goto fail;
	for (uint32_t r = 0; r < g->n_roots; r++) {
		uint32_t u = GRAPH_NODE(g->root_dst[r]);
		if (u >= g->n || dist[u] == FAR)
			continue;
		cand[out->n_reaching++] = (path_cand){ r, dist[u], g->root_kind[r] };
	}
	qsort(cand, out->n_reaching, sizeof *cand, cmp_cand);
	uint32_t want = out->n_reaching < max_paths ? out->n_reaching : max_paths;
	out->paths = calloc(want ? want : 1, sizeof *out->paths);
	if (!out->paths)
		goto fail;
	for (uint32_t i = 0; i < want; i++) {
		out->n_paths++;
		if (path_walk(g, dist, cand[i].root, &out->paths[i]) < 0)
			goto fail;
	}
	free(dist);
	free(cand);
	return 0;
fail:
	free(dist);
	free(cand);
	path_free(out);
	errno = ENOMEM;
	return -1;
}

void path_free(path_set *p)
{
	for (uint32_t i = 0; i < p->n_paths; i++) {
		free(p->paths[i].node);
		free(p->paths[i].edge);
	}
	free(p->paths);
	p->paths = NULL;
	p->n_paths = 0;
}
