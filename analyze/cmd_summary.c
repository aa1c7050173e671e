/* cmd_summary.c -- `heapsnap summary FILE [--json]`: the one-screen overview of a
 * snapshot: the process, its memory as top shows it, how the capture went, the address
 * space by kind, the glibc heap per arena, mallinfo, threads, the largest chunks and
 * the commonest chunk sizes.
 *
 * Everything is loaded first (load_*), then rendered as text or JSON from the same
 * structures, so both outputs always say the same. mallinfo is computed here from the
 * chunk table with glibc's formulas; the file's own mallinfo view is not used (a file
 * is untrusted, and its view definition with it).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "output.h"
#include "snapshot.h"

static const char summary_usage[] = "usage: heapsnap summary FILE [--json]\n";

static const char summary_help[] =
	"\n"
	"The overview of a snapshot: the process (pid, executable, command line, kernel,\n"
	"glibc, capture time), its memory as top shows it (VIRT = VmSize, RES = VmRSS,\n"
	"SHR = RssFile + RssShmem), how long it was paused, the address space by kind, the\n"
	"glibc heap per arena (in use, free, tcache, fastbins, top, consistency), mmapped\n"
	"chunks, mallinfo, each thread with its arena, tcache and stack, the 10 largest\n"
	"in-use chunks and the 10 chunk sizes holding the most bytes.\n"
	"\n"
	"  --json       the same as JSON, with stable keys; sizes in bytes unless the key\n"
	"               ends in _kb, times in microseconds where it ends in _us\n"
	"  -h, --help   this help\n"
	"\n"
	"examples:\n"
	"  heapsnap summary s.hsnap\n"
	"  heapsnap summary s.hsnap --json | python3 -m json.tool\n";

#define NONE INT64_MIN  /* a NULL figure */
#define TOP_N 10

/* ---------------------------------------------------------------- loaded data */
typedef struct {
	int64_t count, bytes;
} agg;

enum { ST_IN_USE, ST_FREE, ST_TCACHE, ST_FAST, ST_TOP, ST_INTERNAL, ST_N };

typedef struct {
	int64_t id, addr, system_mem, max_system_mem, attached, top_size;
	int is_main, consistent;
	char *note;
	agg st[ST_N];
	agg other;            /* states this build does not know */
} arena_row;

typedef struct {
	char *kind;
	int64_t count, size_kb, rss_kb, pss_kb, swap_kb;
} kind_row;

typedef struct {
	int64_t tid, arena_id, tcache, tc_count, tc_bytes, stack_kb, stack_rss_kb;
	char *name, *state, *safepoint, *unwind_error;
	int was_stopped;
} thread_row;

typedef struct {
	int64_t addr, size, arena_id;
} chunk_row;

typedef struct {
	int64_t size, count, bytes;
} class_row;

typedef struct {
	/* process */
	int64_t pid, ppid, uid, gid, start_ticks, page_size, time_us;
	char *exe, *cmdline_raw, *comm, *kernel, *glibc;
	char **argv;
	size_t argc;
	int64_t vm_size, vm_rss, rss_anon, rss_file, rss_shmem, vm_swap, vm_peak, vm_hwm, vm_data, vm_stk;
	/* capture */
	char *tool_version, *heap_note;
	int64_t pause_us, freeze_us, safepoint_us, copy_us, copy_bytes, attempts, ran_out, in_flux;
	int64_t debug_symbols, contents;   /* contents: capture --contents (1) or not (0) */
	int heap_found;
	/* malloc_params */
	int64_t main_arena, n_mmaps, mmapped_mem;
	/* tables */
	kind_row *kinds;      size_t n_kinds;
	arena_row *arenas;    size_t n_arenas;
	thread_row *threads;  size_t n_threads;
	chunk_row largest[TOP_N]; size_t n_largest;
	class_row classes[TOP_N]; size_t n_classes;
	agg mm[ST_N], mm_other;  /* mmapped chunks (no arena) by state */
	agg in_use_all;          /* every in-use chunk, for the size-class shares */
	/* mallinfo, from the chunk table */
	int64_t mi_arena, mi_ordblks, mi_smblks, mi_hblks, mi_hblkhd, mi_uordblks, mi_fordblks,
		mi_fsmblks, mi_keepcost;
	int oom;
} summary;

static char *dup_col(summary *S, sqlite3_stmt *st, int col)
{
	const char *t = snap_text(st, col);
	if (!t)
		return NULL;
	char *d = strdup(t);
	if (!d)
		S->oom = 1;
	return d;
}

static int64_t i64_col(sqlite3_stmt *st, int col)
{
	return snap_i64(st, col, NONE);
}

/* grow *arr (of *n elements of size sz) by one zeroed element; NULL on OOM */
static void *push(summary *S, void **arr, size_t *n, size_t sz)
{
	if ((*n & (*n - 1)) == 0) {   /* at 0, 1, 2, 4, 8, ...: double */
		size_t cap = *n ? *n * 2 : 1;
		void *p = realloc(*arr, cap * sz);
		if (!p) {
			S->oom = 1;
			return NULL;
		}
		*arr = p;
	}
	void *e = (char *)*arr + *n * sz;
	memset(e, 0, sz);
	(*n)++;
	return e;
}

/* ---------------------------------------------------------------- loading */
static int load_process(snap *s, summary *S)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st,
			 "SELECT pid, ppid, uid, gid, exe, cmdline, comm, start_ticks, kernel,"
			 " glibc_version, page_size, capture_time_us, vm_size_kb, vm_rss_kb, rss_anon_kb,"
			 " rss_file_kb, rss_shmem_kb, vm_swap_kb, vm_peak_kb, vm_hwm_kb, vm_data_kb,"
			 " vm_stk_kb FROM process LIMIT 1"))
		return -1;
	int r = snap_step(s, st);
	if (r == 1) {
		S->pid = i64_col(st, 0);
		S->ppid = i64_col(st, 1);
		S->uid = i64_col(st, 2);
		S->gid = i64_col(st, 3);
		S->exe = dup_col(S, st, 4);
		S->cmdline_raw = dup_col(S, st, 5);
		S->comm = dup_col(S, st, 6);
		S->start_ticks = i64_col(st, 7);
		S->kernel = dup_col(S, st, 8);
		S->glibc = dup_col(S, st, 9);
		S->page_size = i64_col(st, 10);
		S->time_us = i64_col(st, 11);
		int64_t *kb[] = { &S->vm_size, &S->vm_rss, &S->rss_anon, &S->rss_file, &S->rss_shmem,
				  &S->vm_swap, &S->vm_peak, &S->vm_hwm, &S->vm_data, &S->vm_stk };
		for (int i = 0; i < 10; i++)
			*kb[i] = i64_col(st, 12 + i);
	}
	sqlite3_finalize(st);
	if (r < 0)
		return -1;
	if (r == 0) {
		S->pid = S->ppid = S->uid = S->gid = S->start_ticks = S->page_size = S->time_us = NONE;
		S->vm_size = S->vm_rss = S->rss_anon = S->rss_file = S->rss_shmem = NONE;
		S->vm_swap = S->vm_peak = S->vm_hwm = S->vm_data = S->vm_stk = NONE;
		return 0;
	}

	/* the command line is a JSON array in the file: decode it with SQLite's json_each;
	 * if it is not valid JSON (a hostile or damaged file), show it as one string */
	if (!S->cmdline_raw)
		return 0;
	if (snap_prepare(s, &st, "SELECT value FROM json_each(?1)"))
		return -1;
	sqlite3_bind_text(st, 1, S->cmdline_raw, -1, SQLITE_STATIC);
	int ok = 1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		char **a = push(S, (void **)&S->argv, &S->argc, sizeof *S->argv);
		if (!a)
			break;
		const char *v = (const char *)sqlite3_column_text(st, 0);
		*a = strdup(v ? v : "");
		if (!*a)
			S->oom = 1;
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		ok = 0;
	sqlite3_finalize(st);
	if (!ok) {
		for (size_t i = 0; i < S->argc; i++)
			free(S->argv[i]);
		S->argc = 0;
		char **a = push(S, (void **)&S->argv, &S->argc, sizeof *S->argv);
		if (a && !(*a = strdup(S->cmdline_raw)))
			S->oom = 1;
	}
	return 0;
}

static int load_capture(snap *s, summary *S)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st,
			 "SELECT tool_version, pause_us, freeze_us, safepoint_us, copy_us, copy_bytes,"
			 " attempts, threads_ran_out, threads_in_flux, heap_found, heap_note, debug_symbols,"
			 " contents FROM capture LIMIT 1"))
		return -1;
	int r = snap_step(s, st);
	S->pause_us = S->freeze_us = S->safepoint_us = S->copy_us = S->copy_bytes = NONE;
	S->attempts = S->ran_out = S->in_flux = S->debug_symbols = NONE;
	if (r == 1) {
		S->tool_version = dup_col(S, st, 0);
		S->pause_us = i64_col(st, 1);
		S->freeze_us = i64_col(st, 2);
		S->safepoint_us = i64_col(st, 3);
		S->copy_us = i64_col(st, 4);
		S->copy_bytes = i64_col(st, 5);
		S->attempts = i64_col(st, 6);
		S->ran_out = i64_col(st, 7);
		S->in_flux = i64_col(st, 8);
		S->heap_found = snap_i64(st, 9, 0) != 0;
		S->heap_note = dup_col(S, st, 10);
		S->debug_symbols = i64_col(st, 11);
		S->contents = snap_i64(st, 12, 0);
	}
	sqlite3_finalize(st);
	if (r < 0)
		return -1;

	S->main_arena = S->n_mmaps = S->mmapped_mem = NONE;
	if (snap_prepare(s, &st, "SELECT main_arena, n_mmaps, mmapped_mem FROM malloc_params LIMIT 1"))
		return -1;
	r = snap_step(s, st);
	if (r == 1) {
		S->main_arena = i64_col(st, 0);
		S->n_mmaps = i64_col(st, 1);
		S->mmapped_mem = i64_col(st, 2);
	}
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

static int load_kinds(snap *s, summary *S)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st,
			 "SELECT coalesce(k.name, CAST(m.kind AS TEXT)), count(*), sum(m.size_kb),"
			 " sum(m.rss_kb), sum(m.pss_kb), sum(m.swap_kb)"
			 " FROM mapping m LEFT JOIN mapping_kind k ON k.id = m.kind"
			 " GROUP BY m.kind ORDER BY m.kind"))
		return -1;
	int r;
	while ((r = snap_step(s, st)) == 1) {
		kind_row *k = push(S, (void **)&S->kinds, &S->n_kinds, sizeof *k);
		if (!k)
			break;
		k->kind = dup_col(S, st, 0);
		k->count = i64_col(st, 1);
		k->size_kb = i64_col(st, 2);
		k->rss_kb = i64_col(st, 3);
		k->pss_kb = i64_col(st, 4);
		k->swap_kb = i64_col(st, 5);
	}
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

static arena_row *arena_by_id(summary *S, int64_t id)
{
	/* ids are normally 1..n in order: try that slot first */
	if (id >= 1 && (uint64_t)id <= S->n_arenas && S->arenas[id - 1].id == id)
		return &S->arenas[id - 1];
	for (size_t i = 0; i < S->n_arenas; i++)
		if (S->arenas[i].id == id)
			return &S->arenas[i];
	return NULL;
}

/* in-use chunk sizes -> (count, bytes): open addressing, grown at half full */
typedef struct {
	class_row *slot;      /* size 0 marks an empty slot (chunk sizes are never 0) */
	size_t cap, n;
	int has_zero;         /* a hostile file's size-0 chunks, kept apart */
	class_row zero;
} size_hist;

static int hist_add(size_hist *h, int64_t size)
{
	if (size == 0) {
		h->has_zero = 1;
		h->zero.count++;
		return 0;
	}
	if (2 * (h->n + 1) > h->cap) {
		size_t nc = h->cap ? 2 * h->cap : 1024;
		class_row *ns = calloc(nc, sizeof *ns);
		if (!ns)
			return -1;
		for (size_t i = 0; i < h->cap; i++) {
			if (!h->slot[i].size)
				continue;
			size_t k = ((uint64_t)h->slot[i].size * 0x9e3779b97f4a7c15ull) >> 20 & (nc - 1);
			while (ns[k].size)
				k = (k + 1) & (nc - 1);
			ns[k] = h->slot[i];
		}
		free(h->slot);
		h->slot = ns;
		h->cap = nc;
	}
	size_t k = ((uint64_t)size * 0x9e3779b97f4a7c15ull) >> 20 & (h->cap - 1);
	while (h->slot[k].size && h->slot[k].size != size)
		k = (k + 1) & (h->cap - 1);
	if (!h->slot[k].size) {
		h->slot[k].size = size;
		h->n++;
	}
	h->slot[k].count++;
	h->slot[k].bytes = (int64_t)((uint64_t)h->slot[k].bytes + (uint64_t)size);
	return 0;
}

/* a before b in the size-class list: more bytes first, then the smaller size */
static int class_before(const class_row *a, const class_row *b)
{
	return a->bytes != b->bytes ? a->bytes > b->bytes : a->size < b->size;
}

/* a before b in the largest-chunk list: larger first, then the lower address */
static int chunk_before(const chunk_row *a, const chunk_row *b)
{
	return a->size != b->size ? a->size > b->size : a->addr < b->addr;
}

/* sums of figures from an untrusted file: wrap around instead of overflowing */
static void add_to(agg *g, int64_t bytes)
{
	g->count++;
	g->bytes = (int64_t)((uint64_t)g->bytes + (uint64_t)bytes);
}
#define ADD(x, v) ((x) = (int64_t)((uint64_t)(x) + (uint64_t)(v)))

static int load_heap(snap *s, summary *S)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st,
			 "SELECT id, addr, is_main, system_mem, max_system_mem, attached_threads,"
			 " top_size, consistent, note FROM arena ORDER BY id"))
		return -1;
	int r;
	while ((r = snap_step(s, st)) == 1) {
		arena_row *a = push(S, (void **)&S->arenas, &S->n_arenas, sizeof *a);
		if (!a)
			break;
		a->id = i64_col(st, 0);
		a->addr = i64_col(st, 1);
		a->is_main = snap_i64(st, 2, 0) != 0;
		a->system_mem = i64_col(st, 3);
		a->max_system_mem = i64_col(st, 4);
		a->attached = i64_col(st, 5);
		a->top_size = i64_col(st, 6);
		a->consistent = snap_i64(st, 7, 0) != 0;
		a->note = dup_col(S, st, 8);
	}
	sqlite3_finalize(st);
	if (r < 0 || S->oom)
		return r < 0 ? -1 : 0;

	/* One pass over every chunk, in C: the per-arena figures, mallinfo, the largest
	 * in-use chunks and the size classes. (The same figures as GROUP BY / ORDER BY
	 * queries take 14 s on a 4M-chunk snapshot, this pass 2.2 s.)
	 * mallinfo uses glibc's int_mallinfo formulas, as the file's mallinfo view does,
	 * but is computed here, not read from the view:
	 *   arena    = bytes of all arena chunks      ordblks  = count of bin-free + top chunks
	 *   smblks   = count of fastbin chunks        fsmblks  = their bytes
	 *   hblks    = count of in-use mmapped chunks hblkhd   = bytes of all mmapped chunks
	 *   uordblks = bytes of arena chunks neither bin-free, fastbin nor top
	 *   fordblks = bytes of bin-free, fastbin and top chunks
	 *   keepcost = bytes of the main arena's top chunk */
	if (snap_prepare(s, &st, "SELECT addr, size, state, arena_id FROM chunk"))
		return -1;
	size_hist h = { 0 };
	while ((r = snap_step(s, st)) == 1) {
		int64_t addr = snap_i64(st, 0, 0), size = snap_i64(st, 1, 0), state = snap_i64(st, 2, -1);
		int mmapped = snap_isnull(st, 3);
		arena_row *a = mmapped ? NULL : arena_by_id(S, snap_i64(st, 3, 0));
		if (mmapped) {
			ADD(S->mi_hblkhd, size);
			S->mi_hblks += state == ST_IN_USE;
		} else {
			ADD(S->mi_arena, size);
			S->mi_ordblks += state == ST_FREE || state == ST_TOP;
			if (state == ST_FAST) {
				S->mi_smblks++;
				ADD(S->mi_fsmblks, size);
			}
			if (state == ST_FREE || state == ST_FAST || state == ST_TOP)
				ADD(S->mi_fordblks, size);
			else
				ADD(S->mi_uordblks, size);
			if (state == ST_TOP && a && a->is_main)
				ADD(S->mi_keepcost, size);
		}
		/* per arena (a chunk of an arena the file does not list counts in mallinfo and
		 * the in-use lists only) */
		agg *slot = mmapped ? S->mm : a ? a->st : NULL;
		agg *other = mmapped ? &S->mm_other : a ? &a->other : NULL;
		if (slot)
			add_to(state >= 0 && state < ST_N ? &slot[state] : other, size);
		if (state != ST_IN_USE)
			continue;
		add_to(&S->in_use_all, size);
		if (hist_add(&h, size)) {
			S->oom = 1;
			break;
		}
		chunk_row c = { addr, size, mmapped ? NONE : snap_i64(st, 3, NONE) };
		size_t n = S->n_largest;
		if (n == TOP_N && !chunk_before(&c, &S->largest[n - 1]))
			continue;
		size_t k = n < TOP_N ? n++ : n - 1;
		while (k > 0 && chunk_before(&c, &S->largest[k - 1])) {
			S->largest[k] = S->largest[k - 1];
			k--;
		}
		S->largest[k] = c;
		S->n_largest = n;
	}
	sqlite3_finalize(st);
	/* the TOP_N size classes holding the most bytes */
	for (size_t i = 0; i < h.cap + 1; i++) {
		class_row c;
		if (i < h.cap) {
			if (!h.slot[i].size)
				continue;
			c = h.slot[i];
		} else {
			if (!h.has_zero)
				continue;
			c = h.zero;
		}
		size_t n = S->n_classes;
		if (n == TOP_N && !class_before(&c, &S->classes[n - 1]))
			continue;
		size_t k = n < TOP_N ? n++ : n - 1;
		while (k > 0 && class_before(&c, &S->classes[k - 1])) {
			S->classes[k] = S->classes[k - 1];
			k--;
		}
		S->classes[k] = c;
		S->n_classes = n;
	}
	free(h.slot);
	return r < 0 ? -1 : 0;
}

static int load_threads(snap *s, summary *S)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st,
			 "SELECT t.tid, t.name, t.state, t.was_stopped, coalesce(sk.name, CAST(t.safepoint AS TEXT)),"
			 " t.arena_id, t.tcache, tc.n, tc.b, sm.size_kb, sm.rss_kb, t.unwind_error"
			 " FROM thread t"
			 " LEFT JOIN safepoint_kind sk ON sk.id = t.safepoint"
			 " LEFT JOIN (SELECT tid, sum(count) AS n, sum(bytes) AS b FROM thread_tcache"
			 "  GROUP BY tid) tc ON tc.tid = t.tid"
			 " LEFT JOIN (SELECT tid, sum(size_kb) AS size_kb, sum(rss_kb) AS rss_kb FROM mapping"
			 "  WHERE kind = 4 AND tid IS NOT NULL GROUP BY tid) sm ON sm.tid = t.tid"
			 " ORDER BY t.tid"))
		return -1;
	int r;
	while ((r = snap_step(s, st)) == 1) {
		thread_row *t = push(S, (void **)&S->threads, &S->n_threads, sizeof *t);
		if (!t)
			break;
		t->tid = i64_col(st, 0);
		t->name = dup_col(S, st, 1);
		t->state = dup_col(S, st, 2);
		t->was_stopped = snap_i64(st, 3, 0) != 0;
		t->safepoint = dup_col(S, st, 4);
		t->arena_id = i64_col(st, 5);
		t->tcache = i64_col(st, 6);
		t->tc_count = snap_i64(st, 7, 0);
		t->tc_bytes = snap_i64(st, 8, 0);
		t->stack_kb = i64_col(st, 9);
		t->stack_rss_kb = i64_col(st, 10);
		t->unwind_error = dup_col(S, st, 11);
	}
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

static void summary_free(summary *S)
{
	free(S->exe);
	free(S->cmdline_raw);
	free(S->comm);
	free(S->kernel);
	free(S->glibc);
	for (size_t i = 0; i < S->argc; i++)
		free(S->argv[i]);
	free(S->argv);
	free(S->tool_version);
	free(S->heap_note);
	for (size_t i = 0; i < S->n_kinds; i++)
		free(S->kinds[i].kind);
	free(S->kinds);
	for (size_t i = 0; i < S->n_arenas; i++)
		free(S->arenas[i].note);
	free(S->arenas);
	for (size_t i = 0; i < S->n_threads; i++) {
		free(S->threads[i].name);
		free(S->threads[i].state);
		free(S->threads[i].safepoint);
		free(S->threads[i].unwind_error);
	}
	free(S->threads);
}

/* ---------------------------------------------------------------- text */
static const char *num(char *buf, size_t n, int64_t v)
{
	if (v == NONE)
		snprintf(buf, n, "?");
	else
		snprintf(buf, n, "%" PRId64, v);
	return buf;
}

static const char *kbs(char *buf, int64_t kb)
{
	return out_size_kb(buf, kb == NONE ? -1 : kb);
}

static const char *bytes(char *buf, int64_t b)
{
	if (b == NONE || b < 0) {
		snprintf(buf, OUT_SIZE_LEN, "?");
		return buf;
	}
	return out_size(buf, (uint64_t)b);
}

static int64_t add_kb(int64_t a, int64_t b)
{
	if (a == NONE && b == NONE)
		return NONE;
	return (a == NONE ? 0 : a) + (b == NONE ? 0 : b);
}

/* the heap note as a sentence that starts with "no glibc heap found" */
static void no_heap_line(const summary *S, char *buf, size_t n)
{
	const char *note = S->heap_note;
	static const char lead[] = "no glibc heap found";
	if (note && !strncmp(note, lead, sizeof lead - 1))
		snprintf(buf, n, "%s", note);
	else
		snprintf(buf, n, "%s: %s", lead, note && *note ? note : "no reason recorded");
}

static void arena_label(const summary *S, int64_t id, char *buf, size_t n)
{
	if (id == NONE) {
		snprintf(buf, n, "-");
		return;
	}
	for (size_t i = 0; i < S->n_arenas; i++)
		if (S->arenas[i].id == id && S->arenas[i].is_main) {
			snprintf(buf, n, "%" PRId64 " (main)", id);
			return;
		}
	snprintf(buf, n, "%" PRId64, id);
}

static int print_text(snap *s, summary *S)
{
	char a[OUT_SIZE_LEN], b[OUT_SIZE_LEN], c[OUT_SIZE_LEN], d[OUT_SIZE_LEN];
	char n1[32], n2[32], n3[32], n4[32], t[OUT_TIME_LEN];
	char line[4096], line2[4096];
	int rc = 0;

	printf("snapshot   %s (format %d, %s", out_clean(line, sizeof line, snap_path(s)),
	       snap_format(s), bytes(a, snap_file_size(s)));
	if (S->tool_version)
		printf(", heapsnap %s", out_clean(line, sizeof line, S->tool_version));
	printf(")\n");
	printf("process    %s", num(n1, sizeof n1, S->pid));
	if (S->exe)
		printf("  %s", out_clean(line, sizeof line, S->exe));
	printf("  (parent %s)\n", num(n1, sizeof n1, S->ppid));
	if (S->argc) {
		/* each argument cleaned, and quoted when it holds a blank or is empty */
		printf("cmdline   ");
		for (size_t i = 0; i < S->argc; i++) {
			out_clean(line, sizeof line, S->argv[i]);
			if (!line[0] || strpbrk(line, " \t'\""))
				printf(" '%s'", line);
			else
				printf(" %s", line);
		}
		printf("\n");
	}
	if (S->comm)
		printf("comm       %s\n", out_clean(line, sizeof line, S->comm));
	printf("user       uid %s, gid %s\n", num(n1, sizeof n1, S->uid), num(n2, sizeof n2, S->gid));
	printf("kernel     %s\n", S->kernel ? out_clean(line, sizeof line, S->kernel) : "?");
	printf("glibc      %s\n", S->glibc ? out_clean(line, sizeof line, S->glibc) : "none found");
	printf("page size  %s\n", num(n1, sizeof n1, S->page_size));
	printf("captured   %s\n", S->time_us == NONE ? "?" : out_time_iso(t, S->time_us, 0));
	printf("memory     VIRT %s  RES %s  SHR %s  SWAP %s\n", kbs(a, S->vm_size), kbs(b, S->vm_rss),
	       kbs(c, add_kb(S->rss_file, S->rss_shmem)), kbs(d, S->vm_swap));
	printf("capture    paused %s us (freeze %s, safe points %s, copy %s), copied %s,\n",
	       num(n1, sizeof n1, S->pause_us), num(n2, sizeof n2, S->freeze_us),
	       num(n3, sizeof n3, S->safepoint_us), num(n4, sizeof n4, S->copy_us), bytes(a, S->copy_bytes));
	printf("           %s attempt%s, %s thread%s ran out of the allocator, %s in flux\n",
	       num(n1, sizeof n1, S->attempts), S->attempts == 1 ? "" : "s",
	       num(n2, sizeof n2, S->ran_out), S->ran_out == 1 ? "" : "s", num(n3, sizeof n3, S->in_flux));

	/* regions by kind */
	printf("\nregions by kind\n");
	static const out_col kcols[] = {
		{ "KIND", OUT_LEFT }, { "COUNT", OUT_RIGHT }, { "SIZE", OUT_RIGHT },
		{ "RSS", OUT_RIGHT }, { "PSS", OUT_RIGHT }, { "SWAP", OUT_RIGHT },
	};
	out_table *tb = out_table_new(kcols, 6);
	int64_t tc = 0, ts = 0, tr = 0, tp = 0, tw = 0;
	for (size_t i = 0; i < S->n_kinds; i++) {
		kind_row *k = &S->kinds[i];
		out_cell(tb, k->kind);
		out_cellf(tb, "%" PRId64, k->count);
		out_cell(tb, kbs(a, k->size_kb));
		out_cell(tb, kbs(a, k->rss_kb));
		out_cell(tb, kbs(a, k->pss_kb));
		out_cell(tb, kbs(a, k->swap_kb));
		tc += k->count;
		ts += k->size_kb == NONE ? 0 : k->size_kb;
		tr += k->rss_kb == NONE ? 0 : k->rss_kb;
		tp += k->pss_kb == NONE ? 0 : k->pss_kb;
		tw += k->swap_kb == NONE ? 0 : k->swap_kb;
	}
	out_cell(tb, "total");
	out_cellf(tb, "%" PRId64, tc);
	out_cell(tb, kbs(a, ts));
	out_cell(tb, kbs(a, tr));
	out_cell(tb, kbs(a, tp));
	out_cell(tb, kbs(a, tw));
	if (out_table_print(tb, stdout))
		rc = -1;
	out_table_free(tb);

	printf("\nchunk contents: %s\n", S->contents ? "stored (captured with --contents)"
	       : "not stored (capture --contents stores them)");

	/* the heap */
	if (!S->heap_found) {
		no_heap_line(S, line, sizeof line);
		printf("\n%s\n", out_clean(line2, sizeof line2, line));
	} else {
		printf("\nglibc heap: %zu arena%s", S->n_arenas, S->n_arenas == 1 ? "" : "s");
		if (S->main_arena != NONE)
			printf(", main_arena at %#" PRIx64, (uint64_t)S->main_arena);
		if (S->debug_symbols != NONE)
			printf(", located with %s", S->debug_symbols ? "libc debug symbols" : "heuristics");
		printf("\n");
		static const out_col acols[] = {
			{ "ARENA", OUT_LEFT }, { "ADDRESS", OUT_LEFT }, { "SYSTEM", OUT_RIGHT },
			{ "IN USE", OUT_RIGHT }, { "#", OUT_RIGHT }, { "FREE", OUT_RIGHT }, { "#", OUT_RIGHT },
			{ "TCACHE", OUT_RIGHT }, { "#", OUT_RIGHT }, { "FASTBIN", OUT_RIGHT }, { "#", OUT_RIGHT },
			{ "TOP", OUT_RIGHT }, { "THREADS", OUT_RIGHT }, { "CONSISTENT", OUT_LEFT },
		};
		tb = out_table_new(acols, 14);
		for (size_t i = 0; i < S->n_arenas; i++) {
			arena_row *ar = &S->arenas[i];
			arena_label(S, ar->id, line, sizeof line);
			out_cell(tb, line);
			out_cellf(tb, "%#" PRIx64, (uint64_t)ar->addr);
			out_cell(tb, bytes(a, ar->system_mem));
			const int cols[] = { ST_IN_USE, ST_FREE, ST_TCACHE, ST_FAST };
			for (int k = 0; k < 4; k++) {
				out_cell(tb, bytes(a, ar->st[cols[k]].bytes));
				out_cellf(tb, "%" PRId64, ar->st[cols[k]].count);
			}
			out_cell(tb, bytes(a, ar->st[ST_TOP].bytes));
			out_cell(tb, num(n1, sizeof n1, ar->attached));
			out_cell(tb, ar->consistent ? "yes" : "NO");
		}
		if (out_table_print(tb, stdout))
			rc = -1;
		out_table_free(tb);
		for (size_t i = 0; i < S->n_arenas; i++)
			if (S->arenas[i].note)
				printf("  arena %" PRId64 ": %s\n", S->arenas[i].id,
				       out_clean(line, sizeof line, S->arenas[i].note));
		if (S->heap_note)
			printf("  note: %s\n", out_clean(line, sizeof line, S->heap_note));

		printf("mmapped    %" PRId64 " chunk%s in use, %s", S->mm[ST_IN_USE].count,
		       S->mm[ST_IN_USE].count == 1 ? "" : "s", bytes(a, S->mm[ST_IN_USE].bytes));
		if (S->n_mmaps != NONE)
			printf(" (mp_ says %" PRId64 " chunks, %s)", S->n_mmaps, bytes(b, S->mmapped_mem));
		printf("\n");
		printf("mallinfo   arena %s, in use %s, free %s (ordblks %" PRId64 ", smblks %" PRId64
		       ", fsmblks %s),\n", bytes(a, S->mi_arena), bytes(b, S->mi_uordblks),
		       bytes(c, S->mi_fordblks), S->mi_ordblks, S->mi_smblks, bytes(d, S->mi_fsmblks));
		printf("           hblks %" PRId64 ", hblkhd %s, keepcost %s\n", S->mi_hblks,
		       bytes(a, S->mi_hblkhd), bytes(b, S->mi_keepcost));
	}

	/* threads */
	printf("\nthreads: %zu\n", S->n_threads);
	static const out_col tcols[] = {
		{ "TID", OUT_RIGHT }, { "NAME", OUT_LEFT }, { "STATE", OUT_LEFT }, { "SAFEPOINT", OUT_LEFT },
		{ "ARENA", OUT_LEFT }, { "TCACHE", OUT_RIGHT }, { "#", OUT_RIGHT }, { "STACK", OUT_RIGHT },
		{ "RESIDENT", OUT_RIGHT },
	};
	tb = out_table_new(tcols, 9);
	for (size_t i = 0; i < S->n_threads; i++) {
		thread_row *th = &S->threads[i];
		out_cell(tb, num(n1, sizeof n1, th->tid));
		out_cell(tb, th->name ? th->name : "");
		out_cellf(tb, "%s%s", th->state ? th->state : "?", th->was_stopped ? " (stopped)" : "");
		out_cell(tb, th->safepoint ? th->safepoint : "?");
		arena_label(S, th->arena_id, line, sizeof line);
		out_cell(tb, line);
		if (th->tcache == NONE) {
			out_cell(tb, "-");
			out_cell(tb, "-");
		} else {
			out_cell(tb, bytes(a, th->tc_bytes));
			out_cellf(tb, "%" PRId64, th->tc_count);
		}
		out_cell(tb, kbs(a, th->stack_kb));
		out_cell(tb, kbs(a, th->stack_rss_kb));
	}
	if (S->n_threads && out_table_print(tb, stdout))
		rc = -1;
	out_table_free(tb);

	if (S->heap_found) {
		printf("\nlargest in-use chunks\n");
		static const out_col lcols[] = {
			{ "ADDRESS", OUT_LEFT }, { "SIZE", OUT_RIGHT }, { "BYTES", OUT_RIGHT },
			{ "ARENA", OUT_LEFT },
		};
		tb = out_table_new(lcols, 4);
		for (size_t i = 0; i < S->n_largest; i++) {
			chunk_row *ch = &S->largest[i];
			out_cellf(tb, "%#" PRIx64, (uint64_t)ch->addr);
			out_cell(tb, bytes(a, ch->size));
			out_cellf(tb, "%" PRId64, ch->size);
			if (ch->arena_id == NONE)
				out_cell(tb, "mmapped");
			else {
				arena_label(S, ch->arena_id, line, sizeof line);
				out_cell(tb, line);
			}
		}
		if (out_table_print(tb, stdout))
			rc = -1;
		out_table_free(tb);

		printf("\nin-use chunk sizes holding the most bytes\n");
		static const out_col ccols[] = {
			{ "CHUNK SIZE", OUT_RIGHT }, { "COUNT", OUT_RIGHT }, { "BYTES", OUT_RIGHT },
			{ "SHARE", OUT_RIGHT },
		};
		tb = out_table_new(ccols, 4);
		for (size_t i = 0; i < S->n_classes; i++) {
			class_row *cr = &S->classes[i];
			out_cellf(tb, "%" PRId64, cr->size);
			out_cellf(tb, "%" PRId64, cr->count);
			out_cell(tb, bytes(a, cr->bytes));
			if (S->in_use_all.bytes > 0)
				out_cellf(tb, "%.1f%%", 100.0 * (double)cr->bytes / (double)S->in_use_all.bytes);
			else
				out_cell(tb, "-");
		}
		if (out_table_print(tb, stdout))
			rc = -1;
		out_table_free(tb);
	}
	return rc;
}

/* ---------------------------------------------------------------- JSON */
static void j_opt(out_json *j, const char *key, int64_t v)
{
	if (v == NONE)
		out_json_null(j, key);
	else
		out_json_i64(j, key, v);
}

static void j_agg(out_json *j, const char *name, const agg *g)
{
	char k[64];
	snprintf(k, sizeof k, "%s_count", name);
	out_json_i64(j, k, g->count);
	snprintf(k, sizeof k, "%s_bytes", name);
	out_json_i64(j, k, g->bytes);
}

static void print_json(snap *s, summary *S)
{
	out_json j;
	char t[OUT_TIME_LEN], line[4096];
	out_json_init(&j, stdout);
	out_json_obj(&j, NULL);
	out_json_str(&j, "file", snap_path(s));
	out_json_i64(&j, "format", snap_format(s));
	out_json_i64(&j, "file_bytes", snap_file_size(s));

	out_json_obj(&j, "process");
	j_opt(&j, "pid", S->pid);
	j_opt(&j, "ppid", S->ppid);
	j_opt(&j, "uid", S->uid);
	j_opt(&j, "gid", S->gid);
	out_json_str(&j, "exe", S->exe);
	out_json_arr_line(&j, "cmdline");
	for (size_t i = 0; i < S->argc; i++)
		out_json_str(&j, NULL, S->argv[i]);
	out_json_end(&j);
	out_json_str(&j, "comm", S->comm);
	j_opt(&j, "start_ticks", S->start_ticks);
	out_json_str(&j, "kernel", S->kernel);
	out_json_str(&j, "glibc_version", S->glibc);
	j_opt(&j, "page_size", S->page_size);
	out_json_str(&j, "capture_time", S->time_us == NONE ? NULL : out_time_iso(t, S->time_us, 1));
	j_opt(&j, "capture_time_us", S->time_us);
	out_json_end(&j);

	out_json_obj(&j, "memory");
	j_opt(&j, "virt_kb", S->vm_size);
	j_opt(&j, "res_kb", S->vm_rss);
	j_opt(&j, "shr_kb", add_kb(S->rss_file, S->rss_shmem));
	j_opt(&j, "swap_kb", S->vm_swap);
	j_opt(&j, "rss_anon_kb", S->rss_anon);
	j_opt(&j, "rss_file_kb", S->rss_file);
	j_opt(&j, "rss_shmem_kb", S->rss_shmem);
	j_opt(&j, "vm_peak_kb", S->vm_peak);
	j_opt(&j, "vm_hwm_kb", S->vm_hwm);
	j_opt(&j, "vm_data_kb", S->vm_data);
	j_opt(&j, "vm_stk_kb", S->vm_stk);
	out_json_end(&j);

	out_json_obj(&j, "capture");
	out_json_str(&j, "tool_version", S->tool_version);
	j_opt(&j, "pause_us", S->pause_us);
	j_opt(&j, "freeze_us", S->freeze_us);
	j_opt(&j, "safepoint_us", S->safepoint_us);
	j_opt(&j, "copy_us", S->copy_us);
	j_opt(&j, "copy_bytes", S->copy_bytes);
	j_opt(&j, "attempts", S->attempts);
	j_opt(&j, "threads_ran_out", S->ran_out);
	j_opt(&j, "threads_in_flux", S->in_flux);
	j_opt(&j, "contents", S->contents ? 1 : 0);
	out_json_end(&j);

	out_json_arr(&j, "regions_by_kind");
	for (size_t i = 0; i < S->n_kinds; i++) {
		kind_row *k = &S->kinds[i];
		out_json_obj_line(&j, NULL);
		out_json_str(&j, "kind", k->kind);
		j_opt(&j, "count", k->count);
		j_opt(&j, "size_kb", k->size_kb);
		j_opt(&j, "rss_kb", k->rss_kb);
		j_opt(&j, "pss_kb", k->pss_kb);
		j_opt(&j, "swap_kb", k->swap_kb);
		out_json_end(&j);
	}
	out_json_end(&j);

	out_json_obj(&j, "heap");
	out_json_bool(&j, "found", S->heap_found);
	if (!S->heap_found) {
		no_heap_line(S, line, sizeof line);
		out_json_str(&j, "note", line);
	} else {
		out_json_str(&j, "note", S->heap_note);
	}
	j_opt(&j, "main_arena", S->main_arena);
	if (S->debug_symbols == NONE)
		out_json_null(&j, "debug_symbols");
	else
		out_json_bool(&j, "debug_symbols", S->debug_symbols != 0);
	out_json_arr(&j, "arenas");
	for (size_t i = 0; i < S->n_arenas; i++) {
		arena_row *a = &S->arenas[i];
		out_json_obj_line(&j, NULL);
		j_opt(&j, "id", a->id);
		j_opt(&j, "addr", a->addr);
		out_json_bool(&j, "is_main", a->is_main);
		j_opt(&j, "system_mem", a->system_mem);
		j_opt(&j, "max_system_mem", a->max_system_mem);
		j_opt(&j, "attached_threads", a->attached);
		j_agg(&j, "in_use", &a->st[ST_IN_USE]);
		j_agg(&j, "free", &a->st[ST_FREE]);
		j_agg(&j, "tcache", &a->st[ST_TCACHE]);
		j_agg(&j, "fastbin", &a->st[ST_FAST]);
		j_agg(&j, "top", &a->st[ST_TOP]);
		j_agg(&j, "internal", &a->st[ST_INTERNAL]);
		out_json_bool(&j, "consistent", a->consistent);
		out_json_str(&j, "note", a->note);
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_obj_line(&j, "mmapped");
	j_agg(&j, "in_use", &S->mm[ST_IN_USE]);
	j_agg(&j, "internal", &S->mm[ST_INTERNAL]);
	j_opt(&j, "mp_n_mmaps", S->n_mmaps);
	j_opt(&j, "mp_mmapped_mem", S->mmapped_mem);
	out_json_end(&j);
	out_json_arr(&j, "largest_in_use");
	for (size_t i = 0; i < S->n_largest; i++) {
		out_json_obj_line(&j, NULL);
		out_json_i64(&j, "addr", S->largest[i].addr);
		out_json_i64(&j, "size", S->largest[i].size);
		j_opt(&j, "arena_id", S->largest[i].arena_id);
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_arr(&j, "size_classes");
	for (size_t i = 0; i < S->n_classes; i++) {
		out_json_obj_line(&j, NULL);
		out_json_i64(&j, "size", S->classes[i].size);
		out_json_i64(&j, "count", S->classes[i].count);
		out_json_i64(&j, "bytes", S->classes[i].bytes);
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_end(&j); /* heap */

	out_json_obj(&j, "mallinfo");
	out_json_i64(&j, "arena", S->mi_arena);
	out_json_i64(&j, "ordblks", S->mi_ordblks);
	out_json_i64(&j, "smblks", S->mi_smblks);
	out_json_i64(&j, "hblks", S->mi_hblks);
	out_json_i64(&j, "hblkhd", S->mi_hblkhd);
	out_json_i64(&j, "uordblks", S->mi_uordblks);
	out_json_i64(&j, "fordblks", S->mi_fordblks);
	out_json_i64(&j, "fsmblks", S->mi_fsmblks);
	out_json_i64(&j, "keepcost", S->mi_keepcost);
	out_json_end(&j);

	out_json_arr(&j, "threads");
	for (size_t i = 0; i < S->n_threads; i++) {
		thread_row *th = &S->threads[i];
		out_json_obj_line(&j, NULL);
		j_opt(&j, "tid", th->tid);
		out_json_str(&j, "name", th->name);
		out_json_str(&j, "state", th->state);
		out_json_bool(&j, "was_stopped", th->was_stopped);
		out_json_str(&j, "safepoint", th->safepoint);
		j_opt(&j, "arena_id", th->arena_id);
		j_opt(&j, "tcache", th->tcache);
		out_json_i64(&j, "tcache_count", th->tc_count);
		out_json_i64(&j, "tcache_bytes", th->tc_bytes);
		j_opt(&j, "stack_kb", th->stack_kb);
		j_opt(&j, "stack_rss_kb", th->stack_rss_kb);
		out_json_str(&j, "unwind_error", th->unwind_error);
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_finish(&j);
}

/* ---------------------------------------------------------------- the command */
int cmd_summary(int argc, char **argv)
{
	const char *file = NULL;
	int json = 0, only_args = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_args || a[0] != '-' || !a[1]) {
			if (file) {
				out_err("summary", "unexpected argument '%s' (see 'heapsnap help summary')", a);
				return HS_EXIT_USAGE;
			}
			file = a;
		} else if (!strcmp(a, "--")) {
			only_args = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(summary_usage, stdout);
			fputs(summary_help, stdout);
			return HS_EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else {
			out_err("summary", "unknown option '%s' (see 'heapsnap help summary')", a);
			return HS_EXIT_USAGE;
		}
	}
	if (!file) {
		out_err("summary", "no snapshot file given");
		fputs(summary_usage, stderr);
		return HS_EXIT_USAGE;
	}

	char err[512];
	snap *s;
	int st = snap_open(file, &s, err, sizeof err);
	if (st != SNAP_OK) {
		out_err("summary", "%s", err);
		return snap_status_exit(st);
	}
	summary S;
	memset(&S, 0, sizeof S);
	int rc = HS_EXIT_OK;
	if (load_process(s, &S) || load_capture(s, &S) || load_kinds(s, &S) || load_heap(s, &S) ||
	    load_threads(s, &S)) {
		out_err("summary", "%s", snap_error(s));
		rc = snap_exit_code(s);
	} else if (S.oom) {
		out_err("summary", "out of memory");
		rc = HS_EXIT_FAIL;
	} else if (json) {
		print_json(s, &S);
	} else if (print_text(s, &S)) {
		out_err("summary", "out of memory");
		rc = HS_EXIT_FAIL;
	}
	summary_free(&S);
	snap_close(s);
	return rc;
}
