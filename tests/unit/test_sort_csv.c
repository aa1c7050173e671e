/* test_sort_csv.c -- the shared --sort helper (cmdline.h: cl_sort_pick, cl_sort, cl_sort_rows)
 * and the CSV mode of the shared table printer (output.h: out_table_set_csv, raw cell
 * values, _bytes/_kb header suffixes). Expected orders and texts are written out by hand. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cmdline.h"
#include "output.h"

typedef struct {
	const char *name;
	long bytes, count;
} row;

static int by_bytes(const void *a, const void *b)
{
	const row *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int by_count(const void *a, const void *b)
{
	const row *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const row *)a)->name, ((const row *)b)->name);
}

static const cl_sort_key keys[] = { { "bytes", by_bytes }, { "count", by_count },
				    { "name", by_name }, { "asis", NULL } };

/* run cl_sort_pick with stderr captured into buf */
static int pick_err(const char *value, char *buf, size_t n)
{
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	CHECK(saved >= 0 && tmp);
	dup2(fileno(tmp), 2);
	int r = cl_sort_pick("t", value, keys, 4, 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t got = fread(buf, 1, n - 1, tmp);
	buf[got] = 0;
	fclose(tmp);
	return r;
}

static void names(const row *r, size_t n, char *out, size_t len)
{
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		strncat(out, r[i].name, len - strlen(out) - 1);
		if (i + 1 < n)
			strncat(out, ",", len - strlen(out) - 1);
	}
}

/* the table printed to a string */
static char *print(out_table *t)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	CHECK(f);
	CHECK_EQ(out_table_print(t, f), 0);
	fclose(f);
	return s;
}

int main(void)
{
	/* ---- picking a key */
	char err[512];
	CHECK_EQ(cl_sort_pick("t", NULL, keys, 4, 2), 2);      /* absent: the default */
	CHECK_EQ(cl_sort_pick("t", "bytes", keys, 4, 2), 0);
	CHECK_EQ(cl_sort_pick("t", "count", keys, 4, 0), 1);
	CHECK_EQ(pick_err("size", err, sizeof err), -1);
	CHECK_STR(err, "heapsnap t: invalid --sort 'size' (allowed: bytes, count, name, asis)\n");
	CHECK_EQ(pick_err("", err, sizeof err), -1);

	/* through the option loop: --sort is declared like any value option */
	cl_opts o = { .cmd = "t", .usage = "u\n", .help = "h\n", .pos_min = 1, .pos_max = 1,
		      .value_names = { "sort", NULL } };
	char *av[] = { "t", "f", "--sort=count", NULL };
	CHECK_EQ(cl_parse(&o, 3, av), -1);
	CHECK_EQ(cl_sort(&o, keys, 4, 0), 1);

	/* ---- sorting rows with two different keys */
	const row init[] = { { "c", 300, 1 }, { "a", 100, 7 }, { "d", 300, 2 }, { "b", 50, 9 },
			     { "e", 0, 7 } };
	row r[5];
	char got[64];
	memcpy(r, init, sizeof r);
	cl_sort_rows(r, 5, sizeof *r, &keys[0]);
	names(r, 5, got, sizeof got);
	CHECK_STR(got, "c,d,a,b,e");             /* bytes 300 300 100 50 0, ties by name */
	cl_sort_rows(r, 5, sizeof *r, &keys[1]);
	names(r, 5, got, sizeof got);
	CHECK_STR(got, "b,a,e,d,c");             /* count 9 7 7 2 1 */
	cl_sort_rows(r, 5, sizeof *r, &keys[2]);
	names(r, 5, got, sizeof got);
	CHECK_STR(got, "a,b,c,d,e");
	memcpy(r, init, sizeof r);
	cl_sort_rows(r, 5, sizeof *r, &keys[3]);  /* no comparison: left as produced */
	names(r, 5, got, sizeof got);
	CHECK_STR(got, "c,a,d,b,e");

	/* ---- the table printer: human text, then the same table as CSV */
	static const out_col cols[] = { { "SITE", OUT_LEFT }, { "BYTES", OUT_RIGHT },
					{ "RSS", OUT_RIGHT }, { "RETAINED BEFORE", OUT_RIGHT },
					{ "%", OUT_RIGHT }, { "COUNT", OUT_RIGHT } };
	out_table *t = out_table_new(cols, 6);
	CHECK(t);
	out_cell(t, "a, \"b\"");
	out_cell_size(t, 4096);
	out_cell_kb(t, 12);
	out_cell_sizef(t, 2048, "~");
	out_cell(t, "50.0");
	out_cell_raw(t, "~7", "7");
	out_cell(t, "x");
	out_cell_size(t, 10);
	out_cell_kb(t, -1);
	out_cell_size(t, 1536);
	out_cell(t, "0.5");
	out_cell_u64(t, 3);
	char *s = print(t);
	CHECK_STR(s, "SITE      BYTES       RSS  RETAINED BEFORE     %  COUNT\n"
		     "a, \"b\"  4.0 KiB  12.0 KiB         ~2.0 KiB  50.0     ~7\n"
		     "x          10 B         -          1.5 KiB   0.5      3\n");
	free(s);
	CHECK_EQ(out_table_csv(), 0);
	out_table_set_csv(1);
	CHECK_EQ(out_table_csv(), 1);
	s = print(t);
	CHECK_STR(s, "site,bytes,rss_kb,retained_before_bytes,percent,count\n"
		     "\"a, \"\"b\"\"\",4096,12,2048,50.0,7\n"
		     "x,10,,1536,0.5,3\n");
	free(s);
	out_table_set_csv(0);
	out_table_free(t);
	printf("ok\n");
	return 0;
}
