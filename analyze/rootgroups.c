/* rootgroups.c -- root edges grouped by module or by where they are, with each group's
 * precise retained size (rootgroups.h). Reads the root rows (kind, thread, module,
 * mapping) in root.id order next to g->root_id, sorts the graph's root edges by group,
 * and hands the grouping to ret_root_groups (retained.c) for the one dominator pass. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "retained.h"
#include "retention_report.h"
#include "rootgroups.h"
#include "snapshot.h"
#include "stackfmt.h"

typedef struct {
	uint8_t kind;
	int64_t sub;     /* tid (registers, stack, tls), module_id (global), mapping_id (other) */
	uint32_t node;   /* the chunk pointed into */
	uint32_t r;      /* index of the root edge in g */
} rg_item;

static int cmp_item(const void *a, const void *b)
{
	const rg_item *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return x->r < y->r ? -1 : x->r > y->r;
}

static int cmp_group(const void *a, const void *b)
{
	const rg_group *x = a, *y = b;
	if (x->retained_bytes != y->retained_bytes)
		return x->retained_bytes > y->retained_bytes ? -1 : 1;
	return strcmp(x->key, y->key);
}

void rg_free(rg_set *set)
{
	for (uint32_t i = 0; i < set->n; i++) {
		free(set->group[i].key);
		free(set->group[i].module);
	}
	free(set->group);
	set->group = NULL;
	set->n = 0;
}

/* a text column of one row by id ("SELECT x FROM t WHERE id = ?"), malloc'ed, or NULL */
static char *rg_text(snap *s, const char *sql, int64_t id, int64_t *num)
{
	sqlite3_stmt *st;
	char *out = NULL;
	if (snap_prepare(s, &st, sql) < 0)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (snap_step(s, st) == 1) {
		const char *t = snap_text(st, 0);
		out = t ? strdup(t) : NULL;
		if (num)
			*num = snap_i64(st, 1, 0);
	}
	sqlite3_finalize(st);
	return out;
}

/* names group gr (kind, sub set): key, module */
static int rg_name(snap *s, rg_group *gr, int64_t sub, rg_by by)
{
	char buf[600];
	if (gr->kind == GRAPH_ROOT_GLOBAL) {
		gr->module_id = sub;
		gr->module = rg_text(s, "SELECT path FROM module WHERE id = ?", sub, NULL);
		const char *base = gr->module ? stk_base(gr->module) : "?";
		if (by == RG_BY_MODULE)
			snprintf(buf, sizeof buf, "%s", base);
		else
			snprintf(buf, sizeof buf, "globals %s", base);
	} else if (gr->kind == GRAPH_ROOT_OTHER) {
		int64_t start = 0;
		char *path = rg_text(s, "SELECT coalesce(path, ''), start FROM mapping "
				     "WHERE id = ?", sub, &start);
		if (path && *path)
			snprintf(buf, sizeof buf, "other %s", path);
		else
			snprintf(buf, sizeof buf, "other anon 0x%" PRIx64, (uint64_t)start);
		free(path);
	} else {
		gr->tid = sub;
		const char *what = gr->kind == GRAPH_ROOT_REGISTER ? "registers" :
				   rr_root_kind_name(gr->kind);
		snprintf(buf, sizeof buf, "%s thread %" PRId64, what, sub);
	}
	gr->key = strdup(buf);
	return gr->key ? 0 : -1;
}

/* items[k] for every root edge of g, from the root rows; -1 on a snapshot error */
static int rg_items(snap *s, const hs_graph *g, rg_item *items, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT id, kind, tid, module_id, mapping_id FROM root "
			 "ORDER BY id") < 0) {
		snprintf(err, errlen, "%s", snap_error(s));
		return -1;
	}
	uint32_t r = 0;
	int rc = 1;
	while (r < g->n_roots && (rc = snap_step(s, st)) == 1) {
		int64_t id = snap_i64(st, 0, 0);
		if (id != (int64_t)g->root_id[r])
			continue;   /* a root into a chunk not in use: not in the graph */
		int64_t kind = snap_i64(st, 1, -1);
		int64_t sub = kind == GRAPH_ROOT_GLOBAL ? snap_i64(st, 3, 0) :
			      kind == GRAPH_ROOT_OTHER ? snap_i64(st, 4, 0) : snap_i64(st, 2, 0);
		items[r] = (rg_item){ (uint8_t)g->root_kind[r], sub, GRAPH_NODE(g->root_dst[r]),
				      r };
		r++;
	}
	sqlite3_finalize(st);
	if (r < g->n_roots) {
		snprintf(err, errlen, "%s", rc < 0 ? snap_error(s) :
			 "damaged snapshot: the root table changed under the graph");
		return -1;
	}
	return 0;
}

int rg_compute(struct snap *s, hs_graph *g, rg_by by, rg_set *out, char *err, size_t errlen)
{
	uint32_t nr = g->n_roots, n_items = 0, ng = 0;
	rg_item *items = malloc((nr ? nr : 1) * sizeof *items);
	uint32_t *group_of = malloc((nr ? nr : 1) * sizeof *group_of);
	uint64_t *bytes = NULL, *count = NULL;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (!items || !group_of)
		goto oom;
	if (nr && !g->root_id) {
		snprintf(err, errlen, "the graph has no root rows");
		goto fail;
	}
	if (rg_items(s, g, items, err, errlen) < 0)
		goto fail;
	for (uint32_t r = 0; r < nr; r++) {
		group_of[r] = RET_NO_GROUP;
		if (by == RG_BY_ROOT || (items[r].kind == GRAPH_ROOT_GLOBAL && items[r].sub > 0))
			items[n_items++] = items[r];
	}
	qsort(items, n_items, sizeof *items, cmp_item);
	for (uint32_t k = 0; k < n_items; k++)
		ng += !k || items[k].kind != items[k - 1].kind || items[k].sub != items[k - 1].sub;
	out->group = calloc(ng ? ng : 1, sizeof *out->group);
	bytes = calloc(ng ? ng : 1, sizeof *bytes);
	count = calloc(ng ? ng : 1, sizeof *count);
	if (!out->group || !bytes || !count)
		goto oom;
	for (uint32_t k = 0, gi = 0; k < n_items; k++) {
		const rg_item *it = &items[k];
		int new_group = !k || it->kind != items[k - 1].kind || it->sub != items[k - 1].sub;
		if (k && new_group)
			gi++;
		rg_group *gr = &out->group[gi];
		if (new_group) {
			out->n = gi + 1;
			gr->kind = it->kind;
			if (rg_name(s, gr, it->sub, by) < 0)
				goto oom;
		}
		group_of[it->r] = gi;
		gr->roots++;
		if (new_group || it->node != items[k - 1].node) {
			gr->count++;
			gr->bytes += it->node < g->n ? g->size[it->node] : 0;
		}
	}
	if (ret_root_groups(g, group_of, ng, bytes, count) < 0)
		goto oom;
	for (uint32_t gi = 0; gi < ng; gi++) {
		out->group[gi].retained_bytes = bytes[gi];
		out->group[gi].retained_count = count[gi];
	}
	qsort(out->group, out->n, sizeof *out->group, cmp_group);
	rc = 0;
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	rg_free(out);
done:
	free(items);
	free(group_of);
	free(bytes);
	free(count);
	return rc;
}

int rg_print(FILE *f, const rg_set *set, rg_by by, uint32_t limit, int json)
{
	uint32_t shown = set->n < limit ? set->n : limit;
	if (json) {
		out_json j;
		out_json_init(&j, f);
		out_json_obj(&j, NULL);
		out_json_str(&j, "by", by == RG_BY_MODULE ? "module" : "root");
		out_json_u64(&j, "groups_total", set->n);
		out_json_arr(&j, "groups");
		for (uint32_t i = 0; i < shown; i++) {
			const rg_group *gr = &set->group[i];
			out_json_obj_line(&j, NULL);
			out_json_str(&j, "key", gr->key);
			out_json_str(&j, "kind", rr_root_kind_name(gr->kind));
			out_json_str(&j, "module", gr->module);
			if (gr->tid)
				out_json_i64(&j, "tid", gr->tid);
			else
				out_json_null(&j, "tid");
			out_json_u64(&j, "roots", gr->roots);
			out_json_u64(&j, "count", gr->count);
			out_json_u64(&j, "shallow_bytes", gr->bytes);
			out_json_u64(&j, "retained_count", gr->retained_count);
			out_json_u64(&j, "retained_bytes", gr->retained_bytes);
			out_json_end(&j);
		}
		out_json_end(&j);
		out_json_end(&j);
		out_json_finish(&j);
		return ferror(f) ? -1 : 0;
	}
	static const out_col cols[] = {
		{ "group", OUT_LEFT }, { "roots", OUT_RIGHT }, { "chunks", OUT_RIGHT },
		{ "shallow", OUT_RIGHT }, { "retained chunks", OUT_RIGHT },
		{ "retained", OUT_RIGHT }
	};
	out_table *t = out_table_new(cols, 6);
	for (uint32_t i = 0; t && i < shown; i++) {
		const rg_group *gr = &set->group[i];
		out_cell(t, gr->key);
		out_cell_u64(t, gr->roots);
		out_cell_u64(t, gr->count);
		out_cell_size(t, gr->bytes);
		out_cell_u64(t, gr->retained_count);
		out_cell_size(t, gr->retained_bytes);
	}
	int rc = !t || out_table_print(t, f) < 0 ? -1 : 0;
	out_table_free(t);
	if (shown < set->n)
		fprintf(f, "(%u of %u groups: the most retained first)\n", shown, set->n);
	fprintf(f, "chunks, shallow: the chunks the group's roots point into; retained: what "
		"would be unreachable without the group's roots\n");
	return rc;
}
