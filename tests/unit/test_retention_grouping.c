/* test_retention_grouping.c -- the shortcuts retention_report.c takes on big graphs,
 * checked against brute force on random graphs: `leaks` groups chunks by (category,
 * site or size class) with a hash table on the label pointers (equal names behind
 * different pointers must still merge; thousands of size classes make the table grow),
 * and `dominators` picks the largest children of a node with millions of children
 * without sorting them all (ties broken by node index). The expected rows are computed
 * here the slow way: one linear search per chunk, one full sort. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "graph_fixture.h"
#include "leaks.h"
#include "retention_report.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static char *capture(int (*fn)(FILE *, void *), void *arg)
{
	FILE *f = tmpfile();
	CHECK(f);
	CHECK_EQ(fn(f, arg), 0);
	long n = ftell(f);
	rewind(f);
	char *s = calloc(1, (size_t)n + 1);
	CHECK(s);
	CHECK_EQ(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

/* CSR graph from an edge list (sources in any order) */
static void build(hs_graph *g, uint32_t n, const uint32_t (*e)[2], uint32_t m)
{
	memset(g, 0, sizeof *g);
	g->n = n;
	g->m = m;
	g->addr = calloc(n, 8);
	g->size = calloc(n, 8);
	g->edge_start = calloc(n + 1, 4);
	g->edge_dst = calloc(m ? m : 1, 4);
	uint32_t *fill = calloc(n, 4);
	CHECK(g->addr && g->size && g->edge_start && g->edge_dst && fill);
	for (uint32_t i = 0; i < n; i++)
		g->addr[i] = 0x100000 + 0x10000 * (uint64_t)i;
	for (uint32_t k = 0; k < m; k++)
		g->edge_start[e[k][0] + 1]++;
	for (uint32_t i = 0; i < n; i++)
		g->edge_start[i + 1] += g->edge_start[i];
	for (uint32_t k = 0; k < m; k++)
		g->edge_dst[g->edge_start[e[k][0]] + fill[e[k][0]]++] = e[k][1];
	free(fill);
}

/* ---- leaks: grouping by site ---- */

#define LN 6000
#define NAMES 300
static const char *site_ptr[LN]; /* the label of each chunk: NULL, or one of 2 copies */

static const char *site_of(void *ctx, uint32_t i)
{
	(void)ctx;
	return site_ptr[i];
}

static hs_graph lg;
static rr_labels llabels = { site_of, NULL, NULL, NULL };
static int do_leaks(FILE *f, void *a)
{
	(void)a;
	return rr_leaks(f, &lg, &llabels, 5, 1);
}

typedef struct {
	uint32_t rank;
	const char *key;
	uint64_t size, count, bytes;
} ref_group;

static int cmp_ref(const void *a, const void *b)
{
	const ref_group *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (!x->key != !y->key)
		return x->key ? -1 : 1;
	if (x->key)
		return strcmp(x->key, y->key);
	return x->size < y->size ? -1 : x->size > y->size;
}

static void test_leak_groups(void)
{
	static char *copies[NAMES][2]; /* each name twice, at two addresses */
	for (int k = 0; k < NAMES; k++) {
		char name[64];
		snprintf(name, sizeof name, "fn%d (f%d.c:%d)", k, k % 7, k);
		for (int c = 0; c < 2; c++)
			CHECK(copies[k][c] = strdup(name));
	}
	uint32_t m = LN + LN / 2;
	uint32_t (*e)[2] = calloc(m, sizeof *e);
	CHECK(e);
	for (uint32_t k = 0; k < m; k++) {
		e[k][0] = rnd(LN);
		e[k][1] = rnd(LN) | (rnd(5) == 0 ? GRAPH_INTERIOR : 0);
	}
	build(&lg, LN, (const uint32_t (*)[2])e, m);
	free(e);
	for (uint32_t i = 0; i < LN; i++) {
		lg.size[i] = 32 + 16 * (uint64_t)rnd(3000); /* about 2600 size classes */
		site_ptr[i] = i % 3 == 0 ? NULL : copies[rnd(NAMES)][rnd(2)];
	}
	lg.n_roots = 40;
	lg.root_dst = calloc(lg.n_roots, 4);
	lg.root_kind = calloc(lg.n_roots, 1);
	CHECK(lg.root_dst && lg.root_kind);
	for (uint32_t r = 0; r < lg.n_roots; r++)
		lg.root_dst[r] = rnd(LN) | (rnd(4) == 0 ? GRAPH_INTERIOR : 0);

	/* the categories per chunk (leaks.c, tested on its own in test_leaks), grouped the
	 * slow way: by kind rank and site name, else size */
	leak_report r;
	CHECK_EQ(leak_classify(&lg, &r), 0);
	static const uint32_t rank[LEAK_KIND_COUNT] = { [LEAK_DEFINITE] = 0, [LEAK_INDIRECT] = 1,
							[LEAK_POSSIBLE] = 2, [LEAK_REACHABLE] = 3 };
	static const char *const key[4] = { "definitely_lost", "indirectly_lost", "possibly_lost",
					     "still_reachable" };
	ref_group *ref = calloc(LN, sizeof *ref);
	CHECK(ref);
	uint32_t nref = 0;
	for (uint32_t i = 0; i < LN; i++) {
		uint32_t k = rank[r.kind[i]], j;
		for (j = 0; j < nref; j++)
			if (ref[j].rank == k && !ref[j].key == !site_ptr[i] &&
			    (site_ptr[i] ? !strcmp(ref[j].key, site_ptr[i]) : ref[j].size == lg.size[i]))
				break;
		if (j == nref)
			ref[nref++] = (ref_group){ k, site_ptr[i], lg.size[i], 0, 0 };
		ref[j].count++;
		ref[j].bytes += lg.size[i];
	}
	leak_free(&r);
	CHECK(nref > 1024); /* the hash table grew twice (1024 slots, grown when half full) */
	qsort(ref, nref, sizeof *ref, cmp_ref);

	char *s = capture(do_leaks, NULL);
	const char *at = strstr(s, "\"sites\": [");
	CHECK(at);
	char line[256];
	for (uint32_t j = 0; j < nref; j++) {
		if (ref[j].key)
			snprintf(line, sizeof line, "{\"kind\": \"%s\", \"site\": \"%s\", \"count\": %llu, "
				 "\"bytes\": %llu}", key[ref[j].rank], ref[j].key,
				 (unsigned long long)ref[j].count, (unsigned long long)ref[j].bytes);
		else
			snprintf(line, sizeof line, "{\"kind\": \"%s\", \"site\": null, \"size_class\": "
				 "%llu, \"count\": %llu, \"bytes\": %llu}", key[ref[j].rank],
				 (unsigned long long)ref[j].size, (unsigned long long)ref[j].count,
				 (unsigned long long)ref[j].bytes);
		const char *hit = strstr(at, line);
		if (!hit)
			fprintf(stderr, "group %u missing or out of order: %s\n", j, line);
		CHECK(hit);
		at = hit + strlen(line);
	}
	/* nothing else in the list: exactly nref rows */
	uint32_t rows = 0;
	for (const char *p = strstr(s, "\"sites\": ["); p && (p = strstr(p, "{\"kind\": ")); p++)
		rows++;
	CHECK_EQ(rows, nref);
	free(s);
	free(ref);
	tg_release(&lg);
	for (int k = 0; k < NAMES; k++)
		for (int c = 0; c < 2; c++)
			free(copies[k][c]);
}

/* ---- dominators: the largest children of a node with many ---- */

#define HUB_KIDS 5000
static hs_graph dg;
static rr_labels dlabels = { NULL, NULL, NULL, NULL };
static uint32_t dlimit;
static int do_dom(FILE *f, void *a)
{
	(void)a;
	return rr_dominators(f, &dg, &dlabels, dlimit, 2, UINT32_MAX, 1);
}

static const uint64_t *ret_of;
static int cmp_kid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (ret_of[x] != ret_of[y])
		return ret_of[x] > ret_of[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

static void test_dom_children(void)
{
	/* root -> hub 0 -> kids 1..HUB_KIDS; each kid holds a private chain of 0..2 more
	 * chunks (nodes after the kids), sizes from a few values: many ties */
	uint32_t n = 1 + HUB_KIDS, m = 0;
	uint32_t (*e)[2] = calloc(HUB_KIDS * 3, sizeof *e);
	uint64_t *ret = calloc(1 + HUB_KIDS * 3, sizeof *ret);
	uint64_t *size = calloc(1 + HUB_KIDS * 3, sizeof *size);
	CHECK(e && ret && size);
	size[0] = 16;
	for (uint32_t k = 1; k <= HUB_KIDS; k++) {
		e[m][0] = 0;
		e[m++][1] = k;
		size[k] = 16 * (1 + rnd(4));
		ret[k] = size[k];
		uint32_t prev = k;
		for (uint32_t c = rnd(3); c > 0; c--) {
			size[n] = 16 * (1 + rnd(4));
			ret[k] += size[n];
			e[m][0] = prev;
			e[m++][1] = n;
			prev = n++;
		}
	}
	build(&dg, n, (const uint32_t (*)[2])e, m);
	memcpy(dg.size, size, n * sizeof *size);
	dg.n_roots = 1;
	dg.root_dst = calloc(1, 4);
	dg.root_kind = calloc(1, 1);
	CHECK(dg.root_dst && dg.root_kind);

	uint32_t *kids = calloc(HUB_KIDS, 4);
	CHECK(kids);
	for (uint32_t k = 0; k < HUB_KIDS; k++)
		kids[k] = k + 1;
	ret_of = ret;
	qsort(kids, HUB_KIDS, 4, cmp_kid);
	static const uint32_t limits[] = { 1, 10, 100, 700, HUB_KIDS };
	for (size_t li = 0; li < sizeof limits / sizeof *limits; li++) {
		dlimit = limits[li];
		char *s = capture(do_dom, NULL);
		const char *at = strstr(s, "\"children_total\": 5000");
		CHECK(at);
		char want[128];
		for (uint32_t k = 0; k < dlimit; k++) {
			snprintf(want, sizeof want, "\"address\": \"0x%llx\"",
				 (unsigned long long)dg.addr[kids[k]]);
			const char *hit = strstr(at, want);
			if (!hit)
				fprintf(stderr, "limit %u: child %u (%s) missing or out of order\n",
					dlimit, k, want);
			CHECK(hit);
			snprintf(want, sizeof want, "\"retained_bytes\": %llu,",
				 (unsigned long long)ret[kids[k]]);
			CHECK(strstr(hit, want));
			at = hit + 1;
		}
		if (dlimit < HUB_KIDS) { /* the next one is not shown */
			snprintf(want, sizeof want, "\"address\": \"0x%llx\"",
				 (unsigned long long)dg.addr[kids[dlimit]]);
			CHECK(!strstr(s, want));
		}
		free(s);
	}
	free(kids);
	free(e);
	free(ret);
	free(size);
	tg_release(&dg);
}

int main(void)
{
	test_leak_groups();
	test_dom_children();
	return 0;
}
