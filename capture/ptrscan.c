/* ptrscan.c -- builds the pointer graph of a capture from its memory image (see
 * ptrscan.h): the address -> node index, the conservative scan of every in-use chunk,
 * the root scan (registers, live stacks, TLS, module data, other writable mappings),
 * C++ types from vtable pointers, and the optional copy of chunk contents.
 *
 * Stack frames: a stack root gets the frame of its thread's backtrace (unwind.c, stored
 * as the thread's callsite chain) whose part of the stack holds the slot. Frame k
 * occupies [CFA of frame k-1, CFA of frame k), where the CFA is the caller's sp after
 * the return, i.e. just above the word holding the return address into frame k + 1;
 * frame 0 also owns the red zone below sp. The unwinder keeps no sp per frame, so the
 * return-address words are found on the copied stack: going up from sp, the first word
 * equal to frame k+1's pc ends frame k. A stale copy of that return address lower in
 * frame k would end it early (frame k's upper slots then count as frame k+1's); a
 * return address not found (a signal frame's interrupted pc is found in its ucontext)
 * leaves the frames from there on unknown (-1), as does an unwind that stopped early
 * for the slots above its last frame.
 *
 * Lookup: the nodes are split into segments (runs of chunks with gaps under 16 MiB);
 * each segment has a page table giving, for every 4 KiB page, the first node whose user
 * region ends after the page start. A word is then found with one range check, a
 * binary search over the few segments and a binary search over the handful of nodes of
 * one page over an interleaved {lo, hi} array: a few cache misses instead of ~24 for a
 * binary search over 10M addresses. The page tables cost 4 bytes per 512 bytes of heap
 * span, the {lo, hi} array 16 bytes per node.
 */
#define _GNU_SOURCE
#include "ptrscan.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "elfsyms.h"

#define PS_PAGE_SHIFT 9              /* 512-byte pages: a handful of chunks each */
#define PS_SEG_GAP (16ull << 20)
#define PS_RED_ZONE 128
#define PS_TCB_BYTES 2304            /* glibc's struct pthread on x86-64, rounded up */
#define PS_MAX_DTV 4096
#define PS_MAX_STATIC_TLS (16ull << 20)
#define PS_MAX_FRAMES 256            /* physical frames of a backtrace (unwind.h's UW_MAX_FRAMES) */
#define PS_MAX_CHAIN 4096            /* callsite rows walked per thread (frames + inlined levels) */
#define PS_THREADS 2                 /* edge scan threads (the machine this targets has 2 cores) */
#define PS_THREAD_MIN_NODES 1024     /* fewer nodes: one thread */

static const char *const root_kind_names[PS_ROOT_KIND_COUNT] = {
	"register", "stack", "global", "tls", "other",
};

const char *ps_root_kind_name(int kind)
{
	return kind >= 0 && kind < PS_ROOT_KIND_COUNT ? root_kind_names[kind] : "?";
}

static uint64_t now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* ------------------------------------------------------------------ the index */

typedef struct {
	uint64_t lo, hi;      /* user regions of its nodes lie in [lo, hi) */
	uint32_t first, end;  /* its nodes [first, end) */
	uint32_t *page;       /* [npages + 1]: first node whose user region ends after the page start */
} ps_seg;

typedef struct {
	uint64_t lo, hi;      /* a node's user region [addr + 16, addr + size) */
} ps_span;

struct ps_index {
	ps_span *span_of;     /* [n] */
	ps_seg *seg;
	size_t n_seg;
	uint64_t lo, span;    /* every user region lies in [lo, lo + span) */
};

static void index_free(struct ps_index *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n_seg; i++)
		free(x->seg[i].page);
	free(x->seg);
	free(x->span_of);
	free(x);
}

static int index_build(ps_graph *g)
{
	struct ps_index *x = calloc(1, sizeof *x);
	if (!x)
		return -ENOMEM;
	g->index = x;
	if (!g->n)
		return 0;
	x->span_of = malloc((size_t)g->n * sizeof *x->span_of);
	if (!x->span_of)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->n; i++) {
		x->span_of[i].lo = g->addr[i] + 16;
		x->span_of[i].hi = g->addr[i] + g->size[i];
	}
	size_t cap = 16;
	x->seg = malloc(cap * sizeof *x->seg);
	if (!x->seg)
		return -ENOMEM;
	uint32_t i = 0;
	while (i < g->n) {
		ps_seg s = { .lo = g->addr[i] + 16, .hi = g->addr[i] + g->size[i], .first = i };
		uint32_t j = i + 1;
		while (j < g->n && g->addr[j] + 16 < s.hi + PS_SEG_GAP) {
			if (g->addr[j] + g->size[j] > s.hi)
				s.hi = g->addr[j] + g->size[j];
			j++;
		}
		s.end = j;
		size_t npages = ((s.hi - s.lo) >> PS_PAGE_SHIFT) + 1;
		s.page = malloc((npages + 1) * sizeof *s.page);
		if (!s.page)
			return -ENOMEM;
		uint32_t k = i;
		for (size_t p = 0; p < npages; p++) {
			uint64_t start = s.lo + ((uint64_t)p << PS_PAGE_SHIFT);
			while (k < j && g->addr[k] + g->size[k] <= start)
				k++;
			s.page[p] = k;
		}
		s.page[npages] = j;
		if (x->n_seg == cap) {
			cap *= 2;
			ps_seg *ns = realloc(x->seg, cap * sizeof *ns);
			if (!ns) {
				free(s.page);
				return -ENOMEM;
			}
			x->seg = ns;
		}
		x->seg[x->n_seg++] = s;
		i = j;
	}
	x->lo = x->seg[0].lo;
	x->span = x->seg[x->n_seg - 1].hi - x->lo;
	return 0;
}

static inline int64_t lookup(const ps_graph *g, const struct ps_index *x, uint64_t v)
{
	if (v - x->lo >= x->span)
		return -1;
	size_t a = 0, b = x->n_seg;
	while (b - a > 1) {
		size_t mid = (a + b) / 2;
		if (x->seg[mid].lo <= v)
			a = mid;
		else
			b = mid;
	}
	const ps_seg *s = &x->seg[a];
	if (v < s->lo || v >= s->hi)
		return -1;
	uint64_t p = (v - s->lo) >> PS_PAGE_SHIFT;
	uint32_t lo = s->page[p], hi = s->page[p + 1];
	if (hi >= s->end)
		hi = s->end - 1;
	/* first node in [lo, hi] whose user region ends after v */
	const ps_span *sp = x->span_of;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (sp[mid].hi <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (sp[lo].lo <= v && v < sp[lo].hi)
		return lo;
	return -1;
}

int64_t ps_find(const ps_graph *g, uint64_t v)
{
	return g->index ? lookup(g, g->index, v) : -1;
}

/* ------------------------------------------------------------------ nodes */

static const hs_chunk *sort_chunks;

static int cmp_idx(const void *a, const void *b)
{
	uint64_t x = sort_chunks[*(const size_t *)a].addr, y = sort_chunks[*(const size_t *)b].addr;
	return x < y ? -1 : x > y;
}

static int collect_nodes(const hs_capture *c, ps_graph *g)
{
	size_t n = 0;
	int sorted = 1;
	for (size_t i = 0; i < c->n_chunks; i++) {
		if (c->chunks[i].state == HS_CH_IN_USE)
			n++;
		if (i && c->chunks[i].addr < c->chunks[i - 1].addr)
			sorted = 0;
	}
	if (n >= PS_INTERIOR)
		return -E2BIG;
	g->n = (uint32_t)n;
	g->addr = malloc((n ? n : 1) * sizeof *g->addr);
	g->size = malloc((n ? n : 1) * sizeof *g->size);
	g->mmapped = malloc(n ? n : 1);
	g->edge_start = calloc(n + 1, sizeof *g->edge_start);
	if (!g->addr || !g->size || !g->mmapped || !g->edge_start)
		return -ENOMEM;
	size_t *order = NULL;
	if (!sorted) {
		order = malloc((c->n_chunks ? c->n_chunks : 1) * sizeof *order);
		if (!order)
			return -ENOMEM;
		for (size_t i = 0; i < c->n_chunks; i++)
			order[i] = i;
		sort_chunks = c->chunks;
		qsort(order, c->n_chunks, sizeof *order, cmp_idx);
	}
	size_t k = 0;
	for (size_t i = 0; i < c->n_chunks; i++) {
		const hs_chunk *ch = &c->chunks[order ? order[i] : i];
		if (ch->state != HS_CH_IN_USE)
			continue;
		g->addr[k] = ch->addr;
		/* a chunk smaller than its header cannot hold a user region (corrupt input) */
		g->size[k] = ch->size < 32 ? 32 : ch->size;
		g->mmapped[k] = ch->mmapped;
		k++;
	}
	free(order);
	/* overlapping chunks (a corrupt walk) would break the index: clip them */
	for (size_t i = 1; i < n; i++)
		if (g->addr[i - 1] + g->size[i - 1] > g->addr[i])
			g->size[i - 1] = g->addr[i] > g->addr[i - 1] + 32 ? g->addr[i] - g->addr[i - 1] : 32;
	return 0;
}

static uint64_t usable_of(const ps_graph *g, uint32_t i)
{
	return g->size[i] - (g->mmapped[i] ? 16 : 8);
}

/* ------------------------------------------------------------------ edges */

typedef struct {
	uint64_t *k;
	size_t n, cap;
} keyvec;

static int kv_push(keyvec *v, uint64_t key)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		uint64_t *k = realloc(v->k, cap * sizeof *k);
		if (!k)
			return -1;
		v->k = k;
		v->cap = cap;
	}
	v->k[v->n++] = key;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void sort_keys(uint64_t *k, size_t n)
{
	if (n > 24) {
		qsort(k, n, sizeof *k, cmp_u64);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		uint64_t v = k[i];
		size_t j = i;
		while (j && k[j - 1] > v) {
			k[j] = k[j - 1];
			j--;
		}
		k[j] = v;
	}
}

/* One thread's share of the edge scan: nodes [from, to), their edges in its own arrays,
 * each node's edge count in g->edge_start[node] (turned into offsets after the join). */
typedef struct {
	const img_image *im;
	ps_graph *g;
	uint32_t from, to;
	uint32_t *dst, *word;
	uint64_t m, cap;
	uint64_t words;
	size_t hint;          /* region of the last lookup */
	int rc;
} edge_part;

static int part_push(edge_part *p, uint32_t dst, uint32_t word)
{
	if (p->m == p->cap) {
		uint64_t cap = p->cap ? p->cap * 2 : 1 << 16;
		if (cap > UINT32_MAX)
			cap = UINT32_MAX;
		if (p->m == cap)
			return -E2BIG;
		uint32_t *d = realloc(p->dst, cap * sizeof *d);
		if (!d)
			return -ENOMEM;
		p->dst = d;
		uint32_t *w = realloc(p->word, cap * sizeof *w);
		if (!w)
			return -ENOMEM;
		p->word = w;
		p->cap = cap;
	}
	p->dst[p->m] = dst;
	p->word[p->m] = word;
	p->m++;
	return 0;
}

/* img_ptr without the image's shared lookup cache, so threads may call it at once */
static const uint64_t *part_ptr(edge_part *p, uint64_t addr, uint64_t len)
{
	const img_image *im = p->im;
	const img_region *r = p->hint < im->n ? &im->r[p->hint] : NULL;
	if (!r || addr < r->lo || addr >= r->hi) {
		size_t lo = 0, hi = im->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (im->r[mid].lo <= addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!lo || addr >= im->r[lo - 1].hi)
			return NULL;
		p->hint = lo - 1;
		r = &im->r[lo - 1];
	}
	if (!r->copied || len > r->hi - addr)
		return NULL;
	return (const uint64_t *)(r->buf + (addr - r->lo));
}

/* key: node << 33 | interior << 32 | word, so that after sorting the first key of each
 * destination is its start pointer if it has one, at its lowest word */
static void *scan_part(void *arg)
{
	edge_part *p = arg;
	ps_graph *g = p->g;
	const struct ps_index *x = g->index;
	keyvec kv = { 0 };
	int rc = 0;
	for (uint32_t i = p->from; i < p->to && !rc; i++) {
		uint64_t m0 = p->m;
		uint64_t user = g->addr[i] + 16, len = usable_of(g, i) & ~7ull;
		if (len > UINT32_MAX * 8ull)
			len = UINT32_MAX * 8ull;
		const uint64_t *w = len ? part_ptr(p, user, len) : NULL;
		if (w) {
			size_t nw = len / 8;
			p->words += nw;
			kv.n = 0;
			for (size_t k = 0; k < nw; k++) {
				uint64_t v = w[k];
				if (v - x->lo >= x->span)
					continue;
				int64_t j = lookup(g, x, v);
				if (j < 0 || (uint32_t)j == i)
					continue;
				uint64_t interior = v != g->addr[j] + 16;
				if (kv_push(&kv, (uint64_t)j << 33 | interior << 32 | k)) {
					rc = -ENOMEM;
					break;
				}
			}
			sort_keys(kv.k, kv.n);
			uint64_t last = UINT64_MAX;
			for (size_t k = 0; k < kv.n && !rc; k++) {
				uint64_t node = kv.k[k] >> 33;
				if (node == last)
					continue;
				last = node;
				uint32_t dst = (uint32_t)node | ((kv.k[k] >> 32) & 1 ? PS_INTERIOR : 0);
				rc = part_push(p, dst, (uint32_t)kv.k[k]);
			}
		}
		g->edge_start[i] = (uint32_t)(p->m - m0);
	}
	free(kv.k);
	p->rc = rc;
	return NULL;
}

/* Over PS_THREADS threads when the heap is big enough to be worth it. */
static int scan_edges(img_image *im, ps_graph *g)
{
	edge_part part[PS_THREADS];
	int nparts = g->n >= PS_THREAD_MIN_NODES ? PS_THREADS : 1;
	memset(part, 0, sizeof part);
	for (int t = 0; t < nparts; t++) {
		part[t].im = im;
		part[t].g = g;
		part[t].from = (uint32_t)((uint64_t)g->n * (uint64_t)t / (uint64_t)nparts);
		part[t].to = (uint32_t)((uint64_t)g->n * (uint64_t)(t + 1) / (uint64_t)nparts);
	}
	pthread_t th[PS_THREADS];
	int started[PS_THREADS] = { 0 };
	for (int t = 1; t < nparts; t++)
		started[t] = !pthread_create(&th[t], NULL, scan_part, &part[t]);
	scan_part(&part[0]);
	for (int t = 1; t < nparts; t++) {
		if (started[t])
			pthread_join(th[t], NULL);
		else
			scan_part(&part[t]);   /* no thread: do its share here */
	}
	int rc = 0;
	uint64_t m = 0;
	for (int t = 0; t < nparts; t++) {
		if (part[t].rc && !rc)
			rc = part[t].rc;
		m += part[t].m;
		g->words_scanned += part[t].words;
	}
	if (!rc && m > UINT32_MAX)
		rc = -E2BIG;
	if (!rc) {
		/* the first part's arrays grow to hold them all */
		g->edge_dst = part[0].dst;
		g->edge_word = part[0].word;
		part[0].dst = part[0].word = NULL;
		if (nparts > 1 || !g->edge_dst) {
			uint32_t *d = realloc(g->edge_dst, (m ? m : 1) * sizeof *d);
			if (d)
				g->edge_dst = d;
			uint32_t *w = d ? realloc(g->edge_word, (m ? m : 1) * sizeof *w) : NULL;
			if (w)
				g->edge_word = w;
			if (!d || !w)
				rc = -ENOMEM;
		}
		uint64_t at = part[0].m;
		for (int t = 1; t < nparts && !rc; t++) {
			memcpy(g->edge_dst + at, part[t].dst, part[t].m * sizeof *g->edge_dst);
			memcpy(g->edge_word + at, part[t].word, part[t].m * sizeof *g->edge_word);
			at += part[t].m;
		}
		g->m = g->cap_m = m;
		/* counts -> offsets */
		uint32_t sum = 0;
		for (uint32_t i = 0; i < g->n; i++) {
			uint32_t k = g->edge_start[i];
			g->edge_start[i] = sum;
			sum += k;
		}
		g->edge_start[g->n] = sum;
	}
	for (int t = 0; t < nparts; t++) {
		free(part[t].dst);
		free(part[t].word);
	}
	return rc;
}

/* ------------------------------------------------------------------ roots */

typedef struct {
	const char *key;
	int32_t idx;
} sym_slot;

typedef struct {
	img_image *im;
	const hs_capture *c;
	ps_graph *g;
	es_table *es;
	/* claimed ranges (live stacks, TLS blocks): scanned once, as what they are */
	struct { uint64_t lo, hi; } *claim;
	size_t n_claim, cap_claim;
	/* symbol name interning: name pointer (stable in the es table) -> syms index */
	sym_slot *sym_tab;
	size_t sym_slots;
	int oom;
} root_ctx;

static int push_root(ps_graph *g, const ps_root *r)
{
	if (g->n_roots == g->cap_roots) {
		size_t cap = g->cap_roots ? g->cap_roots * 2 : 256;
		ps_root *n = realloc(g->roots, cap * sizeof *n);
		if (!n)
			return -1;
		g->roots = n;
		g->cap_roots = cap;
	}
	g->roots[g->n_roots++] = *r;
	return 0;
}

static int32_t intern_sym(root_ctx *x, const char *name)
{
	if (x->sym_slots < 2 * (x->g->n_syms + 1)) {
		size_t slots = x->sym_slots ? x->sym_slots * 2 : 256;
		sym_slot *t = calloc(slots, sizeof *t);
		if (!t)
			return -1;
		sym_slot *old = x->sym_tab;
		size_t old_slots = x->sym_slots;
		x->sym_tab = t;
		x->sym_slots = slots;
		for (size_t i = 0; i < old_slots; i++) {
			const char *k = old[i].key;
			if (!k)
				continue;
			size_t h = ((uintptr_t)k >> 3) * 0x9E3779B97F4A7C15ull % slots;
			while (x->sym_tab[h].key)
				h = (h + 1) % slots;
			x->sym_tab[h] = old[i];
		}
		free(old);
	}
	size_t h = ((uintptr_t)name >> 3) * 0x9E3779B97F4A7C15ull % x->sym_slots;
	while (x->sym_tab[h].key) {
		if (x->sym_tab[h].key == name)
			return x->sym_tab[h].idx;
		h = (h + 1) % x->sym_slots;
	}
	ps_graph *g = x->g;
	if (g->n_syms == g->cap_syms) {
		size_t cap = g->cap_syms ? g->cap_syms * 2 : 64;
		char **n = realloc(g->syms, cap * sizeof *n);
		if (!n)
			return -1;
		g->syms = n;
		g->cap_syms = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -1;
	g->syms[g->n_syms] = copy;
	x->sym_tab[h].key = name;
	x->sym_tab[h].idx = (int32_t)g->n_syms;
	return (int32_t)g->n_syms++;
}

/* Scan the copied words of [lo, hi) as roots like tmpl; global roots get their symbol,
 * others their offset from base. */
static void scan_words(root_ctx *x, uint64_t lo, uint64_t hi, const ps_root *tmpl, uint64_t base)
{
	ps_graph *g = x->g;
	lo = (lo + 7) & ~7ull;
	while (lo + 8 <= hi && !x->oom) {
		const img_region *r = img_find(x->im, lo);
		if (r && !r->copied) {
			lo = r->hi;
			continue;
		}
		if (!r) {
			/* skip to the first region above lo */
			uint64_t next = hi;
			for (size_t i = 0; i < x->im->n; i++)
				if (x->im->r[i].lo > lo && x->im->r[i].lo < next)
					next = x->im->r[i].lo;
			lo = (next + 7) & ~7ull;
			continue;
		}
		uint64_t end = r->hi < hi ? r->hi : hi;
		const uint64_t *w = (const uint64_t *)(r->buf + (lo - r->lo));
		size_t nw = (end - lo) / 8;
		for (size_t k = 0; k < nw; k++) {
			uint64_t v = w[k];
			if (v - g->index->lo >= g->index->span)
				continue;
			int64_t j = lookup(g, g->index, v);
			if (j < 0)
				continue;
			ps_root rt = *tmpl;
			rt.slot = lo + 8 * k;
			rt.dst = (uint32_t)j | (v != g->addr[j] + 16 ? PS_INTERIOR : 0);
			rt.offset = (int64_t)(rt.slot - base);
			if (rt.kind == PS_ROOT_GLOBAL) {
				es_symbol s;
				if (x->es && es_lookup(x->es, rt.slot, &s)) {
					rt.symbol = intern_sym(x, s.name);
					if (rt.symbol < 0)
						x->oom = 1;
					rt.offset = (int64_t)(rt.slot - s.start);
				}
			}
			if (push_root(g, &rt))
				x->oom = 1;
		}
		lo += nw * 8;
		if (nw == 0)
			break;
	}
}

static int claim(root_ctx *x, uint64_t lo, uint64_t hi)
{
	if (x->n_claim == x->cap_claim) {
		size_t cap = x->cap_claim ? x->cap_claim * 2 : 16;
		void *n = realloc(x->claim, cap * sizeof *x->claim);
		if (!n)
			return -1;
		x->claim = n;
		x->cap_claim = cap;
	}
	x->claim[x->n_claim].lo = lo;
	x->claim[x->n_claim].hi = hi;
	x->n_claim++;
	return 0;
}

/* Scan [lo, hi) minus the claimed ranges. */
static void scan_unclaimed(root_ctx *x, uint64_t lo, uint64_t hi, const ps_root *tmpl, uint64_t base)
{
	while (lo < hi) {
		uint64_t cut_lo = hi, cut_hi = hi;
		for (size_t i = 0; i < x->n_claim; i++)
			if (x->claim[i].hi > lo && x->claim[i].lo < cut_lo) {
				cut_lo = x->claim[i].lo < lo ? lo : x->claim[i].lo;
				cut_hi = x->claim[i].hi;
			}
		if (cut_lo > lo)
			scan_words(x, lo, cut_lo, tmpl, base);
		lo = cut_hi;
	}
}

static int mapping_of(const hs_capture *c, uint64_t a)
{
	for (size_t i = 0; i < c->n_maps; i++)
		if (c->maps[i].start <= a && a < c->maps[i].end)
			return (int)i;
	return -1;
}

/* The static TLS block of a thread starts at the lowest dtv entry below its thread
 * pointer (glibc, x86-64: TCB at fs_base, static TLS right below it); the TCB itself
 * (struct pthread) follows. Returns the low end, fs_base if nothing is found. */
static uint64_t tls_low(img_image *im, uint64_t fs)
{
	int ok = 1;
	uint64_t dtv = img_u64(im, fs + 8, &ok);
	if (!ok || !dtv)
		return fs;
	uint64_t n = img_u64(im, dtv - 16, &ok);
	if (!ok)
		return fs;
	if (n > PS_MAX_DTV)
		n = PS_MAX_DTV;
	uint64_t low = fs;
	for (uint64_t i = 1; i <= n; i++) {
		int ok2 = 1;
		uint64_t v = img_u64(im, dtv + 16 * i, &ok2);
		if (ok2 && v < fs && fs - v <= PS_MAX_STATIC_TLS && v < low)
			low = v;
	}
	return low & ~7ull;
}

/* The DTV of thread th, when it lies outside malloc's memory (the main thread's: ld.so
 * allocates it at startup, before malloc exists, next to the TCB): its entries point at
 * the dynamic TLS blocks of dlopened modules, which are heap chunks, so they are TLS
 * roots. A DTV in the heap is a chunk itself (a node; its entries are edges), reached
 * from the TCB's dtv word. */
static void scan_dtv(root_ctx *x, const hs_thread *th, const ps_root *tmpl)
{
	const hs_capture *c = x->c;
	int ok = 1;
	uint64_t dtv = img_u64(x->im, th->fs_base + 8, &ok);
	if (!ok || dtv < 16 || (dtv & 7))
		return;
	uint64_t n = img_u64(x->im, dtv - 16, &ok);   /* dtv[-1]: its length */
	if (!ok)
		return;
	if (n > PS_MAX_DTV)
		n = PS_MAX_DTV;
	int m = mapping_of(c, dtv);
	if (m < 0 || c->maps[m].kind == HS_MAP_HEAP || c->maps[m].kind == HS_MAP_ARENA_HEAP ||
	    c->maps[m].kind == HS_MAP_MMAP_CHUNK)
		return;
	uint64_t lo = dtv - 16, hi = dtv + 16 * (n + 1);
	if (lo < c->maps[m].start)
		lo = c->maps[m].start;
	if (hi > c->maps[m].end)
		hi = c->maps[m].end;
	ps_root rt = *tmpl;
	rt.mapping = m;
	scan_unclaimed(x, lo, hi, &rt, th->fs_base);
	if (claim(x, lo, hi))
		x->oom = 1;
}

/* The stack roots [first, n_roots) of thread th, found in the stack region r below hi:
 * the physical frame holding each slot (see the top of this file). */
static void tag_frames(root_ctx *x, const hs_thread *th, const img_region *r, uint64_t hi,
		       size_t first)
{
	const hs_capture *c = x->c;
	ps_graph *g = x->g;
	uint64_t pc[PS_MAX_FRAMES];
	int32_t fn[PS_MAX_FRAMES];
	int n = 0;
	/* the chain runs innermost first; a physical frame's inlined levels come before its
	 * real function (inline_depth 0), which closes it */
	int cs = th->callsite;
	for (int steps = 0; cs >= 0 && (size_t)cs < c->n_callsites && n < PS_MAX_FRAMES &&
	     steps < PS_MAX_CHAIN; steps++) {
		const hs_callsite *s = &c->callsites[cs];
		if (s->frame >= 0 && (size_t)s->frame < c->n_frames &&
		    !c->frames[s->frame].inline_depth) {
			pc[n] = c->frames[s->frame].pc;
			fn[n] = s->frame;
			n++;
		}
		cs = s->parent;
	}
	if (!n || first == g->n_roots || !r->copied)
		return;
	/* start[k]: where frame k begins (frame 0: anywhere below, the red zone included);
	 * frame k ends at start[k + 1], the last known one at end (0: unknown) */
	uint64_t start[PS_MAX_FRAMES];
	int known = 1;
	start[0] = 0;
	uint64_t at = (th->sp + 7) & ~7ull;
	if (at < r->lo)
		at = r->lo;
	const uint64_t *w = (const uint64_t *)r->buf;
	for (int k = 1; k < n; k++) {
		while (at + 8 <= hi && w[(at - r->lo) / 8] != pc[k])
			at += 8;
		if (at + 8 > hi)
			break;
		at += 8;   /* frame k - 1's CFA: just above the return address into frame k */
		start[known++] = at;
	}
	/* a complete unwind ends at the outermost frame, which owns the rest of the stack */
	uint64_t end = known == n && !th->unwind_error ? hi : 0;
	for (size_t i = first; i < g->n_roots; i++) {
		ps_root *rt = &g->roots[i];
		int k = known - 1;
		while (k > 0 && rt->slot < start[k])
			k--;
		if (k + 1 < known || rt->slot < end) {
			rt->frame_no = k;
			rt->frame = fn[k];
		}
	}
}

static void scan_threads(root_ctx *x)
{
	const hs_capture *c = x->c;
	ps_graph *g = x->g;
	for (size_t t = 0; t < c->n_threads && !x->oom; t++) {
		const hs_thread *th = &c->threads[t];
		if (!th->regs_valid)
			continue;
		/* registers */
		for (int r = 0; r < HS_NREGS; r++) {
			uint64_t v = th->regs[r];
			int64_t j = lookup(g, g->index, v);
			if (j < 0)
				continue;
			ps_root rt = { .dst = (uint32_t)j | (v != g->addr[j] + 16 ? PS_INTERIOR : 0),
				       .tid = th->tid, .mapping = -1, .module = -1, .symbol = -1,
				       .frame_no = -1, .frame = -1, .reg = (int16_t)r,
				       .kind = PS_ROOT_REGISTER };
			if (push_root(g, &rt))
				x->oom = 1;
		}
		/* TLS: static blocks and the TCB */
		uint64_t tls_lo = 0, tls_hi = 0;
		if (th->fs_base) {
			tls_lo = tls_low(x->im, th->fs_base);
			tls_hi = th->fs_base + PS_TCB_BYTES;
			const img_region *r = img_find(x->im, th->fs_base);
			if (r && r->hi < tls_hi)
				tls_hi = r->hi;
			if (r && r->lo > tls_lo)
				tls_lo = r->lo;
			ps_root rt = { .tid = th->tid, .mapping = mapping_of(c, th->fs_base), .module = -1,
				       .symbol = -1, .frame_no = -1, .frame = -1, .reg = -1,
				       .kind = PS_ROOT_TLS };
			scan_words(x, tls_lo, tls_hi, &rt, th->fs_base);
			if (claim(x, tls_lo, tls_hi))
				x->oom = 1;
			scan_dtv(x, th, &rt);
		}
		/* the live stack: from sp minus the red zone to the top of the copied stack
		 * (or to the TLS block when the thread's TLS sits above its stack) */
		uint64_t sp = th->sp;
		const img_region *r = img_find(x->im, sp);
		if (!r)
			continue;
		uint64_t lo = sp - PS_RED_ZONE < r->lo || sp < PS_RED_ZONE ? r->lo : sp - PS_RED_ZONE;
		uint64_t hi = r->hi;
		if (tls_lo > sp && tls_lo < hi)
			hi = tls_lo;
		ps_root rt = { .tid = th->tid, .mapping = mapping_of(c, sp), .module = -1,
			       .symbol = -1, .frame_no = -1, .frame = -1, .reg = -1,
			       .kind = PS_ROOT_STACK };
		size_t first = g->n_roots;
		scan_words(x, lo, hi, &rt, sp);
		if (!x->oom)
			tag_frames(x, th, r, hi, first);
		if (claim(x, lo, hi))
			x->oom = 1;
		/* the rest of the stack mapping above the TLS (glibc puts nothing there but
		 * guard and alignment) is left to the generic pass, so nothing is scanned twice */
	}
}

static void scan_mappings(root_ctx *x)
{
	const hs_capture *c = x->c;
	for (size_t i = 0; i < c->n_maps && !x->oom; i++) {
		const hs_mapping *m = &c->maps[i];
		if (m->perms[1] != 'w')
			continue;
		ps_root rt = { .mapping = (int32_t)i, .module = -1, .symbol = -1, .frame_no = -1,
			       .frame = -1, .reg = -1 };
		uint64_t base = m->start;
		switch (m->kind) {
		case HS_MAP_MODULE_DATA:
		case HS_MAP_MODULE_BSS:
			rt.kind = PS_ROOT_GLOBAL;
			rt.module = m->module_idx;
			if (m->module_idx >= 0 && (size_t)m->module_idx < c->n_modules)
				base = c->modules[m->module_idx].load_base;
			break;
		case HS_MAP_ANON:
		case HS_MAP_SHM:
		case HS_MAP_FILE:
		case HS_MAP_STACK:   /* the parts no thread claimed */
			rt.kind = PS_ROOT_OTHER;
			break;
		default:             /* malloc's own (heap, arena heaps, mmapped chunks), code, vdso */
			continue;
		}
		scan_unclaimed(x, m->start, m->end, &rt, base);
	}
}

static int scan_roots(img_image *im, const hs_capture *c, ps_graph *g, es_table *es)
{
	root_ctx x = { .im = im, .c = c, .g = g, .es = es };
	scan_threads(&x);
	scan_mappings(&x);
	free(x.claim);
	free(x.sym_tab);
	return x.oom ? -ENOMEM : 0;
}

/* ------------------------------------------------------------------ types */

static int scan_types(img_image *im, ps_graph *g, es_table *es)
{
	/* vtable symbol start -> type index, open addressing */
	size_t slots = 1024, used = 0;
	struct tslot { uint64_t key; int32_t idx; } *tab = calloc(slots, sizeof *tab);
	if (!tab)
		return -ENOMEM;
	int rc = 0;
	for (uint32_t i = 0; i < g->n && !rc; i++) {
		int ok = 1;
		uint64_t v = img_u64(im, g->addr[i] + 16, &ok);
		es_symbol s;
		if (!ok || !es_vtable(es, v, &s))
			continue;
		size_t h = (s.start >> 3) * 0x9E3779B97F4A7C15ull % slots;
		while (tab[h].key && tab[h].key != s.start)
			h = (h + 1) % slots;
		int32_t t;
		if (tab[h].key) {
			t = tab[h].idx;
		} else {
			if (g->n_types == g->cap_types) {
				size_t cap = g->cap_types ? g->cap_types * 2 : 64;
				ps_type *n = realloc(g->types, cap * sizeof *n);
				if (!n) {
					rc = -ENOMEM;
					break;
				}
				g->types = n;
				g->cap_types = cap;
			}
			ps_type *ty = &g->types[g->n_types];
			memset(ty, 0, sizeof *ty);
			ty->name = es_class_name(s.name);
			ty->symbol = strdup(s.name);
			ty->module = s.module;
			ty->vtable = s.start;
			if (!ty->name || !ty->symbol) {
				free(ty->name);
				free(ty->symbol);
				rc = -ENOMEM;
				break;
			}
			t = (int32_t)g->n_types++;
			tab[h].key = s.start;
			tab[h].idx = t;
			if (++used * 2 > slots) {
				size_t ns = slots * 2;
				struct tslot *nt = calloc(ns, sizeof *nt);
				if (!nt) {
					rc = -ENOMEM;
					break;
				}
				for (size_t k = 0; k < slots; k++)
					if (tab[k].key) {
						size_t q = (tab[k].key >> 3) * 0x9E3779B97F4A7C15ull % ns;
						while (nt[q].key)
							q = (q + 1) % ns;
						nt[q] = tab[k];
					}
				free(tab);
				tab = nt;
				slots = ns;
			}
		}
		if (!g->node_type) {
			g->node_type = calloc(g->n, sizeof *g->node_type);
			if (!g->node_type) {
				rc = -ENOMEM;
				break;
			}
		}
		g->node_type[i] = (uint32_t)t + 1;
		g->types[t].chunks++;
	}
	free(tab);
	return rc;
}

/* ------------------------------------------------------------------ contents */

static int copy_contents(img_image *im, ps_graph *g)
{
	g->content_off = malloc(((size_t)g->n + 1) * sizeof *g->content_off);
	if (!g->content_off)
		return -ENOMEM;
	uint64_t total = 0;
	for (uint32_t i = 0; i < g->n; i++) {
		g->content_off[i] = total;
		total += usable_of(g, i);
	}
	g->content_off[g->n] = total;
	g->content = malloc(total ? total : 1);
	if (!g->content)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->n; i++)
		img_read(im, g->addr[i] + 16, g->content + g->content_off[i], usable_of(g, i));
	g->contents = 1;
	return 0;
}

/* ------------------------------------------------------------------ the whole scan */

int ps_scan(img_image *im, const hs_capture *c, const ps_options *o, ps_graph **out)
{
	*out = NULL;
	ps_graph *g = calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	img_finish(im);
	uint64_t t0 = now_us();
	int rc = collect_nodes(c, g);
	if (!rc)
		rc = index_build(g);
	uint64_t t1 = now_us();
	g->index_us = t1 - t0;
	if (!rc)
		rc = scan_edges(im, g);
	uint64_t t2 = now_us();
	g->edges_us = t2 - t1;
	es_table *es = NULL;
	if (!rc && g->n) {
		es = es_open(c, o->root);
		if (!es)
			rc = -ENOMEM;
	}
	if (!rc && g->n)
		rc = scan_roots(im, c, g, es);
	uint64_t t3 = now_us();
	g->roots_us = t3 - t2;
	if (!rc && g->n && !o->no_types)
		rc = scan_types(im, g, es);
	es_close(es);
	uint64_t t4 = now_us();
	g->types_us = t4 - t3;
	if (!rc && o->contents)
		rc = copy_contents(im, g);
	g->contents_us = now_us() - t4;
	if (rc) {
		ps_free(g);
		return rc == -E2BIG ? -E2BIG : -ENOMEM;
	}
	*out = g;
	return 0;
}

void ps_free(ps_graph *g)
{
	if (!g)
		return;
	free(g->addr);
	free(g->size);
	free(g->mmapped);
	free(g->edge_start);
	free(g->edge_dst);
	free(g->edge_word);
	free(g->roots);
	for (size_t i = 0; i < g->n_syms; i++)
		free(g->syms[i]);
	free(g->syms);
	for (size_t i = 0; i < g->n_types; i++) {
		free(g->types[i].name);
		free(g->types[i].symbol);
	}
	free(g->types);
	free(g->node_type);
	free(g->content);
	free(g->content_off);
	index_free(g->index);
	free(g);
}
