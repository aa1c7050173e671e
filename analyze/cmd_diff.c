/* cmd_diff.c -- `heapsnap diff A B`: what changed between two snapshots, by mapping kind
 * (region), by module, by allocation site or by C++ type; and, for two snapshots of the
 * same process, the object-level diff: the chunks born since A grouped by site, the bytes
 * they retain, and the A objects whose retained size grew most. Rows are sorted by growth
 * (or --sort KEY, cmdline.h).
 *
 * Sites are matched by the key sites.c gives them (module build-id + offset of the site
 * frame: stable across ASLR and restarts of the same binary); a site without a match is
 * matched by its function name and module name, and flagged when the build-ids differ.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "commands.h"
#include "dominators.h"
#include "graph.h"
#include "libfig.h"
#include "output.h"
#include "progress.h"
#include "sites.h"
#include "snapshot.h"
#include "stackfmt.h"

static const char diff_usage[] =
	"usage: heapsnap diff A B [--by region|module|site|type] [--json | --csv] [--limit N]\n"
	"                         [--sort delta|count|before|after|name]\n";

static const char diff_help[] =
	"\n"
	"What changed from snapshot A to snapshot B, one row per group, sorted by growth:\n"
	"  --by region  per mapping kind (heap, arena_heap, stack, module_text, ...): RSS, PSS,\n"
	"               VIRT (kB) and mappings; plus heap in use / free bytes (the default)\n"
	"  --by module  per module (matched by build-id, else by file name): RSS, PSS,\n"
	"               PRIVATE (kB) and the live heap charged to it (bytes, chunks)\n"
	"  --by site    per allocation site (needs `heapsnap run`): live requested bytes and\n"
	"               chunks before and after, delta, new/gone markers. Sites match by\n"
	"               module build-id + offset, so they survive ASLR and restarts; else by\n"
	"               function name, flagged 'build-id differs' when the binary changed.\n"
	"               When A and B are the same process (same pid and start time), also the\n"
	"               chunks born since A (not in A at the same address with the same size\n"
	"               and site), grouped by site; and, when both files have the pointer\n"
	"               graph, the bytes the born chunks retain (B's dominator tree) and the\n"
	"               A objects whose retained size grew most (retained in B - in A)\n"
	"  --by type    per C++ class (from vtable pointers, needs the pointer graph), other\n"
	"               chunks per chunk size ('size 48'), as 'histogram --by type': chunk\n"
	"               bytes and chunks before and after, delta, new/gone markers\n"
	"  --sort KEY   delta (the default: growth of the first figure, largest first), count\n"
	"               (growth of the count figure), before, after (the first figure,\n"
	"               largest first) or name\n"
	"  --limit N    at most N rows (default 30 for tables, all for JSON/CSV)\n"
	"  --json       {\"diff\": {\"by\", \"rows\": [{\"key\", \"label\", \"before_X\",\n"
	"               \"after_X\", \"delta_X\", ..., \"status\"}]}, \"heap\"|\"objects\": ...};\n"
	"               for sites and types X is bytes and count; site rows carry frames,\n"
	"               type rows type (null for size rows) and size (null for classes)\n"
	"  --csv        the rows as CSV\n"
	"  -h, --help   this help\n"
	"\n"
	"examples:\n"
	"  heapsnap diff morning.hsnap evening.hsnap\n"
	"  heapsnap diff morning.hsnap evening.hsnap --by site --limit 10\n"
	"  heapsnap diff a.hsnap b.hsnap --by module --json | jq '.diff.rows[0]'\n";

#define DIFF_MAXM 5
enum { DU_KB, DU_BYTES, DU_COUNT };
typedef struct {
	const char *name;     /* JSON suffix: before_<name> */
	const char *header;   /* table header stem */
	int unit;
} diff_metric;

enum { ST_BOTH, ST_NEW, ST_GONE };
typedef struct {
	char *key, *label;
	int64_t before[DIFF_MAXM], after[DIFF_MAXM];
	int status;
	int bid_mismatch;     /* matched by name, build-ids differ */
	int64_t size_class;   /* type mode: the chunk size of a "size N" row, 0 for a class */
	stk_stack stack;      /* site mode: the site's stack (B's, else A's) */
} diff_row;

typedef struct {
	diff_row *r;
	size_t n, cap;
	int nm;
	const diff_metric *m;
} diff_set;

static diff_row *diff_add(diff_set *d, const char *key, const char *label)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->r[i].key, key))
			return &d->r[i];
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		diff_row *r = realloc(d->r, cap * sizeof *r);
		if (!r)
			return NULL;
		d->r = r;
		d->cap = cap;
	}
	diff_row *row = &d->r[d->n];
	memset(row, 0, sizeof *row);
	row->key = strdup(key);
	row->label = strdup(label ? label : key);
	if (!row->key || !row->label) {
		free(row->key);
		free(row->label);
		return NULL;
	}
	d->n++;
	return row;
}

static void diff_set_free(diff_set *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->r[i].key);
		free(d->r[i].label);
		stk_free(&d->r[i].stack);
	}
	free(d->r);
}

/* --sort: delta (growth of the first figure: the default), count (growth of the count
 * figure), before, after (the first figure), name (the key); ties by key */
static int diff_count_m;  /* index of the count figure of the current metric set */

static int diff_desc(int64_t x, int64_t y, const diff_row *a, const diff_row *b)
{
	if (x != y)
		return x < y ? 1 : -1;
	return strcmp(a->key, b->key);
}

static int diff_cmp(const void *a, const void *b)
{
	const diff_row *x = a, *y = b;
	return diff_desc(x->after[0] - x->before[0], y->after[0] - y->before[0], x, y);
}

static int diff_cmp_count(const void *a, const void *b)
{
	const diff_row *x = a, *y = b;
	int m = diff_count_m;
	return diff_desc(x->after[m] - x->before[m], y->after[m] - y->before[m], x, y);
}

static int diff_cmp_before(const void *a, const void *b)
{
	const diff_row *x = a, *y = b;
	return diff_desc(x->before[0], y->before[0], x, y);
}

static int diff_cmp_after(const void *a, const void *b)
{
	const diff_row *x = a, *y = b;
	return diff_desc(x->after[0], y->after[0], x, y);
}

static int diff_cmp_name(const void *a, const void *b)
{
	const diff_row *x = a, *y = b;
	int c = strcmp(x->label, y->label);
	return c ? c : strcmp(x->key, y->key);
}

static const cl_sort_key diff_sorts[] = {
	{ "delta", diff_cmp }, { "count", diff_cmp_count }, { "before", diff_cmp_before },
	{ "after", diff_cmp_after }, { "name", diff_cmp_name },
};

/* ---------------------------------------------------------------- by region */
static const diff_metric region_m[] = {
	{ "rss_kb", "RSS", DU_KB }, { "pss_kb", "PSS", DU_KB }, { "virt_kb", "VIRT", DU_KB },
	{ "mappings", "MAPS", DU_COUNT },
};

static int region_side(snap *s, diff_set *d, int side)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT coalesce(k.name, m.kind), sum(coalesce(m.rss_kb, 0)),"
			 " sum(coalesce(m.pss_kb, 0)), sum(coalesce(m.size_kb, 0)), count(*)"
			 " FROM mapping m LEFT JOIN mapping_kind k ON k.id = m.kind GROUP BY m.kind"))
		return -1;
	int r;
	while ((r = snap_step(s, st)) == 1) {
		const char *k = snap_text(st, 0);
		diff_row *row = diff_add(d, k ? k : "?", NULL);
		if (!row) {
			r = -2;
			break;
		}
		for (int i = 0; i < 4; i++)
			(side ? row->after : row->before)[i] = snap_i64(st, 1 + i, 0);
	}
	sqlite3_finalize(st);
	return r;
}

/* ---------------------------------------------------------------- by module */
static const diff_metric module_m[] = {
	{ "rss_kb", "RSS", DU_KB }, { "pss_kb", "PSS", DU_KB }, { "private_kb", "PRIVATE", DU_KB },
	{ "heap_bytes", "HEAP", DU_BYTES }, { "heap_count", "CHUNKS", DU_COUNT },
};

static int module_side(diff_set *d, const lib_report *r, int side, const lib_report *other)
{
	for (int i = 0; i < r->nmods; i++) {
		const lib_module *m = &r->mods[i];
		const char *name = stk_base(m->path);
		int mismatch = 0;
		/* key by name; a build-id change of the same file name is flagged */
		for (int k = 0; k < other->nmods; k++)
			if (!strcmp(stk_base(other->mods[k].path), name) && m->build_id &&
			    other->mods[k].build_id && strcmp(m->build_id, other->mods[k].build_id))
				mismatch = 1;
		diff_row *row = diff_add(d, name, m->path);
		if (!row)
			return -2;
		row->bid_mismatch |= mismatch;
		int64_t *v = side ? row->after : row->before;
		v[0] += m->total.rss;
		v[1] += m->total.pss;
		v[2] += m->total.priv;
		v[3] += m->heap_bytes;
		v[4] += m->heap_count;
	}
	return 0;
}

/* ---------------------------------------------------------------- by site */
static const diff_metric site_m[] = {
	{ "bytes", "BYTES", DU_BYTES }, { "count", "COUNT", DU_COUNT },
};

/* ---------------------------------------------------------------- by type */
/* In-use chunks per C++ class (tables type/chunk_type, from vtable pointers), the other
 * chunks per chunk size ("size 48"), as `histogram --by type` groups them. Bytes are chunk
 * sizes. *typed is set when the snapshot has any type data. */
static const diff_metric type_m[] = {
	{ "bytes", "BYTES", DU_BYTES }, { "count", "COUNT", DU_COUNT },
};

static int type_side(snap *s, diff_set *d, int side, int *typed)
{
	int has = snap_has_table(s, "chunk_type") == 1 && snap_has_table(s, "type") == 1;
	sqlite3_stmt *st;
	int r = has ? snap_prepare(s, &st, "SELECT t.name, c.size, count(*), sum(c.size)"
				   " FROM chunk c LEFT JOIN chunk_type ct ON ct.addr = c.addr LEFT JOIN type t"
				   " ON t.id = ct.type_id WHERE c.state = 0 GROUP BY t.name,"
				   " CASE WHEN t.name IS NULL THEN c.size END")
		    : snap_prepare(s, &st, "SELECT NULL, size, count(*), sum(size) FROM chunk"
				   " WHERE state = 0 GROUP BY size");
	if (r)
		return -1;
	*typed = 0;
	while ((r = snap_step(s, st)) == 1) {
		const char *name = snap_text(st, 0);
		char key[64];
		if (!name)
			snprintf(key, sizeof key, "size %" PRId64, snap_i64(st, 1, 0));
		else
			*typed = 1;
		diff_row *row = diff_add(d, name ? name : key, NULL);
		if (!row) {
			r = -2;
			break;
		}
		if (!name)
			row->size_class = snap_i64(st, 1, 0);
		int64_t *v = side ? row->after : row->before;
		v[0] += snap_i64(st, 3, 0);
		v[1] += snap_i64(st, 2, 0);
	}
	sqlite3_finalize(st);
	return r;
}

/* "function (module)" of a sites row, for the label and the by-name fallback */
static void site_label(const sites_row *sr, char *buf, size_t n)
{
	if (sr->site < 0) {
		snprintf(buf, n, "%s", sr->key);
		return;
	}
	const stk_frame *f = &sr->stack.f[sr->site];
	if (f->function)
		snprintf(buf, n, "%s (%s)", f->function, f->module ? stk_base(f->module) : "?");
	else
		stk_name(f, buf, n);
}

/* the label shown: "function (module) at file.c:42", else "function+0x1a (module)" */
static void site_display(const stk_stack *st, int site, const char *name, char *buf, size_t n)
{
	const stk_frame *f = site >= 0 && site < st->n ? &st->f[site] : NULL;
	if (f && f->file && f->line > 0)
		snprintf(buf, n, "%s at %s:%" PRId64, name, stk_base(f->file), f->line);
	else if (f && f->function && f->module)
		stk_name(f, buf, n);
	else
		snprintf(buf, n, "%s", name);
}

static int stk_copy(stk_stack *dst, const stk_stack *src)
{
	dst->n = 0;
	dst->f = calloc((size_t)(src->n ? src->n : 1), sizeof *dst->f);
	if (!dst->f)
		return -1;
	for (int i = 0; i < src->n; i++) {
		const stk_frame *a = &src->f[i];
		stk_frame *b = &dst->f[i];
		*b = *a;
		b->module = a->module ? strdup(a->module) : NULL;
		b->build_id = a->build_id ? strdup(a->build_id) : NULL;
		b->function = a->function ? strdup(a->function) : NULL;
		b->file = a->file ? strdup(a->file) : NULL;
		dst->n = i + 1;
	}
	return 0;
}

static int site_fill(diff_set *d, const sites_result *A, const sites_result *B)
{
	char la[1024], lb[1024], shown[1400];
	/* B's rows first: each is matched to A's by key, else by label (function + module) */
	int *used = calloc(A->n_rows + 1, sizeof *used);
	if (!used)
		return -2;
	for (size_t i = 0; i < B->n_rows; i++) {
		const sites_row *b = &B->rows[i];
		site_label(b, lb, sizeof lb);
		site_display(&b->stack, b->site, lb, shown, sizeof shown);
		diff_row *row = diff_add(d, b->key, shown);
		if (!row || stk_copy(&row->stack, &b->stack)) {
			free(used);
			return -2;
		}
		row->after[0] = (int64_t)(b->est_bytes + 0.5);
		row->after[1] = (int64_t)(b->est_count + 0.5);
		row->status = ST_NEW;
		ssize_t match = -1;
		for (size_t k = 0; k < A->n_rows && match < 0; k++)
			if (!used[k] && !strcmp(A->rows[k].key, b->key))
				match = (ssize_t)k;
		for (size_t k = 0; k < A->n_rows && match < 0; k++) {
			site_label(&A->rows[k], la, sizeof la);
			if (!used[k] && !strcmp(la, lb) && A->rows[k].site >= 0 && b->site >= 0) {
				match = (ssize_t)k;
				const char *ba = A->rows[k].stack.f[A->rows[k].site].build_id;
				const char *bb = b->stack.f[b->site].build_id;
				row->bid_mismatch = ba && bb && strcmp(ba, bb);
			}
		}
		if (match >= 0) {
			used[match] = 1;
			row->status = ST_BOTH;
			row->before[0] = (int64_t)(A->rows[match].est_bytes + 0.5);
			row->before[1] = (int64_t)(A->rows[match].est_count + 0.5);
		}
	}
	for (size_t k = 0; k < A->n_rows; k++) {
		if (used[k])
			continue;
		const sites_row *a = &A->rows[k];
		site_label(a, la, sizeof la);
		char key[1200];
		snprintf(key, sizeof key, "%s\x01gone", a->key);   /* never equal to a B key */
		site_display(&a->stack, a->site, la, shown, sizeof shown);
		diff_row *row = diff_add(d, key, shown);
		if (!row || stk_copy(&row->stack, &a->stack)) {
			free(used);
			return -2;
		}
		free(row->key);
		row->key = strdup(a->key);
		row->status = ST_GONE;
		row->before[0] = (int64_t)(a->est_bytes + 0.5);
		row->before[1] = (int64_t)(a->est_count + 0.5);
		if (!row->key) {
			free(used);
			return -2;
		}
	}
	free(used);
	return 0;
}

/* ---------------------------------------------------------------- output */
static void cell_metric(out_table *t, int unit, int64_t v, int delta)
{
	char buf[OUT_SIZE_LEN + 2];
	if (unit == DU_COUNT) {
		if (delta)
			out_cellf(t, "%+" PRId64, v);
		else
			out_cellf(t, "%" PRId64, v);
		return;
	}
	uint64_t mag = (uint64_t)(v < 0 ? -v : v) * (unit == DU_KB ? 1024 : 1);
	out_size(buf + 1, mag);
	if (delta) {
		buf[0] = v < 0 ? '-' : '+';
		out_cell(t, buf);
	} else {
		out_cell(t, buf + 1);
	}
}

static const char *status_name(const diff_row *r)
{
	if (r->status == ST_NEW)
		return "new";
	if (r->status == ST_GONE)
		return "gone";
	return "";
}

static int diff_print(const diff_set *d, const char *by, long long limit, int fmt_json, int fmt_csv,
		      const char *a, const char *b)
{
	size_t n = limit >= 0 && (size_t)limit < d->n ? (size_t)limit : d->n;
	if (fmt_json) {
		out_json j;
		out_json_init(&j, stdout);
		out_json_obj(&j, NULL);
		out_json_str(&j, "before", a);
		out_json_str(&j, "after", b);
		out_json_str(&j, "by", by);
		out_json_i64(&j, "row_count", (int64_t)d->n);
		out_json_arr(&j, "rows");
		for (size_t i = 0; i < n; i++) {
			const diff_row *r = &d->r[i];
			out_json_obj(&j, NULL);
			out_json_str(&j, "key", r->key);
			out_json_str(&j, "label", r->label);
			char k[64];
			for (int m = 0; m < d->nm; m++) {
				snprintf(k, sizeof k, "before_%s", d->m[m].name);
				out_json_i64(&j, k, r->before[m]);
				snprintf(k, sizeof k, "after_%s", d->m[m].name);
				out_json_i64(&j, k, r->after[m]);
				snprintf(k, sizeof k, "delta_%s", d->m[m].name);
				out_json_i64(&j, k, r->after[m] - r->before[m]);
			}
			out_json_str(&j, "status", r->status == ST_NEW ? "new" : r->status == ST_GONE ? "gone" : "both");
			out_json_bool(&j, "build_id_mismatch", r->bid_mismatch);
			if (!strcmp(by, "type")) {   /* as histogram --by type: class or size */
				out_json_str(&j, "type", r->size_class ? NULL : r->key);
				if (r->size_class)
					out_json_i64(&j, "size", r->size_class);
				else
					out_json_null(&j, "size");
			}
			if (!strcmp(by, "site")) {
				out_json_arr(&j, "frames");
				for (int f = 0; f < r->stack.n; f++)
					stk_json_frame(&j, &r->stack.f[f]);
				out_json_end(&j);
			}
			out_json_end(&j);
		}
		out_json_end(&j);
		out_json_finish(&j);
		return 0;
	}
	if (fmt_csv) {
		out_csv c;
		out_csv_init(&c, stdout);
		out_csv_str(&c, "key");
		out_csv_str(&c, "label");
		char k[64];
		for (int m = 0; m < d->nm; m++) {
			const char *pre[] = { "before_", "after_", "delta_" };
			for (int p = 0; p < 3; p++) {
				snprintf(k, sizeof k, "%s%s", pre[p], d->m[m].name);
				out_csv_str(&c, k);
			}
		}
		out_csv_str(&c, "status");
		out_csv_str(&c, "build_id_mismatch");
		out_csv_end(&c);
		for (size_t i = 0; i < n; i++) {
			const diff_row *r = &d->r[i];
			out_csv_str(&c, r->key);
			out_csv_str(&c, r->label);
			for (int m = 0; m < d->nm; m++) {
				out_csv_i64(&c, r->before[m]);
				out_csv_i64(&c, r->after[m]);
				out_csv_i64(&c, r->after[m] - r->before[m]);
			}
			out_csv_str(&c, r->status == ST_NEW ? "new" : r->status == ST_GONE ? "gone" : "both");
			out_csv_i64(&c, r->bid_mismatch);
			out_csv_end(&c);
		}
		return 0;
	}
	out_col cols[2 + 3 * DIFF_MAXM];
	char hdr[3 * DIFF_MAXM][32];
	int nc = 0;
	cols[nc++] = (out_col){ !strcmp(by, "site") ? "SITE" : !strcmp(by, "module") ? "MODULE" :
				!strcmp(by, "type") ? "TYPE" : "KIND", OUT_LEFT };
	for (int m = 0; m < d->nm; m++) {
		snprintf(hdr[3 * m], 32, "%s BEFORE", d->m[m].header);
		snprintf(hdr[3 * m + 1], 32, "%s AFTER", d->m[m].header);
		snprintf(hdr[3 * m + 2], 32, "%s DELTA", d->m[m].header);
		for (int p = 0; p < 3; p++)
			cols[nc++] = (out_col){ hdr[3 * m + p], OUT_RIGHT };
	}
	cols[nc++] = (out_col){ "STATUS", OUT_LEFT };
	out_table *t = out_table_new(cols, nc);
	if (!t)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const diff_row *r = &d->r[i];
		out_cell(t, !strcmp(by, "module") ? stk_base(r->label) : r->label);
		for (int m = 0; m < d->nm; m++) {
			cell_metric(t, d->m[m].unit, r->before[m], 0);
			cell_metric(t, d->m[m].unit, r->after[m], 0);
			cell_metric(t, d->m[m].unit, r->after[m] - r->before[m], 1);
		}
		if (r->bid_mismatch)
			out_cellf(t, "%s%sbuild-id differs", status_name(r), r->status ? ", " : "");
		else
			out_cell(t, status_name(r));
	}
	int rc = out_table_print(t, stdout);
	out_table_free(t);
	if (n < d->n)
		printf("(%zu of %zu rows shown; --limit N for more)\n", n, d->n);
	return rc;
}

/* ---------------------------------------------------------------- object level */
/* Native chunks never move, so a chunk of B is "the same object" as the chunk of A at
 * the same address with the same size and the same site (both untracked, or both at
 * sites with the same label); every other in-use chunk of B was born since A.
 *
 * Retained growth (needs the pointer graph in both files): retained sizes come from each
 * snapshot's own dominator tree (dominators.h). A born chunk's retained bytes are charged
 * to its site only when no other born chunk dominates it (the outermost born chunk of a
 * structure), so each byte is counted once: a list of 30 new nodes is charged once, to
 * the site of its first new node, not 30 times. The A objects that gained most are the
 * chunks present in both, ranked by retained(B) - retained(A); an object whose immediate
 * dominator in B is an A object with the same growth is left out (the list head is shown,
 * not each old node between it and the new tail). */
typedef struct {
	int64_t addr, size, cs;
} diff_chunk;

static int chunk_cmp(const void *a, const void *b)
{
	int64_t x = ((const diff_chunk *)a)->addr, y = ((const diff_chunk *)b)->addr;
	return x < y ? -1 : x > y;
}

/* the in-use chunks in address order: the numbering of the pointer graph's nodes */
static int load_chunks(snap *s, diff_chunk **out, size_t *n)
{
	int64_t cnt;
	*out = NULL;
	*n = 0;
	if (snap_query_i64(s, "SELECT count(*) FROM chunk WHERE state = 0", 0, &cnt))
		return -1;
	diff_chunk *c = calloc((size_t)(cnt ? cnt : 1), sizeof *c);
	if (!c)
		return -2;
	sqlite3_stmt *st;
	int tracked = snap_has_table(s, "alloc") == 1;
	if (snap_prepare(s, &st, tracked ? "SELECT c.addr, c.size, a.callsite_id FROM chunk c"
			 " LEFT JOIN alloc a ON a.addr = c.addr WHERE c.state = 0 ORDER BY c.addr"
			 : "SELECT addr, size, NULL FROM chunk WHERE state = 0 ORDER BY addr")) {
		free(c);
		return -1;
	}
	int r;
	while ((r = snap_step(s, st)) == 1 && *n < (size_t)cnt) {
		c[*n].addr = snap_i64(st, 0, 0);
		c[*n].size = snap_i64(st, 1, 0);
		c[*n].cs = snap_i64(st, 2, -1);
		(*n)++;
	}
	sqlite3_finalize(st);
	if (r < 0) {
		free(c);
		return -1;
	}
	qsort(c, *n, sizeof *c, chunk_cmp);
	*out = c;
	return 0;
}

/* the site label of a callsite ("function (module) at file.c:12"), "(untracked)" for -1 */
static int cs_label(snap *s, int64_t cs, char *buf, size_t n)
{
	if (cs < 0) {
		snprintf(buf, n, "(untracked)");
		return 0;
	}
	stk_stack st;
	if (stk_load(s, cs, &st))
		return -1;
	int site = -1;
	for (int i = 0; i < st.n && site < 0; i++)
		if (!sites_is_library_module(st.f[i].module))
			site = i;
	if (site < 0 && st.n)
		site = 0;
	if (site < 0)
		snprintf(buf, n, "(no stack)");
	else if (st.f[site].function && st.f[site].file && st.f[site].line > 0)
		snprintf(buf, n, "%s (%s) at %s:%" PRId64, st.f[site].function,
			 st.f[site].module ? stk_base(st.f[site].module) : "?", stk_base(st.f[site].file),
			 st.f[site].line);
	else if (st.f[site].function)
		snprintf(buf, n, "%s (%s)", st.f[site].function,
			 st.f[site].module ? stk_base(st.f[site].module) : "?");
	else
		stk_name(&st.f[site], buf, n);
	stk_free(&st);
	return 0;
}

/* the distinct callsites of one snapshot's chunks with their labels: each is loaded once */
typedef struct {
	int64_t *cs;          /* sorted, distinct */
	char **label;
	size_t n;
} cs_cache;

static int i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void cs_cache_free(cs_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->label[i]);
	free(c->label);
	free(c->cs);
	memset(c, 0, sizeof *c);
}

/* -1 snapshot error, -2 out of memory */
static int cs_cache_build(snap *s, const diff_chunk *c, size_t n, cs_cache *out)
{
	char buf[1024];
	memset(out, 0, sizeof *out);
	out->cs = malloc((n + 1) * sizeof *out->cs);
	if (!out->cs)
		return -2;
	out->cs[0] = -1;      /* "(untracked)" is always there */
	size_t m = 1;
	for (size_t i = 0; i < n; i++)
		out->cs[m++] = c[i].cs;
	qsort(out->cs, m, sizeof *out->cs, i64_cmp);
	size_t u = 0;
	for (size_t i = 0; i < m; i++)
		if (!u || out->cs[u - 1] != out->cs[i])
			out->cs[u++] = out->cs[i];
	int64_t *shrunk = realloc(out->cs, u * sizeof *out->cs);  /* n entries -> u */
	if (shrunk)
		out->cs = shrunk;
	out->label = calloc(u, sizeof *out->label);
	if (!out->label) {
		cs_cache_free(out);
		return -2;
	}
	out->n = u;
	for (size_t i = 0; i < u; i++) {
		if (cs_label(s, out->cs[i], buf, sizeof buf)) {
			cs_cache_free(out);
			return -1;
		}
		if (!(out->label[i] = strdup(buf))) {
			cs_cache_free(out);
			return -2;
		}
	}
	return 0;
}

/* index of callsite cs in the cache (always present: the cache holds every chunk's) */
static size_t cs_index(const cs_cache *c, int64_t cs)
{
	const int64_t *p = bsearch(&cs, c->cs, c->n, sizeof cs, i64_cmp);
	return p ? (size_t)(p - c->cs) : 0;
}

/* The dominator tree of a snapshot's pointer graph, checked against its chunk list c.
 * 0 ok; 1 no usable graph, *why says why; -1 snapshot error (message in err); -2 OOM. */
static int has_graph(snap *s)
{
	int64_t roots = 0;
	return snap_has_table(s, "root") == 1 &&
	       !snap_query_i64(s, "SELECT count(*) FROM root", 0, &roots) && roots > 0;
}

static int load_dom(snap *s, const diff_chunk *c, size_t n, dom_tree *t, const char **why,
		    char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	if (!has_graph(s)) {
		*why = "has no pointer graph (captured with --no-graph, or no heap)";
		return 1;
	}
	hs_graph g;
	if (graph_load(s, &g, err, errlen) < 0)
		return -1;
	int ok = g.n == n;
	for (size_t i = 0; ok && i < n; i++)
		ok = g.addr[i] == (uint64_t)c[i].addr;
	if (!ok) {
		graph_free(&g);
		*why = "has a pointer graph that does not match its chunk table";
		return 1;
	}
	int r = dom_build_graph(&g, t) < 0 ? -2 : 0;
	graph_free(&g);
	return r;
}

typedef struct {
	char *site;
	int64_t count, bytes, retained;
} born_row;

typedef struct {
	size_t a, b;          /* chunk index in A and in B */
	int64_t delta;        /* retained(B) - retained(A) */
} grown_obj;

static int born_cmp_ret;   /* born_cmp: rank by retained (1) or by bytes (0) */

static int born_cmp(const void *x, const void *y)
{
	const born_row *p = x, *q = y;
	int64_t a = born_cmp_ret ? p->retained : p->bytes;
	int64_t b = born_cmp_ret ? q->retained : q->bytes;
	if (a != b)
		return a < b ? 1 : -1;
	if (p->bytes != q->bytes)
		return p->bytes < q->bytes ? 1 : -1;
	return strcmp(p->site, q->site);
}

static int grown_cmp(const void *x, const void *y)
{
	const grown_obj *p = x, *q = y;
	if (p->delta != q->delta)
		return p->delta < q->delta ? 1 : -1;
	return p->b < q->b ? -1 : p->b > q->b;
}

/* the C++ class of the chunk at addr, into buf; NULL when it has none */
static const char *chunk_type_name(snap *s, int64_t addr, char *buf, size_t n)
{
	sqlite3_stmt *st;
	const char *out = NULL;
	if (snap_has_table(s, "chunk_type") != 1 || snap_has_table(s, "type") != 1 ||
	    snap_prepare(s, &st, "SELECT t.name FROM chunk_type ct JOIN type t ON t.id = ct.type_id"
			 " WHERE ct.addr = ?"))
		return NULL;
	sqlite3_bind_int64(st, 1, addr);
	if (snap_step(s, st) == 1 && snap_text(st, 0)) {
		snprintf(buf, n, "%s", snap_text(st, 0));
		out = buf;
	}
	sqlite3_finalize(st);
	return out;
}

typedef struct {
	diff_chunk *ca, *cb;
	size_t na, nb;
	cs_cache la, lb;
	int32_t *match;       /* [nb] index in A of the same object, -1 if born */
	dom_tree ta, tb;
	int have_ret;         /* both dominator trees built */
	const char *why;      /* why not, with which file */
	const char *why_file;
	born_row *born;
	size_t nborn;
	int64_t born_count, born_bytes, born_retained;
	grown_obj *grown;
	size_t ngrown;
} obj_diff;

static void obj_free(obj_diff *o)
{
	free(o->ca);
	free(o->cb);
	cs_cache_free(&o->la);
	cs_cache_free(&o->lb);
	free(o->match);
	dom_free(&o->ta);
	dom_free(&o->tb);
	for (size_t i = 0; i < o->nborn; i++)
		free(o->born[i].site);
	free(o->born);
	free(o->grown);
}

/* match the chunks, then the born rows and, with both graphs, the retained growth.
 * 0, -1 snapshot error (message in err), -2 out of memory */
static int obj_compute(snap *sa, snap *sb, const char *fa, const char *fb, obj_diff *o,
		       char *err, size_t errlen)
{
	int r;
	memset(o, 0, sizeof *o);
	if ((r = load_chunks(sa, &o->ca, &o->na)) ||
	    (r = cs_cache_build(sa, o->ca, o->na, &o->la))) {
		snprintf(err, errlen, "%s", snap_error(sa));
		return r;
	}
	if ((r = load_chunks(sb, &o->cb, &o->nb)) ||
	    (r = cs_cache_build(sb, o->cb, o->nb, &o->lb))) {
		snprintf(err, errlen, "%s", snap_error(sb));
		return r;
	}
	o->match = malloc((o->nb + 1) * sizeof *o->match);
	if (!o->match)
		return -2;
	size_t i = 0;
	prog pg;
	prog_start(&pg, "matching chunks", o->nb);
	for (size_t k = 0; k < o->nb; k++) {
		prog_step(&pg, k);
		const diff_chunk *b = &o->cb[k];
		while (i < o->na && o->ca[i].addr < b->addr)
			i++;
		const diff_chunk *a = i < o->na ? &o->ca[i] : NULL;
		int same = a && a->addr == b->addr && a->size == b->size;
		if (same && (a->cs >= 0 || b->cs >= 0))
			same = a->cs >= 0 && b->cs >= 0 &&
			       !strcmp(o->la.label[cs_index(&o->la, a->cs)],
				       o->lb.label[cs_index(&o->lb, b->cs)]);
		o->match[k] = same ? (int32_t)i : -1;
	}
	prog_done(&pg);

	/* retained sizes: A's tree first, B's second (B's graph checked before A's is built) */
	if (!has_graph(sb)) {
		r = 1;
		o->why = "has no pointer graph (captured with --no-graph, or no heap)";
		o->why_file = fb;
	} else {
		r = load_dom(sa, o->ca, o->na, &o->ta, &o->why, err, errlen);
		if (r == 1)
			o->why_file = fa;
	}
	if (!r) {
		r = load_dom(sb, o->cb, o->nb, &o->tb, &o->why, err, errlen);
		if (r == 1)
			o->why_file = fb;
	}
	if (r < 0)
		return r;
	o->have_ret = !r;

	/* per B callsite: born chunks, bytes, and the retained bytes of the outermost ones */
	size_t ncs = o->lb.n;
	int64_t *agg = calloc(3 * ncs + 1, sizeof *agg);
	uint32_t *top = NULL, *path = NULL;
	if (!agg)
		return -2;
	if (o->have_ret) {
		/* top[v]: the outermost born chunk dominating v (v included), or NONE */
		enum { UNSET = 0xffffffffu, NONE = 0xfffffffeu };
		top = malloc((o->nb + 1) * sizeof *top);
		path = malloc((o->nb + 1) * sizeof *path);
		if (!top || !path) {
			free(agg);
			free(top);
			free(path);
			return -2;
		}
		for (size_t k = 0; k < o->nb; k++)
			top[k] = UNSET;
		for (size_t k = 0; k < o->nb; k++) {
			size_t np = 0;
			uint32_t v = (uint32_t)k;
			while (v < o->nb && top[v] == UNSET) {
				path[np++] = v;
				v = o->tb.idom[v];
			}
			uint32_t cur = v < o->nb ? top[v] : NONE;
			while (np--) {
				uint32_t u = path[np];
				if (cur == NONE && o->match[u] < 0)
					cur = u;
				top[u] = cur;
			}
		}
	}
	for (size_t k = 0; k < o->nb; k++) {
		if (o->match[k] >= 0)
			continue;
		size_t c = cs_index(&o->lb, o->cb[k].cs);
		agg[3 * c]++;
		agg[3 * c + 1] += o->cb[k].size;
		if (top && top[k] == k)
			agg[3 * c + 2] += (int64_t)o->tb.retained[k];
	}
	free(top);
	free(path);
	/* fold callsites into rows by label (several callsites can share a site) */
	o->born = calloc(ncs + 1, sizeof *o->born);
	if (!o->born) {
		free(agg);
		return -2;
	}
	for (size_t c = 0; c < ncs; c++) {
		if (!agg[3 * c])
			continue;
		size_t x = 0;
		while (x < o->nborn && strcmp(o->born[x].site, o->lb.label[c]))
			x++;
		if (x == o->nborn) {
			if (!(o->born[x].site = strdup(o->lb.label[c]))) {
				free(agg);
				return -2;
			}
			o->nborn++;
		}
		o->born[x].count += agg[3 * c];
		o->born[x].bytes += agg[3 * c + 1];
		o->born[x].retained += agg[3 * c + 2];
		o->born_count += agg[3 * c];
		o->born_bytes += agg[3 * c + 1];
		o->born_retained += agg[3 * c + 2];
	}
	free(agg);
	born_cmp_ret = o->have_ret;
	qsort(o->born, o->nborn, sizeof *o->born, born_cmp);

	if (o->have_ret) {
		o->grown = malloc((o->nb + 1) * sizeof *o->grown);
		if (!o->grown)
			return -2;
		for (size_t k = 0; k < o->nb; k++) {
			if (o->match[k] < 0)
				continue;
			size_t a = (size_t)o->match[k];
			int64_t dlt = (int64_t)o->tb.retained[k] - (int64_t)o->ta.retained[a];
			if (dlt <= 0)
				continue;
			/* growth its immediate dominator shows whole: a chain of A objects (a list
			 * head and its old nodes) grown by the same new tail is shown once, at
			 * its top */
			uint32_t up = o->tb.idom[k];
			if (up < o->nb && o->match[up] >= 0 &&
			    (int64_t)o->tb.retained[up] -
			    (int64_t)o->ta.retained[o->match[up]] == dlt)
				continue;
			o->grown[o->ngrown++] = (grown_obj){ a, k, dlt };
		}
		qsort(o->grown, o->ngrown, sizeof *o->grown, grown_cmp);
	}
	return 0;
}

static void obj_print_json(snap *sb, const obj_diff *o, long long limit, long long glimit)
{
	char buf[512], addr[32];
	size_t n = limit >= 0 && (size_t)limit < o->nborn ? (size_t)limit : o->nborn;
	size_t ng = (size_t)glimit < o->ngrown ? (size_t)glimit : o->ngrown;
	out_json j;
	out_json_init(&j, stdout);
	out_json_obj(&j, NULL);
	out_json_i64(&j, "born_count", o->born_count);
	out_json_i64(&j, "born_bytes", o->born_bytes);
	out_json_bool(&j, "retained_available", o->have_ret);
	if (o->have_ret) {
		out_json_null(&j, "retained_missing");
		out_json_i64(&j, "born_retained_bytes", o->born_retained);
	} else {
		snprintf(buf, sizeof buf, "%s %s", o->why_file, o->why);
		out_json_str(&j, "retained_missing", buf);
		out_json_null(&j, "born_retained_bytes");
	}
	out_json_arr(&j, "by_site");
	for (size_t x = 0; x < n; x++) {
		out_json_obj_line(&j, NULL);
		out_json_str(&j, "site", o->born[x].site);
		out_json_i64(&j, "count", o->born[x].count);
		out_json_i64(&j, "bytes", o->born[x].bytes);
		if (o->have_ret)
			out_json_i64(&j, "retained_bytes", o->born[x].retained);
		else
			out_json_null(&j, "retained_bytes");
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_i64(&j, "grown_total", (int64_t)o->ngrown);
	out_json_arr(&j, "grown");
	for (size_t x = 0; x < ng; x++) {
		const grown_obj *g = &o->grown[x];
		const diff_chunk *c = &o->cb[g->b];
		out_json_obj_line(&j, NULL);
		snprintf(addr, sizeof addr, "0x%" PRIx64, (uint64_t)c->addr);
		out_json_str(&j, "address", addr);
		out_json_i64(&j, "size", c->size);
		out_json_str(&j, "site", o->lb.label[cs_index(&o->lb, c->cs)]);
		out_json_str(&j, "type", chunk_type_name(sb, c->addr, buf, sizeof buf));
		out_json_i64(&j, "retained_before", (int64_t)o->ta.retained[g->a]);
		out_json_i64(&j, "retained_after", (int64_t)o->tb.retained[g->b]);
		out_json_i64(&j, "retained_delta", g->delta);
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_finish(&j);
}

static int obj_print_table(snap *sb, const obj_diff *o, long long limit)
{
	char sz[OUT_SIZE_LEN], sz2[OUT_SIZE_LEN], buf[512];
	size_t n = limit >= 0 && (size_t)limit < o->nborn ? (size_t)limit : o->nborn;
	printf("\nsame process: %" PRId64 " chunks (%s) born since A", o->born_count,
	       out_size(sz, (uint64_t)o->born_bytes));
	if (o->have_ret)
		printf(", retaining %s, by site:\n", out_size(sz2, (uint64_t)o->born_retained));
	else
		printf(", by site:\n");
	static const out_col cols[] = { { "SITE", OUT_LEFT }, { "CHUNKS", OUT_RIGHT },
					{ "BYTES", OUT_RIGHT }, { "RETAINED", OUT_RIGHT } };
	out_table *t = out_table_new(cols, o->have_ret ? 4 : 3);
	for (size_t x = 0; t && x < n; x++) {
		out_cell(t, o->born[x].site);
		out_cell_u64(t, (uint64_t)o->born[x].count);
		out_cell_size(t, (uint64_t)o->born[x].bytes);
		if (o->have_ret)
			out_cell_size(t, (uint64_t)o->born[x].retained);
	}
	int r = !t || out_table_print(t, stdout) ? -2 : 0;
	out_table_free(t);
	if (n < o->nborn)
		printf("(%zu of %zu sites shown; --limit N for more)\n", n, o->nborn);
	if (!o->have_ret) {
		printf("\nretained growth: not available: %s %s\n", o->why_file, o->why);
		return r;
	}
	size_t ng = limit >= 0 && (size_t)limit < o->ngrown ? (size_t)limit : o->ngrown;
	printf("\nobjects of A whose retained size grew most (%zu grew):\n", o->ngrown);
	static const out_col gcols[] = {
		{ "ADDRESS", OUT_LEFT }, { "SIZE", OUT_RIGHT }, { "TYPE", OUT_LEFT },
		{ "SITE", OUT_LEFT }, { "RETAINED BEFORE", OUT_RIGHT },
		{ "RETAINED AFTER", OUT_RIGHT }, { "DELTA", OUT_RIGHT },
	};
	t = out_table_new(gcols, 7);
	for (size_t x = 0; t && x < ng; x++) {
		const grown_obj *g = &o->grown[x];
		const diff_chunk *c = &o->cb[g->b];
		const char *type = chunk_type_name(sb, c->addr, buf, sizeof buf);
		out_cellf(t, "0x%" PRIx64, (uint64_t)c->addr);
		out_cell_size(t, (uint64_t)c->size);
		out_cell(t, type ? type : "-");
		out_cell(t, o->lb.label[cs_index(&o->lb, c->cs)]);
		out_cell_size(t, o->ta.retained[g->a]);
		out_cell_size(t, o->tb.retained[g->b]);
		out_cellf(t, "+%s", out_size(sz, (uint64_t)g->delta));
	}
	if (!t || out_table_print(t, stdout))
		r = -2;
	out_table_free(t);
	if (ng < o->ngrown)
		printf("(%zu of %zu objects shown; --limit N for more)\n", ng, o->ngrown);
	return r;
}

static int objects_diff(snap *sa, snap *sb, const char *fa, const char *fb, int json,
			long long limit)
{
	obj_diff od;
	char err[512] = "";
	int r = obj_compute(sa, sb, fa, fb, &od, err, sizeof err);
	if (r) {
		out_err("diff", "%s", r == -2 || !err[0] ? "out of memory" : err);
	} else if (json) {
		obj_print_json(sb, &od, limit, limit >= 0 ? limit : 100);
	} else if (obj_print_table(sb, &od, limit)) {
		out_err("diff", "out of memory");
		r = -2;
	}
	obj_free(&od);
	return r;
}

/* 1 if both snapshots are of the same process incarnation */
static int same_process(snap *a, snap *b)
{
	int64_t pa, pb, ta, tb;
	if (snap_query_i64(a, "SELECT pid FROM process", -1, &pa) ||
	    snap_query_i64(b, "SELECT pid FROM process", -1, &pb) ||
	    snap_query_i64(a, "SELECT start_ticks FROM process", -1, &ta) ||
	    snap_query_i64(b, "SELECT start_ticks FROM process", -2, &tb))
		return 0;
	return pa == pb && pa >= 0 && ta == tb;
}

int cmd_diff(int argc, char **argv)
{
	cl_opts o = {
		.cmd = "diff", .usage = diff_usage, .help = diff_help,
		.pos_min = 2, .pos_max = 2, .pos_what = "needs two snapshot files, A (before) and B (after)",
		.allow_json = 1, .allow_csv = 1, .value_names = { "limit", "by", "sort", NULL },
	};
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	long long limit;
	if (cl_limit(&o, o.json || o.csv ? -1 : 30, &limit))
		return HS_EXIT_USAGE;
	int sort = cl_sort(&o, diff_sorts, (int)(sizeof diff_sorts / sizeof *diff_sorts), 0);
	if (sort < 0)
		return HS_EXIT_USAGE;
	const char *by = cl_value(&o, "by") ? cl_value(&o, "by") : "region";
	if (strcmp(by, "region") && strcmp(by, "module") && strcmp(by, "site") &&
	    strcmp(by, "type")) {
		out_err("diff", "invalid --by '%s' (region, module, site, type)", by);
		return HS_EXIT_USAGE;
	}
	snap *sa = cl_open("diff", o.pos[0], &rc);
	if (!sa)
		return rc;
	snap *sb = cl_open("diff", o.pos[1], &rc);
	if (!sb) {
		snap_close(sa);
		return rc;
	}
	diff_set d = { 0 };
	int r = 0;
	snap *bad = NULL;
	lib_report la, lb;
	int have_libs = 0;
	sites_result A = { 0 }, B = { 0 };
	int64_t heap[2][2] = { { 0 } };
	if (!strcmp(by, "region")) {
		d.m = region_m;
		d.nm = 4;
		if ((r = region_side(sa, &d, 0)) < 0)
			bad = sa;
		else if ((r = region_side(sb, &d, 1)) < 0)
			bad = sb;
		for (int k = 0; k < 2 && r >= 0; k++) {
			snap *s = k ? sb : sa;
			if (snap_query_i64(s, "SELECT coalesce(sum(size), 0) FROM chunk WHERE state = 0", 0, &heap[k][0]) ||
			    snap_query_i64(s, "SELECT coalesce(sum(size), 0) FROM chunk WHERE state IN (1,2,3,4)", 0, &heap[k][1])) {
				r = -1;
				bad = s;
			}
		}
	} else if (!strcmp(by, "module")) {
		d.m = module_m;
		d.nm = 5;
		if (lib_load(sa, &la)) {
			r = -1;
			bad = sa;
		} else if (lib_load(sb, &lb)) {
			lib_free(&la);
			r = -1;
			bad = sb;
		} else {
			have_libs = 1;
			r = module_side(&d, &la, 0, &lb);
			if (!r)
				r = module_side(&d, &lb, 1, &la);
		}
	} else if (!strcmp(by, "type")) {
		int ta = 0, tb = 0;
		d.m = type_m;
		d.nm = 2;
		if ((r = type_side(sa, &d, 0, &ta)) < 0)
			bad = sa;
		else if ((r = type_side(sb, &d, 1, &tb)) < 0)
			bad = sb;
		else if (!ta || !tb)
			fprintf(stderr, "heapsnap diff: note: %s has no C++ type data (no pointer graph, or"
				" no class with a vtable): its chunks are grouped by size only\n",
				!ta ? o.pos[0] : o.pos[1]);
	} else {
		d.m = site_m;
		d.nm = 2;
		int oom = 0;
		if (sites_load(sa, SITES_BY_SITE, &A, &oom)) {
			r = oom ? -2 : -1;
			bad = sa;
		} else if (sites_load(sb, SITES_BY_SITE, &B, &oom)) {
			r = oom ? -2 : -1;
			bad = sb;
			sites_free(&A);
		} else {
			if (!A.tracked || !B.tracked) {
				out_err("diff", "--by site needs allocation tracking in both snapshots (%s was not "
					"started with 'heapsnap run')", !A.tracked ? o.pos[0] : o.pos[1]);
				rc = HS_EXIT_FAIL;
			} else {
				r = site_fill(&d, &A, &B);
			}
			/* the rows hold copies of what they show: free the sites before the
			 * object-level diff loads both graphs */
			sites_free(&A);
			sites_free(&B);
		}
	}
	if (r < 0) {
		if (r == -2 || !bad || !*snap_error(bad)) {
			out_err("diff", "out of memory");
			rc = HS_EXIT_FAIL;
		} else {
			out_err("diff", "%s", snap_error(bad));
			rc = snap_exit_code(bad);
		}
	} else if (rc == HS_EXIT_OK) {
		for (size_t i = 0; i < d.n; i++)
			if (d.r[i].status == ST_BOTH && (!strcmp(by, "region") || !strcmp(by, "type"))) {
				int nb = 1, na = 1;
				for (int m = 0; m < d.nm; m++) {
					nb &= d.r[i].before[m] == 0;
					na &= d.r[i].after[m] == 0;
				}
				d.r[i].status = nb ? ST_NEW : na ? ST_GONE : ST_BOTH;
			}
		if (!strcmp(by, "module"))
			for (size_t i = 0; i < d.n; i++) {
				int inb = 0, ina = 0;
				for (int k = 0; k < la.nmods; k++)
					ina |= !strcmp(stk_base(la.mods[k].path), d.r[i].key);
				for (int k = 0; k < lb.nmods; k++)
					inb |= !strcmp(stk_base(lb.mods[k].path), d.r[i].key);
				d.r[i].status = ina && inb ? ST_BOTH : inb ? ST_NEW : ST_GONE;
			}
		diff_count_m = d.nm - 1;   /* COUNT, CHUNKS, MAPS: the last figure of each set */
		cl_sort_rows(d.r, d.n, sizeof *d.r, &diff_sorts[sort]);
		int same = same_process(sa, sb);
		if (o.json)   /* one JSON document: {"diff": rows, then the extra parts} */
			fputs("{\"diff\": ", stdout);
		if (diff_print(&d, by, limit, o.json, o.csv, o.pos[0], o.pos[1])) {
			out_err("diff", "out of memory");
			rc = HS_EXIT_FAIL;
		}
		if (!strcmp(by, "region")) {
			if (o.json)
				printf(", \"heap\": {\"in_use_before\": %" PRId64 ", \"in_use_after\": %" PRId64
				       ", \"free_before\": %" PRId64 ", \"free_after\": %" PRId64 "}",
				       heap[0][0], heap[1][0], heap[0][1], heap[1][1]);
			else if (!o.csv) {
				char a[OUT_SIZE_LEN], b[OUT_SIZE_LEN], c[OUT_SIZE_LEN], e[OUT_SIZE_LEN];
				printf("\nheap chunks: in use %s -> %s, free %s -> %s\n", out_size(a, (uint64_t)heap[0][0]),
				       out_size(b, (uint64_t)heap[1][0]), out_size(c, (uint64_t)heap[0][1]),
				       out_size(e, (uint64_t)heap[1][1]));
			}
		}
		if (!strcmp(by, "site") && same && !o.csv) {
			if (o.json)
				fputs(", \"objects\": ", stdout);
			if (objects_diff(sa, sb, o.pos[0], o.pos[1], o.json, limit))
				rc = HS_EXIT_FAIL;
		}
	}
	if (o.json && rc == HS_EXIT_OK)
		fputs("}\n", stdout);
	if (have_libs) {
		lib_free(&la);
		lib_free(&lb);
	}
	diff_set_free(&d);
	snap_close(sa);
	snap_close(sb);
	return rc;
}
