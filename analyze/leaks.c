/* leaks.c -- memcheck's leak classification over the pointer graph (leaks.h): a mark
 * phase from the roots that tells start from interior pointers, then memcheck's clique
 * phase over the unreached chunks in address order. Iterative, one explicit stack. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leaks.h"

#define UNREACHED 0x7f
#define PENDING 0x80 /* on the mark stack (memcheck's `pending`) */
#define NO_SLOT 0xffffffffu

static const char *const kind_keys[] = { "still_reachable", "possibly_lost",
					 "indirectly_lost", "definitely_lost" };
static const char *const kind_names[] = { "still reachable", "possibly lost",
					  "indirectly lost", "definitely lost" };

const char *leak_kind_key(enum leak_kind k)
{
	return k < LEAK_KIND_COUNT ? kind_keys[k] : "?";
}

const char *leak_kind_name(enum leak_kind k)
{
	return k < LEAK_KIND_COUNT ? kind_names[k] : "?";
}

/* memcheck's lc_push_without_clique_if_a_chunk_ptr: upgrade t's state through a pointer
 * (interior or not) from a definite (reachable, or root) or possible source. */
static void leak_mark(uint8_t *state, uint32_t *stack, uint32_t *top, uint32_t dst,
		      int prior_definite)
{
	uint32_t t = GRAPH_NODE(dst);
	uint8_t s = state[t] & ~PENDING;
	int start = !(dst & GRAPH_INTERIOR);

	if (s == LEAK_REACHABLE)
		return;
	if (start && prior_definite)
		s = LEAK_REACHABLE;
	else if (s == UNREACHED)
		s = LEAK_POSSIBLE;
	else
		return;
	if (!(state[t] & PENDING))
		stack[(*top)++] = t;
	state[t] = s | PENDING;
}

static int cmp_root(const void *a, const void *b)
{
	const leak_root *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return x->node < y->node ? -1 : x->node > y->node;
}

int leak_classify(const hs_graph *g, leak_report *out)
{
	uint32_t n = g->n, top = 0;
	uint32_t *stack = NULL, *slot = NULL;

	memset(out, 0, sizeof *out);
	out->n = n;
	out->kind = malloc(n ? n : 1);
	stack = malloc((n ? n : 1) * sizeof *stack);
	slot = malloc((n ? n : 1) * sizeof *slot);
	if (!out->kind || !stack || !slot)
		goto fail;
	/* huge pages for the arrays the mark phase reads at random or sweeps (slot is
	 * written for the leak roots only: left to small pages, mostly never touched) */
	graph_hugepages(out->kind, n);
	graph_hugepages(stack, (size_t)n * sizeof *stack);
	uint8_t *state = out->kind;
	memset(state, UNREACHED, n);

	/* mark: roots are definite sources. The pending flag keeps a chunk at most once in
	 * the queue, so a ring of n entries is enough; FIFO order lets the next chunks'
	 * edge lists be prefetched (the result does not depend on the order). */
	uint32_t head = 0, count = 0;
	for (uint32_t r = 0; r < g->n_roots; r++)
		if (GRAPH_NODE(g->root_dst[r]) < n)
			leak_mark(state, stack, &top, g->root_dst[r], 1);
	count = top;
	while (count) {
		uint32_t u = stack[head];
		if (count > 16)
			__builtin_prefetch(&g->edge_start[stack[(head + 16) % n]]);
		if (count > 8)
			__builtin_prefetch(&g->edge_dst[g->edge_start[stack[(head + 8) % n]]]);
		head = head + 1 == n ? 0 : head + 1;
		count--;
		state[u] &= ~PENDING;
		int definite = state[u] != LEAK_POSSIBLE;
		for (uint32_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++) {
			if (GRAPH_NODE(g->edge_dst[e]) >= n)
				continue;
			uint32_t tail = (head + count) % n;
			uint32_t before = tail;
			leak_mark(state, stack, &tail, g->edge_dst[e], definite);
			if (tail != before)
				count++;
		}
	}
	top = 0;

	/* cliques, in address order; slot[leader] indexes out->roots */
	uint32_t cap = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (state[i] != UNREACHED)
			continue;
		if (out->n_roots == cap) {
			cap = cap ? cap * 2 : 64;
			leak_root *grown = realloc(out->roots, (size_t)cap * sizeof *grown);
			if (!grown)
				goto fail;
			out->roots = grown;
		}
		leak_root *lr = &out->roots[out->n_roots];
		slot[i] = out->n_roots++;
		lr->node = i;
		lr->blocks = 1;
		lr->bytes = g->size[i];
		stack[top++] = i;
		while (top) {
			uint32_t u = stack[--top];
			for (uint32_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++) {
				uint32_t t = GRAPH_NODE(g->edge_dst[e]);
				if (t >= n || t == i || state[t] != UNREACHED)
					continue;
				state[t] = LEAK_INDIRECT;
				stack[top++] = t;
				if (t < i) { /* an earlier leader joins this clique */
					leak_root *old = &out->roots[slot[t]];
					lr->blocks += old->blocks;
					lr->bytes += old->bytes;
					old->node = NO_SLOT;
				} else {
					lr->blocks++;
					lr->bytes += g->size[t];
				}
			}
		}
	}

	uint32_t kept = 0;
	for (uint32_t r = 0; r < out->n_roots; r++)
		if (out->roots[r].node != NO_SLOT)
			out->roots[kept++] = out->roots[r];
	out->n_roots = kept;
	qsort(out->roots, kept, sizeof *out->roots, cmp_root);
	for (uint32_t i = 0; i < n; i++) {
		if (state[i] == UNREACHED)
			state[i] = LEAK_DEFINITE;
		out->count[state[i]]++;
		out->bytes[state[i]] += g->size[i];
	}
	free(stack);
	free(slot);
	return 0;
fail:
	free(stack);
	free(slot);
	leak_free(out);
	errno = ENOMEM;
	return -1;
}

void leak_free(leak_report *r)
{
	free(r->kind);
	free(r->roots);
	r->kind = NULL;
	r->roots = NULL;
}
