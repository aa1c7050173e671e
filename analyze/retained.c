/* retained.c -- exact retained size of groups of chunks (retained.h): one breadth-first
 * reachability pass from the roots with every chunk reached, then one per group that
 * treats the group's members as absent; the difference is what the group retains. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
