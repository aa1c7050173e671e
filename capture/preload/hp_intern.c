/* hp_intern.c -- the stack table: every distinct stack (its PCs and the dlclose
 * generation it was taken in) is stored once and gets an id. Shared by all threads:
 * look-ups in the global open-addressing table take no lock (slots are published with
 * release stores and never change afterwards); only inserting a new stack takes the
 * table's mutex. A per-thread direct-mapped cache in front avoids even the shared
 * cache lines for the stacks a thread sees again and again.
 *
 * Exported: hp_state.stack_table[id] is the address of struct hp_stack; an id is
 * published (n_stacks) only after its record and table entry are complete.
 */
#include "hp_internal.h"

#include <string.h>

#define GBITS 22
#define MAX_STACKS (1u << 21)
#define ARENA_CHUNK (16u << 20)

static const struct hp_stack *_Atomic *gtab;   /* hash slots */
static uint64_t *ids;                            /* exported id -> record */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *arena_cur, *arena_end;

void hp_intern_init(void)
{
	struct hp_state *s = HP_ST;
	gtab = hp_mmap(sizeof *gtab << GBITS);
	ids = hp_mmap(sizeof *ids * MAX_STACKS);
	s->stack_table = (uint64_t)(uintptr_t)ids;
	s->max_stacks = MAX_STACKS;
	s->n_stacks = 1;                  /* id 0 is HP_STACK_INTERNAL */
}

void hp_intern_atfork(int phase)
{
	if (phase == 0)
		pthread_mutex_lock(&lock);
	else
		pthread_mutex_unlock(&lock);
}

static inline uint64_t hash_pcs(const uintptr_t *pc, int n, uint64_t gen)
{
	/* independent products: no long dependency chain; exactness comes from memcmp */
	uint64_t h = (uint64_t)n * 0x9e3779b97f4a7c15ull ^ gen;
	for (int i = 0; i < n; i++)
		h += (pc[i] ^ (0x9e3779b97f4a7c15ull * (uint64_t)(i + 1))) * 0xff51afd7ed558ccdull;
	return h ^ (h >> 29);
}

static inline int same(const struct hp_stack *s, const uintptr_t *pc, int n, uint64_t h)
{
	return s->hash == h && s->n == (uint32_t)n && !memcmp(s->pc, pc, (size_t)n * sizeof *pc);
}

static void *arena_alloc(size_t n)            /* lock held */
{
	n = (n + 15) & ~(size_t)15;
	if (!arena_cur || (size_t)(arena_end - arena_cur) < n) {
		size_t sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		arena_cur = hp_mmap(sz);
		arena_end = arena_cur + sz;
	}
	void *r = arena_cur;
	arena_cur += n;
	return r;
}

static const struct hp_stack *insert(const uintptr_t *pc, int n, uint64_t h, uint64_t gen,
				     size_t slot)
{
	struct hp_state *s = HP_ST;
	uint32_t id = s->n_stacks;
	if (id >= MAX_STACKS || id > HP_STACK_ID_MAX)
		return NULL;
	struct hp_stack *st = arena_alloc(sizeof *st + (size_t)n * sizeof *pc);
	st->hash = h;
	st->id = id;
	st->n = (uint32_t)n;
	st->gen = (uint32_t)gen;
	memcpy(st->pc, pc, (size_t)n * sizeof *pc);
	ids[id] = (uint64_t)(uintptr_t)st;
	__atomic_store_n(&s->n_stacks, id + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&gtab[slot], st, __ATOMIC_RELEASE);
	return st;
}

static const struct hp_stack *lookup_global(const uintptr_t *pc, int n, uint64_t h, uint64_t gen)
{
	size_t mask = ((size_t)1 << GBITS) - 1, i = h >> (64 - GBITS);
	int locked = 0;
	const struct hp_stack *st;
	for (;;) {
		st = __atomic_load_n(&gtab[i], __ATOMIC_ACQUIRE);
		if (!st) {
			if (!locked) {                  /* re-probe under the lock */
				pthread_mutex_lock(&lock);
				locked = 1;
				continue;
			}
			st = insert(pc, n, h, gen, i);
			break;
		}
		if (same(st, pc, n, h) && st->gen == (uint32_t)gen)
			break;
		i = (i + 1) & mask;
	}
	if (locked)
		pthread_mutex_unlock(&lock);
	return st;
}

uint32_t hp_intern(struct hp_tstate *t, const uintptr_t *pc, int n)
{
	if (n <= 0)
		return HP_STACK_NONE;
	uint64_t gen = t->gen;
	uint64_t h = hash_pcs(pc, n, gen);
	if (unlikely(t->shared)) {                 /* no private cache */
		const struct hp_stack *st = lookup_global(pc, n, h, gen);
		return st ? st->id : HP_STACK_OVERFLOW;
	}
	const struct hp_stack **c = &t->ic[h >> (64 - HP_IC_BITS)];
	if (likely(*c && same(*c, pc, n, h)))      /* the cache is flushed when gen changes */
		return (*c)->id;
	const struct hp_stack *st = lookup_global(pc, n, h, gen);
	if (!st)
		return HP_STACK_OVERFLOW;
	*c = st;
	return st->id;
}

const struct hp_stack *hp_stack_get(uint32_t id)
{
	if (id == 0 || id >= __atomic_load_n(&HP_ST->n_stacks, __ATOMIC_ACQUIRE))
		return NULL;
	return (const struct hp_stack *)(uintptr_t)ids[id];
}
