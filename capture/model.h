/* model.h -- the in-memory result of one capture: what the capture modules fill in
 * and what snapwrite turns into an SQLite snapshot.
 *
 * Ownership: everything hanging off an hs_capture is owned by it and released by
 * hs_capture_free(). Strings are heap-allocated, NUL-terminated, and may be NULL
 * where the schema allows NULL. Addresses are target virtual addresses.
 * Sizes are bytes unless a field name ends in _kb (kibibytes, as /proc prints them).
 */
#ifndef HEAPSNAP_MODEL_H
#define HEAPSNAP_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* ---- mappings (one per VMA of /proc/PID/smaps) ---- */
enum hs_map_kind {
	HS_MAP_ANON = 0,      /* anonymous memory not claimed by anything below */
	HS_MAP_HEAP,          /* the brk heap ([heap]) */
	HS_MAP_ARENA_HEAP,    /* a non-main glibc arena heap (64 MiB aligned), incl. its ---p reserve */
	HS_MAP_MMAP_CHUNK,    /* holds one or more glibc mmapped chunks */
	HS_MAP_STACK,         /* a thread stack (tid set) */
	HS_MAP_MODULE_TEXT,   /* executable segment of a module */
	HS_MAP_MODULE_RODATA, /* read-only segment of a module (incl. relro after mprotect) */
	HS_MAP_MODULE_DATA,   /* writable file-backed segment of a module (.data, .got) */
	HS_MAP_MODULE_BSS,    /* anonymous writable tail right after a module's data (.bss) */
	HS_MAP_VDSO,          /* [vdso] */
	HS_MAP_VVAR,          /* [vvar], [vvar_vclock] */
	HS_MAP_VSYSCALL,      /* [vsyscall] */
	HS_MAP_SHM,           /* shared memory: SysV, /dev/shm, memfd, /dev/zero (deleted) */
	HS_MAP_FILE,          /* any other file mapping (not an ELF module) */
	HS_MAP_GUARD,         /* ---p with no other owner (guard pages, reservations) */
	HS_MAP_KIND_COUNT
};
const char *hs_map_kind_name(enum hs_map_kind k); /* "anon", "heap", "arena_heap", ... */

/* The smaps fields the schema has a column for; anything else goes to extra[]. */
enum hs_smaps_field {
	HS_SM_SIZE = 0, HS_SM_KERNELPAGESIZE, HS_SM_MMUPAGESIZE, HS_SM_RSS, HS_SM_PSS,
	HS_SM_PSS_DIRTY, HS_SM_PSS_ANON, HS_SM_PSS_FILE, HS_SM_PSS_SHMEM,
	HS_SM_SHARED_CLEAN, HS_SM_SHARED_DIRTY, HS_SM_PRIVATE_CLEAN, HS_SM_PRIVATE_DIRTY,
	HS_SM_REFERENCED, HS_SM_ANONYMOUS, HS_SM_KSM, HS_SM_LAZYFREE, HS_SM_ANONHUGEPAGES,
	HS_SM_SHMEMPMDMAPPED, HS_SM_FILEPMDMAPPED, HS_SM_SHARED_HUGETLB, HS_SM_PRIVATE_HUGETLB,
	HS_SM_SWAP, HS_SM_SWAPPSS, HS_SM_LOCKED, HS_SM_THPELIGIBLE,
	HS_SM_COUNT
};
/* smaps key ("Pss_Anon") for a field, and the reverse (-1 if unknown). */
const char *hs_smaps_key(enum hs_smaps_field f);
int hs_smaps_field_of(const char *key);

typedef struct {
	char key[40];
	int64_t value; /* kB for size fields, as printed otherwise */
} hs_kv;

typedef struct {
	uint64_t start, end;  /* [start, end) */
	uint64_t offset;      /* file offset */
	char perms[5];        /* "rw-p" */
	char dev[16];         /* "fd:01" */
	uint64_t inode;
	char *path;           /* NULL for anonymous; "[heap]", "[stack]", ... kept verbatim */
	int64_t sm[HS_SM_COUNT]; /* smaps fields in kB (THPeligible: 0/1); -1 = absent on this kernel */
	hs_kv *extra;         /* smaps keys this build does not know */
	size_t n_extra;
	char *vmflags;        /* "rd wr mr mw me ac sd" or NULL */
	enum hs_map_kind kind;
	int module_idx;       /* index into hs_capture.modules, or -1 */
	int tid;              /* for HS_MAP_STACK: the owning thread, else 0 */
} hs_mapping;

/* ---- modules (loaded ELF objects) ---- */
typedef struct {
	char *path;           /* as in /proc/PID/maps */
	char *build_id;       /* lowercase hex, NULL if none */
	uint64_t load_base;   /* load bias: runtime address = ELF vaddr + load_base */
	uint64_t start, end;  /* lowest and highest mapped address of the module */
	int is_main;          /* 1 for the main executable */
	int has_debuginfo;    /* 1 if DWARF was found (in the file or separate by build-id) */
} hs_module;

/* ---- frames and call sites (normalized like Perfetto's stack_profile tables) ---- */
typedef struct {
	int module_idx;       /* -1 if the pc is in no module */
	uint64_t rel_pc;      /* pc - module load_base (absolute pc when module_idx < 0) */
	uint64_t pc;          /* absolute pc at capture time */
	char *function;       /* demangled when C++; NULL if unknown */
	uint64_t func_offset; /* pc - function start, when function is known */
	char *file;           /* source file, NULL without debug info */
	int line;             /* 0 when unknown */
	int inline_depth;     /* 0 = the real frame; >0 = inlined into the frame below it */
} hs_frame;

typedef struct {
	int parent;           /* callsite index of the caller, -1 for an outermost frame */
	int frame;            /* index into hs_capture.frames */
	int depth;            /* 0 for the outermost frame */
} hs_callsite;

/* ---- threads ---- */
enum hs_safepoint {
	HS_SP_CLEAN = 0,      /* was not inside the allocator */
	HS_SP_RAN_OUT,        /* was inside the allocator; we let it run out of it */
	HS_SP_PARKED_LOCK,    /* blocked on a futex inside the allocator: holds nothing, left alone */
	HS_SP_PARKED_SYSCALL, /* blocked in a syscall malloc never makes */
	HS_SP_IN_FLUX,        /* still inside the allocator when its budget ran out */
	HS_SP_UNKNOWN         /* could not be classified (unwind failed) */
};
const char *hs_safepoint_name(enum hs_safepoint s);

/* glibc's tcache: TCACHE_MAX_BINS bins; bin i holds chunks of 32 + 16*i bytes (x86-64). */
#define HS_TCACHE_BINS 64
#define HS_TCACHE_BIN_SIZE(i) (32u + 16u * (unsigned)(i))

/* x86-64 general registers, in struct user_regs_struct order. */
#define HS_NREGS 27
extern const char *const hs_reg_names[HS_NREGS]; /* "r15", "r14", ..., "gs" */

typedef struct {
	int tid;
	char name[32];        /* comm of the thread */
	char state;           /* /proc status state letter before we attached: R S D T t Z ... */
	int was_stopped;      /* 1 if it was in group-stop (SIGSTOP) before we came; it stays stopped */
	uint64_t regs[HS_NREGS];
	int regs_valid;
	uint64_t fs_base;
	uint64_t sp, pc;      /* copies of rsp and rip for convenience */
	enum hs_safepoint safepoint;
	int syscall_nr;       /* syscall it is blocked in, or -1 */
	uint64_t stack_lo, stack_hi; /* the stack mapping, 0 if not found */
	uint64_t tcache;      /* its tcache_perthread_struct user pointer, 0 if none */
	uint64_t arena;       /* its thread_arena, 0 if unknown */
	int callsite;         /* innermost callsite of its backtrace, -1 if none */
	int unwind_error;     /* 0, or a negative code when the unwind stopped early */
	/* What its tcache held at the capture, filled by the heap walker (all zero when it
	 * has no tcache): bin i holds free chunks of size HS_TCACHE_BIN_SIZE(i). Written to
	 * the thread_tcache table, one row per non-empty bin. */
	uint32_t tcache_count[HS_TCACHE_BINS];  /* chunks in bin i (glibc: counts[i]) */
	uint64_t tcache_bytes[HS_TCACHE_BINS];  /* their total chunk size, bytes */
} hs_thread;

/* ---- glibc heap ---- */
enum hs_chunk_state {
	HS_CH_IN_USE = 0,     /* allocated and not on any free list */
	HS_CH_FREE_BIN = 1,   /* free in the unsorted, a small or a large bin */
	HS_CH_TCACHE = 2,     /* held in a thread's tcache */
	HS_CH_FASTBIN = 3,    /* in a fastbin */
	HS_CH_TOP = 4,        /* an arena's top chunk */
	HS_CH_INTERNAL = 5,   /* allocator-internal: tcache struct, arena/heap header, fencepost, mmap lead */
	HS_CH_STATE_COUNT
};
const char *hs_chunk_state_name(enum hs_chunk_state s);

enum hs_internal_kind {
	HS_INT_NONE = 0, HS_INT_TCACHE_STRUCT, HS_INT_HEAP_HEADER, HS_INT_FENCEPOST, HS_INT_MMAP_LEAD
};

typedef struct {
	uint64_t addr;        /* chunk address (user pointer - 16) */
	uint64_t size;        /* chunk size in bytes, flag bits cleared */
	uint8_t state;        /* enum hs_chunk_state */
	uint8_t internal;     /* enum hs_internal_kind when state == HS_CH_INTERNAL */
	uint8_t mmapped;      /* 1 for an mmapped chunk (belongs to no arena) */
	int32_t arena;        /* index into hs_capture.arenas, -1 for mmapped chunks */
} hs_chunk;

/* usable size as malloc_usable_size() reports it for an in-use chunk */
static inline uint64_t hs_chunk_usable(const hs_chunk *c)
{
	return c->size - (c->mmapped ? 16 : 8);
}

typedef struct {
	uint64_t addr;        /* heap_info address (64 MiB aligned) */
	uint64_t size;        /* heap_info.size: bytes in use (read-write) */
	uint64_t mprotect_size;
} hs_heap;

typedef struct {
	uint64_t addr;        /* &malloc_state */
	int is_main;
	uint64_t top;         /* top chunk address */
	uint64_t system_mem, max_system_mem;  /* copied from the arena header */
	int mutex, flags, have_fastchunks;
	uint64_t attached_threads;
	hs_heap *heaps;       /* non-main arenas: newest first, as the prev list goes */
	size_t n_heaps;
	/* what glibc's int_mallinfo would compute from this arena's header and lists */
	uint64_t list_bin_count, list_bin_bytes, list_fast_count, list_fast_bytes, top_size;
	int consistent;       /* 1 if every check passed */
	char *note;           /* why not consistent, NULL if consistent */
} hs_arena;

typedef struct {
	int found;            /* 1 if a glibc heap was found and walked */
	char *note;           /* "no glibc heap found: ..." or other remark, may be NULL */
	char *glibc_version;  /* "2.36", NULL if not glibc */
	int used_debug_symbols; /* 1 if main_arena/mp_ came from libc debug symbols */
	uint64_t main_arena, mp;  /* addresses of main_arena and mp_ */
	long tcache_tls_offset;   /* &tcache == fs_base - this; 0 if unknown */
	uint64_t tcache_key;
	uint64_t mp_n_mmaps, mp_mmapped_mem;  /* copied from mp_ for cross-checks */
	uint64_t mp_mmap_threshold, mp_trim_threshold, mp_arena_max;
	uint64_t mp_tcache_bins, mp_tcache_count;
} hs_heapinfo;

/* ---- the frozen window ---- */
typedef struct {
	uint64_t pause_us;        /* first stop to last resume, microseconds */
	uint64_t freeze_us;       /* stopping all threads */
	uint64_t safepoint_us;    /* bringing threads out of the allocator */
	uint64_t copy_us;         /* bulk memory copy */
	uint64_t copy_bytes;
	int attempts;             /* freezes made (>1 if the heap had to be re-frozen) */
	int threads_ran_out;      /* threads we let run out of the allocator */
	int threads_in_flux;
	int threads_in_tracker;   /* threads found inside a tracking-library hook (not stored) */
} hs_freezeinfo;

/* ---- allocation tracking (libheapsnap_preload.so, read by tracking.c) ---- */
enum hs_alloc_origin {
	HS_AO_STACK = 0,      /* recorded with a call stack (callsite set) */
	HS_AO_INTERNAL,       /* made by the tracking library itself (its unwinder, libdw) */
	HS_AO_UNSAMPLED,      /* skipped by sampling: made under the library, no stack */
	HS_AO_NO_STACK,       /* the library could not take a stack */
	HS_AO_TABLE_FULL,     /* the library's stack table was full */
	HS_AO_BAD_STACK,      /* a stack id the copied stack table does not hold */
};

typedef struct {
	uint64_t addr;        /* chunk address */
	uint64_t requested;   /* bytes asked for (HP_SIZE_SAT in the header: the usable size) */
	uint64_t usable;      /* malloc_usable_size() as the program sees it (chunk usable - 2^ulog) */
	uint64_t seq;         /* full allocation sequence number */
	uint32_t stack_id;    /* the library's stack id */
	uint8_t origin;       /* enum hs_alloc_origin */
	int callsite;         /* innermost callsite of the allocating stack, -1 if none */
} hs_alloc;

typedef struct {
	int tid;              /* a live thread record of the library */
	uint32_t where;       /* HP_WHERE_*: 0 out, 1 in a hook, 2 in the real allocator, at the copy */
	uint64_t n_alloc, n_memo, n_walk; /* stacks taken: walk or libunwind, memo, walk */
} hs_trk_thread;

typedef struct {
	int found;            /* 1 if libheapsnap_preload.so is mapped in the target */
	int valid;            /* 1 if its exported state was read and initialized */
	char *lib_path;       /* the library's path as mapped */
	int module_idx;       /* its module, -1 if unknown */
	char *note;           /* why not valid, or other remark; NULL if none */
	uint64_t state_addr;  /* &heapsnap_tracker_state in the target */
	uint32_t version, flags, max_depth, state_pid;
	uint64_t sample_interval;   /* 0 = every allocation */
	uint32_t n_stacks, max_stacks, n_threads, max_threads, n_unloads;
	uint64_t dl_gen, seq;
	uint64_t n_fallback, n_bootstrap, n_foreign_free;
	uint64_t n_fork_torn;   /* hooks torn by a fork (counters may be off by one block each) */
	/* the join of headers and the heap walk */
	uint64_t tracked_count, tracked_bytes;     /* origin stack/no_stack/table_full/bad: requested bytes */
	uint64_t internal_count, internal_bytes;   /* origin internal */
	uint64_t unsampled_count, unsampled_bytes; /* origin unsampled */
	uint64_t untracked_count, untracked_bytes; /* in-use chunks with no header (usable bytes) */
	uint64_t table_full_count;                 /* origin table_full */
	/* the library's live counters against the headers found, summed over stacks */
	int counters_read;                         /* 1 if every counter block was in the copy */
	uint64_t missing_count, missing_bytes;     /* counted live, no header in the heap */
	uint64_t extra_count, extra_bytes;         /* headers in the heap beyond the counts */
	hs_trk_thread *threads; size_t n_trk_threads; /* the library's live thread records */
	int threads_in_hook, threads_in_alloc;     /* of those, where == 1 / 2 at the copy */
} hs_tracking;

/* ---- process facts ---- */
typedef struct {
	int pid, ppid;
	uint32_t uid, gid;
	char *exe;            /* readlink /proc/PID/exe */
	char **argv;          /* cmdline split at NULs */
	size_t argc;
	char comm[32];
	uint64_t start_ticks; /* field 22 of /proc/PID/stat: start time in clock ticks since boot */
	char *kernel;         /* uname release */
	uint64_t page_size;
	uint64_t capture_time_us; /* UTC, microseconds since the epoch, at the freeze */
	int64_t vm_size_kb, vm_rss_kb, rss_anon_kb, rss_file_kb, rss_shmem_kb, vm_swap_kb; /* -1 absent */
	int64_t vm_peak_kb, vm_hwm_kb, vm_data_kb, vm_stk_kb;
} hs_process;

typedef struct {
	hs_process proc;
	hs_freezeinfo freeze;
	hs_heapinfo heap;
	hs_mapping *maps;     size_t n_maps;
	hs_module *modules;   size_t n_modules;
	hs_thread *threads;   size_t n_threads;
	hs_frame *frames;     size_t n_frames, cap_frames;
	hs_callsite *callsites; size_t n_callsites, cap_callsites;
	int32_t *cs_hash;     size_t cs_slots;   /* private to hs_add_callsite */
	hs_arena *arenas;     size_t n_arenas;
	hs_chunk *chunks;     size_t n_chunks, cap_chunks;  /* sorted by addr when written */
	hs_tracking tracking;                     /* zero when the library is absent */
	hs_alloc *allocs;     size_t n_allocs;    /* tracked chunks, by chunk address */
	struct ps_graph *graph;                   /* pointer graph (ptrscan.h), NULL if not scanned */
	char *tool_version;
} hs_capture;

void hs_capture_init(hs_capture *c);
void hs_capture_free(hs_capture *c);

/* Append helpers: return the new element's index, or -1 on OOM. */
long hs_add_chunk(hs_capture *c, const hs_chunk *ch);
long hs_add_frame(hs_capture *c, const hs_frame *f);          /* takes ownership of strings */
long hs_add_callsite(hs_capture *c, int parent, int frame, int depth); /* dedups (parent, frame) */

#endif
