/* graphwrite.h -- writes a capture's pointer graph (hs_capture.graph, ptrscan.h) into an
 * open snapshot inside snapwrite's transaction: chunk_edge (packed, see schema.sql),
 * root, type, chunk_type and chunk_content. Also the edge blob codec, shared with the
 * loader (analyze/graph_load.c) and the tests.
 */
#ifndef HEAPSNAP_GRAPHWRITE_H
#define HEAPSNAP_GRAPHWRITE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "model.h"

/* 0, or -1 with "cannot write 'dest': ..." in err. Writes nothing when c->graph is NULL. */
int gw_write(sqlite3 *db, const hs_capture *c, char *err, size_t errlen, const char *dest);

/* Encode the n edges of source node src (dst[i] = node | 0x80000000 for interior,
 * ascending node; word[i] the word index) into out, which must hold 20 * n bytes.
 * Returns the bytes written. */
size_t gw_encode(uint32_t src, const uint32_t *dst, const uint32_t *word, size_t n, unsigned char *out);

/* chunk_edge rows hold the edges of GW_GROUP consecutive nodes each */
#define GW_GROUP 64

/* One unsigned LEB128 varint at *p (bounded by end). 0, or -1 if truncated/too long. */
int gw_varint(const unsigned char **p, const unsigned char *end, uint64_t *v);

/* Encode the edges of nodes [first, end) (CSR edge_start/dst/word; end - first <=
 * GW_GROUP) as one chunk_edge blob: per node, varint(count) then its edges as
 * gw_encode writes them. out must hold 10 * (end - first) + 20 * edges bytes. */
size_t gw_encode_group(const uint32_t *edge_start, const uint32_t *dst, const uint32_t *word,
		       uint32_t first, uint32_t end, unsigned char *out);

/* Decode one edge at *p (bounded by end): *node gets the destination node from prev
 * (the previous destination, or the source for the first edge: first = 1), *interior and
 * *word the rest. 0, or -1 when the blob is malformed (truncated, node out of range). */
int gw_decode(const unsigned char **p, const unsigned char *end, int first, uint64_t prev,
	      uint64_t n_nodes, uint64_t *node, int *interior, uint64_t *word);

#endif
