/* test_retention_report.c -- the retention commands' output (retention_report.c) on a
 * hand-built heap: JSON figures must match the hand-computed ones (leak categories,
 * retained bytes of the diamond, histogram rows; paths are analyze/path_report.c's,
 * tested in test_path_offsets and test_retention.py),
 * and the human tables must carry the same figures. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "retention_report.h"

/* 0 -> 1 -> 2 (global root); 3 <-> 4 leaked cycle; 5 -> 6 leaked subtree -> 7;
 * 8, 9 roots sharing 10; 11 reached only through an interior pointer from 2 */
static const uint32_t edges[][2] = { { 0, 1 }, { 1, 2 }, { 3, 4 }, { 4, 3 }, { 5, 6 },
				     { 6, 7 }, { 8, 10 }, { 9, 10 }, { 2, 11 | GRAPH_INTERIOR } };
static const uint32_t roots[] = { 0, 8, 9 };
static const uint8_t kinds[] = { GRAPH_ROOT_GLOBAL, GRAPH_ROOT_STACK, GRAPH_ROOT_REGISTER };
#define N 12

static const char *site_of(void *ctx, uint32_t i)
{
	return i == 5 ? "make_subtree (fx.c:10)" : i == 3 || i == 4 ? "make_cycle (fx.c:20)" : NULL;
}

static const char *type_of(void *ctx, uint32_t i)
{
	return i <= 2 ? "Node" : NULL;
}

static const char *source_of(void *ctx, uint32_t r)
{
	return r == 0 ? "fx:global_tree" : NULL;
}

static char *capture(int (*fn)(FILE *, void *), void *arg)
{
	FILE *f = tmpfile();
	CHECK(f);
	CHECK_EQ(fn(f, arg), 0);
	long n = ftell(f);
	rewind(f);
	char *s = calloc(1, n + 1);
	CHECK_EQ(fread(s, 1, n, f), (size_t)n);
	fclose(f);
	return s;
}

static hs_graph g;
static rr_labels labels = { site_of, type_of, source_of, NULL };

static int do_leaks_json(FILE *f, void *a) { return rr_leaks(f, &g, &labels, 10, 1); }
static int do_leaks_text(FILE *f, void *a) { return rr_leaks(f, &g, &labels, 10, 0); }
static int do_dom_json(FILE *f, void *a) { return rr_dominators(f, &g, &labels, 10, 3, UINT32_MAX, 1); }
static int do_dom_text(FILE *f, void *a) { return rr_dominators(f, &g, &labels, 10, 3, UINT32_MAX, 0); }
static int do_dom_root(FILE *f, void *a) { return rr_dominators(f, &g, &labels, 10, 3, 1, 1); }
static int do_hist_type(FILE *f, void *a) { return rr_histogram(f, &g, &labels, 1, 1); }
static const char *group_key(void *ctx, uint32_t i)
{
	return i == 8 || i == 9 ? "both diamond roots" : i == 0 ? "tree" : i == 3 ? "lost" : NULL;
}
static int do_retained(FILE *f, void *a) { return rr_retained(f, &g, group_key, NULL, 10, 1); }
static int do_retained_cap(FILE *f, void *a) { return rr_retained(f, &g, group_key, NULL, 1, 0); }
static int do_hist_size(FILE *f, void *a) { return rr_histogram(f, &g, &labels, 0, 0); }

#define HAS(s, sub) do { if (!strstr((s), (sub))) { \
	fprintf(stderr, "missing %s in:\n%s\n", (sub), (s)); CHECK(0); } } while (0)

int main(void)
{
	uint32_t m = sizeof edges / sizeof *edges;
	g.n = N;
	g.m = m;
	g.addr = calloc(N, 8);
	g.size = calloc(N, 8);
	g.edge_start = calloc(N + 1, 4);
	g.edge_dst = calloc(m, 4);
	for (uint32_t i = 0; i < N; i++) {
		g.addr[i] = 0x5000 + 0x100 * i;
		g.size[i] = 32 * (i + 1);
	}
	for (uint32_t e = 0; e < m; e++)
		g.edge_start[edges[e][0] + 1]++;
	for (uint32_t i = 0; i < N; i++)
		g.edge_start[i + 1] += g.edge_start[i];
	uint32_t fill[N] = { 0 };
	for (uint32_t e = 0; e < m; e++)
		g.edge_dst[g.edge_start[edges[e][0]] + fill[edges[e][0]]++] = edges[e][1];
	g.n_roots = 3;
	g.root_dst = (uint32_t *)roots;
	g.root_kind = (uint8_t *)kinds;

	/* leaks: definite 3 (128 B) and 5 (192 B); indirect 4 (160), 6 (224), 7 (256);
	 * possible 11 (384); reachable 0, 1, 2, 8, 9, 10 (32+64+96+288+320+352 = 1152) */
	char *s = capture(do_leaks_json, NULL);
	HAS(s, "\"definitely_lost\": {\"count\": 2, \"bytes\": 320}");
	HAS(s, "\"indirectly_lost\": {\"count\": 3, \"bytes\": 640}");
	HAS(s, "\"possibly_lost\": {\"count\": 1, \"bytes\": 384}");
	HAS(s, "\"still_reachable\": {\"count\": 6, \"bytes\": 1152}");
	HAS(s, "{\"kind\": \"definitely_lost\", \"site\": \"make_subtree (fx.c:10)\", \"count\": 1, \"bytes\": 192}");
	HAS(s, "{\"kind\": \"indirectly_lost\", \"site\": \"make_cycle (fx.c:20)\", \"count\": 1, \"bytes\": 160}");
	HAS(s, "{\"address\": \"0x5500\", \"type\": null, \"site\": \"make_subtree (fx.c:10)\", \"shallow_bytes\": 192, \"blocks\": 3, \"bytes\": 672}");
	HAS(s, "{\"address\": \"0x5300\", \"type\": null, \"site\": \"make_cycle (fx.c:20)\", \"shallow_bytes\": 128, \"blocks\": 2, \"bytes\": 288}");
	free(s);
	s = capture(do_leaks_text, NULL);
	HAS(s, "definitely lost");
	HAS(s, "672 B");
	HAS(s, "make_subtree (fx.c:10)");
	free(s);

	/* dominators: 0 retains 0, 1, 2, 11 = 32+64+96+384; 10 is retained by neither 8
	 * nor 9, so it is a top-level node of its own */
	s = capture(do_dom_json, NULL);
	HAS(s, "\"reached_chunks\": 7");
	HAS(s, "\"reached_bytes\": 1536");
	HAS(s, "\"address\": \"0x5000\"");
	HAS(s, "\"retained_bytes\": 576");
	HAS(s, "\"label\": \"size 352\"");
	HAS(s, "\"shallow_bytes\": 288,\n");
	CHECK(strstr(s, "\"retained_bytes\": 576") < strstr(s, "\"retained_bytes\": 352"));
	free(s);
	s = capture(do_dom_text, NULL);
	HAS(s, "576 B");
	HAS(s, "  0x5100");
	free(s);
	s = capture(do_dom_root, NULL);
	HAS(s, "\"root_retained_bytes\": 544");
	HAS(s, "\"address\": \"0x5200\"");
	free(s);

	/* precise retained size: 8 and 9 together retain 10 too: 288+320+352 */
	s = capture(do_retained, NULL);
	HAS(s, "\"groups_total\": 3");
	HAS(s, "{\"key\": \"both diamond roots\", \"count\": 2, \"shallow_bytes\": 608, \"retained_count\": 3, \"retained_bytes\": 960}");
	HAS(s, "{\"key\": \"tree\", \"count\": 1, \"shallow_bytes\": 32, \"retained_count\": 4, \"retained_bytes\": 576}");
	HAS(s, "{\"key\": \"lost\", \"count\": 1, \"shallow_bytes\": 128, \"retained_count\": 0, \"retained_bytes\": 0}");
	free(s);
	s = capture(do_retained_cap, NULL);
	HAS(s, "1 of 3 groups");
	HAS(s, "960 B");
	free(s);

	s = capture(do_hist_type, NULL);
	HAS(s, "{\"type\": \"Node\", \"count\": 3, \"bytes\": 192}");
	free(s);
	s = capture(do_hist_size, NULL);
	HAS(s, "size 384");
	free(s);
	free(g.addr);
	free(g.size);
	free(g.edge_start);
	free(g.edge_dst);
	return 0;
}
