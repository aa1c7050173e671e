/* graph_load.c -- builds an hs_graph (graph.h) from a snapshot's chunk, chunk_edge and
 * root tables, and the helpers graph.h declares (graph_free, graph_find,
 * graph_hugepages).
 *
 * Memory: the arrays of graph.h and nothing else. Each table is read once, in rowid
 * order, straight into its final array: the arrays grow by doubling (glibc moves large
 * blocks with mremap, without copying or touching untouched pages) and are trimmed to
 * their exact size at the end, so no counting pass is needed. SQLite's page cache is
 * kept small while the tables stream through it (a sequential scan reuses no page).
 * The edges are decoded in a second thread, on a second connection to the file, while
 * the chunks load (edge_job below). The input is untrusted: every decoded destination
 * is range-checked, and a blob that does not decode to exactly its n edges is
 * "damaged".
 */
#define _GNU_SOURCE
#include "graph.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "graphwrite.h"
#include "snapshot.h"

void graph_hugepages(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
	/* the whole pages of the block, not just its 2 MiB-aligned middle: a large block is
	 * its own mapping, and advice on part of it would split it in several, which
	 * realloc can no longer mremap (it would copy) */
	const uintptr_t page = 4096;
	if (!p || bytes < ((size_t)4 << 20))
		return;
	uintptr_t lo = (uintptr_t)p & ~(page - 1);
	uintptr_t hi = ((uintptr_t)p + bytes + page - 1) & ~(page - 1);
	madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* advice only: errors do not matter */
#else
	(void)p;
	(void)bytes;
#endif
}

/* p grown to hold need elements of elem bytes (capacity *cap): the new block, or p
 * itself, with *oom set, when out of memory (p is still the caller's to free) */
static void *grow(void *p, size_t *cap, size_t need, size_t elem, int *oom)
{
	if (need <= *cap)
		return p;
	/* start above glibc's largest mmap threshold (32 MiB), so that the block is its own
	 * mapping from the first call: growing it is then an mremap, not a copy, and the
	 * pages not written yet are address space only */
	size_t c = *cap ? *cap : ((size_t)64 << 20) / elem;
	while (c < need)
		c *= 2;
	void *q = realloc(p, c * elem);
	if (!q) {
		*oom = 1;
		return p;
	}
	*cap = c;
	graph_hugepages(q, c * elem);
	return q;
}

/* p trimmed to count elements (a failed shrink keeps the larger block) */
static void *trim(void *p, size_t count, size_t elem)
{
	void *q = realloc(p, (count ? count : 1) * elem);
	return q ? q : p;
}

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
	size_t cap = 0, cap2 = 0;
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT addr, size FROM chunk WHERE state = 0 ORDER BY addr"))
		return fail(g, err, errlen, "%s", snap_error(s));
	uint64_t k = 0;
	int rc;
	while ((rc = snap_step(s, st)) == 1) {
		if (k >= (uint64_t)GRAPH_INTERIOR - 1) {
			sqlite3_finalize(st);
			return fail(g, err, errlen, "%s", "too many in-use chunks for the graph");
		}
		int oom = 0;
		g->addr = grow(g->addr, &cap, k + 1, sizeof *g->addr, &oom);
		g->size = grow(g->size, &cap2, k + 1, sizeof *g->size, &oom);
		if (oom) {
			sqlite3_finalize(st);
			return fail(g, err, errlen, "%s", "out of memory loading the graph");
		}
		/* addr is the rowid; a NULL size (a hostile file) reads as 0, as before */
		uint64_t a = (uint64_t)sqlite3_column_int64(st, 0);
		uint64_t z = (uint64_t)sqlite3_column_int64(st, 1);
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
	/* trimmed to n + 1 entries, the length they always had (an empty graph too) */
	int oom = 0;
	g->addr = grow(g->addr, &cap, 1, sizeof *g->addr, &oom);
	g->size = grow(g->size, &cap2, 1, sizeof *g->size, &oom);
	if (oom)
		return fail(g, err, errlen, "%s", "out of memory loading the graph");
	g->addr = trim(g->addr, k + 1, sizeof *g->addr);
	g->size = trim(g->size, k + 1, sizeof *g->size);
	g->n = (uint32_t)k;
	return 0;
}

/* The edges, knowing n: every check in row order, so that the first fault found is the
 * one reported. */
static int load_edges(snap *s, hs_graph *g, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	g->edge_start = calloc((size_t)g->n + 1, sizeof *g->edge_start);
	if (!g->edge_start)
		return fail(g, err, errlen, "%s", "out of memory loading the graph");
	graph_hugepages(g->edge_start, ((size_t)g->n + 1) * sizeof *g->edge_start);
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
		/* each edge takes at least two bytes of its blob */
		if (cnt < 0 || (uint64_t)cnt > (uint64_t)(end - p) / 2) {
			bad = "edge counts do not add up";
			break;
		}
		if (pos + (uint64_t)cnt > (uint64_t)UINT32_MAX - 1) {
			sqlite3_finalize(st);
			return fail(g, err, errlen, "%s", "too many edges for the graph");
		}
		int oom = 0;
		g->edge_dst = grow(g->edge_dst, &cap, (size_t)(pos + (uint64_t)cnt) + 1,
				   sizeof *g->edge_dst, &oom);
		if (oom) {
			sqlite3_finalize(st);
			return fail(g, err, errlen, "%s", "out of memory loading the graph");
		}
		uint32_t first = (uint32_t)grp * GW_GROUP;
		uint32_t last = g->n - first < GW_GROUP ? g->n : first + GW_GROUP;
		while (next < first)
			g->edge_start[next++] = (uint32_t)pos;
		uint64_t row_end = pos + (uint64_t)cnt;
		uint32_t *dst = g->edge_dst;
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
				dst[pos++] = (uint32_t)node | (interior ? GRAPH_INTERIOR : 0);
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
	int oom = 0;
	g->edge_dst = grow(g->edge_dst, &cap, 1, sizeof *g->edge_dst, &oom);
	if (oom)
		return fail(g, err, errlen, "%s", "out of memory loading the graph");
	g->edge_dst = trim(g->edge_dst, (size_t)pos + 1, sizeof *g->edge_dst);
	g->m = (uint32_t)pos;
	return 0;
}

/* The edges without knowing n, in a second thread on its own connection while the
 * first one reads the nodes (the two tables are independent; the nodes take about twice
 * as long). Optimistic: any doubt (a fault, or a row whose node count can only be
 * checked against n) sets ok = 0, and the caller then runs load_edges() instead, which
 * finds and reports the fault exactly as it always did. */
typedef struct {
	const char *path;
	uint32_t *start, *dst;  /* edge_start of the nodes decoded so far; the edges */
	size_t cap_start, cap_dst;
	uint32_t next;          /* nodes whose start is set */
	uint64_t pos;           /* edges decoded */
	uint64_t max_node;      /* largest destination seen (checked against n after) */
	uint64_t last_first;    /* first node of the last row, and its nodes decoded */
	uint32_t last_nodes;
	int rows, ok;
} edge_job;

static void *edge_job_run(void *arg)
{
	edge_job *j = arg;
	snap *s;
	char err[256];
	sqlite3_stmt *st = NULL;
	const uint64_t limit = GRAPH_INTERIOR; /* node numbers must fit below the flag bit */

	j->ok = 0;
	if (snap_open(j->path, &s, err, sizeof err) != SNAP_OK)
		return NULL;
	sqlite3_exec(snap_db(s), "PRAGMA cache_size=-2048", NULL, NULL, NULL);
	if (snap_prepare(s, &st, "SELECT grp, n, dst FROM chunk_edge ORDER BY grp")) {
		snap_close(s);
		return NULL;
	}
	int rc, bad = 0;
	while (!bad && (rc = snap_step(s, st)) == 1) {
		int64_t grp = snap_i64(st, 0, -1), cnt = snap_i64(st, 1, -1);
		const unsigned char *p = sqlite3_column_blob(st, 2);
		const unsigned char *end = p + sqlite3_column_bytes(st, 2);
		/* rows ascending, counts sane, and the previous row was a full one */
		if (grp < 0 || (uint64_t)grp >= limit / GW_GROUP ||
		    (uint64_t)grp * GW_GROUP < j->next || (j->rows && j->last_nodes != GW_GROUP) ||
		    cnt < 0 || (uint64_t)cnt > (uint64_t)(end - p) / 2 ||
		    j->pos + (uint64_t)cnt > (uint64_t)UINT32_MAX - 1 || !p) {
			bad = 1;
			break;
		}
		uint32_t first = (uint32_t)grp * GW_GROUP;
		int oom = 0;
		j->dst = grow(j->dst, &j->cap_dst, (size_t)(j->pos + (uint64_t)cnt) + 1,
			      sizeof *j->dst, &oom);
		j->start = grow(j->start, &j->cap_start, (size_t)first + GW_GROUP + 1,
				sizeof *j->start, &oom);
		if (oom) {
			bad = 1;
			break;
		}
		while (j->next < first)
			j->start[j->next++] = (uint32_t)j->pos;
		uint64_t row_end = j->pos + (uint64_t)cnt, pos = j->pos;
		uint32_t nodes = 0, *dst = j->dst;
		for (uint32_t i = first; i < first + GW_GROUP && p < end && !bad; i++, nodes++) {
			j->start[j->next++] = (uint32_t)pos;
			uint64_t k;
			if (gw_varint(&p, end, &k) || k > row_end - pos) {
				bad = 1;
				break;
			}
			uint64_t prev = i;
			for (uint64_t e = 0; e < k; e++) {
				uint64_t node, word;
				int interior;
				if (gw_decode(&p, end, e == 0, prev, limit, &node, &interior, &word)) {
					bad = 1;
					break;
				}
				dst[pos++] = (uint32_t)node | (interior ? GRAPH_INTERIOR : 0);
				prev = node;
			}
			if (k && prev > j->max_node)
				j->max_node = prev; /* ascending: the last is the largest */
		}
		if (bad || p != end || pos != row_end) {
			bad = 1;
			break;
		}
		j->pos = pos;
		j->last_first = first;
		j->last_nodes = nodes;
		j->rows++;
	}
	sqlite3_finalize(st);
	snap_close(s);
	j->ok = !bad && rc == 0;
	return NULL;
}

/* take the job's arrays as the graph's edges if they hold up now that n is known */
static int edge_job_take(edge_job *j, hs_graph *g)
{
	uint64_t n = g->n;
	if (!j->ok || (j->pos && j->max_node >= n))
		return -1;
	/* the last row must hold exactly its nodes: min(GW_GROUP, n - first) */
	if (j->rows && (j->last_first >= n ||
			j->last_nodes != (n - j->last_first < GW_GROUP ? n - j->last_first :
					  GW_GROUP)))
		return -1;
	int oom = 0;
	j->start = grow(j->start, &j->cap_start, (size_t)n + 1, sizeof *j->start, &oom);
	j->dst = grow(j->dst, &j->cap_dst, 1, sizeof *j->dst, &oom);
	if (oom)
		return -1;
	while (j->next <= n)
		j->start[j->next++] = (uint32_t)j->pos;
	j->start = trim(j->start, (size_t)n + 1, sizeof *j->start);
	j->dst = trim(j->dst, (size_t)j->pos + 1, sizeof *j->dst);
	g->edge_start = j->start;
	g->edge_dst = j->dst;
	g->m = (uint32_t)j->pos;
	j->start = j->dst = NULL;
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
	/* a small page cache while the tables stream through (the pages are read once, in
	 * order); the snapshot's own setting is back for the queries after the load */
	int64_t cache = 0;
	int small = !snap_query_i64(s, "PRAGMA cache_size", 0, &cache) && cache &&
		    !sqlite3_exec(snap_db(s), "PRAGMA cache_size=-2048", NULL, NULL, NULL);
	/* the edges in a second thread while this one reads the nodes */
	edge_job job = { .path = snap_path(s) };
	pthread_t tid;
	int threaded = job.path && sqlite3_threadsafe() &&
		       !pthread_create(&tid, NULL, edge_job_run, &job);
	int rc = load_nodes(s, g, err, errlen);
	if (threaded)
		pthread_join(tid, NULL);
	if (!rc && (!threaded || edge_job_take(&job, g) < 0))
		rc = load_edges(s, g, err, errlen);
	free(job.start);
	free(job.dst);
	if (!rc)
		rc = load_roots(s, g, err, errlen);
	if (small) {
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA cache_size=%lld", (long long)cache);
		sqlite3_exec(snap_db(s), sql, NULL, NULL, NULL);
	}
	return rc;
}
