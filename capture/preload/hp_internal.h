/* hp_internal.h -- what the tracking library's modules share: the configuration, the
 * per-thread state, the real allocator, and each module's entry points. Nothing here
 * is visible outside libheapsnap_preload.so (-fvisibility=hidden); only the interposed
 * functions and the exported state are (HP_EXPORT).
 *
 * Rules for everything reachable from a hook: no stdio, no locks that allocate, no
 * allocation except through the real allocator or hp_mmap(); code that may call
 * malloc (libdw, libunwind, pthread_getattr_np, dlsym) runs with hp_busy set, so
 * those calls are served untracked (HP_STACK_INTERNAL) without recursion.
 */
#ifndef HEAPSNAP_HP_INTERNAL_H
#define HEAPSNAP_HP_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hp_format.h"

#define HP_EXPORT __attribute__((visibility("default")))
#define HP_TLS __thread __attribute__((tls_model("initial-exec")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define HP_MAX_DEPTH 256          /* upper bound of HEAPSNAP_DEPTH */
#define HP_DEFAULT_DEPTH 64
#define HP_MAX_REQUEST ((size_t)1 << 62) /* larger requests fail with ENOMEM */

/* ---- the exported state and configuration (hp_state.c) ---- */
extern struct hp_state heapsnap_tracker_state;
#define HP_ST (&heapsnap_tracker_state)
struct hp_config {
	int inited;               /* hp_init() has run to the end */
	int depth;                /* frames per stack */
	int check;                /* HEAPSNAP_CHECK: compare fast stacks with libunwind */
	int no_memo;              /* HEAPSNAP_MEMO=0: never use the stack memo */
	int no_fast;              /* HEAPSNAP_FAST=0: libunwind for every stack */
	uint64_t sample;          /* HEAPSNAP_SAMPLE, 0 = off */
	uint64_t seed;            /* HEAPSNAP_SEED, 0 = from the clock */
	uintptr_t self_lo, self_hi;   /* this library's mapping */
	uintptr_t unw_lo, unw_hi;     /* libunwind's mapping */
};
extern struct hp_config hp_cfg;
void hp_init(void);               /* idempotent; called by the constructor or the first hook */
void *hp_mmap(size_t n);          /* zeroed, MAP_NORESERVE; aborts on failure */
void hp_die(const char *msg);     /* write(2) a message and abort */

/* ---- the real allocator (hp_real.c) ---- */
struct hp_real {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*memalign)(size_t, size_t);
	size_t (*usable)(void *);
};
extern struct hp_real hp_real;
extern int hp_real_ready;
void hp_real_resolve(void);
/* the bootstrap buffer, used until hp_real is resolved */
void *hp_boot_alloc(size_t n, size_t align, int zero);
#define HP_BOOT_SIZE (256 * 1024)
/* the word in front of a bootstrap block: MARK and BACK with ulog 0, which no block
 * header or back word has, so free() sends it to the slow path (hp_boot_owns) */
#define HP_BOOT_WORD (HP_B_MARK | HP_B_BACK)
extern char hp_boot_buf[HP_BOOT_SIZE];
static inline int hp_boot_owns(const void *p)
{
	return (const char *)p >= hp_boot_buf && (const char *)p < hp_boot_buf + HP_BOOT_SIZE;
}
size_t hp_boot_size(const void *p);

/* ---- stack capture (hp_unwind.c) and interning (hp_intern.c) ---- */
struct hp_tstate;
/* The stack of the caller of a hook. pc is the hook's return address, sp the hook's
 * CFA (its frame address + 16), bp the caller's rbp. Returns a stack id. */
uint32_t hp_stack_id(struct hp_tstate *t, uintptr_t pc, uintptr_t sp, uintptr_t bp, int missed);
/* (missed: hp_memo_fast() already looked the memo up and missed; see hp_memo.h) */
void hp_stack_check(struct hp_tstate *t, uint32_t id);  /* HEAPSNAP_CHECK of a memo hit */
void hp_unwind_flush(struct hp_tstate *t);        /* forget cached rules and stacks */
void hp_unwind_atfork(int phase);                  /* 0 prepare, 1 parent, 2 child */
uint32_t hp_intern(struct hp_tstate *t, const uintptr_t *pc, int n);
void hp_intern_init(void);
void hp_intern_atfork(int phase);
const struct hp_stack *hp_stack_get(uint32_t id);

/* ---- sampling (hp_sample.c) ---- */
int64_t hp_sample_next(struct hp_tstate *t);       /* bytes to the next sample point */

/* ---- dlclose (hp_dlclose.c) ---- */
void hp_dlclose_init(void);
void hp_dlclose_atfork(int phase);               /* 0 prepare, 1 parent, 2 child */

/* ---- per-thread state (hp_thread.c) ---- */
#define HP_RC_BITS 10             /* CFA-rule cache: 1024 entries */
#define HP_IC_BITS 10             /* intern cache: 1024 entries */
#define HP_MEMO_SETS 128
#define HP_MEMO_WAYS 8
#define HP_MEMO_WORDS 64

struct hp_rule {                  /* how to go from a frame to its caller (16 bytes) */
	uintptr_t key;            /* the return address (looked up at key - 1) */
	int32_t cfa_off;
	int16_t rbp_off;          /* 0: the caller's rbp is ours; else saved at CFA+rbp_off */
	uint8_t cfa_rbp;          /* CFA = (cfa_rbp ? rbp : rsp) + cfa_off */
	uint8_t kind;             /* HP_RULE_* */
};
enum { HP_RULE_OK = 0, HP_RULE_END = 1, HP_RULE_BAD = 2 };

struct hp_memo_ent {              /* a whole stack, valid while the words still match */
	uintptr_t pc0, sp0, bp0;
	uint32_t id, nw, usebp, disc; /* disc: the word that last told entries apart */
	struct { uintptr_t addr, val; } w[HP_MEMO_WORDS];
};

struct hp_tstate {
	struct hp_thread_pub *pub;
	struct hp_tstate *next_free;  /* retired records, for reuse */
	uint64_t gen;                 /* dl_gen the caches below are valid for */
	uintptr_t stack_lo, stack_hi; /* this thread's stack; 0/0 if unknown */
	uint64_t seq_next, seq_end;   /* this thread's batch of sequence numbers */
	int64_t sample_left;          /* bytes to the next sample point */
	uint64_t rng;
	uint32_t memo_ok;             /* the memo may be used on the hit path (hp_memo.h) */
	uint32_t memo_miss, memo_hits, memo_off; /* adaptive memo switch */
	int shared;                   /* the record of exited threads: atomic counters */
	int64_t *cnt[HP_CNT_DIRS];    /* counters: blocks of HP_CNT_PER {count, bytes} */
	/* caches (hp_unwind_flush zeroes from rc to the end of the record) */
	struct hp_rule rc[1u << HP_RC_BITS];
	const struct hp_stack *ic[1u << HP_IC_BITS];
	uint32_t memo_tag[HP_MEMO_SETS][HP_MEMO_WAYS]; /* 0 = empty; else a hash of (pc0, sp0) */
	uint8_t memo_rr[HP_MEMO_SETS];
	struct hp_memo_ent memo[HP_MEMO_SETS][HP_MEMO_WAYS];
};

extern HP_TLS struct hp_tstate *hp_T;
extern HP_TLS int hp_busy;
struct hp_tstate *hp_thread_get(void);   /* creates the record; call with hp_busy set */
void hp_thread_init_tables(void);  /* first thing hp_init does: mmap only */
void hp_thread_init(void);
int64_t *hp_counter_block(struct hp_tstate *t, uint32_t dir);

static inline void hp_count(struct hp_tstate *t, uint32_t id, int64_t n, int64_t bytes)
{
	int64_t *b = t->cnt[id / HP_CNT_PER];
	if (unlikely(!b))
		b = hp_counter_block(t, id / HP_CNT_PER);
	b += 2 * (id % HP_CNT_PER);
	if (unlikely(t->shared)) {
		__atomic_fetch_add(&b[0], n, __ATOMIC_RELAXED);
		__atomic_fetch_add(&b[1], bytes, __ATOMIC_RELAXED);
	} else {
		b[0] += n;
		b[1] += bytes;
	}
}

/* ---- the test/debug dump (hp_dump.c) ---- */
void hp_dump_at_exit(void);

#endif
