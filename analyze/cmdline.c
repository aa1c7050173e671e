/* cmdline.c -- the shared option loop of sql, threads, libs, diff, report, and the --sort
 * helper of the commands that rank rows (cmdline.h). */
#include "cmdline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "output.h"
#include "snapshot.h"

int cl_parse(cl_opts *o, int argc, char **argv)
{
	int only_args = 0;
	o->npos = 0;
	o->json = o->csv = 0;
	for (int k = 0; k < CL_MAX_VALUES; k++) {
		o->values[k] = NULL;
		o->flags[k] = 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_args || a[0] != '-' || !a[1]) {
			if (o->npos >= o->pos_max || o->npos >= CL_MAX_POS) {
				out_err(o->cmd, "unexpected argument '%s' (see 'heapsnap help %s')", a, o->cmd);
				return HS_EXIT_USAGE;
			}
			o->pos[o->npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_args = 1;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(o->usage, stdout);
			fputs(o->help, stdout);
			return HS_EXIT_OK;
		}
		if (o->allow_json && !strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if (o->allow_csv && !strcmp(a, "--csv")) {
			o->csv = 1;
			continue;
		}
		int matched = 0;
		for (int k = 0; k < CL_MAX_VALUES && o->flag_names[k] && !matched; k++)
			if (a[1] == '-' && !strcmp(a + 2, o->flag_names[k]))
				matched = o->flags[k] = 1;
		for (int k = 0; k < CL_MAX_VALUES && o->value_names[k] && !matched; k++) {
			int r = arg_value(argc, argv, &i, o->value_names[k], &o->values[k]);
			if (r < 0) {
				out_err(o->cmd, "option '%s' needs a value", a);
				return HS_EXIT_USAGE;
			}
			if (r) {
				matched = 1;
				break;
			}
		}
		if (!matched) {
			out_err(o->cmd, "unknown option '%s' (see 'heapsnap help %s')", a, o->cmd);
			return HS_EXIT_USAGE;
		}
	}
	if (o->json && o->csv) {
		out_err(o->cmd, "--json and --csv cannot be combined");
		return HS_EXIT_USAGE;
	}
	if (o->npos < o->pos_min) {
		out_err(o->cmd, "%s", o->pos_what ? o->pos_what : "no snapshot file given");
		fputs(o->usage, stderr);
		return HS_EXIT_USAGE;
	}
	return -1;
}

int cl_flag(const cl_opts *o, const char *name)
{
	for (int k = 0; k < CL_MAX_VALUES && o->flag_names[k]; k++)
		if (!strcmp(o->flag_names[k], name))
			return o->flags[k];
	return 0;
}

const char *cl_value(const cl_opts *o, const char *name)
{
	for (int k = 0; k < CL_MAX_VALUES && o->value_names[k]; k++)
		if (!strcmp(o->value_names[k], name))
			return o->values[k];
	return NULL;
}

int cl_limit(const cl_opts *o, long long dflt, long long *out)
{
	const char *s = cl_value(o, "limit");
	int64_t v;
	*out = dflt;
	if (!s)
		return 0;
	if (arg_i64(s, 0, INT64_MAX, &v)) {
		out_err(o->cmd, "invalid --limit '%s'", s);
		return -1;
	}
	*out = v;
	return 0;
}

int cl_sort_pick(const char *cmd, const char *value, const cl_sort_key *keys, int nkeys,
		 int dflt)
{
	if (!value)
		return dflt;
	for (int k = 0; k < nkeys; k++)
		if (!strcmp(value, keys[k].name))
			return k;
	char list[512];
	size_t o = 0;
	list[0] = 0;
	for (int k = 0; k < nkeys && o < sizeof list; k++)
		o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "",
				      keys[k].name);
	out_err(cmd, "invalid --sort '%s' (allowed: %s)", value, list);
	return -1;
}

int cl_sort(const cl_opts *o, const cl_sort_key *keys, int nkeys, int dflt)
{
	return cl_sort_pick(o->cmd, cl_value(o, "sort"), keys, nkeys, dflt);
}

void cl_sort_rows(void *rows, size_t n, size_t size, const cl_sort_key *key)
{
	if (key && key->cmp && n > 1)
		qsort(rows, n, size, key->cmp);
}

snap *cl_open(const char *cmd, const char *path, int *rc)
{
	char err[512];
	snap *s;
	int st = snap_open(path, &s, err, sizeof err);
	if (st != SNAP_OK) {
		out_err(cmd, "%s", err);
		*rc = snap_status_exit(st);
		return NULL;
	}
	*rc = HS_EXIT_OK;
	return s;
}
