/* hp_format.h -- the tracking library's data format, as the capture reads it out of a
 * frozen process: the block header in front of every tracked allocation and the
 * exported state (symbol HP_STATE_SYMBOL in libheapsnap_preload.so's .dynsym).
 *
 * This header is the single source of truth for that format (README.md in this folder
 * explains it in prose). It has no dependency on the library: the capture side may
 * include it and decode copied bytes with the inline functions at the bottom. Every
 * address in the exported state is a virtual address in the target; every integer is
 * x86-64 little-endian. A reader must treat everything as untrusted: bounds-check
 * counts against the max_* fields, cap loops, and validate each block header.
 */
#ifndef HEAPSNAP_HP_FORMAT_H
#define HEAPSNAP_HP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define HP_STATE_SYMBOL "heapsnap_tracker_state"
#define HP_MAGIC 0x314b434152545348ull   /* "HSTRACK1" in memory */
#define HP_FORMAT_VERSION 1

/* ---- the block header ---------------------------------------------------------
 * Every block handed out by the library starts with a 16-byte header at the user
 * start u of the real allocator's block (for glibc: chunk address + 16). The program
 * gets p = u + 2^ulog: u + 16 for ordinary blocks, u + alignment for blocks from
 * memalign/posix_memalign/aligned_alloc/valloc/pvalloc with an alignment above 16.
 *
 *   word A at u+0:  bits  0..39  seq: low 40 bits of the allocation sequence number
 *                   bits 40..63  stack id (index in the stack table; see HP_STACK_*)
 *   word B at u+8:  bit  63      HP_B_MARK, always 1 (a glibc chunk size field never has
 *                                it, so a pointer the library did not hand out is never
 *                                taken for one of its blocks by free())
 *                   bit  62      HP_B_UNSAMPLED: sampling skipped this block; its stack
 *                                id is HP_STACK_UNSAMPLED and it is in no counter. Only
 *                                a realloc of a block that had a header gives this: a
 *                                block the sampler skips when it is allocated gets no
 *                                header at all (it stays the real allocator's own)
 *                   bit  61      HP_B_BACK: always 0 in a header (see the back word)
 *                   bits 55..60  ulog: p - u == 1 << ulog (4 for ordinary blocks)
 *                   bits 40..54  check: hp_check(u, word A, size)
 *                   bits  0..39  requested size in bytes, saturated at HP_SIZE_SAT
 *                                (then the real size is at least that: use the usable
 *                                size)
 * Aligned blocks (ulog > 4) also hold a back word at p-8 for free():
 *   back word:      HP_B_MARK | HP_B_BACK | ulog << 55 | hp_check(p, 0, 0) << 40
 * The usable size the program may use is (real usable size of u) - (1 << ulog).
 * When a block is freed its word B is cleared before the real free.
 *
 * Sequence numbers come from a global 64-bit counter (hp_state.seq) that threads draw
 * from in batches of HP_SEQ_BATCH; a thread drops its batch once the counter is more
 * than HP_SEQ_STALE ahead of it, so a seq is within about HP_SEQ_STALE + HP_SEQ_BATCH
 * of the block's true place in the global order. Only the low 40 bits are stored: the
 * full value is the largest number <= hp_state.seq with those low bits (exact for any
 * block younger than 2^40 allocations).
 */
#define HP_HDR_SIZE 16u
#define HP_B_MARK (1ull << 63)
#define HP_B_UNSAMPLED (1ull << 62)
#define HP_B_BACK (1ull << 61)
#define HP_B_ULOG_SHIFT 55
#define HP_B_ULOG_MASK 0x3full
#define HP_B_CHECK_SHIFT 40
#define HP_B_CHECK_MASK 0x7fffull
#define HP_SIZE_BITS 40
#define HP_SIZE_SAT ((1ull << HP_SIZE_BITS) - 1)
#define HP_SEQ_BITS 40
#define HP_SEQ_MASK ((1ull << HP_SEQ_BITS) - 1)
#define HP_STACK_SHIFT 40
#define HP_ULOG_PLAIN 4
#define HP_SEQ_BATCH 64
#define HP_SEQ_STALE 1024

/* Stack ids. 1 .. n_stacks-1 index the stack table; the others are reserved:
 *   HP_STACK_INTERNAL   made while the library itself was busy (its own unwinder's or
 *                       libdw's allocations, or a signal handler interrupting a hook)
 *   HP_STACK_UNSAMPLED  skipped by sampling (word B has HP_B_UNSAMPLED)
 *   HP_STACK_OVERFLOW   the stack table was full
 *   HP_STACK_NONE       no stack could be taken (the unwinder failed at the first frame)
 */
#define HP_STACK_INTERNAL 0u
#define HP_STACK_UNSAMPLED 0xfffffdu
#define HP_STACK_NONE 0xfffffeu
#define HP_STACK_OVERFLOW 0xffffffu
#define HP_STACK_ID_MAX 0xfffff0u   /* ids above are reserved */

/* The check: 15 bits of a multiplicative hash of the header's address and contents. */
#define HP_CHECK_K1 0x9e3779b97f4a7c15ull
#define HP_CHECK_K2 0xff51afd7ed558ccdull
static inline uint64_t hp_check(uint64_t addr, uint64_t word_a, uint64_t size)
{
	uint64_t x = (addr ^ (word_a * HP_CHECK_K1) ^ size) * HP_CHECK_K2;
	return (x >> 49) & HP_B_CHECK_MASK;
}

/* ---- the exported state -------------------------------------------------------
 * `heapsnap_tracker_state` (type struct hp_state) lives in the library's .bss/.data.
 * magic is written last at initialization: a reader seeing any other value must treat
 * the library as not (yet) initialized. Tables are append-only: each has a capacity
 * (max_*) and a published count (n_*) that is stored only after the entries below it
 * are complete, so a reader copying the count first and then the entries never sees a
 * half-written entry.
 */
struct hp_state {
	uint64_t magic;              /*   0: HP_MAGIC */
	uint32_t version;            /*   8: HP_FORMAT_VERSION */
	uint32_t state_size;         /*  12: sizeof(struct hp_state) */
	uint32_t hdr_size;           /*  16: HP_HDR_SIZE */
	uint32_t flags;              /*  20: HP_ST_* */
	uint64_t sample_interval;    /*  24: mean bytes between samples; 0 = every allocation */
	uint32_t max_depth;          /*  32: frames kept per stack (HEAPSNAP_DEPTH) */
	uint32_t pid;                /*  36: process this state belongs to (updated after fork) */
	/* stack table: id -> address of a struct hp_stack; ids [1, n_stacks) are complete */
	uint64_t stack_table;        /*  40: address of uint64_t[max_stacks] */
	uint32_t max_stacks;         /*  48 */
	volatile uint32_t n_stacks;  /*  52 */
	/* thread records: [0, n_threads) are initialized; a record with tid 0 is retired */
	uint64_t thread_table;       /*  56: address of struct hp_thread_pub[max_threads] */
	uint32_t max_threads;        /*  64 */
	volatile uint32_t n_threads; /*  68 */
	/* modules unloaded by dlclose, oldest first */
	uint64_t unload_table;       /*  72: address of struct hp_unload[max_unloads] */
	uint32_t max_unloads;        /*  80 */
	volatile uint32_t n_unloads; /*  84 */
	volatile uint64_t dl_gen;    /*  88: dlclose calls that unloaded something, so far */
	/* statistics (diagnostics only) */
	volatile uint64_t n_fallback;     /*  96: stacks taken with libunwind */
	volatile uint64_t n_mismatch;     /* 104: HEAPSNAP_CHECK: fast stack != libunwind's */
	volatile uint64_t n_checked;      /* 112: HEAPSNAP_CHECK: stacks compared */
	volatile uint64_t n_bootstrap;    /* 120: allocations served from the bootstrap buffer */
	volatile uint64_t n_foreign_free; /* 128: free/realloc of pointers the library did not make */
	volatile uint64_t n_fork_torn;    /* 136: threads caught inside a hook by another thread's
					   *      fork: in the child, each may leave the live
					   *      counters off by one block against the headers */
	uint64_t reserved[6];             /* 144 */
	volatile uint64_t seq;       /* 192: the sequence counter (alone on its cache line):
				      *      every seq handed out so far is below it */
	uint64_t pad[7];             /* 200 .. 256 */
};
#define HP_ST_SAMPLING 1u   /* sample_interval > 0 */
#define HP_ST_CHECK 2u      /* HEAPSNAP_CHECK=1: every fast stack compared with libunwind */

/* A stack: pc[0] is the return address into the caller of malloc (or of operator new,
 * which is libstdc++'s frame), pc[n-1] the outermost frame found. PCs are return
 * addresses (subtract 1 to symbolize the call). gen is hp_state.dl_gen when the stack
 * was recorded: a pc inside a module of the unload table with gen < that module's
 * unload_gen belongs to that module, not to whatever is mapped there now. */
struct hp_stack {
	uint64_t hash;       /* 0: the library's hash of (pcs, n, gen) */
	uint32_t id;         /* 8: its own id */
	uint32_t n;          /* 12: number of pcs, 1 .. max_depth */
	uint32_t gen;        /* 16: hp_state.dl_gen when recorded */
	uint32_t reserved;   /* 20 */
	uint64_t pc[];       /* 24: innermost first */
};

/* One thread. `where` is what the thread is doing with the allocator:
 *   HP_WHERE_OUT    not inside the library (and so not inside the real allocator
 *                   through it)
 *   HP_WHERE_HOOK   inside a hook, outside the real allocator: only the library's own
 *                   state may be mid-update (a header, the counters, the stack table);
 *                   the thread may hold the library's locks
 *   HP_WHERE_ALLOC  inside the real allocator (malloc, free, ...): the heap may be
 *                   mid-update (a free also updates its counters and clears the
 *                   block's header under this state)
 * A thread stopped with where == HP_WHERE_OUT is at a safe point for the tracker, and
 * for the heap unless it is inside the real allocator on one of the sampling paths
 * that leave the flag alone: a block the sampler skips (malloc, calloc, the aligned
 * kinds, realloc) and the free of a block without a header, under sampling. Those
 * touch no shared state of the library; the thread's stack then shows libc frames
 * whose caller is in the library's code, which is how a reader tells. Counters: `counters` is the address of a directory of HP_CNT_DIRS
 * addresses (0 = none yet), each of a block of HP_CNT_PER {count, bytes} int64 pairs
 * for stack ids dir*HP_CNT_PER + i. Threads update only their own counters, and frees
 * are counted by the freeing thread, so a single record may go negative: the live
 * totals per stack are the sums over all records, retired ones included. Bytes are the
 * requested sizes as stored in the headers (saturated at HP_SIZE_SAT). */
struct hp_thread_pub {
	volatile int32_t tid;        /*  0: 0 = retired (its counters still count) */
	volatile uint32_t where;     /*  4: HP_WHERE_* */
	uint64_t counters;           /*  8: address of uint64_t[HP_CNT_DIRS] */
	volatile uint64_t n_alloc;   /* 16: stats: stacks taken by the walk or libunwind */
	volatile uint64_t n_memo;    /* 24: stats: stacks from the validated memo */
	volatile uint64_t n_walk;    /* 32: stats: stacks from the cached-CFA walk */
	uint64_t pad[11];            /* 40 .. 128: two cache lines per record (no false
				      *   sharing through adjacent-line prefetch) */
};
#define HP_WHERE_OUT 0u
#define HP_WHERE_HOOK 1u
#define HP_WHERE_ALLOC 2u
#define HP_CNT_PER 4096u
#define HP_CNT_DIRS 4096u    /* HP_CNT_DIRS * HP_CNT_PER == 1 << 24 ids */

/* A module unloaded by dlclose: [lo, hi) was mapped at load bias `bias`. */
struct hp_unload {
	uint64_t lo, hi, bias;
	uint64_t gen;                /* dl_gen after the unload */
	uint64_t path;               /* address of a NUL-terminated path (<= 4096 bytes) */
};

/* ---- decoding (for the capture and the tests) -----------------------------------
 * Decode the header of a block whose real user start is u, given the bytes the capture
 * copied from [u, u + avail) (avail >= 16) and the real usable size (chunk size minus
 * glibc's overhead). Returns 1 and fills *out if it is a valid header, else 0. */
struct hp_block {
	uint64_t user;       /* p, the pointer the program holds */
	uint64_t usable;     /* what malloc_usable_size(p) returns */
	uint64_t size;       /* requested size (HP_SIZE_SAT: at least that) */
	uint64_t seq_low;    /* low HP_SEQ_BITS of the sequence number */
	uint32_t stack;      /* stack id (HP_STACK_* for the reserved ones) */
	int unsampled;       /* 1 if sampling skipped it */
};
static inline int hp_decode(uint64_t u, const void *bytes, size_t avail, uint64_t real_usable,
			    struct hp_block *out)
{
	const unsigned char *b = bytes;
	uint64_t a, w;
	if (avail < 16 || real_usable < 16)
		return 0;
	__builtin_memcpy(&a, b, 8);
	__builtin_memcpy(&w, b + 8, 8);
	if ((w & (HP_B_MARK | HP_B_BACK)) != HP_B_MARK)
		return 0;
	unsigned ulog = (unsigned)(w >> HP_B_ULOG_SHIFT & HP_B_ULOG_MASK);
	uint64_t size = w & HP_SIZE_SAT;
	if (ulog < HP_ULOG_PLAIN || ulog > 40 || (1ull << ulog) > real_usable)
		return 0;
	if ((w >> HP_B_CHECK_SHIFT & HP_B_CHECK_MASK) != hp_check(u, a, size))
		return 0;
	uint64_t usable = real_usable - (1ull << ulog);
	if (size != HP_SIZE_SAT && size > usable)
		return 0;
	out->user = u + (1ull << ulog);
	out->usable = usable;
	out->size = size;
	out->seq_low = a & HP_SEQ_MASK;
	out->stack = (uint32_t)(a >> HP_STACK_SHIFT);
	out->unsampled = (w & HP_B_UNSAMPLED) != 0;
	return 1;
}

/* The full sequence number from its low bits and hp_state.seq (see above). */
static inline uint64_t hp_seq_full(uint64_t seq_low, uint64_t state_seq)
{
	uint64_t s = (state_seq & ~HP_SEQ_MASK) | seq_low;
	if (s > state_seq && s >= (1ull << HP_SEQ_BITS))
		s -= 1ull << HP_SEQ_BITS;
	return s;
}

#endif
