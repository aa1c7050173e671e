/* glibc_walk.c -- the chunk walk of a copied glibc heap: the main arena from sbrk_base
 * to its top, every heap of every other arena (newest first, by heap_info.prev, each up
 * to heap_info.size), and the mmapped chunks in anonymous mappings. Each chunk is
 * classified by the free lists that name it (glibc_check.c filled x->set) and
 * cross-checked with the PREV_INUSE bit of the chunk after it.
 *
 * Pseudo-chunks make an arena's chunks tile its heaps exactly (schema/schema.sql):
 * heap_info + malloc_state headers, fenceposts to a heap's end, and the lead padding of
 * memaligned mmapped chunks. A walk stops at the first chunk it cannot trust; what was
 * verified before it is kept and the arena is marked inconsistent.
 */
#include "glibc_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RESUME_BUDGET (1u << 24)   /* chunk steps spent looking past a foreign sbrk */

static int emit(gh_ctx *x, uint64_t addr, uint64_t size, int state, int internal, int mmapped, int ai)
{
	hs_chunk ch = {
		.addr = addr, .size = size, .state = (uint8_t)state, .internal = (uint8_t)internal,
		.mmapped = (uint8_t)mmapped, .arena = ai,
	};
	if (hs_add_chunk(x->c, &ch) < 0) {
		x->oom = 1;
		return -ENOMEM;
	}
	return 0;
}

int gh_arena_of_addr(const gh_ctx *x, uint64_t a)
{
	const hs_capture *c = x->c;
	for (size_t i = 0; i < c->n_arenas; i++) {
		const hs_arena *ar = &c->arenas[i];
		if (ar->is_main) {
			uint64_t lo = x->sbrk_base, hi = ar->top + ar->top_size;
			if (lo && a >= lo && a < hi)
				return (int)i;
			continue;
		}
		for (size_t h = 0; h < ar->n_heaps; h++)
			if (a >= ar->heaps[h].addr && a < ar->heaps[h].addr + ar->heaps[h].size)
				return (int)i;
	}
	return -1;
}

/* Classify and emit one chunk of arena ai at a (size sz, header hdr); nhdr is the header
 * of the chunk after it. */
static int classify(gh_ctx *x, int ai, int is_main, uint64_t a, uint64_t sz, uint64_t hdr, uint64_t nhdr)
{
	int looks_free = !(nhdr & GH_PREV_INUSE);
	gh_ent *e = gh_set_get(&x->set, a);
	int state = HS_CH_IN_USE, internal = HS_INT_NONE;
	if (e) {
		e->seen = 1;
		if (e->dup)
			gh_arena_fail(x, ai, "chunk %#llx is on more than one free list", (unsigned long long)a);
		if ((e->kind == GH_K_BIN || e->kind == GH_K_FAST) && e->owner != ai)
			gh_arena_fail(x, ai, "chunk %#llx is on a list of arena %d", (unsigned long long)a, e->owner);
		switch (e->kind) {
		case GH_K_BIN: state = HS_CH_FREE_BIN; break;
		case GH_K_FAST: state = HS_CH_FASTBIN; break;
		case GH_K_TCACHE:
			state = HS_CH_TCACHE;
			if (sz != GH_MINSIZE + 16u * (uint64_t)e->bin)
				gh_arena_fail(x, ai, "tcache chunk %#llx has size %#llx", (unsigned long long)a,
					      (unsigned long long)sz);
			break;
		case GH_K_TCSTRUCT:
			state = HS_CH_INTERNAL;
			internal = HS_INT_TCACHE_STRUCT;
			break;
		}
	}
	if (state == HS_CH_FREE_BIN && !looks_free)
		gh_arena_fail(x, ai, "bin chunk %#llx: the next chunk has PREV_INUSE set", (unsigned long long)a);
	if (state != HS_CH_FREE_BIN && looks_free)
		gh_arena_fail(x, ai, "chunk %#llx looks free (next PREV_INUSE clear) but is on no bin",
			      (unsigned long long)a);
	if (state != HS_CH_FREE_BIN && !!(hdr & GH_NON_MAIN) == is_main)
		gh_arena_fail(x, ai, "chunk %#llx: NON_MAIN_ARENA bit is %s", (unsigned long long)a,
			      is_main ? "set in the main arena" : "clear outside the main arena");
	return emit(x, a, sz, state, internal, 0, ai);
}

typedef enum { SEG_OK = 0, SEG_FAIL = 1, SEG_OOM = -1 } seg_rc;

/* Walk chunks from a up to stop (the arena's top, or the end of an old heap). Old heaps
 * (top_here == 0) end with a fencepost, which becomes one pseudo-chunk. */
static seg_rc walk_seg(gh_ctx *x, int ai, int is_main, uint64_t a, uint64_t stop, int top_here)
{
	const uint64_t start = a;
	uint32_t resume_budget = RESUME_BUDGET;
	int ok = 1;
	/* an old heap ends with sysmalloc's fencepost: [0x10|P][0|P], or an unfreeable 0x20
	 * leftover then [0|P]; the last header says size 0 */
	int fence_end = !top_here && stop >= start + 48 &&
			!(gh_u64(x, stop - 8, &ok) & ~(uint64_t)GH_SIZE_BITS) && ok;
	while (a < stop) {
		ok = 1;
		uint64_t hdr = gh_u64(x, a + 8, &ok);
		if (!ok) {
			gh_arena_fail(x, ai, "chunk header at %#llx is not in the copy", (unsigned long long)a);
			return SEG_FAIL;
		}
		uint64_t sz = hdr & ~(uint64_t)GH_SIZE_BITS;
		if (fence_end && ((a == stop - 32 && sz == 16) || (a == stop - 16 && sz == 0) ||
				  (a == stop - 48 && sz == 32 && !gh_set_get(&x->set, a))))
			return emit(x, a, stop - a, HS_CH_INTERNAL, HS_INT_FENCEPOST, 0, ai) ? SEG_OOM : SEG_OK;
		if (is_main && sz == 16 && (gh_u64(x, a + 24, &ok) & ~(uint64_t)GH_SIZE_BITS) == 16 && ok) {
			/* a foreign sbrk: two 0x10 fenceposts, foreign bytes, then chunks again at a
			 * new aligned brk. Find the first place from which a chain ends exactly at top. */
			uint64_t q, found = 0;
			for (q = a + 32; q < stop && resume_budget && !found; q += 16) {
				uint64_t b = q;
				while (b < stop && resume_budget) {
					resume_budget--;
					uint64_t h2 = gh_u64(x, b + 8, &ok), s2 = h2 & ~(uint64_t)GH_SIZE_BITS;
					if (!ok || s2 < GH_MINSIZE || (s2 & 15) || s2 > stop - b || (h2 & GH_IS_MMAPPED))
						break;
					b += s2;
				}
				if (b == stop)
					found = q;
			}
			if (!found) {
				gh_arena_fail(x, ai, "fencepost at %#llx (foreign sbrk?): no chunk chain resumes after it",
					      (unsigned long long)a);
				return SEG_FAIL;
			}
			if (emit(x, a, found - a, HS_CH_INTERNAL, HS_INT_FENCEPOST, 0, ai))
				return SEG_OOM;
			gh_heap_note(x, "main arena: foreign sbrk region %#llx-%#llx", (unsigned long long)a,
				     (unsigned long long)found);
			a = found;
			continue;
		}
		if (sz < GH_MINSIZE || (sz & 15) || sz > stop - a) {
			gh_arena_fail(x, ai, "chunk %#llx has size %#llx (walk from %#llx to %#llx stopped)",
				      (unsigned long long)a, (unsigned long long)hdr, (unsigned long long)start,
				      (unsigned long long)stop);
			return SEG_FAIL;
		}
		if (hdr & GH_IS_MMAPPED) {
			gh_arena_fail(x, ai, "chunk %#llx has IS_MMAPPED set inside an arena", (unsigned long long)a);
			return SEG_FAIL;
		}
		if (a + sz == stop && !top_here) {
			gh_arena_fail(x, ai, "chunk %#llx runs to the heap's end %#llx without a fencepost",
				      (unsigned long long)a, (unsigned long long)stop);
			return SEG_FAIL;
		}
		uint64_t nhdr = gh_u64(x, a + sz + 8, &ok);
		if (!ok) {
			gh_arena_fail(x, ai, "chunk header at %#llx is not in the copy", (unsigned long long)(a + sz));
			return SEG_FAIL;
		}
		if (classify(x, ai, is_main, a, sz, hdr, nhdr))
			return SEG_OOM;
		a += sz;
	}
	return SEG_OK;
}

static int emit_top(gh_ctx *x, int ai, uint64_t top, uint64_t end)
{
	int ok = 1;
	uint64_t hdr = gh_u64(x, top + 8, &ok), sz = hdr & ~(uint64_t)GH_SIZE_BITS;
	if (!ok) {
		gh_arena_fail(x, ai, "top %#llx is not in the copy", (unsigned long long)top);
		return 0;
	}
	if (!(hdr & GH_PREV_INUSE))
		gh_arena_fail(x, ai, "top %#llx: PREV_INUSE clear", (unsigned long long)top);
	if (gh_set_get(&x->set, top)) {
		gh_set_get(&x->set, top)->seen = 1;
		gh_arena_fail(x, ai, "top %#llx is on a free list", (unsigned long long)top);
	}
	if (top + sz != end) {
		gh_arena_fail(x, ai, "top %#llx size %#llx does not end at %#llx", (unsigned long long)top,
			      (unsigned long long)sz, (unsigned long long)end);
		if (top >= end)
			return 0;
		sz = end - top;
	}
	return emit(x, top, sz, HS_CH_TOP, HS_INT_NONE, 0, ai);
}

static int walk_main(gh_ctx *x)
{
	hs_arena *a = &x->c->arenas[0];
	uint64_t m = a->addr, top = a->top;
	int ok = 1;
	if (top == gh_bin_at(m, 1)) {
		gh_heap_note(x, "the main arena was never used%s",
			     x->c->n_arenas == 1 ? " (another allocator, or no allocation yet)" : "");
		if (a->system_mem)
			gh_arena_fail(x, 0, "top is the initial fake chunk but system_mem is %llu",
				      (unsigned long long)a->system_mem);
		return 0;
	}
	uint64_t tsz = gh_u64(x, top + 8, &ok) & ~(uint64_t)GH_SIZE_BITS;
	if (!ok || (top & 15) || tsz < GH_MINSIZE) {
		gh_arena_fail(x, 0, "top %#llx is not a chunk", (unsigned long long)top);
		return 0;
	}
	uint64_t top_end = top + tsz;
	uint64_t page = x->c->proc.page_size ? x->c->proc.page_size : 4096;
	if (top_end & (page - 1))
		gh_arena_fail(x, 0, "top %#llx size %#llx does not end on a page boundary", (unsigned long long)top,
			      (unsigned long long)tsz);
	if ((uint32_t)a->flags & GH_NONCONTIGUOUS) {
		gh_arena_fail(x, 0, "the main arena is non-contiguous (brk failed): only its top is reported");
		return emit_top(x, 0, top, top_end);
	}
	uint64_t sbrk = x->sbrk_base ? x->sbrk_base : top_end - a->system_mem;
	if (!x->mp)
		gh_arena_fail(x, 0, "mp_ not found: sbrk_base assumed to be top end - system_mem = %#llx",
			      (unsigned long long)sbrk);
	if (!x->sbrk_base)
		x->sbrk_base = sbrk;
	if (sbrk + a->system_mem != top_end)
		gh_arena_fail(x, 0, "sbrk_base %#llx + system_mem %#llx != top end %#llx", (unsigned long long)sbrk,
			      (unsigned long long)a->system_mem, (unsigned long long)top_end);
	if (sbrk > top) {
		gh_arena_fail(x, 0, "sbrk_base %#llx is above top %#llx", (unsigned long long)sbrk,
			      (unsigned long long)top);
		return emit_top(x, 0, top, top_end);
	}
	uint64_t first = (sbrk + 15) & ~15ull;
	if (first > sbrk && emit(x, sbrk, first - sbrk, HS_CH_INTERNAL, HS_INT_HEAP_HEADER, 0, 0))
		return -ENOMEM;
	seg_rc r = walk_seg(x, 0, 1, first, top, 1);
	if (r == SEG_OOM)
		return -ENOMEM;
	return emit_top(x, 0, top, top_end);
}

static int walk_nonmain(gh_ctx *x, int ai)
{
	hs_arena *a = &x->c->arenas[ai];
	uint64_t m = a->addr, top = a->top, hmax = x->heap_max;
	uint64_t page = x->c->proc.page_size ? x->c->proc.page_size : 4096;
	int ok = 1;
	size_t cap = 8;
	a->heaps = calloc(cap, sizeof *a->heaps);
	if (!a->heaps)
		return -ENOMEM;
	/* the heap list, newest (holding top) first */
	uint64_t h = top & ~(hmax - 1), sum = 0;
	int broken = 0;
	while (h) {
		if (a->n_heaps >= GH_MAX_HEAPS) {
			gh_arena_fail(x, ai, "more than %d heaps", GH_MAX_HEAPS);
			broken = 1;
			break;
		}
		for (size_t i = 0; i < a->n_heaps; i++)
			if (a->heaps[i].addr == h) {
				gh_arena_fail(x, ai, "heap list cycles at %#llx", (unsigned long long)h);
				broken = 1;
			}
		if (broken)
			break;
		ok = 1;
		uint64_t ar = gh_u64(x, h + GH_HI_AR_PTR, &ok), prev = gh_u64(x, h + GH_HI_PREV, &ok);
		uint64_t size = gh_u64(x, h + GH_HI_HSIZE, &ok), mprot = gh_u64(x, h + GH_HI_MPROTECT, &ok);
		if (!ok || ar != m || !size || size % page || size > mprot || mprot > hmax || (h & (hmax - 1)) ||
		    (prev & (hmax - 1))) {
			gh_arena_fail(x, ai, "heap_info at %#llx is not valid (ar_ptr %#llx size %#llx mprotect %#llx)",
				      (unsigned long long)h, (unsigned long long)ar, (unsigned long long)size,
				      (unsigned long long)mprot);
			broken = 1;
			break;
		}
		if (a->n_heaps == cap) {
			hs_heap *nh = realloc(a->heaps, 2 * cap * sizeof *nh);
			if (!nh)
				return -ENOMEM;
			a->heaps = nh;
			cap *= 2;
		}
		a->heaps[a->n_heaps++] = (hs_heap){ .addr = h, .size = size, .mprotect_size = mprot };
		sum += size;
		if (!prev && m != h + GH_HI_SIZE) {
			gh_arena_fail(x, ai, "oldest heap %#llx does not hold the arena", (unsigned long long)h);
			broken = 1;
		}
		h = prev;
	}
	if (!broken && sum != a->system_mem)
		gh_arena_fail(x, ai, "heap sizes add up to %#llx but system_mem is %#llx", (unsigned long long)sum,
			      (unsigned long long)a->system_mem);
	for (size_t i = 0; i < a->n_heaps; i++) {
		uint64_t hp = a->heaps[i].addr, end = hp + a->heaps[i].size, first;
		if (m == hp + GH_HI_SIZE)
			first = ((m + GH_MS_SIZE + GH_CHUNK_HDR + 15) & ~15ull) - GH_CHUNK_HDR;
		else
			first = hp + GH_HI_SIZE;
		if (emit(x, hp, first - hp, HS_CH_INTERNAL, HS_INT_HEAP_HEADER, 0, ai))
			return -ENOMEM;
		int top_here = top >= first && top < end;
		if (i == 0 && !top_here) {
			gh_arena_fail(x, ai, "top %#llx is not in its heap %#llx", (unsigned long long)top,
				      (unsigned long long)hp);
			continue;
		}
		if (walk_seg(x, ai, 0, first, top_here ? top : end, top_here) == SEG_OOM)
			return -ENOMEM;
		if (top_here && emit_top(x, ai, top, end))
			return -ENOMEM;
	}
	return 0;
}

int gh_walk_arenas(gh_ctx *x)
{
	int rc = walk_main(x);
	for (size_t i = 1; i < x->c->n_arenas && !rc; i++)
		rc = walk_nonmain(x, (int)i);
	return rc ? rc : (x->oom ? -ENOMEM : 0);
}

/* ---- mmapped chunks ---- */

#define PASS2_BUDGET (1ull << 28)  /* 16-byte positions examined looking for memaligned chunks */

typedef struct {
	uint64_t lo, hi;
} range;

typedef struct {
	range *r;
	size_t n;
} ranges;

static int range_cmp(const void *a, const void *b)
{
	const range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The main arena and every arena heap's mapping, sorted: never mmapped chunks. */
static int build_exclusions(const gh_ctx *x, ranges *ex)
{
	const hs_capture *c = x->c;
	size_t n = 1;
	for (size_t i = 0; i < c->n_arenas; i++)
		n += c->arenas[i].n_heaps;
	ex->r = calloc(n, sizeof *ex->r);
	if (!ex->r)
		return -ENOMEM;
	ex->n = 0;
	if (c->n_arenas && x->sbrk_base && c->arenas[0].top + c->arenas[0].top_size > x->sbrk_base)
		ex->r[ex->n++] = (range){ x->sbrk_base, c->arenas[0].top + c->arenas[0].top_size };
	for (size_t i = 0; i < c->n_arenas; i++)
		for (size_t h = 0; h < c->arenas[i].n_heaps; h++) {
			const hs_heap *hp = &c->arenas[i].heaps[h];
			uint64_t len = hp->mprotect_size > hp->size ? hp->mprotect_size : hp->size;
			ex->r[ex->n++] = (range){ hp->addr, hp->addr + len };
		}
	qsort(ex->r, ex->n, sizeof *ex->r, range_cmp);
	return 0;
}

/* Is a excluded? Then *skip_to is the end of the range that holds it. */
static int excluded(const ranges *ex, uint64_t a, uint64_t *skip_to)
{
	size_t lo = 0, hi = ex->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ex->r[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* ranges may overlap: look back over the ones starting at or below a */
	for (size_t k = lo; k-- > 0;) {
		if (a < ex->r[k].hi) {
			*skip_to = ex->r[k].hi;
			return 1;
		}
		if (lo - k > 8)
			break;
	}
	return 0;
}

static int anon_rw(const hs_mapping *m)
{
	if (m->perms[0] != 'r' || m->perms[1] != 'w')
		return 0;
	return !m->path || !m->path[0] || !strncmp(m->path, "[anon:", 6);
}

static int holds_stack(const gh_ctx *x, const hs_mapping *m)
{
	for (size_t t = 0; t < x->c->n_threads; t++) {
		uint64_t sp = x->c->threads[t].sp;
		if (!sp && x->c->threads[t].regs_valid)
			sp = x->c->threads[t].regs[19];
		if (sp >= m->start && sp < m->end)
			return 1;
	}
	return 0;
}

/* A memaligned mmapped chunk in the mapping at s: _int_memalign put the chunk at
 * q = ALIGN_UP(s + 16, align) - 16 (one alignment further when that lead would be below
 * MINSIZE), with prev_size = q - s, for some power-of-two align. 1 if found. */
static int memaligned_in(gh_ctx *x, uint64_t s, uint64_t end, uint64_t page, uint64_t *qo, uint64_t *szo)
{
	for (int j = 5; j < 40; j++) {
		uint64_t al = 1ull << j;
		uint64_t q = ((s + 16 + al - 1) & ~(al - 1)) - 16;
		if (q - s < GH_MINSIZE)
			q += al;
		if (q + 16 > end)
			break;
		int ok = 1;
		uint64_t ps = gh_u64(x, q, &ok), hdr = gh_u64(x, q + 8, &ok), sz = hdr & ~(uint64_t)GH_SIZE_BITS;
		if (ok && ps == q - s && (hdr & GH_SIZE_BITS) == GH_IS_MMAPPED && sz >= GH_MINSIZE &&
		    !((ps + sz) & (page - 1)) && sz <= end - q) {
			*qo = q;
			*szo = sz;
			return 1;
		}
	}
	return 0;
}

/* Pass 1: page-aligned headers with prev_size 0 and flags exactly IS_MMAPPED (and the
 * memaligned chunk inside when memalign left that header stale). */
static int pass1(gh_ctx *x, const ranges *ex, uint64_t page, uint64_t *n, uint64_t *bytes)
{
	hs_capture *c = x->c;
	for (size_t i = 0; i < c->n_maps; i++) {
		const hs_mapping *m = &c->maps[i];
		if (!anon_rw(m) || holds_stack(x, m))
			continue;
		for (uint64_t a = m->start; a + 16 <= m->end;) {
			uint64_t skip;
			if (excluded(ex, a, &skip)) {
				a = (skip + page - 1) & ~(page - 1);
				continue;
			}
			int ok = 1;
			uint64_t ps = gh_u64(x, a, &ok), hdr = gh_u64(x, a + 8, &ok), sz = hdr & ~(uint64_t)GH_SIZE_BITS;
			if (!ok) {
				const img_region *r = img_find(x->im, a);
				a = r && r->hi > a ? ((r->hi + page - 1) & ~(page - 1)) : a + page;
				continue;
			}
			if (ps == 0 && (hdr & GH_SIZE_BITS) == GH_IS_MMAPPED && (sz & (page - 1)) == 0 && sz >= page &&
			    sz <= m->end - a && !excluded(ex, a + sz - 1, &skip)) {
				uint64_t q, qsz;
				if (memaligned_in(x, a, m->end, page, &q, &qsz)) {
					/* memalign left the mapping's first header stale: the chunk is at q */
					if (emit(x, a, q - a, HS_CH_INTERNAL, HS_INT_MMAP_LEAD, 1, -1) ||
					    emit(x, q, qsz, HS_CH_IN_USE, HS_INT_NONE, 1, -1))
						return -ENOMEM;
					sz = q - a + qsz;
				} else if (emit(x, a, sz, HS_CH_IN_USE, HS_INT_NONE, 1, -1)) {
					return -ENOMEM;
				}
				(*n)++;
				*bytes += sz;
				a += sz;
			} else {
				a += page;
			}
		}
	}
	return 0;
}

/* Pass 2, only when mp_ counts more than pass 1 found: memaligned chunks whose mapping
 * start carries no header, found by prev_size = distance to a page-aligned start.
 * Pass-1 chunks (sorted, [from, to) in c->chunks) are skipped with a cursor. */
static int pass2(gh_ctx *x, const ranges *ex, uint64_t page, size_t from, size_t to, uint64_t *n,
		 uint64_t *bytes)
{
	hs_capture *c = x->c;
	uint64_t budget = PASS2_BUDGET;
	for (size_t i = 0; i < c->n_maps; i++) {
		const hs_mapping *m = &c->maps[i];
		if (!anon_rw(m) || holds_stack(x, m))
			continue;
		size_t j = from;
		uint64_t last_end = m->start;  /* end of the last chunk pass 2 found here */
		for (uint64_t q = m->start + 16; q + 16 <= m->end;) {
			if (!budget--) {
				gh_heap_note(x, "memaligned mmapped chunks: search budget spent");
				return 0;
			}
			uint64_t skip;
			while (j < to && c->chunks[j].addr + c->chunks[j].size <= q)
				j++;
			if (j < to && c->chunks[j].addr <= q) {
				q = (c->chunks[j].addr + c->chunks[j].size + 15) & ~15ull;
				continue;
			}
			if (excluded(ex, q, &skip)) {
				q = (skip + 15) & ~15ull;
				continue;
			}
			int ok = 1;
			uint64_t ps = gh_u64(x, q, &ok), hdr = gh_u64(x, q + 8, &ok), sz = hdr & ~(uint64_t)GH_SIZE_BITS;
			if (!ok) {
				const img_region *r = img_find(x->im, q);
				q = r && r->hi > q ? r->hi : q + page;
				continue;
			}
			uint64_t s = q - ps;
			if (ps && !(ps & 15) && ps <= q - last_end && !(s & (page - 1)) &&
			    (hdr & GH_SIZE_BITS) == GH_IS_MMAPPED && sz >= GH_MINSIZE && !(sz & 15) &&
			    !((ps + sz) & (page - 1)) && sz <= m->end - q && (j >= to || q + sz <= c->chunks[j].addr) &&
			    (j == from || c->chunks[j - 1].addr + c->chunks[j - 1].size <= s)) {
				if (emit(x, s, ps, HS_CH_INTERNAL, HS_INT_MMAP_LEAD, 1, -1) ||
				    emit(x, q, sz, HS_CH_IN_USE, HS_INT_NONE, 1, -1))
					return -ENOMEM;
				(*n)++;
				*bytes += ps + sz;
				q += sz;
				last_end = q;
			} else {
				q += 16;
			}
		}
	}
	return 0;
}

int gh_scan_mmapped(gh_ctx *x)
{
	hs_capture *c = x->c;
	const uint64_t page = c->proc.page_size ? c->proc.page_size : 4096;
	ranges ex;
	if (build_exclusions(x, &ex))
		return -ENOMEM;
	size_t first_mm = c->n_chunks;
	uint64_t n = 0, bytes = 0;
	int rc = pass1(x, &ex, page, &n, &bytes);
	if (!rc && x->mp && (n < c->heap.mp_n_mmaps || bytes < c->heap.mp_mmapped_mem))
		rc = pass2(x, &ex, page, first_mm, c->n_chunks, &n, &bytes);
	free(ex.r);
	if (rc)
		return rc;
	if (x->mp && (n != c->heap.mp_n_mmaps || bytes != c->heap.mp_mmapped_mem))
		gh_heap_note(x, "mmapped chunks: found %llu (%llu bytes) but mp_ counts %llu (%llu bytes)",
			     (unsigned long long)n, (unsigned long long)bytes, (unsigned long long)c->heap.mp_n_mmaps,
			     (unsigned long long)c->heap.mp_mmapped_mem);
	return 0;
}
