/* dominators.h -- the dominator tree of the pointer graph (graph.h) and the retained size
 * of every chunk: who keeps what alive. A super-root stands for everything outside the
 * heap; its children are the chunks the roots point at. Chunk d dominates chunk v when
 * every path from the super-root to v passes through d; v's retained size is the sum of
 * the shallow sizes of the chunks it dominates, itself included (MAT's definition).
 *
 * SEMI-NCA (Georgiadis/Tarjan), iterative throughout: no recursion, so a 10-million-link
 * list works. Peak memory of dom_build, on top of the graph: 16 bytes per chunk plus 4
 * bytes per edge between reached chunks (20 bytes per chunk while it writes the result);
 * the result keeps 12 bytes per chunk.
 */
#ifndef HEAPSNAP_DOMINATORS_H
#define HEAPSNAP_DOMINATORS_H

#include <stdint.h>

#include "graph.h"

#define DOM_SUPER 0xfffffffeu /* idom of a chunk dominated only by the super-root */
#define DOM_NONE 0xffffffffu  /* idom of a chunk no root reaches */

typedef struct {
	uint32_t n;          /* = graph n */
	uint32_t *idom;      /* [n] node index of the immediate dominator, DOM_SUPER or DOM_NONE */
	uint64_t *retained;  /* [n] retained bytes; 0 for unreached chunks */
	uint32_t reached;    /* chunks reached from the roots */
	uint64_t reached_bytes; /* their shallow bytes: the super-root's retained size */
} dom_tree;

/* Build the dominator tree of g over the chunks reachable from roots[0..n_roots) (node
 * indices; the GRAPH_INTERIOR bit is ignored), following every edge, start or interior.
 * Chunks with skip[i] != 0 are treated as absent (skip may be NULL). Returns 0, or -1 when
 * out of memory (errno set). */
int dom_build(const hs_graph *g, const uint32_t *roots, uint32_t n_roots,
	      const uint8_t *skip, dom_tree *out);

/* The dominator tree of g from its own roots (g->root_dst). */
static inline int dom_build_graph(const hs_graph *g, dom_tree *out)
{
	return dom_build(g, g->root_dst, g->n_roots, NULL, out);
}

void dom_free(dom_tree *t);

/* Children of every node in the dominator tree, as CSR: the children of node i are
 * child[start[i] .. start[i+1]), and the children of the super-root are
 * child[start[n] .. start[n+1]). Arrays are malloc'ed; returns 0 or -1. */
int dom_children(const dom_tree *t, uint32_t **start, uint32_t **child);

#endif
