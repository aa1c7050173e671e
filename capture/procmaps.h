/* procmaps.h -- what /proc says about a target: process facts (status, stat, cmdline,
 * exe, comm), thread names, /proc/PID/smaps with every field (unknown keys kept), and
 * the classification of each mapping (heap, arena heap, mmapped chunks, stack of which
 * thread, module text/rodata/data/bss of which module, vdso, shm, file, anon, guard).
 */
#ifndef HEAPSNAP_PROCMAPS_H
#define HEAPSNAP_PROCMAPS_H

#include <stdio.h>
#include <sys/types.h>

#include "memcopy.h"
#include "model.h"

/* c->maps from the frozen maps list (addresses, perms, paths; smaps fields -1). */
int pm_maps_from_vmas(hs_capture *c, const mc_vmas *v);

/* Join /proc/PID/smaps (read now, after the resume) into c->maps by address range.
 * VMAs that changed since the freeze keep -1 (NULL) fields. */
int pm_read_smaps(pid_t pid, hs_capture *c);
/* Parse smaps text from a stream into c->maps (the same join); for tests. */
int pm_parse_smaps(FILE *f, hs_capture *c);

/* pid, ppid, uid, gid, exe, argv, comm, start time, kernel, page size, Vm*/Rss* figures. */
int pm_read_process(pid_t pid, hs_capture *c);

/* Thread names from /proc/PID/task/TID/comm into c->threads[i].name. */
int pm_read_thread_names(pid_t pid, hs_capture *c);

/* Set kind, module_idx and tid of every mapping, using c->modules, c->threads
 * (stack pointers), c->arenas (heaps) and c->chunks (mmapped chunks). */
void pm_classify(hs_capture *c);

#endif
