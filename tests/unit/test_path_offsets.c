/* test_path_offsets.c -- the snapshot side of `path` and `retained --by root`, on
 * synthetic heaps written to a real snapshot (ps_scan + sw_write, as test_graph_load.c):
 *   pr_edge_offset (analyze/path_report.c) returns, for every edge of the loaded graph,
 *   the offset of the word a brute-force scan of the heap bytes finds (the start pointer
 *   if any word points at the destination's user pointer, else the lowest interior
 *   one), across many 64-node chunk_edge rows, and 0 for pairs that are no edge;
 *   rg_compute (analyze/rootgroups.c) by root: all roots are words of one anonymous
 *   mapping, so one group "other anon 0x...", retaining every chunk reachable at all
 *   (brute force), and by module no group at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "graph.h"
#include "model.h"
#include "path_report.h"
#include "ptrscan.h"
#include "rootgroups.h"
#include "snapshot.h"
#include "snapwrite.h"
#include "heap_fixture.h"

#define HEAP 0x100000000ull
#define ROOTS 0x200000000ull

static uint32_t rnd_state = 7;
static uint32_t rnd(void)
{
	return sc_rnd(&rnd_state);
}

static void one_case(int n_chunks, const char *path)
{
	sc_tchunk *t = calloc((size_t)n_chunks, sizeof *t);
	CHECK(t);
	uint64_t a = HEAP;
	for (int i = 0; i < n_chunks; i++) {
		t[i].addr = a;
		t[i].size = 32 + 16 * (rnd() % 14);
		t[i].in_use = rnd() % 6 != 0;
		a += t[i].size;
	}
	uint64_t heap_end = a + 64;
	size_t hbytes = (size_t)(heap_end - HEAP);
	uint64_t *words = calloc(hbytes / 8, 8);
	CHECK(words);
	for (size_t w = 0; w < hbytes / 8; w++) {
		uint32_t r = rnd() % 12;
		const sc_tchunk *d = &t[rnd() % (uint32_t)n_chunks];
		if (r == 0)
			words[w] = d->addr + 16;
		else if (r == 1)
			words[w] = d->addr + 16 + 8 * (rnd() % ((d->size - 16) / 8));
		else
			words[w] = rnd();
	}
	uint64_t rwords[16];
	for (int k = 0; k < 16; k++)
		rwords[k] = k % 2 ? t[rnd() % (uint32_t)n_chunks].addr + 16 : rnd();

	img_image im;
	img_init(&im);
	CHECK(img_add_bytes(&im, HEAP, words, hbytes) == 0);
	CHECK(img_add_bytes(&im, ROOTS, rwords, sizeof rwords) == 0);
	img_finish(&im);

	hs_capture c;
	sc_init(&c, 2);
	for (int i = 0; i < n_chunks; i++)
		sc_chunk(&c, t[i].addr, t[i].size, t[i].in_use);
	sc_map(&c, HEAP, heap_end, HS_MAP_HEAP);
	sc_map(&c, ROOTS, ROOTS + sizeof rwords, HS_MAP_ANON);
	ps_options po = { .root = "" };
	CHECK_EQ(ps_scan(&im, &c, &po, &c.graph), 0);
	sc_write(&c, path);
	char err[512] = "";

	snap *s = NULL;
	CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
	hs_graph g;
	CHECK_EQ(graph_load(s, &g, err, sizeof err), 0);
	long *chunk_of = malloc((g.n + 1) * sizeof *chunk_of);
	CHECK(chunk_of);
	for (int i = 0, k = 0; i < n_chunks; i++)
		if (t[i].in_use)
			chunk_of[k++] = i;

	/* every edge: the offset a brute-force scan finds */
	uint64_t edges = 0;
	for (uint32_t u = 0; u < g.n; u++) {
		const sc_tchunk *src = &t[chunk_of[u]];
		for (uint32_t e = g.edge_start[u]; e < g.edge_start[u + 1]; e++) {
			uint32_t v = GRAPH_NODE(g.edge_dst[e]);
			const sc_tchunk *dst = &t[chunk_of[v]];
			int64_t start = -1, inner = -1;
			for (uint64_t off = 0; off + 8 <= src->size - 8; off += 8) {
				uint64_t x = words[(src->addr + 16 + off - HEAP) / 8];
				if (x == dst->addr + 16 && start < 0)
					start = (int64_t)off;
				else if (x > dst->addr + 16 && x < dst->addr + dst->size && inner < 0)
					inner = (int64_t)off;
			}
			uint64_t off = 0;
			CHECK_EQ(pr_edge_offset(s, g.n, u, v, &off, err, sizeof err), 1);
			CHECK_EQ(off, start >= 0 ? start : inner);
			CHECK_EQ(!!(g.edge_dst[e] & GRAPH_INTERIOR), start < 0);
			edges++;
		}
		/* a pair that is no edge */
		uint32_t v = (u + 1) % g.n, is_edge = v == u;
		for (uint32_t e = g.edge_start[u]; e < g.edge_start[u + 1]; e++)
			is_edge |= GRAPH_NODE(g.edge_dst[e]) == v;
		uint64_t off = 0;
		if (!is_edge)
			CHECK_EQ(pr_edge_offset(s, g.n, u, v, &off, err, sizeof err), 0);
	}
	CHECK(edges > (uint64_t)n_chunks / 4);

	/* roots: one group, retaining everything reachable */
	uint8_t *seen = calloc(g.n + 1, 1);
	uint32_t *todo = malloc((g.n + 1) * sizeof *todo), nt = 0;
	CHECK(seen && todo);
	uint64_t want_bytes = 0, want_count = 0;
	for (uint32_t r = 0; r < g.n_roots; r++) {
		uint32_t v = GRAPH_NODE(g.root_dst[r]);
		if (!seen[v]) {
			seen[v] = 1;
			todo[nt++] = v;
		}
	}
	while (nt) {
		uint32_t u = todo[--nt];
		want_bytes += g.size[u];
		want_count++;
		for (uint32_t e = g.edge_start[u]; e < g.edge_start[u + 1]; e++) {
			uint32_t v = GRAPH_NODE(g.edge_dst[e]);
			if (!seen[v]) {
				seen[v] = 1;
				todo[nt++] = v;
			}
		}
	}
	rg_set set;
	CHECK_EQ(rg_compute(s, &g, RG_BY_ROOT, &set, err, sizeof err), 0);
	CHECK_EQ(set.n, g.n_roots ? 1 : 0);
	if (set.n) {
		char key[64];
		snprintf(key, sizeof key, "other anon 0x%llx", (unsigned long long)ROOTS);
		CHECK_STR(set.group[0].key, key);
		CHECK_EQ(set.group[0].roots, g.n_roots);
		CHECK_EQ(set.group[0].retained_bytes, want_bytes);
		CHECK_EQ(set.group[0].retained_count, want_count);
	}
	rg_free(&set);
	CHECK_EQ(rg_compute(s, &g, RG_BY_MODULE, &set, err, sizeof err), 0);
	CHECK_EQ(set.n, 0);
	rg_free(&set);

	free(seen);
	free(todo);
	free(chunk_of);
	graph_free(&g);
	snap_close(s);
	unlink(path);
	free(words);
	free(t);
	hs_capture_free(&c);
	img_release(&im);
}

int main(void)
{
	char path[] = "/tmp/test_path_offsets_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	unlink(path);
	one_case(40, path);
	one_case(700, path);
	one_case(3000, path);
	printf("ok: edge offsets and root groups from a written snapshot\n");
	return 0;
}
