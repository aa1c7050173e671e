/* main.c -- the heapsnap executable: the command table and the runner.
 *
 * Adding a command (see commands.h): write analyze/cmd_NAME.c with cmd_NAME(), which
 * parses its own options and answers -h/--help with its usage and examples; add its
 * row below; add a test and docs/NAME.md.
 *
 * Exit codes: 0 success, 1 analysis or capture error, 2 usage error or bad input
 * (commands.h). Whatever a command returns, a failed write to stdout turns a success
 * into 1: main flushes and checks stdout once, at the end.
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "commands.h"
#include "output.h"
#include "schema_sql.h"

#ifndef HEAPSNAP_VERSION
#define HEAPSNAP_VERSION "unknown"
#endif

typedef struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;     /* one line, for the command list */
} command;

static const command commands[] = {
	{ "capture", cmd_capture, "capture a live process into a snapshot file" },
	{ "run", cmd_run, "start a program with allocation tracking preloaded" },
	{ "summary", cmd_summary, "overview of a snapshot: process, memory, heap, threads" },
	{ "regions", cmd_regions, "every mapping of the address space with its memory figures" },
	{ "top", cmd_top, "live heap per allocation site (needs heapsnap run)" },
	{ "stacks", cmd_stacks, "live heap per call stack; --folded for flame graphs" },
	{ "threads", cmd_threads, "every thread at the capture with its backtrace" },
	{ "sql", cmd_sql, "run one read-only SQL query on a snapshot" },
	{ "libs", cmd_libs, "memory charged to each module: segments, heap, and what is not attributed" },
	{ "diff", cmd_diff, "what changed between two snapshots, by region, module or site" },
	{ "report", cmd_report, "write one self-contained HTML report of a snapshot" },
	{ "leaks", cmd_leaks, "unreachable heap with valgrind's categories, and the leak roots" },
	{ "dominators", cmd_dominators, "the dominator tree: what each chunk keeps alive (retained size)" },
	{ "retained", cmd_retained, "exact retained bytes per allocation site or C++ class" },
	{ "path", cmd_path, "why is this chunk alive: the shortest path from a root" },
	{ "histogram", cmd_histogram, "in-use chunks and bytes per C++ class or chunk size" },
	{ "show", cmd_show, "one chunk: state, size, class, site, referrers, referents, bytes" },
};

static void usage(FILE *f)
{
	fputs("usage: heapsnap <command> [<args>]\n"
	      "\n"
	      "Capture the memory of a running process into one snapshot file, then analyze\n"
	      "the file offline.\n"
	      "\n"
	      "commands:\n", f);
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
	fputs("\n"
	      "'heapsnap help <command>' or 'heapsnap <command> -h' shows its options and examples.\n"
	      "'heapsnap --version' prints the version.\n"
	      "\n"
	      "example:\n"
	      "  heapsnap capture -p $(pidof myserver) -o s.hsnap && heapsnap summary s.hsnap\n"
	      "\n"
	      "exit status: 0 success, 1 analysis or capture error, 2 usage error or bad input\n"
	      "(unknown option, missing, foreign, truncated or newer file, no such process)\n", f);
}

static const command *find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int run(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return HS_EXIT_USAGE;
	}
	const char *a = argv[1];
	if (!strcmp(a, "--version") || !strcmp(a, "-V") || !strcmp(a, "version")) {
		printf("heapsnap %s (snapshot format %d, SQLite %s)\n", HEAPSNAP_VERSION,
		       HS_FORMAT_VERSION, sqlite3_libversion());
		return HS_EXIT_OK;
	}
	if (!strcmp(a, "help") || !strcmp(a, "--help") || !strcmp(a, "-h")) {
		if (argc < 3) {
			usage(stdout);
			return HS_EXIT_OK;
		}
		const command *c = find(argv[2]);
		if (!c) {
			out_err(NULL, "unknown command '%s' (see 'heapsnap help')", argv[2]);
			return HS_EXIT_USAGE;
		}
		char *hargv[] = { (char *)c->name, (char *)"--help", NULL };
		return c->fn(2, hargv);
	}
	const command *c = find(a);
	if (!c) {
		if (a[0] == '-')
			out_err(NULL, "unknown option '%s'", a);
		else
			out_err(NULL, "unknown command '%s'", a);
		usage(stderr);
		return HS_EXIT_USAGE;
	}
	return c->fn(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	int rc = run(argc, argv);
	if (out_close_stdout() && rc == HS_EXIT_OK)
		rc = HS_EXIT_FAIL;
	return rc;
}
