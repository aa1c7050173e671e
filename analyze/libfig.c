/* libfig.c -- per-module memory and heap attribution (see libfig.h). */
#include "libfig.h"
#include "graph.h"
#include "progress.h"
#include "rootgroups.h"
#include "sites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const lib_seg_name[LIB_NSEG] = { "text", "rodata", "data", "bss" };

/* mapping_kind ids of the module segments (schema.sql) */
enum { KIND_TEXT = 5, KIND_RODATA = 6, KIND_DATA = 7, KIND_BSS = 8 };

int lib_is_allocator_path(const char *path)
{
	return sites_is_library_module(path);   /* the same rule as top's sites */
}

static void fig_add(lib_fig *a, const lib_fig *b)
{
	a->virt += b->virt;
	a->rss += b->rss;
	a->pss += b->pss;
	a->priv += b->priv;
	a->shared += b->shared;
	a->swap += b->swap;
	a->file_rss += b->file_rss;
	a->mappings += b->mappings;
}

static lib_module *find_mod(lib_report *r, int64_t id)
{
	for (int i = 0; i < r->nmods; i++)
		if (r->mods[i].id == id)
			return &r->mods[i];
	return NULL;
}

static int load_modules(snap *s, lib_report *r)
{
	int64_t n;
	if (snap_query_i64(s, "SELECT count(*) FROM module", 0, &n))
		return -1;
	r->mods = calloc((size_t)(n ? n : 1), sizeof *r->mods);
	if (!r->mods)
		return -1;
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT id, path, build_id, is_main FROM module ORDER BY is_main DESC, start"))
		return -1;
	int rc;
	while ((rc = snap_step(s, st)) == 1 && r->nmods < n) {
		lib_module *m = &r->mods[r->nmods++];
		m->id = snap_i64(st, 0, 0);
		const char *p = snap_text(st, 1), *b = snap_text(st, 2);
		m->path = strdup(p ? p : "?");
		m->build_id = b ? strdup(b) : NULL;
		m->is_main = snap_i64(st, 3, 0) != 0;
		m->is_allocator = lib_is_allocator_path(m->path);
		if (!m->path) {
			rc = -1;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

static int load_mappings(snap *s, lib_report *r)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st,
			 "SELECT m.kind, m.module_id, coalesce(m.size_kb, 0), coalesce(m.rss_kb, 0),"
			 " coalesce(m.pss_kb, 0),"
			 " coalesce(m.private_clean_kb, 0) + coalesce(m.private_dirty_kb, 0),"
			 " coalesce(m.shared_clean_kb, 0) + coalesce(m.shared_dirty_kb, 0),"
			 " coalesce(m.swap_kb, 0), coalesce(m.rss_kb, 0) - coalesce(m.anonymous_kb, 0),"
			 " k.name FROM mapping m LEFT JOIN mapping_kind k ON k.id = m.kind"))
		return -1;
	int rc;
	while ((rc = snap_step(s, st)) == 1) {
		int64_t kind = snap_i64(st, 0, 0);
		lib_fig f = {
			.virt = snap_i64(st, 2, 0), .rss = snap_i64(st, 3, 0), .pss = snap_i64(st, 4, 0),
			.priv = snap_i64(st, 5, 0), .shared = snap_i64(st, 6, 0), .swap = snap_i64(st, 7, 0),
			.file_rss = snap_i64(st, 8, 0), .mappings = 1,
		};
		fig_add(&r->all, &f);
		lib_module *m = snap_isnull(st, 1) ? NULL : find_mod(r, snap_i64(st, 1, 0));
		if (m && kind >= KIND_TEXT && kind <= KIND_BSS) {
			fig_add(&m->seg[kind - KIND_TEXT], &f);
			fig_add(&m->total, &f);
			fig_add(&r->mods_total, &f);
			continue;
		}
		int slot = kind >= 0 && kind < LIB_MAX_KINDS ? (int)kind : LIB_MAX_KINDS - 1;
		if (!r->other_name[slot][0]) {
			const char *nm = snap_text(st, 9);
			strncpy(r->other_name[slot], nm ? nm : "other", sizeof r->other_name[slot] - 1);
		}
		fig_add(&r->other[slot], &f);
		fig_add(&r->other_total, &f);
	}
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

static int load_process(snap *s, lib_report *r)
{
	sqlite3_stmt *st;
	r->vm_rss = r->rss_anon = r->rss_file = r->rss_shmem = r->vm_swap = r->vm_size = -1;
	if (snap_prepare(s, &st, "SELECT vm_rss_kb, rss_anon_kb, rss_file_kb, rss_shmem_kb, vm_swap_kb,"
			 " vm_size_kb FROM process"))
		return -1;
	int rc = snap_step(s, st);
	if (rc == 1) {
		r->vm_rss = snap_i64(st, 0, -1);
		r->rss_anon = snap_i64(st, 1, -1);
		r->rss_file = snap_i64(st, 2, -1);
		r->rss_shmem = snap_i64(st, 3, -1);
		r->vm_swap = snap_i64(st, 4, -1);
		r->vm_size = snap_i64(st, 5, -1);
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return -1;
	if (snap_prepare(s, &st, "SELECT coalesce(sum(CASE WHEN state = 0 THEN size END), 0),"
			 " count(CASE WHEN state = 0 THEN 1 END),"
			 " coalesce(sum(CASE WHEN state IN (1, 2, 3, 4) THEN size END), 0) FROM chunk"))
		return -1;
	rc = snap_step(s, st);
	if (rc == 1) {
		r->heap_inuse_bytes = snap_i64(st, 0, 0);
		r->heap_inuse_count = snap_i64(st, 1, 0);
		r->heap_free_bytes = snap_i64(st, 2, 0);
	}
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

/* the callsite table in memory: id -> (parent, module of its frame), sorted by id */
typedef struct {
	int64_t id, parent, module;
} cs_row;

static int cs_cmp(const void *a, const void *b)
{
	int64_t x = ((const cs_row *)a)->id, y = ((const cs_row *)b)->id;
	return x < y ? -1 : x > y;
}

static const cs_row *cs_find(const cs_row *t, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid].id < id)
			lo = mid + 1;
		else if (t[mid].id > id)
			hi = mid;
		else
			return &t[mid];
	}
	return NULL;
}

static int load_heap(snap *s, lib_report *r)
{
	int64_t ncs;
	if (snap_query_i64(s, "SELECT count(*) FROM callsite", 0, &ncs))
		return -1;
	cs_row *cs = calloc((size_t)(ncs ? ncs : 1), sizeof *cs);
	if (!cs)
		return -1;
	size_t n = 0;
	sqlite3_stmt *st;
	int rc = -1;
	if (snap_prepare(s, &st, "SELECT c.id, c.parent_id, f.module_id FROM callsite c"
			 " LEFT JOIN frame f ON f.id = c.frame_id"))
		goto out;
	while ((rc = snap_step(s, st)) == 1 && n < (size_t)ncs) {
		cs[n].id = snap_i64(st, 0, 0);
		cs[n].parent = snap_i64(st, 1, -1);
		cs[n].module = snap_i64(st, 2, -1);
		n++;
	}
	sqlite3_finalize(st);
	if (rc < 0)
		goto out;
	qsort(cs, n, sizeof *cs, cs_cmp);
	if (snap_prepare(s, &st, "SELECT a.callsite_id, count(*), sum(a.requested) FROM alloc a"
			 " JOIN chunk c ON c.addr = a.addr WHERE c.state = 0 GROUP BY a.callsite_id")) {
		rc = -1;
		goto out;
	}
	prog pg;
	prog_start(&pg, "charging heap to modules", 0);
	for (uint64_t step = 0; (rc = snap_step(s, st)) == 1; step++) {
		prog_step(&pg, step);
		int64_t count = snap_i64(st, 1, 0), bytes = snap_i64(st, 2, 0);
		r->tracked = 1;
		r->tracked_count += count;
		r->tracked_bytes += bytes;
		lib_module *owner = NULL;
		const cs_row *c = snap_isnull(st, 0) ? NULL : cs_find(cs, n, snap_i64(st, 0, 0));
		for (int depth = 0; c && depth < 256 && !owner; depth++) {
			lib_module *m = c->module >= 0 ? find_mod(r, c->module) : NULL;
			if (m && !m->is_allocator)
				owner = m;
			c = c->parent >= 0 ? cs_find(cs, n, c->parent) : NULL;
		}
		if (owner) {
			owner->heap_bytes += bytes;
			owner->heap_count += count;
		} else {
			r->alloc_only_bytes += bytes;
			r->alloc_only_count += count;
		}
	}
	prog_done(&pg);
	sqlite3_finalize(st);
out:
	free(cs);
	return rc < 0 ? -1 : 0;
}

int lib_load(snap *s, lib_report *r)
{
	memset(r, 0, sizeof *r);
	if (load_modules(s, r) || load_mappings(s, r) || load_process(s, r) || load_heap(s, r))
		return -1;
	return 0;
}

void lib_free(lib_report *r)
{
	for (int i = 0; i < r->nmods; i++) {
		free(r->mods[i].path);
		free(r->mods[i].build_id);
	}
	free(r->mods);
	r->mods = NULL;
	r->nmods = 0;
}

int lib_load_retained(snap *s, lib_report *r, char *err, size_t errlen)
{
	int64_t roots = 0, edges = 0;
	int hr = snap_has_table(s, "root"), he = snap_has_table(s, "chunk_edge");

	r->has_graph = 0;
	if (hr < 0 || he < 0 ||
	    (hr && he && (snap_query_i64(s, "SELECT count(*) FROM root", 0, &roots) ||
			  snap_query_i64(s, "SELECT count(*) FROM chunk_edge", 0, &edges)))) {
		snprintf(err, errlen, "%s", snap_error(s));
		return -1;
	}
	if (!hr || !he || (!roots && !edges))
		return 0;   /* captured with --no-graph, or no heap */
	hs_graph g;
	rg_set set;
	if (graph_load(s, &g, err, errlen) < 0)
		return -1;
	if (rg_compute(s, &g, RG_BY_MODULE, &set, err, errlen) < 0) {
		graph_free(&g);
		return -1;
	}
	r->has_graph = 1;
	r->globals_retained_bytes = 0;
	for (int i = 0; i < r->nmods; i++)
		r->mods[i].globals_retained_bytes = r->mods[i].globals_retained_count = 0;
	for (uint32_t k = 0; k < set.n; k++) {
		lib_module *m = find_mod(r, set.group[k].module_id);
		if (m) {
			m->globals_retained_bytes = (int64_t)set.group[k].retained_bytes;
			m->globals_retained_count = (int64_t)set.group[k].retained_count;
		}
		r->globals_retained_bytes += (int64_t)set.group[k].retained_bytes;
	}
	rg_free(&set);
	graph_free(&g);
	return 0;
}
