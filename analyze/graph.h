/* graph.h -- the pointer graph of a snapshot in memory, as the retention algorithms
 * (dominators, leaks, paths) consume it: chunks as nodes 0..n-1 in address order,
 * outgoing edges in CSR form, and root edges. Loaded from a snapshot by graph_load()
 * (graph_load.c), or built by hand in tests.
 *
 * Only in-use chunks are nodes (free, tcache, fastbin, top and internal chunks hold
 * nothing alive). Memory: about 4 + 8 + 4 bytes per node plus 4 bytes per edge in the
 * arrays below, so that dominators + retained + leaks stay under 60 bytes per chunk.
 */
#ifndef HEAPSNAP_GRAPH_H
#define HEAPSNAP_GRAPH_H

#include <stdint.h>

enum graph_root_kind {
	GRAPH_ROOT_REGISTER = 0, /* a thread's register */
	GRAPH_ROOT_STACK,        /* a word of a thread's live stack */
	GRAPH_ROOT_GLOBAL,       /* a module's .data/.bss/relro */
	GRAPH_ROOT_TLS,          /* thread-local storage */
	GRAPH_ROOT_OTHER,        /* any other writable mapping that is not malloc's own */
	GRAPH_ROOT_KIND_COUNT
};

typedef struct {
	uint32_t n;            /* nodes */
	uint64_t *addr;        /* [n] chunk address, ascending */
	uint64_t *size;        /* [n] chunk size, bytes */
	uint32_t *edge_start;  /* [n+1] CSR: edges of node i are [edge_start[i], edge_start[i+1]) */
	uint32_t *edge_dst;    /* [m] destination node; the high bit set = interior pointer
	                        *     (points inside the destination, not at its user pointer) */
	uint32_t m;            /* edges */
	/* roots: edges from outside the heap into nodes */
	uint32_t n_roots;
	uint32_t *root_dst;    /* [n_roots] node; high bit = interior */
	uint8_t *root_kind;    /* [n_roots] enum graph_root_kind */
} hs_graph;

#define GRAPH_INTERIOR 0x80000000u
#define GRAPH_NODE(x) ((x) & ~GRAPH_INTERIOR)

void graph_free(hs_graph *g);

/* Index of the node whose chunk contains addr (chunk addr <= addr < addr + size), or
 * -1. Binary search over addr[]. */
int64_t graph_find(const hs_graph *g, uint64_t addr);

#endif
