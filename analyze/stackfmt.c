/* stackfmt.c -- one call stack out of a snapshot, named (see stackfmt.h). */
#include "stackfmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char stk_sql[] =
	"WITH RECURSIVE cs(id, parent_id, frame_id, n) AS ("
	" SELECT id, parent_id, frame_id, 0 FROM callsite WHERE id = ?1"
	" UNION ALL SELECT c.id, c.parent_id, c.frame_id, cs.n + 1 FROM callsite c"
	"  JOIN cs ON c.id = cs.parent_id WHERE cs.n < " "255" ")"
	" SELECT f.module_id, m.path, m.build_id, f.rel_pc, f.function, f.func_offset, f.file, f.line"
	" FROM cs JOIN frame f ON f.id = cs.frame_id LEFT JOIN module m ON m.id = f.module_id"
	" ORDER BY cs.n";

static char *stk_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int stk_load(snap *s, int64_t callsite_id, stk_stack *out)
{
	out->f = NULL;
	out->n = 0;
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, stk_sql))
		return -1;
	sqlite3_bind_int64(st, 1, callsite_id);
	int r, cap = 0;
	while ((r = snap_step(s, st)) == 1 && out->n < STK_MAX_FRAMES) {
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			stk_frame *f = realloc(out->f, (size_t)cap * sizeof *f);
			if (!f) {
				r = -1;
				break;
			}
			out->f = f;
		}
		stk_frame *f = &out->f[out->n++];
		f->module_id = snap_i64(st, 0, -1);
		f->module = stk_dup(snap_text(st, 1));
		f->build_id = stk_dup(snap_text(st, 2));
		f->rel_pc = snap_i64(st, 3, 0);
		f->function = stk_dup(snap_text(st, 4));
		f->func_offset = snap_i64(st, 5, -1);
		f->file = stk_dup(snap_text(st, 6));
		f->line = snap_i64(st, 7, -1);
	}
	sqlite3_finalize(st);
	if (r < 0) {
		stk_free(out);
		return -1;
	}
	return 0;
}

void stk_free(stk_stack *st)
{
	for (int i = 0; i < st->n; i++) {
		free(st->f[i].module);
		free(st->f[i].build_id);
		free(st->f[i].function);
		free(st->f[i].file);
	}
	free(st->f);
	st->f = NULL;
	st->n = 0;
}

const char *stk_base(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	return s && s[1] ? s + 1 : path;
}

const char *stk_name(const stk_frame *f, char *buf, size_t n)
{
	const char *mod = f->module ? stk_base(f->module) : NULL;
	if (f->function && mod)
		snprintf(buf, n, "%s+0x%" PRIx64 " (%s)", f->function,
			 (uint64_t)(f->func_offset < 0 ? 0 : f->func_offset), mod);
	else if (f->function)
		snprintf(buf, n, "%s", f->function);
	else if (mod)
		snprintf(buf, n, "%s+0x%" PRIx64, mod, (uint64_t)f->rel_pc);
	else
		snprintf(buf, n, "0x%" PRIx64, (uint64_t)f->rel_pc);
	return buf;
}

void stk_json_frame(out_json *j, const stk_frame *f)
{
	out_json_obj_line(j, NULL);
	out_json_str(j, "function", f->function);
	out_json_str(j, "module", f->module);
	out_json_str(j, "build_id", f->build_id);
	out_json_i64(j, "rel_pc", f->rel_pc);
	if (f->func_offset < 0)
		out_json_null(j, "func_offset");
	else
		out_json_i64(j, "func_offset", f->func_offset);
	out_json_str(j, "file", f->file);
	if (f->line < 0)
		out_json_null(j, "line");
	else
		out_json_i64(j, "line", f->line);
	out_json_end(j);
}
