/* glibc_check.c -- the free lists of a copied glibc heap and their consistency: every
 * arena's bins (walked by bk, the way int_mallinfo counts them) and fastbins (safe-linked
 * fd), every thread's tcache (counts against chains, sizes, keys), collected into the
 * chunk set that classifies the walk; and, after the walk, the nodes it never met.
 *
 * Each list is capped and a node named twice ends its list (a cycle or a double free),
 * so a corrupt list can neither hang nor crash the walk; what failed is written into the
 * arena's note and the arena is marked inconsistent.
 */
#include "glibc_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(GH_TC_BINS == HS_TCACHE_BINS, "tcache bins of the layout and the model differ");

static const char *kind_name(int k)
{
	switch (k) {
	case GH_K_BIN: return "bin";
	case GH_K_FAST: return "fastbin";
	case GH_K_TCACHE: return "tcache";
	case GH_K_TCSTRUCT: return "tcache struct";
	}
	return "?";
}

/* Put a list node; 1 if it was new, 0 if it was already named (noted), <0 on OOM. */
static int put_node(gh_ctx *x, uint64_t p, int kind, int bin, int owner, gh_ent **out)
{
	gh_ent *e;
	int existed;
	if (gh_set_put(&x->set, p, &e, &existed)) {
		x->oom = 1;
		return -ENOMEM;
	}
	if (existed) {
		e->dup = 1;
		*out = e;
		return 0;
	}
	e->kind = (uint8_t)kind;
	e->bin = (int16_t)bin;
	e->owner = (int16_t)owner;
	*out = e;
	return 1;
}

static int collect_fastbins(gh_ctx *x, int ai)
{
	hs_arena *a = &x->c->arenas[ai];
	uint64_t m = a->addr;
	for (int i = 0; i < GH_NFASTBINS; i++) {
		int ok = 1;
		uint64_t p = gh_u64(x, m + GH_MS_FASTBINS + 8u * i, &ok);
		for (uint32_t n = 0; p; n++) {
			if (n >= GH_LIST_CAP) {
				gh_arena_fail(x, ai, "fastbin %d: longer than %u nodes", i, GH_LIST_CAP);
				break;
			}
			if (p & 15) {
				gh_arena_fail(x, ai, "fastbin %d: misaligned node %#llx", i, (unsigned long long)p);
				break;
			}
			uint64_t hdr = gh_u64(x, p + 8, &ok), fd = gh_u64(x, p + 16, &ok);
			if (!ok) {
				gh_arena_fail(x, ai, "fastbin %d: node %#llx not in the copy", i, (unsigned long long)p);
				break;
			}
			uint64_t sz = hdr & ~(uint64_t)GH_SIZE_BITS;
			if (gh_fastbin_index(sz) != i) {
				gh_arena_fail(x, ai, "fastbin %d: node %#llx has size %#llx", i, (unsigned long long)p,
					      (unsigned long long)sz);
				break;
			}
			gh_ent *e;
			int r = put_node(x, p, GH_K_FAST, i, ai, &e);
			if (r < 0)
				return r;
			if (!r) {
				gh_arena_fail(x, ai, "fastbin %d: node %#llx is already on a %s list (cycle or double free)",
					      i, (unsigned long long)p, kind_name(e->kind));
				break;
			}
			a->list_fast_count++;
			a->list_fast_bytes += sz;
			p = gh_reveal(p + 16, fd);
		}
	}
	return 0;
}

static int collect_bins(gh_ctx *x, int ai)
{
	hs_arena *a = &x->c->arenas[ai];
	uint64_t m = a->addr;
	int ok = 1;
	uint32_t binmap[4];
	for (int k = 0; k < 4; k++)
		binmap[k] = gh_u32(x, m + GH_MS_BINMAP + 4u * k, &ok);
	for (int i = 1; i < GH_NBINS; i++) {
		uint64_t b = gh_bin_at(m, i);
		ok = 1;
		uint64_t bfd = gh_u64(x, b + 16, &ok), bbk = gh_u64(x, b + 24, &ok);
		if (!ok)
			return 0;
		if (bfd == b || bbk == b) {
			if (bfd != bbk)
				gh_arena_fail(x, ai, "bin %d: header fd %#llx and bk %#llx disagree about emptiness", i,
					      (unsigned long long)bfd, (unsigned long long)bbk);
			continue;
		}
		if (i >= 2 && !(binmap[i >> 5] & (1u << (i & 31))))
			gh_arena_fail(x, ai, "bin %d: not empty but its binmap bit is clear", i);
		uint64_t prev = b, p = bbk;
		for (uint32_t n = 0; p != b; n++) {
			if (n >= GH_LIST_CAP) {
				gh_arena_fail(x, ai, "bin %d: longer than %u nodes", i, GH_LIST_CAP);
				break;
			}
			if (p & 15) {
				gh_arena_fail(x, ai, "bin %d: misaligned node %#llx", i, (unsigned long long)p);
				break;
			}
			uint64_t hdr = gh_u64(x, p + 8, &ok), fd = gh_u64(x, p + 16, &ok), bk = gh_u64(x, p + 24, &ok);
			if (!ok) {
				gh_arena_fail(x, ai, "bin %d: node %#llx not in the copy", i, (unsigned long long)p);
				break;
			}
			uint64_t sz = hdr & ~(uint64_t)GH_SIZE_BITS;
			if (fd != prev) {
				gh_arena_fail(x, ai, "bin %d: node %#llx has fd %#llx, not %#llx (fd->bk != p)", i,
					      (unsigned long long)p, (unsigned long long)fd, (unsigned long long)prev);
				break;
			}
			if (sz < GH_MINSIZE || (sz & 15)) {
				gh_arena_fail(x, ai, "bin %d: node %#llx has size %#llx", i, (unsigned long long)p,
					      (unsigned long long)sz);
				break;
			}
			if (i >= 2 && gh_bin_index(sz) != i)
				gh_arena_fail(x, ai, "bin %d: node %#llx of size %#llx belongs in bin %d", i,
					      (unsigned long long)p, (unsigned long long)sz, gh_bin_index(sz));
			int ok2 = 1;
			uint64_t foot = gh_u64(x, p + sz, &ok2), nhdr = gh_u64(x, p + sz + 8, &ok2);
			if (!ok2)
				gh_arena_fail(x, ai, "bin %d: the chunk after node %#llx is not in the copy", i,
					      (unsigned long long)p);
			else if (foot != sz)
				gh_arena_fail(x, ai, "bin %d: node %#llx size %#llx but footer %#llx", i,
					      (unsigned long long)p, (unsigned long long)sz, (unsigned long long)foot);
			else if (nhdr & GH_PREV_INUSE)
				gh_arena_fail(x, ai, "bin %d: node %#llx is followed by a chunk with PREV_INUSE set", i,
					      (unsigned long long)p);
			gh_ent *e;
			int r = put_node(x, p, GH_K_BIN, i, ai, &e);
			if (r < 0)
				return r;
			if (!r) {
				gh_arena_fail(x, ai, "bin %d: node %#llx is already on a %s list (cycle or double free)", i,
					      (unsigned long long)p, kind_name(e->kind));
				break;
			}
			a->list_bin_count++;
			a->list_bin_bytes += sz;
			prev = p;
			p = bk;
		}
		if (p == b && bfd != prev)
			gh_arena_fail(x, ai, "bin %d: header fd %#llx is not the last node %#llx", i,
				      (unsigned long long)bfd, (unsigned long long)prev);
	}
	return 0;
}

static void tc_bad(gh_ctx *x, uint64_t chunk, int tid, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void tc_bad(gh_ctx *x, uint64_t chunk, int tid, const char *fmt, ...)
{
	if (x->n_tcbad == x->cap_tcbad) {
		size_t cap = x->cap_tcbad ? 2 * x->cap_tcbad : 16;
		gh_tcbad *t = realloc(x->tcbad, cap * sizeof *t);
		if (!t) {
			x->oom = 1;
			return;
		}
		x->tcbad = t;
		x->cap_tcbad = cap;
	}
	gh_tcbad *b = &x->tcbad[x->n_tcbad++];
	b->chunk = chunk;
	b->tid = tid;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->why, sizeof b->why, fmt, ap);
	va_end(ap);
}

/* the key every cached entry holds: from the symbol, else the most common first key */
static void find_tcache_key(gh_ctx *x)
{
	hs_capture *c = x->c;
	int ok = 1;
	if (x->sym_tcache_key) {
		uint64_t k = gh_u64(x, x->sym_tcache_key, &ok);
		if (ok) {
			x->tcache_key = k;
			x->key_known = 1;
			return;
		}
	}
	uint64_t keys[64];
	int votes[64], nk = 0;
	for (size_t t = 0; t < c->n_threads; t++) {
		uint64_t v = c->threads[t].tcache;
		if (!v)
			continue;
		for (int i = 0; i < GH_TC_BINS; i++) {
			ok = 1;
			uint64_t e = gh_u64(x, v + GH_TC_ENTRIES + 8u * i, &ok);
			if (!ok || !e || (e & 15))
				continue;
			uint64_t k = gh_u64(x, e + GH_TC_E_KEY, &ok);
			if (!ok)
				continue;
			int j;
			for (j = 0; j < nk && keys[j] != k; j++)
				;
			if (j == nk) {
				if (nk == 64)
					continue;
				keys[nk] = k;
				votes[nk++] = 0;
			}
			votes[j]++;
		}
	}
	int best = -1;
	for (int j = 0; j < nk; j++)
		if (best < 0 || votes[j] > votes[best])
			best = j;
	if (best >= 0) {
		x->tcache_key = keys[best];
		x->key_known = 1;
	}
}

static int collect_tcache(gh_ctx *x, hs_thread *th)
{
	uint64_t v = th->tcache, chunk = v - 16;
	uint16_t counts[GH_TC_BINS];
	uint64_t ent[GH_TC_BINS];
	if ((v & 15) || img_read(x->im, v + GH_TC_COUNTS, counts, sizeof counts) ||
	    img_read(x->im, v + GH_TC_ENTRIES, ent, sizeof ent)) {
		tc_bad(x, chunk, th->tid, "tcache %#llx is not in the copy", (unsigned long long)v);
		return 0;
	}
	gh_ent *e;
	int r = put_node(x, chunk, GH_K_TCSTRUCT, 0, -1, &e);
	if (r < 0)
		return r;
	if (!r) {
		tc_bad(x, chunk, th->tid, "tcache struct %#llx is also on a %s list", (unsigned long long)chunk,
		       kind_name(e->kind));
		return 0;
	}
	uint64_t maxcount = x->c->heap.mp_tcache_count;
	for (int i = 0; i < GH_TC_BINS; i++) {
		uint64_t p = ent[i];
		if ((counts[i] == 0) != (p == 0)) {
			tc_bad(x, chunk, th->tid, "bin %d: count %u but head %#llx", i, counts[i], (unsigned long long)p);
			continue;
		}
		if (x->mp && counts[i] > maxcount)
			tc_bad(x, chunk, th->tid, "bin %d: count %u above tcache_count %llu", i, counts[i],
			       (unsigned long long)maxcount);
		uint32_t n = 0;
		int bad = 0;
		while (p) {
			int ok = 1;
			if (n > 65535) {
				tc_bad(x, chunk, th->tid, "bin %d: chain longer than 65535", i);
				bad = 1;
				break;
			}
			if (p & 15) {
				tc_bad(x, chunk, th->tid, "bin %d: misaligned entry %#llx", i, (unsigned long long)p);
				bad = 1;
				break;
			}
			uint64_t hdr = gh_u64(x, p - 8, &ok), next = gh_u64(x, p + GH_TC_E_NEXT, &ok);
			uint64_t key = gh_u64(x, p + GH_TC_E_KEY, &ok);
			if (!ok) {
				tc_bad(x, chunk, th->tid, "bin %d: entry %#llx not in the copy", i, (unsigned long long)p);
				bad = 1;
				break;
			}
			uint64_t sz = hdr & ~(uint64_t)GH_SIZE_BITS;
			if (sz != GH_MINSIZE + 16u * (uint64_t)i || (hdr & GH_IS_MMAPPED)) {
				tc_bad(x, chunk, th->tid, "bin %d: entry %#llx has size %#llx", i, (unsigned long long)p,
				       (unsigned long long)sz);
				bad = 1;
				break;
			}
			if (x->key_known && key != x->tcache_key) {
				tc_bad(x, chunk, th->tid, "bin %d: entry %#llx has key %#llx, not tcache_key", i,
				       (unsigned long long)p, (unsigned long long)key);
				bad = 1;
				break;
			}
			r = put_node(x, p - 16, GH_K_TCACHE, i, -1, &e);
			if (r < 0)
				return r;
			if (!r) {
				tc_bad(x, chunk, th->tid, "bin %d: entry %#llx is already on a %s list (cycle or double free)",
				       i, (unsigned long long)p, kind_name(e->kind));
				bad = 1;
				break;
			}
			n++;
			p = gh_reveal(p, next);
		}
		if (!bad && n != counts[i])
			tc_bad(x, chunk, th->tid, "bin %d: count %u but %u entries on the chain", i, counts[i], n);
		/* what the bin verifiably holds: counts[i] when consistent */
		th->tcache_count[i] = n;
		th->tcache_bytes[i] = (uint64_t)n * (GH_MINSIZE + 16u * (uint64_t)i);
	}
	return 0;
}

int gh_collect_lists(gh_ctx *x)
{
	hs_capture *c = x->c;
	int rc;
	for (size_t ai = 0; ai < c->n_arenas; ai++) {
		hs_arena *a = &c->arenas[ai];
		int ok = 1;
		if ((rc = collect_fastbins(x, (int)ai)) || (rc = collect_bins(x, (int)ai)))
			return rc;
		/* int_mallinfo: avail starts at chunksize(top), even the initial fake top */
		a->top_size = gh_u64(x, a->top + 8, &ok) & ~(uint64_t)GH_SIZE_BITS;
	}
	find_tcache_key(x);
	c->heap.tcache_key = x->key_known ? x->tcache_key : 0;
	for (size_t t = 0; t < c->n_threads; t++)
		if (c->threads[t].tcache && (rc = collect_tcache(x, &c->threads[t])))
			return rc;
	return x->oom ? -ENOMEM : 0;
}

void gh_post_checks(gh_ctx *x)
{
	hs_capture *c = x->c;
	if (!c->n_arenas)
		return;
	size_t unseen = 0;
	for (size_t i = 0; i < x->set.cap; i++) {
		const gh_ent *e = &x->set.t[i];
		if (!e->key || e->seen)
			continue;
		if (++unseen > 64)   /* the first ones say it all; keep a corrupt heap cheap */
			continue;
		int ai = e->owner;
		if (ai < 0 || (size_t)ai >= c->n_arenas)
			ai = gh_arena_of_addr(x, e->key);
		if (ai < 0)
			ai = 0;
		if (e->kind == GH_K_BIN || e->kind == GH_K_FAST)
			gh_arena_fail(x, ai, "%s %d node %#llx is not a chunk the walk met", kind_name(e->kind), e->bin,
				      (unsigned long long)e->key);
		else
			gh_arena_fail(x, ai, "%s chunk %#llx is not a chunk the walk met", kind_name(e->kind),
				      (unsigned long long)e->key);
	}
	if (unseen > 64)
		gh_heap_note(x, "%zu free-list nodes in all were not met by the walk", unseen);
	for (size_t i = 0; i < x->n_tcbad && i < 64; i++) {
		int ai = gh_arena_of_addr(x, x->tcbad[i].chunk);
		gh_arena_fail(x, ai < 0 ? 0 : ai, "thread %d tcache %#llx: %s", x->tcbad[i].tid,
			      (unsigned long long)x->tcbad[i].chunk + 16, x->tcbad[i].why);
	}
}
