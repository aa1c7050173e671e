/* output.c -- tables, human sizes, JSON, CSV and messages for the analyzer; see output.h
 * for what each medium escapes and why. */
#define _GNU_SOURCE
#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- UTF-8 */
/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if the bytes there are
 * not one: overlong forms, surrogates and code points above U+10FFFF are invalid. The
 * code point goes to *cp. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
	else
		return 0;
	if (n < len)
		return 0;
	unsigned v = c & (0xffu >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* ---------------------------------------------------------------- sizes and text */
const char *out_size(char *buf, uint64_t bytes)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (bytes < 1024) {
		snprintf(buf, OUT_SIZE_LEN, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024.0 && u < 6) {
		v /= 1024.0;
		u++;
	}
	/* 1023.96 KiB would print as "1024.0 KiB": move up a unit instead */
	if (v >= 1023.95 && u < 6) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, OUT_SIZE_LEN, "%.1f %s", v, unit[u]);
	return buf;
}

const char *out_size_kb(char *buf, int64_t kb)
{
	if (kb < 0) {
		snprintf(buf, OUT_SIZE_LEN, "-");
		return buf;
	}
	if ((uint64_t)kb > UINT64_MAX / 1024)
		kb = (int64_t)(UINT64_MAX / 1024);
	return out_size(buf, (uint64_t)kb * 1024);
}

const char *out_clean(char *dst, size_t n, const char *s)
{
	size_t o = 0;
	if (!n)
		return dst;
	if (!s)
		s = "";
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		unsigned cp;
		size_t l = utf8_seq(p + i, len - i, &cp);
		int bad = !l || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
		if (bad) {
			/* one \xNN per byte: a control character, or a byte of invalid UTF-8 */
			size_t nb = l ? l : 1;
			if (o + 4 * nb >= n)
				break;
			for (size_t k = 0; k < nb; k++)
				o += (size_t)snprintf(dst + o, n - o, "\\x%02x", p[i + k]);
			i += nb;
		} else {
			if (o + l >= n)
				break;
			memcpy(dst + o, p + i, l);
			o += l;
			i += l;
		}
	}
	dst[o] = 0;
	return dst;
}

const char *out_time_iso(char *buf, int64_t us, int with_us)
{
	/* years 1970..9999 only: anything else in a file is nonsense, not a date */
	if (us < 0 || us > INT64_C(253402300799999999)) {
		snprintf(buf, OUT_TIME_LEN, "?");
		return buf;
	}
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, OUT_TIME_LEN, "?");
		return buf;
	}
	size_t n = strftime(buf, OUT_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	if (with_us)
		snprintf(buf + n, OUT_TIME_LEN - n, ".%06dZ", (int)(us % 1000000));
	else
		snprintf(buf + n, OUT_TIME_LEN - n, "Z");
	return buf;
}

void out_err(const char *cmd, const char *fmt, ...)
{
	char msg[1024], clean[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	out_clean(clean, sizeof clean, msg);
	fflush(stdout);
	if (cmd)
		fprintf(stderr, "heapsnap %s: %s\n", cmd, clean);
	else
		fprintf(stderr, "heapsnap: %s\n", clean);
}

/* ---------------------------------------------------------------- tables */
struct out_table {
	out_col *cols;
	int ncols;
	char **cells;         /* row-major */
	char **raw;           /* [cap] the cell's value for CSV, NULL: the cell's text */
	char *unit;           /* [ncols] CSV header suffix: 0, 'b' (_bytes) or 'k' (_kb) */
	size_t n, cap;
	int oom;
};

static int table_csv;     /* out_table_set_csv() */

void out_table_set_csv(int on)
{
	table_csv = on;
}

int out_table_csv(void)
{
	return table_csv;
}

out_table *out_table_new(const out_col *cols, int ncols)
{
	out_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->cols = malloc((size_t)ncols * sizeof *cols);
	if (!t->cols) {
		free(t);
		return NULL;
	}
	memcpy(t->cols, cols, (size_t)ncols * sizeof *cols);
	t->ncols = ncols;
	t->unit = calloc((size_t)ncols, 1);
	if (!t->unit) {
		free(t->cols);
		free(t);
		return NULL;
	}
	return t;
}

void out_cell(out_table *t, const char *s)
{
	if (!t || t->oom)
		return;
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		char **p = realloc(t->cells, nc * sizeof *p);
		if (p)
			t->cells = p;
		char **q = p ? realloc(t->raw, nc * sizeof *q) : NULL;
		if (!q) {
			t->oom = 1;
			return;
		}
		t->raw = q;
		t->cap = nc;
	}
	t->raw[t->n] = NULL;
	/* clean into a buffer 4x the input (each byte may become \xNN) */
	size_t len = strlen(s ? s : "");
	size_t sz = 4 * len + 1;
	char *c = malloc(sz);
	if (!c) {
		t->oom = 1;
		return;
	}
	out_clean(c, sz, s);
	t->cells[t->n++] = c;
}

void out_cellf(out_table *t, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (t)
			t->oom = 1;
		return;
	}
	out_cell(t, s);
	free(s);
}

void out_cell_raw(out_table *t, const char *text, const char *raw)
{
	if (!t || t->oom)
		return;
	size_t at = t->n;
	out_cell(t, text);
	if (t->oom || t->n != at + 1 || !raw)
		return;
	if (!(t->raw[at] = strdup(raw)))
		t->oom = 1;
}

/* a size cell: human text, the number for CSV, and the column's CSV unit */
static void cell_unit(out_table *t, const char *text, uint64_t v, char unit)
{
	char raw[32];
	if (!t)
		return;
	t->unit[t->n % (size_t)t->ncols] = unit;
	snprintf(raw, sizeof raw, "%" PRIu64, v);
	out_cell_raw(t, text, raw);
}

void out_cell_size(out_table *t, uint64_t bytes)
{
	char b[OUT_SIZE_LEN];
	cell_unit(t, out_size(b, bytes), bytes, 'b');
}

void out_cell_sizef(out_table *t, uint64_t bytes, const char *prefix)
{
	char b[OUT_SIZE_LEN], text[OUT_SIZE_LEN + 16];
	snprintf(text, sizeof text, "%s%s", prefix ? prefix : "", out_size(b, bytes));
	cell_unit(t, text, bytes, 'b');
}

void out_cell_kb(out_table *t, int64_t kb)
{
	char b[OUT_SIZE_LEN];
	if (kb < 0) {
		if (t)
			t->unit[t->n % (size_t)t->ncols] = 'k';
		out_cell_raw(t, out_size_kb(b, kb), "");
		return;
	}
	cell_unit(t, out_size_kb(b, kb), (uint64_t)kb, 'k');
}

void out_cell_u64(out_table *t, uint64_t v)
{
	out_cellf(t, "%" PRIu64, v);
}

/* display width: code points (cells hold valid UTF-8 after out_clean) */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void pad(FILE *f, size_t n)
{
	while (n--)
		fputc(' ', f);
}

/* CSV: the header in snake case ("RETAINED BEFORE" -> retained_before, with _bytes or
 * _kb for size columns), then one line per row with the raw values */
static int table_print_csv(out_table *t, FILE *f)
{
	out_csv c;
	out_csv_init(&c, f);
	for (int k = 0; k < t->ncols; k++) {
		char h[128];
		size_t o = 0;
		for (const char *p = t->cols[k].header; *p && o + 8 < sizeof h; p++) {
			unsigned char ch = (unsigned char)*p;
			if (ch >= 'A' && ch <= 'Z')
				h[o++] = (char)(ch - 'A' + 'a');
			else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
				h[o++] = (char)ch;
			else if (ch == '%')
				o += (size_t)snprintf(h + o, sizeof h - o, "percent");
			else if (o && h[o - 1] != '_')
				h[o++] = '_';
		}
		while (o && h[o - 1] == '_')
			o--;
		h[o] = 0;
		int has = (o >= 5 && !strcmp(h + o - 5, "bytes")) ||
			  (o >= 2 && !strcmp(h + o - 2, "kb"));
		if (t->unit[k] && !has)
			snprintf(h + o, sizeof h - o, "%s", t->unit[k] == 'b' ? "_bytes" : "_kb");
		out_csv_str(&c, h);
	}
	out_csv_end(&c);
	for (size_t i = 0; i < t->n; i++) {
		out_csv_str(&c, t->raw[i] ? t->raw[i] : t->cells[i]);
		if (i % (size_t)t->ncols == (size_t)t->ncols - 1 || i + 1 == t->n)
			out_csv_end(&c);
	}
	return 0;
}

int out_table_print(out_table *t, FILE *f)
{
	if (!t || t->oom)
		return -1;
	if (table_csv)
		return table_print_csv(t, f);
	int nc = t->ncols;
	size_t *w = calloc((size_t)nc, sizeof *w);
	if (!w)
		return -1;
	for (int c = 0; c < nc; c++)
		w[c] = width(t->cols[c].header);
	for (size_t i = 0; i < t->n; i++) {
		size_t cw = width(t->cells[i]);
		if (cw > w[i % nc])
			w[i % nc] = cw;
	}
	/* the header, then each row; a partial last row is padded with empty cells; a line
	 * ends after its last non-empty cell, so no line has trailing blanks */
	size_t rows = (t->n + nc - 1) / nc;
	for (size_t r = 0; r <= rows; r++) {
		const char *cell[nc];
		int last = 0;
		for (int c = 0; c < nc; c++) {
			size_t i = (r - 1) * nc + c;
			cell[c] = r == 0 ? t->cols[c].header : i < t->n ? t->cells[i] : "";
			if (cell[c][0])
				last = c;
		}
		for (int c = 0; c <= last; c++) {
			size_t sw = width(cell[c]);
			if (c)
				fputs("  ", f);
			if (t->cols[c].align == OUT_RIGHT) {
				pad(f, w[c] - sw);
				fputs(cell[c], f);
			} else {
				fputs(cell[c], f);
				if (c < last)
					pad(f, w[c] - sw);
			}
		}
		fputc('\n', f);
	}
	free(w);
	return 0;
}

void out_table_free(out_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->cells[i]);
		free(t->raw[i]);
	}
	free(t->cells);
	free(t->raw);
	free(t->unit);
	free(t->cols);
	free(t);
}

/* ---------------------------------------------------------------- JSON */
void out_json_string(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned cp;
		size_t l = utf8_seq(p + i, n - i, &cp);
		if (!l) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		switch (cp) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '<': case '>': case '&': case 0x7f: case 0x2028: case 0x2029:
			fprintf(f, "\\u%04x", cp);
			break;
		default:
			if (cp < 0x20)
				fprintf(f, "\\u%04x", cp);
			else
				fwrite(p + i, 1, l, f);
		}
		i += l;
	}
	fputc('"', f);
}

void out_json_init(out_json *j, FILE *f)
{
	memset(j, 0, sizeof *j);
	j->f = f;
}

static void indent(out_json *j)
{
	fputc('\n', j->f);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* the separator and key before a value at the current level */
static void member(out_json *j, const char *key)
{
	if (j->depth > 0) {
		int d = j->depth - 1;
		if (j->count[d]++)
			fputc(',', j->f);
		if (j->inline_[d]) {
			if (j->count[d] > 1)
				fputc(' ', j->f);
		} else {
			indent(j);
		}
	}
	if (key) {
		out_json_string(j->f, key, strlen(key));
		fputs(": ", j->f);
	}
}

static void open_container(out_json *j, const char *key, char c, int line)
{
	member(j, key);
	fputc(c, j->f);
	if (j->depth >= OUT_JSON_DEPTH)
		return;
	int parent_inline = j->depth > 0 && j->inline_[j->depth - 1];
	j->count[j->depth] = 0;
	j->inline_[j->depth] = line || parent_inline;
	j->close[j->depth] = c == '[' ? ']' : '}';
	j->depth++;
}

void out_json_obj(out_json *j, const char *key) { open_container(j, key, '{', 0); }
void out_json_obj_line(out_json *j, const char *key) { open_container(j, key, '{', 1); }
void out_json_arr(out_json *j, const char *key) { open_container(j, key, '[', 0); }
void out_json_arr_line(out_json *j, const char *key) { open_container(j, key, '[', 1); }

void out_json_end(out_json *j)
{
	if (j->depth <= 0)
		return;
	j->depth--;
	int d = j->depth;
	if (!j->inline_[d] && j->count[d])
		indent(j);
	fputc(j->close[d], j->f);
}

void out_json_str(out_json *j, const char *key, const char *s)
{
	member(j, key);
	if (s)
		out_json_string(j->f, s, strlen(s));
	else
		fputs("null", j->f);
}

void out_json_strn(out_json *j, const char *key, const char *s, size_t n)
{
	member(j, key);
	if (s)
		out_json_string(j->f, s, n);
	else
		fputs("null", j->f);
}

void out_json_i64(out_json *j, const char *key, int64_t v)
{
	member(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void out_json_u64(out_json *j, const char *key, uint64_t v)
{
	member(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void out_json_f64(out_json *j, const char *key, double v)
{
	member(j, key);
	if (isfinite(v))
		fprintf(j->f, "%.17g", v);
	else
		fputs("null", j->f);
}

void out_json_bool(out_json *j, const char *key, int v)
{
	member(j, key);
	fputs(v ? "true" : "false", j->f);
}

void out_json_null(out_json *j, const char *key)
{
	member(j, key);
	fputs("null", j->f);
}

void out_json_finish(out_json *j)
{
	while (j->depth > 0)
		out_json_end(j);
	fputc('\n', j->f);
}

/* ---------------------------------------------------------------- CSV */
void out_csv_init(out_csv *c, FILE *f)
{
	c->f = f;
	c->col = 0;
}

void out_csv_str(out_csv *c, const char *s)
{
	if (c->col++)
		fputc(',', c->f);
	if (!s)
		return;
	size_t n = strlen(s);
	int quote = n && (s[0] == ' ' || s[n - 1] == ' ');
	for (size_t i = 0; i < n && !quote; i++)
		if (s[i] == ',' || s[i] == '"')
			quote = 1;
	if (quote)
		fputc('"', c->f);
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned cp;
		size_t l = utf8_seq(p + i, n - i, &cp);
		if (!l) {
			fputs("\xef\xbf\xbd", c->f); /* U+FFFD */
			i++;
			continue;
		}
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
			/* control characters (newlines included) as \xNN: one record per line */
			for (size_t k = 0; k < l; k++)
				fprintf(c->f, "\\x%02x", p[i + k]);
			i += l;
			continue;
		}
		if (cp == '"')
			fputc('"', c->f);
		fwrite(p + i, 1, l, c->f);
		i += l;
	}
	if (quote)
		fputc('"', c->f);
}

void out_csv_i64(out_csv *c, int64_t v)
{
	if (c->col++)
		fputc(',', c->f);
	fprintf(c->f, "%" PRId64, v);
}

void out_csv_hex(out_csv *c, uint64_t v)
{
	if (c->col++)
		fputc(',', c->f);
	fprintf(c->f, "0x%" PRIx64, v);
}

void out_csv_end(out_csv *c)
{
	fputc('\n', c->f);
	c->col = 0;
}

/* ---------------------------------------------------------------- exit */
int out_close_stdout(void)
{
	errno = 0;
	int bad = fflush(stdout) != 0;
	int e = errno;
	bad |= ferror(stdout) != 0;
	if (fclose(stdout) != 0 && !bad) {
		bad = 1;
		e = errno;
	}
	if (bad) {
		fprintf(stderr, "heapsnap: cannot write to standard output: %s\n",
			e ? strerror(e) : "write error");
		return 1;
	}
	return 0;
}
