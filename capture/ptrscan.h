/* ptrscan.h -- the pointer graph of a capture (issue #4), built after the resume from
 * the copy taken in the frozen window: nodes are the in-use chunks in address order;
 * every 8-byte-aligned word of a node's user bytes that points into another in-use
 * chunk's user region [chunk + 16, chunk + size) is an edge, "start" when it equals the
 * user pointer (chunk + 16), else "interior"; roots are such words outside the heap
 * (registers, live stacks, TLS, module globals, other writable mappings that are not
 * malloc's own), each tagged with where it was found: a stack slot also with the frame
 * of its thread's backtrace that holds it. Also C++ types: a node whose first
 * word points at a vtable address point of a _ZTV symbol gets the demangled class name.
 * snapwrite stores the result (chunk_edge, root, type, chunk_type, chunk_content).
 *
 * Ownership: a ps_graph owns everything hanging off it; ps_free() releases it. It sits
 * in hs_capture.graph, and hs_capture_free() calls ps_free().
 */
#ifndef HEAPSNAP_PTRSCAN_H
#define HEAPSNAP_PTRSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "model.h"

#define PS_INTERIOR 0x80000000u   /* in a destination: the word points inside, not at +16 */
#define PS_NODE(x) ((x) & ~PS_INTERIOR)

/* the same numbers as graph.h's enum graph_root_kind and the schema's root_kind table */
enum ps_root_kind {
	PS_ROOT_REGISTER = 0, PS_ROOT_STACK, PS_ROOT_GLOBAL, PS_ROOT_TLS, PS_ROOT_OTHER,
	PS_ROOT_KIND_COUNT
};
const char *ps_root_kind_name(int kind);   /* "register", "stack", "global", "tls", "other" */

typedef struct {
	uint64_t slot;        /* address of the word holding the pointer; 0 for a register */
	int64_t offset;       /* stack: slot - sp; tls: slot - fs_base; global: slot - symbol
	                       * start (slot - module load_base without a symbol);
	                       * other: slot - mapping start; register: 0 */
	uint32_t dst;         /* node | PS_INTERIOR */
	int32_t tid;          /* register, stack, tls: the thread; 0 otherwise */
	int32_t mapping;      /* index of the mapping holding the slot, -1 if none */
	int32_t module;       /* global: module index, -1 otherwise */
	int32_t symbol;       /* global: index into ps_graph.syms, -1 if no symbol */
	int32_t frame_no;     /* stack: the thread's physical frame holding the slot, 0 = the
	                       * innermost; -1 when not known (see ptrscan.c, frames) */
	int32_t frame;        /* stack: the hs_capture.frames index of that frame's function
	                       * (its inline_depth 0 row), -1 when not known */
	int16_t reg;          /* register: index into hs_reg_names, -1 otherwise */
	uint8_t kind;         /* enum ps_root_kind */
} ps_root;

typedef struct {
	char *name;           /* demangled class name ("ns::Derived") */
	char *symbol;         /* the _ZTV symbol */
	int module;           /* module of the vtable */
	uint64_t vtable;      /* runtime address of the _ZTV symbol */
	uint64_t chunks;      /* nodes of this type */
} ps_type;

typedef struct ps_graph {
	uint32_t n;           /* nodes */
	uint64_t *addr;       /* [n] chunk address, ascending */
	uint64_t *size;       /* [n] chunk size, bytes */
	uint8_t *mmapped;     /* [n] 1 for an mmapped chunk */
	uint32_t *edge_start; /* [n+1] CSR */
	uint32_t *edge_dst;   /* [m] node | PS_INTERIOR, ascending node within a source */
	uint32_t *edge_word;  /* [m] the first word of the source pointing there: byte offset
	                       * from the user pointer / 8 */
	uint64_t m, cap_m;
	ps_root *roots;       size_t n_roots, cap_roots;
	char **syms;          size_t n_syms, cap_syms;   /* symbol names of global roots */
	ps_type *types;       size_t n_types, cap_types;
	uint32_t *node_type;  /* [n] type index + 1, 0 = no vtable; NULL when no node has one */
	int contents;         /* 1 if content holds the user bytes of every node */
	unsigned char *content;   /* usable bytes of node i at content[content_off[i]..[i+1]) */
	uint64_t *content_off;    /* [n+1] */
	/* figures for --verbose and the benchmark */
	uint64_t index_us, edges_us, roots_us, types_us, contents_us;
	uint64_t words_scanned;   /* heap words looked at */
	struct ps_index *index;   /* address -> node lookup (private to ptrscan.c) */
} ps_graph;

typedef struct {
	int contents;         /* keep every in-use chunk's bytes (capture --contents) */
	int no_types;         /* skip the vtable lookup */
	const char *root;     /* prefix to open module files ("/proc/PID/root" or "") */
} ps_options;

/* Build the graph of c (its chunks, threads, maps and modules must be final) from im.
 * 0 and *out set (an empty graph when c has no heap), or -ENOMEM. */
int ps_scan(img_image *im, const hs_capture *c, const ps_options *o, ps_graph **out);
void ps_free(ps_graph *g);

/* Node whose user region [addr + 16, addr + size) contains v, or -1 (for tests). */
int64_t ps_find(const ps_graph *g, uint64_t v);

#endif
