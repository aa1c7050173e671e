/* hp_unwind.c -- the call stack of each allocation, exact, cheaply.
 *
 * Three ways, fastest first:
 *  1. The validated memo (per thread): the walk below is a pure function of its start
 *     state (pc, sp, and bp when a frame uses it), of the CFA rules (fixed while the
 *     code stays mapped) and of the stack words it reads. A memo entry keyed by the
 *     start state keeps the words read and the resulting stack id; a later call with
 *     the same start state whose stack still holds the same words has the same stack,
 *     exactly. Validating is n independent loads and compares. The memo switches
 *     itself off for a while when it misses more than it hits (a varying stack
 *     pointer), since then it only costs. Its look-up is in hp_memo.h, inline in the
 *     hooks; this file fills it.
 *  2. The cached-CFA walk: per return address, the rule to find the caller's frame
 *     (CFA = rsp|rbp + k, return address at CFA-8, rbp kept or saved at CFA+j) is read
 *     once from .eh_frame with libdw (dwarf_cfi_addrframe) and kept in a global table
 *     (mutex) with a per-thread direct-mapped cache in front.
 *  3. libunwind's unw_backtrace, for anything else: signal frames, CFA expressions,
 *     a stack pointer outside the thread's known stack, the exited-thread record.
 * HEAPSNAP_CHECK=1 compares every stack from 1 and 2 with libunwind's and counts the
 * differences in hp_state.n_mismatch (must stay 0).
 *
 * dlclose: rules and memoized stacks of unloaded code would be wrong for whatever is
 * mapped there next, so every cache is dropped when hp_state.dl_gen moves.
 */
#include "hp_internal.h"
#include "hp_memo.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <libelf.h>
#include <link.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libunwind.h>

/* ---- modules and rules (slow path, under rule_lock) ---- */
#define GR_BITS 16
#define MAX_MODS 1024

struct module {
	uintptr_t lo, hi, bias;
	Elf *elf;
	Dwarf_CFI *cfi;
};
static pthread_mutex_t rule_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hp_rule grules[1u << GR_BITS];
static unsigned n_grules;
static struct module mods[MAX_MODS];
static int n_mods;
static uint64_t rules_gen;

static void modules_release(void)
{
	for (int i = 0; i < n_mods; i++) {
		if (mods[i].cfi)
			dwarf_cfi_end(mods[i].cfi);
		if (mods[i].elf)
			elf_end(mods[i].elf);
	}
	n_mods = 0;
	memset(grules, 0, sizeof grules);
	n_grules = 0;
}

static struct module *module_for(uintptr_t pc)
{
	for (int i = 0; i < n_mods; i++)
		if (pc >= mods[i].lo && pc < mods[i].hi)
			return &mods[i];
	struct dl_find_object o;
	if (_dl_find_object((void *)pc, &o) != 0 || n_mods == MAX_MODS)
		return NULL;
	static int elf_ready;
	if (!elf_ready) {
		elf_version(EV_CURRENT);
		elf_ready = 1;
	}
	struct link_map *lm = o.dlfo_link_map;
	const char *path = lm->l_name && lm->l_name[0] ? lm->l_name : "/proc/self/exe";
	Elf *e = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		if (e)
			elf_cntl(e, ELF_C_FDDONE);        /* the file stays mapped */
		close(fd);
	}
	if (!e)                                       /* the vDSO: a whole image is mapped */
		e = elf_memory((char *)o.dlfo_map_start,
			       (size_t)((char *)o.dlfo_map_end - (char *)o.dlfo_map_start));
	struct module *m = &mods[n_mods++];
	m->lo = (uintptr_t)o.dlfo_map_start;
	m->hi = (uintptr_t)o.dlfo_map_end;
	m->bias = lm->l_addr;
	m->elf = e;
	m->cfi = e ? dwarf_getcfi_elf(e) : NULL;
	return m;
}

static struct hp_rule rule_compute(uintptr_t ra)
{
	struct hp_rule r = { .key = ra, .kind = HP_RULE_BAD };
	struct module *m = module_for(ra - 1);
	Dwarf_Frame *f = NULL;
	if (!m || !m->cfi || dwarf_cfi_addrframe(m->cfi, ra - 1 - m->bias, &f) != 0) {
		r.kind = HP_RULE_END;              /* no CFI: the stack ends here */
		return r;
	}
	Dwarf_Op mem[3], *ops;
	size_t n;
	bool sig = false;
	dwarf_frame_info(f, NULL, NULL, &sig);
	if (sig)
		goto out;
	/* the return address: undefined => outermost frame; else it must be at CFA-8 */
	if (dwarf_frame_register(f, 16, mem, &ops, &n) != 0)
		goto out;
	if (n == 0 && ops == mem) {
		r.kind = HP_RULE_END;
		goto out;
	}
	if (!(n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst &&
	      (int64_t)ops[1].number == -8))
		goto out;
	/* CFA = rsp (7) or rbp (6) + offset: libdw gives DW_OP_bregx for def_cfa rules */
	if (dwarf_frame_cfa(f, &ops, &n) != 0 || n != 1)
		goto out;
	if (ops[0].atom != DW_OP_bregx || (ops[0].number != 7 && ops[0].number != 6))
		goto out;
	r.cfa_rbp = ops[0].number == 6;
	r.cfa_off = (int32_t)(int64_t)ops[0].number2;
	/* the caller's rbp: same value, or saved at CFA+k */
	if (dwarf_frame_register(f, 6, mem, &ops, &n) != 0)
		goto out;
	if (n == 0)
		r.rbp_off = 0;                     /* same value (or undefined: rbp unused) */
	else if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa &&
		 ops[1].atom == DW_OP_plus_uconst && (int64_t)ops[1].number < 0 &&
		 (int64_t)ops[1].number >= -256)
		r.rbp_off = (int16_t)(int64_t)ops[1].number;  /* below the CFA: read-safe */
	else
		goto out;
	r.kind = HP_RULE_OK;
out:
	free(f);
	return r;
}

static __attribute__((noinline)) void rule_slow(struct hp_rule *slot, uintptr_t ra)
{
	pthread_mutex_lock(&rule_lock);
	uint64_t gen = __atomic_load_n(&HP_ST->dl_gen, __ATOMIC_ACQUIRE);
	if (gen != rules_gen) {                    /* something was unloaded */
		modules_release();
		rules_gen = gen;
	}
	size_t mask = (1u << GR_BITS) - 1, i = (ra * 0x9e3779b97f4a7c15ull) >> (64 - GR_BITS);
	struct hp_rule r;
	for (;; i = (i + 1) & mask) {
		if (grules[i].key == ra) {
			r = grules[i];
			break;
		}
		if (grules[i].key == 0) {
			r = rule_compute(ra);
			if (n_grules < mask / 2) {         /* else: compute again next time */
				grules[i] = r;
				n_grules++;
			}
			break;
		}
	}
	*slot = r;
	pthread_mutex_unlock(&rule_lock);
}

static inline const struct hp_rule *rule_get(struct hp_tstate *t, uintptr_t ra)
{
	struct hp_rule *e = &t->rc[(ra * 0x9e3779b97f4a7c15ull) >> (64 - HP_RC_BITS)];
	if (unlikely(e->key != ra))
		rule_slow(e, ra);
	return e;
}

/* ---- the walks ---- */

/* From a frame state (pc = a return address, sp = the CFA of its callee, bp = rbp in
 * that frame): store up to max PCs; -1 when a frame needs the general unwinder. If e is
 * not NULL, record in it the stack words the result depends on (e->nw = 0 if too many):
 * every return-address slot, a saved-rbp slot only if a later rbp-based CFA uses it, and
 * bp0 (e->usebp) only if it is used. */
static __attribute__((always_inline)) inline int walk(struct hp_tstate *t, uintptr_t *ip, int max,
						      uintptr_t pc, uintptr_t sp, uintptr_t bp,
						      struct hp_memo_ent *e)
{
	int n = 0, src = -1, nw = 0, ok = e != NULL;
	uint64_t unneeded = 0;     /* saved-rbp words no rbp-based CFA has used (bitmask) */
	uintptr_t hi = t->stack_hi;
	if (e)
		e->usebp = 0;
	for (;;) {
		ip[n++] = pc;
		if (n == max)
			break;
		const struct hp_rule *r = rule_get(t, pc);
		if (unlikely(r->kind != HP_RULE_OK)) {
			if (r->kind == HP_RULE_END)
				break;
			return -1;
		}
		if (r->cfa_rbp && ok) {
			if (src < 0)
				e->usebp = 1;
			else
				unneeded &= ~(1ull << src);
		}
		uintptr_t cfa = (r->cfa_rbp ? bp : sp) + (intptr_t)r->cfa_off;
		if (unlikely(cfa <= sp || cfa > hi))
			return -1;
		if (nw + 3 > HP_MEMO_WORDS)        /* room for 2 words and the even padding */
			ok = 0;
		if (r->rbp_off) {
			uintptr_t a = cfa + (intptr_t)r->rbp_off;
			bp = *(uintptr_t *)a;
			if (ok) {
				e->w[nw].addr = a;
				e->w[nw].val = bp;
				unneeded |= 1ull << nw;
				src = nw++;
			}
		}
		pc = *(uintptr_t *)(cfa - 8);
		if (ok) {
			e->w[nw].addr = cfa - 8;
			e->w[nw].val = pc;
			nw++;
		}
		sp = cfa;
		if (!pc)
			break;
	}
	if (!e)
		return n;
	if (!ok)
		nw = 0;
	else if (unneeded) {                       /* drop saved-rbp words nothing used */
		int k = 0;
		for (int i = 0; i < nw; i++)
			if (!(unneeded >> i & 1))
				e->w[k++] = e->w[i];
		nw = k;
	}
	if (nw & 1) {                              /* even, for the paired compare */
		e->w[nw] = e->w[nw - 1];
		nw++;
	}
	e->nw = (uint32_t)nw;
	return n;
}

static int strip_own(uintptr_t *ip, int n)
{
	int s = 0;
	while (s < n && (ip[s] - hp_cfg.self_lo < hp_cfg.self_hi - hp_cfg.self_lo ||
			 ip[s] - hp_cfg.unw_lo < hp_cfg.unw_hi - hp_cfg.unw_lo))
		s++;
	if (s)
		memmove(ip, ip + s, (size_t)(n - s) * sizeof *ip);
	return n - s;
}

/* libunwind's stack of the caller of the hook, at most max frames */
static __attribute__((noinline)) int walk_libunwind(uintptr_t *ip, int max)
{
	uintptr_t buf[HP_MAX_DEPTH + 32];
	int n = unw_backtrace((void **)buf, max + 32);
	n = strip_own(buf, n < 0 ? 0 : n);
	if (n > max)
		n = max;
	memcpy(ip, buf, (size_t)n * sizeof *ip);
	return n;
}

static void check_report(const uintptr_t *a, int na, const uintptr_t *b, int nb)
{
	static int reported;
	if (reported++ >= 3)
		return;
	char line[96];
	static const char hex[] = "0123456789abcdef";
	int m = na > nb ? na : nb;
	(void)!write(2, "heapsnap preload: CHECK: fast stack != libunwind:\n", 51);
	for (int i = 0; i < m; i++) {
		int k = 0;
		uintptr_t v[2] = { i < na ? a[i] : 0, i < nb ? b[i] : 0 };
		line[k++] = ' ';
		for (int j = 0; j < 2; j++) {
			line[k++] = ' ';
			for (int s = 60; s >= 0; s -= 4)
				line[k++] = hex[v[j] >> s & 15];
		}
		line[k++] = v[0] != v[1] ? '*' : ' ';
		line[k++] = '\n';
		(void)!write(2, line, (size_t)k);
	}
}

static void check(struct hp_tstate *t, uint32_t id, const uintptr_t *ip, int n)
{
	uintptr_t ref[HP_MAX_DEPTH];
	int m = walk_libunwind(ref, hp_cfg.depth);
	__atomic_fetch_add(&HP_ST->n_checked, 1, __ATOMIC_RELAXED);
	if (ip) {
		if (m == n && !memcmp(ip, ref, (size_t)n * sizeof *ip))
			return;
		check_report(ip, n, ref, m);
	} else {                                   /* a memo hit: compare ids */
		if (hp_intern(t, ref, m) == id)
			return;
		const struct hp_stack *s = hp_stack_get(id);
		check_report(s ? (const uintptr_t *)s->pc : ref, s ? (int)s->n : 0, ref, m);
	}
	__atomic_fetch_add(&HP_ST->n_mismatch, 1, __ATOMIC_RELAXED);
}

void hp_unwind_flush(struct hp_tstate *t)
{
	/* zero pages without touching them: a fresh record costs no memory until used */
	char *lo = (char *)t->rc, *hi = (char *)(t->memo_rr + HP_MEMO_SETS);
	char *plo = (char *)(((uintptr_t)lo + 4095) & ~(uintptr_t)4095);
	char *phi = (char *)((uintptr_t)hi & ~(uintptr_t)4095);
	if (phi > plo) {
		memset(lo, 0, (size_t)(plo - lo));
		madvise(plo, (size_t)(phi - plo), MADV_DONTNEED);
		memset(phi, 0, (size_t)(hi - phi));
	} else {
		memset(lo, 0, (size_t)(hi - lo));
	}
	t->gen = __atomic_load_n(&HP_ST->dl_gen, __ATOMIC_ACQUIRE);
}

static uint32_t slow_stack(struct hp_tstate *t)
{
	uintptr_t ip[HP_MAX_DEPTH];
	int n = walk_libunwind(ip, hp_cfg.depth);
	__atomic_fetch_add(&HP_ST->n_fallback, 1, __ATOMIC_RELAXED);
	return hp_intern(t, ip, n);
}

void hp_stack_check(struct hp_tstate *t, uint32_t id)
{
	check(t, id, NULL, 0);
}

uint32_t hp_stack_id(struct hp_tstate *t, uintptr_t pc0, uintptr_t sp0, uintptr_t bp0, int missed)
{
	struct hp_thread_pub *pub = t->pub;
	uint32_t id;
	if (unlikely(t->shared)) {                 /* an exited thread: no private caches */
		t->gen = __atomic_load_n(&HP_ST->dl_gen, __ATOMIC_ACQUIRE);
		return slow_stack(t);
	}
	if (unlikely(t->gen != HP_ST->dl_gen)) {
		hp_unwind_flush(t);
		missed = 0;
	}
	t->memo_ok = !hp_cfg.no_fast && !hp_cfg.no_memo;
	pub->n_alloc++;
	if (unlikely(hp_cfg.no_fast || sp0 <= t->stack_lo || sp0 >= t->stack_hi))
		return slow_stack(t);

	uintptr_t ip[HP_MAX_DEPTH];
	int n;
	struct hp_memo_ent *e = NULL;
	uint64_t h = 0;
	unsigned way = 0;
	if (likely(!t->memo_off) && !hp_cfg.no_memo) {
		h = hp_memo_hash(pc0, sp0);
		if (!missed && hp_memo_lookup(t, h, pc0, sp0, bp0, &id)) {
			t->memo_hits++;
			pub->n_memo++;
			pub->n_alloc--;                /* counted as a memo stack instead */
			if (unlikely(hp_cfg.check))
				check(t, id, NULL, 0);
			return id;
		}
		if (unlikely(++t->memo_miss == 512)) { /* < 50% hits lately: off for a while */
			if (t->memo_hits < 512)
				t->memo_off = 32768;
			t->memo_miss = t->memo_hits = 0;
		}
		size_t s = HP_MEMO_SET(h);
		way = t->memo_rr[s]++ % HP_MEMO_WAYS;
		t->memo_tag[s][way] = 0;           /* invalid until filled */
		e = &t->memo[s][way];
	} else if (t->memo_off) {
		t->memo_off--;
	}
	/* two specializations: recording for the memo, or not */
	n = e ? walk(t, ip, hp_cfg.depth, pc0, sp0, bp0, e) : walk(t, ip, hp_cfg.depth, pc0, sp0, bp0, NULL);
	if (unlikely(n < 0))
		return slow_stack(t);
	pub->n_walk++;
	id = hp_intern(t, ip, n);
	if (unlikely(hp_cfg.check))
		check(t, id, ip, n);
	if (e && e->nw) {
		e->pc0 = pc0;
		e->sp0 = sp0;
		e->bp0 = bp0;
		e->id = id;
		e->disc = 0;
		t->memo_tag[HP_MEMO_SET(h)][way] = HP_MEMO_TAG(h);
	}
	return id;
}

void hp_unwind_atfork(int phase)
{
	if (phase == 0)
		pthread_mutex_lock(&rule_lock);
	else
		pthread_mutex_unlock(&rule_lock);
}
