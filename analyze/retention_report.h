/* retention_report.h -- what the retention commands print (leaks, dominators, path,
 * histogram; issue #4), from an in-memory pointer graph (graph.h) and a labeller that
 * names a chunk's allocation site and type. Kept apart from the commands so that it runs
 * on hand-built graphs in tests, and so that the commands (cmd_*.c) only load a snapshot
 * into an hs_graph and call these. A chunk without a site or type is labelled by its size
 * ("size 48"). Returns 0, or -1 when out of memory. */
#ifndef HEAPSNAP_RETENTION_REPORT_H
#define HEAPSNAP_RETENTION_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "graph.h"

typedef struct {
	/* stable strings (owned by ctx) or NULL when unknown; either function may be NULL */
	const char *(*site)(void *ctx, uint32_t node);
	const char *(*type)(void *ctx, uint32_t node);
	const char *(*root_source)(void *ctx, uint32_t root); /* "libfoo.so:table+0x10", ... */
	void *ctx;
} rr_labels;

/* memcheck's categories with count and bytes, grouped by site, and the leak roots (at
 * most limit). JSON keys: definitely_lost, indirectly_lost, possibly_lost,
 * still_reachable ({count, bytes}), sites [{kind, site, count, bytes}], leak_roots. */
int rr_leaks(FILE *f, const hs_graph *g, const rr_labels *l, uint32_t limit, int json);

/* The dominator tree, largest retained first: limit children per node, depth levels
 * (1: the top level), under the super-root or under chunk `root` (index, or UINT32_MAX).
 * JSON: {reached_chunks, reached_bytes, nodes: [{address, label, site, type,
 * shallow_bytes, retained_bytes, children: [...]}]}. */
int rr_dominators(FILE *f, const hs_graph *g, const rr_labels *l, uint32_t limit,
		  uint32_t depth, uint32_t root, int json);

/* Chunk count and bytes per type (by_type) or per chunk size, most bytes first. */
int rr_histogram(FILE *f, const hs_graph *g, const rr_labels *l, int by_type, int json);

/* Exact retained bytes per group (retained.h: MAT's precise retained size), groups
 * keyed by key(ctx, node) (NULL: in no group), e.g. the site, type or module. Only the
 * max_groups groups with the most shallow bytes are computed (one reachability pass
 * each); the output says how many groups there were. JSON: {groups_total, groups:
 * [{key, count, shallow_bytes, retained_count, retained_bytes}]}. */
int rr_retained(FILE *f, const hs_graph *g, const char *(*key)(void *ctx, uint32_t node),
		void *ctx, uint32_t max_groups, int json);

/* Row order of the reports that follow (the commands' --sort, cmdline.h): the default
 * (bytes for groups, retained bytes for dominator children), or count (most chunks first),
 * name (ascending; size rows by size) for histogram rows, leaks' by-site table and
 * retained's computed groups; retained (bytes) for those groups too; shallow (bytes) or
 * address for the dominator tree's children. Leaks keep their category order. */
enum rr_sort { RR_SORT_DEFAULT, RR_SORT_COUNT, RR_SORT_NAME, RR_SORT_RETAINED,
	       RR_SORT_SHALLOW, RR_SORT_ADDRESS };
void rr_set_sort(enum rr_sort s);

/* "register", "stack", "global", "tls", "other" */
const char *rr_root_kind_name(unsigned kind);

#endif
