/* test_analyze_output.c -- the analyzer's output layer: human sizes, terminal-safe text,
 * the JSON writer's escaping and layout, CSV quoting, ISO times, aligned tables, and the
 * shared option parsing. Everything is written to memory streams and compared exactly.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "check.h"
#include "output.h"

/* run fn writing to a memory stream, return what it wrote (static buffer) */
static char got[8192];
#define CAPTURE(f, body) do { \
	char *_buf = NULL; size_t _len = 0; \
	FILE *f = open_memstream(&_buf, &_len); CHECK(f); \
	body; \
	fclose(f); \
	snprintf(got, sizeof got, "%s", _buf); free(_buf); } while (0)

static void test_sizes(void)
{
	char b[OUT_SIZE_LEN];
	CHECK_STR(out_size(b, 0), "0 B");
	CHECK_STR(out_size(b, 512), "512 B");
	CHECK_STR(out_size(b, 1023), "1023 B");
	CHECK_STR(out_size(b, 1024), "1.0 KiB");
	CHECK_STR(out_size(b, 4096), "4.0 KiB");
	CHECK_STR(out_size(b, 1536), "1.5 KiB");
	CHECK_STR(out_size(b, 12897485), "12.3 MiB");
	CHECK_STR(out_size(b, 1048575), "1.0 MiB");        /* not "1024.0 KiB" */
	CHECK_STR(out_size(b, 1048576ull * 1023), "1023.0 MiB");
	CHECK_STR(out_size(b, 3ull << 30), "3.0 GiB");
	CHECK_STR(out_size(b, UINT64_MAX), "16.0 EiB");
	CHECK_STR(out_size_kb(b, -1), "-");
	CHECK_STR(out_size_kb(b, 0), "0 B");
	CHECK_STR(out_size_kb(b, 132), "132.0 KiB");
	CHECK_STR(out_size_kb(b, INT64_MAX), "16.0 EiB");   /* clamped, no overflow */
}

static void test_clean(void)
{
	char b[64];
	CHECK_STR(out_clean(b, sizeof b, "plain"), "plain");
	CHECK_STR(out_clean(b, sizeof b, NULL), "");
	CHECK_STR(out_clean(b, sizeof b, "a\x1b[31mb"), "a\\x1b[31mb");
	CHECK_STR(out_clean(b, sizeof b, "new\nline\ttab"), "new\\x0aline\\x09tab");
	CHECK_STR(out_clean(b, sizeof b, "bad\xff\xfe"), "bad\\xff\\xfe");
	CHECK_STR(out_clean(b, sizeof b, "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80"), "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80");
	CHECK_STR(out_clean(b, sizeof b, "c1\xc2\x85"), "c1\\xc2\\x85");      /* U+0085 NEL */
	CHECK_STR(out_clean(b, sizeof b, "over\xc0\xaflong"), "over\\xc0\\xaflong");
	CHECK_STR(out_clean(b, sizeof b, "surr\xed\xa0\x80"), "surr\\xed\\xa0\\x80");
	CHECK_STR(out_clean(b, sizeof b, "cut\xe2\x82"), "cut\\xe2\\x82");
	CHECK_STR(out_clean(b, sizeof b, "del\x7f"), "del\\x7f");
	/* cut to the buffer, never in the middle of an escape or a character */
	char s[8];
	CHECK_STR(out_clean(s, sizeof s, "abcdefghij"), "abcdefg");
	CHECK_STR(out_clean(s, sizeof s, "abcde\x01"), "abcde");
	CHECK_STR(out_clean(s, sizeof s, "abcdef\xc3\xbc"), "abcdef");
}

static void test_time(void)
{
	char b[OUT_TIME_LEN];
	CHECK_STR(out_time_iso(b, 0, 0), "1970-01-01T00:00:00Z");
	CHECK_STR(out_time_iso(b, 1714566896123456LL, 0), "2024-05-01T12:34:56Z");
	CHECK_STR(out_time_iso(b, 1714566896123456LL, 1), "2024-05-01T12:34:56.123456Z");
	CHECK_STR(out_time_iso(b, 1000001, 1), "1970-01-01T00:00:01.000001Z");
	CHECK_STR(out_time_iso(b, -1, 1), "?");
	CHECK_STR(out_time_iso(b, INT64_MAX, 1), "?");
}

static void test_json_strings(void)
{
	CAPTURE(f, out_json_string(f, "plain", 5));
	CHECK_STR(got, "\"plain\"");
	CAPTURE(f, out_json_string(f, "q\"b\\s/", 6));
	CHECK_STR(got, "\"q\\\"b\\\\s/\"");
	CAPTURE(f, out_json_string(f, "\n\r\t\b\f\x01\x1f\x7f", 8));
	CHECK_STR(got, "\"\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\"");
	/* safe to embed in HTML: no < > & and no JS line separators */
	CAPTURE(f, out_json_string(f, "<script>\"x\"</script>&", 21));
	CHECK_STR(got, "\"\\u003cscript\\u003e\\\"x\\\"\\u003c/script\\u003e\\u0026\"");
	CAPTURE(f, out_json_string(f, "\xe2\x80\xa8\xe2\x80\xa9", 6));
	CHECK_STR(got, "\"\\u2028\\u2029\"");
	/* invalid UTF-8: one U+FFFD per bad byte; valid multibyte kept */
	CAPTURE(f, out_json_string(f, "a\xff" "b\xc3\xbc\xc3", 6));
	CHECK_STR(got, "\"a\\ufffdb\xc3\xbc\\ufffd\"");
	CAPTURE(f, out_json_string(f, "\xf4\x90\x80\x80", 4));           /* above U+10FFFF */
	CHECK_STR(got, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	/* embedded NUL when a length is given */
	CAPTURE(f, out_json_string(f, "a\0b", 3));
	CHECK_STR(got, "\"a\\u0000b\"");
}

static void test_json_layout(void)
{
	CAPTURE(f, {
		out_json j;
		out_json_init(&j, f);
		out_json_obj(&j, NULL);
		out_json_str(&j, "s", "x");
		out_json_str(&j, "n", NULL);
		out_json_i64(&j, "i", -5);
		out_json_u64(&j, "u", UINT64_MAX);
		out_json_bool(&j, "t", 1);
		out_json_null(&j, "z");
		out_json_arr(&j, "empty");
		out_json_end(&j);
		out_json_arr(&j, "rows");
		out_json_obj_line(&j, NULL);
		out_json_i64(&j, "a", 1);
		out_json_arr(&j, "in");   /* inside a one-line container: stays on the line */
		out_json_i64(&j, NULL, 2);
		out_json_i64(&j, NULL, 3);
		out_json_end(&j);
		out_json_end(&j);
		out_json_obj_line(&j, NULL);
		out_json_end(&j);
		out_json_end(&j);
		out_json_obj(&j, "o");
		out_json_strn(&j, "k\"ey", "ab", 1);
		out_json_finish(&j);   /* closes what is open */
	});
	CHECK_STR(got,
		  "{\n"
		  "  \"s\": \"x\",\n"
		  "  \"n\": null,\n"
		  "  \"i\": -5,\n"
		  "  \"u\": 18446744073709551615,\n"
		  "  \"t\": true,\n"
		  "  \"z\": null,\n"
		  "  \"empty\": [],\n"
		  "  \"rows\": [\n"
		  "    {\"a\": 1, \"in\": [2, 3]},\n"
		  "    {}\n"
		  "  ],\n"
		  "  \"o\": {\n"
		  "    \"k\\\"ey\": \"a\"\n"
		  "  }\n"
		  "}\n");
}

static void test_csv(void)
{
	CAPTURE(f, {
		out_csv c;
		out_csv_init(&c, f);
		out_csv_str(&c, "plain");
		out_csv_str(&c, "a,b");
		out_csv_str(&c, "say \"hi\"");
		out_csv_str(&c, NULL);
		out_csv_str(&c, " lead");
		out_csv_str(&c, "two\nlines\x1b");
		out_csv_str(&c, "bad\xff");
		out_csv_i64(&c, -7);
		out_csv_hex(&c, 0x7f00);
		out_csv_end(&c);
		out_csv_str(&c, "x");
		out_csv_end(&c);
	});
	CHECK_STR(got, "plain,\"a,b\",\"say \"\"hi\"\"\",,\" lead\",two\\x0alines\\x1b,bad\xef\xbf\xbd,-7,0x7f00\nx\n");
}

static void test_table(void)
{
	static const out_col cols[] = { { "NAME", OUT_LEFT }, { "SIZE", OUT_RIGHT }, { "NOTE", OUT_LEFT } };
	CAPTURE(f, {
		out_table *t = out_table_new(cols, 3);
		CHECK(t);
		out_cell(t, "a");
		out_cell_size(t, 4096);
		out_cell(t, "x");
		out_cell(t, "l\xc3\xbcnger");     /* 6 characters, 7 bytes: aligned by characters */
		out_cell_kb(t, -1);
		out_cell(t, "");                  /* empty last cells: no trailing blanks */
		out_cellf(t, "%s", "esc\x1b");
		out_cell_u64(t, 12);
		out_cell(t, "");
		CHECK_EQ(out_table_print(t, f), 0);
		out_table_free(t);
	});
	CHECK_STR(got,
		  "NAME        SIZE  NOTE\n"
		  "a        4.0 KiB  x\n"
		  "l\xc3\xbcnger         -\n"
		  "esc\\x1b       12\n");
}

static void test_args(void)
{
	char *argv[] = { "cmd", "--sort", "rss", "--limit=5", "--sorted", "--limit", NULL };
	int argc = 6, i = 1;
	const char *v = NULL;
	CHECK_EQ(arg_value(argc, argv, &i, "sort", &v), 1);
	CHECK_STR(v, "rss");
	CHECK_EQ(i, 2);
	i = 3;
	CHECK_EQ(arg_value(argc, argv, &i, "limit", &v), 1);
	CHECK_STR(v, "5");
	CHECK_EQ(i, 3);
	i = 4;
	CHECK_EQ(arg_value(argc, argv, &i, "sort", &v), 0);  /* --sorted is not --sort */
	i = 5;
	CHECK_EQ(arg_value(argc, argv, &i, "limit", &v), -1); /* no value */
	int64_t n;
	CHECK_EQ(arg_i64("42", 0, 100, &n), 0);
	CHECK_EQ(n, 42);
	CHECK_EQ(arg_i64("101", 0, 100, &n), -1);
	CHECK_EQ(arg_i64("4x", 0, 100, &n), -1);
	CHECK_EQ(arg_i64("", 0, 100, &n), -1);
	CHECK_EQ(arg_i64("-1", 0, 100, &n), -1);
	CHECK_EQ(arg_i64("99999999999999999999", 0, INT64_MAX, &n), -1);
}

int main(void)
{
	(void)check_failures;
	test_sizes();
	test_clean();
	test_time();
	test_json_strings();
	test_json_layout();
	test_csv();
	test_table();
	test_args();
	printf("test_analyze_output: ok\n");
	return 0;
}
