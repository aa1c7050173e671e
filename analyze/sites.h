/* sites.h -- live heap per allocation site, from the tracking data of a snapshot (the
 * alloc table, written when the target ran under `heapsnap run`). Used by top, stacks,
 * and by libs/diff.
 *
 * A stack is the callsite chain of a tracked chunk (alloc.callsite_id). Its site is
 * its first frame, from the innermost, that is not in a library frame: libc, libstdc++,
 * libgcc_s, ld.so or libheapsnap_preload.so (sites_is_library_module). Rows are keyed
 * by SITES_BY_*:
 *   site      module build-id + offset of the site frame's return address: stable
 *             across runs and machines; without a build-id the function, else the
 *             module path + offset
 *   function  the site frame's function (its module+offset when unnamed)
 *   line      the site frame's file:line (the function when there is no line)
 *   module    the site frame's module path
 *   stack     the whole stack (every distinct callsite chain is a row: `stacks`)
 *
 * Bytes are the requested sizes. When the snapshot was sampled (tracking.sample_interval
 * R > 0) every recorded block of s bytes stands for 1/P(s) blocks and s/P(s) bytes with
 * P(s) = 1 - exp(-s/R) (s >= R: itself); est_* hold those estimates, and are equal to
 * the exact figures otherwise. Chunks recorded without a stack (origin no_stack,
 * table_full, bad_stack) form one row with key "(no stack)" and no frames.
 */
#ifndef HEAPSNAP_SITES_H
#define HEAPSNAP_SITES_H

#include <stddef.h>
#include <stdint.h>

#include "output.h"
#include "snapshot.h"
#include "stackfmt.h"

enum sites_by { SITES_BY_SITE, SITES_BY_FUNCTION, SITES_BY_LINE, SITES_BY_MODULE, SITES_BY_STACK };

typedef struct {
	char *key;            /* what the row is keyed by (see above) */
	int64_t count, bytes; /* recorded live chunks, their requested bytes */
	double est_count, est_bytes; /* scaled estimates (== count/bytes without sampling) */
	stk_stack stack;      /* the heaviest stack of the row, innermost first (all frames) */
	int site;             /* index in stack.f of the site frame, -1 if no frames */
	int64_t callsite_id;  /* that stack's innermost callsite, -1 for "(no stack)" */
	double stack_bytes;   /* that stack's own (estimated) bytes */
} sites_row;

typedef struct {
	int tracked;          /* 1 if the snapshot has valid tracking data */
	int64_t sample_interval;   /* R, 0 = every allocation recorded */
	char *note;           /* why not tracked, or the tracking note; may be NULL */
	sites_row *rows;      /* sorted by est_bytes, then count, descending */
	size_t n_rows;
	int64_t total_count, total_bytes;   /* over all rows */
	double est_total_count, est_total_bytes;
	int64_t untracked_count, untracked_bytes; /* from the tracking row */
} sites_result;

/* 1 if a module path is a library skipped when naming a site */
int sites_is_library_module(const char *path);

/* Aggregate the snapshot's tracked chunks by `by`. A snapshot without tracking data
 * gives tracked = 0 and no rows. 0, or -1 with snap_error(s) set (or out of memory:
 * then snap_error may be empty and *oom is set when oom is not NULL). */
int sites_load(snap *s, enum sites_by by, sites_result *out, int *oom);
void sites_free(sites_result *r);

/* What `top` and `stacks` share: open file, load its sites by `by`, and require
 * tracking data. HS_EXIT_OK with *s and *r to release (sites_free, snap_close), or the
 * exit code after a one-line error prefixed with cmd (nothing left to release). */
int sites_open_tracked(const char *cmd, const char *file, enum sites_by by, snap **s,
		       sites_result *r);

/* A short name for a frame: its function, else "module-basename+0xOFFSET", else the pc. */
const char *sites_frame_name(const stk_frame *f, char *buf, size_t n);

/* The frames of a row as a JSON array member `key`: from frame `from` outward, each
 * {function, file, line, module, offset, build_id} (offset = pc - module load base). */
void sites_json_frames(out_json *j, const char *key, const stk_stack *st, int from);

/* The weight of one recorded block of `bytes` bytes under sampling interval R. */
double sites_weight(int64_t bytes, int64_t interval);

#endif
