/* cmd_capture.c -- `heapsnap capture -p PID [-o FILE]`: capture a live process into a
 * snapshot file. The capture itself is capture/capture.c; this file owns the command
 * line, the default file name, and the clean-up of a half-written file on SIGINT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "ptrscan.h"
#include "commands.h"
#include "snapwrite.h"

static const char capture_usage[] =
	"usage: heapsnap capture -p PID [-o FILE] [options]\n"
	"\n"
	"Freeze every thread of PID for a moment, copy its memory, resume it, then walk its\n"
	"glibc heap, unwind its threads and write one snapshot file (mode 0600).\n"
	"\n"
	"  -p, --pid PID            the process to capture (required)\n"
	"  -o, --output FILE        snapshot file (default heapsnap-COMM-PID-UTCTIME.hsnap)\n"
	"      --attempts N         freezes to try for a consistent heap (default 5)\n"
	"      --thread-budget-ms N time a thread may run to leave the allocator (default 50)\n"
	"      --no-debug-symbols   locate malloc's state by heuristics even if libc debug\n"
	"                           symbols are installed\n"
	"      --no-safepoints      copy wherever the threads are (diagnostics only)\n"
	"      --no-unwind          skip thread backtraces\n"
	"      --no-graph           skip the pointer graph (edges, roots, C++ types)\n"
	"      --contents           also store the bytes of every in-use chunk (off by\n"
	"                           default: snapshots then hold no secrets of the heap)\n"
	"  -q, --quiet              print nothing on success\n"
	"  -v, --verbose            print where the time went (stderr)\n"
	"\n"
	"Example:\n"
	"  heapsnap capture -p $(pidof myserver) -o before.hsnap\n"
	"\n"
	"Note: like any ptrace attach (gdb too), the freeze makes blocking calls such as\n"
	"epoll_wait or sigtimedwait in the target return EINTR once; well-written services\n"
	"retry them.\n";

static void on_signal_while_writing(int sig)
{
	const char *tmp = sw_temp_path();
	if (tmp)
		unlink(tmp);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* heapsnap-<comm>-<pid>-<UTC time>.hsnap, with comm reduced to file-name-safe bytes */
static void default_name(char *out, size_t n, const hs_capture *c)
{
	char comm[sizeof c->proc.comm];
	size_t j = 0;
	for (size_t i = 0; c->proc.comm[i] && j + 1 < sizeof comm; i++) {
		unsigned char ch = (unsigned char)c->proc.comm[i];
		comm[j++] = (ch >= 0x80 || ch <= ' ' || ch == '/' || ch == '\\' || ch == '*' ||
			     ch == '?' || ch == '"' || ch == '\'' || ch == '<' || ch == '>' ||
			     ch == '|' || ch == ':' || ch == '$' || ch == '`') ? '_' : (char)ch;
	}
	comm[j] = 0;
	if (!j)
		strcpy(comm, "proc");
	time_t t = (time_t)(c->proc.capture_time_us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char ts[32];
	strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(out, n, "heapsnap-%s-%d-%s.hsnap", comm, c->proc.pid, ts);
}

static int parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int cmd_capture(int argc, char **argv)
{
	enum { O_ATTEMPTS = 256, O_BUDGET, O_NODEBUG, O_NOSP, O_NOUNWIND, O_NOGRAPH, O_CONTENTS };
	static const struct option opts[] = {
		{ "pid", required_argument, 0, 'p' },
		{ "output", required_argument, 0, 'o' },
		{ "attempts", required_argument, 0, O_ATTEMPTS },
		{ "thread-budget-ms", required_argument, 0, O_BUDGET },
		{ "no-debug-symbols", no_argument, 0, O_NODEBUG },
		{ "no-safepoints", no_argument, 0, O_NOSP },
		{ "no-unwind", no_argument, 0, O_NOUNWIND },
		{ "no-graph", no_argument, 0, O_NOGRAPH },
		{ "contents", no_argument, 0, O_CONTENTS },
		{ "quiet", no_argument, 0, 'q' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	cap_options o;
	const char *out = NULL;
	int quiet = 0, verbose = 0, opt;
	long v;

	cap_options_default(&o);
	o.pid = 0;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "p:o:qvh", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (parse_num(optarg, 1, 0x7fffffff, &v)) {
				fprintf(stderr, "heapsnap capture: invalid pid '%s'\n", optarg);
				return HS_EXIT_USAGE;
			}
			o.pid = (pid_t)v;
			break;
		case 'o': out = optarg; break;
		case O_ATTEMPTS:
			if (parse_num(optarg, 1, 1000, &v)) {
				fprintf(stderr, "heapsnap capture: invalid --attempts '%s'\n", optarg);
				return HS_EXIT_USAGE;
			}
			o.max_attempts = (int)v;
			break;
		case O_BUDGET:
			if (parse_num(optarg, 1, 10000, &v)) {
				fprintf(stderr, "heapsnap capture: invalid --thread-budget-ms '%s'\n", optarg);
				return HS_EXIT_USAGE;
			}
			o.thread_budget_ns = (uint64_t)v * 1000000ull;
			break;
		case O_NODEBUG: o.no_debug = 1; break;
		case O_NOSP: o.no_safepoints = 1; break;
		case O_NOUNWIND: o.no_unwind = 1; break;
		case O_NOGRAPH: o.no_graph = 1; break;
		case O_CONTENTS: o.contents = 1; break;
		case 'q': quiet = 1; break;
		case 'v': verbose = 1; break;
		case 'h': fputs(capture_usage, stdout); return HS_EXIT_OK;
		default:
			fprintf(stderr, "heapsnap capture: unknown option '%s'\n", argv[optind - 1]);
			fputs(capture_usage, stderr);
			return HS_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "heapsnap capture: unexpected argument '%s'\n", argv[optind]);
		return HS_EXIT_USAGE;
	}
	if (!o.pid) {
		fprintf(stderr, "heapsnap capture: -p PID is required\n");
		return HS_EXIT_USAGE;
	}
	if (o.contents && o.no_graph) {
		fprintf(stderr, "heapsnap capture: --contents needs the pointer graph scan; drop --no-graph\n");
		return HS_EXIT_USAGE;
	}
	if (o.pid == getpid()) {
		fprintf(stderr, "heapsnap capture: cannot capture itself (pid %d)\n", (int)o.pid);
		return HS_EXIT_USAGE;
	}

	hs_capture c;
	char err[512] = "";
	hs_capture_init(&c);
	cap_timings tm;
	int rc = cap_run(&o, &c, &tm, err, sizeof err);
	if (rc) {
		fprintf(stderr, "heapsnap capture: %s\n", err[0] ? err : strerror(-rc));
		hs_capture_free(&c);
		return (rc == -ESRCH || rc == -EPERM) ? HS_EXIT_USAGE : HS_EXIT_FAIL;
	}

	char name[512];
	if (!out) {
		default_name(name, sizeof name, &c);
		out = name;
	}
	/* the target runs again; from here an interrupt only has to remove our temp file */
	signal(SIGINT, on_signal_while_writing);
	signal(SIGTERM, on_signal_while_writing);
	signal(SIGHUP, on_signal_while_writing);
	struct timespec w0, w1;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	rc = sw_write(&c, out, err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &w1);
	if (verbose)
		fprintf(stderr, "heapsnap capture: facts %llu us, frozen windows + heap walks %llu us "
			"(pause %llu us, %d attempts), smaps/modules %llu us, unwind %llu us, write %llu us\n",
			(unsigned long long)tm.facts_us, (unsigned long long)tm.window_us,
			(unsigned long long)c.freeze.pause_us, c.freeze.attempts,
			(unsigned long long)tm.describe_us, (unsigned long long)tm.unwind_us,
			(unsigned long long)((w1.tv_sec - w0.tv_sec) * 1000000ll + (w1.tv_nsec - w0.tv_nsec) / 1000));
	if (verbose && c.graph) {
		uint64_t total = tm.facts_us + tm.window_us + tm.describe_us + tm.unwind_us + tm.graph_us +
				 (uint64_t)((w1.tv_sec - w0.tv_sec) * 1000000ll + (w1.tv_nsec - w0.tv_nsec) / 1000);
		fprintf(stderr, "heapsnap capture: pointer graph %llu us (%.1f%% of the capture): "
			"index %llu, edges %llu, roots %llu, types %llu, contents %llu us; "
			"%u nodes, %llu edges, %zu roots, %zu types\n",
			(unsigned long long)tm.graph_us, total ? 100.0 * (double)tm.graph_us / (double)total : 0.0,
			(unsigned long long)c.graph->index_us, (unsigned long long)c.graph->edges_us,
			(unsigned long long)c.graph->roots_us, (unsigned long long)c.graph->types_us,
			(unsigned long long)c.graph->contents_us, c.graph->n,
			(unsigned long long)c.graph->m, c.graph->n_roots, c.graph->n_types);
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (rc) {
		fprintf(stderr, "heapsnap capture: %s\n", err);
		hs_capture_free(&c);
		return HS_EXIT_FAIL;
	}
	if (!quiet) {
		uint64_t in_use = 0, n_in_use = 0;
		for (size_t i = 0; i < c.n_chunks; i++)
			if (c.chunks[i].state == HS_CH_IN_USE) {
				in_use += c.chunks[i].size;
				n_in_use++;
			}
		if (c.heap.found)
			printf("wrote %s: %zu threads, %zu mappings, %zu arenas, %zu chunks "
			       "(%llu in use, %llu bytes), pause %llu us\n",
			       out, c.n_threads, c.n_maps, c.n_arenas, c.n_chunks,
			       (unsigned long long)n_in_use, (unsigned long long)in_use,
			       (unsigned long long)c.freeze.pause_us);
		else
			printf("wrote %s: %zu threads, %zu mappings; no glibc heap found%s%s; pause %llu us\n",
			       out, c.n_threads, c.n_maps, c.heap.note ? ": " : "",
			       c.heap.note ? c.heap.note : "", (unsigned long long)c.freeze.pause_us);
	}
	hs_capture_free(&c);
	return HS_EXIT_OK;
}
