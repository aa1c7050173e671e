/* output.h -- everything the analyzer prints goes through here: aligned human tables,
 * human sizes, a JSON writer, CSV, one-line error messages, and the check of stdout
 * at exit.
 *
 * Text from a snapshot is target-controlled (process names, paths, function names) and
 * may hold any bytes. Every writer here makes it safe for its medium:
 *   tables/messages: control characters and invalid UTF-8 become \xNN, so a file cannot
 *                    move the cursor or break a line of the terminal;
 *   JSON:            quotes, backslashes and control characters are escaped, invalid
 *                    UTF-8 bytes become \ufffd, and < > & U+2028 U+2029 are \u-escaped so
 *                    the output can be embedded in an HTML <script> as it is;
 *   CSV:             RFC 4180 quoting; control characters (newlines too) become \xNN so
 *                    every record is one line; invalid UTF-8 bytes become U+FFFD.
 *
 * Ownership: an out_table owns copies of its cells; out_table_free releases them. The
 * writers never fail on their own; stdio errors are caught once by out_close_stdout().
 */
#ifndef HEAPSNAP_OUTPUT_H
#define HEAPSNAP_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- sizes and text ---- */
#define OUT_SIZE_LEN 24
/* "512 B", "4.0 KiB", "12.3 MiB", "1.5 GiB", ... into buf (OUT_SIZE_LEN bytes); returns buf */
const char *out_size(char *buf, uint64_t bytes);
/* a kB figure (as /proc prints them) as a human size; "-" when kb < 0 (unknown) */
const char *out_size_kb(char *buf, int64_t kb);
/* s made safe for a terminal (see above) into dst of n bytes, cut if needed; returns dst */
const char *out_clean(char *dst, size_t n, const char *s);
/* UTC microseconds since the epoch as ISO 8601, "2024-05-01T12:34:56.123456Z" (with_us)
 * or "2024-05-01T12:34:56Z"; "?" if out of range. buf of OUT_TIME_LEN bytes. */
#define OUT_TIME_LEN 40
const char *out_time_iso(char *buf, int64_t us, int with_us);

/* ---- messages: "heapsnap CMD: msg\n" on stderr, one line whatever msg holds ---- */
void out_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- human tables ---- */
enum { OUT_LEFT = 0, OUT_RIGHT = 1 };
typedef struct {
	const char *header;
	int align;            /* OUT_LEFT or OUT_RIGHT (numbers) */
} out_col;

typedef struct out_table out_table;
/* NULL on OOM */
out_table *out_table_new(const out_col *cols, int ncols);
/* Append the next cell (rows fill left to right; a row ends after ncols cells). The
 * text is cleaned as out_clean does. */
void out_cell(out_table *t, const char *s);
void out_cellf(out_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A cell whose CSV value differs from its text (raw NULL: the text): "~4.0 KiB" / "4096" */
void out_cell_raw(out_table *t, const char *text, const char *raw);
/* Human sizes; in CSV the plain number, and the column's header gets _bytes or _kb */
void out_cell_size(out_table *t, uint64_t bytes);    /* human size */
void out_cell_sizef(out_table *t, uint64_t bytes, const char *prefix); /* "~" + size */
void out_cell_kb(out_table *t, int64_t kb);          /* human size of kB, "-" if < 0 */
void out_cell_u64(out_table *t, uint64_t v);
/* Print: header, then rows; columns two spaces apart, no trailing blanks. Returns 0, or
 * -1 if a cell could not be stored (out of memory). In CSV mode (out_table_set_csv):
 * RFC 4180 instead, the header in snake case ("RETAINED BEFORE" -> retained_before, size
 * columns suffixed _bytes or _kb), cells as their raw values. */
int out_table_print(out_table *t, FILE *f);
/* CSV mode for every table printed after it: what `--csv` sets for the commands whose
 * output is one table (top, histogram, retained, ...) */
void out_table_set_csv(int on);
int out_table_csv(void);
void out_table_free(out_table *t);

/* ---- JSON ---- */
#define OUT_JSON_DEPTH 32   /* deepest nesting; the commands stay far below it */
typedef struct {
	FILE *f;
	int depth;
	int count[OUT_JSON_DEPTH];   /* members written at each level */
	int inline_[OUT_JSON_DEPTH]; /* 1: this container is written on one line */
	char close[OUT_JSON_DEPTH];  /* ']' or '}' */
} out_json;

void out_json_init(out_json *j, FILE *f);
/* Containers. key is the member name inside an object, NULL inside an array or at the
 * top. The _line variants keep the container (and all it holds) on one line. */
void out_json_obj(out_json *j, const char *key);
void out_json_obj_line(out_json *j, const char *key);
void out_json_arr(out_json *j, const char *key);
void out_json_arr_line(out_json *j, const char *key);
void out_json_end(out_json *j);
/* Values; a NULL string is written as null. */
void out_json_str(out_json *j, const char *key, const char *s);
void out_json_strn(out_json *j, const char *key, const char *s, size_t n);
void out_json_i64(out_json *j, const char *key, int64_t v);
void out_json_u64(out_json *j, const char *key, uint64_t v);
void out_json_bool(out_json *j, const char *key, int v);
/* a finite double (%.17g); NaN and infinities are written as null */
void out_json_f64(out_json *j, const char *key, double v);
void out_json_null(out_json *j, const char *key);
/* ends the document with a newline */
void out_json_finish(out_json *j);
/* a JSON string literal for s (n bytes), quotes included, to f */
void out_json_string(FILE *f, const char *s, size_t n);

/* ---- CSV (RFC 4180, "\n" line ends) ---- */
typedef struct {
	FILE *f;
	int col;              /* fields written on the current line */
} out_csv;

void out_csv_init(out_csv *c, FILE *f);
void out_csv_str(out_csv *c, const char *s); /* NULL: empty field */
void out_csv_i64(out_csv *c, int64_t v);
void out_csv_hex(out_csv *c, uint64_t v);    /* 0x... */
void out_csv_end(out_csv *c);

/* ---- exit ---- */
/* Flush and close stdout; on a write error print "heapsnap: cannot write to standard
 * output: ..." and return 1 (HS_EXIT_FAIL), else 0. Called once, by main. */
int out_close_stdout(void);

#endif
