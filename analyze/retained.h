/* retained.h -- MAT's "precise retained size" of a group of chunks (all chunks of one
 * allocation site or type): the chunks that become unreachable from the roots when every
 * member is removed, members included. Not the sum of the members' retained sizes: a
 * diamond below two members of the group is retained by the group though by neither
 * member alone. Also of a group of root edges (all globals of one module, one thread's
 * stack, ...): the chunks that become unreachable when the group's root edges are
 * removed (ret_root_groups). One reachability pass from the roots per group,
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

/* For each group of root edges gi < n_groups: bytes[gi] and count[gi] of the chunks that
 * become unreachable from the roots when the group's root edges are removed (and only
 * those). group_of_root[r] is root edge r's group or RET_NO_GROUP (such a root stays).
 * One dominator pass (dominators.h) for all groups: a virtual node per group stands
 * between the super-root and the chunks its root edges point at, and the group retains
 * what its node dominates. A chunk that roots of two groups keep alive is retained by
 * neither. For that pass g's addr, size, edge_start and edge_dst grow by n_groups nodes
 * and their edges (realloc: they must be malloc'ed, and the pointers may change); on
 * return g holds its old n, m and contents again.
 * 0, or -1 when out of memory (errno set; g is then as before). */
int ret_root_groups(hs_graph *g, const uint32_t *group_of_root, uint32_t n_groups,
		    uint64_t *bytes, uint64_t *count);

#endif
