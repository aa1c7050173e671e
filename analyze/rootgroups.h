/* rootgroups.h -- the root edges of a snapshot's pointer graph (graph.h) in groups, each
 * with MAT's precise retained size (retained.h, ret_root_groups): what would become
 * unreachable if all of the group's root edges were gone. Two groupings:
 *   RG_BY_MODULE  the globals (.data, .bss, .got) of each module; other roots in none;
 *   RG_BY_ROOT    where the roots are: one thread's registers, one thread's stack, one
 *                 module's globals, one thread's TLS, one other mapping.
 * Used by `retained --by module|root` (cmd_retention.c) and the globals column of `libs`.
 */
#ifndef HEAPSNAP_ROOTGROUPS_H
#define HEAPSNAP_ROOTGROUPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "graph.h"

struct snap;

typedef enum { RG_BY_MODULE, RG_BY_ROOT } rg_by;

typedef struct {
	char *key;                /* "fx_graph" (by module); "stack thread 123", "globals
	                           * libc.so.6", "other /dev/shm/x" ... (by root); malloc'ed */
	unsigned kind;            /* enum graph_root_kind */
	int64_t module_id;        /* globals: module.id, else 0 */
	char *module;             /* globals: the module's path (malloc'ed), else NULL */
	int64_t tid;              /* registers, stack, TLS: the thread, else 0 */
	uint64_t roots;           /* root edges in the group (words, registers) */
	uint64_t count, bytes;    /* distinct chunks the root edges point into, their bytes */
	uint64_t retained_count, retained_bytes;
} rg_group;

typedef struct {
	rg_group *group;          /* most retained bytes first, then by key */
	uint32_t n;
} rg_set;

/* Groups the root edges of g (loaded from s by graph_load: g->root_id is needed) and
 * computes every group's retained size in one dominator pass. g's arrays may be
 * reallocated (see ret_root_groups); its contents stay. 0, or -1 with a one-line message
 * in err (snapshot error or out of memory). */
int rg_compute(struct snap *s, hs_graph *g, rg_by by, rg_set *out, char *err, size_t errlen);
void rg_free(rg_set *set);

/* `retained --by module|root` output, the first limit groups: a table, or JSON {by,
 * groups_total, groups: [{key, kind, module, tid, roots, count, shallow_bytes,
 * retained_count, retained_bytes}]} (keys as --by site|type, plus the root facts).
 * 0, or -1 on a write error. */
int rg_print(FILE *f, const rg_set *set, rg_by by, uint32_t limit, int json);

#endif
