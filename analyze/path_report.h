/* path_report.h -- what `heapsnap path` prints: the shortest root-to-chunk paths
 * (paths.h) with, for each hop, the byte offset inside the referring chunk where the
 * pointer sits, and for the first hop where the root word is. The in-memory graph
 * (graph.h) keeps no offsets, so they are looked up afterwards for the path's hops only,
 * from the snapshot's chunk_edge rows (the edge's word index, schema/README.md) and root
 * rows (slot, offset). */
#ifndef HEAPSNAP_PATH_REPORT_H
#define HEAPSNAP_PATH_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "graph.h"
#include "retention_report.h"

struct snap;

/* The byte offset, from the user pointer of node src, of the pointer word of the edge
 * src -> dst (as chunk_edge stores it: the start pointer if there is one, else the
 * lowest interior one). n_nodes: the graph's node count. 1 found, 0 no such edge, -1
 * snapshot error or damaged row (message in err). */
int pr_edge_offset(struct snap *s, uint64_t n_nodes, uint32_t src, uint32_t dst,
		   uint64_t *offset, char *err, size_t errlen);

/* Up to max_paths shortest paths from the roots of g (loaded from s) to chunk target:
 * a table per path, or JSON {target, roots_reaching, paths: [{root_kind, root_source,
 * root_slot, root_offset, hops: [{address, pointer, offset, size, type, site}]}]}
 * (offset null on the first hop, whose pointer is the root's word). 0, or -1 with a
 * message in err (out of memory, snapshot error). */
int pr_path(FILE *f, struct snap *s, const hs_graph *g, const rr_labels *l, uint32_t target,
	    uint32_t max_paths, int json, char *err, size_t errlen);

#endif
