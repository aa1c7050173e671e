/* test_graph_load.c -- the pointer graph from scan to loaded hs_graph, on synthetic
 * heaps with no process behind them: random chunk layouts (in-use and free chunks,
 * words pointing at user pointers, inside chunks, at headers, into free chunks, at
 * nothing) are scanned by ps_scan, written by sw_write, read back by graph_load, and the
 * edges and roots compared with a brute-force scan of the same bytes. Also: the edge
 * codec round-trips, graph_find, and a damaged edge blob is refused.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "graph.h"
#include "graphwrite.h"
#include "model.h"
#include "ptrscan.h"
#include "snapshot.h"
#include "snapwrite.h"
#include "heap_fixture.h"

#define HEAP 0x100000000ull
#define ROOTS 0x200000000ull

static uint32_t rnd_state = 1;
static uint32_t rnd(void)
{
	return sc_rnd(&rnd_state);
}

/* brute force: the in-use chunk whose [addr + 16, addr + size) holds v, or -1 */
static long brute_find(const sc_tchunk *t, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].in_use && t[i].addr + 16 <= v && v < t[i].addr + t[i].size)
			return (long)i;
	return -1;
}

static void one_case(int n_chunks, const char *path)
{
	sc_tchunk *t = calloc((size_t)n_chunks, sizeof *t);
	CHECK(t);
	uint64_t a = HEAP;
	for (int i = 0; i < n_chunks; i++) {
		t[i].addr = a;
		t[i].size = 32 + 16 * (rnd() % (i % 50 == 0 ? 200 : 14));
		t[i].in_use = rnd() % 5 != 0;
		a += t[i].size;
	}
	uint64_t heap_end = a + 64;
	size_t hbytes = (size_t)(heap_end - HEAP);
	uint64_t *words = calloc(hbytes / 8, 8);
	CHECK(words);
	for (size_t w = 0; w < hbytes / 8; w++) {
		uint32_t r = rnd() % 10;
		const sc_tchunk *d = &t[rnd() % (uint32_t)n_chunks];
		if (r == 0)
			words[w] = d->addr + 16;                       /* start */
		else if (r == 1)
			words[w] = d->addr + 16 + 8 * (rnd() % ((d->size - 16) / 8)); /* inside */
		else if (r == 2)
			words[w] = d->addr + (rnd() % 16);               /* its header */
		else
			words[w] = rnd();                                /* nothing */
	}
	uint64_t rwords[64];
	for (int k = 0; k < 64; k++)
		rwords[k] = k % 2 ? t[rnd() % (uint32_t)n_chunks].addr + 16 + (k % 4 == 3 ? 8 : 0) : rnd();

	img_image im;
	img_init(&im);
	CHECK(img_add_bytes(&im, HEAP, words, hbytes) == 0);
	CHECK(img_add_bytes(&im, ROOTS, rwords, sizeof rwords) == 0);
	img_finish(&im);

	hs_capture c;
	sc_init(&c, 2);
	/* chunks given out of address order: the scan sorts them */
	for (int i = n_chunks - 1; i >= 0; i--)
		sc_chunk(&c, t[i].addr, t[i].size, t[i].in_use);
	sc_map(&c, HEAP, heap_end, HS_MAP_HEAP);
	sc_map(&c, ROOTS, ROOTS + sizeof rwords, HS_MAP_ANON);

	ps_options po = { .root = "" };
	CHECK_EQ(ps_scan(&im, &c, &po, &c.graph), 0);
	CHECK(c.graph);

	/* ps_find agrees with brute force on every word */
	for (size_t w = 0; w < hbytes / 8; w += 3) {
		long b = brute_find(t, (size_t)n_chunks, words[w]);
		int64_t f = ps_find(c.graph, words[w]);
		CHECK_EQ(f < 0 ? -1 : (long long)c.graph->addr[f], b < 0 ? -1 : (long long)t[b].addr);
	}

	sc_write(&c, path);

	char err[512] = "";
	snap *s = NULL;
	CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
	hs_graph g;
	int lr = graph_load(s, &g, err, sizeof err);
	if (lr)
		fprintf(stderr, "%s\n", err);
	CHECK_EQ(lr, 0);

	/* nodes: the in-use chunks in address order */
	uint32_t node = 0;
	long *node_of = calloc((size_t)n_chunks, sizeof *node_of);
	CHECK(node_of);
	for (int i = 0; i < n_chunks; i++) {
		node_of[i] = -1;
		if (!t[i].in_use)
			continue;
		CHECK(node < g.n);
		CHECK_EQ(g.addr[node], t[i].addr);
		CHECK_EQ(g.size[node], t[i].size);
		CHECK_EQ(graph_find(&g, t[i].addr + t[i].size - 1), node);
		node_of[i] = node++;
	}
	CHECK_EQ(g.n, node);

	/* edges: brute force, deduplicated per destination, start pointers winning */
	uint32_t *want = malloc((size_t)n_chunks * sizeof *want);
	CHECK(want);
	uint64_t total = 0;
	for (int i = 0; i < n_chunks; i++) {
		if (!t[i].in_use)
			continue;
		uint32_t nw = 0;
		uint64_t usable = t[i].size - 8;
		for (uint64_t off = 0; off + 8 <= usable; off += 8) {
			uint64_t v = words[(t[i].addr + 16 + off - HEAP) / 8];
			long j = brute_find(t, (size_t)n_chunks, v);
			if (j < 0 || j == i)
				continue;
			uint32_t d = (uint32_t)node_of[j] | (v != t[j].addr + 16 ? GRAPH_INTERIOR : 0);
			int seen = 0;
			for (uint32_t k = 0; k < nw; k++)
				if (GRAPH_NODE(want[k]) == GRAPH_NODE(d)) {
					seen = 1;
					if (!(d & GRAPH_INTERIOR))
						want[k] = d;
				}
			if (!seen)
				want[nw++] = d;
		}
		/* sort ascending by node */
		for (uint32_t x = 1; x < nw; x++)
			for (uint32_t y = x; y > 0 && GRAPH_NODE(want[y - 1]) > GRAPH_NODE(want[y]); y--) {
				uint32_t tmp = want[y];
				want[y] = want[y - 1];
				want[y - 1] = tmp;
			}
		uint32_t src = (uint32_t)node_of[i];
		CHECK_EQ(g.edge_start[src + 1] - g.edge_start[src], nw);
		for (uint32_t k = 0; k < nw; k++)
			CHECK_EQ(g.edge_dst[g.edge_start[src] + k], want[k]);
		total += nw;
	}
	CHECK_EQ(g.m, total);
	CHECK(total > 0 || n_chunks < 100);

	/* roots: every word of the root mapping that hits an in-use chunk, in order */
	uint32_t r = 0;
	for (int k = 0; k < 64; k++) {
		long j = brute_find(t, (size_t)n_chunks, rwords[k]);
		if (j < 0)
			continue;
		CHECK(r < g.n_roots);
		CHECK_EQ(g.root_dst[r], (uint32_t)node_of[j] | (rwords[k] != t[j].addr + 16 ? GRAPH_INTERIOR : 0));
		CHECK_EQ(g.root_kind[r], GRAPH_ROOT_OTHER);
		CHECK_EQ(g.root_id[r], r + 1);
		r++;
	}
	CHECK_EQ(g.n_roots, r);
	graph_free(&g);
	snap_close(s);

	/* a damaged blob is refused with a message */
	if (!total)
		goto done;
	/* graph_load decodes the edges in a second thread before it knows the node count,
	 * then checks them against it (falling back to the exact row-by-row checks): each
	 * fault below must still be refused with its own message, and a missing row (nodes
	 * without edges) accepted */
	int64_t last_grp = -1, first_n = -1, last_n = -1;
	CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
	CHECK_EQ(snap_query_i64(s, "SELECT max(grp) FROM chunk_edge", -1, &last_grp), 0);
	CHECK_EQ(snap_query_i64(s, "SELECT n FROM chunk_edge ORDER BY grp LIMIT 1", -1, &first_n), 0);
	CHECK_EQ(snap_query_i64(s, "SELECT n FROM chunk_edge ORDER BY grp DESC LIMIT 1", -1,
				&last_n), 0);
	sqlite3_stmt *sel;
	CHECK_EQ(snap_prepare(s, &sel, "SELECT dst FROM chunk_edge ORDER BY grp DESC LIMIT 1"), 0);
	CHECK_EQ(snap_step(s, sel), 1);
	int last_len = sqlite3_column_bytes(sel, 0);
	unsigned char *last_blob = malloc(last_len ? (size_t)last_len : 1);
	CHECK(last_blob);
	memcpy(last_blob, sqlite3_column_blob(sel, 0), (size_t)last_len);
	sqlite3_finalize(sel);
	snap_close(s);
	static const struct {
		const char *damage, *undo, *msg; /* msg NULL: loads, without the last row */
	} faults[] = {
		{ "UPDATE chunk_edge SET n = n + 1 WHERE grp = (SELECT min(grp) FROM chunk_edge)",
		  "UPDATE chunk_edge SET n = n - 1 WHERE grp = (SELECT min(grp) FROM chunk_edge)",
		  "an edge blob that does not match its count" },
		{ "UPDATE chunk_edge SET grp = grp + 100000 WHERE grp = (SELECT max(grp) FROM chunk_edge)",
		  "UPDATE chunk_edge SET grp = grp - 100000 WHERE grp >= 100000",
		  "an edge row for nodes that do not exist" },
		{ "UPDATE chunk_edge SET n = -1 WHERE grp = (SELECT max(grp) FROM chunk_edge)",
		  NULL, "edge counts do not add up" },
		{ "DELETE FROM chunk_edge WHERE grp = (SELECT max(grp) FROM chunk_edge)", NULL, NULL },
	};
	for (size_t f = 0; f < sizeof faults / sizeof *faults; f++) {
		sqlite3 *fdb;
		char undo[256];
		if (!faults[f].undo)
			snprintf(undo, sizeof undo, "UPDATE chunk_edge SET n = %lld WHERE grp = %lld",
				 (long long)last_n, (long long)last_grp);
		CHECK_EQ(sqlite3_open(path, &fdb), SQLITE_OK);
		CHECK_EQ(sqlite3_exec(fdb, faults[f].damage, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(fdb);
		CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
		int lrc = graph_load(s, &g, err, sizeof err);
		if (faults[f].msg) {
			CHECK_EQ(lrc, -1);
			if (!strstr(err, faults[f].msg))
				fprintf(stderr, "fault %zu: got '%s'\n", f, err);
			CHECK(strstr(err, faults[f].msg));
			CHECK(g.addr == NULL && g.n == 0);
		} else {
			CHECK_EQ(lrc, 0);
			CHECK_EQ(g.m, total - (uint64_t)last_n);
			for (uint32_t v = (uint32_t)last_grp * 64; v < g.n; v++)
				CHECK_EQ(g.edge_start[v], g.m);
			graph_free(&g);
		}
		snap_close(s);
		CHECK_EQ(sqlite3_open(path, &fdb), SQLITE_OK);
		if (faults[f].undo || faults[f].msg) {
			CHECK_EQ(sqlite3_exec(fdb, faults[f].undo ? faults[f].undo : undo, NULL, NULL,
					      NULL), SQLITE_OK);
		} else { /* put the deleted row back */
			sqlite3_stmt *ins;
			CHECK_EQ(sqlite3_prepare_v2(fdb, "INSERT INTO chunk_edge VALUES (?, ?, ?)", -1,
						    &ins, NULL), SQLITE_OK);
			sqlite3_bind_int64(ins, 1, last_grp);
			sqlite3_bind_int64(ins, 2, last_n);
			sqlite3_bind_blob(ins, 3, last_blob, last_len, SQLITE_STATIC);
			CHECK_EQ(sqlite3_step(ins), SQLITE_DONE);
			sqlite3_finalize(ins);
		}
		sqlite3_close(fdb);
	}
	free(last_blob);
	(void)first_n;
	sqlite3 *db;
	CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ(sqlite3_exec(db, "UPDATE chunk_edge SET dst = x'ffff' WHERE grp = "
			      "(SELECT min(grp) FROM chunk_edge)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
	CHECK(graph_load(s, &g, err, sizeof err) == -1);
	CHECK(strstr(err, "damaged"));
	CHECK(g.addr == NULL && g.n == 0);
	snap_close(s);
done:
	unlink(path);
	free(want);
	free(node_of);
	free(words);
	free(t);
	hs_capture_free(&c);
	img_release(&im);
}

static void codec(void)
{
	uint32_t dst[] = { 3, 5 | 0x80000000u, 900000, 900001 | 0x80000000u };
	uint32_t word[] = { 0, 7, 200, 1u << 30 };
	unsigned char buf[20 * 4];
	size_t len = gw_encode(400000, dst, word, 4, buf);
	const unsigned char *p = buf;
	uint64_t prev = 400000;
	for (int i = 0; i < 4; i++) {
		uint64_t node, w;
		int in;
		CHECK_EQ(gw_decode(&p, buf + len, i == 0, prev, 1000000, &node, &in, &w), 0);
		CHECK_EQ(node, dst[i] & 0x7fffffffu);
		CHECK_EQ(in, !!(dst[i] & 0x80000000u));
		CHECK_EQ(w, word[i]);
		prev = node;
	}
	CHECK(p == buf + len);
	/* out of range and truncated */
	p = buf;
	uint64_t node, w;
	int in;
	CHECK_EQ(gw_decode(&p, buf + len, 1, 400000, 3, &node, &in, &w), -1);
	p = buf;
	CHECK_EQ(gw_decode(&p, buf + 1, 1, 400000, 1000000, &node, &in, &w), -1);
}

int main(void)
{
	char path[] = "/tmp/test_graph_load_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	codec();
	int sizes[] = { 1, 2, 7, 300, 3000 };
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		one_case(sizes[i], path);
	unlink(path);
	printf("ok\n");
	return 0;
}
