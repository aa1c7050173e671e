/* sites.c -- owns the aggregation of tracked live chunks by allocation site (see
 * sites.h): per distinct stack, the recorded chunks and bytes (with sampling estimates),
 * then the stacks grouped by the key the caller asked for.
 */
#define _GNU_SOURCE
#include "sites.h"
#include "commands.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITES_MAX_STACKS 4000000   /* distinct stacks read at most (the library holds 2^21) */

int sites_is_library_module(const char *path)
{
	static const char *const prefixes[] = {
		"libc.so", "libc-2.", "libstdc++.so", "libgcc_s.so", "libc++.so", "libc++abi.so",
		"ld-linux", "ld-2.", "ld64.so", "libheapsnap_preload.so",
	};
	if (!path)
		return 0;
	const char *b = stk_base(path);
	for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
		if (!strncmp(b, prefixes[i], strlen(prefixes[i])))
			return 1;
	return 0;
}

double sites_weight(int64_t bytes, int64_t interval)
{
	if (interval <= 0 || bytes >= interval)
		return 1.0;
	if (bytes <= 0)
		return 1.0;
	double p = -expm1(-(double)bytes / (double)interval);
	return p > 0 ? 1.0 / p : 1.0;
}

/* one distinct stack (or the "(no stack)" group) before grouping */
typedef struct {
	int64_t cs;           /* callsite id, -1 for no stack */
	int64_t count, bytes;
	double est_count, est_bytes;
} cs_agg;

static int load_tracking(snap *s, sites_result *r)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT valid, sample_interval, note, untracked_count, untracked_bytes"
			 " FROM tracking LIMIT 1"))
		return -1;
	int k = snap_step(s, st);
	if (k == 1) {
		r->tracked = snap_i64(st, 0, 0) == 1;
		r->sample_interval = snap_i64(st, 1, 0);
		if (r->sample_interval < 0)
			r->sample_interval = 0;
		const char *n = snap_text(st, 2);
		r->note = n ? strdup(n) : NULL;
		r->untracked_count = snap_i64(st, 3, 0);
		r->untracked_bytes = snap_i64(st, 4, 0);
	}
	sqlite3_finalize(st);
	return k < 0 ? -1 : 0;
}

/* the per-stack figures, by callsite id */
static int load_stacks(snap *s, sites_result *r, cs_agg **out, size_t *n_out, int *oom)
{
	sqlite3_stmt *st;
	*out = NULL;
	*n_out = 0;
	if (snap_prepare(s, &st, "SELECT CASE WHEN origin = 0 THEN callsite_id END AS cs, requested, count(*)"
			 " FROM alloc WHERE origin IN (0, 3, 4, 5)"
			 " GROUP BY cs, requested ORDER BY cs"))
		return -1;
	cs_agg *a = NULL;
	size_t n = 0, cap = 0;
	int k;
	while ((k = snap_step(s, st)) == 1) {
		int64_t cs = snap_i64(st, 0, -1), req = snap_i64(st, 1, 0), cnt = snap_i64(st, 2, 0);
		if (req < 0)
			req = 0;
		if (!n || a[n - 1].cs != cs) {
			if (n == SITES_MAX_STACKS)
				break;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				cs_agg *p = realloc(a, nc * sizeof *p);
				if (!p) {
					*oom = 1;
					k = -1;
					break;
				}
				a = p;
				cap = nc;
			}
			memset(&a[n], 0, sizeof a[n]);
			a[n++].cs = cs;
		}
		cs_agg *g = &a[n - 1];
		double w = sites_weight(req, r->sample_interval);
		g->count += cnt;
		g->bytes += cnt * req;
		g->est_count += (double)cnt * w;
		g->est_bytes += (double)cnt * (double)req * w;
	}
	sqlite3_finalize(st);
	if (k < 0) {
		free(a);
		return -1;
	}
	*out = a;
	*n_out = n;
	return 0;
}

static int site_index(const stk_stack *st)
{
	for (int i = 0; i < st->n; i++)
		if (!sites_is_library_module(st->f[i].module))
			return i;
	return st->n ? 0 : -1;
}

/* module build-id (else path) + offset, or the function, or the bare pc */
static int place_key(const stk_frame *f, int prefer_function, char **k)
{
	if (prefer_function && f->function)
		return (*k = strdup(f->function)) ? 0 : -1;
	if (f->module)
		return asprintf(k, "%s+0x%" PRIx64, f->build_id ? f->build_id : f->module,
				(uint64_t)f->rel_pc) < 0 ? -1 : 0;
	if (f->function)
		return (*k = strdup(f->function)) ? 0 : -1;
	return asprintf(k, "0x%" PRIx64, (uint64_t)f->rel_pc) < 0 ? -1 : 0;
}

static char *key_of(const stk_stack *st, int site, enum sites_by by, int64_t cs)
{
	char *k = NULL;
	if (site < 0)
		return strdup("(no stack)");
	const stk_frame *f = &st->f[site];
	int r = 0;
	switch (by) {
	case SITES_BY_STACK:
		r = asprintf(&k, "%" PRId64, cs) < 0 ? -1 : 0;
		break;
	case SITES_BY_MODULE:
		k = strdup(f->module ? f->module : "(no module)");
		break;
	case SITES_BY_LINE:
		if (f->file && f->line > 0)
			r = asprintf(&k, "%s:%" PRId64, f->file, f->line) < 0 ? -1 : 0;
		else
			r = place_key(f, 1, &k);
		break;
	case SITES_BY_FUNCTION:
		r = place_key(f, 1, &k);
		break;
	case SITES_BY_SITE:
		r = place_key(f, !f->build_id, &k);
		break;
	}
	return r < 0 ? NULL : k;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const sites_row *)a)->key, ((const sites_row *)b)->key);
}

static int by_weight(const void *a, const void *b)
{
	const sites_row *x = a, *y = b;
	if (x->est_bytes != y->est_bytes)
		return x->est_bytes > y->est_bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

int sites_load(snap *s, enum sites_by by, sites_result *out, int *oom)
{
	int oom_dummy = 0;
	if (!oom)
		oom = &oom_dummy;
	*oom = 0;
	memset(out, 0, sizeof *out);
	if (load_tracking(s, out))
		return -1;
	if (!out->tracked)
		return 0;
	cs_agg *a;
	size_t n;
	if (load_stacks(s, out, &a, &n, oom))
		return -1;
	sites_row *rows = calloc(n ? n : 1, sizeof *rows);
	if (!rows) {
		free(a);
		*oom = 1;
		return -1;
	}
	size_t nr = 0;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		sites_row *w = &rows[nr];
		w->callsite_id = a[i].cs;
		w->site = -1;
		if (a[i].cs >= 0) {
			if (stk_load(s, a[i].cs, &w->stack)) {
				rc = -1;
				break;
			}
			w->site = site_index(&w->stack);
		}
		w->key = key_of(&w->stack, w->site, by, a[i].cs);
		if (!w->key) {
			stk_free(&w->stack);
			*oom = 1;
			rc = -1;
			break;
		}
		w->count = a[i].count;
		w->bytes = a[i].bytes;
		w->est_count = a[i].est_count;
		w->est_bytes = a[i].est_bytes;
		w->stack_bytes = a[i].est_bytes;
		nr++;
	}
	free(a);
	out->rows = rows;
	out->n_rows = nr;
	if (rc) {
		sites_free(out);
		return -1;
	}
	/* group equal keys: sums, and the stack of the heaviest member */
	qsort(rows, nr, sizeof *rows, by_key);
	size_t m = 0;
	for (size_t i = 0; i < nr; i++) {
		if (m && !strcmp(rows[m - 1].key, rows[i].key)) {
			sites_row *g = &rows[m - 1], *x = &rows[i];
			int heavier = x->stack_bytes > g->stack_bytes;
			g->count += x->count;
			g->bytes += x->bytes;
			double ec = g->est_count + x->est_count, eb = g->est_bytes + x->est_bytes;
			if (heavier) {
				stk_stack t = g->stack;
				g->stack = x->stack;
				x->stack = t;
				int ts = g->site;
				g->site = x->site;
				x->site = ts;
				int64_t tc = g->callsite_id;
				g->callsite_id = x->callsite_id;
				x->callsite_id = tc;
				g->stack_bytes = x->stack_bytes;
			}
			g->est_count = ec;
			g->est_bytes = eb;
			free(x->key);
			stk_free(&x->stack);
		} else {
			rows[m++] = rows[i];
		}
	}
	out->n_rows = m;
	qsort(rows, m, sizeof *rows, by_weight);
	for (size_t i = 0; i < m; i++) {
		out->total_count += rows[i].count;
		out->total_bytes += rows[i].bytes;
		out->est_total_count += rows[i].est_count;
		out->est_total_bytes += rows[i].est_bytes;
	}
	return 0;
}

void sites_free(sites_result *r)
{
	for (size_t i = 0; i < r->n_rows; i++) {
		free(r->rows[i].key);
		stk_free(&r->rows[i].stack);
	}
	free(r->rows);
	free(r->note);
	memset(r, 0, sizeof *r);
}

const char *sites_frame_name(const stk_frame *f, char *buf, size_t n)
{
	if (f->function)
		snprintf(buf, n, "%s", f->function);
	else if (f->module)
		snprintf(buf, n, "%s+0x%" PRIx64, stk_base(f->module), (uint64_t)f->rel_pc);
	else
		snprintf(buf, n, "0x%" PRIx64, (uint64_t)f->rel_pc);
	return buf;
}

void sites_json_frames(out_json *j, const char *key, const stk_stack *st, int from)
{
	out_json_arr(j, key);
	for (int i = from < 0 ? 0 : from; i < st->n; i++) {
		const stk_frame *f = &st->f[i];
		out_json_obj_line(j, NULL);
		out_json_str(j, "function", f->function);
		out_json_str(j, "file", f->file);
		if (f->line > 0)
			out_json_i64(j, "line", f->line);
		else
			out_json_null(j, "line");
		out_json_str(j, "module", f->module);
		out_json_u64(j, "offset", (uint64_t)f->rel_pc);
		out_json_str(j, "build_id", f->build_id);
		out_json_end(j);
	}
	out_json_end(j);
}

int sites_open_tracked(const char *cmd, const char *file, enum sites_by by, snap **s,
		       sites_result *r)
{
	char err[512];
	int st_open = snap_open(file, s, err, sizeof err);
	if (st_open != SNAP_OK) {
		out_err(cmd, "%s", err);
		return snap_status_exit(st_open);
	}
	int oom = 0;
	if (sites_load(*s, by, r, &oom)) {
		if (oom)
			out_err(cmd, "out of memory");
		else
			out_err(cmd, "%s", snap_error(*s));
		int rc = oom ? HS_EXIT_FAIL : snap_exit_code(*s);
		snap_close(*s);
		return rc;
	}
	if (r->tracked)
		return HS_EXIT_OK;
	if (r->note)
		out_err(cmd, "%s: the allocation tracking data could not be read: %s", file, r->note);
	else
		out_err(cmd, "%s has no allocation tracking: the target did not run under "
			"'heapsnap run' (see 'heapsnap help run')", file);
	sites_free(r);
	snap_close(*s);
	return HS_EXIT_FAIL;
}
