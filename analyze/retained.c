/* retained.c -- exact retained size of groups (retained.h). Groups of chunks: one
 * breadth-first reachability pass from the roots with every chunk reached, then one per
 * group that treats the group's members as absent; the difference is what the group
 * retains. Groups of root edges: one dominator pass over the graph with a virtual node
 * per group between the super-root and the chunks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dominators.h"
#include "retained.h"

/* mark[v] = 1 for chunks reached from the roots, avoiding group `skip` (RET_NO_GROUP:
 * avoid nothing). */
static void ret_reach(const hs_graph *g, const uint32_t *group_of, uint32_t skip,
		      uint8_t *mark, uint32_t *queue)
{
	uint32_t n = g->n, head = 0, tail = 0;

	memset(mark, 0, n);
	for (uint32_t r = 0; r < g->n_roots; r++) {
		uint32_t t = GRAPH_NODE(g->root_dst[r]);
		if (t >= n || mark[t] || (skip != RET_NO_GROUP && group_of[t] == skip))
			continue;
		mark[t] = 1;
		queue[tail++] = t;
	}
	while (head < tail) {
		uint32_t u = queue[head++];
		for (uint32_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++) {
			uint32_t t = GRAPH_NODE(g->edge_dst[e]);
			if (t >= n || mark[t] || (skip != RET_NO_GROUP && group_of[t] == skip))
				continue;
			mark[t] = 1;
			queue[tail++] = t;
		}
	}
}

int ret_groups(const hs_graph *g, const uint32_t *group_of, uint32_t n_groups,
	       uint64_t *bytes, uint64_t *count)
{
	uint32_t n = g->n;
	if (!n_groups)
		return 0;   /* nothing to compute: skip the reachability pass */
	uint8_t *all = malloc(n ? n : 1), *without = malloc(n ? n : 1);
	uint32_t *queue = malloc((n ? n : 1) * sizeof *queue);

	if (!all || !without || !queue) {
		free(all);
		free(without);
		free(queue);
		errno = ENOMEM;
		return -1;
	}
	ret_reach(g, group_of, RET_NO_GROUP, all, queue);
	for (uint32_t gi = 0; gi < n_groups; gi++) {
		bytes[gi] = 0;
		count[gi] = 0;
		ret_reach(g, group_of, gi, without, queue);
		for (uint32_t i = 0; i < n; i++)
			if (all[i] && !without[i]) {
				bytes[gi] += g->size[i];
				count[gi]++;
			}
	}
	free(all);
	free(without);
	free(queue);
	return 0;
}

#define RET_UNKNOWN 0xfffffffeu /* owner not worked out yet */

/* grow *p to count elements of size sz; the old contents stay (also on failure) */
static int ret_grow(void *p, size_t count, size_t sz)
{
	void *q = realloc(*(void **)p, (count ? count : 1) * sz);
	if (!q)
		return -1;
	*(void **)p = q;
	return 0;
}

int ret_root_groups(hs_graph *g, const uint32_t *group_of_root, uint32_t n_groups,
		    uint64_t *bytes, uint64_t *count)
{
	uint32_t n = g->n, m = g->m, grouped = 0, n_top = 0;
	uint32_t *top = NULL, *owner = NULL;
	dom_tree t = { 0 };
	int rc = -1;

	for (uint32_t gi = 0; gi < n_groups; gi++)
		bytes[gi] = count[gi] = 0;
	for (uint32_t r = 0; r < g->n_roots; r++)
		grouped += group_of_root[r] < n_groups;
	if ((uint64_t)n + n_groups >= GRAPH_INTERIOR || (uint64_t)m + grouped >= UINT32_MAX) {
		errno = ENOMEM;
		return -1;
	}
	/* the super-root's children: every group node, and the chunks of ungrouped roots */
	top = malloc(((size_t)n_groups + g->n_roots + 1) * sizeof *top);
	owner = malloc(((size_t)n + 1) * sizeof *owner);
	if (!top || !owner || ret_grow(&g->size, (size_t)n + n_groups, sizeof *g->size) ||
	    ret_grow(&g->addr, (size_t)n + n_groups, sizeof *g->addr) ||
	    ret_grow(&g->edge_start, (size_t)n + n_groups + 1, sizeof *g->edge_start) ||
	    ret_grow(&g->edge_dst, (size_t)m + grouped, sizeof *g->edge_dst))
		goto out;
	for (uint32_t gi = 0; gi < n_groups; gi++) {
		g->size[n + gi] = 0;   /* a group node holds no bytes itself */
		g->addr[n + gi] = UINT64_MAX - (n_groups - gi); /* after every chunk, ascending */
		g->edge_start[n + gi + 1] = 0;
		top[n_top++] = n + gi;
	}
	/* group node n + gi's edges: its root edges' chunks, at m + (roots of groups < gi) */
	for (uint32_t r = 0; r < g->n_roots; r++)
		if (group_of_root[r] < n_groups)
			g->edge_start[n + group_of_root[r] + 1]++;
		else
			top[n_top++] = g->root_dst[r];
	for (uint32_t gi = 0; gi < n_groups; gi++)
		g->edge_start[n + gi + 1] += g->edge_start[n + gi];
	for (uint32_t r = 0; r < g->n_roots; r++)
		if (group_of_root[r] < n_groups)
			g->edge_dst[g->edge_start[n + group_of_root[r]]++] = g->root_dst[r];
	for (uint32_t gi = n_groups; gi-- > 0;)   /* the fill moved each start to the next */
		g->edge_start[n + gi + 1] = g->edge_start[n + gi];
	g->edge_start[n] = m;
	g->n = n + n_groups;
	g->m = m + grouped;
	int built = dom_build(g, top, n_top, NULL, &t);
	g->n = n;
	g->m = m;
	if (built < 0)
		goto out;
	/* owner[i]: the group whose node dominates chunk i, or RET_NO_GROUP; walks up the
	 * dominator tree, writing the answer along the way so each chunk is walked once */
	for (uint32_t i = 0; i < n; i++)
		owner[i] = RET_UNKNOWN;
	for (uint32_t i = 0; i < n; i++) {
		if (t.idom[i] == DOM_NONE || owner[i] != RET_UNKNOWN)
			continue;
		uint32_t v = i, found;
		for (;;) {
			uint32_t d = t.idom[v];
			if (d == DOM_SUPER || d == DOM_NONE) {
				found = RET_NO_GROUP;
				break;
			}
			if (d >= n) {
				found = d - n;
				break;
			}
			if (owner[d] != RET_UNKNOWN) {
				found = owner[d];
				break;
			}
			v = d;
		}
		for (v = i; owner[v] == RET_UNKNOWN; v = t.idom[v]) {
			owner[v] = found;
			if (t.idom[v] >= n)
				break;
		}
	}
	for (uint32_t i = 0; i < n; i++)
		if (owner[i] < n_groups) {
			bytes[owner[i]] += g->size[i];
			count[owner[i]]++;
		}
	rc = 0;
out:
	if (rc < 0)
		errno = ENOMEM;
	free(top);
	free(owner);
	dom_free(&t);
	return rc;
}
