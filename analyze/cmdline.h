/* cmdline.h -- the option loop shared by the analysis commands sql, threads, libs, diff
 * and report: positional arguments (snapshot files, a query), --json, --csv, -h/--help,
 * and any "--name VALUE" options the command declares; and the --sort KEY helper of
 * every command that ranks rows. Errors are one line on stderr,
 * help goes to stdout.
 */
#ifndef HEAPSNAP_CMDLINE_H
#define HEAPSNAP_CMDLINE_H

#include <stddef.h>

#define CL_MAX_POS 3
#define CL_MAX_VALUES 6

typedef struct {
	/* set by the command */
	const char *cmd;                  /* "libs" */
	const char *usage;                /* "usage: heapsnap libs FILE [--json]\n" */
	const char *help;                 /* the rest of -h: options, meaning, examples */
	int pos_min, pos_max;             /* positional arguments accepted */
	const char *pos_what;             /* "no snapshot file given" when too few */
	int allow_json, allow_csv;
	const char *value_names[CL_MAX_VALUES]; /* "limit", "by", ... (NULL-terminated) */
	const char *flag_names[CL_MAX_VALUES];  /* "all", "contents", ... (NULL-terminated) */
	/* set by cl_parse */
	const char *pos[CL_MAX_POS];
	int npos;
	int json, csv;
	const char *values[CL_MAX_VALUES];  /* NULL when not given */
	int flags[CL_MAX_VALUES];           /* 1 when --NAME was given */
} cl_opts;

/* -1: go on; otherwise the exit code to return (0 after -h, 2 on a usage error) */
int cl_parse(cl_opts *o, int argc, char **argv);

/* the value of a declared option, NULL if not given */
const char *cl_value(const cl_opts *o, const char *name);

/* 1 if the declared flag --name was given */
int cl_flag(const cl_opts *o, const char *name);

/* --limit as a number (dflt when absent); -1 and a message if invalid */
int cl_limit(const cl_opts *o, long long dflt, long long *out);

/* ---- --sort KEY, shared by every command that ranks rows ----
 * A command lists the keys it accepts, each with the qsort comparison of its order (the
 * natural direction: sizes and counts largest first, names ascending). cl_sort_pick
 * returns the index of the key named by value (dflt when value is NULL), or -1 after
 * "heapsnap CMD: invalid --sort 'x' (allowed: bytes, count, name)": exit 2. */
typedef struct {
	const char *name;                             /* "bytes" */
	int (*cmp)(const void *a, const void *b);     /* qsort order; NULL: the producer's */
} cl_sort_key;

int cl_sort_pick(const char *cmd, const char *value, const cl_sort_key *keys, int nkeys,
		 int dflt);
/* the same for the declared option "sort" of o */
int cl_sort(const cl_opts *o, const cl_sort_key *keys, int nkeys, int dflt);
/* sort n rows of size bytes by keys[k] (nothing when its cmp is NULL) */
void cl_sort_rows(void *rows, size_t n, size_t size, const cl_sort_key *key);

/* snap_open with the one-line message; NULL and *rc set to the exit code on failure */
struct snap;
struct snap *cl_open(const char *cmd, const char *path, int *rc);

#endif
