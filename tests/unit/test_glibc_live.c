/* test_glibc_live.c -- the heap walk against a live fixture with a known heap: runs
 * fx_heap (dynamic) and fx_heap_static from <build>/tests/fixtures, waits for "ready",
 * freezes it with a minimal local ptrace freeze (SEIZE + INTERRUPT each task), copies
 * every rw mapping into an image, detaches, and walks the copy with gh_walk():
 *   - with libc debug symbols and with no_debug (heuristics), which must agree;
 *   - every `live` block of the truth is an in_use chunk with the exact usable size,
 *     no `freed` block is in use, all mallinfo2 figures computed from the chunk list
 *     (as the schema's mallinfo view does) equal the fixture's own, every arena is
 *     consistent and tiles its heaps exactly.
 * Then SIGUSR1 makes the fixture check its own heap ("check ok"). Exit 77 if ptrace is
 * not permitted. Every child is killed on every exit path.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "glibc.h"
#include "glibc_layout.h"

static pid_t child = -1;
static char tmpdir[PATH_MAX];

static void cleanup(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	if (tmpdir[0]) {
		char cmd[PATH_MAX + 300];
		DIR *d = opendir(tmpdir);
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.') {
				snprintf(cmd, sizeof cmd, "%s/%s", tmpdir, e->d_name);
				unlink(cmd);
			}
		if (d)
			closedir(d);
		rmdir(tmpdir);
	}
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void fixture_path(const char *name, char *out, size_t n)
{
	char self[PATH_MAX - 64];
	ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(k > 0);
	self[k] = 0;
	char *slash = strrchr(self, '/');
	CHECK(slash);
	*slash = 0;
	snprintf(out, n, "%s/../fixtures/%s", self, name);
}

/* ---- the fixture ---- */

static void start_fixture(const char *exe, const char *truth)
{
	int p[2];
	CHECK(pipe(p) == 0);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(exe, exe, truth, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[256];
	size_t have = 0;
	double t0 = now_ms();
	while (!memmem(buf, have, "ready\n", 6)) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		int r = poll(&pf, 1, 1000);
		CHECK(now_ms() - t0 < 120000);
		if (r <= 0)
			continue;
		ssize_t n = read(p[0], buf + have, sizeof buf - 1 - have);
		CHECK(n > 0);
		have += (size_t)n;
		if (have >= sizeof buf - 1)
			have = 0;
	}
	close(p[0]);
}

typedef struct {
	uint64_t mi[10]; /* arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost */
	uint64_t *live, *usable, *freed;
	size_t n_live, n_freed;
} truth_t;

static const char *const mi_names[10] = {
	"arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
};

static void load_truth(const char *path, truth_t *t)
{
	FILE *f = fopen(path, "r");
	CHECK(f);
	char line[512];
	size_t cap = 0, capf = 0;
	memset(t, 0, sizeof *t);
	int have_mi = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long long a, u;
		if (!strncmp(line, "mallinfo ", 9)) {
			for (int i = 0; i < 10; i++) {
				char key[32];
				snprintf(key, sizeof key, " %s=", mi_names[i]);
				char *s = strstr(line, key);
				CHECK(s);
				t->mi[i] = strtoull(s + strlen(key), NULL, 10);
			}
			have_mi = 1;
		} else if (sscanf(line, "live %llx %llu", &a, &u) == 2) {
			if (t->n_live == cap) {
				cap = cap ? 2 * cap : 1024;
				t->live = realloc(t->live, cap * 8);
				t->usable = realloc(t->usable, cap * 8);
				CHECK(t->live && t->usable);
			}
			t->live[t->n_live] = a;
			t->usable[t->n_live++] = u;
		} else if (sscanf(line, "freed %llx", &a) == 1) {
			if (t->n_freed == capf) {
				capf = capf ? 2 * capf : 1024;
				t->freed = realloc(t->freed, capf * 8);
				CHECK(t->freed);
			}
			t->freed[t->n_freed++] = a;
		}
	}
	fclose(f);
	CHECK(have_mi);
	CHECK(t->n_live > 100);
}

/* ---- the minimal freeze and copy ---- */

typedef struct {
	pid_t tid;
	struct user_regs_struct regs;
} frozen;

static int freeze(pid_t pid, frozen *th, int max)
{
	char p[64];
	int n = 0, changed = 1;
	snprintf(p, sizeof p, "/proc/%d/task", pid);
	while (changed) {
		changed = 0;
		DIR *d = opendir(p);
		CHECK(d);
		struct dirent *e;
		while ((e = readdir(d))) {
			pid_t t = atoi(e->d_name);
			int known = 0;
			if (t <= 0)
				continue;
			for (int i = 0; i < n; i++)
				known |= th[i].tid == t;
			if (known)
				continue;
			if (ptrace(PTRACE_SEIZE, t, 0, 0)) {
				if (errno == EPERM) {
					closedir(d);
					SKIP("ptrace not permitted");
				}
				continue;
			}
			CHECK(ptrace(PTRACE_INTERRUPT, t, 0, 0) == 0);
			int st;
			CHECK(waitpid(t, &st, __WALL) == t);
			CHECK(n < max);
			th[n].tid = t;
			CHECK(ptrace(PTRACE_GETREGS, t, 0, &th[n].regs) == 0);
			n++;
			changed = 1;
		}
		closedir(d);
	}
	return n;
}

static void thaw(frozen *th, int n)
{
	for (int i = 0; i < n; i++)
		ptrace(PTRACE_DETACH, th[i].tid, 0, 0);
}

static void read_maps(pid_t pid, hs_capture *c)
{
	char p[64], line[4096];
	snprintf(p, sizeof p, "/proc/%d/maps", pid);
	FILE *f = fopen(p, "r");
	CHECK(f);
	size_t cap = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long long lo, hi, off, ino;
		char perms[8], dev[16];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %15s %llu %n", &lo, &hi, perms, &off, dev, &ino, &pos) < 6)
			continue;
		if (c->n_maps == cap) {
			cap = cap ? 2 * cap : 256;
			c->maps = realloc(c->maps, cap * sizeof *c->maps);
			CHECK(c->maps);
		}
		hs_mapping *m = &c->maps[c->n_maps++];
		memset(m, 0, sizeof *m);
		m->start = lo;
		m->end = hi;
		m->offset = off;
		m->inode = ino;
		memcpy(m->perms, perms, 4);
		snprintf(m->dev, sizeof m->dev, "%s", dev);
		char *path = line + pos;
		path[strcspn(path, "\n")] = 0;
		m->path = path[0] ? strdup(path) : NULL;
		m->module_idx = -1;
	}
	fclose(f);
}

static uint64_t copy_memory(pid_t pid, const hs_capture *c, img_image *im)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < c->n_maps; i++) {
		const hs_mapping *m = &c->maps[i];
		if (m->perms[0] != 'r' || m->perms[1] != 'w')
			continue;
		if (m->path && (!strcmp(m->path, "[vvar]") || !strcmp(m->path, "[vsyscall]")))
			continue;
		unsigned char *buf = img_add(im, m->start, m->end, 1);
		CHECK(buf);
		struct iovec l = { buf, m->end - m->start }, r = { (void *)(uintptr_t)m->start, m->end - m->start };
		ssize_t got = process_vm_readv(pid, &l, 1, &r, 1, 0);
		if (got < 0 && errno == EPERM)
			SKIP("process_vm_readv not permitted");
		if (got == (ssize_t)(m->end - m->start)) {
			im->r[im->n - 1].copied = 1;
			bytes += (uint64_t)got;
		}
	}
	img_finish(im);
	return bytes;
}

/* ---- checks ---- */

static const hs_chunk *chunk_at(const hs_capture *c, uint64_t addr)
{
	size_t lo = 0, hi = c->n_chunks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->chunks[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n_chunks && c->chunks[lo].addr == addr ? &c->chunks[lo] : NULL;
}

/* the schema's mallinfo view, computed from the chunk list */
static void mallinfo_of(const hs_capture *c, uint64_t mi[10])
{
	memset(mi, 0, 10 * sizeof mi[0]);
	for (size_t i = 0; i < c->n_chunks; i++) {
		const hs_chunk *k = &c->chunks[i];
		int arena = k->arena >= 0, st = k->state;
		int freeish = st == HS_CH_FREE_BIN || st == HS_CH_FASTBIN || st == HS_CH_TOP;
		if (arena)
			mi[0] += k->size;
		if (st == HS_CH_FREE_BIN || st == HS_CH_TOP)
			mi[1]++;
		if (st == HS_CH_FASTBIN) {
			mi[2]++;
			mi[6] += k->size;
		}
		if (!arena && st == HS_CH_IN_USE)
			mi[3]++;
		if (!arena)
			mi[4] += k->size;
		if (arena && !freeish)
			mi[7] += k->size;
		if (freeish)
			mi[8] += k->size;
		if (arena && st == HS_CH_TOP && c->arenas[k->arena].is_main)
			mi[9] += k->size;
	}
}

static void print_notes(const hs_capture *c)
{
	fprintf(stderr, "  heap note: %s\n", c->heap.note ? c->heap.note : "(none)");
	for (size_t i = 0; i < c->n_arenas; i++)
		if (c->arenas[i].note)
			fprintf(stderr, "  arena %zu %#" PRIx64 ": %s\n", i, c->arenas[i].addr, c->arenas[i].note);
}

static void check_walk(const char *label, const hs_capture *c, const truth_t *t, int want_syms)
{
	if (!c->heap.found || !gh_all_consistent(c))
		print_notes(c);
	CHECK(c->heap.found);
	CHECK_EQ(c->heap.used_debug_symbols, want_syms);
	CHECK(c->heap.glibc_version);
	CHECK(c->n_arenas >= 4);
	CHECK(gh_all_consistent(c));
	/* sorted, no overlaps, tiling */
	uint64_t *sum = calloc(c->n_arenas, sizeof *sum);
	CHECK(sum);
	size_t nstate[HS_CH_STATE_COUNT] = { 0 };
	for (size_t i = 0; i < c->n_chunks; i++) {
		const hs_chunk *k = &c->chunks[i];
		if (i)
			CHECK(k->addr >= c->chunks[i - 1].addr + c->chunks[i - 1].size);
		if (k->arena >= 0)
			sum[k->arena] += k->size;
		CHECK(k->state < HS_CH_STATE_COUNT);
		nstate[k->state]++;
	}
	for (size_t i = 0; i < c->n_arenas; i++)
		CHECK_EQ(sum[i], c->arenas[i].system_mem);
	free(sum);
	/* every live block is an in_use chunk with the exact usable size */
	for (size_t i = 0; i < t->n_live; i++) {
		const hs_chunk *k = chunk_at(c, t->live[i] - 16);
		if (!k || k->state != HS_CH_IN_USE || hs_chunk_usable(k) != t->usable[i])
			fprintf(stderr, "%s: live %#" PRIx64 " usable %" PRIu64 ": chunk %s state %d usable %" PRIu64 "\n",
				label, t->live[i], t->usable[i], k ? "found" : "missing", k ? k->state : -1,
				k ? hs_chunk_usable(k) : 0);
		CHECK(k);
		CHECK_EQ(k->state, HS_CH_IN_USE);
		CHECK_EQ(hs_chunk_usable(k), t->usable[i]);
	}
	size_t freed_listed = 0;
	for (size_t i = 0; i < t->n_freed; i++) {
		const hs_chunk *k = chunk_at(c, t->freed[i] - 16);
		if (k) {
			freed_listed++;
			CHECK(k->state != HS_CH_IN_USE);
		}
	}
	uint64_t mi[10];
	mallinfo_of(c, mi);
	for (int i = 0; i < 10; i++) {
		if (mi[i] != t->mi[i])
			fprintf(stderr, "%s: mallinfo %s: walk %" PRIu64 " glibc %" PRIu64 "\n", label, mi_names[i], mi[i],
				t->mi[i]);
		CHECK_EQ(mi[i], t->mi[i]);
	}
	/* int_mallinfo's own figures per arena agree too */
	uint64_t ord = 0, sm = 0, fs = 0;
	for (size_t i = 0; i < c->n_arenas; i++) {
		ord += 1 + c->arenas[i].list_bin_count;
		sm += c->arenas[i].list_fast_count;
		fs += c->arenas[i].list_fast_bytes;
	}
	CHECK_EQ(ord, t->mi[1]);
	CHECK_EQ(sm, t->mi[2]);
	CHECK_EQ(fs, t->mi[6]);
	CHECK_EQ(c->heap.mp_n_mmaps, t->mi[3]);
	CHECK_EQ(c->heap.mp_mmapped_mem, t->mi[4]);
	/* the threads' tcache bins account for every tcache chunk */
	uint64_t tc_n = 0, tc_bytes = 0, per_thread_n = 0, per_thread_bytes = 0;
	for (size_t i = 0; i < c->n_chunks; i++)
		if (c->chunks[i].state == HS_CH_TCACHE) {
			tc_n++;
			tc_bytes += c->chunks[i].size;
		}
	for (size_t i = 0; i < c->n_threads; i++)
		for (int b = 0; b < HS_TCACHE_BINS; b++) {
			per_thread_n += c->threads[i].tcache_count[b];
			per_thread_bytes += c->threads[i].tcache_bytes[b];
		}
	CHECK_EQ(per_thread_n, tc_n);
	CHECK_EQ(per_thread_bytes, tc_bytes);
	CHECK(tc_n > 0);
	int with_tcache = 0;
	for (size_t i = 0; i < c->n_threads; i++)
		with_tcache += c->threads[i].tcache != 0;
	CHECK(with_tcache >= 5);
	for (size_t i = 0; i < c->n_threads; i++)
		if (c->threads[i].tcache)
			CHECK(c->threads[i].arena != 0);
	fprintf(stderr,
		"%s: glibc %s, %zu arenas, %zu chunks (in_use %zu, free_bin %zu, tcache %zu, fastbin %zu, top %zu, "
		"internal %zu), %zu live and %zu/%zu freed blocks checked, mallinfo2 equal "
		"(arena=%" PRIu64 " ordblks=%" PRIu64 " smblks=%" PRIu64 " hblks=%" PRIu64 " hblkhd=%" PRIu64
		" uordblks=%" PRIu64 " fordblks=%" PRIu64 " fsmblks=%" PRIu64 " keepcost=%" PRIu64 ")\n",
		label, c->heap.glibc_version, c->n_arenas, c->n_chunks, nstate[0], nstate[1], nstate[2], nstate[3],
		nstate[4], nstate[5], t->n_live, freed_listed, t->n_freed, mi[0], mi[1], mi[2], mi[3], mi[4], mi[7],
		mi[8], mi[6], mi[9]);
	fprintf(stderr, "%s: %s\n", label, c->heap.note ? c->heap.note : "");
}

/* The fixture promises free chunks in the unsorted, a small and a large bin and in the
 * fastbins of every arena it churned (all of them): read the arena headers to see. */
static void check_fixture_bins(img_image *im, const hs_capture *c)
{
	for (size_t i = 0; i < c->n_arenas; i++) {
		uint64_t m = c->arenas[i].addr;
		int unsorted = 0, small = 0, large = 0, fast = 0;
		for (int b = 1; b < GH_NBINS; b++) {
			uint64_t h = gh_bin_at(m, b);
			int ok = 1;
			int nonempty = img_u64(im, h + 16, &ok) != h;
			CHECK(ok);
			unsorted += b == 1 && nonempty;
			small += b >= 2 && b < GH_NSMALLBINS && nonempty;
			large += b >= GH_NSMALLBINS && nonempty;
		}
		for (int f = 0; f < GH_NFASTBINS; f++)
			fast += img_u64(im, m + GH_MS_FASTBINS + 8u * f, NULL) != 0;
		if (!unsorted || !small || !large || !fast)
			fprintf(stderr, "arena %zu: unsorted %d small %d large %d fast %d\n", i, unsorted, small, large,
				fast);
		CHECK(unsorted && small && large && fast);
	}
}

static void same_result(const hs_capture *a, const hs_capture *b)
{
	CHECK_EQ(a->heap.main_arena, b->heap.main_arena);
	CHECK_EQ(a->heap.mp, b->heap.mp);
	CHECK_EQ(a->heap.tcache_tls_offset, b->heap.tcache_tls_offset);
	CHECK_EQ(a->heap.tcache_key, b->heap.tcache_key);
	CHECK_EQ(a->n_arenas, b->n_arenas);
	CHECK_EQ(a->n_chunks, b->n_chunks);
	for (size_t i = 0; i < a->n_chunks; i++)
		CHECK(!memcmp(&a->chunks[i], &b->chunks[i], sizeof a->chunks[i]));
	for (size_t i = 0; i < a->n_threads; i++) {
		CHECK_EQ(a->threads[i].tcache, b->threads[i].tcache);
		CHECK_EQ(a->threads[i].arena, b->threads[i].arena);
		CHECK(!memcmp(a->threads[i].tcache_count, b->threads[i].tcache_count, sizeof a->threads[i].tcache_count));
		CHECK(!memcmp(a->threads[i].tcache_bytes, b->threads[i].tcache_bytes, sizeof a->threads[i].tcache_bytes));
	}
}

static void run_fixture(const char *name, int static_exe)
{
	char exe[PATH_MAX], truth[PATH_MAX + 32], checkf[PATH_MAX + 64];
	fixture_path(name, exe, sizeof exe);
	if (access(exe, X_OK)) {
		fprintf(stderr, "%s not built: %s\n", name, exe);
		exit(1);
	}
	snprintf(truth, sizeof truth, "%s/%s.truth", tmpdir, name);
	snprintf(checkf, sizeof checkf, "%s.check", truth);
	start_fixture(exe, truth);
	truth_t t;
	load_truth(truth, &t);

	hs_capture c;
	hs_capture_init(&c);
	img_image im;
	img_init(&im);
	frozen th[64];
	double t0 = now_ms();
	int nth = freeze(child, th, 64);
	read_maps(child, &c);
	uint64_t bytes = copy_memory(child, &c, &im);
	thaw(th, nth);
	double t1 = now_ms();
	fprintf(stderr, "%s: froze %d threads, copied %.1f MiB in %.1f ms\n", name, nth, bytes / 1048576.0, t1 - t0);

	c.proc.pid = child;
	char exel[PATH_MAX], pl[64];
	snprintf(pl, sizeof pl, "/proc/%d/exe", (int)child);
	ssize_t k = readlink(pl, exel, sizeof exel - 1);
	CHECK(k > 0);
	exel[k] = 0;
	c.proc.exe = strdup(exel);
	c.proc.page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	c.threads = calloc((size_t)nth, sizeof *c.threads);
	CHECK(c.threads);
	c.n_threads = (size_t)nth;
	for (int i = 0; i < nth; i++) {
		hs_thread *h = &c.threads[i];
		h->tid = th[i].tid;
		h->fs_base = th[i].regs.fs_base;
		h->sp = th[i].regs.rsp;
		h->pc = th[i].regs.rip;
		h->callsite = -1;
	}

	/* with symbols (libc6-dbg for the dynamic one; the executable's .symtab when static) */
	gh_options o = { .no_debug = 0, .root = NULL };
	double w0 = now_ms();
	CHECK_EQ(gh_walk(&im, &c, &o), 0);
	double w1 = now_ms();
	fprintf(stderr, "%s: walk with symbols %.1f ms\n", name, w1 - w0);
	int syms = c.heap.used_debug_symbols;
	if (!static_exe)
		CHECK_EQ(syms, 1);
	check_walk(static_exe ? "static, symbols" : "dynamic, debug symbols", &c, &t, syms);
	check_fixture_bins(&im, &c);
	if (!static_exe)
		CHECK_STR(c.heap.glibc_version, "2.36");

	/* heuristics only: same answer */
	hs_capture h;
	hs_capture_init(&h);
	h.proc.pid = c.proc.pid;
	h.proc.exe = strdup(c.proc.exe);
	h.proc.page_size = c.proc.page_size;
	h.threads = calloc(c.n_threads, sizeof *h.threads);
	CHECK(h.threads);
	memcpy(h.threads, c.threads, c.n_threads * sizeof *h.threads);
	h.n_threads = c.n_threads;
	h.maps = c.maps;
	h.n_maps = c.n_maps;
	o.no_debug = 1;
	w0 = now_ms();
	CHECK_EQ(gh_walk(&im, &h, &o), 0);
	w1 = now_ms();
	fprintf(stderr, "%s: walk with heuristics %.1f ms\n", name, w1 - w0);
	check_walk(static_exe ? "static, heuristics" : "dynamic, heuristics", &h, &t, 0);
	same_result(&c, &h);
	/* walking the same copy twice gives the same result (gh_walk resets its outputs) */
	CHECK_EQ(gh_walk(&im, &h, &o), 0);
	same_result(&c, &h);
	/* without a [heap] mapping name the bin-header search (H2) must find main_arena */
	hs_mapping *heapmap = NULL;
	for (size_t i = 0; i < h.n_maps; i++)
		if (h.maps[i].path && !strcmp(h.maps[i].path, "[heap]"))
			heapmap = &h.maps[i];
	CHECK(heapmap);
	char *saved = heapmap->path;
	heapmap->path = "[heap:hidden]";
	CHECK_EQ(gh_walk(&im, &h, &o), 0);
	heapmap->path = saved;
	CHECK(h.heap.note && strstr(h.heap.note, "(H2)"));
	check_walk(static_exe ? "static, H2" : "dynamic, H2", &h, &t, 0);
	same_result(&c, &h);
	h.maps = NULL;
	h.n_maps = 0;
	hs_capture_free(&h);
	hs_capture_free(&c);
	img_release(&im);

	/* the fixture checks its own heap after the capture */
	unlink(checkf);
	CHECK(kill(child, SIGUSR1) == 0);
	char buf[256] = "";
	for (int i = 0; i < 1200; i++) {
		FILE *f = fopen(checkf, "r");
		if (f) {
			if (!fgets(buf, sizeof buf, f))
				buf[0] = 0;
			fclose(f);
			break;
		}
		usleep(50000);
	}
	fprintf(stderr, "%s: fixture says: %s", name, buf[0] ? buf : "(nothing)\n");
	CHECK(!strncmp(buf, "check ok", 8));
	kill(child, SIGTERM);
	int st;
	for (int i = 0; i < 100 && waitpid(child, &st, WNOHANG) == 0; i++)
		usleep(20000);
	if (waitpid(child, &st, WNOHANG) == 0) {
		kill(child, SIGKILL);
		waitpid(child, &st, 0);
	}
	child = -1;
	free(t.live);
	free(t.usable);
	free(t.freed);
}

int main(void)
{
	(void)check_failures;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/hs-glibc-live-XXXXXX");
	CHECK(mkdtemp(tmpdir));
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);
	run_fixture("fx_heap", 0);
	run_fixture("fx_heap_static", 1);
	return 0;
}
