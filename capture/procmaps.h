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

/* Join /proc/PID/smaps (read now, after the resume) into c->maps by exact [start, end)
 * (c->maps sorted by start, as pm_maps_from_vmas leaves it). Known keys go to sm[] (kB;
 * THPeligible 0/1), VmFlags to vmflags, unknown numeric keys to extra[]; dev and inode
 * come from the block headers. VMAs that changed since the freeze keep -1 (NULL) fields.
 * 0, -ESRCH (gone: smaps empty), or a negative errno. */
int pm_read_smaps(pid_t pid, hs_capture *c);
/* Parse smaps text from a stream into c->maps (the same join); for tests. */
int pm_parse_smaps(FILE *f, hs_capture *c);

/* pid, ppid, uid, gid, exe, argv, comm, start time, kernel, page size, VmSize/VmRSS/Rss... figures. */
int pm_read_process(pid_t pid, hs_capture *c);

/* Thread names from /proc/PID/task/TID/comm into c->threads[i].name. */
int pm_read_thread_names(pid_t pid, hs_capture *c);

/* Set kind, module_idx and tid of every mapping, using c->modules (module_idx as
 * mod_collect set it), c->threads (stack pointers), c->arenas (heaps) and c->chunks
 * (mmapped chunks); also each thread's stack_lo/stack_hi. First match wins:
 * [heap], [vdso], [vvar]/[vvar_vclock], [vsyscall]; anonymous memory in a non-main
 * arena's 64 MiB heap reservation (rw part and ---p reserve) -> arena_heap; anonymous
 * memory holding an mmapped chunk -> mmap_chunk; the mapping of a thread's sp, or
 * [stack] -> stack; module file segments by perms (r-x text, rw- data, r-- rodata, ---
 * guard); anonymous rw-p right after a module's rw segment -> module_bss; shared or
 * /dev/shm, SysV, memfd, /dev/zero -> shm; other files -> file; ---p -> guard; anon. */
void pm_classify(hs_capture *c);

#endif
