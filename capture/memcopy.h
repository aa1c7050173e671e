/* memcopy.h -- the bulk copy of the frozen target's memory into an image.
 *
 * Plan (before the freeze, from /proc/PID/maps): every private or shared readable and
 * writable mapping, with buffers pre-faulted, except [vvar]/[vsyscall] and device
 * mappings (/dev/... other than /dev/zero and /dev/shm/), and mappings over
 * MC_MAX_REGION bytes other than [heap] (huge reservations would exhaust memory).
 * Thread stacks ([stack], and anonymous mappings right above a ---p guard page, as
 * glibc allocates them) are planned once the stack pointers are
 * known, while frozen: trimmed to [rsp - 128, end) of the thread that owns them (the red
 * zone included); a stack-looking mapping that no thread's rsp points into (an exited
 * thread's stack glibc keeps for reuse) is copied whole, sparse. Re-planning while
 * frozen with the maps re-read then keeps the buffers of unchanged mappings, resizes
 * the ones whose end moved and replaces the others; buffers added while frozen are not
 * pre-faulted (faulting them costs the same during the copy, and only for the pages
 * the target has).
 *
 * Copy: private anonymous regions are read only where /proc/PID/pagemap (read while
 * frozen) shows a page present or swapped; the pages the target never touched are
 * zero on both sides and are not read, so a capture does not fault them in (it would
 * grow the target's RSS). The pieces go in batched process_vm_readv calls, on several
 * threads for large copies, falling back to piece-by-piece reads when a region vanished
 * or changed; regions that cannot be read are marked not copied
 * (img_region.copied = 0), never silently zero.
 */
#ifndef HEAPSNAP_MEMCOPY_H
#define HEAPSNAP_MEMCOPY_H

#include <stdint.h>
#include <sys/types.h>

#include "image.h"

#define MC_MAX_REGION (4ull << 30)

typedef struct {
	uint64_t lo, hi;
	char perms[5];
	uint64_t offset;
	char path[256];   /* "" for anonymous (truncated; only used for classification) */
} mc_vma;

typedef struct {
	mc_vma *v;
	size_t n, cap;
} mc_vmas;

/* Read /proc/PID/maps (cheap; no smaps). 0 or negative errno (-ESRCH if gone). A read
 * torn by the running target (overlapping rows) is read again, then clipped. */
int mc_read_maps(pid_t pid, mc_vmas *out);
void mc_vmas_release(mc_vmas *m);
/* Make rows sorted by start disjoint: clip a row that starts inside the one before. */
void mc_vmas_clip(mc_vmas *m);
const mc_vma *mc_find(const mc_vmas *m, uint64_t addr);

/* 1 if mapping i looks like a thread stack ([stack], or anonymous rw right above an
 * adjacent ---p guard, not 64 MiB aligned). */
int mc_is_stacklike(const mc_vmas *m, size_t i);

/* Make the image's regions the plan for maps: allocate (pre-faulted) buffers for new
 * regions, keep or resize existing ones, drop the rest. stack_sps lists the stack
 * pointers of the threads; NULL before the freeze (stack-looking mappings are then
 * left for the plan made while frozen). Every region is left "not copied". Returns
 * bytes planned, or negative errno. */
int64_t mc_plan(img_image *im, const mc_vmas *maps, const uint64_t *stack_sps, size_t n_sps);

/* Before the freeze: note which pages of each sparse region the target has now
 * (/proc/PID/pagemap), so that the copy while frozen reads pagemap again only where
 * pages were missing: a dense heap then costs no pagemap reads in the window (about
 * 5 ms per GB otherwise). A page freed in between is read anyway (zero; one page
 * faulted in). 0 or negative errno; on failure the copy checks every page itself. */
int mc_premap(pid_t pid, img_image *im);

/* Copy every planned region from the target. Returns bytes read (absent pages of sparse
 * regions are not read), or negative errno (-ESRCH when the process is gone). */
int64_t mc_copy(pid_t pid, img_image *im);

#endif
