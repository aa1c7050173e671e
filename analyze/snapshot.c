/* snapshot.c -- opens and validates a snapshot file (see snapshot.h for the checks and
 * their messages) and wraps the SQLite calls the commands make.
 *
 * The SQLite database header (https://www.sqlite.org/fileformat.html, section 1.3),
 * the part read here before SQLite sees the file; all fields big-endian:
 *   0  16  "SQLite format 3\0"
 *  16   2  page size (1 means 65536)
 *  24   4  file change counter
 *  28   4  database size in pages, valid when offset 92 equals offset 24
 *  60   4  user_version            -- heapsnap's format version
 *  68   4  application_id          -- 0x48534E50 'HSNP' for heapsnap
 *  92   4  version-valid-for number
 */
#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "schema_sql.h"

struct snap {
	sqlite3 *db;
	char *path;
	int format;
	int64_t size;
	char err[512];
	int err_bad_input;
};

/* ---------------------------------------------------------------- the header */
static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int say(char *err, size_t n, int status, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int say(char *err, size_t n, int status, const char *path, const char *fmt, ...)
{
	char why[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (n)
		snprintf(err, n, "cannot open '%s': %s", path, why);
	return status;
}

/* Checks that need only the file system and the 100-byte header. */
static int check_header(const char *path, int *format, int64_t *size, char *err, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return say(err, n, e == ENOENT || e == ENOTDIR ? SNAP_ERR_MISSING : SNAP_ERR_UNREADABLE,
			   path, "%s", strerror(e));
	}
	struct stat sb;
	if (fstat(fd, &sb)) {
		int e = errno;
		close(fd);
		return say(err, n, SNAP_ERR_UNREADABLE, path, "%s", strerror(e));
	}
	if (S_ISDIR(sb.st_mode)) {
		close(fd);
		return say(err, n, SNAP_ERR_UNREADABLE, path, "%s", strerror(EISDIR));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return say(err, n, SNAP_ERR_UNREADABLE, path, "not a regular file");
	}
	unsigned char h[100];
	ssize_t got = 0;
	while (got < (ssize_t)sizeof h) {
		ssize_t r = read(fd, h + got, sizeof h - (size_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return say(err, n, SNAP_ERR_UNREADABLE, path, "%s", strerror(e));
		}
		if (r == 0)
			break;
		got += r;
	}
	close(fd);
	*size = (int64_t)sb.st_size;

	if (got < (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16))
		return say(err, n, SNAP_ERR_NOT_SQLITE, path, "not a heapsnap snapshot");
	uint32_t app = be32(h + 68);
	if (app != HS_APPLICATION_ID)
		return say(err, n, SNAP_ERR_FOREIGN, path,
			   "not a heapsnap snapshot (application_id 0x%08x)", app);
	int32_t ver = (int32_t)be32(h + 60);
	*format = ver;
	if (ver > SNAP_FORMAT_MAX)
		return say(err, n, SNAP_ERR_NEWER, path,
			   "written by a newer heapsnap (format %d, this build reads up to %d)",
			   ver, SNAP_FORMAT_MAX);
	if (ver < SNAP_FORMAT_MIN)
		return say(err, n, SNAP_ERR_OLDER, path,
			   "format %d is not supported (this build reads %d to %d)",
			   ver, SNAP_FORMAT_MIN, SNAP_FORMAT_MAX);

	uint32_t ps = (uint32_t)h[16] << 8 | h[17];
	if (ps == 1)
		ps = 65536;
	if (ps < 512 || (ps & (ps - 1)))
		return say(err, n, SNAP_ERR_DAMAGED, path, "damaged snapshot: bad page size %u", ps);
	uint32_t pages = be32(h + 28);
	int pages_valid = pages && be32(h + 24) == be32(h + 92);
	if (pages_valid) {
		int64_t want = (int64_t)pages * ps;
		if (*size < want)
			return say(err, n, SNAP_ERR_TRUNCATED, path, "truncated: %lld of %lld bytes",
				   (long long)*size, (long long)want);
	} else if (*size % ps) {
		return say(err, n, SNAP_ERR_TRUNCATED, path,
			   "truncated: %lld bytes is not a whole number of %u-byte pages",
			   (long long)*size, ps);
	}
	return SNAP_OK;
}

/* ---------------------------------------------------------------- the schema */
/* "file:" URI for path, opened read-only and immutable; NULL on OOM */
static char *uri_of(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *u = malloc(3 * n + 64);
	if (!u)
		return NULL;
	size_t o = 0;
	/* "file://" + an absolute path (empty authority); "file:" + a relative one */
	o += (size_t)sprintf(u, path[0] == '/' ? "file://" : "file:");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)path[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '/' || c == '.' || c == '-' || c == '_' || c == '~') {
			u[o++] = (char)c;
		} else {
			u[o++] = '%';
			u[o++] = hex[c >> 4];
			u[o++] = hex[c & 15];
		}
	}
	strcpy(u + o, "?mode=ro&immutable=1");
	return u;
}

/* Every (table, column) pair of this build's schema: built once from hs_schema_sql in
 * an in-memory database, so the check can never drift from schema/schema.sql. */
typedef struct {
	char **name;          /* "table\0column" pairs, table first */
	size_t n;
	int ready;
} ref_schema;

static ref_schema ref;

static int load_ref(void)
{
	if (ref.ready)
		return 0;
	sqlite3 *m = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_open_v2(":memory:", &m, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_exec(m, hs_schema_sql, NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(m, "SELECT s.name, p.name FROM sqlite_schema s, pragma_table_info(s.name) p "
				  "WHERE s.type = 'table' ORDER BY s.name, p.cid", -1, &st, NULL) != SQLITE_OK)
		goto out;
	size_t cap = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		const char *c = (const char *)sqlite3_column_text(st, 1);
		if (!t || !c)
			continue;
		if (ref.n == cap) {
			cap = cap ? 2 * cap : 128;
			char **p = realloc(ref.name, cap * sizeof *p);
			if (!p)
				goto out;
			ref.name = p;
		}
		size_t lt = strlen(t), lc = strlen(c);
		char *e = malloc(lt + lc + 2);
		if (!e)
			goto out;
		memcpy(e, t, lt + 1);
		memcpy(e + lt + 1, c, lc + 1);
		ref.name[ref.n++] = e;
	}
	ref.ready = 1;
	rc = 0;
out:
	if (rc) {   /* start afresh next time */
		for (size_t i = 0; i < ref.n; i++)
			free(ref.name[i]);
		free(ref.name);
		ref.name = NULL;
		ref.n = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(m);
	return rc;
}

/* each table of the schema is a table in the file, with each of its columns */
static int check_schema(snap *s, char *err, size_t n)
{
	if (load_ref())
		return say(err, n, SNAP_ERR_NOMEM, s->path, "out of memory");
	sqlite3_stmt *tq = NULL, *cq = NULL;
	int status = SNAP_OK;
	if (sqlite3_prepare_v2(s->db, "SELECT type FROM sqlite_schema WHERE name = ?1", -1, &tq, NULL) ||
	    sqlite3_prepare_v2(s->db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &cq, NULL)) {
		status = say(err, n, SNAP_ERR_DAMAGED, s->path, "damaged snapshot: %s", sqlite3_errmsg(s->db));
		goto out;
	}
	const char *last = "";
	for (size_t i = 0; i < ref.n; i++) {
		const char *t = ref.name[i], *c = t + strlen(t) + 1;
		int r;
		if (strcmp(t, last)) {
			last = t;
			sqlite3_bind_text(tq, 1, t, -1, SQLITE_STATIC);
			r = sqlite3_step(tq);
			const char *type = r == SQLITE_ROW ? (const char *)sqlite3_column_text(tq, 0) : NULL;
			int ok = type && !strcmp(type, "table");
			sqlite3_reset(tq);
			if (r != SQLITE_ROW && r != SQLITE_DONE) {
				status = say(err, n, SNAP_ERR_DAMAGED, s->path, "damaged snapshot: %s",
					     sqlite3_errmsg(s->db));
				goto out;
			}
			if (!ok) {
				status = say(err, n, SNAP_ERR_DAMAGED, s->path,
					     "damaged snapshot: no table '%s'", t);
				goto out;
			}
		}
		sqlite3_bind_text(cq, 1, t, -1, SQLITE_STATIC);
		sqlite3_bind_text(cq, 2, c, -1, SQLITE_STATIC);
		r = sqlite3_step(cq);
		sqlite3_reset(cq);
		if (r != SQLITE_ROW) {
			if (r == SQLITE_DONE)
				status = say(err, n, SNAP_ERR_DAMAGED, s->path,
					     "damaged snapshot: table '%s' has no column '%s' (or written by an "
					     "earlier development build of format %d: capture again)", t, c,
					     s->format);
			else
				status = say(err, n, SNAP_ERR_DAMAGED, s->path, "damaged snapshot: %s",
					     sqlite3_errmsg(s->db));
			goto out;
		}
	}
out:
	sqlite3_finalize(tq);
	sqlite3_finalize(cq);
	return status;
}

int snap_open(const char *path, snap **out, char *err, size_t errlen)
{
	*out = NULL;
	if (errlen)
		err[0] = 0;
	int format = 0;
	int64_t size = 0;
	int st = check_header(path, &format, &size, err, errlen);
	if (st != SNAP_OK)
		return st;

	snap *s = calloc(1, sizeof *s);
	char *uri = uri_of(path);
	if (!s || !uri || !(s->path = strdup(path))) {
		free(uri);
		free(s);
		return say(err, errlen, SNAP_ERR_NOMEM, path, "out of memory");
	}
	s->format = format;
	s->size = size;
	int rc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
				 NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		st = say(err, errlen, rc == SQLITE_NOMEM ? SNAP_ERR_NOMEM : SNAP_ERR_UNREADABLE, path,
			 "%s", s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		snap_close(s);
		return st;
	}
	/* hostile-file hygiene: no triggers, no writes even to the schema, schema expressions
	 * limited to innocuous functions, and bounded strings */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, 64 << 20);
	sqlite3_limit(s->db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_exec(s->db, "PRAGMA cache_size=-65536", NULL, NULL, NULL);

	st = check_schema(s, err, errlen);
	if (st != SNAP_OK) {
		snap_close(s);
		return st;
	}
	*out = s;
	return SNAP_OK;
}

void snap_close(snap *s)
{
	if (!s)
		return;
	sqlite3_close_v2(s->db);
	free(s->path);
	free(s);
}

int snap_status_exit(int status)
{
	if (status == SNAP_OK)
		return HS_EXIT_OK;
	return status == SNAP_ERR_NOMEM ? HS_EXIT_FAIL : HS_EXIT_USAGE;
}

sqlite3 *snap_db(snap *s) { return s->db; }
const char *snap_path(const snap *s) { return s->path; }
int snap_format(const snap *s) { return s->format; }
int64_t snap_file_size(const snap *s) { return s->size; }
const char *snap_error(const snap *s) { return s->err; }
int snap_exit_code(const snap *s) { return s->err_bad_input ? HS_EXIT_USAGE : HS_EXIT_FAIL; }

static int query_fail(snap *s, int rc)
{
	int prim = rc & 0xff;
	s->err_bad_input = prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB || prim == SQLITE_FORMAT ||
			   prim == SQLITE_MISMATCH || prim == SQLITE_TOOBIG || prim == SQLITE_RANGE ||
			   prim == SQLITE_ERROR;
	snprintf(s->err, sizeof s->err, "cannot read '%s': %s", s->path, sqlite3_errmsg(s->db));
	return -1;
}

int snap_prepare(snap *s, sqlite3_stmt **st, const char *sql)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
	if (rc != SQLITE_OK) {
		*st = NULL;
		return query_fail(s, rc);
	}
	return 0;
}

int snap_step(snap *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return query_fail(s, rc);
}

int snap_query_i64(snap *s, const char *sql, int64_t dflt, int64_t *out)
{
	sqlite3_stmt *st;
	*out = dflt;
	if (snap_prepare(s, &st, sql))
		return -1;
	int r = snap_step(s, st);
	if (r == 1)
		*out = snap_i64(st, 0, dflt);
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int snap_has_table(snap *s, const char *name)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1"))
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = snap_step(s, st);
	sqlite3_finalize(st);
	return r;
}
