/* heap_fixture.h -- a minimal synthetic capture for the pointer-graph unit tests, with no
 * process behind it: a found glibc heap with one consistent main arena, chunks, and
 * mappings; the random generator and chunk records of their random cases; writing the
 * capture as a snapshot. Header-only, test code only. */
#ifndef HEAPSNAP_TEST_HEAP_FIXTURE_H
#define HEAPSNAP_TEST_HEAP_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model.h"
#include "snapwrite.h"

/* a deterministic generator for the random cases (an LCG; *state is its seed) */
static inline uint32_t sc_rnd(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 1;
}

/* a chunk of a random case's heap, as its brute-force check sees it */
typedef struct {
	uint64_t addr, size;
	int in_use;
} sc_tchunk;

/* c: a found heap with one main arena; room for max_maps mappings */
static inline void sc_init(hs_capture *c, size_t max_maps)
{
	hs_capture_init(c);
	c->heap.found = 1;
	c->arenas = calloc(1, sizeof *c->arenas);
	c->maps = calloc(max_maps, sizeof *c->maps);
	CHECK(c->arenas && c->maps);
	c->n_arenas = 1;
	c->arenas[0].addr = 0x7f0000000000ull;
	c->arenas[0].is_main = 1;
	c->arenas[0].consistent = 1;
}

static inline void sc_chunk(hs_capture *c, uint64_t addr, uint64_t size, int in_use)
{
	hs_chunk ch = { .addr = addr, .size = size,
			.state = in_use ? HS_CH_IN_USE : HS_CH_FREE_BIN, .arena = 0 };
	CHECK(hs_add_chunk(c, &ch) >= 0);
}

/* a rw-p mapping without smaps figures (the caller sized c->maps in sc_init) */
static inline hs_mapping *sc_map(hs_capture *c, uint64_t start, uint64_t end,
				 enum hs_map_kind kind)
{
	hs_mapping *m = &c->maps[c->n_maps++];
	*m = (hs_mapping){ .start = start, .end = end, .kind = kind, .module_idx = -1 };
	strcpy(m->perms, "rw-p");
	for (int s = 0; s < HS_SM_COUNT; s++)
		m->sm[s] = -1;
	return m;
}

/* write c to path as a snapshot; an error fails the test */
static inline void sc_write(hs_capture *c, const char *path)
{
	char err[512] = "";
	int wr = sw_write(c, path, err, sizeof err);
	if (wr)
		fprintf(stderr, "%s\n", err);
	CHECK_EQ(wr, 0);
}

#endif
