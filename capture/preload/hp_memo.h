/* hp_memo.h -- the validated stack memo's look-up, inline so that a hit (the common
 * case) costs no call: hp_hooks.c tries it first and calls hp_stack_id() (hp_unwind.c,
 * which also fills the memo) only on a miss. Why a hit is exact: see hp_unwind.c. */
#ifndef HEAPSNAP_HP_MEMO_H
#define HEAPSNAP_HP_MEMO_H

#include "hp_internal.h"

static inline uint64_t hp_memo_hash(uintptr_t pc0, uintptr_t sp0)
{
	return (pc0 ^ (sp0 * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
}
#define HP_MEMO_SET(h) ((size_t)((h) >> 56) & (HP_MEMO_SETS - 1))
#define HP_MEMO_TAG(h) ((uint32_t)(h) | 1u)

/* The memoized stack id for this start state, if its stack words still match. */
static inline int hp_memo_lookup(struct hp_tstate *t, uint64_t h, uintptr_t pc0, uintptr_t sp0,
				 uintptr_t bp0, uint32_t *id)
{
	size_t s = HP_MEMO_SET(h);
	uint32_t tag = HP_MEMO_TAG(h);
	for (int wy = 0; wy < HP_MEMO_WAYS; wy++) {
		if (t->memo_tag[s][wy] != tag)
			continue;
		struct hp_memo_ent *e = &t->memo[s][wy];
		if (e->pc0 != pc0 || e->sp0 != sp0 || (e->usebp && e->bp0 != bp0))
			continue;
		uint32_t nw = e->nw, d = e->disc;
		if (d && *(volatile uintptr_t *)e->w[d].addr != e->w[d].val)
			continue;                      /* the word that told them apart last time */
		/* two words per step (nw is even: see walk()), one branch per pair */
		uint32_t i = 0;
		while (i < nw && !((*(volatile uintptr_t *)e->w[i].addr ^ e->w[i].val) |
				   (*(volatile uintptr_t *)e->w[i + 1].addr ^ e->w[i + 1].val)))
			i += 2;
		if (i >= nw) {
			*id = e->id;
			return 1;
		}
		e->disc = i < nw - 1 && *(volatile uintptr_t *)e->w[i].addr == e->w[i].val ? i + 1 : i;
	}
	return 0;
}

/* The hit path of the hooks: 1 and *id if the memo knows this stack, 0 if it does not,
 * -1 if it was not looked up (caches of an older dl_gen, memo switched off or not
 * allowed): then hp_stack_id() does everything. */
static inline int hp_memo_fast(struct hp_tstate *t, uintptr_t pc0, uintptr_t sp0, uintptr_t bp0,
			       uint32_t *id)
{
	if (unlikely(!t->memo_ok || t->memo_off || t->gen != HP_ST->dl_gen))
		return -1;                             /* not looked up */
	if (!hp_memo_lookup(t, hp_memo_hash(pc0, sp0), pc0, sp0, bp0, id))
		return 0;
	t->memo_hits++;
	t->pub->n_memo++;
	return 1;
}
#endif
