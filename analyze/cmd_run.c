/* cmd_run.c -- `heapsnap run [--sample BYTES] [--depth N] -- PROGRAM ARGS...`: runs a
 * program with the allocation tracking library (libheapsnap_preload.so, issue #3)
 * preloaded, so that captures of it know the call stack of every live allocation.
 *
 * The library is looked up next to the heapsnap executable (/proc/self/exe); the
 * environment variable HEAPSNAP_PRELOAD overrides the path. It is put first in
 * LD_PRELOAD (an existing LD_PRELOAD is kept after it: the tracker must see the calls
 * before any other preloaded allocator does, and finds that one as the real allocator).
 * --sample and --depth become HEAPSNAP_SAMPLE and HEAPSNAP_DEPTH for the library.
 *
 * heapsnap execs the program: it keeps heapsnap's pid (so `heapsnap run -- srv &` then
 * `heapsnap capture -p $!` works), and its exit status and any signal death reach the
 * caller unchanged. If it cannot be started: 127 (not found) or 126 (not executable),
 * as a shell reports; usage errors: 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

static void run_usage(FILE *f)
{
	fprintf(f, "usage: heapsnap run [--sample BYTES] [--depth N] -- PROGRAM [ARGS...]\n"
		   "  --sample BYTES  Poisson-sample allocations by bytes (mean interval BYTES);\n"
		   "                  allocations of BYTES or more are always recorded\n"
		   "  --depth N       frames kept per stack (1..256, default 64)\n"
		   "environment: HEAPSNAP_PRELOAD=PATH overrides the tracking library's path\n"
		   "\n"
		   "examples:\n"
		   "  heapsnap run -- ./myserver --port 8080\n"
		   "  heapsnap run --sample 524288 -- ./myserver   # production: sampled\n");
}

static int parse_u64(const char *s, unsigned long long *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* the tracking library: $HEAPSNAP_PRELOAD, else next to this executable */
static int find_library(char *out, size_t len)
{
	const char *env = getenv("HEAPSNAP_PRELOAD");
	if (env && *env) {
		snprintf(out, len, "%s", env);
	} else {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n <= 0)
			return -1;
		exe[n] = 0;
		snprintf(out, len, "%s/libheapsnap_preload.so", dirname(exe));
	}
	return access(out, R_OK) == 0 ? 0 : -1;
}

int cmd_run(int argc, char **argv)
{
	unsigned long long sample = 0, depth = 0;
	int have_sample = 0, have_depth = 0, i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			run_usage(stdout);
			return HS_EXIT_OK;
		}
		const char *val = NULL;
		if (!strcmp(a, "--sample") || !strcmp(a, "--depth")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "heapsnap run: option '%s' needs a value\n", a);
				return HS_EXIT_USAGE;
			}
			val = argv[++i];
		} else if (!strncmp(a, "--sample=", 9) || !strncmp(a, "--depth=", 8)) {
			val = strchr(a, '=') + 1;
		} else if (a[0] == '-') {
			fprintf(stderr, "heapsnap run: unknown option '%s'\n", a);
			run_usage(stderr);
			return HS_EXIT_USAGE;
		} else {
			break;                       /* the program */
		}
		if (!strncmp(a, "--sample", 8)) {
			if (parse_u64(val, &sample)) {
				fprintf(stderr, "heapsnap run: bad --sample '%s': expected bytes\n", val);
				return HS_EXIT_USAGE;
			}
			have_sample = 1;
		} else {
			if (parse_u64(val, &depth) || depth < 1 || depth > 256) {
				fprintf(stderr, "heapsnap run: bad --depth '%s': expected 1..256\n", val);
				return HS_EXIT_USAGE;
			}
			have_depth = 1;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "heapsnap run: no program given\n");
		run_usage(stderr);
		return HS_EXIT_USAGE;
	}
	char lib[PATH_MAX];
	if (find_library(lib, sizeof lib)) {
		fprintf(stderr, "heapsnap run: cannot find the tracking library '%s'\n", lib);
		return HS_EXIT_FAIL;
	}
	const char *old = getenv("LD_PRELOAD");
	size_t n = strlen(lib) + (old ? strlen(old) : 0) + 2;
	char *pre = malloc(n);
	if (!pre) {
		fprintf(stderr, "heapsnap run: out of memory\n");
		return HS_EXIT_FAIL;
	}
	snprintf(pre, n, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
	char num[32];
	if (setenv("LD_PRELOAD", pre, 1))
		goto env_fail;
	free(pre);
	if (have_sample) {
		snprintf(num, sizeof num, "%llu", sample);
		if (setenv("HEAPSNAP_SAMPLE", num, 1))
			goto env_fail;
	}
	if (have_depth) {
		snprintf(num, sizeof num, "%llu", depth);
		if (setenv("HEAPSNAP_DEPTH", num, 1))
			goto env_fail;
	}
	fflush(NULL);
	execvp(argv[i], argv + i);
	int e = errno;
	fprintf(stderr, "heapsnap run: cannot run '%s': %s\n", argv[i], strerror(e));
	return e == ENOENT ? 127 : 126;
env_fail:
	fprintf(stderr, "heapsnap run: cannot set the environment: %s\n", strerror(errno));
	return HS_EXIT_FAIL;
}
