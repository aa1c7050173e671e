/* snapwrite.c -- writes an hs_capture as one SQLite snapshot file (schema/schema.sql).
 *
 * The sequence, and why:
 *   1. mkostemp("<dest>.tmp-XXXXXX") beside the destination: O_CREAT|O_EXCL, mode 0600
 *      (fchmod as well, so no umask or ACL default can widen it) before SQLite opens
 *      the path. Same directory, so the final rename is atomic.
 *   2. A bulk-load configuration: journal_mode=OFF, synchronous=OFF, exclusive locking.
 *      Nobody else sees the file before the rename and a failed write is thrown away
 *      whole, so neither a journal nor intermediate syncs buy anything.
 *   3. hs_schema_sql (which sets application_id and user_version), then every row in
 *      one transaction through one prepared statement per table. Chunks go in address
 *      order: addr is the rowid, so the b-tree is built by appending.
 *   4. COMMIT, sqlite3_close, fsync the file, rename over the destination, fsync the
 *      directory. A failure anywhere before the rename removes the temp file, so an
 *      existing destination is left untouched and a new one never appears.
 *
 * Ids: module, mapping, frame, callsite and arena rows get id = model index + 1.
 * Model values that mean "unknown" (-1 smaps fields, 0 addresses, ...) become NULL.
 *
 * sw_temp_path() may be called from a signal handler: the path lives in a static
 * buffer that is complete before the flag that publishes it is set.
 */
#define _GNU_SOURCE
#include "snapwrite.h"
#include "graphwrite.h"
#include "ptrscan.h"
#include "unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "schema_sql.h"

#ifndef HEAPSNAP_VERSION
#define HEAPSNAP_VERSION "unknown"
#endif

/* Page size, measured on 1M synthetic chunks (tests/unit/test_snapwrite.c prints it):
 * 4096, 8192, 16384 and 65536 all cost 18.1-18.2 bytes per chunk, but the larger pages
 * add fixed cost to every small table (102 KB, 188 KB, 344 KB, 1.4 MB without chunks). */
#ifndef SW_PAGE_SIZE
#define SW_PAGE_SIZE 4096
#endif

static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_live;

const char *sw_temp_path(void)
{
	return tmp_live ? tmp_path : NULL;
}

typedef struct {
	sqlite3 *db;
	const char *dest;
	char *err;
	size_t errlen;
	int failed;
} sw_ctx;

static int fail(sw_ctx *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(sw_ctx *w, const char *fmt, ...)
{
	if (!w->failed && w->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->err, w->errlen, fmt, ap);
		va_end(ap);
	}
	w->failed = 1;
	return -1;
}

/* "cannot write 'dest': [what: ]sqlite's message[ (the OS error behind it)]" */
static int db_fail(sw_ctx *w, const char *what)
{
	char pre[80] = "";
	if (what)
		snprintf(pre, sizeof pre, "%s: ", what);
	if (!w->db)
		return fail(w, "cannot write '%s': %sout of memory", w->dest, pre);
	int e = sqlite3_system_errno(w->db);
	if (e && (sqlite3_extended_errcode(w->db) & 0xff) == SQLITE_IOERR)
		return fail(w, "cannot write '%s': %s%s (%s)", w->dest, pre, sqlite3_errmsg(w->db),
			    strerror(e));
	return fail(w, "cannot write '%s': %s%s", w->dest, pre, sqlite3_errmsg(w->db));
}

static int exec(sw_ctx *w, const char *sql)
{
	if (sqlite3_exec(w->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(w, NULL);
	return 0;
}

static int prep(sw_ctx *w, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v2(w->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(w, "prepare");
	return 0;
}

/* ---- binding: every bind result is checked once, at step time, through bind_rc ---- */
typedef struct {
	sqlite3_stmt *st;
	int rc;               /* first failing bind's code, SQLITE_OK otherwise */
} row;

static void b_i64(row *r, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(r->st, i, (sqlite3_int64)v);
	if (rc != SQLITE_OK && r->rc == SQLITE_OK)
		r->rc = rc;
}

static void b_u64(row *r, int i, uint64_t v)
{
	b_i64(r, i, (int64_t)v);
}

static void b_null(row *r, int i)
{
	int rc = sqlite3_bind_null(r->st, i);
	if (rc != SQLITE_OK && r->rc == SQLITE_OK)
		r->rc = rc;
}

/* NULL when v == none */
static void b_opt(row *r, int i, int64_t v, int64_t none)
{
	if (v == none)
		b_null(r, i);
	else
		b_i64(r, i, v);
}

static void b_text(row *r, int i, const char *s)
{
	int rc = s ? sqlite3_bind_text(r->st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(r->st, i);
	if (rc != SQLITE_OK && r->rc == SQLITE_OK)
		r->rc = rc;
}

/* a fixed char array that may be empty (NULL) or unterminated (cut at its size) */
static void b_chars(row *r, int i, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	int rc = n ? sqlite3_bind_text(r->st, i, s, (int)n, SQLITE_STATIC) : sqlite3_bind_null(r->st, i);
	if (rc != SQLITE_OK && r->rc == SQLITE_OK)
		r->rc = rc;
}

static int step(sw_ctx *w, row *r, const char *table)
{
	int rc = r->rc;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(r->st);
	if (rc != SQLITE_DONE) {
		/* report before the reset, which would clear the OS error behind it */
		char what[64];
		snprintf(what, sizeof what, "table %s", table);
		if (r->rc != SQLITE_OK)
			fail(w, "cannot write '%s': %s: %s", w->dest, what, sqlite3_errstr(r->rc));
		else
			db_fail(w, what);
	}
	sqlite3_reset(r->st);
	sqlite3_clear_bindings(r->st);
	r->rc = SQLITE_OK;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- the cmdline as a JSON array: quotes, backslashes and control characters escaped;
 * bytes that are not valid UTF-8 become U+FFFD so the text is valid JSON ---- */
typedef struct {
	char *p;
	size_t n, cap;
	int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		while (b->n + n + 1 > nc)
			nc *= 2;
		char *q = realloc(b->p, nc);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

/* length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
	else
		return 0;
	if (n < len)
		return 0;
	unsigned cp = c & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void json_str(sbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	sb_put(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			sb_put(b, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			sb_put(b, esc, 6);
			i++;
		} else {
			size_t l = utf8_len(p + i, n - i);
			if (l) {
				sb_put(b, (const char *)p + i, l);
				i += l;
			} else {
				sb_put(b, "\\ufffd", 6);
				i++;
			}
		}
	}
	sb_put(b, "\"", 1);
}

static char *cmdline_json(const hs_process *p)
{
	sbuf b = { 0 };
	sb_put(&b, "[", 1);
	for (size_t i = 0; i < p->argc; i++) {
		if (i)
			sb_put(&b, ",", 1);
		json_str(&b, p->argv[i] ? p->argv[i] : "");
	}
	sb_put(&b, "]", 1);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- one function per table ---- */
static int w_process(sw_ctx *w, const hs_capture *c)
{
	const hs_process *p = &c->proc;
	sqlite3_stmt *st;
	if (prep(w, &st, "INSERT INTO process VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"))
		return -1;
	char *cmd = NULL;
	if (p->argc && !(cmd = cmdline_json(p))) {
		sqlite3_finalize(st);
		return fail(w, "cannot write '%s': out of memory", w->dest);
	}
	row r = { st, SQLITE_OK };
	b_i64(&r, 1, p->pid);
	b_i64(&r, 2, p->ppid);
	b_i64(&r, 3, p->uid);
	b_i64(&r, 4, p->gid);
	b_text(&r, 5, p->exe);
	b_text(&r, 6, cmd);
	b_chars(&r, 7, p->comm, sizeof p->comm);
	b_opt(&r, 8, (int64_t)p->start_ticks, 0);
	b_text(&r, 9, p->kernel);
	b_text(&r, 10, c->heap.glibc_version);
	b_opt(&r, 11, (int64_t)p->page_size, 0);
	b_u64(&r, 12, p->capture_time_us);
	const int64_t kb[] = { p->vm_size_kb, p->vm_rss_kb, p->rss_anon_kb, p->rss_file_kb,
			       p->rss_shmem_kb, p->vm_swap_kb, p->vm_peak_kb, p->vm_hwm_kb,
			       p->vm_data_kb, p->vm_stk_kb };
	for (int i = 0; i < 10; i++)
		if (kb[i] < 0)
			b_null(&r, 13 + i);
		else
			b_i64(&r, 13 + i, kb[i]);
	int rc = step(w, &r, "process");
	free(cmd);
	sqlite3_finalize(st);
	return rc;
}

static int w_capture(sw_ctx *w, const hs_capture *c)
{
	const hs_freezeinfo *f = &c->freeze;
	sqlite3_stmt *st;
	if (prep(w, &st, "INSERT INTO capture VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"))
		return -1;
	row r = { st, SQLITE_OK };
	b_text(&r, 1, c->tool_version ? c->tool_version : HEAPSNAP_VERSION);
	b_u64(&r, 2, f->pause_us);
	b_u64(&r, 3, f->freeze_us);
	b_u64(&r, 4, f->safepoint_us);
	b_u64(&r, 5, f->copy_us);
	b_u64(&r, 6, f->copy_bytes);
	b_i64(&r, 7, f->attempts);
	b_i64(&r, 8, f->threads_ran_out);
	b_i64(&r, 9, f->threads_in_flux);
	b_i64(&r, 10, c->heap.found ? 1 : 0);
	b_text(&r, 11, c->heap.note);
	b_i64(&r, 12, c->heap.used_debug_symbols ? 1 : 0);
	b_i64(&r, 13, c->graph && c->graph->contents ? 1 : 0);
	int rc = step(w, &r, "capture");
	sqlite3_finalize(st);
	return rc;
}

static int w_modules(sw_ctx *w, const hs_capture *c)
{
	sqlite3_stmt *st;
	if (prep(w, &st, "INSERT INTO module VALUES (?,?,?,?,?,?,?,?)"))
		return -1;
	int rc = 0;
	for (size_t i = 0; i < c->n_modules && !rc; i++) {
		const hs_module *m = &c->modules[i];
		row r = { st, SQLITE_OK };
		b_i64(&r, 1, (int64_t)i + 1);
		b_text(&r, 2, m->path ? m->path : "");
		b_text(&r, 3, m->build_id);
		b_u64(&r, 4, m->load_base);
		b_u64(&r, 5, m->start);
		b_u64(&r, 6, m->end);
		b_i64(&r, 7, m->is_main ? 1 : 0);
		b_i64(&r, 8, m->has_debuginfo ? 1 : 0);
		rc = step(w, &r, "module");
	}
	sqlite3_finalize(st);
	return rc;
}

static int w_mappings(sw_ctx *w, const hs_capture *c)
{
	sqlite3_stmt *st, *sx;
	if (prep(w, &st, "INSERT INTO mapping VALUES (?,?,?,?,?,?,?,?,?,?,?,"
			 "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"))
		return -1;
	if (prep(w, &sx, "INSERT INTO mapping_extra VALUES (?,?,?)")) {
		sqlite3_finalize(st);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < c->n_maps && !rc; i++) {
		const hs_mapping *m = &c->maps[i];
		if (m->module_idx >= 0 && (size_t)m->module_idx >= c->n_modules) {
			rc = fail(w, "cannot write '%s': mapping %#llx has module index %d of %zu",
				  w->dest, (unsigned long long)m->start, m->module_idx, c->n_modules);
			break;
		}
		row r = { st, SQLITE_OK };
		b_i64(&r, 1, (int64_t)i + 1);
		b_u64(&r, 2, m->start);
		b_u64(&r, 3, m->end);
		b_chars(&r, 4, m->perms, sizeof m->perms);
		if (r.rc == SQLITE_OK && !m->perms[0])
			b_text(&r, 4, "----");
		b_u64(&r, 5, m->offset);
		b_chars(&r, 6, m->dev, sizeof m->dev);
		b_opt(&r, 7, (int64_t)m->inode, 0);
		b_text(&r, 8, m->path);
		b_i64(&r, 9, m->kind);
		b_opt(&r, 10, m->module_idx < 0 ? -1 : m->module_idx + 1, -1);
		b_opt(&r, 11, m->tid, 0);
		/* columns 12.. follow enum hs_smaps_field order exactly */
		for (int f = 0; f < HS_SM_COUNT; f++)
			b_opt(&r, 12 + f, m->sm[f] < 0 ? -1 : m->sm[f], -1);
		b_text(&r, 12 + HS_SM_COUNT, m->vmflags);
		rc = step(w, &r, "mapping");
		for (size_t k = 0; k < m->n_extra && !rc; k++) {
			row x = { sx, SQLITE_OK };
			b_i64(&x, 1, (int64_t)i + 1);
			b_chars(&x, 2, m->extra[k].key, sizeof m->extra[k].key);
			if (x.rc == SQLITE_OK && !m->extra[k].key[0])
				b_text(&x, 2, "");
			b_i64(&x, 3, m->extra[k].value);
			rc = step(w, &x, "mapping_extra");
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(sx);
	return rc;
}

static int w_frames(sw_ctx *w, const hs_capture *c)
{
	sqlite3_stmt *st;
	if (prep(w, &st, "INSERT INTO frame VALUES (?,?,?,?,?,?,?,?)"))
		return -1;
	int rc = 0;
	for (size_t i = 0; i < c->n_frames && !rc; i++) {
		const hs_frame *f = &c->frames[i];
		if (f->module_idx >= 0 && (size_t)f->module_idx >= c->n_modules) {
			rc = fail(w, "cannot write '%s': frame %zu has module index %d of %zu",
				  w->dest, i, f->module_idx, c->n_modules);
			break;
		}
		row r = { st, SQLITE_OK };
		b_i64(&r, 1, (int64_t)i + 1);
		b_opt(&r, 2, f->module_idx < 0 ? -1 : f->module_idx + 1, -1);
		b_u64(&r, 3, f->rel_pc);
		b_text(&r, 4, f->function);
		if (f->function)
			b_u64(&r, 5, f->func_offset);
		else
			b_null(&r, 5);
		b_text(&r, 6, f->file);
		b_opt(&r, 7, f->line, 0);
		b_i64(&r, 8, f->inline_depth);
		rc = step(w, &r, "frame");
	}
	sqlite3_finalize(st);
	return rc;
}

static int w_callsites(sw_ctx *w, const hs_capture *c)
{
	sqlite3_stmt *st;
	if (prep(w, &st, "INSERT INTO callsite VALUES (?,?,?,?)"))
		return -1;
	int rc = 0;
	for (size_t i = 0; i < c->n_callsites && !rc; i++) {
		const hs_callsite *cs = &c->callsites[i];
		if (cs->frame < 0 || (size_t)cs->frame >= c->n_frames ||
		    (cs->parent >= 0 && (size_t)cs->parent >= c->n_callsites)) {
			rc = fail(w, "cannot write '%s': callsite %zu refers to a missing frame or parent",
				  w->dest, i);
			break;
		}
		row r = { st, SQLITE_OK };
		b_i64(&r, 1, (int64_t)i + 1);
		b_opt(&r, 2, cs->parent < 0 ? -1 : cs->parent + 1, -1);
		b_i64(&r, 3, cs->frame + 1);
		b_i64(&r, 4, cs->depth);
		rc = step(w, &r, "callsite");
	}
	sqlite3_finalize(st);
	return rc;
}

/* arena id (index + 1) of the arena at addr, or -1 */
static int64_t arena_id_of(const hs_capture *c, uint64_t addr)
{
	if (!addr)
		return -1;
	for (size_t i = 0; i < c->n_arenas; i++)
		if (c->arenas[i].addr == addr)
			return (int64_t)i + 1;
	return -1;
}

static int w_threads(sw_ctx *w, const hs_capture *c)
{
	sqlite3_stmt *st, *sr, *sc;
	if (prep(w, &st, "INSERT INTO thread VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"))
		return -1;
	if (prep(w, &sr, "INSERT INTO thread_register VALUES (?,?,?)")) {
		sqlite3_finalize(st);
		return -1;
	}
	if (prep(w, &sc, "INSERT INTO thread_tcache VALUES (?,?,?,?)")) {
		sqlite3_finalize(st);
		sqlite3_finalize(sr);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < c->n_threads && !rc; i++) {
		const hs_thread *t = &c->threads[i];
		if (t->callsite >= 0 && (size_t)t->callsite >= c->n_callsites) {
			rc = fail(w, "cannot write '%s': thread %d has callsite index %d of %zu",
				  w->dest, t->tid, t->callsite, c->n_callsites);
			break;
		}
		row r = { st, SQLITE_OK };
		char state[2] = { t->state, 0 };
		char uerr[48];
		b_i64(&r, 1, t->tid);
		b_chars(&r, 2, t->name, sizeof t->name);
		b_text(&r, 3, t->state ? state : NULL);
		b_i64(&r, 4, t->was_stopped ? 1 : 0);
		if (t->regs_valid) {
			b_u64(&r, 5, t->pc);
			b_u64(&r, 6, t->sp);
		} else {
			b_null(&r, 5);
			b_null(&r, 6);
		}
		b_opt(&r, 7, (int64_t)t->fs_base, 0);
		b_opt(&r, 8, (int64_t)t->stack_lo, 0);
		b_opt(&r, 9, (int64_t)t->stack_hi, 0);
		b_i64(&r, 10, t->safepoint);
		b_opt(&r, 11, t->syscall_nr < 0 ? -1 : t->syscall_nr, -1);
		b_opt(&r, 12, (int64_t)t->tcache, 0);
		b_opt(&r, 13, arena_id_of(c, t->arena), -1);
		b_opt(&r, 14, t->callsite < 0 ? -1 : t->callsite + 1, -1);
		if (t->unwind_error) {
			snprintf(uerr, sizeof uerr, "%s", uw_strerror(t->unwind_error));
			b_text(&r, 15, uerr);
		} else {
			b_null(&r, 15);
		}
		rc = step(w, &r, "thread");
		for (int k = 0; k < HS_NREGS && t->regs_valid && !rc; k++) {
			row x = { sr, SQLITE_OK };
			b_i64(&x, 1, t->tid);
			b_text(&x, 2, hs_reg_names[k]);
			b_u64(&x, 3, t->regs[k]);
			rc = step(w, &x, "thread_register");
		}
		for (int k = 0; k < HS_TCACHE_BINS && !rc; k++) {
			if (!t->tcache_count[k] && !t->tcache_bytes[k])
				continue;
			row x = { sc, SQLITE_OK };
			b_i64(&x, 1, t->tid);
			b_i64(&x, 2, HS_TCACHE_BIN_SIZE(k));
			b_i64(&x, 3, t->tcache_count[k]);
			b_u64(&x, 4, t->tcache_bytes[k]);
			rc = step(w, &x, "thread_tcache");
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(sr);
	sqlite3_finalize(sc);
	return rc;
}

static int w_arenas(sw_ctx *w, const hs_capture *c)
{
	sqlite3_stmt *st, *sh;
	if (prep(w, &st, "INSERT INTO arena VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"))
		return -1;
	if (prep(w, &sh, "INSERT INTO heap VALUES (?,?,?,?)")) {
		sqlite3_finalize(st);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < c->n_arenas && !rc; i++) {
		const hs_arena *a = &c->arenas[i];
		row r = { st, SQLITE_OK };
		b_i64(&r, 1, (int64_t)i + 1);
		b_u64(&r, 2, a->addr);
		b_i64(&r, 3, a->is_main ? 1 : 0);
		b_opt(&r, 4, (int64_t)a->top, 0);
		b_u64(&r, 5, a->system_mem);
		b_u64(&r, 6, a->max_system_mem);
		b_i64(&r, 7, a->mutex);
		b_i64(&r, 8, a->flags);
		b_u64(&r, 9, a->attached_threads);
		b_u64(&r, 10, a->list_bin_count);
		b_u64(&r, 11, a->list_bin_bytes);
		b_u64(&r, 12, a->list_fast_count);
		b_u64(&r, 13, a->list_fast_bytes);
		b_u64(&r, 14, a->top_size);
		b_i64(&r, 15, a->consistent ? 1 : 0);
		b_text(&r, 16, a->note);
		rc = step(w, &r, "arena");
		for (size_t k = 0; k < a->n_heaps && !rc; k++) {
			row x = { sh, SQLITE_OK };
			b_i64(&x, 1, (int64_t)i + 1);
			b_u64(&x, 2, a->heaps[k].addr);
			b_u64(&x, 3, a->heaps[k].size);
			b_u64(&x, 4, a->heaps[k].mprotect_size);
			rc = step(w, &x, "heap");
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(sh);
	return rc;
}

static const hs_chunk *sort_base;

static int cmp_chunk_idx(const void *a, const void *b)
{
	uint64_t x = sort_base[*(const size_t *)a].addr, y = sort_base[*(const size_t *)b].addr;
	return x < y ? -1 : x > y;
}

static int w_chunks(sw_ctx *w, const hs_capture *c)
{
	/* in address order; the model normally is already sorted, else sort an index */
	size_t *order = NULL;
	for (size_t i = 1; i < c->n_chunks; i++)
		if (c->chunks[i].addr < c->chunks[i - 1].addr) {
			order = malloc(c->n_chunks * sizeof *order);
			if (!order)
				return fail(w, "cannot write '%s': out of memory", w->dest);
			for (size_t k = 0; k < c->n_chunks; k++)
				order[k] = k;
			sort_base = c->chunks;
			qsort(order, c->n_chunks, sizeof *order, cmp_chunk_idx);
			break;
		}
	sqlite3_stmt *st;
	if (prep(w, &st, "INSERT INTO chunk (addr, size, state, arena_id, internal) VALUES (?,?,?,?,?)")) {
		free(order);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < c->n_chunks && !rc; i++) {
		const hs_chunk *ch = &c->chunks[order ? order[i] : i];
		int no_arena = ch->mmapped || ch->arena < 0;
		if (!no_arena && (size_t)ch->arena >= c->n_arenas) {
			rc = fail(w, "cannot write '%s': chunk %#llx has arena index %d of %zu",
				  w->dest, (unsigned long long)ch->addr, (int)ch->arena, c->n_arenas);
			break;
		}
		row r = { st, SQLITE_OK };
		b_u64(&r, 1, ch->addr);
		b_u64(&r, 2, ch->size);
		b_i64(&r, 3, ch->state);
		if (no_arena)
			b_null(&r, 4);
		else
			b_i64(&r, 4, ch->arena + 1);
		if (ch->state == HS_CH_INTERNAL)
			b_i64(&r, 5, ch->internal);
		else
			b_null(&r, 5);
		rc = step(w, &r, "chunk");
	}
	sqlite3_finalize(st);
	free(order);
	return rc;
}

static int w_malloc_params(sw_ctx *w, const hs_capture *c)
{
	const hs_heapinfo *h = &c->heap;
	sqlite3_stmt *st;
	if (prep(w, &st, "INSERT INTO malloc_params VALUES (?,?,?,?,?,?,?,?,?,?)"))
		return -1;
	row r = { st, SQLITE_OK };
	if (h->found) {
		b_opt(&r, 1, (int64_t)h->main_arena, 0);
		b_opt(&r, 2, (int64_t)h->mp, 0);
		b_opt(&r, 3, h->tcache_tls_offset, 0);
		b_u64(&r, 4, h->mp_n_mmaps);
		b_u64(&r, 5, h->mp_mmapped_mem);
		b_u64(&r, 6, h->mp_mmap_threshold);
		b_u64(&r, 7, h->mp_trim_threshold);
		b_u64(&r, 8, h->mp_arena_max);
		b_u64(&r, 9, h->mp_tcache_bins);
		b_u64(&r, 10, h->mp_tcache_count);
	}  /* else: one row of NULLs */
	int rc = step(w, &r, "malloc_params");
	sqlite3_finalize(st);
	return rc;
}

/* ---- the tracking library's view (alloc, tracking) ---- */
static int w_allocs(sw_ctx *w, const hs_capture *c)
{
	sqlite3_stmt *st;
	if (!c->n_allocs)
		return 0;
	if (prep(w, &st, "INSERT INTO alloc VALUES (?,?,?,?,?,?,?)"))
		return -1;
	int rc = 0;
	for (size_t i = 0; i < c->n_allocs && !rc; i++) {
		const hs_alloc *a = &c->allocs[i];
		if (a->callsite >= 0 && (size_t)a->callsite >= c->n_callsites) {
			rc = fail(w, "cannot write '%s': alloc %#llx has callsite index %d of %zu",
				  w->dest, (unsigned long long)a->addr, a->callsite, c->n_callsites);
			break;
		}
		row r = { st, SQLITE_OK };
		b_u64(&r, 1, a->addr);
		b_u64(&r, 2, a->requested);
		b_opt(&r, 3, a->callsite < 0 ? -1 : a->callsite + 1, -1);
		b_u64(&r, 4, a->seq);
		b_u64(&r, 5, a->usable);
		b_i64(&r, 6, a->origin);
		b_i64(&r, 7, a->stack_id);
		rc = step(w, &r, "alloc");
	}
	sqlite3_finalize(st);
	return rc;
}

static int w_tracking(sw_ctx *w, const hs_capture *c)
{
	const hs_tracking *t = &c->tracking;
	sqlite3_stmt *st;
	if (!t->found)
		return 0;
	if (prep(w, &st, "INSERT INTO tracking VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"))
		return -1;
	row r = { st, SQLITE_OK };
	int mod_ok = t->module_idx >= 0 && (size_t)t->module_idx < c->n_modules;
	b_text(&r, 1, t->lib_path ? t->lib_path : "");
	b_opt(&r, 2, mod_ok ? t->module_idx + 1 : -1, -1);
	b_i64(&r, 3, t->valid ? 1 : 0);
	b_text(&r, 4, t->note);
	b_opt(&r, 5, (int64_t)t->state_addr, 0);
	if (t->valid) {
		const uint64_t v[] = {
			t->version, t->sample_interval, t->max_depth, t->n_stacks, t->max_stacks,
			t->n_threads, t->n_unloads, t->seq, t->tracked_count, t->tracked_bytes,
			t->internal_count, t->internal_bytes, t->unsampled_count, t->unsampled_bytes,
			t->untracked_count, t->untracked_bytes, t->table_full_count,
			t->missing_count, t->missing_bytes, t->extra_count, t->extra_bytes,
			t->n_fallback, t->n_bootstrap, t->n_foreign_free,
			(uint64_t)t->threads_in_hook, (uint64_t)t->threads_in_alloc, t->n_fork_torn,
		};
		for (int k = 0; k < (int)(sizeof v / sizeof *v); k++)
			if (!t->counters_read && k >= 17 && k <= 20)
				b_null(&r, 6 + k);
			else
				b_u64(&r, 6 + k, v[k]);
	} else {
		for (int k = 6; k <= 32; k++)
			b_null(&r, k);
	}
	int rc = step(w, &r, "tracking");
	sqlite3_finalize(st);
	if (rc || !t->n_trk_threads)
		return rc;
	if (prep(w, &st, "INSERT OR IGNORE INTO tracking_thread VALUES (?,?,?,?,?)"))
		return -1;
	for (size_t i = 0; i < t->n_trk_threads && !rc; i++) {
		const hs_trk_thread *x = &t->threads[i];
		row q = { st, SQLITE_OK };
		b_i64(&q, 1, x->tid);
		b_i64(&q, 2, x->where);
		b_u64(&q, 3, x->n_alloc);
		b_u64(&q, 4, x->n_memo);
		b_u64(&q, 5, x->n_walk);
		rc = step(w, &q, "tracking_thread");
	}
	sqlite3_finalize(st);
	return rc;
}

/* the pointer graph tables (graphwrite.c) */
static int w_graph(sw_ctx *w, const hs_capture *c)
{
	if (!gw_write(w->db, c, w->err, w->errlen, w->dest))
		return 0;
	w->failed = 1;
	return -1;
}

static int write_all(sw_ctx *w, const hs_capture *c)
{
	char pragmas[256];
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA page_size=%d; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
		 "PRAGMA locking_mode=EXCLUSIVE; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32768;",
		 SW_PAGE_SIZE);
	if (exec(w, pragmas) || exec(w, hs_schema_sql) || exec(w, "BEGIN"))
		return -1;
	if (w_process(w, c) || w_capture(w, c) || w_modules(w, c) || w_mappings(w, c) ||
	    w_frames(w, c) || w_callsites(w, c) || w_arenas(w, c) || w_threads(w, c) ||
	    w_chunks(w, c) || w_malloc_params(w, c) || w_allocs(w, c) || w_tracking(w, c) ||
	    w_graph(w, c))
		return -1;
	return exec(w, "COMMIT");
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	/* some file systems cannot sync a directory: nothing more we can do there */
	if (rc && (e == EINVAL || e == ENOTSUP))
		rc = 0;
	errno = e;
	return rc;
}

int sw_write(const hs_capture *c, const char *path, char *err, size_t errlen)
{
	sw_ctx w = { .dest = path, .err = err, .errlen = errlen };
	if (errlen)
		err[0] = 0;
	if (!path || !*path)
		return fail(&w, "cannot write snapshot: empty file name");

	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else if ((size_t)(slash - path) >= sizeof dir)
		return fail(&w, "cannot write '%s': file name too long", path);
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);

	/* build the template in a local buffer, publish it only once the file exists */
	char tmpl[PATH_MAX];
	if ((size_t)snprintf(tmpl, sizeof tmpl, "%s.tmp-XXXXXX", path) >= sizeof tmpl)
		return fail(&w, "cannot write '%s': file name too long", path);
	int fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return fail(&w, "cannot create '%s': %s", path, strerror(errno));
	tmp_live = 0;
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(tmp_path, tmpl, strlen(tmpl) + 1);
	atomic_signal_fence(memory_order_seq_cst);  /* the path is complete before it is published */
	tmp_live = 1;

	if (fchmod(fd, 0600)) {
		fail(&w, "cannot chmod '%s': %s", tmp_path, strerror(errno));
		goto out;
	}
	/* the fd stays open until after sqlite3_close: closing another descriptor of the same
	 * file would drop SQLite's POSIX locks */
	if (sqlite3_open_v2(tmp_path, &w.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		db_fail(&w, "open");
		goto out;
	}
	sqlite3_extended_result_codes(w.db, 1);
	if (write_all(&w, c))
		goto out;
	int crc = sqlite3_close(w.db);
	if (crc != SQLITE_OK) {
		fail(&w, "cannot write '%s': close: %s", path, sqlite3_errstr(crc));
		goto out;   /* closed there with sqlite3_close_v2 */
	}
	w.db = NULL;
	if (fsync(fd)) {
		fail(&w, "cannot write '%s': fsync: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd)) {
		fd = -1;
		fail(&w, "cannot write '%s': close: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp_path, path)) {
		fail(&w, "cannot rename '%s' to '%s': %s", tmp_path, path, strerror(errno));
		goto out;
	}
	tmp_live = 0;
	/* the snapshot is in place and complete; only its survival of a crash is in doubt */
	if (fsync_dir(dir))
		return fail(&w, "wrote '%s' but cannot sync its directory '%s': %s", path, dir,
			    strerror(errno));
	return 0;

out:
	if (w.db) {
		sqlite3_close_v2(w.db);
		w.db = NULL;
	}
	if (fd >= 0)
		close(fd);
	tmp_live = 0;
	unlink(tmp_path);
	return -1;
}
