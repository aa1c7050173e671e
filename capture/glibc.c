/* glibc.c -- gh_walk(): the glibc malloc heap of a copied target, start to finish.
 *
 *   module + version + symbols (glibc_elf.c)
 *     -> main_arena, the arena ring, mp_, tcache TLS slots (glibc_find.c)
 *     -> free lists into a chunk set (glibc_check.c)
 *     -> chunk walk of every arena heap, mmapped chunks (glibc_walk.c)
 *     -> nodes the walk never met, tcache failures, tiling per arena (here and glibc_check.c)
 *     -> chunks sorted by address
 *
 * Also here: the chunk set (open addressing on chunk addresses) and the notes.
 * Nothing prints; every failure of the target's data is a note, never a crash.
 */
#define _GNU_SOURCE
#include "glibc_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the chunk set ---- */

static size_t slot_of(uint64_t key, size_t cap)
{
	uint64_t h = (key >> 4) * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 17) & (cap - 1);
}

static int set_grow(gh_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 4096;
	gh_ent *t = calloc(cap, sizeof *t);
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->t[i].key)
			continue;
		size_t j = slot_of(s->t[i].key, cap);
		while (t[j].key)
			j = (j + 1) & (cap - 1);
		t[j] = s->t[i];
	}
	free(s->t);
	s->t = t;
	s->cap = cap;
	return 0;
}

int gh_set_put(gh_set *s, uint64_t key, gh_ent **out, int *existed)
{
	if (!key)
		return -EINVAL;
	if ((s->n + 1) * 2 > s->cap && set_grow(s))
		return -ENOMEM;
	size_t j = slot_of(key, s->cap);
	while (s->t[j].key && s->t[j].key != key)
		j = (j + 1) & (s->cap - 1);
	*existed = s->t[j].key == key;
	if (!*existed) {
		memset(&s->t[j], 0, sizeof s->t[j]);
		s->t[j].key = key;
		s->n++;
	}
	*out = &s->t[j];
	return 0;
}

gh_ent *gh_set_get(const gh_set *s, uint64_t key)
{
	if (!s->cap || !key)
		return NULL;
	size_t j = slot_of(key, s->cap);
	while (s->t[j].key) {
		if (s->t[j].key == key)
			return &s->t[j];
		j = (j + 1) & (s->cap - 1);
	}
	return NULL;
}

void gh_set_release(gh_set *s)
{
	free(s->t);
	memset(s, 0, sizeof *s);
}

/* ---- notes ---- */

static void note_append(gh_ctx *x, char **note, const char *fmt, va_list ap)
{
	char buf[512];
	size_t have = *note ? strlen(*note) : 0;
	if (have >= GH_NOTE_MAX)
		return;
	vsnprintf(buf, sizeof buf, fmt, ap);
	const char *sep = have ? "; " : "";
	const char *more = "";
	size_t add = strlen(buf);
	if (have + add > GH_NOTE_MAX) {
		add = 0;
		more = "...";
	}
	char *n = realloc(*note, have + strlen(sep) + add + 4 + 1);
	if (!n) {
		x->oom = 1;
		return;
	}
	snprintf(n + have, strlen(sep) + add + 4 + 1, "%s%.*s%s", sep, (int)add, buf, more);
	*note = n;
}

void gh_arena_fail(gh_ctx *x, int ai, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (ai >= 0 && (size_t)ai < x->c->n_arenas) {
		x->c->arenas[ai].consistent = 0;
		note_append(x, &x->c->arenas[ai].note, fmt, ap);
	} else {
		note_append(x, &x->c->heap.note, fmt, ap);
	}
	va_end(ap);
}

void gh_heap_note(gh_ctx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	note_append(x, &x->c->heap.note, fmt, ap);
	va_end(ap);
}

/* ---- the walk ---- */

static void reset_outputs(hs_capture *c)
{
	for (size_t i = 0; i < c->n_arenas; i++) {
		free(c->arenas[i].heaps);
		free(c->arenas[i].note);
	}
	free(c->arenas);
	c->arenas = NULL;
	c->n_arenas = 0;
	free(c->chunks);
	c->chunks = NULL;
	c->n_chunks = c->cap_chunks = 0;
	free(c->heap.note);
	free(c->heap.glibc_version);
	memset(&c->heap, 0, sizeof c->heap);
	for (size_t t = 0; t < c->n_threads; t++) {
		hs_thread *th = &c->threads[t];
		th->tcache = th->arena = 0;
		memset(th->tcache_count, 0, sizeof th->tcache_count);
		memset(th->tcache_bytes, 0, sizeof th->tcache_bytes);
	}
}

static int chunk_cmp(const void *a, const void *b)
{
	const hs_chunk *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Sort the chunks by address. The walk emits a few ascending runs (the main arena, one
 * per heap, the mmapped chunks): a k-way merge of them is O(n k); many runs (a corrupt
 * heap's fragments) fall back to qsort. */
#define MERGE_MAX_RUNS 64

static int sort_chunks(hs_capture *c)
{
	size_t n = c->n_chunks, nruns = 0;
	size_t pos[MERGE_MAX_RUNS], end[MERGE_MAX_RUNS];
	for (size_t i = 0; i < n; i++) {
		if (i && c->chunks[i].addr >= c->chunks[i - 1].addr)
			continue;
		if (nruns == MERGE_MAX_RUNS) {
			qsort(c->chunks, n, sizeof *c->chunks, chunk_cmp);
			return 0;
		}
		if (nruns)
			end[nruns - 1] = i;
		pos[nruns++] = i;
	}
	if (nruns <= 1)
		return 0;
	end[nruns - 1] = n;
	hs_chunk *out = malloc(n * sizeof *out);
	if (!out)
		return -ENOMEM;
	for (size_t o = 0; o < n; o++) {
		size_t best = nruns;
		for (size_t r = 0; r < nruns; r++)
			if (pos[r] < end[r] && (best == nruns || c->chunks[pos[r]].addr < c->chunks[pos[best]].addr))
				best = r;
		out[o] = c->chunks[pos[best]++];
	}
	free(c->chunks);
	c->chunks = out;
	c->cap_chunks = n;
	return 0;
}

/* After sorting: no two chunks overlap, and each arena's chunks add up to its system_mem. */
static void final_checks(gh_ctx *x)
{
	hs_capture *c = x->c;
	for (size_t i = 1; i < c->n_chunks; i++) {
		const hs_chunk *p = &c->chunks[i - 1], *q = &c->chunks[i];
		if (q->addr < p->addr + p->size) {
			int ai = q->arena >= 0 ? q->arena : p->arena;
			gh_arena_fail(x, ai, "chunks %#llx (size %#llx) and %#llx overlap", (unsigned long long)p->addr,
				      (unsigned long long)p->size, (unsigned long long)q->addr);
		}
	}
	uint64_t *sum = calloc(c->n_arenas ? c->n_arenas : 1, sizeof *sum);
	if (!sum) {
		x->oom = 1;
		return;
	}
	for (size_t i = 0; i < c->n_chunks; i++)
		if (c->chunks[i].arena >= 0 && (size_t)c->chunks[i].arena < c->n_arenas)
			sum[c->chunks[i].arena] += c->chunks[i].size;
	for (size_t i = 0; i < c->n_arenas; i++)
		if (sum[i] != c->arenas[i].system_mem && c->arenas[i].consistent)
			gh_arena_fail(x, (int)i, "chunks cover %#llx bytes but system_mem is %#llx",
				      (unsigned long long)sum[i], (unsigned long long)c->arenas[i].system_mem);
	free(sum);
	for (size_t i = 0; i < c->n_arenas; i++)
		if (!c->arenas[i].consistent && c->arenas[i].mutex)
			gh_arena_fail(x, (int)i, "its lock was held (mutex %d): probably caught mid-update",
				      c->arenas[i].mutex);
}

static int run(gh_ctx *x)
{
	hs_capture *c = x->c;
	int rc = gh_elf_setup(x);
	if (x->version[0] && !(c->heap.glibc_version = strdup(x->version)))
		return -ENOMEM;
	if (rc)
		return rc < 0 ? rc : 0;
	if ((rc = gh_find_main_arena(x)))
		return rc < 0 ? rc : 0;
	c->heap.main_arena = x->main_arena;
	int ok = 1;
	if (!gh_u64(x, x->main_arena + GH_MS_TOP, &ok) && ok) {
		/* malloc_init_state never ran: glibc's malloc was never called */
		gh_heap_note(x, "no glibc heap: glibc's malloc was never initialized in this process "
			     "(another allocator?)");
		return 0;
	}
	c->heap.used_debug_symbols = x->have_syms && x->main_arena == x->sym_main_arena;
	if ((rc = gh_collect_arenas(x)))
		return rc;
	rc = gh_find_mp(x);
	if (rc && !x->version_exact) {
		gh_heap_note(x, "no glibc heap walked: the static executable's malloc state does not have "
			     "the 2.35-2.41 layout");
		return 0;
	}
	if (!x->mp) {
		x->heap_max = GH_HEAP_MAX_DEFAULT;
		x->sbrk_base = 0;
	}
	if ((rc = gh_find_tcaches(x)) || (rc = gh_collect_lists(x)) || (rc = gh_walk_arenas(x)))
		return rc;
	gh_post_checks(x);
	if ((rc = gh_scan_mmapped(x)))
		return rc;
	if ((rc = sort_chunks(c)))
		return rc;
	final_checks(x);
	char tc[64] = "no tcache in use";
	if (x->tc_off)
		snprintf(tc, sizeof tc, "tcache at fs_base-%#lx", x->tc_off);
	gh_heap_note(x, "main_arena by %s, mp_ by %s%s%s, %s", x->how_arena, x->mp ? x->how_mp : "(not found)",
		     x->have_syms ? " from " : "", x->have_syms ? x->sym_file : "", tc);
	c->heap.found = 1;
	return x->oom ? -ENOMEM : 0;
}

int gh_walk(img_image *im, hs_capture *c, const gh_options *o)
{
	reset_outputs(c);
	gh_ctx *x = calloc(1, sizeof *x);
	if (!x)
		return -ENOMEM;
	x->im = im;
	x->c = c;
	x->no_debug = o ? o->no_debug : 0;
	x->root = o && o->root ? o->root : "";
	int rc = run(x);
	if (rc < 0) {
		/* out of memory: leave no half-made heap behind */
		char *note = c->heap.note;
		c->heap.note = NULL;
		reset_outputs(c);
		c->heap.note = note;
	}
	gh_set_release(&x->set);
	free(x->tcbad);
	free(x->mod_path);
	free(x);
	return rc;
}

int gh_all_consistent(const hs_capture *c)
{
	for (size_t i = 0; i < c->n_arenas; i++)
		if (!c->arenas[i].consistent)
			return 0;
	return 1;
}
