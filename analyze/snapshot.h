/* snapshot.h -- opening a snapshot file for analysis, and typed helpers to query it.
 *
 * A snapshot is untrusted input: it may be truncated, foreign, written by a newer
 * heapsnap, or crafted. snap_open() checks, in this order, and stops at the first
 * failure with a one-line message "cannot open 'FILE': REASON" and an error kind:
 *   missing / unreadable           the file system said so
 *   not an SQLite file             "not a heapsnap snapshot"
 *   application_id not 'HSNP'      "not a heapsnap snapshot (application_id 0x...)"
 *   user_version above this build  "written by a newer heapsnap (format N, this build reads up to 1)"
 *   user_version below the oldest  "format N is too old (this build reads 1 to 1)"
 *   shorter than its header says   "truncated: N of M bytes"
 *   a table or column of the schema missing, or the schema unreadable: "damaged snapshot: ..."
 * The first five come from the 100-byte database header, read before SQLite parses
 * anything. The file is then opened read-only and immutable (no locks, no journal,
 * nothing written beside it), in defensive mode, with triggers off, untrusted schema
 * expressions restricted, and a 64 MiB cap on any one string or blob.
 *
 * Errors while querying (a damaged page found later) are reported the same way: the
 * helpers return -1 and keep a message; snap_exit_code() says whether it was bad input
 * (exit 2) or something else (exit 1). Nothing here prints.
 *
 * Ownership: snap_close() finalizes nothing for the caller; finalize your statements.
 */
#ifndef HEAPSNAP_SNAPSHOT_H
#define HEAPSNAP_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* the formats (user_version) this build reads */
#define SNAP_FORMAT_MIN 1
#define SNAP_FORMAT_MAX 1

enum snap_status {
	SNAP_OK = 0,
	SNAP_ERR_MISSING,     /* no such file (or a path component missing) */
	SNAP_ERR_UNREADABLE,  /* exists, cannot be read: permission, a directory, I/O error */
	SNAP_ERR_NOT_SQLITE,  /* not an SQLite database at all */
	SNAP_ERR_FOREIGN,     /* an SQLite database, but not heapsnap's application_id */
	SNAP_ERR_NEWER,       /* heapsnap's, format newer than SNAP_FORMAT_MAX */
	SNAP_ERR_OLDER,       /* heapsnap's, format older than SNAP_FORMAT_MIN */
	SNAP_ERR_TRUNCATED,   /* shorter than the page count in its header */
	SNAP_ERR_DAMAGED,     /* heapsnap header, but the schema is missing or unreadable */
	SNAP_ERR_NOMEM,       /* out of memory */
};

typedef struct snap snap;

/* Open and validate path. SNAP_OK and *out set, or an error kind with the message in
 * err (and *out NULL). */
int snap_open(const char *path, snap **out, char *err, size_t errlen);
void snap_close(snap *s);

/* exit code for a snap_open() failure: 2 (bad input), or 1 for out of memory */
int snap_status_exit(int status);

sqlite3 *snap_db(snap *s);
const char *snap_path(const snap *s);
int snap_format(const snap *s);          /* user_version */
int64_t snap_file_size(const snap *s);   /* bytes */

/* ---- querying; each returns -1 on error with snap_error() set ---- */
/* prepare sql; *st is NULL on error */
int snap_prepare(snap *s, sqlite3_stmt **st, const char *sql);
/* 1 a row, 0 done, -1 error */
int snap_step(snap *s, sqlite3_stmt *st);
/* one integer from the first column of the first row; *out = dflt if no row or NULL */
int snap_query_i64(snap *s, const char *sql, int64_t dflt, int64_t *out);
/* 1 if the file has a table (not a view) of that name, 0 if not, -1 on error */
int snap_has_table(snap *s, const char *name);

/* "cannot read 'FILE': ..." for the last error */
const char *snap_error(const snap *s);
/* 2 when the last error was a damaged file (bad input), else 1 */
int snap_exit_code(const snap *s);

/* ---- column accessors: safe on any value a hostile file may hold ---- */
static inline int snap_isnull(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL;
}
/* the integer, or dflt when NULL */
static inline int64_t snap_i64(sqlite3_stmt *st, int col, int64_t dflt)
{
	return snap_isnull(st, col) ? dflt : (int64_t)sqlite3_column_int64(st, col);
}
/* the text (valid until the next step), NULL when NULL */
static inline const char *snap_text(sqlite3_stmt *st, int col)
{
	return snap_isnull(st, col) ? NULL : (const char *)sqlite3_column_text(st, col);
}

#endif
