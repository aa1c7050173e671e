/* test_glibc_synth.c -- the heap walk on synthetic glibc heaps: main_arena, mp_, a
 * tcache, a non-main arena with two heaps (and a fencepost) and an mmapped chunk, built
 * in buffers at fake target addresses and handed to gh_walk() as an image. A fake
 * libc.so.6 under a temporary root carries the version banner.
 *
 *   - the correct heap is walked exactly (every chunk, state, size; mallinfo figures),
 *     with H1 ([heap] top) and with H2 (bin headers, no [heap] mapping);
 *   - corrupt variants (size 0, a huge size, bin cycles, a broken bin link, a fastbin
 *     cycle, a tcache count mismatch, a bad heap_info, a truncated image) end with
 *     consistent == 0 and a note, never a crash or a hang;
 *   - random corruption of the whole image, many times over (run under ASan in the
 *     sanitizer build): gh_walk returns 0 every time;
 *   - no libc, an unsupported glibc version: found == 0 with a note.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "glibc.h"
#include "glibc_layout.h"

/* ---- fake address space ---- */

#define LIBC_BASE 0x7effffe2d000ull     /* r--p, offset 0 (not in the image) */
#define LIBC_RW 0x7f0000000000ull       /* rw-p of libc.so.6, 0x4000 bytes */
#define MAIN_ARENA (LIBC_RW + 0xc60)
#define MP (LIBC_RW + 0x340)
#define HEAP 0x555555560000ull          /* [heap], 0x21000 bytes */
#define HEAP_SIZE 0x21000ull
#define TLS1 0x7f0000100000ull          /* thread 1's TLS page */
#define FS1 (TLS1 + 0x740)
#define TLS2 0x7f0000300000ull
#define FS2 (TLS2 + 0x740)
#define MM 0x7f0000200000ull            /* an mmapped chunk of 0x2000 */
#define MM2 0x7f0000400000ull           /* memaligned (4096) mmapped, first header gone: 0x3000 */
#define MM3 0x7f0000500000ull           /* memaligned (64) mmapped, stale first header: 0x3000 */
#define H1 0x7f1000000000ull            /* oldest heap of arena 2 (holds the arena), 0x4000 */
#define NA (H1 + 0x30)
#define H2 0x7f1004000000ull            /* newest heap, 0x2000, holds top */
#define KEY 0x1122334455667788ull

/* chunks of the main heap */
#define C_TCS (HEAP + 0x000)            /* tcache struct 0x290 */
#define C_A (HEAP + 0x290)              /* in use 0x30 */
#define C_T1 (HEAP + 0x2c0)             /* tcache 0x20 */
#define C_B (HEAP + 0x2e0)              /* in use 0x40 */
#define C_F1 (HEAP + 0x320)             /* fastbin 0x20 */
#define C_S (HEAP + 0x340)              /* small bin 17, 0x110 */
#define C_C (HEAP + 0x450)              /* in use 0x30 */
#define C_U (HEAP + 0x480)              /* unsorted 0x500 */
#define C_D (HEAP + 0x980)              /* in use 0x30 */
#define C_TOP (HEAP + 0x9b0)            /* top */
/* arena 2 */
#define C_X1 (H1 + 0x8d0)               /* in use 0x1000 */
#define C_X2 (H1 + 0x18d0)              /* unsorted 0x2710 */
#define C_FP (H1 + 0x3fe0)              /* fencepost */
#define C_Y1 (H2 + 0x30)                /* in use 0x40 */
#define C_TOP2 (H2 + 0x70)              /* top 0x1f90 */

typedef struct {
	uint64_t lo;
	size_t n;
	unsigned char *b;
	size_t keep;        /* bytes to put in the image (truncation) */
	size_t hole_lo, hole_hi; /* offsets of a hole in the copy, if hole_hi > 0 */
} seg;

enum { S_LIBC, S_HEAP, S_TLS1, S_TLS2, S_MM, S_H1, S_H2, S_MM2, S_MM3, NSEG };

typedef struct {
	seg s[NSEG];
	int hide_heap;      /* [heap] mapping without its name: H2 must find main_arena */
} world;

static char root[PATH_MAX];

static unsigned char *at(world *w, uint64_t a, size_t n)
{
	for (int i = 0; i < NSEG; i++)
		if (a >= w->s[i].lo && a + n <= w->s[i].lo + w->s[i].n)
			return w->s[i].b + (a - w->s[i].lo);
	fprintf(stderr, "synthetic address %#" PRIx64 " outside the world\n", a);
	exit(1);
}

static void w64(world *w, uint64_t a, uint64_t v)
{
	memcpy(at(w, a, 8), &v, 8);
}
static void w32(world *w, uint64_t a, uint32_t v)
{
	memcpy(at(w, a, 4), &v, 4);
}
static void w16(world *w, uint64_t a, uint16_t v)
{
	memcpy(at(w, a, 2), &v, 2);
}
static uint64_t r64(world *w, uint64_t a)
{
	uint64_t v;
	memcpy(&v, at(w, a, 8), 8);
	return v;
}

static void hdr(world *w, uint64_t chunk, uint64_t prev_size, uint64_t size)
{
	w64(w, chunk, prev_size);
	w64(w, chunk + 8, size);
}

static void empty_bins(world *w, uint64_t m)
{
	for (int i = 1; i < GH_NBINS; i++) {
		uint64_t b = gh_bin_at(m, i);
		w64(w, b + 16, b);
		w64(w, b + 24, b);
	}
}

static void build(world *w)
{
	memset(w, 0, sizeof *w);
	static const struct { uint64_t lo; size_t n; } layout[NSEG] = {
		{ LIBC_RW, 0x4000 }, { HEAP, HEAP_SIZE }, { TLS1, 0x1000 }, { TLS2, 0x1000 },
		{ MM, 0x2000 }, { H1, 0x4000 }, { H2, 0x2000 }, { MM2, 0x3000 }, { MM3, 0x3000 },
	};
	for (int i = 0; i < NSEG; i++) {
		w->s[i].lo = layout[i].lo;
		w->s[i].n = w->s[i].keep = layout[i].n;
		w->s[i].b = calloc(1, layout[i].n);
		CHECK(w->s[i].b);
	}
	/* main_arena */
	uint64_t m = MAIN_ARENA;
	empty_bins(w, m);
	w32(w, m + GH_MS_HAVE_FAST, 1);
	w64(w, m + GH_MS_FASTBINS, C_F1);
	w64(w, m + GH_MS_TOP, C_TOP);
	w64(w, m + GH_MS_NEXT, NA);
	w64(w, m + GH_MS_ATTACHED, 1);
	w64(w, m + GH_MS_SYSMEM, HEAP_SIZE);
	w64(w, m + GH_MS_MAX_SYSMEM, HEAP_SIZE);
	uint64_t b1 = gh_bin_at(m, 1), b17 = gh_bin_at(m, 17);
	w64(w, b1 + 16, C_U);
	w64(w, b1 + 24, C_U);
	w64(w, b17 + 16, C_S);
	w64(w, b17 + 24, C_S);
	w32(w, m + GH_MS_BINMAP, 1u << 17);
	/* mp_ */
	w64(w, MP + GH_MP_TRIM_THRESHOLD, 0x20000);
	w64(w, MP + GH_MP_TOP_PAD, 0x20000);
	w64(w, MP + GH_MP_MMAP_THRESHOLD, 0x20000);
	w64(w, MP + GH_MP_ARENA_TEST, 8);
	w32(w, MP + GH_MP_N_MMAPS, 3);
	w32(w, MP + GH_MP_N_MMAPS_MAX, 65536);
	w32(w, MP + GH_MP_MAX_N_MMAPS, 3);
	w64(w, MP + GH_MP_MMAPPED_MEM, 0x8000);
	w64(w, MP + GH_MP_MAX_MMAPPED_MEM, 0x8000);
	w64(w, MP + GH_MP_SBRK_BASE, HEAP);
	w64(w, MP + GH_MP_TCACHE_BINS, 64);
	w64(w, MP + GH_MP_TCACHE_MAX_BYTES, 1032);
	w64(w, MP + GH_MP_TCACHE_COUNT, 7);
	/* the main heap */
	hdr(w, C_TCS, 0, 0x291);
	w16(w, C_TCS + 16 + GH_TC_COUNTS, 1);
	w64(w, C_TCS + 16 + GH_TC_ENTRIES, C_T1 + 16);
	hdr(w, C_A, 0, 0x31);
	hdr(w, C_T1, 0, 0x21);
	w64(w, C_T1 + 16, (C_T1 + 16) >> 12);  /* PROTECT_PTR(pos, NULL) */
	w64(w, C_T1 + 24, KEY);
	hdr(w, C_B, 0, 0x41);
	hdr(w, C_F1, 0, 0x21);
	w64(w, C_F1 + 16, (C_F1 + 16) >> 12);
	hdr(w, C_S, 0, 0x111);
	w64(w, C_S + 16, b17);
	w64(w, C_S + 24, b17);
	hdr(w, C_C, 0x110, 0x30);
	hdr(w, C_U, 0, 0x501);
	w64(w, C_U + 16, b1);
	w64(w, C_U + 24, b1);
	hdr(w, C_D, 0x500, 0x30);
	hdr(w, C_TOP, 0, (HEAP + HEAP_SIZE - C_TOP) | 1);
	/* threads: 1 has the tcache and the main arena, 2 only arena 2 */
	w64(w, FS1 - 0x48, C_TCS + 16);
	w64(w, FS1 - 0x38, MAIN_ARENA);
	w64(w, FS2 - 0x38, NA);
	/* mmapped chunks: a plain one and two memaligned ones */
	hdr(w, MM, 0, 0x2002);
	hdr(w, MM2 + 0xff0, 0xff0, (0x3000 - 0xff0) | 2);
	hdr(w, MM3, 0, 0x3002);
	hdr(w, MM3 + 0x30, 0x30, (0x3000 - 0x30) | 2);
	/* arena 2: heap H1 holds the arena and ends with a fencepost; H2 holds top */
	w64(w, H1 + GH_HI_AR_PTR, NA);
	w64(w, H1 + GH_HI_PREV, 0);
	w64(w, H1 + GH_HI_HSIZE, 0x4000);
	w64(w, H1 + GH_HI_MPROTECT, 0x4000);
	w64(w, H1 + 32, 4096);
	empty_bins(w, NA);
	w32(w, NA + GH_MS_FLAGS, GH_NONCONTIGUOUS);
	w64(w, NA + GH_MS_TOP, C_TOP2);
	w64(w, NA + GH_MS_NEXT, MAIN_ARENA);
	w64(w, NA + GH_MS_ATTACHED, 1);
	w64(w, NA + GH_MS_SYSMEM, 0x6000);
	w64(w, NA + GH_MS_MAX_SYSMEM, 0x6000);
	uint64_t nb1 = gh_bin_at(NA, 1);
	w64(w, nb1 + 16, C_X2);
	w64(w, nb1 + 24, C_X2);
	hdr(w, C_X1, 0, 0x1005);
	hdr(w, C_X2, 0, 0x2711);
	w64(w, C_X2 + 16, nb1);
	w64(w, C_X2 + 24, nb1);
	hdr(w, C_FP, 0x2710, 0x10);
	hdr(w, C_FP + 16, 0, 0x1);
	w64(w, H2 + GH_HI_AR_PTR, NA);
	w64(w, H2 + GH_HI_PREV, H1);
	w64(w, H2 + GH_HI_HSIZE, 0x2000);
	w64(w, H2 + GH_HI_MPROTECT, 0x2000);
	w64(w, H2 + 32, 4096);
	hdr(w, C_Y1, 0, 0x45);
	hdr(w, C_TOP2, 0, (H2 + 0x2000 - C_TOP2) | 1);
}

static void release(world *w)
{
	for (int i = 0; i < NSEG; i++)
		free(w->s[i].b);
}

static void add_map(hs_capture *c, uint64_t lo, uint64_t hi, const char *perms, uint64_t off, const char *path)
{
	c->maps = realloc(c->maps, (c->n_maps + 1) * sizeof *c->maps);
	CHECK(c->maps);
	hs_mapping *m = &c->maps[c->n_maps++];
	memset(m, 0, sizeof *m);
	m->start = lo;
	m->end = hi;
	memcpy(m->perms, perms, 4);
	m->offset = off;
	m->path = path ? strdup(path) : NULL;
	m->module_idx = -1;
}

/* the capture a walker sees: maps, two threads, and the image */
static void setup(world *w, hs_capture *c, img_image *im, const char *libc_path)
{
	hs_capture_init(c);
	img_init(im);
	for (int i = 0; i < NSEG; i++) {
		const seg *g = &w->s[i];
		if (g->hole_hi > g->hole_lo && g->hole_hi <= g->keep) {
			if (g->hole_lo)
				CHECK(img_add_bytes(im, g->lo, g->b, g->hole_lo) == 0);
			if (g->keep > g->hole_hi)
				CHECK(img_add_bytes(im, g->lo + g->hole_hi, g->b + g->hole_hi, g->keep - g->hole_hi) == 0);
		} else if (g->keep) {
			CHECK(img_add_bytes(im, g->lo, g->b, g->keep) == 0);
		}
	}
	add_map(c, HEAP, HEAP + HEAP_SIZE, "rw-p", 0, w->hide_heap ? NULL : "[heap]");
	add_map(c, LIBC_BASE, LIBC_BASE + 0x26000, "r--p", 0, libc_path);
	add_map(c, LIBC_RW, LIBC_RW + 0x4000, "rw-p", 0x1d3000, libc_path);
	add_map(c, TLS1, TLS1 + 0x1000, "rw-p", 0, NULL);
	add_map(c, MM, MM + 0x2000, "rw-p", 0, NULL);
	add_map(c, MM2, MM2 + 0x3000, "rw-p", 0, NULL);
	add_map(c, MM3, MM3 + 0x3000, "rw-p", 0, NULL);
	add_map(c, TLS2, TLS2 + 0x1000, "rw-p", 0, NULL);
	add_map(c, H1, H1 + 0x4000, "rw-p", 0, NULL);
	add_map(c, H1 + 0x4000, H1 + 0x4000000, "---p", 0, NULL);
	add_map(c, H2, H2 + 0x2000, "rw-p", 0, NULL);
	add_map(c, H2 + 0x2000, H2 + 0x4000000, "---p", 0, NULL);
	c->proc.pid = 4242;
	c->proc.page_size = 4096;
	c->threads = calloc(2, sizeof *c->threads);
	CHECK(c->threads);
	c->n_threads = 2;
	c->threads[0] = (hs_thread){ .tid = 4242, .fs_base = FS1, .sp = 0x7ffc00000000ull, .callsite = -1 };
	c->threads[1] = (hs_thread){ .tid = 4243, .fs_base = FS2, .sp = 0x7ffd00000000ull, .callsite = -1 };
}

static const char *const libc_path = "/lib/x86_64-linux-gnu/libc.so.6";

static void walk(world *w, hs_capture *c, img_image *im)
{
	setup(w, c, im, libc_path);
	gh_options o = { .no_debug = 1, .root = root };
	CHECK_EQ(gh_walk(im, c, &o), 0);
}

static void done(hs_capture *c, img_image *im)
{
	hs_capture_free(c);
	img_release(im);
}

static const hs_chunk *chunk_at(const hs_capture *c, uint64_t a)
{
	for (size_t i = 0; i < c->n_chunks; i++)
		if (c->chunks[i].addr == a)
			return &c->chunks[i];
	return NULL;
}

static void expect(const hs_capture *c, uint64_t a, uint64_t size, int state, int internal, int arena)
{
	const hs_chunk *k = chunk_at(c, a);
	if (!k)
		fprintf(stderr, "no chunk at %#" PRIx64 "\n", a);
	CHECK(k);
	CHECK_EQ(k->size, size);
	CHECK_EQ(k->state, state);
	CHECK_EQ(k->internal, internal);
	CHECK_EQ(k->arena, arena);
	CHECK_EQ(k->mmapped, arena < 0);
}

static void show(const char *label, const hs_capture *c)
{
	fprintf(stderr, "%s: found=%d arenas=%zu chunks=%zu consistent=%d\n", label, c->heap.found, c->n_arenas,
		c->n_chunks, gh_all_consistent(c));
	if (c->heap.note)
		fprintf(stderr, "  heap note: %s\n", c->heap.note);
	for (size_t i = 0; i < c->n_arenas; i++)
		if (c->arenas[i].note)
			fprintf(stderr, "  arena %zu: %s\n", i, c->arenas[i].note);
}

static void check_good(const hs_capture *c, const char *label)
{
	show(label, c);
	CHECK(c->heap.found);
	CHECK_STR(c->heap.glibc_version, "2.36");
	CHECK_EQ(c->heap.used_debug_symbols, 0);
	CHECK_EQ(c->heap.main_arena, MAIN_ARENA);
	CHECK_EQ(c->heap.mp, MP);
	CHECK_EQ(c->heap.tcache_tls_offset, 0x48);
	CHECK_EQ(c->heap.tcache_key, KEY);
	CHECK_EQ(c->heap.mp_n_mmaps, 3);
	CHECK_EQ(c->heap.mp_mmapped_mem, 0x8000);
	CHECK_EQ(c->n_arenas, 2);
	CHECK(gh_all_consistent(c));
	CHECK(c->arenas[0].is_main && !c->arenas[1].is_main);
	CHECK_EQ(c->arenas[1].n_heaps, 2);
	CHECK_EQ(c->arenas[1].heaps[0].addr, H2);
	CHECK_EQ(c->arenas[1].heaps[1].addr, H1);
	CHECK_EQ(c->n_chunks, 22);
	expect(c, C_TCS, 0x290, HS_CH_INTERNAL, HS_INT_TCACHE_STRUCT, 0);
	expect(c, C_A, 0x30, HS_CH_IN_USE, 0, 0);
	expect(c, C_T1, 0x20, HS_CH_TCACHE, 0, 0);
	expect(c, C_B, 0x40, HS_CH_IN_USE, 0, 0);
	expect(c, C_F1, 0x20, HS_CH_FASTBIN, 0, 0);
	expect(c, C_S, 0x110, HS_CH_FREE_BIN, 0, 0);
	expect(c, C_C, 0x30, HS_CH_IN_USE, 0, 0);
	expect(c, C_U, 0x500, HS_CH_FREE_BIN, 0, 0);
	expect(c, C_D, 0x30, HS_CH_IN_USE, 0, 0);
	expect(c, C_TOP, HEAP + HEAP_SIZE - C_TOP, HS_CH_TOP, 0, 0);
	expect(c, H1, 0x8d0, HS_CH_INTERNAL, HS_INT_HEAP_HEADER, 1);
	expect(c, C_X1, 0x1000, HS_CH_IN_USE, 0, 1);
	expect(c, C_X2, 0x2710, HS_CH_FREE_BIN, 0, 1);
	expect(c, C_FP, 0x20, HS_CH_INTERNAL, HS_INT_FENCEPOST, 1);
	expect(c, H2, 0x30, HS_CH_INTERNAL, HS_INT_HEAP_HEADER, 1);
	expect(c, C_Y1, 0x40, HS_CH_IN_USE, 0, 1);
	expect(c, C_TOP2, 0x1f90, HS_CH_TOP, 0, 1);
	expect(c, MM, 0x2000, HS_CH_IN_USE, 0, -1);
	expect(c, MM2, 0xff0, HS_CH_INTERNAL, HS_INT_MMAP_LEAD, -1);
	expect(c, MM2 + 0xff0, 0x2010, HS_CH_IN_USE, 0, -1);
	expect(c, MM3, 0x30, HS_CH_INTERNAL, HS_INT_MMAP_LEAD, -1);
	expect(c, MM3 + 0x30, 0x2fd0, HS_CH_IN_USE, 0, -1);
	CHECK(!strstr(c->heap.note, "mmapped chunks"));
	for (size_t i = 1; i < c->n_chunks; i++)
		CHECK(c->chunks[i].addr >= c->chunks[i - 1].addr + c->chunks[i - 1].size);
	/* int_mallinfo's figures */
	CHECK_EQ(c->arenas[0].list_bin_count, 2);
	CHECK_EQ(c->arenas[0].list_bin_bytes, 0x610);
	CHECK_EQ(c->arenas[0].list_fast_count, 1);
	CHECK_EQ(c->arenas[0].list_fast_bytes, 0x20);
	CHECK_EQ(c->arenas[0].top_size, HEAP + HEAP_SIZE - C_TOP);
	CHECK_EQ(c->arenas[1].list_bin_count, 1);
	CHECK_EQ(c->arenas[1].list_bin_bytes, 0x2710);
	CHECK_EQ(c->arenas[1].top_size, 0x1f90);
	CHECK_EQ(c->threads[0].tcache, C_TCS + 16);
	CHECK_EQ(c->threads[0].tcache_count[0], 1);
	CHECK_EQ(c->threads[0].tcache_bytes[0], 0x20);
	for (int b = 1; b < HS_TCACHE_BINS; b++)
		CHECK_EQ(c->threads[0].tcache_count[b], 0);
	CHECK_EQ(c->threads[0].arena, MAIN_ARENA);
	CHECK_EQ(c->threads[1].tcache, 0);
	CHECK_EQ(c->threads[1].arena, NA);
}

/* one corruption: the walk must finish, say what is wrong, and still be found */
typedef void (*mutator)(world *w);

static void expect_inconsistent(const char *label, mutator mut, int arena, const char *word)
{
	world w;
	hs_capture c;
	img_image im;
	build(&w);
	mut(&w);
	walk(&w, &c, &im);
	show(label, &c);
	CHECK(c.heap.found);
	CHECK((size_t)arena < c.n_arenas);
	CHECK_EQ(c.arenas[arena].consistent, 0);
	CHECK(c.arenas[arena].note);
	if (word && !strstr(c.arenas[arena].note, word)) {
		fprintf(stderr, "%s: note lacks \"%s\"\n", label, word);
		exit(1);
	}
	CHECK(!gh_all_consistent(&c));
	for (size_t i = 1; i < c.n_chunks; i++)
		CHECK(c.chunks[i].addr >= c.chunks[i - 1].addr);
	done(&c, &im);
	release(&w);
}

static void m_size0(world *w) { w64(w, C_B + 8, 0x1); }
static void m_size_huge(world *w) { w64(w, C_B + 8, 0xfffffffffffffff1ull); }
static void m_bin_self_cycle(world *w)
{
	/* the small bin's node points to itself: never back to the header */
	w64(w, C_S + 16, C_S);
	w64(w, C_S + 24, C_S);
	w64(w, gh_bin_at(MAIN_ARENA, 17) + 16, C_S);
}
static void m_bin_cycle2(world *w)
{
	/* header -> U -> S -> U -> ... in the unsorted bin, consistent fd/bk both ways */
	uint64_t b1 = gh_bin_at(MAIN_ARENA, 1), b17 = gh_bin_at(MAIN_ARENA, 17);
	w64(w, b1 + 24, C_U);
	w64(w, C_U + 16, C_S);
	w64(w, C_U + 24, C_S);
	w64(w, C_S + 16, C_U);
	w64(w, C_S + 24, C_U);
	w64(w, b17 + 16, b17);
	w64(w, b17 + 24, b17);
}
static void m_bin_link(world *w) { w64(w, C_U + 16, C_S); }
static void m_fast_cycle(world *w) { w64(w, C_F1 + 16, ((C_F1 + 16) >> 12) ^ C_F1); }
static void m_fast_size(world *w) { w64(w, C_F1 + 8, 0x31); }
static void m_tc_count(world *w) { w16(w, C_TCS + 16 + GH_TC_COUNTS, 3); }
static void m_tc_cycle(world *w)
{
	w16(w, C_TCS + 16 + GH_TC_COUNTS, 7);
	w64(w, C_T1 + 16, ((C_T1 + 16) >> 12) ^ (C_T1 + 16));
}
static void m_tc_key(world *w)
{
	/* a second cached chunk whose key differs: C_A becomes a tcache entry */
	w16(w, C_TCS + 16 + GH_TC_COUNTS + 2, 1);
	w64(w, C_TCS + 16 + GH_TC_ENTRIES + 8, C_A + 16);
	w64(w, C_A + 16, (C_A + 16) >> 12);
	w64(w, C_A + 24, 0x999);
	w16(w, C_TCS + 16 + GH_TC_COUNTS + 0, 1);
}
static void m_footer(world *w) { w64(w, C_C, 0x100); }
static void m_free_not_binned(world *w)
{
	/* the fastbin chunk's successor says it is free: it is on no bin */
	w64(w, C_S, 0x20);
	w64(w, C_S + 8, 0x110);
}
static void m_heapinfo(world *w) { w64(w, H2 + GH_HI_HSIZE, 0x3000); }
static void m_heap_prev_loop(world *w) { w64(w, H1 + GH_HI_PREV, H2); }
static void m_nonmain_bit(world *w) { w64(w, C_Y1 + 8, 0x41); }
static void m_top(world *w) { w64(w, C_TOP + 8, 0x1001); }
static void m_sysmem(world *w) { w64(w, NA + GH_MS_SYSMEM, 0x5000); }

/* a foreign sbrk in the main arena: two 0x10 fenceposts after D, foreign bytes, then
 * chunks again at a new brk; system_mem counts the foreign bytes too */
static void foreign_sbrk(void)
{
	world w;
	hs_capture c;
	img_image im;
	build(&w);
	uint64_t fp = C_TOP, e = HEAP + 0x2000, top = e + 0x40;
	memset(at(&w, fp, 0x2000 - 0x9b0), 0x5a, 0x2000 - 0x9b0);   /* foreign garbage */
	hdr(&w, fp, 0, 0x11);
	hdr(&w, fp + 16, 0, 0x11);
	hdr(&w, e, 0, 0x41);
	hdr(&w, top, 0, (HEAP + HEAP_SIZE - top) | 1);
	w64(&w, MAIN_ARENA + GH_MS_TOP, top);
	walk(&w, &c, &im);
	show("foreign sbrk", &c);
	CHECK(c.heap.found);
	CHECK(gh_all_consistent(&c));
	expect(&c, fp, e - fp, HS_CH_INTERNAL, HS_INT_FENCEPOST, 0);
	expect(&c, e, 0x40, HS_CH_IN_USE, 0, 0);
	expect(&c, top, HEAP + HEAP_SIZE - top, HS_CH_TOP, 0, 0);
	expect(&c, C_D, 0x30, HS_CH_IN_USE, 0, 0);
	CHECK(strstr(c.heap.note, "foreign sbrk"));
	done(&c, &im);
	release(&w);
}

static void truncated(void)
{
	world w;
	hs_capture c;
	img_image im;
	build(&w);
	w.s[S_HEAP].hole_lo = 0x400;  /* [heap] copied with a hole in the middle */
	w.s[S_HEAP].hole_hi = 0x900;
	w.s[S_H1].keep = 0x1000;      /* and only one page of arena 2's old heap */
	walk(&w, &c, &im);
	show("truncated image", &c);
	CHECK(c.heap.found);
	CHECK_EQ(c.arenas[0].consistent, 0);
	CHECK_EQ(c.arenas[1].consistent, 0);
	/* nothing past the copy is reported */
	for (size_t i = 0; i < c.n_chunks; i++)
		if (c.chunks[i].arena == 0)
			CHECK(c.chunks[i].addr + c.chunks[i].size <= HEAP + 0x400 || c.chunks[i].addr == C_TOP);
	done(&c, &im);
	release(&w);
}

static void arena_missing(void)
{
	world w;
	hs_capture c;
	img_image im;
	build(&w);
	w.s[S_LIBC].keep = 0;         /* libc's data was not copied at all */
	walk(&w, &c, &im);
	show("libc data not copied", &c);
	CHECK_EQ(c.heap.found, 0);
	CHECK(c.heap.note);
	done(&c, &im);
	release(&w);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* random corruption: words overwritten with small numbers, pointers into the world,
 * or garbage, in the heaps, the arenas and the TLS slots */
static void fuzz(int rounds)
{
	static const uint64_t hot[] = { HEAP, MAIN_ARENA, NA, H1, H2, MP, FS1 - 0x80, C_S, C_U, C_TCS, MM2 + 0xfe0, MM3 };
	int found = 0, consistent = 0;
	for (int r = 0; r < rounds; r++) {
		world w;
		hs_capture c;
		img_image im;
		build(&w);
		int n = 1 + (int)(rnd() % 6);
		for (int k = 0; k < n; k++) {
			uint64_t base = hot[rnd() % (sizeof hot / sizeof hot[0])];
			uint64_t span = base == HEAP ? 0xa00 : base == H1 ? 0x4000 : base == H2 ? 0x100 : 0x8a0;
			uint64_t a = (base + rnd() % span) & ~7ull;
			uint64_t v;
			switch (rnd() % 5) {
			case 0: v = rnd() % 0x100; break;
			case 1: v = r64(&w, a) ^ (1ull << (rnd() % 64)); break;
			case 2: v = hot[rnd() % (sizeof hot / sizeof hot[0])] + (rnd() % 0x1000 & ~15ull); break;
			case 3: v = rnd(); break;
			default: v = a; break;
			}
			/* only addresses inside the world */
			int inside = 0;
			for (int i = 0; i < NSEG; i++)
				inside |= a >= w.s[i].lo && a + 8 <= w.s[i].lo + w.s[i].n;
			if (inside)
				w64(&w, a, v);
		}
		if (rnd() % 8 == 0)
			w.s[rnd() % NSEG].keep = (rnd() % 4) * 0x400;
		if (rnd() % 8 == 0) {
			w.s[S_HEAP].hole_lo = (rnd() % 0x20) * 0x80;
			w.s[S_HEAP].hole_hi = w.s[S_HEAP].hole_lo + (1 + rnd() % 0x20) * 0x80;
		}
		w.hide_heap = rnd() % 4 == 0;
		setup(&w, &c, &im, libc_path);
		gh_options o = { .no_debug = 1, .root = root };
		CHECK_EQ(gh_walk(&im, &c, &o), 0);
		found += c.heap.found;
		consistent += c.heap.found && gh_all_consistent(&c);
		for (size_t i = 1; i < c.n_chunks; i++)
			CHECK(c.chunks[i].addr >= c.chunks[i - 1].addr);
		done(&c, &im);
		release(&w);
	}
	fprintf(stderr, "fuzz: %d rounds, heap found in %d, consistent in %d\n", rounds, found, consistent);
}

static void write_file(const char *rel, const char *text)
{
	char p[PATH_MAX + 256];
	snprintf(p, sizeof p, "%s%s", root, rel);
	char dir[PATH_MAX + 256];
	snprintf(dir, sizeof dir, "%s", p);
	for (char *s = dir + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		mkdir(dir, 0755);
		*s = '/';
	}
	FILE *f = fopen(p, "w");
	CHECK(f);
	fputs(text, f);
	fclose(f);
}

static void remove_tree(void)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (root[0] == '/' && strstr(root, "/hs-glibc-synth-"))
		(void)!system(cmd);
}

int main(void)
{
	(void)check_failures;
	alarm(240);   /* a hang is a failure */
	snprintf(root, sizeof root, "/tmp/hs-glibc-synth-XXXXXX");
	CHECK(mkdtemp(root));
	atexit(remove_tree);
	write_file(libc_path, "\177ELF not really; GNU C Library (synthetic) stable release version 2.36.\n");
	write_file("/lib/x86_64-linux-gnu/libc-2.31.so", "GNU C Library (old) stable release version 2.31.\n");
	write_file("/bin/musl-static", "no glibc in here, but myprog stable release version 9.9\n");

	world w;
	hs_capture c;
	img_image im;

	/* the correct heap, H1 */
	build(&w);
	walk(&w, &c, &im);
	check_good(&c, "good heap, H1");
	done(&c, &im);
	/* the same with no [heap] name: H2 */
	w.hide_heap = 1;
	walk(&w, &c, &im);
	check_good(&c, "good heap, H2");
	CHECK(strstr(c.heap.note, "H2"));
	done(&c, &im);
	/* walked twice into the same capture: the second result replaces the first */
	w.hide_heap = 0;
	walk(&w, &c, &im);
	gh_options o = { .no_debug = 1, .root = root };
	CHECK_EQ(gh_walk(&im, &c, &o), 0);
	check_good(&c, "walked twice");
	done(&c, &im);
	release(&w);

	expect_inconsistent("chunk size 0", m_size0, 0, "size");
	expect_inconsistent("huge chunk size", m_size_huge, 0, "size");
	expect_inconsistent("bin self cycle", m_bin_self_cycle, 0, "bin 17");
	expect_inconsistent("bin 2-cycle", m_bin_cycle2, 0, "bin 1:");
	expect_inconsistent("bin fd/bk mismatch", m_bin_link, 0, "bin 1");
	expect_inconsistent("fastbin cycle", m_fast_cycle, 0, "fastbin 0");
	expect_inconsistent("fastbin size", m_fast_size, 0, "fastbin 0");
	expect_inconsistent("tcache count mismatch", m_tc_count, 0, "count 3");
	expect_inconsistent("tcache cycle", m_tc_cycle, 0, "tcache");
	expect_inconsistent("tcache key", m_tc_key, 0, "key");
	expect_inconsistent("bin footer", m_footer, 0, "footer");
	expect_inconsistent("free chunk on no bin", m_free_not_binned, 0, "on no bin");
	expect_inconsistent("heap_info size", m_heapinfo, 1, NULL);
	expect_inconsistent("heap list loop", m_heap_prev_loop, 1, NULL);
	expect_inconsistent("NON_MAIN_ARENA bit", m_nonmain_bit, 1, "NON_MAIN_ARENA");
	expect_inconsistent("top size", m_top, 0, "top");
	expect_inconsistent("system_mem", m_sysmem, 1, "system_mem");
	foreign_sbrk();
	truncated();
	arena_missing();

	/* no glibc: nothing mapped, an old glibc, a static non-glibc executable */
	build(&w);
	setup(&w, &c, &im, "/lib/x86_64-linux-gnu/libc-2.31.so");
	CHECK_EQ(gh_walk(&im, &c, &o), 0);
	show("glibc 2.31", &c);
	CHECK_EQ(c.heap.found, 0);
	CHECK(c.heap.note && strstr(c.heap.note, "2.31"));
	CHECK_STR(c.heap.glibc_version, "2.31");
	done(&c, &im);
	setup(&w, &c, &im, "/bin/unrelated");
	c.proc.exe = strdup("/bin/musl-static");
	add_map(&c, 0x400000, 0x401000, "r--p", 0, "/bin/musl-static");
	CHECK_EQ(gh_walk(&im, &c, &o), 0);
	show("static non-glibc", &c);
	CHECK_EQ(c.heap.found, 0);
	CHECK(c.heap.note);
	CHECK(!c.heap.glibc_version);
	done(&c, &im);
	hs_capture_init(&c);
	img_init(&im);
	CHECK_EQ(gh_walk(&im, &c, &o), 0);
	CHECK_EQ(c.heap.found, 0);
	CHECK(c.heap.note);
	done(&c, &im);
	release(&w);

	fuzz(3000);
	fprintf(stderr, "all synthetic heap tests passed\n");
	return 0;
}
