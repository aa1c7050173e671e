/* graphwrite.c -- the pointer graph's tables in a snapshot (see graphwrite.h and the
 * "pointer graph" section of schema/schema.sql): one prepared statement per table, rows
 * in address order so every b-tree is built by appending.
 */
#include "graphwrite.h"

#include <stdio.h>
#include <stdlib.h>

#include "ptrscan.h"

static size_t put_varint(unsigned char *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (unsigned char)v;
	return n;
}

int gw_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		unsigned char b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

size_t gw_encode(uint32_t src, const uint32_t *dst, const uint32_t *word, size_t n, unsigned char *out)
{
	size_t len = 0;
	uint64_t prev = src;
	for (size_t i = 0; i < n; i++) {
		uint64_t node = PS_NODE(dst[i]);
		uint64_t delta;
		if (i == 0) {
			int64_t d = (int64_t)node - (int64_t)src;
			delta = d >= 0 ? (uint64_t)d * 2 : (uint64_t)(-d) * 2 - 1;
		} else {
			delta = node - prev;
		}
		prev = node;
		len += put_varint(out + len, delta << 1 | (dst[i] & PS_INTERIOR ? 1 : 0));
		len += put_varint(out + len, word[i]);
	}
	return len;
}

size_t gw_encode_group(const uint32_t *edge_start, const uint32_t *dst, const uint32_t *word,
		       uint32_t first, uint32_t end, unsigned char *out)
{
	size_t len = 0;
	for (uint32_t i = first; i < end; i++) {
		uint32_t a = edge_start[i], b = edge_start[i + 1];
		len += put_varint(out + len, b - a);
		len += gw_encode(i, dst + a, word + a, b - a, out + len);
	}
	return len;
}

int gw_decode(const unsigned char **p, const unsigned char *end, int first, uint64_t prev,
	      uint64_t n_nodes, uint64_t *node, int *interior, uint64_t *word)
{
	uint64_t v, w;
	if (gw_varint(p, end, &v) || gw_varint(p, end, &w))
		return -1;
	uint64_t delta = v >> 1;
	uint64_t x;
	if (first) {
		int64_t d = delta & 1 ? -(int64_t)((delta + 1) / 2) : (int64_t)(delta / 2);
		if ((d < 0 && (uint64_t)-d > prev) || (d > 0 && (uint64_t)d >= n_nodes))
			return -1;
		x = prev + (uint64_t)d;
	} else {
		if (!delta || delta >= n_nodes)
			return -1;
		x = prev + delta;
	}
	if (x >= n_nodes)
		return -1;
	*node = x;
	*interior = (int)(v & 1);
	*word = w;
	return 0;
}

typedef struct {
	sqlite3 *db;
	char *err;
	size_t errlen;
	const char *dest;
} gw_ctx;

static int db_fail(gw_ctx *x, const char *what)
{
	snprintf(x->err, x->errlen, "cannot write '%s': table %s: %s", x->dest, what,
		 sqlite3_errmsg(x->db));
	return -1;
}

static int step(gw_ctx *x, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		db_fail(x, what);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return 0;
}

static int w_edges(gw_ctx *x, const ps_graph *g)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(x->db, "INSERT INTO chunk_edge VALUES (?,?,?)", -1, &st, NULL))
		return db_fail(x, "chunk_edge");
	size_t cap = 0;
	unsigned char *buf = NULL;
	int rc = 0;
	for (uint32_t first = 0; first < g->n && !rc; first += GW_GROUP) {
		uint32_t end = g->n - first < GW_GROUP ? g->n : first + GW_GROUP;
		uint32_t a = g->edge_start[first], b = g->edge_start[end];
		if (a == b)
			continue;
		size_t need = 10 * (size_t)(end - first) + 20 * (size_t)(b - a);
		if (need > cap) {
			free(buf);
			cap = need * 2;
			buf = malloc(cap);
			if (!buf) {
				snprintf(x->err, x->errlen, "cannot write '%s': out of memory", x->dest);
				rc = -1;
				break;
			}
		}
		size_t len = gw_encode_group(g->edge_start, g->edge_dst, g->edge_word, first, end, buf);
		sqlite3_bind_int64(st, 1, first / GW_GROUP);
		sqlite3_bind_int64(st, 2, b - a);
		sqlite3_bind_blob64(st, 3, buf, len, SQLITE_STATIC);
		rc = step(x, st, "chunk_edge");
	}
	free(buf);
	sqlite3_finalize(st);
	return rc;
}

static void bind_opt(sqlite3_stmt *st, int i, int64_t v, int none)
{
	if (none)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

static int w_roots(gw_ctx *x, const hs_capture *c, const ps_graph *g)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(x->db, "INSERT INTO root (kind, dst, interior, slot, tid, register, "
			       "module_id, symbol, offset, mapping_id, frame_no, frame_id) "
			       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL))
		return db_fail(x, "root");
	int rc = 0;
	for (size_t i = 0; i < g->n_roots && !rc; i++) {
		const ps_root *r = &g->roots[i];
		sqlite3_bind_int64(st, 1, r->kind);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)g->addr[PS_NODE(r->dst)]);
		sqlite3_bind_int64(st, 3, r->dst & PS_INTERIOR ? 1 : 0);
		bind_opt(st, 4, (int64_t)r->slot, r->kind == PS_ROOT_REGISTER);
		bind_opt(st, 5, r->tid, r->tid == 0);
		if (r->reg >= 0 && r->reg < HS_NREGS)
			sqlite3_bind_text(st, 6, hs_reg_names[r->reg], -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 6);
		bind_opt(st, 7, r->module + 1, r->module < 0 || (size_t)r->module >= c->n_modules);
		if (r->symbol >= 0 && (size_t)r->symbol < g->n_syms)
			sqlite3_bind_text(st, 8, g->syms[r->symbol], -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 8);
		bind_opt(st, 9, r->offset, r->kind == PS_ROOT_REGISTER);
		bind_opt(st, 10, r->mapping + 1, r->mapping < 0 || (size_t)r->mapping >= c->n_maps);
		bind_opt(st, 11, r->frame_no, r->frame_no < 0);
		bind_opt(st, 12, r->frame + 1, r->frame < 0 || (size_t)r->frame >= c->n_frames);
		rc = step(x, st, "root");
	}
	sqlite3_finalize(st);
	return rc;
}

static int w_types(gw_ctx *x, const hs_capture *c, const ps_graph *g)
{
	sqlite3_stmt *st, *ct;
	if (sqlite3_prepare_v2(x->db, "INSERT INTO type VALUES (?,?,?,?,?,?)", -1, &st, NULL))
		return db_fail(x, "type");
	if (sqlite3_prepare_v2(x->db, "INSERT INTO chunk_type VALUES (?,?)", -1, &ct, NULL)) {
		sqlite3_finalize(st);
		return db_fail(x, "chunk_type");
	}
	int rc = 0;
	for (size_t i = 0; i < g->n_types && !rc; i++) {
		const ps_type *t = &g->types[i];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)i + 1);
		sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, t->symbol, -1, SQLITE_STATIC);
		bind_opt(st, 4, t->module + 1, t->module < 0 || (size_t)t->module >= c->n_modules);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)t->vtable);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)t->chunks);
		rc = step(x, st, "type");
	}
	for (uint32_t i = 0; g->node_type && i < g->n && !rc; i++) {
		if (!g->node_type[i])
			continue;
		sqlite3_bind_int64(ct, 1, (sqlite3_int64)g->addr[i]);
		sqlite3_bind_int64(ct, 2, g->node_type[i]);
		rc = step(x, ct, "chunk_type");
	}
	sqlite3_finalize(st);
	sqlite3_finalize(ct);
	return rc;
}

static int w_contents(gw_ctx *x, const ps_graph *g)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(x->db, "INSERT INTO chunk_content VALUES (?,?)", -1, &st, NULL))
		return db_fail(x, "chunk_content");
	int rc = 0;
	for (uint32_t i = 0; i < g->n && !rc; i++) {
		uint64_t len = g->content_off[i + 1] - g->content_off[i];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)g->addr[i]);
		sqlite3_bind_blob64(st, 2, g->content + g->content_off[i], len, SQLITE_STATIC);
		rc = step(x, st, "chunk_content");
	}
	sqlite3_finalize(st);
	return rc;
}

int gw_write(sqlite3 *db, const hs_capture *c, char *err, size_t errlen, const char *dest)
{
	const ps_graph *g = c->graph;
	if (!g)
		return 0;
	gw_ctx x = { db, err, errlen, dest };
	if (w_edges(&x, g) || w_roots(&x, c, g) || w_types(&x, c, g))
		return -1;
	if (g->contents && w_contents(&x, g))
		return -1;
	return 0;
}
