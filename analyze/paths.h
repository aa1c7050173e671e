/* paths.h -- why is this chunk alive: shortest paths from the roots to a chunk over the
 * pointer graph (graph.h), following start and interior pointers, like MAT's "path to GC
 * roots". One breadth-first search backwards from the target gives every chunk's
 * distance to it; each root then walks forward along distance-decreasing edges. */
#ifndef HEAPSNAP_PATHS_H
#define HEAPSNAP_PATHS_H

#include <stdint.h>

#include "graph.h"

typedef struct {
	uint32_t root;     /* index into g->root_dst / root_kind */
	uint32_t len;      /* chunks on the path: the root's chunk first, the target last */
	uint32_t *node;    /* [len] */
	uint32_t *edge;    /* [len - 1] index into g->edge_dst of the hop node[i] -> node[i+1] */
} path_one;

typedef struct {
	path_one *paths;   /* shortest first; ties: root kind order, then root index */
	uint32_t n_paths;
	uint32_t n_reaching; /* root entries that reach the target at all */
} path_set;

/* Up to max_paths shortest paths to target, one per root entry that reaches it (max_paths
 * = 1: the shortest path). n_paths = 0 when no root reaches the target. 0, or -1 when
 * out of memory. */
int path_find(const hs_graph *g, uint32_t target, uint32_t max_paths, path_set *out);
void path_free(path_set *p);

#endif
