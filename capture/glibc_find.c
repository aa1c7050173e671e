/* glibc_find.c -- locating glibc's malloc state in a copied target: main_arena (debug
 * symbols, or heuristic H1: a pointer in the module's writable data to the chunk that
 * ends exactly at the end of [heap]; or H2: a run of bin headers as chap does), the arena ring, mp_ (symbols, or its
 * sbrk_base and tcache fields), and each thread's tcache and thread_arena TLS slots
 * (scanned below fs_base). See shared/glibc-heap.md sections 2 and 3.
 *
 * Everything read from the image is untrusted: candidates are validated before use and
 * every loop is capped.
 */
#include "glibc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_SCAN_MAX 0x100000      /* bytes below fs_base searched for the tcache slot */
#define TA_SCAN 0x800              /* bytes around the tcache slot searched for thread_arena */
#define MAX_CAND 256               /* candidate tcache slots kept */

/* ---- main_arena ---- */

/* A bin header at b (fd at b+16, bk at b+24): 1 if empty or consistently linked, 0 if
 * not, 2 if its nodes are not in the copy (cannot be judged). */
static int bin_ok(gh_ctx *x, uint64_t b)
{
	int ok = 1;
	uint64_t fd = gh_u64(x, b + 16, &ok), bk = gh_u64(x, b + 24, &ok);
	if (!ok)
		return 0;
	if (fd == b && bk == b)
		return 1;
	if (fd == b || bk == b || (fd & 15) || (bk & 15) || !fd || !bk)
		return 0;
	uint64_t fdbk = gh_u64(x, fd + 24, &ok);
	if (!ok)
		return 2;
	uint64_t bkfd = gh_u64(x, bk + 16, &ok);
	if (!ok)
		return 2;
	return fdbk == b && bkfd == b;
}

/* Validate a main_arena candidate: header fields, bins (one may be in flux, a few may
 * point outside the copy), top, and the next ring. */
static int plausible_arena(gh_ctx *x, uint64_t m)
{
	int ok = 1;
	if (!img_ptr(x->im, m, GH_MS_SIZE))
		return 0;
	uint32_t mutex = gh_u32(x, m + GH_MS_MUTEX, &ok), flags = gh_u32(x, m + GH_MS_FLAGS, &ok);
	uint32_t hf = gh_u32(x, m + GH_MS_HAVE_FAST, &ok);
	if (mutex > 2 || (flags & ~7u) || hf > 1)
		return 0;
	int bad = 0, unknown = 0;
	for (int i = 1; i < GH_NBINS && bad <= 1 && unknown <= 16; i++) {
		int r = bin_ok(x, gh_bin_at(m, i));
		bad += r == 0;
		unknown += r == 2;
	}
	if (bad > 1 || unknown > 16)
		return 0;
	uint64_t top = gh_u64(x, m + GH_MS_TOP, &ok);
	if (top != gh_bin_at(m, 1)) {
		uint64_t ts = gh_u64(x, top + 8, &ok) & ~(uint64_t)GH_SIZE_BITS;
		if (!ok || (top & 15) || ts < GH_MINSIZE || (ts & 15))
			return 0;
	}
	uint64_t sysmem = gh_u64(x, m + GH_MS_SYSMEM, &ok), maxsys = gh_u64(x, m + GH_MS_MAX_SYSMEM, &ok);
	if (sysmem > maxsys)
		return 0;
	/* the ring: every other member sits right after its first heap's heap_info */
	uint64_t n = gh_u64(x, m + GH_MS_NEXT, &ok);
	for (int k = 0; k < GH_MAX_ARENAS && ok; k++) {
		if (n == m)
			return 1;
		if ((n & 15) || gh_u64(x, n - GH_HI_SIZE + GH_HI_AR_PTR, &ok) != n)
			return 0;
		n = gh_u64(x, n + GH_MS_NEXT, &ok);
	}
	return 0;
}

/* A main_arena named by symbols: readable, sane header, top, and a ring back to it
 * (bins are not judged: a list may be in flux). */
static int sym_arena_ok(gh_ctx *x, uint64_t m)
{
	int ok = 1;
	if (!img_ptr(x->im, m, GH_MS_SIZE))
		return 0;
	uint32_t mutex = gh_u32(x, m + GH_MS_MUTEX, &ok), flags = gh_u32(x, m + GH_MS_FLAGS, &ok);
	if (mutex > 2 || (flags & ~7u))
		return 0;
	uint64_t n = gh_u64(x, m + GH_MS_NEXT, &ok);
	for (int k = 0; k < GH_MAX_ARENAS && ok; k++) {
		if (n == m)
			return 1;
		if ((n & 15) || gh_u64(x, n - GH_HI_SIZE + GH_HI_AR_PTR, &ok) != n)
			return 0;
		n = gh_u64(x, n + GH_MS_NEXT, &ok);
	}
	return 0;
}

/* Search the module's writable ranges for 8-byte words equal to v; calls fn on each hit
 * until it returns nonzero. */
static uint64_t search_word(gh_ctx *x, uint64_t v, int (*fn)(gh_ctx *, uint64_t))
{
	for (int r = 0; r < x->n_rw; r++) {
		uint64_t lo = (x->rw_lo[r] + 7) & ~7ull, hi = x->rw_hi[r];
		for (uint64_t p = lo; p + 8 <= hi;) {
			const img_region *reg = img_find(x->im, p);
			if (!reg || !reg->copied) {
				p = reg ? reg->hi : p + 4096;
				continue;
			}
			uint64_t end = reg->hi < hi ? reg->hi : hi;
			for (; p + 8 <= end; p += 8) {
				uint64_t w;
				memcpy(&w, reg->buf + (p - reg->lo), 8);
				if (w == v && fn(x, p))
					return p;
			}
			p = (end + 7) & ~7ull;
		}
	}
	return 0;
}

/* H1: main_arena.top is the chunk that ends exactly at the end of [heap]. Every word
 * of the module's writable data that points into [heap] at such a chunk is a candidate
 * top field. (No chain walk from the start is needed, so a static executable's TLS at
 * the start of [heap] and holes in the copy do not matter.) */
static uint64_t find_h1(gh_ctx *x)
{
	const hs_mapping *h = NULL;
	for (size_t i = 0; i < x->c->n_maps; i++)
		if (x->c->maps[i].path && !strcmp(x->c->maps[i].path, "[heap]"))
			h = &x->c->maps[i];
	if (!h)
		return 0;
	for (int r = 0; r < x->n_rw; r++) {
		uint64_t lo = (x->rw_lo[r] + 7) & ~7ull, hi = x->rw_hi[r];
		for (uint64_t p = lo; p + 8 <= hi;) {
			const img_region *reg = img_find(x->im, p);
			if (!reg || !reg->copied) {
				p = reg ? reg->hi : p + 4096;
				continue;
			}
			uint64_t end = reg->hi < hi ? reg->hi : hi;
			for (; p + 8 <= end; p += 8) {
				uint64_t v;
				memcpy(&v, reg->buf + (p - reg->lo), 8);
				if (v < h->start || v >= h->end || (v & 15) || p < lo + GH_MS_TOP)
					continue;
				int ok = 1;
				uint64_t sz = gh_u64(x, v + 8, &ok) & ~(uint64_t)GH_SIZE_BITS;
				if (ok && sz >= GH_MINSIZE && v + sz == h->end && plausible_arena(x, p - GH_MS_TOP))
					return p - GH_MS_TOP;
			}
			p = (end + 7) & ~7ull;
		}
	}
	return 0;
}

/* H2: chap's run of >= 120 bin headers (empty, or consistently linked). The run starts
 * at bin 1 (or bin 2 or 3 when the first are in flux), whose fd is main_arena + 112. */
static uint64_t h2_try(gh_ctx *x, uint64_t first, uint64_t lo)
{
	for (int k = 0; k < 3; k++) {
		uint64_t m = first - GH_MS_BINS - 16ull * k;
		if (m >= lo && m < first && plausible_arena(x, m))
			return m;
	}
	return 0;
}

static uint64_t find_h2(gh_ctx *x)
{
	for (int r = 0; r < x->n_rw; r++) {
		uint64_t lo = (x->rw_lo[r] + 7) & ~7ull, hi = x->rw_hi[r], m;
		for (int phase = 0; phase < 2; phase++) {
			int run = 0;
			uint64_t first = 0;   /* the fd field of the run's first bin */
			for (uint64_t p = lo + 8 * phase; p + 16 <= hi; p += 16) {
				if (bin_ok(x, p - 16) == 1) {
					if (!run++)
						first = p;
					continue;
				}
				if (run >= 120 && (m = h2_try(x, first, lo)))
					return m;
				run = 0;
			}
			if (run >= 120 && (m = h2_try(x, first, lo)))
				return m;
		}
	}
	return 0;
}

int gh_find_main_arena(gh_ctx *x)
{
	if (x->have_syms && x->sym_main_arena) {
		if (sym_arena_ok(x, x->sym_main_arena)) {
			x->main_arena = x->sym_main_arena;
			snprintf(x->how_arena, sizeof x->how_arena, "debug symbols");
			return 0;
		}
		gh_heap_note(x, "main_arena at %#llx (by the symbols of %s) is not in the copy or not an arena; "
			     "trying the heuristics", (unsigned long long)x->sym_main_arena, x->sym_file);
		x->have_syms = 0;
		x->sym_mp = x->sym_tcache_key = 0;
	}
	uint64_t m = find_h1(x);
	if (m) {
		snprintf(x->how_arena, sizeof x->how_arena, "[heap] top (H1)");
	} else if ((m = find_h2(x))) {
		snprintf(x->how_arena, sizeof x->how_arena, "bin headers (H2)");
	} else {
		gh_heap_note(x, "no glibc heap found: no main_arena in the writable data of '%s' "
			     "(glibc's malloc may never have been used)", x->mod_path);
		return 1;
	}
	x->main_arena = m;
	return 0;
}

/* ---- the arena ring ---- */

int gh_collect_arenas(gh_ctx *x)
{
	hs_capture *c = x->c;
	int ok = 1;
	x->arenas[0] = x->main_arena;
	x->n_arenas = 1;
	const char *broken = NULL;
	uint64_t n = gh_u64(x, x->main_arena + GH_MS_NEXT, &ok), bad_at = 0;
	while (n != x->main_arena) {
		if (!ok) {
			broken = "unreadable";
			break;
		}
		if (x->n_arenas >= GH_MAX_ARENAS) {
			broken = "too long (cycle?)";
			break;
		}
		int dup = 0;
		for (size_t i = 0; i < x->n_arenas; i++)
			dup |= x->arenas[i] == n;
		if (dup) {
			broken = "a cycle that misses main_arena";
			bad_at = n;
			break;
		}
		if ((n & 15) || !img_ptr(x->im, n, GH_MS_SIZE) ||
		    gh_u64(x, n - GH_HI_SIZE + GH_HI_AR_PTR, &ok) != n) {
			broken = "not an arena (no heap_info before it)";
			bad_at = n;
			break;
		}
		x->arenas[x->n_arenas++] = n;
		n = gh_u64(x, n + GH_MS_NEXT, &ok);
	}
	c->arenas = calloc(x->n_arenas, sizeof *c->arenas);
	if (!c->arenas)
		return -ENOMEM;
	c->n_arenas = x->n_arenas;
	for (size_t i = 0; i < x->n_arenas; i++) {
		hs_arena *a = &c->arenas[i];
		uint64_t m = x->arenas[i];
		ok = 1;
		a->addr = m;
		a->is_main = i == 0;
		a->top = gh_u64(x, m + GH_MS_TOP, &ok);
		a->system_mem = gh_u64(x, m + GH_MS_SYSMEM, &ok);
		a->max_system_mem = gh_u64(x, m + GH_MS_MAX_SYSMEM, &ok);
		a->mutex = (int)gh_u32(x, m + GH_MS_MUTEX, &ok);
		a->flags = (int)gh_u32(x, m + GH_MS_FLAGS, &ok);
		a->have_fastchunks = (int)gh_u32(x, m + GH_MS_HAVE_FAST, &ok);
		a->attached_threads = gh_u64(x, m + GH_MS_ATTACHED, &ok);
		a->consistent = 1;
	}
	if (broken)
		gh_arena_fail(x, 0, "arena ring broken after %zu arenas: next is %#llx, %s", x->n_arenas,
			      (unsigned long long)bad_at, broken);
	return 0;
}

/* ---- mp_ ---- */

static int pow2_or_0(uint64_t v)
{
	return (v & (v - 1)) == 0;
}

static int plausible_mp(gh_ctx *x, uint64_t mp, uint64_t sbrk, int check_sbrk)
{
	int ok = 1;
	if (!img_ptr(x->im, mp, GH_MP_SIZE))
		return 0;
	uint64_t tb = gh_u64(x, mp + GH_MP_TCACHE_BINS, &ok), tmax = gh_u64(x, mp + GH_MP_TCACHE_MAX_BYTES, &ok);
	uint64_t tc = gh_u64(x, mp + GH_MP_TCACHE_COUNT, &ok);
	int32_t nm = (int32_t)gh_u32(x, mp + GH_MP_N_MMAPS, &ok), maxnm = (int32_t)gh_u32(x, mp + GH_MP_MAX_N_MMAPS, &ok);
	uint64_t mm = gh_u64(x, mp + GH_MP_MMAPPED_MEM, &ok), maxmm = gh_u64(x, mp + GH_MP_MAX_MMAPPED_MEM, &ok);
	uint64_t thp = gh_u64(x, mp + GH_MP_THP_PAGESIZE, &ok), hp = gh_u64(x, mp + GH_MP_HP_PAGESIZE, &ok);
	if (!ok)
		return 0;
	if (check_sbrk && gh_u64(x, mp + GH_MP_SBRK_BASE, &ok) != sbrk)
		return 0;
	if (tb > GH_TC_BINS || tc > 65535 || tmax > gh_tidx2usize(GH_TC_BINS - 1))
		return 0;
	/* tcache_bins = csize2tidx(request2size(tcache_max_bytes)) + 1 (or 0 when disabled) */
	if (tb && tb != (gh_request2size(tmax) - GH_MINSIZE + GH_ALIGN - 1) / GH_ALIGN + 1)
		return 0;
	if (nm < 0 || nm > maxnm || mm > maxmm || (mm & 4095) || !pow2_or_0(thp) || !pow2_or_0(hp))
		return 0;
	return 1;
}

static int mp_hit(gh_ctx *x, uint64_t p)
{
	return p >= GH_MP_SBRK_BASE && plausible_mp(x, p - GH_MP_SBRK_BASE, x->want_sbrk, 1);
}

int gh_find_mp(gh_ctx *x)
{
	hs_capture *c = x->c;
	int ok = 1;
	uint64_t m = x->main_arena;
	uint64_t top = gh_u64(x, m + GH_MS_TOP, &ok);
	uint64_t sysmem = gh_u64(x, m + GH_MS_SYSMEM, &ok);
	uint64_t sbrk = 0;
	if (top != gh_bin_at(m, 1))
		sbrk = top + (gh_u64(x, top + 8, &ok) & ~(uint64_t)GH_SIZE_BITS) - sysmem;
	if (x->have_syms && x->sym_mp && plausible_mp(x, x->sym_mp, 0, 0)) {
		x->mp = x->sym_mp;
		snprintf(x->how_mp, sizeof x->how_mp, "debug symbols");
	} else {
		if (x->have_syms && x->sym_mp)
			gh_heap_note(x, "mp_ at %#llx (by the symbols) is not in the copy or not plausible; "
				     "trying the heuristics", (unsigned long long)x->sym_mp);
		if (!sbrk) {
			gh_heap_note(x, "mp_ not found: the main arena was never used, so sbrk_base is unknown");
			return 1;
		}
		x->want_sbrk = sbrk;
		uint64_t hit = search_word(x, sbrk, mp_hit);
		if (!hit) {
			gh_heap_note(x, "mp_ not found (sbrk_base %#llx)", (unsigned long long)sbrk);
			return 1;
		}
		x->mp = hit - GH_MP_SBRK_BASE;
		snprintf(x->how_mp, sizeof x->how_mp, "sbrk_base and tcache fields");
	}
	uint64_t mp = x->mp;
	hs_heapinfo *h = &c->heap;
	ok = 1;
	h->mp = mp;
	h->mp_n_mmaps = (uint64_t)(int64_t)(int32_t)gh_u32(x, mp + GH_MP_N_MMAPS, &ok);
	h->mp_mmapped_mem = gh_u64(x, mp + GH_MP_MMAPPED_MEM, &ok);
	h->mp_mmap_threshold = gh_u64(x, mp + GH_MP_MMAP_THRESHOLD, &ok);
	h->mp_trim_threshold = gh_u64(x, mp + GH_MP_TRIM_THRESHOLD, &ok);
	h->mp_arena_max = gh_u64(x, mp + GH_MP_ARENA_MAX, &ok);
	h->mp_tcache_bins = gh_u64(x, mp + GH_MP_TCACHE_BINS, &ok);
	h->mp_tcache_count = gh_u64(x, mp + GH_MP_TCACHE_COUNT, &ok);
	uint64_t hp = gh_u64(x, mp + GH_MP_HP_PAGESIZE, &ok);
	x->heap_max = hp && pow2_or_0(hp) && hp <= (1ull << 32) ? 4 * hp : GH_HEAP_MAX_DEFAULT;
	x->sbrk_base = gh_u64(x, mp + GH_MP_SBRK_BASE, &ok);
	if (!x->version_exact && (h->mp_tcache_bins > GH_TC_BINS || !plausible_mp(x, mp, 0, 0))) {
		gh_heap_note(x, "mp_ at %#llx does not have the 2.35-2.41 layout", (unsigned long long)mp);
		return 1;
	}
	return 0;
}

/* ---- tcache and thread_arena TLS slots ---- */

/* a tcache_perthread_struct user pointer: aligned, 0x290 chunk, not mmapped */
static int weak_tcache(gh_ctx *x, uint64_t v)
{
	int ok = 1;
	if (v & 15)
		return 0;
	uint64_t hdr = gh_u64(x, v - 8, &ok);
	return ok && (hdr & ~(uint64_t)GH_SIZE_BITS) == GH_TC_STRUCT_CHUNK && !(hdr & GH_IS_MMAPPED) &&
	       img_ptr(x->im, v, GH_TC_STRUCT_SIZE);
}

static int is_arena(const gh_ctx *x, uint64_t v)
{
	for (size_t i = 0; i < x->n_arenas; i++)
		if (x->arenas[i] == v)
			return 1;
	return 0;
}

/* 1 if every thread's word at fs_base - off is 0 or an arena and one is nonzero */
static int ta_slot_ok(gh_ctx *x, long off)
{
	int nonzero = 0;
	for (size_t t = 0; t < x->c->n_threads; t++) {
		uint64_t fs = x->c->threads[t].fs_base;
		int ok = 1;
		if (!fs)
			continue;
		uint64_t v = gh_u64(x, fs - (uint64_t)off, &ok);
		if (!ok || (v && !is_arena(x, v)))
			return 0;
		nonzero += v != 0;
	}
	return nonzero > 0;
}

int gh_find_tcaches(gh_ctx *x)
{
	hs_capture *c = x->c;
	long best = 0;
	int best_good = 0;
	/* each thread's copied bytes just below fs_base, read in place */
	size_t nt = c->n_threads;
	const unsigned char **below = calloc(nt ? nt : 1, sizeof *below);
	uint64_t *win = calloc(nt ? nt : 1, sizeof *win);
	if (!below || !win) {
		free(below);
		free(win);
		return -ENOMEM;
	}
	for (size_t t = 0; t < nt; t++) {
		uint64_t fs = c->threads[t].fs_base;
		const img_region *r = fs >= 8 ? img_find(x->im, fs - 8) : NULL;
		if (!fs || !r || !r->copied)
			continue;
		below[t] = r->buf + (fs - r->lo);      /* one past the last byte below fs_base */
		win[t] = fs - r->lo;
	}
	/* candidate offsets: where a few threads hold something that looks like a tcache */
	long cand[MAX_CAND];
	int ncand = 0, donors = 0;
	for (size_t t = 0; t < nt && donors < 4 && ncand < MAX_CAND; t++) {
		if (!c->threads[t].fs_base || !below[t])
			continue;
		int gave = 0;
		for (long off = 8; off <= TLS_SCAN_MAX && (uint64_t)off <= win[t] && ncand < MAX_CAND; off += 8) {
			uint64_t v;
			memcpy(&v, below[t] - off, 8);
			if (!v || (v & 15) || !weak_tcache(x, v))
				continue;
			gave = 1;
			int known = 0;
			for (int k = 0; k < ncand; k++)
				known |= cand[k] == off;
			if (!known)
				cand[ncand++] = off;
		}
		donors += gave;
	}
	/* the slot: the candidate where most threads hold a tcache and none holds garbage;
	 * ties go to the offset nearest fs_base */
	for (int k = 0; k < ncand; k++) {
		long off = cand[k];
		int good = 0, bad = 0;
		for (size_t t = 0; t < nt && !bad; t++) {
			if (!c->threads[t].fs_base)
				continue;
			if ((uint64_t)off > win[t]) {
				bad++;
				break;
			}
			uint64_t v;
			memcpy(&v, below[t] - off, 8);
			if (v)
				weak_tcache(x, v) ? good++ : bad++;
		}
		if (!bad && (good > best_good || (good == best_good && good && off < best))) {
			best_good = good;
			best = off;
		}
	}
	free(below);
	free(win);
	x->tc_off = best;
	c->heap.tcache_tls_offset = best;
	for (size_t t = 0; t < c->n_threads; t++) {
		c->threads[t].tcache = 0;
		c->threads[t].arena = 0;
		uint64_t fs = c->threads[t].fs_base;
		if (best && fs)
			c->threads[t].tcache = gh_u64(x, fs - (uint64_t)best, NULL);
	}
	/* thread_arena: by the symbols' distance from tcache, else near the tcache slot */
	long ta = 0;
	if (best && x->have_tls_syms) {
		long cand = best - x->sym_tls_delta;
		if (cand > 0 && ta_slot_ok(x, cand))
			ta = cand;
	}
	if (!ta && best) {
		if (ta_slot_ok(x, best - 16)) {
			ta = best - 16;
		} else {
			long found = 0;
			int n = 0;
			for (long off = best - TA_SCAN; off <= best + TA_SCAN; off += 8)
				if (off > 0 && off != best && ta_slot_ok(x, off)) {
					n++;
					if (!found)
						found = off;
				}
			if (n == 1)
				ta = found;
		}
	}
	x->ta_off = ta;
	if (ta)
		for (size_t t = 0; t < c->n_threads; t++)
			if (c->threads[t].fs_base)
				c->threads[t].arena = gh_u64(x, c->threads[t].fs_base - (uint64_t)ta, NULL);
	return 0;
}
