/* cmd_stacks.c -- `heapsnap stacks FILE`: every distinct allocating call stack with its
 * live bytes, as a list, JSON, or the folded format flame graph tools read
 * (flamegraph.pl, inferno, speedscope). Aggregation by sites.h (SITES_BY_STACK).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "cmdline.h"
#include "output.h"
#include "sites.h"
#include "snapshot.h"

static const char stacks_usage[] =
	"usage: heapsnap stacks FILE [--folded | --json] [--limit N]\n";

static const char stacks_help[] =
	"\n"
	"Every distinct call stack that allocated live heap, with its live bytes (as\n"
	"requested) and chunks, largest first. Needs a snapshot of a target that ran under\n"
	"'heapsnap run'; for any other snapshot it says so and exits 1.\n"
	"\n"
	"  --folded     one line per stack, 'outer;...;inner BYTES', the folded format of\n"
	"               flamegraph.pl, inferno-flamegraph and speedscope; every frame is\n"
	"               kept (also libc's and the allocator's)\n"
	"  --json       a JSON array of {bytes, count, sampled, sample_interval, frames:\n"
	"               [{function, file, line, module, offset, build_id}]}, innermost first\n"
	"  --limit N    only the first N stacks (default: all)\n"
	"  -h, --help   this help\n"
	"\n"
	"Sampled snapshots (heapsnap run --sample R): bytes are rounded estimates (see\n"
	"'heapsnap help top'); the list says so, --folded prints a note on stderr.\n"
	"\n"
	"examples:\n"
	"  heapsnap stacks s.hsnap --limit 5\n"
	"  heapsnap stacks s.hsnap --folded > heap.folded && flamegraph.pl heap.folded > heap.svg\n";

/* a frame name safe for the folded format: no ';' (the separator) and no line breaks */
static void folded_frame(FILE *f, const stk_frame *fr)
{
	char name[1024], clean[1024];
	sites_frame_name(fr, name, sizeof name);
	out_clean(clean, sizeof clean, name);
	for (char *p = clean; *p; p++)
		if (*p == ';')
			*p = ':';
	fputs(clean, f);
}

static void print_folded(const sites_result *r, int64_t limit)
{
	int est = r->sample_interval > 0;
	for (size_t i = 0; i < r->n_rows && (limit <= 0 || (int64_t)i < limit); i++) {
		const sites_row *w = &r->rows[i];
		int64_t bytes = est ? llround(w->est_bytes) : w->bytes;
		if (!w->stack.n)
			fputs("(no stack)", stdout);
		for (int k = w->stack.n - 1; k >= 0; k--) {
			folded_frame(stdout, &w->stack.f[k]);
			if (k)
				fputc(';', stdout);
		}
		printf(" %" PRId64 "\n", bytes);
	}
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
		out_json_i64(&j, "bytes", est ? llround(w->est_bytes) : w->bytes);
		out_json_i64(&j, "count", est ? llround(w->est_count) : w->count);
		out_json_bool(&j, "sampled", est);
		out_json_i64(&j, "sample_interval", r->sample_interval);
		if (est) {
			out_json_i64(&j, "recorded_bytes", w->bytes);
			out_json_i64(&j, "recorded_count", w->count);
		}
		sites_json_frames(&j, "frames", &w->stack, 0);
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_finish(&j);
}

static void print_list(const sites_result *r, int64_t limit)
{
	int est = r->sample_interval > 0;
	char b[OUT_SIZE_LEN], name[1024], clean[1024];
	if (est)
		printf("sampled snapshot (mean interval %s): figures marked ~ are estimates\n\n",
		       out_size(b, (uint64_t)r->sample_interval));
	size_t shown = 0;
	for (size_t i = 0; i < r->n_rows && (limit <= 0 || (int64_t)i < limit); i++, shown++) {
		const sites_row *w = &r->rows[i];
		out_size(b, (uint64_t)llround(w->est_bytes));
		if (est)
			printf("~%s in ~%.0f chunks\n", b, w->est_count);
		else
			printf("%s in %" PRId64 " chunk%s\n", b, w->count, w->count == 1 ? "" : "s");
		if (!w->stack.n)
			printf("    (no stack)\n");
		for (int k = 0; k < w->stack.n; k++) {
			const stk_frame *f = &w->stack.f[k];
			printf("  %c %s", k == w->site ? '*' : ' ',
			       out_clean(clean, sizeof clean, sites_frame_name(f, name, sizeof name)));
			if (f->file && f->line > 0)
				printf("  %s:%" PRId64, out_clean(clean, sizeof clean, stk_base(f->file)), f->line);
			if (f->module)
				printf("  (%s)", out_clean(clean, sizeof clean, stk_base(f->module)));
			putchar('\n');
		}
		putchar('\n');
	}
	out_size(b, (uint64_t)llround(r->est_total_bytes));
	printf("total: %s%s in %zu stack%s%s; * marks each stack's site\n", est ? "~" : "", b,
	       r->n_rows, r->n_rows == 1 ? "" : "s",
	       shown < r->n_rows ? " (not all shown)" : "");
}

int cmd_stacks(int argc, char **argv)
{
	cl_opts o = { .cmd = "stacks", .usage = stacks_usage, .help = stacks_help, .pos_min = 1,
		      .pos_max = 1, .allow_json = 1, .value_names = { "limit", NULL },
		      .flag_names = { "folded", NULL } };
	int prc = cl_parse(&o, argc, argv);
	if (prc >= 0)
		return prc;
	const char *file = o.pos[0];
	int json = o.json, folded = cl_flag(&o, "folded");
	if (json && folded) {
		out_err("stacks", "--json and --folded cannot be combined");
		return HS_EXIT_USAGE;
	}
	long long limit;
	if (cl_limit(&o, 0, &limit))
		return HS_EXIT_USAGE;

	snap *s;
	sites_result r;
	int rc = sites_open_tracked("stacks", file, SITES_BY_STACK, &s, &r);
	if (rc != HS_EXIT_OK)
		return rc;
	if (folded) {
		if (r.sample_interval > 0) {
			char b[OUT_SIZE_LEN];
			out_err("stacks", "note: sampled snapshot (mean interval %s): the bytes are estimates",
				out_size(b, (uint64_t)r.sample_interval));
		}
		print_folded(&r, limit);
	} else if (json) {
		print_json(&r, limit);
	} else {
		print_list(&r, limit);
	}
	sites_free(&r);
	snap_close(s);
	return rc;
}
