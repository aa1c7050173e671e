/* hp_hooks.c -- the interposed allocator API: malloc, free, calloc, realloc,
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc and
 * malloc_usable_size. Each hook asks the real allocator for 16 bytes more, writes the
 * block header (hp_format.h) in front of the block, and returns the pointer behind it.
 * C++ operator new/delete reach these through libstdc++.
 *
 * Sampling (HEAPSNAP_SAMPLE): an allocation the sampler skips gets no header at all; it
 * is the real allocator's block, as if the library were not there, and its free goes
 * straight through (word B is then glibc's chunk size, which never has HP_B_MARK). That
 * path is a subtraction and the real call, without the `where` stores: they cost about
 * 5% of malloc-bench's time, and the capture recognizes a thread inside the real
 * allocator there by its libc frames' caller being this library (safepoint.c).
 *
 * Every hook sets the thread's exported `where` flag: HP_WHERE_ALLOC around the call
 * into the real allocator, HP_WHERE_HOOK while it updates its own state, and
 * HP_WHERE_OUT when it returns, so the capture can bring threads to safe points.
 *
 * Re-entrancy: while the library works for a hook (unwinding, interning, creating a
 * thread record) hp_busy is set, and allocations made then (libdw, libunwind,
 * pthread_getattr_np, dlsym) get a header with HP_STACK_INTERNAL and no stack. Before
 * the real allocator is known they come from the bootstrap buffer (hp_real.c).
 * Pointers the library did not hand out (word B without HP_B_MARK, see hp_format.h)
 * pass straight through to the real free/realloc/malloc_usable_size.
 */
#include "hp_internal.h"
#include "hp_memo.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The state of the hook's caller: its return address, the hook's CFA, the caller's rbp.
 * __builtin_frame_address forces a frame pointer in the hook, so fp[0] is the saved rbp
 * and fp[1] the return address. */
struct start {
	uintptr_t pc, sp, bp;
};
#define START() ({ uintptr_t *fp_ = __builtin_frame_address(0); \
		   (struct start){ fp_[1], (uintptr_t)(fp_ + 2), fp_[0] }; })

static inline void set_where(struct hp_tstate *t, uint32_t w)
{
	__atomic_store_n(&t->pub->where, w, __ATOMIC_RELAXED);
	__asm__ volatile("" ::: "memory");
}

/* ---- headers ---- */
static inline uint64_t seq_take(struct hp_tstate *t)
{
	uint64_t g = __atomic_load_n(&HP_ST->seq, __ATOMIC_RELAXED);
	if (unlikely(t->seq_next == t->seq_end || g - t->seq_end > HP_SEQ_STALE)) {
		t->seq_next = __atomic_fetch_add(&HP_ST->seq, HP_SEQ_BATCH, __ATOMIC_RELAXED);
		t->seq_end = t->seq_next + HP_SEQ_BATCH;
	}
	return t->seq_next++;
}

static inline void *hdr_put(void *u, unsigned ulog, size_t n, uint32_t id, uint64_t seq,
			    uint64_t flags)
{
	uint64_t size = n > HP_SIZE_SAT ? HP_SIZE_SAT : n;
	uint64_t a = (seq & HP_SEQ_MASK) | (uint64_t)id << HP_STACK_SHIFT;
	uint64_t b = HP_B_MARK | flags | (uint64_t)ulog << HP_B_ULOG_SHIFT |
		     hp_check((uintptr_t)u, a, size) << HP_B_CHECK_SHIFT | size;
	((uint64_t *)u)[0] = a;
	((uint64_t *)u)[1] = b;
	char *p = (char *)u + ((size_t)1 << ulog);
	if (ulog > HP_ULOG_PLAIN)
		((uint64_t *)p)[-1] = HP_B_MARK | HP_B_BACK | (uint64_t)ulog << HP_B_ULOG_SHIFT |
				      hp_check((uintptr_t)p, 0, 0) << HP_B_CHECK_SHIFT;
	return p;
}

/* A block the library made: its real start u and header words; 0 if p is not one. */
struct blk {
	uint64_t *u;
	uint64_t a, b;
	unsigned ulog;
};
static inline int blk_of(const void *p, struct blk *k)
{
	uint64_t w = ((const uint64_t *)p)[-1];
	if (likely((w & (HP_B_MARK | HP_B_BACK)) == HP_B_MARK)) {
		k->u = (uint64_t *)p - 2;
		k->ulog = HP_ULOG_PLAIN;
	} else if ((w & (HP_B_MARK | HP_B_BACK)) == (HP_B_MARK | HP_B_BACK)) {
		unsigned ulog = (unsigned)(w >> HP_B_ULOG_SHIFT & HP_B_ULOG_MASK);
		if (ulog <= HP_ULOG_PLAIN || ulog > 40 ||
		    (w >> HP_B_CHECK_SHIFT & HP_B_CHECK_MASK) != hp_check((uintptr_t)p, 0, 0) ||
		    ((uintptr_t)p & (((uintptr_t)1 << ulog) - 1)))
			return 0;
		k->u = (uint64_t *)((char *)p - ((size_t)1 << ulog));
		k->ulog = ulog;
		w = k->u[1];
		if ((w & (HP_B_MARK | HP_B_BACK)) != HP_B_MARK)
			return 0;
	} else {
		return 0;
	}
	k->a = k->u[0];
	k->b = w;
	return (unsigned)(w >> HP_B_ULOG_SHIFT & HP_B_ULOG_MASK) == k->ulog &&
	       (w >> HP_B_CHECK_SHIFT & HP_B_CHECK_MASK) == hp_check((uintptr_t)k->u, k->a, w & HP_SIZE_SAT);
}

static inline int counted(const struct blk *k)
{
	return !(k->b & HP_B_UNSAMPLED) && (uint32_t)(k->a >> HP_STACK_SHIFT) != HP_STACK_INTERNAL;
}

/* ---- the common paths ---- */

/* the thread's record, created on first use (never NULL once hp_init has run) */
static inline struct hp_tstate *tstate(void)
{
	struct hp_tstate *t = hp_T;
	if (likely(t))
		return t;
	int e = errno, busy = hp_busy;
	hp_busy = 1;
	t = hp_thread_get();
	hp_busy = busy;
	errno = e;
	return t;
}

/* The sampler's decision for an allocation of n bytes by thread t (not busy): 1 to
 * skip it. With sampling off (hp_cfg.sample 0) this is one comparison; allocations of
 * at least the interval are always recorded. A caller that gets 0 with n below the
 * interval must record the block, through track() or track_sampled(), which draw the
 * next distance. */
static inline int sample_skips(struct hp_tstate *t, size_t n)
{
	return n < hp_cfg.sample && (t->sample_left -= (int64_t)n) > 0;
}

/* Keep the hook's frame below a call into the real allocator that needs no flag (no
 * tail call): the capture knows the thread is inside the allocator through a hook
 * because the return address into this library is on its stack. */
#define NO_TAIL_CALL(v) __asm__ volatile("" : "+r"(v))

/* A block the sampler skipped: the real allocator's own, no header, no flag stores. */
static inline void *alloc_plain(size_t al, size_t n, int zero)
{
	void *u = al > 16 ? hp_real.memalign(al, n) : zero ? hp_real.calloc(1, n) : hp_real.malloc(n);
	NO_TAIL_CALL(u);
	return u;
}

/* alloc_plain on a slow path: creating the thread's record (tstate) may have made
 * internal allocations, which leave the flag at HP_WHERE_HOOK for the hook around them
 * to clear; on this path no store would clear it */
static void *alloc_plain_slow(struct hp_tstate *t, size_t al, size_t n, int zero)
{
	if (t->pub->where != HP_WHERE_OUT)
		set_where(t, HP_WHERE_OUT);
	return alloc_plain(al, n, zero);
}

/* Finish a block the real allocator returned at u (not NULL): header, stack, counters.
 * skipped: the sampler already skipped it (only realloc of a block that had a header
 * gets here so: it keeps a header marked HP_B_UNSAMPLED). */
static inline void *track(struct hp_tstate *t, void *u, unsigned ulog, size_t n, struct start st,
			  int skipped)
{
	uint32_t id;
	uint64_t flags = 0;
	if (unlikely(hp_busy)) {
		id = HP_STACK_INTERNAL;
	} else {
		if (unlikely(skipped)) {
			void *p = hdr_put(u, ulog, n, HP_STACK_UNSAMPLED, seq_take(t), HP_B_UNSAMPLED);
			set_where(t, HP_WHERE_OUT);
			return p;
		}
		if (unlikely(hp_cfg.sample) && n < hp_cfg.sample)
			t->sample_left = hp_sample_next(t);
		hp_busy = 1;
		id = hp_stack_id(t, st.pc, st.sp, st.bp, 0);
		hp_busy = 0;
		hp_count(t, id, 1, (int64_t)(n > HP_SIZE_SAT ? HP_SIZE_SAT : n));
	}
	void *p = hdr_put(u, ulog, n, id, seq_take(t), flags);
	set_where(t, hp_busy ? HP_WHERE_HOOK : HP_WHERE_OUT);
	return p;
}

/* decided: the caller already asked the sampler, which did not skip the block */
static __attribute__((noinline)) void *alloc_common(size_t n, int zero, struct start st, int decided)
{
	if (unlikely(!hp_cfg.inited) && !hp_busy)
		hp_init();
	if (unlikely(!hp_real_ready))
		return hp_boot_alloc(n, 16, zero);
	if (unlikely(n > HP_MAX_REQUEST)) {
		errno = ENOMEM;
		return NULL;
	}
	struct hp_tstate *t = tstate();
	if (!decided && !hp_busy && sample_skips(t, n))
		return alloc_plain_slow(t, 0, n, zero);
	uint32_t outer = t->pub->where;
	set_where(t, HP_WHERE_ALLOC);
	void *u = zero ? hp_real.calloc(1, n + HP_HDR_SIZE) : hp_real.malloc(n + HP_HDR_SIZE);
	set_where(t, HP_WHERE_HOOK);
	if (unlikely(!u)) {
		set_where(t, outer);
		return NULL;
	}
	void *p = track(t, u, HP_ULOG_PLAIN, n, st, 0);
	if (unlikely(outer != HP_WHERE_OUT))
		set_where(t, outer);
	return p;
}

/* an al-aligned block of n bytes; rec is the size recorded as requested */
static void *aligned_common(size_t al, size_t n, size_t rec, struct start st)
{
	if (al <= 16)
		return alloc_common(n, 0, st, 0);
	if (al & (al - 1)) {                  /* glibc's memalign rounds up to a power of 2 */
		if (al > ((size_t)1 << 40)) {
			errno = EINVAL;
			return NULL;
		}
		al = (size_t)1 << (64 - __builtin_clzll(al));
	}
	if (unlikely(!hp_cfg.inited) && !hp_busy)
		hp_init();
	if (unlikely(!hp_real_ready))
		return hp_boot_alloc(n, al, 1);
	if (al > ((size_t)1 << 40) || n > HP_MAX_REQUEST) {
		errno = ENOMEM;
		return NULL;
	}
	struct hp_tstate *t = tstate();
	if (!hp_busy && sample_skips(t, rec))
		return alloc_plain_slow(t, al, n, 0);
	uint32_t outer = t->pub->where;
	set_where(t, HP_WHERE_ALLOC);
	void *u = hp_real.memalign(al, n + al);
	set_where(t, HP_WHERE_HOOK);
	if (unlikely(!u)) {
		set_where(t, outer);
		return NULL;
	}
	void *p = track(t, u, (unsigned)__builtin_ctzll(al), rec, st, 0);
	if (unlikely(outer != HP_WHERE_OUT))
		set_where(t, outer);
	return p;
}

static __attribute__((noinline)) void free_common(void *p)
{
	struct blk k;
	if (likely(blk_of(p, &k))) {
		struct hp_tstate *t = tstate();
		uint32_t outer = t->pub->where;
		set_where(t, HP_WHERE_ALLOC);
		if (counted(&k))
			hp_count(t, (uint32_t)(k.a >> HP_STACK_SHIFT), -1, -(int64_t)(k.b & HP_SIZE_SAT));
		k.u[1] = 0;
		hp_real.free(k.u);
		set_where(t, outer);
		return;
	}
	if (hp_boot_owns(p))
		return;
	if (!hp_cfg.sample)                   /* under sampling most are skipped blocks */
		__atomic_fetch_add(&HP_ST->n_foreign_free, 1, __ATOMIC_RELAXED);
	if (unlikely(!hp_real_ready))
		hp_real_resolve();
	struct hp_tstate *t = hp_T;
	if (t)
		set_where(t, HP_WHERE_ALLOC);
	hp_real.free(p);
	if (t)
		set_where(t, HP_WHERE_OUT);
}

static size_t usable_of(const void *p, const struct blk *k)
{
	return hp_real.usable(k->u) - ((size_t)1 << k->ulog);
}

/* a new block of n bytes with the contents of p (old usable bytes), then p freed */
static void *realloc_move(void *p, size_t old, size_t n, struct start st, int decided)
{
	void *q = alloc_common(n, 0, st, decided);
	if (q) {
		memcpy(q, p, old < n ? old : n);
		free_common(p);
	}
	return q;
}

static void *realloc_common(void *p, size_t n, struct start st)
{
	if (!p)
		return alloc_common(n, 0, st, 0);
	if (n == 0) {                         /* glibc: realloc(p, 0) frees p */
		free_common(p);
		return NULL;
	}
	struct blk k;
	if (!blk_of(p, &k)) {
		if (hp_boot_owns(p)) {
			void *q = alloc_common(n, 0, st, 0);
			size_t old = hp_boot_size(p);
			if (q)
				memcpy(q, p, old < n ? old : n);
			return q;
		}
		if (unlikely(!hp_real_ready))
			hp_real_resolve();
		struct hp_tstate *t = hp_T;
		if (hp_cfg.sample && t && !hp_busy && n <= HP_MAX_REQUEST) {
			/* a block sampling skipped (or one from before the library): the sampler
			 * decides for the new size, as for a new allocation */
			if (sample_skips(t, n)) {
				void *q = hp_real.realloc(p, n);
				NO_TAIL_CALL(q);
				return q;
			}
			return realloc_move(p, hp_real.usable(p), n, st, 1);
		}
		/* not ours: stays the real allocator's, untracked */
		if (!hp_cfg.sample)
			__atomic_fetch_add(&HP_ST->n_foreign_free, 1, __ATOMIC_RELAXED);
		return hp_real.realloc(p, n);
	}
	if (k.ulog != HP_ULOG_PLAIN)          /* realloc would lose the alignment: copy */
		return realloc_move(p, usable_of(p, &k), n, st, 0);
	if (n > HP_MAX_REQUEST) {
		errno = ENOMEM;
		return NULL;
	}
	struct hp_tstate *t = tstate();
	uint32_t outer = t->pub->where;
	uint32_t oid = (uint32_t)(k.a >> HP_STACK_SHIFT);
	int64_t osize = (int64_t)(k.b & HP_SIZE_SAT);
	int was_counted = counted(&k);
	int skipped = !hp_busy && sample_skips(t, n);   /* keeps its header, marked unsampled */
	set_where(t, HP_WHERE_ALLOC);
	if (was_counted)
		hp_count(t, oid, -1, -osize);
	void *u = hp_real.realloc(k.u, n + HP_HDR_SIZE);
	set_where(t, HP_WHERE_HOOK);
	if (!u) {                             /* the old block is untouched */
		if (was_counted)
			hp_count(t, oid, 1, osize);
		set_where(t, outer);
		return NULL;
	}
	void *q = track(t, u, HP_ULOG_PLAIN, n, st, skipped);
	if (unlikely(outer != HP_WHERE_OUT))
		set_where(t, outer);
	return q;
}

/* track() for a block the sampler already chose (or any block without sampling) */
static __attribute__((noinline)) void *track_sampled(struct hp_tstate *t, void *u, unsigned ulog,
						     size_t n, struct start st)
{
	if (hp_cfg.sample && n < hp_cfg.sample)
		t->sample_left = hp_sample_next(t);
	uint32_t id;
	int r = hp_memo_fast(t, st.pc, st.sp, st.bp, &id);
	hp_busy = 1;
	if (r <= 0)
		id = hp_stack_id(t, st.pc, st.sp, st.bp, r == 0);
	else if (unlikely(hp_cfg.check))
		hp_stack_check(t, id);
	hp_busy = 0;
	hp_count(t, id, 1, (int64_t)(n > HP_SIZE_SAT ? HP_SIZE_SAT : n));
	void *p = hdr_put(u, ulog, n, id, seq_take(t), 0);
	set_where(t, HP_WHERE_OUT);
	return p;
}

/* ---- fast paths: an initialized thread outside the library (else the paths above) ---- */

/* The sampler skips this allocation of n bytes: asked first in the hooks, so that path
 * is short. 0 when sampling is off, the thread has no record yet or is inside the
 * library; when it returns 0 after asking the sampler (n below the interval, t set, not
 * busy), the block must be recorded, which alloc_fast does. */
static inline int hook_skips(struct hp_tstate *t, size_t n)
{
	return n < hp_cfg.sample && likely(t && !hp_busy) && (t->sample_left -= (int64_t)n) > 0;
}

static __attribute__((always_inline)) inline void *alloc_fast(size_t n, int zero, struct start st)
{
	struct hp_tstate *t = hp_T;
	if (unlikely(!t || hp_busy || n > HP_MAX_REQUEST))
		return alloc_common(n, zero, st, 0);
	/* here the sampler, if on, was asked (hook_skips) and chose this block */
	set_where(t, HP_WHERE_ALLOC);
	void *u = zero ? hp_real.calloc(1, n + HP_HDR_SIZE) : hp_real.malloc(n + HP_HDR_SIZE);
	set_where(t, HP_WHERE_HOOK);
	if (unlikely(!u)) {
		set_where(t, HP_WHERE_OUT);
		return NULL;
	}
	return track_sampled(t, u, HP_ULOG_PLAIN, n, st);   /* leaves HP_WHERE_OUT */
}

/* a block with HP_B_MARK: ours (or a foreign block whose word B only looks like it);
 * a separate function, so that free() of a block without a header needs no frame */
static __attribute__((noinline)) void free_marked(void *p, uint64_t w)
{
	struct hp_tstate *t = hp_T;
	if (likely((w & (HP_B_MARK | HP_B_BACK | HP_B_ULOG_MASK << HP_B_ULOG_SHIFT)) ==
		   (HP_B_MARK | (uint64_t)HP_ULOG_PLAIN << HP_B_ULOG_SHIFT) && t && !hp_busy)) {
		uint64_t *u = (uint64_t *)p - 2, a = u[0], size = w & HP_SIZE_SAT;
		if (likely((w >> HP_B_CHECK_SHIFT & HP_B_CHECK_MASK) == hp_check((uintptr_t)u, a, size))) {
			uint32_t id = (uint32_t)(a >> HP_STACK_SHIFT);
			set_where(t, HP_WHERE_ALLOC);      /* counters and header change too */
			if (!(w & HP_B_UNSAMPLED) && id != HP_STACK_INTERNAL)
				hp_count(t, id, -1, -(int64_t)size);
			u[1] = 0;
			hp_real.free(u);
			set_where(t, HP_WHERE_OUT);
			return;
		}
	}
	free_common(p);
}

/* a block without a header under sampling (skipped by the sampler): straight through.
 * Sampling on means hp_init has run, so the real allocator is known; bootstrap blocks
 * have HP_BOOT_WORD in front, so they are not seen here. */
static __attribute__((always_inline)) inline void free_plain(void *p)
{
	if (likely(hp_cfg.sample)) {
		hp_real.free(p);
		__asm__ volatile("");         /* no tail call (see NO_TAIL_CALL) */
		return;
	}
	free_common(p);
}

/* ---- the interposed functions ---- */
HP_EXPORT __attribute__((noinline)) void *malloc(size_t n)
{
	struct hp_tstate *t = hp_T;
	if (hook_skips(t, n))
		return alloc_plain(0, n, 0);
	return alloc_fast(n, 0, START());
}

HP_EXPORT __attribute__((noinline)) void free(void *p)
{
	if (!p)
		return;
	uint64_t w = ((const uint64_t *)p)[-1];
	if (w & HP_B_MARK)
		free_marked(p, w);
	else
		free_plain(p);
}

HP_EXPORT __attribute__((noinline)) void *calloc(size_t a, size_t b)
{
	size_t n;
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	struct hp_tstate *t = hp_T;
	if (hook_skips(t, n))
		return alloc_plain(0, n, 1);
	return alloc_fast(n, 1, START());
}

HP_EXPORT __attribute__((noinline)) void *realloc(void *p, size_t n)
{
	return realloc_common(p, n, START());
}

HP_EXPORT __attribute__((noinline)) void *reallocarray(void *p, size_t a, size_t b)
{
	struct start st = START();
	size_t n;
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc_common(p, n, st);
}

HP_EXPORT __attribute__((noinline)) void *memalign(size_t al, size_t n)
{
	return aligned_common(al, n, n, START());
}

HP_EXPORT __attribute__((noinline)) void *aligned_alloc(size_t al, size_t n)
{
	return aligned_common(al, n, n, START());
}

HP_EXPORT __attribute__((noinline)) int posix_memalign(void **out, size_t al, size_t n)
{
	struct start st = START();
	if (al % sizeof(void *) || (al & (al - 1)) || al == 0)
		return EINVAL;
	int e = errno;
	void *p = aligned_common(al, n, n, st);
	errno = e;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

HP_EXPORT __attribute__((noinline)) void *valloc(size_t n)
{
	return aligned_common((size_t)getpagesize(), n, n, START());
}

HP_EXPORT __attribute__((noinline)) void *pvalloc(size_t n)
{
	struct start st = START();
	size_t pg = (size_t)getpagesize(), r;
	if (__builtin_add_overflow(n, pg - 1, &r)) {
		errno = ENOMEM;
		return NULL;
	}
	r &= ~(pg - 1);
	return aligned_common(pg, r ? r : pg, n, st);
}

HP_EXPORT size_t malloc_usable_size(void *p)
{
	struct blk k;
	if (!p)
		return 0;
	if (blk_of(p, &k))
		return usable_of(p, &k);
	if (hp_boot_owns(p))
		return hp_boot_size(p);
	if (unlikely(!hp_real_ready))
		hp_real_resolve();
	return hp_real.usable(p);
}

/* ---- test support (exported; not used by the capture) ---- */
/* Decode the header of live block p as the capture would; 1 if it is tracked. */
HP_EXPORT int heapsnap_preload_block(const void *p, struct hp_block *out)
{
	struct blk k;
	if (!p || !blk_of(p, &k))
		return 0;
	size_t real = hp_real.usable(k.u);
	return hp_decode((uintptr_t)k.u, k.u, 16, real, out);
}
