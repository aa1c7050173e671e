/* graph_labels.c -- class and allocation-site names per graph node, and where each root
 * came from (graph_labels.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_labels.h"
#include "sites.h"
#include "stackfmt.h"

/* node whose chunk starts at addr (alloc and chunk_type rows name the chunk address) */
static int64_t gl_node(const hs_graph *g, uint64_t addr)
{
	uint32_t lo = 0, hi = g->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (g->addr[mid] < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < g->n && g->addr[lo] == addr ? (int64_t)lo : -1;
}

static int gl_intern(gl_labels *l, const char *s, uint32_t *cap)
{
	if (l->n_names == *cap) {
		uint32_t c = *cap ? *cap * 2 : 64;
		char **grown = realloc(l->names, c * sizeof *grown);
		if (!grown)
			return -1;
		l->names = grown;
		*cap = c;
	}
	l->names[l->n_names] = strdup(s ? s : "?");
	if (!l->names[l->n_names])
		return -1;
	return (int)++l->n_names;
}

/* the site name of a callsite chain, as sites.c names sites */
static int gl_site_name(snap *s, int64_t callsite, char *buf, size_t n)
{
	stk_stack st;
	if (stk_load(s, callsite, &st) < 0)
		return -1;
	int pick = -1;
	for (int i = 0; i < st.n && pick < 0; i++)
		if (!st.f[i].module || !sites_is_library_module(st.f[i].module))
			pick = i;
	if (pick < 0 && st.n)
		pick = 0;
	if (pick >= 0) {
		char tmp[512];
		const stk_frame *f = &st.f[pick];
		const char *fn = sites_frame_name(f, tmp, sizeof tmp);
		if (f->file && f->line >= 0)
			snprintf(buf, n, "%s (%s:%lld)", fn, stk_base(f->file), (long long)f->line);
		else
			snprintf(buf, n, "%s", fn);
	} else {
		snprintf(buf, n, "(no frames)");
	}
	stk_free(&st);
	return 0;
}

int gl_load(snap *s, const hs_graph *g, gl_labels *out)
{
	sqlite3_stmt *st = NULL;
	uint32_t cap = 0;
	char buf[640];

	memset(out, 0, sizeof *out);
	out->n = g->n;
	out->type = calloc(g->n ? g->n : 1, sizeof *out->type);
	out->site = calloc(g->n ? g->n : 1, sizeof *out->site);
	if (!out->type || !out->site)
		goto fail;

	if (snap_has_table(s, "chunk_type") == 1 && snap_has_table(s, "type") == 1) {
		if (snap_prepare(s, &st, "SELECT ct.addr, t.id, t.name FROM chunk_type ct "
				 "JOIN type t ON t.id = ct.type_id ORDER BY t.id") < 0)
			goto fail;
		int64_t last = -1;
		int idx = 0, rc;
		while ((rc = snap_step(s, st)) == 1) {
			int64_t id = snap_i64(st, 1, -1);
			if (id != last || !idx) {
				idx = gl_intern(out, snap_text(st, 2), &cap);
				if (idx < 0)
					goto fail;
				last = id;
			}
			int64_t v = gl_node(g, (uint64_t)snap_i64(st, 0, 0));
			if (v >= 0) {
				out->type[v] = (uint32_t)idx;
				out->has_types = 1;
			}
		}
		sqlite3_finalize(st);
		st = NULL;
		if (rc < 0)
			goto fail;
	}
	if (snap_has_table(s, "alloc") == 1) {
		if (snap_prepare(s, &st, "SELECT addr, callsite_id FROM alloc "
				 "WHERE callsite_id IS NOT NULL ORDER BY callsite_id") < 0)
			goto fail;
		int64_t last = -1;
		int idx = 0, rc;
		while ((rc = snap_step(s, st)) == 1) {
			int64_t cs = snap_i64(st, 1, -1);
			if (cs != last || !idx) {
				if (gl_site_name(s, cs, buf, sizeof buf) < 0)
					goto fail;
				idx = gl_intern(out, buf, &cap);
				if (idx < 0)
					goto fail;
				last = cs;
			}
			int64_t v = gl_node(g, (uint64_t)snap_i64(st, 0, 0));
			if (v >= 0) {
				out->site[v] = (uint32_t)idx;
				out->has_sites = 1;
			}
		}
		sqlite3_finalize(st);
		st = NULL;
		if (rc < 0)
			goto fail;
	}
	return 0;
fail:
	sqlite3_finalize(st);
	gl_free(out);
	return -1;
}

void gl_free(gl_labels *l)
{
	for (uint32_t i = 0; i < l->n_names; i++)
		free(l->names[i]);
	free(l->names);
	free(l->type);
	free(l->site);
	memset(l, 0, sizeof *l);
}

const char *gl_type(void *ctx, uint32_t node)
{
	const gl_labels *l = ctx;
	return node < l->n && l->type[node] ? l->names[l->type[node] - 1] : NULL;
}

const char *gl_site(void *ctx, uint32_t node)
{
	const gl_labels *l = ctx;
	return node < l->n && l->site[node] ? l->names[l->site[node] - 1] : NULL;
}

/* "+0x10" / "-0x8" */
static void gl_signed_hex(char *buf, size_t n, int64_t v)
{
	if (v < 0)
		snprintf(buf, n, "-0x%" PRIx64, -(uint64_t)v);
	else
		snprintf(buf, n, "+0x%" PRIx64, (uint64_t)v);
}

/* the frame of a stack root (row columns 7..10), appended at buf + len */
static void gl_frame_suffix(sqlite3_stmt *st, char *buf, size_t n, int len)
{
	if (snap_isnull(st, 7) || len < 0 || (size_t)len >= n)
		return;
	const char *fn = snap_text(st, 8), *file = snap_text(st, 9);
	int64_t line = snap_i64(st, 10, 0);
	int k = snprintf(buf + len, n - (size_t)len, " frame #%" PRId64 " %s", snap_i64(st, 7, 0),
			 fn ? fn : "??");
	if (k >= 0 && (size_t)k < n - (size_t)len && file && line > 0)
		snprintf(buf + len + k, n - (size_t)len - (size_t)k, " (%s:%" PRId64 ")",
			 stk_base(file), line);
}

const char *gl_root_source(snap *s, int64_t root_id, char *buf, size_t n)
{
	sqlite3_stmt *st = NULL;
	if (snap_prepare(s, &st, "SELECT r.kind, m.path, r.symbol, r.offset, r.tid, r.register, "
			 "r.slot, r.frame_no, f.function, f.file, f.line FROM root r "
			 "LEFT JOIN module m ON m.id = r.module_id "
			 "LEFT JOIN frame f ON f.id = r.frame_id WHERE r.id = ?") < 0)
		return NULL;
	sqlite3_bind_int64(st, 1, root_id);
	const char *out = NULL;
	if (snap_step(s, st) == 1) {
		int64_t kind = snap_i64(st, 0, -1), tid = snap_i64(st, 4, 0);
		const char *mod = snap_text(st, 1), *sym = snap_text(st, 2);
		const char *reg = snap_text(st, 5);
		char o[32];
		gl_signed_hex(o, sizeof o, snap_i64(st, 3, 0));
		if (kind == GRAPH_ROOT_GLOBAL)
			snprintf(buf, n, "%s:%s%s", mod ? stk_base(mod) : "?", sym ? sym : "?", o);
		else if (kind == GRAPH_ROOT_REGISTER)
			snprintf(buf, n, "thread %" PRId64 " register %s", tid, reg ? reg : "?");
		else if (kind == GRAPH_ROOT_STACK)
			gl_frame_suffix(st, buf, n,
					snprintf(buf, n, "thread %" PRId64 " stack sp%s", tid, o));
		else if (kind == GRAPH_ROOT_TLS)
			snprintf(buf, n, "thread %" PRId64 " tls%s", tid, o);
		else
			snprintf(buf, n, "slot 0x%" PRIx64, (uint64_t)snap_i64(st, 6, 0));
		out = buf;
	}
	sqlite3_finalize(st);
	return out;
}
