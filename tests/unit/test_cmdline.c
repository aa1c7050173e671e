/* test_cmdline.c -- the shared option loop (cmdline.c), frame naming (stackfmt.c) and the
 * progress bar's silence when stderr is not a terminal (progress.c). */
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "cmdline.h"
#include "progress.h"
#include "stackfmt.h"

static cl_opts opts(void)
{
	cl_opts o = {
		.cmd = "t", .usage = "usage: t\n", .help = "help\n", .pos_min = 1, .pos_max = 2,
		.allow_json = 1, .allow_csv = 1, .value_names = { "limit", "by", NULL },
	};
	return o;
}

int main(void)
{
	cl_opts o = opts();
	char *a1[] = { "t", "f.hsnap", "--json", "--limit", "5", "--by=site", "g", NULL };
	CHECK_EQ(cl_parse(&o, 7, a1), -1);
	CHECK_EQ(o.npos, 2);
	CHECK_STR(o.pos[0], "f.hsnap");
	CHECK_STR(o.pos[1], "g");
	CHECK_EQ(o.json, 1);
	CHECK_STR(cl_value(&o, "by"), "site");
	long long lim;
	CHECK_EQ(cl_limit(&o, -1, &lim), 0);
	CHECK_EQ(lim, 5);

	o = opts();
	char *a2[] = { "t", "f", "--bogus", NULL };
	CHECK_EQ(cl_parse(&o, 3, a2), 2);
	o = opts();
	char *a3[] = { "t", "--json", NULL };
	CHECK_EQ(cl_parse(&o, 2, a3), 2);                  /* no file */
	o = opts();
	char *a4[] = { "t", "f", "--json", "--csv", NULL };
	CHECK_EQ(cl_parse(&o, 4, a4), 2);
	o = opts();
	char *a5[] = { "t", "a", "b", "c", NULL };
	CHECK_EQ(cl_parse(&o, 4, a5), 2);                  /* too many */
	o = opts();
	char *a6[] = { "t", "f", "--limit", NULL };
	CHECK_EQ(cl_parse(&o, 3, a6), 2);                  /* no value */
	o = opts();
	char *a7[] = { "t", "f", "--limit", "x1", NULL };
	CHECK_EQ(cl_parse(&o, 4, a7), -1);
	CHECK_EQ(cl_limit(&o, -1, &lim), -1);
	o = opts();
	char *a8[] = { "t", "--", "--json", NULL };
	CHECK_EQ(cl_parse(&o, 3, a8), -1);
	CHECK_STR(o.pos[0], "--json");
	CHECK_EQ(o.json, 0);

	char buf[256];
	stk_frame f = { .module_id = 1, .module = "/usr/lib/libfoo.so.1", .rel_pc = 0x1234,
			.function = "do_it", .func_offset = 0x1a, .line = -1 };
	CHECK_STR(stk_name(&f, buf, sizeof buf), "do_it+0x1a (libfoo.so.1)");
	f.function = NULL;
	CHECK_STR(stk_name(&f, buf, sizeof buf), "libfoo.so.1+0x1234");
	f.module = NULL;
	CHECK_STR(stk_name(&f, buf, sizeof buf), "0x1234");
	CHECK_STR(stk_base("/a/b/c.so"), "c.so");
	CHECK_STR(stk_base("plain"), "plain");

	/* stderr redirected to a file: nothing is drawn */
	FILE *tmp = tmpfile();
	CHECK(tmp);
	int saved = dup(2);
	CHECK(dup2(fileno(tmp), 2) == 2);
	prog p;
	prog_start(&p, "work", 1000);
	for (uint64_t i = 0; i < 1000000; i++)
		prog_step(&p, i % 1000);
	prog_done(&p);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	CHECK_EQ(p.active, 0);
	CHECK_EQ(lseek(fileno(tmp), 0, SEEK_END), 0);
	fclose(tmp);
	puts("test_cmdline: ok");
	return 0;
}
