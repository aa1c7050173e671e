/* graph_load.c -- builds an hs_graph (graph.h) from a snapshot's chunk, chunk_edge and
 * root tables, and the two helpers graph.h declares (graph_free, graph_find).
 *
 * Memory: the arrays of graph.h and nothing else: counts come first (count(*), sum(n)),
 * then the rows are streamed in address order straight into their final place. The
 * input is untrusted: every count is checked against what is really there, every
 * decoded destination is range-checked, and a blob that does not decode to exactly its
 * n edges is "damaged".
 */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphwrite.h"
#include "snapshot.h"

void graph_free(hs_graph *g)
{
	if (!g)
		return;
	free(g->addr);
	free(g->size);
	free(g->edge_start);
	free(g->edge_dst);
	free(g->root_dst);
	free(g->root_kind);
	free(g->root_id);
	memset(g, 0, sizeof *g);
}

int64_t graph_find(const hs_graph *g, uint64_t addr)
{
	uint32_t lo = 0, hi = g->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (g->addr[mid] <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -1;
	lo--;
	return addr - g->addr[lo] < g->size[lo] ? (int64_t)lo : -1;
}

static int fail(hs_graph *g, char *err, size_t errlen, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	graph_free(g);
	return -1;
}

static int load_nodes(snap *s, hs_graph *g, char *err, size_t errlen)
{
	int64_t n;
	if (snap_query_i64(s, "SELECT count(*) FROM chunk WHERE state = 0", 0, &n))
		return fail(g, err, errlen, "%s", snap_error(s));
	if (n < 0 || n >= (int64_t)GRAPH_INTERIOR)
		return fail(g, err, errlen, "%s", "too many in-use chunks for the graph");
	g->addr = malloc(((size_t)n + 1) * sizeof *g->addr);
	g->size = malloc(((size_t)n + 1) * sizeof *g->size);
	g->edge_start = calloc((size_t)n + 1, sizeof *g->edge_start);
	if (!g->addr || !g->size || !g->edge_start)
		return fail(g, err, errlen, "%s", "out of memory loading the graph");
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT addr, size FROM chunk WHERE state = 0 ORDER BY addr"))
		return fail(g, err, errlen, "%s", snap_error(s));
	uint32_t k = 0;
	int rc;
	while ((rc = snap_step(s, st)) == 1) {
		if (k >= (uint64_t)n)
			break;
		uint64_t a = (uint64_t)snap_i64(st, 0, 0), z = (uint64_t)snap_i64(st, 1, 0);
		if (k && a < g->addr[k - 1] + g->size[k - 1]) {
			sqlite3_finalize(st);
			return fail(g, err, errlen, "damaged snapshot: %s", "overlapping in-use chunks");
		}
		g->addr[k] = a;
		g->size[k] = z;
		k++;
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return fail(g, err, errlen, "%s", snap_error(s));
	g->n = k;
	return 0;
}

static int load_edges(snap *s, hs_graph *g, char *err, size_t errlen)
{
	int64_t m;
	if (snap_query_i64(s, "SELECT coalesce(sum(max(n, 0)), 0) FROM chunk_edge", 0, &m))
		return fail(g, err, errlen, "%s", snap_error(s));
	if (m < 0 || m > (int64_t)UINT32_MAX - 1)
		return fail(g, err, errlen, "%s", "too many edges for the graph");
	g->edge_dst = malloc(((size_t)m + 1) * sizeof *g->edge_dst);
	if (!g->edge_dst)
		return fail(g, err, errlen, "%s", "out of memory loading the graph");
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT grp, n, dst FROM chunk_edge ORDER BY grp"))
		return fail(g, err, errlen, "%s", snap_error(s));
	uint32_t next = 0;   /* first node whose edge_start is not set yet */
	uint64_t pos = 0;
	int rc;
	const char *bad = NULL;
	while (!bad && (rc = snap_step(s, st)) == 1) {
		int64_t grp = snap_i64(st, 0, -1), cnt = snap_i64(st, 1, -1);
		const unsigned char *p = sqlite3_column_blob(st, 2);
		const unsigned char *end = p + sqlite3_column_bytes(st, 2);
		if (grp < 0 || (uint64_t)grp >= ((uint64_t)g->n + GW_GROUP - 1) / GW_GROUP ||
		    (uint64_t)grp * GW_GROUP < next) {
			bad = "an edge row for nodes that do not exist";
			break;
		}
		if (cnt < 0 || (uint64_t)cnt > (uint64_t)m - pos) {
			bad = "edge counts do not add up";
			break;
		}
		uint32_t first = (uint32_t)grp * GW_GROUP;
		uint32_t last = g->n - first < GW_GROUP ? g->n : first + GW_GROUP;
		while (next < first)
			g->edge_start[next++] = (uint32_t)pos;
		uint64_t row_end = pos + (uint64_t)cnt;
		for (uint32_t i = first; i < last && !bad; i++) {
			g->edge_start[next++] = (uint32_t)pos;
			uint64_t k;
			if (!p || gw_varint(&p, end, &k) || k > row_end - pos) {
				bad = "a malformed edge blob";
				break;
			}
			uint64_t prev = i;
			for (uint64_t e = 0; e < k; e++) {
				uint64_t node, word;
				int interior;
				if (gw_decode(&p, end, e == 0, prev, g->n, &node, &interior, &word)) {
					bad = "a malformed edge blob";
					break;
				}
				g->edge_dst[pos++] = (uint32_t)node | (interior ? GRAPH_INTERIOR : 0);
				prev = node;
			}
		}
		if (!bad && (p != end || pos != row_end))
			bad = "an edge blob that does not match its count";
	}
	sqlite3_finalize(st);
	if (bad)
		return fail(g, err, errlen, "damaged snapshot: %s", bad);
	if (rc < 0)
		return fail(g, err, errlen, "%s", snap_error(s));
	while (next <= g->n)
		g->edge_start[next++] = (uint32_t)pos;
	g->m = (uint32_t)pos;
	return 0;
}

static int load_roots(snap *s, hs_graph *g, char *err, size_t errlen)
{
	int64_t n;
	if (snap_query_i64(s, "SELECT count(*) FROM root", 0, &n))
		return fail(g, err, errlen, "%s", snap_error(s));
	if (n < 0 || n > (int64_t)UINT32_MAX - 1)
		return fail(g, err, errlen, "%s", "too many roots for the graph");
	g->root_dst = malloc(((size_t)n + 1) * sizeof *g->root_dst);
	g->root_kind = malloc((size_t)n + 1);
	g->root_id = malloc(((size_t)n + 1) * sizeof *g->root_id);
	if (!g->root_dst || !g->root_kind || !g->root_id)
		return fail(g, err, errlen, "%s", "out of memory loading the graph");
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT id, kind, dst, interior FROM root ORDER BY id"))
		return fail(g, err, errlen, "%s", snap_error(s));
	uint32_t k = 0;
	int rc;
	while ((rc = snap_step(s, st)) == 1 && k < (uint64_t)n) {
		int64_t id = snap_i64(st, 0, 0), kind = snap_i64(st, 1, -1);
		uint64_t dst = (uint64_t)snap_i64(st, 2, 0);
		if (kind < 0 || kind >= GRAPH_ROOT_KIND_COUNT || id <= 0 || id > (int64_t)UINT32_MAX) {
			sqlite3_finalize(st);
			return fail(g, err, errlen, "damaged snapshot: %s", "a root of unknown kind");
		}
		int64_t node = graph_find(g, dst);
		if (node < 0 || g->addr[node] != dst)
			continue;   /* a root into a chunk that is not in use: not part of the graph */
		g->root_dst[k] = (uint32_t)node | (snap_i64(st, 3, 0) ? GRAPH_INTERIOR : 0);
		g->root_kind[k] = (uint8_t)kind;
		g->root_id[k] = (uint32_t)id;
		k++;
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return fail(g, err, errlen, "%s", snap_error(s));
	g->n_roots = k;
	return 0;
}

int graph_load(struct snap *s, hs_graph *g, char *err, size_t errlen)
{
	memset(g, 0, sizeof *g);
	int has_e = snap_has_table(s, "chunk_edge"), has_r = snap_has_table(s, "root");
	if (has_e < 0 || has_r < 0)
		return fail(g, err, errlen, "%s", snap_error(s));
	if (!has_e || !has_r)
		return fail(g, err, errlen, "damaged snapshot: %s", "no pointer graph tables");
	if (load_nodes(s, g, err, errlen) || load_edges(s, g, err, errlen) ||
	    load_roots(s, g, err, errlen))
		return -1;
	return 0;
}
