/* path_report.c -- `heapsnap path` output with pointer offsets (path_report.h): finds the
 * paths (paths.c), then decodes just the chunk_edge row of each hop's source for the
 * word index of its edge, and reads the first hop's root row for where the root is. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "graphwrite.h"
#include "output.h"
#include "path_report.h"
#include "paths.h"
#include "snapshot.h"

int pr_edge_offset(struct snap *s, uint64_t n_nodes, uint32_t src, uint32_t dst,
		   uint64_t *offset, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT dst FROM chunk_edge WHERE grp = ?") < 0) {
		snprintf(err, errlen, "%s", snap_error(s));
		return -1;
	}
	sqlite3_bind_int64(st, 1, src / GW_GROUP);
	int rc = snap_step(s, st), found = 0;
	if (rc < 0) {
		snprintf(err, errlen, "%s", snap_error(s));
		sqlite3_finalize(st);
		return -1;
	}
	const unsigned char *p = rc == 1 ? sqlite3_column_blob(st, 0) : NULL;
	const unsigned char *end = p ? p + sqlite3_column_bytes(st, 0) : NULL;
	for (uint32_t i = src - src % GW_GROUP; p && i <= src && !found; i++) {
		uint64_t k, prev = i;
		if (gw_varint(&p, end, &k))
			goto damaged;
		for (uint64_t e = 0; e < k; e++) {
			uint64_t node, word;
			int interior;
			if (gw_decode(&p, end, e == 0, prev, n_nodes, &node, &interior, &word))
				goto damaged;
			if (i == src && node == dst) {
				*offset = word * 8;
				found = 1;
				break;
			}
			prev = node;
		}
	}
	sqlite3_finalize(st);
	return found;
damaged:
	sqlite3_finalize(st);
	snprintf(err, errlen, "damaged snapshot: a malformed edge blob");
	return -1;
}

typedef struct {
	int have;          /* the root row was found */
	int has_slot;
	uint64_t slot;     /* address of the root word (not for a register) */
	int has_offset;
	int64_t offset;    /* root.offset: from the symbol, sp, fs_base or mapping start */
	char where[256];   /* short location for the table: "g_tree+0x0", "sp+0x18", "rax" */
} pr_root;

static int pr_root_row(struct snap *s, const hs_graph *g, uint32_t r, pr_root *out)
{
	sqlite3_stmt *st;
	memset(out, 0, sizeof *out);
	if (!g->root_id)
		return 0;
	if (snap_prepare(s, &st, "SELECT kind, slot, offset, symbol, register FROM root "
			 "WHERE id = ?") < 0)
		return -1;
	sqlite3_bind_int64(st, 1, g->root_id[r]);
	int rc = snap_step(s, st);
	if (rc == 1) {
		int64_t kind = snap_i64(st, 0, -1);
		const char *sym = snap_text(st, 3), *reg = snap_text(st, 4);
		out->have = 1;
		out->has_slot = !snap_isnull(st, 1);
		out->slot = (uint64_t)snap_i64(st, 1, 0);
		out->has_offset = !snap_isnull(st, 2);
		out->offset = snap_i64(st, 2, 0);
		const char *base = kind == GRAPH_ROOT_GLOBAL ? (sym ? sym : "module base") :
				   kind == GRAPH_ROOT_STACK ? "sp" :
				   kind == GRAPH_ROOT_TLS ? "fs_base" : "mapping";
		if (kind == GRAPH_ROOT_REGISTER)
			snprintf(out->where, sizeof out->where, "%s", reg ? reg : "register");
		else if (out->offset < 0)
			snprintf(out->where, sizeof out->where, "%s-0x%" PRIx64, base,
				 (uint64_t)-out->offset);
		else
			snprintf(out->where, sizeof out->where, "%s+0x%" PRIx64, base,
				 (uint64_t)out->offset);
	}
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

static const char *pr_site(const rr_labels *l, uint32_t i)
{
	return l && l->site ? l->site(l->ctx, i) : NULL;
}

static const char *pr_type(const rr_labels *l, uint32_t i)
{
	return l && l->type ? l->type(l->ctx, i) : NULL;
}

int pr_path(FILE *f, struct snap *s, const hs_graph *g, const rr_labels *l, uint32_t target,
	    uint32_t max_paths, int json, char *err, size_t errlen)
{
	path_set ps;
	char buf[64];
	out_json j;
	int rc = -1;

	if (path_find(g, target, max_paths, &ps) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (json) {
		out_json_init(&j, f);
		out_json_obj(&j, NULL);
		snprintf(buf, sizeof buf, "0x%" PRIx64, g->addr[target]);
		out_json_str(&j, "target", buf);
		out_json_u64(&j, "roots_reaching", ps.n_reaching);
		out_json_arr(&j, "paths");
	} else if (!ps.n_paths) {
		fprintf(f, "no root reaches chunk 0x%" PRIx64 ": it is unreachable (see leaks)\n",
			g->addr[target]);
	}
	for (uint32_t p = 0; p < ps.n_paths; p++) {
		const path_one *q = &ps.paths[p];
		const char *src = l && l->root_source ? l->root_source(l->ctx, q->root) : NULL;
		char *src_copy = src ? strdup(src) : NULL;   /* the callback reuses its buffer */
		int root_interior = !!(g->root_dst[q->root] & GRAPH_INTERIOR);
		out_table *t = NULL;
		pr_root rt;
		if (pr_root_row(s, g, q->root, &rt) < 0) {
			snprintf(err, errlen, "%s", snap_error(s));
			free(src_copy);
			goto out;
		}
		if (json) {
			out_json_obj(&j, NULL);
			out_json_str(&j, "root_kind", rr_root_kind_name(g->root_kind[q->root]));
			out_json_str(&j, "root_source", src_copy);
			snprintf(buf, sizeof buf, "0x%" PRIx64, rt.slot);
			out_json_str(&j, "root_slot", rt.has_slot ? buf : NULL);
			if (rt.has_offset)
				out_json_i64(&j, "root_offset", rt.offset);
			else
				out_json_null(&j, "root_offset");
			out_json_arr(&j, "hops");
		} else {
			static const out_col cols[] = {
				{ "hop", OUT_RIGHT }, { "address", OUT_LEFT }, { "via", OUT_LEFT },
				{ "at", OUT_LEFT }, { "size", OUT_RIGHT }, { "type", OUT_LEFT },
				{ "site", OUT_LEFT }
			};
			fprintf(f, "%spath %u of %u: %u hops from %s root%s%s", p ? "\n" : "",
				p + 1, ps.n_reaching, q->len - 1,
				rr_root_kind_name(g->root_kind[q->root]), src_copy ? " " : "",
				src_copy ? src_copy : "");
			if (rt.has_slot)
				fprintf(f, " (word at 0x%" PRIx64 ")", rt.slot);
			fputc('\n', f);
			t = out_table_new(cols, 7);
		}
		free(src_copy);
		for (uint32_t h = 0; h < q->len; h++) {
			uint32_t u = q->node[h];
			int interior = h ? !!(g->edge_dst[q->edge[h - 1]] & GRAPH_INTERIOR)
					 : root_interior;
			uint64_t off = 0;
			int have_off = 0;
			if (h) {
				have_off = pr_edge_offset(s, g->n, q->node[h - 1], u, &off, err,
							  errlen);
				if (have_off < 0) {
					out_table_free(t);
					goto out;
				}
			}
			const char *site = pr_site(l, u), *type = pr_type(l, u);
			if (json) {
				out_json_obj_line(&j, NULL);
				snprintf(buf, sizeof buf, "0x%" PRIx64, g->addr[u]);
				out_json_str(&j, "address", buf);
				out_json_str(&j, "pointer", interior ? "interior" : "start");
				if (have_off)
					out_json_u64(&j, "offset", off);
				else
					out_json_null(&j, "offset");
				out_json_u64(&j, "size", g->size[u]);
				out_json_str(&j, "type", type);
				out_json_str(&j, "site", site);
				out_json_end(&j);
			} else if (t) {
				out_cell_u64(t, h);
				out_cellf(t, "0x%" PRIx64, g->addr[u]);
				out_cell(t, interior ? "interior pointer" : "pointer");
				if (have_off)
					out_cellf(t, "+0x%" PRIx64, off);
				else
					out_cell(t, h ? "?" : rt.have ? rt.where : "root");
				out_cell_size(t, g->size[u]);
				if (type)
					out_cell(t, type);
				else
					out_cellf(t, "size %" PRIu64, g->size[u]);
				out_cell(t, site ? site : "-");
			}
		}
		if (json) {
			out_json_end(&j);
			out_json_end(&j);
		} else {
			int bad = !t || out_table_print(t, f) < 0;
			out_table_free(t);
			if (bad) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
		}
	}
	if (json) {
		out_json_end(&j);
		out_json_end(&j);
		out_json_finish(&j);
	} else if (ps.n_paths) {
		fprintf(f, "at: where the pointer to the hop's chunk sits, as an offset from the "
			"user pointer of the chunk before it (hop 0: the root word)\n");
	}
	rc = 0;
out:
	path_free(&ps);
	return rc;
}
