/* retention_report.c -- the output of the retention commands (retention_report.h):
 * tables and JSON over dominators.c, leaks.c and paths.c. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dominators.h"
#include "leaks.h"
#include "output.h"
#include "paths.h"
#include "retained.h"
#include "retention_report.h"

#define RR_MAX_DEPTH 12 /* JSON nests two levels per tree level: OUT_JSON_DEPTH is 32 */

static const char *const root_kinds[] = { "register", "stack", "global", "tls", "other" };

const char *rr_root_kind_name(unsigned kind)
{
	return kind < GRAPH_ROOT_KIND_COUNT ? root_kinds[kind] : "?";
}

static const char *rr_site(const rr_labels *l, uint32_t i)
{
	return l && l->site ? l->site(l->ctx, i) : NULL;
}

static const char *rr_type(const rr_labels *l, uint32_t i)
{
	return l && l->type ? l->type(l->ctx, i) : NULL;
}

/* the type, else the size class */
static const char *rr_label(const hs_graph *g, const rr_labels *l, uint32_t i, char *buf,
			    size_t n)
{
	const char *t = rr_type(l, i);
	if (t)
		return t;
	snprintf(buf, n, "size %" PRIu64, g->size[i]);
	return buf;
}

/* ---- grouping by a string key, or by size when the key is NULL ---- */

typedef struct {
	const char *key;
	uint64_t size;
	uint32_t kind;
	uint64_t count, bytes;
} rr_group;

static int cmp_group_key(const void *a, const void *b)
{
	const rr_group *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (!x->key != !y->key)
		return x->key ? -1 : 1;
	if (x->key) {
		int c = strcmp(x->key, y->key);
		if (c)
			return c;
		return 0;
	}
	return x->size < y->size ? -1 : x->size > y->size;
}

/* ---- --sort (rr_set_sort) ---- */
static enum rr_sort rr_order;   /* RR_SORT_DEFAULT */

void rr_set_sort(enum rr_sort s)
{
	rr_order = s;
}

static int cmp_group_bytes(const void *a, const void *b)
{
	const rr_group *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return cmp_group_key(a, b);
}

/* merge items with equal (kind, key) in place, then order by kind and bytes */
static uint32_t rr_group_items(rr_group *it, uint32_t n)
{
	uint32_t out = 0;
	qsort(it, n, sizeof *it, cmp_group_key);
	for (uint32_t i = 0; i < n; i++) {
		if (out && !cmp_group_key(&it[out - 1], &it[i])) {
			it[out - 1].count += it[i].count;
			it[out - 1].bytes += it[i].bytes;
		} else {
			it[out++] = it[i];
		}
	}
	qsort(it, out, sizeof *it, cmp_group_bytes);
	return out;
}

/* the --sort order of merged groups: kind first (leaks' categories), then count (most
 * chunks first) or name (ascending, size rows by size); bytes: as rr_group_items left it */
static int cmp_group_sorted(const void *a, const void *b)
{
	const rr_group *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (rr_order == RR_SORT_COUNT && x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (rr_order == RR_SORT_NAME)
		return cmp_group_key(a, b);
	return cmp_group_bytes(a, b);
}

static void rr_group_sort(rr_group *it, uint32_t n)
{
	if (rr_order == RR_SORT_COUNT || rr_order == RR_SORT_NAME)
		qsort(it, n, sizeof *it, cmp_group_sorted);
}

static const char *rr_group_name(const rr_group *gr, char *buf, size_t n)
{
	if (gr->key)
		return gr->key;
	snprintf(buf, n, "size %" PRIu64, gr->size);
	return buf;
}

/* Group n items into (kind, key, or size when the key is NULL) without an array of n
 * items: a hash table on the key's pointer (labels are interned: a handful of distinct
 * pointers), then rr_group_items merges equal names held by different pointers and
 * orders the groups. item(ctx, i, &g) fills item i. Returns the groups (malloc'ed) and
 * their count in *ng, or NULL when out of memory. */
static rr_group *rr_group_hashed(uint32_t n, void (*item)(void *, uint32_t, rr_group *),
				 void *ctx, uint32_t *ng)
{
	uint32_t cap = 1024, used = 0;
	rr_group *tab = calloc(cap, sizeof *tab);
	if (!tab)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		rr_group x;
		item(ctx, i, &x);
		uint64_t h = (uint64_t)(uintptr_t)x.key * 0x9E3779B97F4A7C15ull ^
			     (x.key ? 0 : x.size * 0xC2B2AE3D27D4EB4Full) ^ x.kind;
		h ^= h >> 29;
		uint32_t j = (uint32_t)h & (cap - 1);
		while (tab[j].count && (tab[j].kind != x.kind || tab[j].key != x.key ||
					(!x.key && tab[j].size != x.size)))
			j = (j + 1) & (cap - 1);
		if (tab[j].count) {
			tab[j].count += x.count;
			tab[j].bytes += x.bytes;
			continue;
		}
		tab[j] = x;
		if (++used * 2 <= cap)
			continue;
		/* grow: rehash into a table twice as large */
		rr_group *big = calloc((size_t)cap * 2, sizeof *big);
		if (!big) {
			free(tab);
			return NULL;
		}
		for (uint32_t k = 0; k < cap; k++) {
			if (!tab[k].count)
				continue;
			const rr_group *y = &tab[k];
			uint64_t hy = (uint64_t)(uintptr_t)y->key * 0x9E3779B97F4A7C15ull ^
				      (y->key ? 0 : y->size * 0xC2B2AE3D27D4EB4Full) ^ y->kind;
			hy ^= hy >> 29;
			uint32_t m = (uint32_t)hy & (cap * 2 - 1);
			while (big[m].count)
				m = (m + 1) & (cap * 2 - 1);
			big[m] = *y;
		}
		free(tab);
		tab = big;
		cap *= 2;
	}
	uint32_t out = 0;
	for (uint32_t k = 0; k < cap; k++)
		if (tab[k].count)
			tab[out++] = tab[k];
	*ng = rr_group_items(tab, out);
	return tab;
}

/* ---- leaks ---- */

/* report order: definitely, indirectly, possibly lost, still reachable */
static const uint32_t leak_order[LEAK_KIND_COUNT] = { LEAK_DEFINITE, LEAK_INDIRECT,
						     LEAK_POSSIBLE, LEAK_REACHABLE };

typedef struct {
	const hs_graph *g;
	const rr_labels *l;
	const leak_report *r;
	uint32_t rank[LEAK_KIND_COUNT];
} rr_leak_items;

static void rr_leak_item(void *ctx, uint32_t i, rr_group *out)
{
	const rr_leak_items *li = ctx;
	*out = (rr_group){ rr_site(li->l, i), li->g->size[i], li->rank[li->r->kind[i]], 1,
			   li->g->size[i] };
}

int rr_leaks(FILE *f, const hs_graph *g, const rr_labels *l, uint32_t limit, int json)
{
	leak_report r;
	char buf[64], sz[OUT_SIZE_LEN];

	if (leak_classify(g, &r) < 0)
		return -1;
	rr_leak_items li = { g, l, &r, { 0 } };
	for (uint32_t i = 0; i < LEAK_KIND_COUNT; i++)
		li.rank[leak_order[i]] = i;
	uint32_t ng;
	rr_group *it = rr_group_hashed(g->n, rr_leak_item, &li, &ng);
	if (!it) {
		leak_free(&r);
		return -1;
	}
	rr_group_sort(it, ng);
	uint32_t nroots = r.n_roots < limit ? r.n_roots : limit;

	if (json) {
		out_json j;
		out_json_init(&j, f);
		out_json_obj(&j, NULL);
		out_json_u64(&j, "chunks", g->n);
		for (uint32_t k = 0; k < LEAK_KIND_COUNT; k++) {
			out_json_obj_line(&j, leak_kind_key(leak_order[k]));
			out_json_u64(&j, "count", r.count[leak_order[k]]);
			out_json_u64(&j, "bytes", r.bytes[leak_order[k]]);
			out_json_end(&j);
		}
		out_json_arr(&j, "sites");
		for (uint32_t i = 0; i < ng; i++) {
			out_json_obj_line(&j, NULL);
			out_json_str(&j, "kind", leak_kind_key(leak_order[it[i].kind]));
			out_json_str(&j, "site", it[i].key);
			if (!it[i].key)
				out_json_u64(&j, "size_class", it[i].size);
			out_json_u64(&j, "count", it[i].count);
			out_json_u64(&j, "bytes", it[i].bytes);
			out_json_end(&j);
		}
		out_json_end(&j);
		out_json_u64(&j, "leak_roots_total", r.n_roots);
		out_json_arr(&j, "leak_roots");
		for (uint32_t i = 0; i < nroots; i++) {
			uint32_t u = r.roots[i].node;
			out_json_obj_line(&j, NULL);
			snprintf(buf, sizeof buf, "0x%" PRIx64, g->addr ? g->addr[u] : 0);
			out_json_str(&j, "address", buf);
			out_json_str(&j, "type", rr_type(l, u));
			out_json_str(&j, "site", rr_site(l, u));
			out_json_u64(&j, "shallow_bytes", g->size[u]);
			out_json_u64(&j, "blocks", r.roots[i].blocks);
			out_json_u64(&j, "bytes", r.roots[i].bytes);
			out_json_end(&j);
		}
		out_json_end(&j);
		out_json_end(&j);
		out_json_finish(&j);
	} else {
		static const out_col cols[] = { { "category", OUT_LEFT }, { "chunks", OUT_RIGHT },
						{ "bytes", OUT_RIGHT } };
		out_table *t = out_table_new(cols, 3);
		for (uint32_t k = 0; t && k < LEAK_KIND_COUNT; k++) {
			out_cell(t, leak_kind_name(leak_order[k]));
			out_cell_u64(t, r.count[leak_order[k]]);
			out_cell_size(t, r.bytes[leak_order[k]]);
		}
		int bad = !t || out_table_print(t, f) < 0;
		out_table_free(t);
		static const out_col rcols[] = { { "leak root", OUT_LEFT }, { "type", OUT_LEFT },
						 { "site", OUT_LEFT }, { "chunks", OUT_RIGHT },
						 { "holds", OUT_RIGHT } };
		fprintf(f, "\nleak roots (definitely lost, with the chunks they hold): %u%s\n",
			r.n_roots, nroots < r.n_roots ? ", largest shown" : "");
		t = out_table_new(rcols, 5);
		for (uint32_t i = 0; t && i < nroots; i++) {
			uint32_t u = r.roots[i].node;
			const char *s = rr_site(l, u);
			out_cellf(t, "0x%" PRIx64, g->addr ? g->addr[u] : 0);
			out_cell(t, rr_label(g, l, u, buf, sizeof buf));
			out_cell(t, s ? s : "-");
			out_cell_u64(t, r.roots[i].blocks);
			out_cell_size(t, r.roots[i].bytes);
		}
		bad |= !t || out_table_print(t, f) < 0;
		out_table_free(t);
		static const out_col scols[] = { { "category", OUT_LEFT }, { "site", OUT_LEFT },
						 { "chunks", OUT_RIGHT }, { "bytes", OUT_RIGHT } };
		fprintf(f, "\nby site:\n");
		t = out_table_new(scols, 4);
		for (uint32_t i = 0; t && i < ng; i++) {
			out_cell(t, leak_kind_name(leak_order[it[i].kind]));
			out_cell(t, rr_group_name(&it[i], buf, sizeof buf));
			out_cell_u64(t, it[i].count);
			out_cell_size(t, it[i].bytes);
		}
		bad |= !t || out_table_print(t, f) < 0;
		out_table_free(t);
		(void)sz;
		if (bad) {
			free(it);
			leak_free(&r);
			return -1;
		}
	}
	free(it);
	leak_free(&r);
	return 0;
}

/* ---- dominators ---- */

/* children order: retained bytes (the default), shallow bytes (RR_SORT_SHALLOW), both
 * largest first, or address (RR_SORT_ADDRESS: node order, ascending); ctx = rr_dom */
static int cmp_retained(const void *a, const void *b, void *ctx);

typedef struct {
	FILE *f;
	const hs_graph *g;
	const rr_labels *l;
	const dom_tree *t;
	uint32_t *start, *child, limit, depth;
	out_json *j;
	out_table *tab;
} rr_dom;

static int cmp_retained(const void *a, const void *b, void *ctx)
{
	const rr_dom *d = ctx;
	const uint64_t *ret = rr_order == RR_SORT_SHALLOW ? d->g->size : d->t->retained;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (rr_order != RR_SORT_ADDRESS && ret[x] != ret[y])
		return ret[x] > ret[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* one level: the largest `limit` children of parent p (g->n: the super-root); depth is
 * bounded by RR_MAX_DEPTH, so the recursion is too */
static int rr_dom_level(rr_dom *d, uint32_t p, uint32_t level)
{
	uint32_t s = d->start[p], e = d->start[p + 1], cnt = e - s;
	uint32_t *kids = malloc((cnt ? cnt : 1) * sizeof *kids);
	char buf[64];

	if (!kids)
		return -1;
	uint32_t shown = cnt < d->limit ? cnt : d->limit;
	if (shown && shown <= 64 && shown < cnt / 8) {
		/* a node with many children (a list head holds millions) and a small --limit:
		 * keep the `shown` first in cmp_retained order by insertion (at most 64 moves
		 * a child) instead of sorting them all */
		uint32_t have = 0;
		for (uint32_t i = s; i < e; i++) {
			uint32_t u = d->child[i];
			if (have == shown &&
			    cmp_retained(&u, &kids[have - 1], d) >= 0)
				continue;
			uint32_t at = have < shown ? have++ : shown - 1;
			while (at && cmp_retained(&u, &kids[at - 1], d) < 0) {
				kids[at] = kids[at - 1];
				at--;
			}
			kids[at] = u;
		}
	} else {
		memcpy(kids, d->child + s, cnt * sizeof *kids);
		qsort_r(kids, cnt, sizeof *kids, cmp_retained, d);
	}
	for (uint32_t i = 0; i < shown; i++) {
		uint32_t u = kids[i];
		const char *site = rr_site(d->l, u);
		if (d->j) {
			out_json_obj(d->j, NULL);
			snprintf(buf, sizeof buf, "0x%" PRIx64, d->g->addr ? d->g->addr[u] : 0);
			out_json_str(d->j, "address", buf);
			out_json_str(d->j, "label", rr_label(d->g, d->l, u, buf, sizeof buf));
			out_json_str(d->j, "type", rr_type(d->l, u));
			out_json_str(d->j, "site", site);
			out_json_u64(d->j, "shallow_bytes", d->g->size[u]);
			out_json_u64(d->j, "retained_bytes", d->t->retained[u]);
			out_json_u64(d->j, "children_total", d->start[u + 1] - d->start[u]);
			out_json_arr(d->j, "children");
		} else {
			out_cellf(d->tab, "%*s0x%" PRIx64, (int)(2 * level), "",
				  d->g->addr ? d->g->addr[u] : 0);
			out_cell_size(d->tab, d->t->retained[u]);
			out_cell_size(d->tab, d->g->size[u]);
			out_cell(d->tab, rr_label(d->g, d->l, u, buf, sizeof buf));
			out_cell(d->tab, site ? site : "-");
		}
		if (level + 1 < d->depth && rr_dom_level(d, u, level + 1) < 0) {
			free(kids);
			return -1;
		}
		if (d->j) {
			out_json_end(d->j);
			out_json_end(d->j);
		}
	}
	free(kids);
	return 0;
}

int rr_dominators(FILE *f, const hs_graph *g, const rr_labels *l, uint32_t limit,
		  uint32_t depth, uint32_t root, int json)
{
	dom_tree t;
	rr_dom d = { f, g, l, &t, NULL, NULL, limit, depth, NULL, NULL };
	out_json j;
	int rc = -1;

	if (d.depth > RR_MAX_DEPTH)
		d.depth = RR_MAX_DEPTH;
	if (d.depth == 0)
		d.depth = 1;
	if (dom_build_graph(g, &t) < 0)
		return -1;
	if (dom_children(&t, &d.start, &d.child) < 0)
		goto out;
	uint32_t top = root < g->n ? root : g->n;
	if (json) {
		d.j = &j;
		out_json_init(&j, f);
		out_json_obj(&j, NULL);
		out_json_u64(&j, "chunks", g->n);
		out_json_u64(&j, "reached_chunks", t.reached);
		out_json_u64(&j, "reached_bytes", t.reached_bytes);
		if (top < g->n) {
			out_json_u64(&j, "root_retained_bytes", t.retained[top]);
			out_json_bool(&j, "root_reached", t.idom[top] != DOM_NONE);
		}
		out_json_arr(&j, "nodes");
		rc = rr_dom_level(&d, top, 0);
		out_json_end(&j);
		out_json_end(&j);
		out_json_finish(&j);
	} else {
		static const out_col cols[] = { { "address", OUT_LEFT }, { "retained", OUT_RIGHT },
						{ "shallow", OUT_RIGHT }, { "type", OUT_LEFT },
						{ "site", OUT_LEFT } };
		char a[OUT_SIZE_LEN];
		fprintf(f, "reached from the roots: %u chunks, %s\n", t.reached,
			out_size(a, t.reached_bytes));
		d.tab = out_table_new(cols, 5);
		if (d.tab) {
			rc = rr_dom_level(&d, top, 0);
			if (rc == 0)
				rc = out_table_print(d.tab, f);
			out_table_free(d.tab);
		}
	}
out:
	free(d.start);
	free(d.child);
	dom_free(&t);
	return rc;
}

/* ---- histogram ---- */

int rr_histogram(FILE *f, const hs_graph *g, const rr_labels *l, int by_type, int json)
{
	char buf[64];
	rr_group *it = malloc((g->n ? g->n : 1) * sizeof *it);

	if (!it)
		return -1;
	for (uint32_t i = 0; i < g->n; i++)
		it[i] = (rr_group){ by_type ? rr_type(l, i) : NULL, g->size[i], 0, 1, g->size[i] };
	uint32_t ng = rr_group_items(it, g->n);
	rr_group_sort(it, ng);
	int rc = 0;
	if (json) {
		out_json j;
		out_json_init(&j, f);
		out_json_obj(&j, NULL);
		out_json_str(&j, "by", by_type ? "type" : "size");
		out_json_arr(&j, "rows");
		for (uint32_t i = 0; i < ng; i++) {
			out_json_obj_line(&j, NULL);
			if (by_type)
				out_json_str(&j, "type", it[i].key);
			if (!it[i].key)
				out_json_u64(&j, "size", it[i].size);
			out_json_u64(&j, "count", it[i].count);
			out_json_u64(&j, "bytes", it[i].bytes);
			out_json_end(&j);
		}
		out_json_end(&j);
		out_json_end(&j);
		out_json_finish(&j);
	} else {
		static const out_col cols[] = { { "type or size", OUT_LEFT }, { "chunks", OUT_RIGHT },
						{ "bytes", OUT_RIGHT } };
		out_table *t = out_table_new(cols, 3);
		for (uint32_t i = 0; t && i < ng; i++) {
			out_cell(t, rr_group_name(&it[i], buf, sizeof buf));
			out_cell_u64(t, it[i].count);
			out_cell_size(t, it[i].bytes);
		}
		rc = !t || out_table_print(t, f) < 0 ? -1 : 0;
		out_table_free(t);
	}
	free(it);
	return rc;
}

/* ---- retained by group ---- */

typedef struct {
	const rr_group *it;
	const uint64_t *retained;
} rr_ret_order;

/* order of the computed groups: shallow bytes (as computed), retained bytes, count, name */
static int cmp_ret_order(const void *a, const void *b, void *ctx)
{
	const rr_ret_order *o = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (rr_order == RR_SORT_RETAINED && o->retained[x] != o->retained[y])
		return o->retained[x] > o->retained[y] ? -1 : 1;
	if (rr_order == RR_SORT_COUNT && o->it[x].count != o->it[y].count)
		return o->it[x].count > o->it[y].count ? -1 : 1;
	if (rr_order == RR_SORT_NAME)
		return strcmp(o->it[x].key, o->it[y].key);
	return x < y ? -1 : x > y;
}

int rr_retained(FILE *f, const hs_graph *g, const char *(*key)(void *ctx, uint32_t node),
		void *ctx, uint32_t max_groups, int json)
{
	rr_group *it = malloc((g->n ? g->n : 1) * sizeof *it);
	uint32_t *group_of = malloc((g->n ? g->n : 1) * sizeof *group_of);
	uint64_t *bytes = NULL, *count = NULL;
	uint32_t *ord = NULL;
	uint32_t n_items = 0;
	int rc = -1;

	if (!it || !group_of)
		goto out;
	for (uint32_t i = 0; i < g->n; i++) {
		const char *k = key(ctx, i);
		if (k)
			it[n_items++] = (rr_group){ k, 0, 0, 1, g->size[i] };
	}
	uint32_t ng = rr_group_items(it, n_items), shown = ng < max_groups ? ng : max_groups;
	bytes = calloc(shown ? shown : 1, sizeof *bytes);
	count = calloc(shown ? shown : 1, sizeof *count);
	if (!bytes || !count)
		goto out;
	/* group index by key: the groups are few, the keys stable strings; a binary search
	 * would need them sorted by key, so use a linear scan over the shown groups */
	for (uint32_t i = 0; i < g->n; i++) {
		const char *k = key(ctx, i);
		group_of[i] = RET_NO_GROUP;
		for (uint32_t gi = 0; k && gi < shown; gi++)
			if (!strcmp(it[gi].key, k)) {
				group_of[i] = gi;
				break;
			}
	}
	if (ret_groups(g, group_of, shown, bytes, count) < 0)
		goto out;
	/* the groups computed are the largest by shallow bytes; --sort orders those */
	ord = malloc((shown ? shown : 1) * sizeof *ord);
	if (!ord)
		goto out;
	for (uint32_t gi = 0; gi < shown; gi++)
		ord[gi] = gi;
	rr_ret_order ro = { it, bytes };
	qsort_r(ord, shown, sizeof *ord, cmp_ret_order, &ro);
	if (json) {
		out_json j;
		out_json_init(&j, f);
		out_json_obj(&j, NULL);
		out_json_u64(&j, "groups_total", ng);
		out_json_arr(&j, "groups");
		for (uint32_t x = 0; x < shown; x++) {
			uint32_t gi = ord[x];
			out_json_obj_line(&j, NULL);
			out_json_str(&j, "key", it[gi].key);
			out_json_u64(&j, "count", it[gi].count);
			out_json_u64(&j, "shallow_bytes", it[gi].bytes);
			out_json_u64(&j, "retained_count", count[gi]);
			out_json_u64(&j, "retained_bytes", bytes[gi]);
			out_json_end(&j);
		}
		out_json_end(&j);
		out_json_end(&j);
		out_json_finish(&j);
		rc = 0;
	} else {
		static const out_col cols[] = { { "group", OUT_LEFT }, { "chunks", OUT_RIGHT },
						{ "shallow", OUT_RIGHT }, { "retained chunks", OUT_RIGHT },
						{ "retained", OUT_RIGHT } };
		out_table *t = out_table_new(cols, 5);
		for (uint32_t x = 0; t && x < shown; x++) {
			uint32_t gi = ord[x];
			out_cell(t, it[gi].key);
			out_cell_u64(t, it[gi].count);
			out_cell_size(t, it[gi].bytes);
			out_cell_u64(t, count[gi]);
			out_cell_size(t, bytes[gi]);
		}
		rc = !t || out_table_print(t, f) < 0 ? -1 : 0;
		out_table_free(t);
		if (shown < ng)
			fprintf(f, "(%u of %u groups: the largest by shallow bytes; each costs one "
				"pass over the graph)\n", shown, ng);
	}
out:
	free(ord);
	free(it);
	free(group_of);
	free(bytes);
	free(count);
	return rc;
}
