/* cmd_top.c -- `heapsnap top FILE`: live heap bytes and chunks per allocation site, from
 * the tracking data of a target that ran under `heapsnap run` (sites.h does the
 * aggregation; this file only parses options and renders).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "commands.h"
#include "output.h"
#include "sites.h"
#include "snapshot.h"

static const char top_usage[] =
	"usage: heapsnap top FILE [--by site|function|line|module] [--sort bytes|count|name]\n"
	"                    [--limit N] [--json | --csv]\n";

static const char top_help[] =
	"\n"
	"Live heap per allocation site, largest first: the bytes the program asked for and\n"
	"the chunks still allocated, with the call path of each site. Needs a snapshot of a\n"
	"target that ran under 'heapsnap run' (allocation tracking); for any other snapshot\n"
	"it says so and exits 1.\n"
	"\n"
	"A site is the first frame of the allocating stack outside libc, libstdc++, libgcc_s,\n"
	"ld.so and heapsnap's preload library: the call into the allocator from your code.\n"
	"\n"
	"  --by KEY     site (the default: the call instruction, module build-id + offset),\n"
	"               function, line (source file:line) or module\n"
	"  --sort KEY   bytes (the default), count (largest first) or name (the site's\n"
	"               function, else the row's key; ascending)\n"
	"  --limit N    show the first N rows (default 20; 0 = all)\n"
	"  --json       a JSON array of {key, bytes, count, sampled, sample_interval,\n"
	"               frames: [{function, file, line, module, offset, build_id}]}, the\n"
	"               site frame first, then its callers\n"
	"  --csv        the table as CSV (no total row), sizes in bytes\n"
	"  -h, --help   this help\n"
	"\n"
	"With sampling (heapsnap run --sample R) only some allocations carry a stack: the\n"
	"figures are then estimates, marked '~', each recorded block of s bytes counting\n"
	"for 1/(1 - exp(-s/R)) blocks; in JSON bytes/count are the rounded estimates and\n"
	"recorded_bytes/recorded_count the blocks actually recorded.\n"
	"\n"
	"examples:\n"
	"  heapsnap top s.hsnap\n"
	"  heapsnap top s.hsnap --by function --limit 10\n"
	"  heapsnap top s.hsnap --json | python3 -m json.tool\n";

static const struct {
	const char *name;
	enum sites_by by;
} bys[] = {
	{ "site", SITES_BY_SITE }, { "function", SITES_BY_FUNCTION },
	{ "line", SITES_BY_LINE }, { "module", SITES_BY_MODULE },
};

#define TOP_CALLERS 4   /* caller frames shown after the site in the table */

/* "fn  file.c:12" of the site frame, for the table */
static void site_cells(out_table *t, const sites_row *r)
{
	char name[512], where[512] = "";
	if (r->site < 0) {
		out_cell(t, "(no stack)");
		out_cell(t, "");
		out_cell(t, "");
		return;
	}
	const stk_frame *f = &r->stack.f[r->site];
	out_cell(t, sites_frame_name(f, name, sizeof name));
	if (f->file && f->line > 0)
		snprintf(where, sizeof where, "%s:%" PRId64, stk_base(f->file), f->line);
	else if (f->module)
		snprintf(where, sizeof where, "%s+0x%" PRIx64, stk_base(f->module), (uint64_t)f->rel_pc);
	out_cell(t, where);
	/* callers: "b < a < main" */
	char callers[1024] = "";
	size_t o = 0;
	for (int i = r->site + 1; i < r->stack.n && i <= r->site + TOP_CALLERS; i++) {
		int w = snprintf(callers + o, sizeof callers - o, "%s%s", o ? " < " : "",
				 sites_frame_name(&r->stack.f[i], name, sizeof name));
		if (w < 0 || (size_t)w >= sizeof callers - o)
			break;
		o += (size_t)w;
	}
	if (r->site + TOP_CALLERS + 1 < r->stack.n && o + 6 < sizeof callers)
		strcat(callers, " < ...");
	out_cell(t, callers);
}

static void size_cell(out_table *t, double v, int est)
{
	out_cell_sizef(t, (uint64_t)llround(v), est ? "~" : "");
}

/* --sort orders (sites_load gives bytes order); ties by key */
static int top_tie(const sites_row *x, const sites_row *y)
{
	return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static int top_cmp_bytes(const void *a, const void *b)
{
	const sites_row *x = a, *y = b;
	if (x->est_bytes != y->est_bytes)
		return x->est_bytes < y->est_bytes ? 1 : -1;
	return top_tie(x, y);
}

static int top_cmp_count(const void *a, const void *b)
{
	const sites_row *x = a, *y = b;
	if (x->est_count != y->est_count)
		return x->est_count < y->est_count ? 1 : -1;
	return top_cmp_bytes(x, y);
}

/* name: the site frame's function (what the table's SITE column shows), then the key */
static int top_cmp_name(const void *a, const void *b)
{
	const sites_row *x = a, *y = b;
	char nx[512], ny[512];
	const char *px = x->site < 0 ? x->key :
			 sites_frame_name(&x->stack.f[x->site], nx, sizeof nx);
	const char *py = y->site < 0 ? y->key :
			 sites_frame_name(&y->stack.f[y->site], ny, sizeof ny);
	int c = strcmp(px ? px : "", py ? py : "");
	return c ? c : top_tie(x, y);
}

static const cl_sort_key top_sorts[] = {
	{ "bytes", NULL }, { "count", top_cmp_count }, { "name", top_cmp_name },
};

static int print_table(const sites_result *r, const char *file, int64_t limit, const char *by)
{
	int est = r->sample_interval > 0, csv = out_table_csv();
	char b[OUT_SIZE_LEN];
	if (est && !csv)
		printf("sampled snapshot (mean interval %s): figures marked ~ are estimates\n",
		       out_size(b, (uint64_t)r->sample_interval));
	static const out_col cols[] = {
		{ "BYTES", OUT_RIGHT }, { "%", OUT_RIGHT }, { "COUNT", OUT_RIGHT },
		{ "SITE", OUT_LEFT }, { "WHERE", OUT_LEFT }, { "CALLERS", OUT_LEFT },
	};
	out_table *t = out_table_new(cols, (int)(sizeof cols / sizeof *cols));
	if (!t)
		return -1;
	size_t shown = 0;
	for (size_t i = 0; i < r->n_rows && (limit <= 0 || (int64_t)i < limit); i++, shown++) {
		const sites_row *w = &r->rows[i];
		size_cell(t, w->est_bytes, est);
		double pct = r->est_total_bytes > 0 ? 100.0 * w->est_bytes / r->est_total_bytes : 0;
		out_cellf(t, "%.1f", pct);
		if (est) {
			char raw[32], text[40];
			snprintf(raw, sizeof raw, "%.0f", w->est_count);
			snprintf(text, sizeof text, "~%s", raw);
			out_cell_raw(t, text, raw);
		} else
			out_cell_u64(t, (uint64_t)w->count);
		if (strcmp(by, "module") == 0) {
			out_cell(t, w->site < 0 ? "(no stack)" : w->key);
			out_cell(t, "");
			out_cell(t, "");
		} else {
			site_cells(t, w);
		}
	}
	char label[128];
	snprintf(label, sizeof label, "total (%zu %s%s)", r->n_rows, by,
		 r->n_rows == 1 ? "" : "s");
	if (!csv) {           /* CSV: the rows only */
		size_cell(t, r->est_total_bytes, est);
		out_cell(t, "100.0");
		if (est)
			out_cellf(t, "~%.0f", r->est_total_count);
		else
			out_cell_u64(t, (uint64_t)r->total_count);
		out_cell(t, label);
		out_cell(t, "");
		out_cell(t, "");
	}
	int rc = out_table_print(t, stdout);
	out_table_free(t);
	if (csv)
		return rc;
	if (shown < r->n_rows)
		printf("(%zu of %zu shown; --limit 0 shows all)\n", shown, r->n_rows);
	if (r->untracked_count > 0 && r->sample_interval > 0)
		printf("not recorded: %" PRId64 " chunks, %s usable: skipped by sampling (they carry "
		       "no header), or allocated outside the tracking library; the estimates above "
		       "stand for the skipped ones\n",
		       r->untracked_count, out_size(b, (uint64_t)r->untracked_bytes));
	else if (r->untracked_count > 0)
		printf("untracked: %" PRId64 " chunks, %s usable, allocated outside the tracking "
		       "library (before it loaded, or through __libc_malloc)\n",
		       r->untracked_count, out_size(b, (uint64_t)r->untracked_bytes));
	(void)file;
	return rc;
}

static void print_json(const sites_result *r, int64_t limit)
{
	out_json j;
	int est = r->sample_interval > 0;
	out_json_init(&j, stdout);
	out_json_arr(&j, NULL);
	for (size_t i = 0; i < r->n_rows && (limit <= 0 || (int64_t)i < limit); i++) {
		const sites_row *w = &r->rows[i];
		out_json_obj(&j, NULL);
		out_json_str(&j, "key", w->key);
		out_json_i64(&j, "bytes", est ? llround(w->est_bytes) : w->bytes);
		out_json_i64(&j, "count", est ? llround(w->est_count) : w->count);
		out_json_bool(&j, "sampled", est);
		out_json_i64(&j, "sample_interval", r->sample_interval);
		if (est) {
			out_json_i64(&j, "recorded_bytes", w->bytes);
			out_json_i64(&j, "recorded_count", w->count);
		}
		sites_json_frames(&j, "frames", &w->stack, w->site);
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_finish(&j);
}

int cmd_top(int argc, char **argv)
{
	cl_opts o = { .cmd = "top", .usage = top_usage, .help = top_help, .pos_min = 1,
		      .pos_max = 1, .allow_json = 1, .allow_csv = 1,
		      .value_names = { "by", "limit", "sort", NULL } };
	int prc = cl_parse(&o, argc, argv);
	if (prc >= 0)
		return prc;
	const char *file = o.pos[0], *by_s = cl_value(&o, "by") ? cl_value(&o, "by") : "site";
	int json = o.json, csv = o.csv;
	int found = 0;
	enum sites_by by = SITES_BY_SITE;
	for (size_t k = 0; k < sizeof bys / sizeof *bys; k++)
		if (!strcmp(by_s, bys[k].name)) {
			by = bys[k].by;
			found = 1;
		}
	if (!found) {
		out_err("top", "invalid --by '%s' (site, function, line, module)", by_s);
		return HS_EXIT_USAGE;
	}
	long long limit;
	if (cl_limit(&o, 20, &limit))
		return HS_EXIT_USAGE;
	int sort = cl_sort(&o, top_sorts, (int)(sizeof top_sorts / sizeof *top_sorts), 0);
	if (sort < 0)
		return HS_EXIT_USAGE;

	snap *s;
	sites_result r;
	int rc = sites_open_tracked("top", file, by, &s, &r);
	if (rc != HS_EXIT_OK)
		return rc;
	cl_sort_rows(r.rows, r.n_rows, sizeof *r.rows, &top_sorts[sort]);
	out_table_set_csv(csv);
	if (json) {
		print_json(&r, limit);
	} else if (print_table(&r, file, limit, by_s)) {
		out_err("top", "out of memory");
		rc = HS_EXIT_FAIL;
	}
	sites_free(&r);
	snap_close(s);
	return rc;
}
