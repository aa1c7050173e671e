/* dominators.c -- SEMI-NCA dominators and retained sizes over the pointer graph
 * (dominators.h). Everything is iterative and works in DFS-number space:
 *
 *   1. DFS from the super-root (number 0). The DFS stack is implicit: the DFS parent
 *      array, with one edge cursor per number.
 *   2. Predecessors as a reverse CSR in DFS numbers (the cursor array becomes its index);
 *      the node-to-number map is freed right after.
 *   3. Semidominators in reverse preorder with path compression (LLVM's SemiNCA
 *      formulation: ancestors are the DFS parents, linked implicitly as the number drops).
 *      Compression reverses the path in place instead of using a stack. The minimum
 *      semidominator on the compressed path is kept as a number ("best"), not a label.
 *      Once w is done its predecessor list is dead: its first slot keeps w's DFS parent,
 *      its second slot w's semidominator (a chunk with one predecessor has semi = parent).
 *   4. Immediate dominators in preorder: the nearest common ancestor of parent and semi.
 *   5. Retained sizes in reverse preorder, written in node space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dominators.h"

#define NIL 0xffffffffu

/* the arrays below are read at random: huge pages save most TLB misses and page faults */
static uint32_t *alloc32(size_t count)
{
	uint32_t *p = malloc((count ? count : 1) * sizeof(uint32_t));
	graph_hugepages(p, count * sizeof(uint32_t));
	return p;
}

/* DFS from the super-root. Fills num[node], order[number], parent[number], and
 * preds[number] with the count of predecessors (self loops excluded); cursor is scratch.
 * Every edge out of a reached chunk is looked at exactly once here, so the count costs
 * nothing extra. Returns the count of numbers used (super-root included). */
static uint32_t dom_dfs(const hs_graph *g, const uint32_t *roots, uint32_t n_roots,
			const uint8_t *skip, uint32_t *num, uint32_t *order, uint32_t *parent,
			uint32_t *cursor, uint32_t *preds)
{
	uint32_t n = g->n, k = 1, x = 0;

	for (uint32_t i = 0; i < n; i++)
		num[i] = NIL;
	order[0] = NIL;
	parent[0] = 0;
	cursor[0] = 0;
	preds[0] = 0;
	for (;;) {
		uint32_t t;
		if (x == 0) {
			if (cursor[0] >= n_roots)
				break;
			t = GRAPH_NODE(roots[cursor[0]++]);
		} else {
			uint32_t u = order[x];
			if (cursor[x] >= g->edge_start[u + 1]) {
				x = parent[x];
				continue;
			}
			t = GRAPH_NODE(g->edge_dst[cursor[x]++]);
		}
		if (t >= n || (skip && skip[t]))
			continue;
		if (num[t] != NIL) {
			if (num[t] != x)
				preds[num[t]]++;
			continue;
		}
		preds[k] = 1;
		num[t] = k;
		order[k] = t;
		parent[k] = x;
		cursor[k] = g->edge_start[t];
		/* the DFS is a chain of dependent cache misses: start fetching what the next
		 * steps read (the targets' numbers and edge ranges) now */
		for (uint32_t e = cursor[k]; e < g->edge_start[t + 1] && e < cursor[k] + 4; e++) {
			uint32_t next = GRAPH_NODE(g->edge_dst[e]);
			if (next < n) {
				__builtin_prefetch(&num[next]);
				__builtin_prefetch(&g->edge_start[next]);
			}
		}
		x = k++;
	}
	return k;
}

/* Reverse CSR in number space: the predecessors of w are src[start[w] .. start[w+1]),
 * start[] holding the counts from the DFS on entry. Self loops are dropped. Edges are
 * walked in node order (sequential) with the random reads prefetched ahead. Returns
 * src, or NULL when out of memory. */
static uint32_t *dom_preds(const hs_graph *g, const uint32_t *roots, uint32_t n_roots,
			   const uint32_t *num, uint32_t k, uint32_t *start)
{
	uint64_t acc = 0;
	for (uint32_t i = 0; i < k; i++) {
		acc += start[i];
		start[i] = (uint32_t)acc;
	}
	if (acc >= NIL) {
		errno = EOVERFLOW;
		return NULL;
	}
	start[k] = (uint32_t)acc;
	uint32_t *src = alloc32(acc);
	if (!src)
		return NULL;
	for (uint32_t r = 0; r < n_roots; r++) {
		uint32_t t = GRAPH_NODE(roots[r]);
		if (t < g->n && num[t] != NIL)
			src[--start[num[t]]] = 0;
	}
	uint32_t m = g->n ? g->edge_start[g->n] : 0;
	for (uint32_t u = 0; u < g->n; u++) {
		uint32_t s = num[u];
		if (s == NIL)
			continue;
		for (uint32_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++) {
			if (e + 16 < m && GRAPH_NODE(g->edge_dst[e + 16]) < g->n)
				__builtin_prefetch(&num[GRAPH_NODE(g->edge_dst[e + 16])]);
			if (e + 8 < m && GRAPH_NODE(g->edge_dst[e + 8]) < g->n) {
				uint32_t ahead = num[GRAPH_NODE(g->edge_dst[e + 8])];
				if (ahead != NIL)
					__builtin_prefetch(&start[ahead], 1);
			}
			uint32_t t = GRAPH_NODE(g->edge_dst[e]);
			if (t >= g->n || num[t] == NIL || num[t] == s)
				continue;
			src[--start[num[t]]] = s;
		}
	}
	return src;
}

/* The minimum semidominator on the forest path from v up to (excluding) the first
 * vertex not yet linked (number < last), compressing the path. The path is reversed in
 * place on the way up and restored, compressed, on the way down. */
static uint32_t dom_eval(uint32_t *anc, uint32_t *best, uint32_t v, uint32_t last)
{
	if (anc[v] < last)
		return best[v];
	uint32_t prev = NIL, x = v;
	while (anc[x] >= last) {
		uint32_t next = anc[x];
		anc[x] = prev;
		prev = x;
		x = next;
	}
	uint32_t top = anc[x], b = best[x];
	while (prev != NIL) {
		uint32_t y = prev;
		prev = anc[y];
		anc[y] = top;
		if (b < best[y])
			best[y] = b;
		else
			b = best[y];
	}
	return best[v];
}

int dom_build(const hs_graph *g, const uint32_t *roots, uint32_t n_roots,
	      const uint8_t *skip, dom_tree *out)
{
	uint32_t n = g->n;
	uint32_t *num = NULL, *order = NULL, *anc = NULL, *start = NULL, *src = NULL,
		 *best = NULL;

	memset(out, 0, sizeof *out);
	out->n = n;
	num = alloc32(n);
	order = alloc32((size_t)n + 1);
	anc = alloc32((size_t)n + 1);
	start = alloc32((size_t)n + 2);
	if (!num || !order || !anc || !start)
		goto fail;

	uint32_t *cursor = alloc32((size_t)n + 1);
	if (!cursor)
		goto fail;
	uint32_t k = dom_dfs(g, roots, n_roots, skip, num, order, anc, cursor, start);
	free(cursor);
	src = dom_preds(g, roots, n_roots, num, k, start);
	if (!src)
		goto fail;
	free(num);
	num = NULL;

	best = alloc32(k);
	if (!best)
		goto fail;
	for (uint32_t i = 0; i < k; i++)
		best[i] = i;
	for (uint32_t w = k - 1; w >= 1; w--) {
		uint32_t s0 = start[w], s1 = start[w + 1], parent = anc[w], semi = parent;
		if (s0 >= 4) {
			__builtin_prefetch(&anc[src[s0 - 4]]);
			__builtin_prefetch(&best[src[s0 - 4]]);
		}
		for (uint32_t e = s0; e < s1; e++) {
			uint32_t b = dom_eval(anc, best, src[e], w + 1);
			if (b < semi)
				semi = b;
		}
		best[w] = semi;
		src[s0] = parent; /* s1 > s0: the DFS parent is a predecessor */
		if (s1 - s0 >= 2)
			src[s0 + 1] = semi;
	}
	free(best);
	best = NULL;

	/* idom in number space, written over anc (entries below w are final) */
	anc[0] = 0;
	for (uint32_t w = 1; w < k; w++) {
		uint32_t s0 = start[w], parent = src[s0];
		uint32_t semi = start[w + 1] - s0 >= 2 ? src[s0 + 1] : parent;
		uint32_t d = parent;
		while (d > semi)
			d = anc[d];
		anc[w] = d;
	}
	free(src);
	src = NULL;
	free(start);
	start = NULL;

	out->idom = alloc32(n);
	out->retained = calloc(n ? n : 1, sizeof *out->retained);
	if (!out->idom || !out->retained)
		goto fail;
	graph_hugepages(out->retained, (size_t)n * sizeof *out->retained);
	for (uint32_t i = 0; i < n; i++)
		out->idom[i] = NIL;
	for (uint32_t w = 1; w < k; w++) {
		uint32_t u = order[w];
		if (w + 16 < k) {
			uint32_t ahead = order[w + 16];
			__builtin_prefetch(&out->retained[ahead], 1);
			__builtin_prefetch(&out->idom[ahead], 1);
			__builtin_prefetch(&g->size[ahead]);
		}
		out->retained[u] = g->size[u];
		out->reached_bytes += g->size[u];
		out->idom[u] = anc[w] == 0 ? DOM_SUPER : order[anc[w]];
	}
	for (uint32_t w = k - 1; w >= 1; w--) {
		if (w >= 32)
			__builtin_prefetch(&order[anc[w - 32]]);
		if (w >= 16) {
			__builtin_prefetch(&out->retained[order[anc[w - 16]]], 1);
			__builtin_prefetch(&out->retained[order[w - 16]]);
		}
		if (anc[w] != 0)
			out->retained[order[anc[w]]] += out->retained[order[w]];
	}
	out->reached = k - 1;
	free(order);
	free(anc);
	return 0;
fail:
	free(num);
	free(order);
	free(anc);
	free(start);
	free(src);
	free(best);
	dom_free(out);
	if (!errno)
		errno = ENOMEM;
	return -1;
}

void dom_free(dom_tree *t)
{
	free(t->idom);
	free(t->retained);
	t->idom = NULL;
	t->retained = NULL;
}

int dom_children(const dom_tree *t, uint32_t **start_out, uint32_t **child_out)
{
	uint32_t n = t->n;
	uint32_t *start = calloc((size_t)n + 2, sizeof *start);
	uint32_t *child = alloc32(t->reached);
	graph_hugepages(start, ((size_t)n + 2) * sizeof *start);

	if (!start || !child) {
		free(start);
		free(child);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++)
		if (t->idom[i] != DOM_NONE)
			start[t->idom[i] == DOM_SUPER ? n : t->idom[i]]++;
	uint32_t acc = 0;
	for (uint32_t i = 0; i <= n; i++) {
		acc += start[i];
		start[i] = acc;
	}
	start[n + 1] = acc;
	for (uint32_t i = n; i-- > 0;)
		if (t->idom[i] != DOM_NONE)
			child[--start[t->idom[i] == DOM_SUPER ? n : t->idom[i]]] = i;
	*start_out = start;
	*child_out = child;
	return 0;
}
