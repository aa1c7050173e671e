/* tracking.h -- reads what the tracking library (libheapsnap_preload.so, `heapsnap run`)
 * knew about the target's allocations out of the frozen copy, and joins it with the
 * heap walk: the exported state `heapsnap_tracker_state` (found in the library's .dynsym
 * with libelf, at the module's load bias), the 16-byte header in front of each in-use
 * chunk (capture/preload/hp_format.h), the stack table, the per-thread live counters
 * and the unload table. Everything is read from the image: the library keeps its state
 * in .bss and its tables in private anonymous rw mappings, which the bulk copy always
 * takes, so nothing extra is read while the target is frozen.
 *
 * Results go to hs_capture.tracking (the summary and the mismatch counts both ways) and
 * hs_capture.allocs (one row per in-use chunk with a valid header, in chunk order).
 * trk_symbolize() then turns each distinct stack into frames and callsites.
 */
#ifndef HEAPSNAP_TRACKING_H
#define HEAPSNAP_TRACKING_H

#include "image.h"
#include "memcopy.h"
#include "model.h"
#include "symbols.h"

/* 1 if path names the tracking library (its file name is libheapsnap_preload.so) */
int trk_is_library(const char *path);

/* Before a freeze: the address of `heapsnap_tracker_state` in a running target with the
 * library mapped (maps m), and the span of the library's executable mappings
 * [*text_lo, *text_hi), for the safe points. 0, or -ENOENT (no library), -errno. */
int trk_locate(pid_t pid, const mc_vmas *m, uint64_t *state_addr, uint64_t *text_lo,
	       uint64_t *text_hi);

/* Find the library among c->modules (mod_collect must have run), read its state from
 * the image and join every in-use chunk of c->chunks with its header. root: prefix to
 * open target files ("/proc/PID/root" or ""). A target without the library is not an
 * error (c->tracking.found stays 0). 0, or -ENOMEM. */
int trk_read(img_image *im, hs_capture *c, const char *root);

/* Symbolize every distinct stack used by c->allocs (read from the copied stack table)
 * into c->frames / c->callsites and set each alloc's callsite. PCs of modules that were
 * dlclosed after the stack was recorded are symbolized from the unloaded file (the
 * library's unload table), which is then added to c->modules: call this last, after
 * everything else that looks modules up by address. 0, or -ENOMEM. */
int trk_symbolize(img_image *im, hs_capture *c, sym_session *sy);

#endif
