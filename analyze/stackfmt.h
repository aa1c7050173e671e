/* stackfmt.h -- reading one call stack (a callsite chain, schema: callsite/frame) out of
 * a snapshot, innermost frame first, and naming its frames for people and for JSON.
 * Used by threads, diff and report.
 */
#ifndef HEAPSNAP_STACKFMT_H
#define HEAPSNAP_STACKFMT_H

#include <stdint.h>

#include "output.h"
#include "snapshot.h"

#define STK_MAX_FRAMES 256

typedef struct {
	int64_t module_id;      /* -1 if none */
	char *module;           /* module path, NULL if none */
	char *build_id;         /* NULL if unknown */
	int64_t rel_pc;         /* pc - load_base (absolute pc without module) */
	char *function;         /* NULL if unknown */
	int64_t func_offset;    /* -1 if unknown */
	char *file;             /* NULL without debug info */
	int64_t line;           /* -1 if unknown */
} stk_frame;

typedef struct {
	stk_frame *f;
	int n;
} stk_stack;

/* Load the chain from callsite id (innermost) outward. 0, or -1 with snap_error set. */
int stk_load(snap *s, int64_t callsite_id, stk_stack *out);
void stk_free(stk_stack *st);

/* "function+0x12 (libfoo.so.1)" or "libfoo.so.1+0x1234" or "0x401000" into buf */
const char *stk_name(const stk_frame *f, char *buf, size_t n);
/* basename of a path (the pointer into it) */
const char *stk_base(const char *path);

/* one frame as a JSON object on one line (key NULL inside an array) */
void stk_json_frame(out_json *j, const stk_frame *f);

#endif
