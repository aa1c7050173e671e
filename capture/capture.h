/* capture.h -- one whole capture of a live process, start to finish:
 *
 *   facts from /proc (before the freeze: cheap and stable)
 *     -> frozen window (window.h: freeze, safe points, copy, resume; re-frozen while the
 *        heap walk on the copy finds an arena mid-update)
 *     -> on the copy, target running again: heap walk (glibc.h), smaps and
 *        classification (procmaps.h), modules and build-ids (modules.h),
 *        thread backtraces and symbols (unwind.h, symbols.h)
 *
 * The result is an hs_capture ready for snapwrite. Nothing here prints.
 */
#ifndef HEAPSNAP_CAPTURE_H
#define HEAPSNAP_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "model.h"

typedef struct {
	pid_t pid;
	int max_attempts;          /* freezes to try for a consistent heap (default 5) */
	uint64_t thread_budget_ns; /* per-thread safe-point budget (default 50 ms) */
	int no_safepoints;         /* diagnostics: copy wherever the threads are */
	int no_debug;              /* ignore libc debug symbols (heuristics only) */
	int no_unwind;             /* skip thread backtraces */
	int no_graph;              /* skip the pointer graph (ptrscan.h) */
	int contents;              /* keep in-use chunk bytes in the snapshot (--contents) */
} cap_options;

/* Where the time of a capture went, microseconds (for --verbose and the benchmark). */
typedef struct {
	uint64_t facts_us;         /* /proc facts before the freeze */
	uint64_t window_us;        /* every frozen window plus the walks that verified them */
	uint64_t describe_us;      /* smaps, modules, classification */
	uint64_t unwind_us;        /* thread backtraces and symbols */
	uint64_t graph_us;         /* pointer graph: edges, roots, types, contents (ptrscan.h) */
} cap_timings;

void cap_options_default(cap_options *o);

/* Returns 0, or a negative errno with a one-line message in err:
 *   -ESRCH no such process, or it exited during the capture
 *   -EPERM not permitted to trace it
 *   -EINTR interrupted by SIGINT/SIGTERM/SIGHUP (the target was resumed)
 *   other  failure (out of memory, unreadable /proc)
 * c must be hs_capture_init()ed; on failure it may hold partial data (free it). */
int cap_run(const cap_options *o, hs_capture *c, cap_timings *tm, char *err, size_t errlen);

#endif
