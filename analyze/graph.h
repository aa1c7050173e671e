/* graph.h -- the pointer graph of a snapshot in memory, as the retention algorithms
 * (dominators, leaks, paths) consume it: chunks as nodes 0..n-1 in address order,
 * outgoing edges in CSR form, and root edges. Loaded from a snapshot by graph_load()
 * (graph_load.c), or built by hand in tests.
 *
 * Only in-use chunks are nodes (free, tcache, fastbin, top and internal chunks hold
 * nothing alive). Memory: about 4 + 8 + 4 bytes per node plus 4 bytes per edge in the
 * arrays below, so that dominators + retained + leaks stay under 60 bytes per chunk.
 *
 * NOTE (H2, capture side): graph_load() is in graph_load.c. Added fields: root_id (the
 * root table row of each root edge, for naming it: kind, thread, register, module +
 * symbol + offset), and graph_load's declaration. Node i is the i-th in-use chunk
 * (chunk.state = 0) in address order, the same numbering as the view `node` and the
 * edge blobs of chunk_edge. Edge format on disk (schema.sql, chunk_edge): one row per 64
 * consecutive nodes (grp = node / 64); per node varint(count), then its edges ascending
 * by destination node, each two LEB128 varints:
 * (delta << 1 | interior) with delta = zigzag(dst - src) for the first edge and
 * dst - previous dst after it, then the word index (offset in the source / 8) of the
 * first word pointing there; decoder: gw_decode() in capture/graphwrite.h. Edges are
 * deduplicated per (source, destination): a start pointer wins over interior ones.
 * C++ types: table chunk_type (addr -> type.id), type.name; contents: chunk_content.
 */
#ifndef HEAPSNAP_GRAPH_H
#define HEAPSNAP_GRAPH_H

#include <stddef.h>
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
	uint32_t *root_id;     /* [n_roots] root.id of the row (NULL in hand-built graphs) */
} hs_graph;

#define GRAPH_INTERIOR 0x80000000u
#define GRAPH_NODE(x) ((x) & ~GRAPH_INTERIOR)

struct snap;
/* Load the graph of a snapshot (analyze/snapshot.h): nodes, CSR edges sorted by
 * destination within each node, roots in root.id order (roots into a chunk that is not
 * in use are skipped). Streams each table once, straight into the arrays above (grown
 * by doubling, trimmed to size; the edges in a second thread on a second connection to
 * snap_path(s)): peak memory is those arrays. 0, or -1 with a one-line message in err
 * (a damaged edge blob is an error, not skipped). Frees g on failure. */
int graph_load(struct snap *s, hs_graph *g, char *err, size_t errlen);

/* Ask the kernel for transparent huge pages for a large malloc'ed array (madvise
 * MADV_HUGEPAGE over its pages; a no-op below 4 MiB or where unsupported).
 * The retention passes are chains of random reads over arrays of n entries: with 4 KiB
 * pages most of them also miss the TLB, and the first touch of each page faults. */
void graph_hugepages(void *p, size_t bytes);

void graph_free(hs_graph *g);

/* Index of the node whose chunk contains addr (chunk addr <= addr < addr + size), or
 * -1. Binary search over addr[]. */
int64_t graph_find(const hs_graph *g, uint64_t addr);

#endif
