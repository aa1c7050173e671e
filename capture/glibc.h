/* glibc.h -- the glibc malloc heap of a copied target: find main_arena, mp_ and the
 * per-thread tcaches without calling into the target (libc debug symbols when present
 * and allowed, else the heuristics of shared/glibc-heap.md), walk every chunk of every
 * arena heap and every mmapped chunk, classify each (in_use, free_bin, tcache, fastbin,
 * top, internal), and judge each arena's consistency.
 *
 * Input is only the image plus c->maps (paths, perms, offsets), c->threads (fs_base, and
 * sp to tell stacks apart) and c->proc (exe, page_size); output goes to c->heap,
 * c->arenas, c->chunks (sorted by address) and each thread's tcache/arena. gh_walk()
 * first drops any earlier results there, so it can run again on a new copy.
 * Everything read from the image is untrusted: every loop is bounded, nothing recurses,
 * a corrupt heap yields consistent = 0 with a note, never a crash or garbage as fact.
 * Supported layouts: glibc 2.35 to 2.41 on x86-64 (others: found = 0 with a note).
 */
#ifndef HEAPSNAP_GLIBC_H
#define HEAPSNAP_GLIBC_H

#include "image.h"
#include "model.h"

typedef struct {
	int no_debug;        /* ignore libc debug symbols even where installed */
	const char *root;    /* prefix for opening target files, e.g. "/proc/PID/root"; NULL = "" */
} gh_options;

/* Returns 0 (also when no glibc heap was found: then c->heap.found = 0 and a note says
 * why), or a negative errno on OOM. */
int gh_walk(img_image *im, hs_capture *c, const gh_options *o);

/* 1 if every arena walked is consistent (used to decide whether to re-freeze). */
int gh_all_consistent(const hs_capture *c);

#endif
