/* leaks.h -- valgrind memcheck's leak categories over the pointer graph (graph.h), with
 * memcheck's own definitions (mc_leakcheck.c), so that the figures can be compared:
 *
 *   still reachable   a root reaches the chunk through start pointers only (every hop,
 *                     root included, points at a user pointer);
 *   possibly lost     reached from the roots only when interior pointers are followed;
 *   definitely lost   not reached, and the leader of its "clique": walking the chunks in
 *                     address order, each chunk still unclaimed claims every unclaimed
 *                     chunk it reaches (by any pointer), which become indirectly lost;
 *                     a leader claimed later by another leader joins that clique;
 *   indirectly lost   not reached, and claimed by a leader.
 *
 * So a leaked structure is one definitely lost chunk (the one no other lost chunk points
 * to; in a pure cycle the lowest address) plus its indirectly lost chunks. The leaders
 * are the leak roots; each holds its own bytes plus its clique's (memcheck's "direct"
 * and "indirect" bytes). memcheck's heuristics (stdstring, length64, newarray,
 * multipleinheritance) are not applied: compare with --leak-check-heuristics=none.
 *
 * Memory: 1 byte per chunk kept, 8 bytes per chunk while classifying.
 */
#ifndef HEAPSNAP_LEAKS_H
#define HEAPSNAP_LEAKS_H

#include <stdint.h>

#include "graph.h"

enum leak_kind {
	LEAK_REACHABLE = 0, /* still reachable */
	LEAK_POSSIBLE,      /* possibly lost */
	LEAK_INDIRECT,      /* indirectly lost */
	LEAK_DEFINITE,      /* definitely lost */
	LEAK_KIND_COUNT
};

typedef struct {
	uint32_t node;      /* the definitely lost chunk */
	uint32_t blocks;    /* chunks in its clique, itself included */
	uint64_t bytes;     /* their bytes: its own plus the indirectly lost ones it holds */
} leak_root;

typedef struct {
	uint32_t n;
	uint8_t *kind;      /* [n] enum leak_kind */
	uint64_t count[LEAK_KIND_COUNT], bytes[LEAK_KIND_COUNT];
	leak_root *roots;   /* one per definitely lost chunk, largest bytes first */
	uint32_t n_roots;
} leak_report;

/* Classify every chunk of g. 0, or -1 when out of memory. */
int leak_classify(const hs_graph *g, leak_report *out);
void leak_free(leak_report *r);

/* "definitely_lost", "indirectly_lost", "possibly_lost", "still_reachable" */
const char *leak_kind_key(enum leak_kind k);
/* "definitely lost", ... as memcheck prints them */
const char *leak_kind_name(enum leak_kind k);

#endif
