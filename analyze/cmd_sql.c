/* cmd_sql.c -- `heapsnap sql FILE "SELECT ..."`: one read-only SQL statement on a
 * snapshot, printed as an aligned table, JSON or CSV.
 *
 * Read-only three times over: the file is opened SQLITE_OPEN_READONLY and immutable by
 * snap_open(), PRAGMA query_only is set, and a statement SQLite does not call read-only
 * (sqlite3_stmt_readonly) is refused before it runs. ATTACH is disabled by snap_open.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "commands.h"
#include "output.h"
#include "snapshot.h"

static const char sql_usage[] =
	"usage: heapsnap sql FILE \"SELECT ...\" [--json | --csv] [--limit N]\n";

static const char sql_help[] =
	"\n"
	"Run one read-only SQL statement on a snapshot (plain SQLite: schema/README.md) and\n"
	"print its rows. The file is never modified: it is opened read-only, with\n"
	"PRAGMA query_only, and statements that would write are refused.\n"
	"\n"
	"  --limit N    print at most N rows (default: all)\n"
	"  --json       {\"columns\": [...], \"rows\": [[...], ...]}; blobs as hex strings\n"
	"  --csv        CSV with a header line\n"
	"  -h, --help   this help\n"
	"\n"
	"examples:\n"
	"  heapsnap sql s.hsnap \"SELECT state, count(*), sum(size) FROM chunk GROUP BY state\"\n"
	"  heapsnap sql s.hsnap \"SELECT path, build_id FROM module\" --csv\n";

/* a cell's text for table/CSV: NULL as "NULL", blobs as hex; caller frees */
static char *sql_cell_text(sqlite3_stmt *st, int col)
{
	int type = sqlite3_column_type(st, col);
	if (type == SQLITE_NULL)
		return strdup("NULL");
	if (type == SQLITE_BLOB) {
		const unsigned char *b = sqlite3_column_blob(st, col);
		int n = sqlite3_column_bytes(st, col);
		char *h = malloc((size_t)n * 2 + 3);
		if (!h)
			return NULL;
		strcpy(h, "x'");
		for (int i = 0; i < n; i++)
			snprintf(h + 2 + 2 * i, 3, "%02x", b[i]);
		strcat(h, "'");
		return h;
	}
	const char *t = (const char *)sqlite3_column_text(st, col);
	return strdup(t ? t : "");
}

static void sql_json_cell(out_json *j, sqlite3_stmt *st, int col)
{
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_NULL:
		out_json_null(j, NULL);
		break;
	case SQLITE_INTEGER:
		out_json_i64(j, NULL, sqlite3_column_int64(st, col));
		break;
	case SQLITE_FLOAT:
		out_json_f64(j, NULL, sqlite3_column_double(st, col));
		break;
	case SQLITE_BLOB: {
		char *h = sql_cell_text(st, col);
		out_json_str(j, NULL, h);
		free(h);
		break;
	}
	default: {
		const char *t = (const char *)sqlite3_column_text(st, col);
		out_json_strn(j, NULL, t ? t : "", (size_t)sqlite3_column_bytes(st, col));
	}
	}
}

/* all rows as text, for the table (its alignment depends on every row) */
typedef struct {
	char **cell;          /* [rows * ncol] */
	int *numeric;         /* [ncol] 1 while every non-NULL value is a number */
	size_t rows, cap;
} sql_rows;

static int sql_keep_row(sql_rows *r, sqlite3_stmt *st, int ncol)
{
	if (r->rows == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		char **c = realloc(r->cell, cap * (size_t)ncol * sizeof *c);
		if (!c)
			return -1;
		r->cell = c;
		r->cap = cap;
	}
	for (int i = 0; i < ncol; i++) {
		int type = sqlite3_column_type(st, i);
		if (type != SQLITE_NULL && type != SQLITE_INTEGER && type != SQLITE_FLOAT)
			r->numeric[i] = 0;
		char *t = sql_cell_text(st, i);
		r->cell[r->rows * (size_t)ncol + (size_t)i] = t;
		if (!t) {
			for (int k = 0; k < i; k++)
				free(r->cell[r->rows * (size_t)ncol + (size_t)k]);
			return -1;
		}
	}
	r->rows++;
	return 0;
}

static void sql_rows_free(sql_rows *r, int ncol)
{
	for (size_t i = 0; i < r->rows * (size_t)ncol; i++)
		free(r->cell[i]);
	free(r->cell);
	free(r->numeric);
}

static int sql_print_table(sql_rows *r, sqlite3_stmt *st, int ncol)
{
	out_col *cols = calloc((size_t)ncol, sizeof *cols);
	if (!cols)
		return -1;
	for (int i = 0; i < ncol; i++) {
		const char *name = sqlite3_column_name(st, i);
		cols[i].header = name ? name : "?";
		cols[i].align = r->numeric[i] ? OUT_RIGHT : OUT_LEFT;
	}
	out_table *t = out_table_new(cols, ncol);
	int rc = -1;
	if (t) {
		for (size_t k = 0; k < r->rows * (size_t)ncol; k++)
			out_cell(t, r->cell[k]);
		rc = out_table_print(t, stdout);
		out_table_free(t);
	}
	free(cols);
	if (!rc)
		printf("(%zu row%s)\n", r->rows, r->rows == 1 ? "" : "s");
	return rc;
}

int cmd_sql(int argc, char **argv)
{
	cl_opts o = {
		.cmd = "sql", .usage = sql_usage, .help = sql_help,
		.pos_min = 2, .pos_max = 2, .pos_what = "needs a snapshot file and an SQL statement",
		.allow_json = 1, .allow_csv = 1, .value_names = { "limit", NULL },
	};
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	long long limit;
	if (cl_limit(&o, -1, &limit))
		return HS_EXIT_USAGE;
	snap *s = cl_open("sql", o.pos[0], &rc);
	if (!s)
		return rc;
	rc = -1;   /* -1 while all goes well */
	sqlite3 *db = snap_db(s);
	sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL);

	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	if (sqlite3_prepare_v2(db, o.pos[1], -1, &st, &tail) != SQLITE_OK || !st) {
		out_err("sql", "%s", st ? sqlite3_errmsg(db) : (sqlite3_errcode(db) == SQLITE_OK ?
			"no SQL statement given" : sqlite3_errmsg(db)));
		sqlite3_finalize(st);
		snap_close(s);
		return HS_EXIT_USAGE;
	}
	while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' || *tail == ';'))
		tail++;
	if (tail && *tail) {
		out_err("sql", "only one statement at a time (extra text: '%.40s')", tail);
		sqlite3_finalize(st);
		snap_close(s);
		return HS_EXIT_USAGE;
	}
	if (!sqlite3_stmt_readonly(st)) {
		out_err("sql", "refused: the statement would modify the snapshot (read-only)");
		sqlite3_finalize(st);
		snap_close(s);
		return HS_EXIT_USAGE;
	}

	int ncol = sqlite3_column_count(st);
	sql_rows rows = { 0 };
	out_json j;
	out_csv c;
	rows.numeric = calloc((size_t)(ncol ? ncol : 1), sizeof *rows.numeric);
	if (!rows.numeric) {
		out_err("sql", "out of memory");
		sqlite3_finalize(st);
		snap_close(s);
		return HS_EXIT_FAIL;
	}
	for (int i = 0; i < ncol; i++)
		rows.numeric[i] = 1;
	if (o.json) {
		out_json_init(&j, stdout);
		out_json_obj(&j, NULL);
		out_json_arr_line(&j, "columns");
		for (int i = 0; i < ncol; i++)
			out_json_str(&j, NULL, sqlite3_column_name(st, i));
		out_json_end(&j);
		out_json_arr(&j, "rows");
	} else if (o.csv) {
		out_csv_init(&c, stdout);
		for (int i = 0; i < ncol; i++)
			out_csv_str(&c, sqlite3_column_name(st, i));
		out_csv_end(&c);
	}
	long long n = 0;
	int r = SQLITE_DONE;
	while ((limit < 0 || n < limit) && (r = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (o.json) {
			out_json_arr_line(&j, NULL);
			for (int i = 0; i < ncol; i++)
				sql_json_cell(&j, st, i);
			out_json_end(&j);
		} else if (o.csv) {
			for (int i = 0; i < ncol; i++) {
				if (sqlite3_column_type(st, i) == SQLITE_NULL) {
					out_csv_str(&c, NULL);
					continue;
				}
				char *t = sql_cell_text(st, i);
				out_csv_str(&c, t ? t : "");
				free(t);
			}
			out_csv_end(&c);
		} else if (sql_keep_row(&rows, st, ncol)) {
			out_err("sql", "out of memory");
			rc = HS_EXIT_FAIL;
			break;
		}
	}
	if (limit >= 0 && n >= limit)
		r = SQLITE_DONE;
	if (rc == -1 && r != SQLITE_DONE) {
		out_err("sql", "%s", sqlite3_errmsg(db));
		rc = r == SQLITE_CORRUPT || r == SQLITE_NOTADB ? HS_EXIT_USAGE : HS_EXIT_FAIL;
	}
	if (o.json) {
		out_json_end(&j);
		out_json_i64(&j, "row_count", n);
		out_json_finish(&j);
	} else if (!o.csv && rc == -1 && sql_print_table(&rows, st, ncol)) {
		out_err("sql", "out of memory");
		rc = HS_EXIT_FAIL;
	}
	sql_rows_free(&rows, ncol);
	sqlite3_finalize(st);
	snap_close(s);
	return rc == -1 ? HS_EXIT_OK : rc;
}
