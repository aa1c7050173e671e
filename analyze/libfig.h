/* libfig.h -- memory charged to each loaded module (the executable and every .so), as
 * `heapsnap libs`, `diff --by module` and the report show it:
 *   mapped footprint per segment (text, rodata, data, bss) from the mapping table;
 *   live heap charged to the module: tracked chunks (alloc table) whose allocating stack
 *   has, as its first frame outside libc, libstdc++, libgcc_s, ld.so and
 *   libheapsnap_preload (sites_is_library_module, the rule of `top`), a frame in it;
 *   heap its globals retain (lib_load_retained: from the pointer graph's dominator tree);
 * and everything not attributed to a module, by mapping kind, so the sums reconcile with
 * the process RSS. All memory figures are kB as smaps prints them; heap figures bytes.
 */
#ifndef HEAPSNAP_LIBFIG_H
#define HEAPSNAP_LIBFIG_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

enum { LIB_TEXT, LIB_RODATA, LIB_DATA, LIB_BSS, LIB_NSEG };
extern const char *const lib_seg_name[LIB_NSEG];

typedef struct {
	int64_t virt, rss, pss, priv, shared, swap;  /* kB (smaps Size, Rss, Pss, Private_*, Shared_*, Swap) */
	int64_t file_rss;      /* kB: Rss - Anonymous, file pages resident: what top counts in SHR */
	int64_t mappings;      /* VMAs summed */
} lib_fig;

typedef struct {
	int64_t id;
	char *path;
	char *build_id;        /* NULL if none */
	int is_main;
	int is_allocator;      /* libc, libstdc++ or our preload: heap is never charged to it */
	lib_fig seg[LIB_NSEG];
	lib_fig total;
	int64_t heap_bytes;    /* live requested bytes charged to it; 0 when untracked */
	int64_t heap_count;    /* live chunks charged to it */
	/* lib_load_retained, when the report has_graph: chunk bytes and chunks that would be
	 * unreachable without the module's globals (rootgroups.h, RG_BY_MODULE) */
	int64_t globals_retained_bytes, globals_retained_count;
} lib_module;

#define LIB_MAX_KINDS 16
typedef struct {
	lib_module *mods;
	int nmods;
	lib_fig other[LIB_MAX_KINDS];   /* not attributed to a module, by mapping kind id */
	char other_name[LIB_MAX_KINDS][16];
	lib_fig all;                    /* every mapping */
	lib_fig mods_total, other_total;
	/* process facts (/proc/PID/status at the capture), kB, -1 unknown */
	int64_t vm_rss, rss_anon, rss_file, rss_shmem, vm_swap, vm_size;
	/* heap, bytes */
	int tracked;                    /* 1 if the alloc table has rows */
	int64_t heap_inuse_bytes, heap_inuse_count;    /* chunk table, state in_use, chunk sizes */
	int64_t heap_free_bytes;        /* free chunks (bins, tcache, fastbins, top), chunk sizes */
	int64_t tracked_bytes, tracked_count;          /* live tracked chunks, requested bytes */
	int64_t alloc_only_bytes, alloc_only_count;    /* stacks with no frame outside the allocator libs */
	int has_graph;                  /* lib_load_retained found a pointer graph */
	int64_t globals_retained_bytes; /* all modules (the groups are disjoint: an exact sum) */
} lib_report;

/* 0, or -1 with snap_error(s) set */
int lib_load(snap *s, lib_report *r);
void lib_free(lib_report *r);

/* The heap each module's globals retain, after lib_load: loads the pointer graph and runs
 * one dominator pass (rootgroups.h). A snapshot without a graph (capture --no-graph, no
 * heap) leaves has_graph 0. 0, or -1 with a one-line message in err. */
int lib_load_retained(snap *s, lib_report *r, char *err, size_t errlen);

/* 1 if a module path is one heap is not charged to (sites_is_library_module) */
int lib_is_allocator_path(const char *path);

#endif
