/* memcopy.h -- the bulk copy of the frozen target's memory into an image.
 *
 * Plan (before the freeze, from /proc/PID/maps): every private or shared readable and
 * writable mapping, with buffers pre-faulted. Stacks are trimmed after the freeze to
 * [rsp - 128, end) of the thread that owns them (the red zone included). Copy: one
 * process_vm_readv per batch of up to IOV_MAX regions, falling back to per-region
 * reads when a region vanished or changed; regions that cannot be read are marked
 * not copied, never silently zero.
 */
#ifndef HEAPSNAP_MEMCOPY_H
#define HEAPSNAP_MEMCOPY_H

#include <stdint.h>
#include <sys/types.h>

#include "image.h"

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

/* Read /proc/PID/maps (cheap; no smaps). 0 or negative errno. */
int mc_read_maps(pid_t pid, mc_vmas *out);
void mc_vmas_release(mc_vmas *m);
const mc_vma *mc_find(const mc_vmas *m, uint64_t addr);

/* Allocate image buffers for the regions to copy (pre-faulted). stack_sps lists the
 * stack pointers of the threads (may be NULL before the freeze; then stacks are taken
 * whole). Returns bytes planned, or negative errno. */
int64_t mc_plan(img_image *im, const mc_vmas *maps, const uint64_t *stack_sps, size_t n_sps);

/* Copy every planned region from the target. Returns bytes copied, or negative errno. */
int64_t mc_copy(pid_t pid, img_image *im);

#endif
