/* graph_labels.h -- names for the nodes of a loaded pointer graph (graph.h), read from
 * the snapshot: the C++ class of a chunk (chunk_type/type tables) and its allocation
 * site (alloc.callsite_id, named as sites.h names sites: the innermost frame outside
 * libc, libstdc++, ld.so and the tracking library). Feeds retention_report.h's rr_labels.
 * Memory: 8 bytes per node plus one string per distinct class and site. Also where each
 * root word was (module + symbol, thread + register, thread + stack frame, TLS). */
#ifndef HEAPSNAP_GRAPH_LABELS_H
#define HEAPSNAP_GRAPH_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "snapshot.h"

typedef struct {
	uint32_t n;
	uint32_t *type;     /* [n] 1 + index into names, 0 = unknown */
	uint32_t *site;     /* [n] 1 + index into names, 0 = unknown (untracked chunk) */
	char **names;
	uint32_t n_names;
	int has_types;      /* the snapshot has type data (chunk_type table) */
	int has_sites;      /* the snapshot has tracked allocations */
} gl_labels;

/* 0, or -1 with snap_error(s) set (or out of memory). Tables that are absent give no
 * labels, not an error. */
int gl_load(snap *s, const hs_graph *g, gl_labels *out);
void gl_free(gl_labels *l);

/* Where the root row root_id (root.id) came from, into buf: "libfoo.so:table+0x10" for a
 * global, "thread 12 register rax", "thread 12 stack sp+0x30 frame #1 main
 * (server.c:88)" for a stack slot (the frame when the capture found it: 0 = innermost),
 * "thread 12 tls-0x8", "slot 0x..." for any other mapping. buf, or NULL when the row is
 * missing or the query fails. */
const char *gl_root_source(snap *s, int64_t root_id, char *buf, size_t n);

/* rr_labels callbacks, ctx = gl_labels * */
const char *gl_type(void *ctx, uint32_t node);
const char *gl_site(void *ctx, uint32_t node);

#endif
