/* cmd_diff.c -- `heapsnap diff A B`: what changed between two snapshots, by mapping kind
 * (region), by module, or by allocation site; and, for two snapshots of the same process,
 * the chunks born since A grouped by site. Rows are sorted by growth.
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
#include "libfig.h"
#include "output.h"
#include "progress.h"
#include "sites.h"
#include "snapshot.h"
#include "stackfmt.h"

static const char diff_usage[] =
	"usage: heapsnap diff A B [--by region|module|site] [--json | --csv] [--limit N]\n";

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
	"               and site), grouped by site.\n"
	"  --limit N    at most N rows (default 30 for tables, all for JSON/CSV)\n"
	"  --json       {\"diff\": {\"by\", \"rows\": [{\"key\", \"label\", \"before_X\",\n"
	"               \"after_X\", \"delta_X\", ..., \"status\"}]}, \"heap\"|\"objects\": ...};\n"
	"               for sites X is bytes and count and rows carry the site's frames\n"
	"  --csv        the rows as CSV\n"
	"  -h, --help   this help\n"
	"\n"
	"examples:\n"
	"  heapsnap diff morning.hsnap evening.hsnap\n"
	"  heapsnap diff morning.hsnap evening.hsnap --by site --limit 10\n"
	"  heapsnap diff a.hsnap b.hsnap --by module --json | jq '.rows[0]'\n";

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

static int diff_cmp(const void *a, const void *b)
{
	const diff_row *x = a, *y = b;
	int64_t dx = x->after[0] - x->before[0], dy = y->after[0] - y->before[0];
	if (dx != dy)
		return dx < dy ? 1 : -1;
	return strcmp(x->key, y->key);
}

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
	cols[nc++] = (out_col){ !strcmp(by, "site") ? "SITE" : !strcmp(by, "module") ? "MODULE" : "KIND", OUT_LEFT };
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
typedef struct {
	int64_t addr, size, cs;
} diff_chunk;

static int chunk_cmp(const void *a, const void *b)
{
	int64_t x = ((const diff_chunk *)a)->addr, y = ((const diff_chunk *)b)->addr;
	return x < y ? -1 : x > y;
}

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
	if (snap_prepare(s, &st, "SELECT c.addr, c.size, a.callsite_id FROM chunk c"
			 " LEFT JOIN alloc a ON a.addr = c.addr WHERE c.state = 0 ORDER BY c.addr")) {
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

/* the site label of a callsite ("function (module)"), "(untracked)" for -1 */
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

static int objects_diff(snap *sa, snap *sb, int json, long long limit)
{
	diff_chunk *ca, *cb;
	size_t na, nb;
	int r = load_chunks(sa, &ca, &na);
	if (r)
		return r;
	if ((r = load_chunks(sb, &cb, &nb))) {
		free(ca);
		return r;
	}
	static const diff_metric born_m[] = { { "bytes", "BORN BYTES", DU_BYTES }, { "count", "CHUNKS", DU_COUNT } };
	diff_set d = { .nm = 2, .m = born_m };
	char la[1024], lb[1024];
	int64_t born = 0, born_bytes = 0;
	size_t i = 0;
	prog pg;
	prog_start(&pg, "matching chunks", nb);
	for (size_t k = 0; k < nb && !r; k++) {
		prog_step(&pg, k);
		while (i < na && ca[i].addr < cb[k].addr)
			i++;
		int same = i < na && ca[i].addr == cb[k].addr && ca[i].size == cb[k].size;
		if (same && (ca[i].cs >= 0) == (cb[k].cs >= 0) && ca[i].cs >= 0) {
			if (cs_label(sa, ca[i].cs, la, sizeof la) || cs_label(sb, cb[k].cs, lb, sizeof lb)) {
				r = -1;
				break;
			}
			same = !strcmp(la, lb);
		}
		if (same)
			continue;
		if (cs_label(sb, cb[k].cs, lb, sizeof lb)) {
			r = -1;
			break;
		}
		diff_row *row = diff_add(&d, lb, lb);
		if (!row) {
			r = -2;
			break;
		}
		row->after[0] += cb[k].size;
		row->after[1]++;
		born++;
		born_bytes += cb[k].size;
	}
	prog_done(&pg);
	free(ca);
	free(cb);
	if (!r) {
		qsort(d.r, d.n, sizeof *d.r, diff_cmp);
		if (json) {
			/* printed inside the caller's object: see cmd_diff */
		}
		size_t n = limit >= 0 && (size_t)limit < d.n ? (size_t)limit : d.n;
		if (!json) {
			char sz[OUT_SIZE_LEN];
			printf("\nsame process: %" PRId64 " chunks (%s) born since A, by site:\n", born,
			       out_size(sz, (uint64_t)born_bytes));
			static const out_col cols[] = { { "SITE", OUT_LEFT }, { "CHUNKS", OUT_RIGHT }, { "BYTES", OUT_RIGHT } };
			out_table *t = out_table_new(cols, 3);
			if (!t)
				r = -2;
			for (size_t x = 0; t && x < n; x++) {
				out_cell(t, d.r[x].label);
				out_cell_u64(t, (uint64_t)d.r[x].after[1]);
				out_cell_size(t, (uint64_t)d.r[x].after[0]);
			}
			if (t && out_table_print(t, stdout))
				r = -2;
			out_table_free(t);
		} else {
			out_json j;
			out_json_init(&j, stdout);
			out_json_obj(&j, NULL);
			out_json_i64(&j, "born_count", born);
			out_json_i64(&j, "born_bytes", born_bytes);
			out_json_arr(&j, "by_site");
			for (size_t x = 0; x < n; x++) {
				out_json_obj_line(&j, NULL);
				out_json_str(&j, "site", d.r[x].label);
				out_json_i64(&j, "count", d.r[x].after[1]);
				out_json_i64(&j, "bytes", d.r[x].after[0]);
				out_json_end(&j);
			}
			out_json_end(&j);
			out_json_finish(&j);
		}
	}
	diff_set_free(&d);
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
		.allow_json = 1, .allow_csv = 1, .value_names = { "limit", "by", NULL },
	};
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	long long limit;
	if (cl_limit(&o, o.json || o.csv ? -1 : 30, &limit))
		return HS_EXIT_USAGE;
	const char *by = cl_value(&o, "by") ? cl_value(&o, "by") : "region";
	if (strcmp(by, "region") && strcmp(by, "module") && strcmp(by, "site")) {
		if (!strcmp(by, "type"))
			out_err("diff", "--by type is not available yet (needs type inference)");
		else
			out_err("diff", "invalid --by '%s' (region, module, site)", by);
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
	int have_sites = 0;
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
			have_sites = 1;
			if (!A.tracked || !B.tracked) {
				out_err("diff", "--by site needs allocation tracking in both snapshots (%s was not "
					"started with 'heapsnap run')", !A.tracked ? o.pos[0] : o.pos[1]);
				rc = HS_EXIT_FAIL;
			} else {
				r = site_fill(&d, &A, &B);
			}
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
			if (d.r[i].status == ST_BOTH && !strcmp(by, "region")) {
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
		qsort(d.r, d.n, sizeof *d.r, diff_cmp);
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
			r = objects_diff(sa, sb, o.json, limit);
			if (r) {
				out_err("diff", "%s", r == -2 ? "out of memory" : snap_error(sb));
				rc = HS_EXIT_FAIL;
			}
		}
	}
	if (o.json && rc == HS_EXIT_OK)
		fputs("}\n", stdout);
	if (have_libs) {
		lib_free(&la);
		lib_free(&lb);
	}
	if (have_sites) {
		sites_free(&A);
		sites_free(&B);
	}
	diff_set_free(&d);
	snap_close(sa);
	snap_close(sb);
	return rc;
}
