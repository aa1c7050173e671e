/* retained.h -- MAT's "precise retained size" of a group of chunks (all chunks of one
 * allocation site, type, module or root): the chunks that become unreachable from the
 * roots when every member is removed, members included. Not the sum of the members'
 * retained sizes: a diamond below two members of the group is retained by the group
 * though by neither member alone. One reachability pass from the roots per group,
 * skipping members, so callers cap the number of groups. Follows start and interior
 * pointers, like dominators.h. */
#ifndef HEAPSNAP_RETAINED_H
#define HEAPSNAP_RETAINED_H

#include <stdint.h>

#include "graph.h"

#define RET_NO_GROUP 0xffffffffu

/* For each group gi < n_groups: bytes[gi] and count[gi] of the chunks it retains.
 * group_of[i] is chunk i's group or RET_NO_GROUP. 0, or -1 when out of memory. */
int ret_groups(const hs_graph *g, const uint32_t *group_of, uint32_t n_groups,
	       uint64_t *bytes, uint64_t *count);

#endif
