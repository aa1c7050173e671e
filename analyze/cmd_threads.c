/* cmd_threads.c -- `heapsnap threads FILE`: every thread at the capture with its state,
 * how it was brought to a safe point, the syscall it was blocked in, and its symbolized
 * backtrace (innermost frame first); as text, JSON or CSV (one line per frame).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"
#include "commands.h"
#include "output.h"
#include "snapshot.h"
#include "stackfmt.h"

static const char threads_usage[] =
	"usage: heapsnap threads FILE [--json | --csv] [--limit N]\n";

static const char threads_help[] =
	"\n"
	"Every thread of the captured process: tid, name, scheduler state before the capture,\n"
	"safe point (clean, ran_out = let run out of the allocator first, parked_lock,\n"
	"parked_syscall, in_flux), the syscall it was blocked in, and its backtrace at the\n"
	"freeze, innermost frame first (function+offset (module), source file:line when\n"
	"debug info was found).\n"
	"\n"
	"  --limit N    at most N frames per thread (default: all)\n"
	"  --json       {\"file\", \"threads\": [{\"tid\", \"name\", ..., \"frames\": [...]}]}\n"
	"  --csv        one line per frame: tid, thread name, depth, function, module, ...\n"
	"  -h, --help   this help\n"
	"\n"
	"examples:\n"
	"  heapsnap threads s.hsnap\n"
	"  heapsnap threads s.hsnap --json | jq '.threads[] | {tid, name}'\n";

enum { T_TID, T_NAME, T_STATE, T_STOPPED, T_SP, T_SYSCALL, T_CALLSITE, T_UNWIND_ERR, T_PC };

int cmd_threads(int argc, char **argv)
{
	cl_opts o = {
		.cmd = "threads", .usage = threads_usage, .help = threads_help,
		.pos_min = 1, .pos_max = 1, .allow_json = 1, .allow_csv = 1,
		.value_names = { "limit", NULL },
	};
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	long long limit;
	if (cl_limit(&o, -1, &limit))
		return HS_EXIT_USAGE;
	snap *s = cl_open("threads", o.pos[0], &rc);
	if (!s)
		return rc;
	sqlite3_stmt *st;
	if (snap_prepare(s, &st,
			 "SELECT t.tid, t.name, t.state, t.was_stopped, k.name, t.syscall_nr,"
			 " t.callsite_id, t.unwind_error, t.pc"
			 " FROM thread t LEFT JOIN safepoint_kind k ON k.id = t.safepoint ORDER BY t.tid")) {
		out_err("threads", "%s", snap_error(s));
		rc = snap_exit_code(s);
		snap_close(s);
		return rc;
	}
	out_json j;
	out_csv c;
	if (o.json) {
		out_json_init(&j, stdout);
		out_json_obj(&j, NULL);
		out_json_str(&j, "file", o.pos[0]);
		out_json_arr(&j, "threads");
	} else if (o.csv) {
		out_csv_init(&c, stdout);
		static const char *const hdr[] = { "tid", "thread", "depth", "function", "func_offset",
						   "module", "rel_pc", "file", "line" };
		for (size_t k = 0; k < sizeof hdr / sizeof *hdr; k++)
			out_csv_str(&c, hdr[k]);
		out_csv_end(&c);
	}
	int r, nthreads = 0;
	rc = HS_EXIT_OK;
	while ((r = snap_step(s, st)) == 1) {
		int64_t tid = snap_i64(st, T_TID, 0);
		const char *name = snap_text(st, T_NAME);
		stk_stack stack = { 0 };
		if (!snap_isnull(st, T_CALLSITE) && stk_load(s, snap_i64(st, T_CALLSITE, 0), &stack)) {
			r = -1;
			break;
		}
		int nf = stack.n;
		if (limit >= 0 && nf > limit)
			nf = (int)limit;
		nthreads++;
		char line[1024], clean[1024];
		if (o.json) {
			out_json_obj(&j, NULL);
			out_json_i64(&j, "tid", tid);
			out_json_str(&j, "name", name);
			out_json_str(&j, "state", snap_text(st, T_STATE));
			out_json_bool(&j, "was_stopped", snap_i64(st, T_STOPPED, 0) != 0);
			out_json_str(&j, "safepoint", snap_text(st, T_SP));
			if (snap_isnull(st, T_SYSCALL))
				out_json_null(&j, "syscall_nr");
			else
				out_json_i64(&j, "syscall_nr", snap_i64(st, T_SYSCALL, 0));
			if (snap_isnull(st, T_PC))
				out_json_null(&j, "pc");
			else
				out_json_u64(&j, "pc", (uint64_t)snap_i64(st, T_PC, 0));
			out_json_str(&j, "unwind_error", snap_text(st, T_UNWIND_ERR));
			out_json_i64(&j, "frame_count", stack.n);
			out_json_arr(&j, "frames");
			for (int i = 0; i < nf; i++)
				stk_json_frame(&j, &stack.f[i]);
			out_json_end(&j);
			out_json_end(&j);
		} else if (o.csv) {
			for (int i = 0; i < nf; i++) {
				const stk_frame *f = &stack.f[i];
				out_csv_i64(&c, tid);
				out_csv_str(&c, name);
				out_csv_i64(&c, i);
				out_csv_str(&c, f->function);
				if (f->func_offset < 0)
					out_csv_str(&c, NULL);
				else
					out_csv_i64(&c, f->func_offset);
				out_csv_str(&c, f->module);
				out_csv_hex(&c, (uint64_t)f->rel_pc);
				out_csv_str(&c, f->file);
				if (f->line < 0)
					out_csv_str(&c, NULL);
				else
					out_csv_i64(&c, f->line);
				out_csv_end(&c);
			}
		} else {
			if (nthreads > 1)
				putchar('\n');
			snprintf(line, sizeof line, "thread %" PRId64 " (%s)  state %s  safepoint %s",
				 tid, name ? name : "?", snap_text(st, T_STATE) ? snap_text(st, T_STATE) : "?",
				 snap_text(st, T_SP) ? snap_text(st, T_SP) : "?");
			fputs(out_clean(clean, sizeof clean, line), stdout);
			if (!snap_isnull(st, T_SYSCALL))
				printf("  syscall %" PRId64, snap_i64(st, T_SYSCALL, 0));
			if (snap_i64(st, T_STOPPED, 0))
				fputs("  (was stopped)", stdout);
			putchar('\n');
			for (int i = 0; i < nf; i++) {
				const stk_frame *f = &stack.f[i];
				char nm[768];
				stk_name(f, nm, sizeof nm);
				if (f->file && f->line >= 0)
					snprintf(line, sizeof line, "  #%-2d %s at %s:%" PRId64, i, nm,
						 stk_base(f->file), f->line);
				else
					snprintf(line, sizeof line, "  #%-2d %s", i, nm);
				puts(out_clean(clean, sizeof clean, line));
			}
			if (nf < stack.n)
				printf("  ... %d more frames\n", stack.n - nf);
			if (!stack.n)
				puts("  (no backtrace)");
			const char *ue = snap_text(st, T_UNWIND_ERR);
			if (ue) {
				snprintf(line, sizeof line, "  (backtrace stopped: %s)", ue);
				puts(out_clean(clean, sizeof clean, line));
			}
		}
		stk_free(&stack);
	}
	sqlite3_finalize(st);
	if (o.json) {
		out_json_end(&j);
		out_json_i64(&j, "thread_count", nthreads);
		out_json_finish(&j);
	} else if (!o.csv && r >= 0) {
		printf("\n%d thread%s\n", nthreads, nthreads == 1 ? "" : "s");
	}
	if (r < 0) {
		out_err("threads", "%s", snap_error(s));
		rc = snap_exit_code(s);
	}
	snap_close(s);
	return rc;
}
