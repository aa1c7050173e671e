/* test_freeze.c -- the frozen window against a live malloc storm (fixtures/fx_storm):
 * repeated captures leave it running, uncorrupted and unstalled; after the safe points
 * no thread is inside the allocator unless parked; a SIGSTOPped target stays stopped;
 * a target killed mid-window gives -ESRCH; SIGINT/SIGTERM/SIGHUP/SIGSEGV to a capturing
 * process resume the target; a wrong pid gives -ESRCH. Exits 77 when ptrace is not
 * permitted. Every fixture started here is killed at exit, whatever happens. */
#define _GNU_SOURCE
#include <dirent.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "freeze.h"
#include "safepoint.h"
#include "window.h"

static char storm_path[PATH_MAX];
static pid_t kids[64];
static int kid_out[64];   /* read end of a fixture's stdout, -1 if none */
static int n_kids;

static uint64_t now_ms(void)
{
	return frz_now_ns() / 1000000ull;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void kill_kids(void)
{
	for (int i = 0; i < n_kids; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGCONT);
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
}

/* Remember a child to kill at exit; out: its stdout pipe or -1. */
static void add_kid(pid_t pid, int out)
{
	for (int i = 0; i < n_kids; i++)
		if (kids[i] == 0) {
			kids[i] = pid;
			kid_out[i] = out;
			return;
		}
	CHECK(n_kids < (int)(sizeof kids / sizeof *kids));
	kids[n_kids] = pid;
	kid_out[n_kids++] = out;
}

static void forget_kid(pid_t pid)
{
	for (int i = 0; i < n_kids; i++)
		if (kids[i] == pid) {
			kids[i] = 0;
			if (kid_out[i] > 0) {
				char buf[4096];
				ssize_t n = read(kid_out[i], buf, sizeof buf - 1);
				if (n > 0) {
					buf[n] = 0;
					char *v = strstr(buf, "fx_storm:");
					if (v)
						fprintf(stderr, "  %s", v);
				}
				close(kid_out[i]);
				kid_out[i] = -1;
			}
		}
}

static void find_fixtures(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(n > 0);
	self[n] = 0;
	char *slash = strrchr(self, '/');
	CHECK(slash);
	*slash = 0;   /* <build>/tests/unit */
	CHECK(strlen(self) + 32 < sizeof storm_path);
	strcpy(storm_path, self);
	strcat(storm_path, "/../fixtures/fx_storm");
	if (access(storm_path, X_OK))
		SKIP("fixture fx_storm not built");
}

/* Start fx_storm (alrm_us > 0: with a SIGALRM storm) and wait for its "ready". */
static const char *storm_env;   /* "NAME=value" put in the fixture's environment */

static pid_t start_storm_alrm(int threads, long alrm_us)
{
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		if (storm_env)
			putenv((char *)storm_env);
		char nt[16], al[24];
		snprintf(nt, sizeof nt, "%d", threads);
		snprintf(al, sizeof al, "%ld", alrm_us);
		execl(storm_path, storm_path, nt, "120", al, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	add_kid(pid, pfd[0]);
	char buf[256];
	size_t len = 0;
	uint64_t dl = now_ms() + 5000;
	while (now_ms() < dl) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(pfd[0], buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = 0;
		if (strstr(buf, "ready"))
			break;
	}
	CHECK(strstr(buf, "ready") != NULL);
	return pid;   /* the pipe stays open: the storm prints its verdict at the end */
}

static pid_t start_storm(int threads)
{
	return start_storm_alrm(threads, 0);
}

/* Ask the storm to finish and return its exit status (0: no corruption, no hang). */
static int stop_storm(pid_t pid)
{
	kill(pid, SIGUSR1);
	int st = 0;
	uint64_t dl = now_ms() + 10000;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		CHECK(now_ms() < dl);
		sleep_ms(10);
	}
	forget_kid(pid);
	if (WIFSIGNALED(st))
		fprintf(stderr, "fx_storm died by signal %d\n", WTERMSIG(st));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* CPU time the target has used, in ns (first field of /proc/PID/schedstat), summed over
 * its threads. */
static uint64_t cpu_ns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	uint64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p2[384];
		snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		FILE *f = fopen(p2, "r");
		unsigned long long v = 0;
		if (f) {
			if (fscanf(f, "%llu", &v) == 1)
				sum += v;
			fclose(f);
		}
	}
	closedir(d);
	return sum;
}

/* Count the target's threads in each of: stopped ('T'), traced ('t'), other. */
static void task_states(pid_t pid, int *stopped, int *traced, int *other)
{
	*stopped = *traced = *other = 0;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char c = frz_thread_state(pid, (pid_t)atoi(e->d_name));
		if (c == 'T')
			(*stopped)++;
		else if (c == 't')
			(*traced)++;
		else if (c)
			(*other)++;
	}
	closedir(d);
}

static int running_and_progressing(pid_t pid)
{
	int s, t, o;
	task_states(pid, &s, &t, &o);
	if (s || t || !o)
		return 0;
	uint64_t a = cpu_ns(pid);
	sleep_ms(30);
	return cpu_ns(pid) > a;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}


/* ---- an independent check of the copied heap -------------------------------------
 * Not the project's walker: a small re-implementation of the experiment's check
 * (shared/reference/safepoint/sp.c) for the glibc 2.35-2.41 x86-64 layout, with
 * main_arena and mp_ from libc's debug symbols. Consistent means: the arena ring
 * closes, no arena is locked, every bin list is doubly linked with sane sizes and
 * footers, fastbin chains have the right sizes, and walking each heap chunk by chunk
 * reaches top (or the fencepost) exactly, with every free-looking chunk on a bin list
 * and as many of them as there are bin nodes. */
#define MS_FASTBINS 16
#define MS_TOP 96
#define MS_BINS 112
#define MS_NEXT 2160
#define MS_SYSMEM 2184
#define MP_SBRK_BASE 96
#define HEAP_MAX (64ull << 20)

static uint64_t dbg_main_arena, dbg_mp;   /* libc-relative; 0 if no debug symbols */

static void load_libc_debug_syms(void)
{
	elf_version(EV_CURRENT);
	const char *paths[] = { "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", NULL };
	for (int k = 0; paths[k] && !dbg_main_arena; k++) {
		int fd = open(paths[k], O_RDONLY);
		if (fd < 0)
			continue;
		Elf *e = elf_begin(fd, ELF_C_READ, NULL);
		const void *id;
		ssize_t n = e ? dwelf_elf_gnu_build_id(e, &id) : -1;
		char dpath[256] = "";
		if (n > 1) {
			const unsigned char *b = id;
			int len = snprintf(dpath, sizeof dpath, "/usr/lib/debug/.build-id/%02x/", b[0]);
			for (ssize_t i = 1; i < n && len < 200; i++)
				len += snprintf(dpath + len, sizeof dpath - (size_t)len, "%02x", b[i]);
			snprintf(dpath + len, sizeof dpath - (size_t)len, ".debug");
		}
		if (e)
			elf_end(e);
		close(fd);
		int dfd = dpath[0] ? open(dpath, O_RDONLY) : -1;
		if (dfd < 0)
			continue;
		Elf *d = elf_begin(dfd, ELF_C_READ, NULL);
		Elf_Scn *scn = NULL;
		while (d && (scn = elf_nextscn(d, scn))) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
				continue;
			Elf_Data *data = elf_getdata(scn, NULL);
			for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
				GElf_Sym sym;
				if (!gelf_getsym(data, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_OBJECT)
					continue;
				const char *nm = elf_strptr(d, sh.sh_link, sym.st_name);
				if (nm && !strcmp(nm, "main_arena"))
					dbg_main_arena = sym.st_value;
				if (nm && !strcmp(nm, "mp_"))
					dbg_mp = sym.st_value;
			}
		}
		if (d)
			elf_end(d);
		close(dfd);
	}
	if (!dbg_mp)
		dbg_main_arena = 0;
}

typedef struct {
	uint64_t *v;
	size_t n, cap;
} addrset;

static void as_add(addrset *a, uint64_t x)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 4096;
		a->v = realloc(a->v, a->cap * sizeof *a->v);
		CHECK(a->v);
	}
	a->v[a->n++] = x;
}

static int as_has(const addrset *a, uint64_t x)
{
	size_t lo = 0, hi = a->n;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (a->v[m] < x)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < a->n && a->v[lo] == x;
}

/* Walk [a, end) chunk by chunk up to top (0: an older heap, ends at its fencepost). */
static const char *walk_heap(img_image *im, uint64_t a, uint64_t end, uint64_t top, const addrset *bins,
			     long *walk_free)
{
	for (long n = 0; a + 16 <= end && n < 50000000; n++) {
		int ok = 1;
		uint64_t hdr = img_u64(im, a + 8, &ok), sz = hdr & ~7ull;
		if (!ok)
			return "unreadable chunk";
		if (top && a == top)
			return (hdr & 1) ? NULL : "top follows a free chunk";
		if (!top && sz == 16 && (img_u64(im, a + 24, &ok) & ~7ull) == 0)
			return NULL;   /* fencepost of an older heap */
		if (sz < 32 || (sz & 15) || a + sz > end)
			return "bad chunk size in the walk";
		uint64_t nxt = img_u64(im, a + sz + 8, &ok);
		if (!ok)
			return "unreadable chunk";
		if (!(nxt & 1)) {
			(*walk_free)++;
			if (!as_has(bins, a))
				return "a free chunk is on no bin list";
		}
		a += sz;
	}
	return "the walk did not reach top";
}

static int cmp_addr(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* NULL when consistent, else why not. */
static const char *heap_check(fw_result *r)
{
	uint64_t base = 0;
	for (size_t i = 0; i < r->maps.n && !base; i++) {
		const char *b = strrchr(r->maps.v[i].path, '/');
		if (r->maps.v[i].offset == 0 && b && !strncmp(b + 1, "libc.so", 7))
			base = r->maps.v[i].lo;
	}
	if (!base)
		return "no libc";
	img_image *im = &r->img;
	uint64_t M = base + dbg_main_arena, MP = base + dbg_mp, ar[64];
	int na = 0, ok = 1;
	uint64_t x = M;
	do {
		ar[na++] = x;
		x = img_u64(im, x + MS_NEXT, &ok);
	} while (ok && x != M && na < 64);
	if (!ok || x != M)
		return "the arena ring does not close";
	for (int i = 0; i < na; i++)
		if (img_u32(im, ar[i], &ok))
			return "an arena is locked";
	addrset bins = { 0 };
	long nodes = 0;
	const char *why = NULL;
	for (int i = 0; i < na && !why; i++) {
		for (int f = 0; f < 10 && !why; f++) {
			uint64_t p = img_u64(im, ar[i] + MS_FASTBINS + 8 * (uint64_t)f, &ok);
			for (long n = 0; p && !why; n++) {
				if ((p & 15) || (img_u64(im, p + 8, &ok) & ~7ull) != (uint64_t)(f + 2) * 16 || !ok ||
				    n > 100000)
					why = "a fastbin chain is broken";
				p = ((p + 16) >> 12) ^ img_u64(im, p + 16, &ok);
			}
		}
		for (int b = 1; b < 128 && !why; b++) {
			uint64_t bb = ar[i] + MS_BINS + (uint64_t)(b - 1) * 16 - 16, prev = bb;
			uint64_t p = img_u64(im, bb + 16, &ok);
			for (long n = 0; p != bb && !why; n++) {
				uint64_t sz = img_u64(im, p + 8, &ok) & ~7ull;
				if (!ok || n > 1000000 || img_u64(im, p + 24, &ok) != prev)
					why = "a bin list is not doubly linked";
				else if ((img_u64(im, p + sz + 8, &ok) & 1) || img_u64(im, p + sz, &ok) != sz)
					why = "a binned chunk's neighbour says it is in use";
				else if (b >= 2 && b < 64 && sz != (uint64_t)b * 16)
					why = "a small bin holds a chunk of the wrong size";
				as_add(&bins, p);
				nodes++;
				prev = p;
				p = img_u64(im, p + 16, &ok);
				if (!ok)
					why = "unreadable bin node";
			}
			if (!why && img_u64(im, bb + 24, &ok) != prev)
				why = "a bin's bk does not close";
		}
	}
	if (bins.n)
		qsort(bins.v, bins.n, sizeof *bins.v, cmp_addr);
	long walk_free = 0;
	if (!why) {
		uint64_t sbrk = img_u64(im, MP + MP_SBRK_BASE, &ok), top = img_u64(im, M + MS_TOP, &ok);
		why = walk_heap(im, sbrk, top + 16, top, &bins, &walk_free);
		if (!why && top + (img_u64(im, top + 8, &ok) & ~7ull) != sbrk + img_u64(im, M + MS_SYSMEM, &ok))
			why = "main arena: top does not end at sbrk_base + system_mem";
	}
	for (int i = 1; i < na && !why; i++) {
		uint64_t a = ar[i], atop = img_u64(im, a + MS_TOP, &ok), hp = atop & ~(HEAP_MAX - 1), sum = 0;
		for (int nh = 0; hp && nh < 10000 && !why; nh++) {
			if (img_u64(im, hp, &ok) != a) {
				why = "a heap_info does not point to its arena";
				break;
			}
			uint64_t hsize = img_u64(im, hp + 16, &ok);
			uint64_t first = a == hp + 48 ? hp + 0x8d0 : hp + 48;
			int has_top = (atop & ~(HEAP_MAX - 1)) == hp;
			why = walk_heap(im, first, has_top ? atop + 16 : hp + hsize, has_top ? atop : 0, &bins,
					&walk_free);
			sum += hsize;
			hp = img_u64(im, hp + 8, &ok);
		}
		if (!why && sum != img_u64(im, a + MS_SYSMEM, &ok))
			why = "a non-main arena: system_mem is not the sum of its heaps";
	}
	if (!why && walk_free != nodes)
		why = "free chunks by walk != bin list nodes";
	free(bins.v);
	return why;
}

static int n_consistent, n_inconsistent, n_flux_inconsistent;
static const char *last_why;
/* Count consistent copies; a copy where some thread was left in flux is expected to be
 * inconsistent and counted apart. */
static int count_consistency(fw_result *r, void *arg)
{
	(void)arg;
	int flux = 0;
	for (size_t k = 0; k < r->n_threads; k++)
		flux |= r->threads[k].safepoint == HS_SP_IN_FLUX;
	const char *why = heap_check(r);
	if (!why)
		n_consistent++;
	else if (flux)
		n_flux_inconsistent++;
	else {
		n_inconsistent++;
		last_why = why;
	}
	return 1;   /* count only: every copy is accepted */
}

/* ---- tests ---- */

static void test_wrong_pid(void)
{
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0)
		_exit(0);
	CHECK(waitpid(p, NULL, 0) == p);
	fw_result r;
	char err[256];
	CHECK_EQ(fw_capture(p, NULL, &r, err, sizeof err), -ESRCH);
	CHECK(strstr(err, "no such process") != NULL);
	fw_result_release(&r);
	CHECK_EQ(fw_capture(-5, NULL, &r, err, sizeof err), -ESRCH);
	fw_result_release(&r);
	fprintf(stderr, "wrong pid: -ESRCH \"%s\"\n", err);
}

static void test_repeated_captures(int threads, int n, long alrm_us, int no_sp, int allow_flux)
{
	pid_t pid = start_storm_alrm(threads, alrm_us);
	fw_options o;
	fw_options_default(&o);
	o.no_safepoints = no_sp;
	if (dbg_main_arena)
		o.verify = count_consistency;
	n_consistent = n_inconsistent = n_flux_inconsistent = 0;
	last_why = NULL;
	uint64_t *pauses = calloc((size_t)n, sizeof *pauses);
	long ran_out = 0, in_flux = 0, copy_kb = 0, attempts = 0;
	int outcomes[HS_SP_UNKNOWN + 1] = { 0 };
	uint64_t cpu0 = cpu_ns(pid);
	for (int i = 0; i < n; i++) {
		fw_result r;
		char err[256];
		int rc = fw_capture(pid, &o, &r, err, sizeof err);
		if (rc == -EPERM)
			SKIP("ptrace not permitted here");
		if (rc)
			fprintf(stderr, "capture %d: %d %s\n", i, rc, err);
		CHECK_EQ(rc, 0);
		CHECK(r.n_threads >= (size_t)(threads > 1 ? threads + 1 : 1));
		CHECK(r.img.n > 0);
		CHECK(r.info.copy_bytes > 0);
		for (size_t k = 0; k < r.n_threads; k++) {
			CHECK(r.threads[k].regs_valid);
			CHECK_EQ(r.threads[k].was_stopped, 0);
			outcomes[r.threads[k].safepoint]++;
		}
		pauses[i] = r.info.pause_us;
		ran_out += r.info.threads_ran_out;
		in_flux += r.info.threads_in_flux;
		copy_kb += (long)(r.info.copy_bytes / 1024);
		attempts += r.info.attempts;
		fw_result_release(&r);
		CHECK(kill(pid, 0) == 0);
		int s, t, oth;
		task_states(pid, &s, &t, &oth);
		CHECK_EQ(s + t, 0);
		if (i % 10 == 9) {
			uint64_t c = cpu_ns(pid);
			CHECK(c > cpu0);   /* it keeps working */
			cpu0 = c;
		}
		sleep_ms(5);
	}
	CHECK(running_and_progressing(pid));
	CHECK_EQ(stop_storm(pid), 0);
	qsort(pauses, (size_t)n, sizeof *pauses, cmp_u64);
	fprintf(stderr,
		"storm %d threads%s%s: %d captures, pause us min %llu median %llu p90 %llu max %llu; "
		"threads clean %d ran_out %d parked_lock %d parked_syscall %d in_flux %d unknown %d; "
		"avg copy %ld KiB; heap consistent %d/%d (+%d in flux)%s%s\n",
		threads, alrm_us ? " + SIGALRM storm" : "", no_sp ? " (no safe points)" : "", n,
		(unsigned long long)pauses[0], (unsigned long long)pauses[n / 2],
		(unsigned long long)pauses[n * 9 / 10], (unsigned long long)pauses[n - 1],
		outcomes[HS_SP_CLEAN], outcomes[HS_SP_RAN_OUT], outcomes[HS_SP_PARKED_LOCK],
		outcomes[HS_SP_PARKED_SYSCALL], outcomes[HS_SP_IN_FLUX], outcomes[HS_SP_UNKNOWN], copy_kb / n,
		n_consistent, n_consistent + n_inconsistent, n_flux_inconsistent, last_why ? "; last problem: " : "",
		last_why ? last_why : "");
	CHECK_EQ(attempts, n);
	free(pauses);
	if (no_sp) {
		/* the checker itself must see what safe points prevent */
		if (dbg_main_arena)
			CHECK(n_inconsistent > 0);
		return;
	}
	/* Without working debug registers (some VMs) the fallback single-steps, slowly
	 * enough that a thread can use up its budget; the window then re-freezes, and the
	 * heap below must still be consistent every time. */
	if (!allow_flux && frz_hwbp_works())
		CHECK_EQ(in_flux, 0);
	else if (in_flux)
		fprintf(stderr, "  (debug registers %s: %d threads over budget, re-frozen)\n",
			frz_hwbp_works() ? "work" : "do not fire here", (int)in_flux);
	CHECK_EQ(n_inconsistent, 0);
}

/* libc of the target, as window.c finds it */
static sp_libc *open_target_libc(pid_t pid, int no_debug)
{
	mc_vmas m = { 0 };
	CHECK_EQ(mc_read_maps(pid, &m), 0);
	sp_libc *l = NULL;
	for (size_t i = 0; i < m.n && !l; i++) {
		const char *b = strrchr(m.v[i].path, '/');
		if (m.v[i].offset == 0 && b && !strncmp(b + 1, "libc.so", 7))
			l = sp_libc_open(m.v[i].path, m.v[i].lo, no_debug);
	}
	mc_vmas_release(&m);
	return l;
}

static void test_safepoint_invariant(int threads, int rounds, int no_debug, long alrm_us)
{
	pid_t pid = start_storm_alrm(threads, alrm_us);
	sp_libc *l = open_target_libc(pid, no_debug);
	CHECK(l != NULL);
	if (no_debug)
		CHECK_EQ(sp_libc_exact(l), 0);
	frz_session s;
	CHECK_EQ(frz_init(&s, pid), 0);
	enum hs_safepoint *outc = calloc(FRZ_MAX_THREADS, sizeof *outc);
	int *nr = calloc(FRZ_MAX_THREADS, sizeof *nr);
	long flagged_rounds = 0, ran = 0, parked = 0, flux = 0, unknown = 0, bad = 0, bp = 0, steps = 0;
	long inside_at_freeze = 0, below_handler = 0;
	for (int k = 0; k < rounds; k++) {
		int rc = frz_attach_all(&s);
		if (rc == -EPERM)
			SKIP("ptrace not permitted here");
		CHECK_EQ(rc, 0);
		for (int i = 0; i < s.n; i++)
			if (s.t[i].st == FRZ_T_ATTACHED && sp_thread_in_allocator(&s, l, &s.t[i]) == 1)
				inside_at_freeze++;
		sp_result res;
		memset(&res, 0, sizeof res);
		rc = sp_reach_safepoints(&s, l, outc, nr, &res);
		int rc_bad = 0, rc_unknown = 0;
		for (int i = 0; i < s.n; i++) {
			frz_thread *t = &s.t[i];
			if (t->st != FRZ_T_ATTACHED || t->gone)
				continue;
			if (outc[i] == HS_SP_PARKED_LOCK || outc[i] == HS_SP_PARKED_SYSCALL)
				continue;
			CHECK(t->stopped);
			int in = sp_thread_in_allocator(&s, l, t);
			/* in flux is honest (the window re-freezes), but with working debug
			 * registers it must not happen */
			if ((in == 1 && outc[i] != HS_SP_IN_FLUX) ||
			    (outc[i] == HS_SP_IN_FLUX && frz_hwbp_works())) {
				rc_bad++;
				fprintf(stderr, "round %d: tid %d outcome %s still inside (rip %llx)\n", k, t->tid,
					hs_safepoint_name(outc[i]), (unsigned long long)t->regs.rip);
			}
			if (in < 0)
				rc_unknown++;
		}
		frz_detach_all(&s);
		CHECK_EQ(rc, 0);
		bad += rc_bad;
		unknown += rc_unknown;
		ran += res.ran_out;
		parked += res.parked;
		flux += res.in_flux;
		bp += res.bp_runs;
		steps += res.steps;
		below_handler += res.below_handler;
		if (res.ran_out || res.parked)
			flagged_rounds++;
		CHECK(kill(pid, 0) == 0);
		sleep_ms(3);
	}
	free(outc);
	free(nr);
	frz_release(&s);
	sp_libc_close(l);
	CHECK(running_and_progressing(pid));
	CHECK_EQ(stop_storm(pid), 0);
	fprintf(stderr,
		"safe points (%d threads%s, %s range): %d freezes, %ld threads inside the allocator at the "
		"freeze (%ld below a signal handler), %ld freezes needed safe points; ran_out %ld parked %ld "
		"in_flux %ld; breakpoint runs %ld, single steps %ld; unwind failures %ld\n",
		threads, alrm_us ? " + SIGALRM storm" : "", no_debug ? "estimated" : "exact", rounds,
		inside_at_freeze, below_handler, flagged_rounds, ran, parked, flux, bp, steps, unknown);
	CHECK_EQ(bad, 0);
	if (frz_hwbp_works())
		CHECK_EQ(flux, 0);
	else if (flux)   /* single steps wait for the scheduler: how many depends on the load */
		fprintf(stderr, "  (debug registers do not fire here: %ld threads over budget)\n", flux);
	CHECK(inside_at_freeze > 0);   /* the storm did put threads inside malloc at freezes */
	CHECK(ran > 0);
}

static void test_sigstopped(void)
{
	pid_t pid = start_storm(2);
	CHECK(kill(pid, SIGSTOP) == 0);
	int s, t, o;
	uint64_t dl = now_ms() + 3000;
	do {
		sleep_ms(5);
		task_states(pid, &s, &t, &o);
	} while ((o || t) && now_ms() < dl);
	CHECK_EQ(o + t, 0);
	CHECK(s >= 3);
	fw_result r;
	char err[256];
	int rc = fw_capture(pid, NULL, &r, err, sizeof err);
	if (rc)
		fprintf(stderr, "%s\n", err);
	CHECK_EQ(rc, 0);
	CHECK_EQ(r.n_threads, (size_t)s);
	for (size_t k = 0; k < r.n_threads; k++) {
		CHECK_EQ(r.threads[k].was_stopped, 1);
		CHECK_EQ(r.threads[k].state, 'T');
	}
	fw_result_release(&r);
	sleep_ms(50);
	int s2, t2, o2;
	task_states(pid, &s2, &t2, &o2);
	CHECK_EQ(s2, s);   /* still stopped after the capture */
	CHECK_EQ(t2 + o2, 0);
	uint64_t c0 = cpu_ns(pid);
	sleep_ms(50);
	CHECK_EQ(cpu_ns(pid), c0);
	CHECK(kill(pid, SIGCONT) == 0);
	dl = now_ms() + 2000;
	while (!running_and_progressing(pid) && now_ms() < dl)
		sleep_ms(5);
	CHECK(running_and_progressing(pid));
	CHECK_EQ(stop_storm(pid), 0);
	fprintf(stderr, "SIGSTOPped target: %d threads stayed stopped, continued after SIGCONT\n", s);
}

static pid_t victim;
static void *killer(void *arg)
{
	sleep_ms((long)(intptr_t)arg);
	kill(victim, SIGKILL);
	return NULL;
}

static void test_killed_mid_window(void)
{
	pid_t pid = start_storm(3);
	victim = pid;
	setenv("HEAPSNAP_TEST_FROZEN_SLEEP_MS", "400", 1);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, killer, (void *)(intptr_t)150) == 0);
	uint64_t t0 = now_ms();
	fw_result r;
	char err[256];
	int rc = fw_capture(pid, NULL, &r, err, sizeof err);
	uint64_t took = now_ms() - t0;
	pthread_join(th, NULL);
	unsetenv("HEAPSNAP_TEST_FROZEN_SLEEP_MS");
	fw_result_release(&r);
	fprintf(stderr, "killed mid-window: rc %d \"%s\" after %llu ms\n", rc, err, (unsigned long long)took);
	CHECK_EQ(rc, -ESRCH);
	CHECK(strstr(err, "exited during the capture") != NULL);
	CHECK(took < 3000);
	/* reaped already by the capture (it was the tracer), or reap it now */
	int st;
	pid_t w = waitpid(pid, &st, 0);
	CHECK(w == pid || (w < 0 && errno == ECHILD));
	forget_kid(pid);
}

/* A child captures the storm with the window held open; we signal the child while the
 * storm is frozen. The storm must run on. */
static void test_signal_capturer(int sig)
{
	pid_t pid = start_storm(2);
	pid_t cap = fork();
	CHECK(cap >= 0);
	if (cap == 0) {
		setenv("HEAPSNAP_TEST_FROZEN_SLEEP_MS", "3000", 1);
		fw_result r;
		char err[256];
		int rc = fw_capture(pid, NULL, &r, err, sizeof err);
		_exit(rc == -EINTR ? 3 : rc == 0 ? 0 : 4);
	}
	add_kid(cap, -1);
	/* wait until the storm is frozen by the child */
	int s, t, o, frozen = 0;
	uint64_t dl = now_ms() + 3000;
	while (now_ms() < dl) {
		task_states(pid, &s, &t, &o);
		if (t > 0 && o == 0) {
			frozen = 1;
			break;
		}
		sleep_ms(2);
	}
	CHECK(frozen);
	sleep_ms(50);
	uint64_t t0 = now_ms();
	CHECK(kill(cap, sig) == 0);
	int st = 0;
	dl = now_ms() + 3000;
	for (;;) {
		pid_t w = waitpid(cap, &st, WNOHANG);
		if (w == cap)
			break;
		CHECK(now_ms() < dl);
		sleep_ms(2);
	}
	forget_kid(cap);
	uint64_t took = now_ms() - t0;
	if (sig == SIGSEGV) {
		/* died by the signal (or by a sanitizer's report of it) */
		CHECK(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3));
	} else {
		CHECK(WIFEXITED(st));
		CHECK_EQ(WEXITSTATUS(st), 3);
	}
	CHECK(running_and_progressing(pid));
	CHECK_EQ(stop_storm(pid), 0);
	fprintf(stderr, "%s to the capturing process: it ended after %llu ms, target running\n", strsignal(sig),
		(unsigned long long)took);
}

/* Signals at random moments: a child captures in a loop (breakpoints or single steps)
 * and is signalled at any point of its window; the target must come back every time. */
static void test_random_signals(int rounds)
{
	storm_env = "MALLOC_ARENA_MAX=1";
	pid_t pid = start_storm(4);
	storm_env = NULL;
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGSEGV };
	unsigned seed = 12345;
	int interrupted = 0, died = 0;
	for (int k = 0; k < rounds; k++) {
		seed = seed * 1103515245u + 12345u;
		int step = (seed >> 16) & 1;
		pid_t cap = fork();
		CHECK(cap >= 0);
		if (cap == 0) {
			if (step)
				setenv("HEAPSNAP_TEST_SINGLESTEP", "1", 1);
			for (;;) {
				fw_result r;
				char err[256];
				int rc = fw_capture(pid, NULL, &r, err, sizeof err);
				fw_result_release(&r);
				if (rc == -EINTR)
					_exit(3);
				if (rc)
					_exit(4);
			}
		}
		add_kid(cap, -1);
		seed = seed * 1103515245u + 12345u;
		long us = 2000 + (long)((seed >> 8) % 20000);
		struct timespec ts = { 0, us * 1000 };
		nanosleep(&ts, NULL);
		int sig = sigs[(seed >> 20) % 4];
		kill(cap, sig);
		int st = 0;
		uint64_t dl = now_ms() + 5000;
		for (;;) {
			pid_t w = waitpid(cap, &st, WNOHANG);
			if (w == cap)
				break;
			CHECK(now_ms() < dl);
			sleep_ms(1);
		}
		forget_kid(cap);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
			interrupted++;
		else
			died++;
		CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 4));
		CHECK(kill(pid, 0) == 0);
		int s, t, o;
		task_states(pid, &s, &t, &o);
		if (s || t)
			fprintf(stderr, "round %d (%s, %s): target left stopped (%d T, %d t)\n", k, strsignal(sig),
				step ? "single step" : "breakpoints", s, t);
		CHECK_EQ(s + t, 0);
	}
	CHECK(running_and_progressing(pid));
	CHECK_EQ(stop_storm(pid), 0);
	fprintf(stderr, "random signals to a capturing process: %d rounds (%d returned -EINTR, %d died by "
		"the signal), target always resumed and uncorrupted\n", rounds, interrupted, died);
}

/* The copy plan on synthetic maps, and the copy of this very process (no ptrace). */
static mc_vma vma(uint64_t lo, uint64_t hi, const char *perms, const char *path)
{
	mc_vma v;
	memset(&v, 0, sizeof v);
	v.lo = lo;
	v.hi = hi;
	memcpy(v.perms, perms, 4);
	snprintf(v.path, sizeof v.path, "%s", path);
	return v;
}

static const img_region *region_at(img_image *im, uint64_t lo)
{
	for (size_t i = 0; i < im->n; i++)
		if (im->r[i].lo == lo)
			return &im->r[i];
	return NULL;
}

static void test_plan(void)
{
	const uint64_t K = 4096, B = 0x7f0000000000ull;
	mc_vma a[] = {
		vma(B + 0 * K, B + 4 * K, "rw-p", "[heap]"),
		vma(B + 10 * K, B + 11 * K, "---p", ""),          /* guard */
		vma(B + 11 * K, B + 30 * K, "rw-p", ""),          /* a thread stack */
		vma(B + 40 * K, B + 42 * K, "rw-p", "[vvar]"),
		vma(B + 50 * K, B + 52 * K, "rw-s", "/dev/dri/card0"),
		vma(B + 60 * K, B + 62 * K, "rw-s", "/dev/shm/x"),
		vma(B + 70 * K, B + 72 * K, "r--p", "/usr/lib/libc.so.6"),
		vma(B + 80 * K, B + 84 * K, "rw-p", ""),          /* vanishes later */
		vma(B + 90 * K, B + 94 * K, "rw-p", "/x/data"),   /* shrinks later */
		vma(B + 100 * K, B + 104 * K, "rw-p", "[stack]"),
	};
	mc_vmas m = { a, sizeof a / sizeof *a, sizeof a / sizeof *a };
	CHECK(mc_is_stacklike(&m, 2));
	CHECK(mc_is_stacklike(&m, 9));
	CHECK(!mc_is_stacklike(&m, 0));
	CHECK(!mc_is_stacklike(&m, 7));
	img_image im;
	img_init(&im);
	/* before the freeze: no stacks, no vvar, no device memory, no read-only */
	CHECK_EQ(mc_plan(&im, &m, NULL, 0), (4 + 2 + 4 + 4) * K);
	CHECK_EQ(im.n, 4);
	CHECK(region_at(&im, B) && region_at(&im, B + 60 * K) && region_at(&im, B + 80 * K) &&
	      region_at(&im, B + 90 * K));
	unsigned char *heap_buf = region_at(&im, B)->buf;
	memset(heap_buf, 0xab, 4 * K);

	/* frozen: the heap grew, one mapping vanished, one shrank, stacks known */
	mc_vma b[] = {
		vma(B + 0 * K, B + 8 * K, "rw-p", "[heap]"),
		vma(B + 10 * K, B + 11 * K, "---p", ""),
		vma(B + 11 * K, B + 30 * K, "rw-p", ""),
		vma(B + 60 * K, B + 62 * K, "rw-s", "/dev/shm/x"),
		vma(B + 90 * K, B + 92 * K, "rw-p", "/x/data"),
		vma(B + 100 * K, B + 104 * K, "rw-p", "[stack]"),
		vma(B + 110 * K, B + 111 * K, "rw-p", ""),        /* new */
	};
	mc_vmas m2 = { b, sizeof b / sizeof *b, sizeof b / sizeof *b };
	uint64_t sps[] = { B + 29 * K + 8, B + 103 * K };
	int64_t planned = mc_plan(&im, &m2, sps, 2);
	CHECK_EQ(im.n, 6);
	const img_region *h = region_at(&im, B);
	CHECK(h && h->hi == B + 8 * K);
	CHECK_EQ(h->buf[4 * K - 1], 0xab);   /* kept its pages */
	CHECK(!region_at(&im, B + 80 * K));
	CHECK(region_at(&im, B + 90 * K) && region_at(&im, B + 90 * K)->hi == B + 92 * K);
	CHECK(region_at(&im, B + 29 * K + 8 - 128));   /* trimmed to rsp - 128 */
	CHECK(region_at(&im, B + 103 * K - 128));
	CHECK(region_at(&im, B + 110 * K));
	CHECK_EQ(planned, (8 + 2 + 2 + 1) * K + (K - 8 + 128) + (K + 128));
	for (size_t i = 0; i < im.n; i++)
		CHECK_EQ(im.r[i].copied, 0);
	img_release(&im);

	/* the copy: of this process; a hole in the middle of a region marks it not copied */
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *mem = mmap(NULL, (size_t)pg * 6, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED);
	for (long i = 0; i < pg * 6; i++)
		mem[i] = (unsigned char)(i * 7);
	CHECK(mprotect(mem + 3 * pg, (size_t)pg, PROT_NONE) == 0);
	uint64_t base = (uint64_t)(uintptr_t)mem;
	mc_vma c[] = {
		vma(base, base + 2 * (uint64_t)pg, "rw-p", ""),
		vma(base + 2 * (uint64_t)pg, base + 5 * (uint64_t)pg, "rw-p", ""),   /* holds the hole */
		vma(base + 5 * (uint64_t)pg, base + 6 * (uint64_t)pg, "rw-p", ""),
	};
	mc_vmas m3 = { c, 3, 3 };
	img_init(&im);
	CHECK_EQ(mc_plan(&im, &m3, NULL, 0), 6 * pg);
	CHECK_EQ(mc_copy(getpid(), &im), 3 * pg);
	CHECK(region_at(&im, base)->copied && region_at(&im, base + 5 * (uint64_t)pg)->copied);
	CHECK(!region_at(&im, base + 2 * (uint64_t)pg)->copied);
	CHECK_EQ(img_u16(&im, base + 5 * (uint64_t)pg + 10, NULL),
		 *(uint16_t *)(mem + 5 * pg + 10));
	int ok = 1;
	img_u64(&im, base + 2 * (uint64_t)pg, &ok);
	CHECK(!ok);   /* never silently zero */
	img_release(&im);
	munmap(mem, (size_t)pg * 6);
	fprintf(stderr, "copy plan: kept, resized, dropped, added, stacks trimmed; unreadable region marked\n");
}

static int self_page_present(const void *addr)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	off_t off = (off_t)((uintptr_t)addr / 4096 * 8);
	ssize_t got = fd >= 0 ? pread(fd, &e, 8, off) : -1;
	if (fd >= 0)
		close(fd);
	CHECK_EQ(got, 8);
	return (e >> 63) & 1;
}

/* Sparse copy: of a private anonymous mapping only the pages the target touched are
 * read (the others would be faulted in); a page dropped since an earlier copy into the
 * same buffer reads as zero, not as the old bytes. */
static void test_sparse_copy(void)
{
	const size_t pg = 4096, npg = 64;
	unsigned char *mem = mmap(NULL, pg * npg, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED);
	madvise(mem, pg * npg, MADV_NOHUGEPAGE);
	memset(mem + 1 * pg, 0x11, pg);
	memset(mem + 40 * pg, 0x40, pg);
	uint64_t base = (uint64_t)(uintptr_t)mem;
	mc_vma c[] = { vma(base, base + npg * pg, "rw-p", "") };
	mc_vmas m = { c, 1, 1 };
	img_image im;
	img_init(&im);
	CHECK_EQ(mc_plan(&im, &m, NULL, 0), (int64_t)(npg * pg));
	CHECK(im.r[0].sparse);
	/* before the freeze: the pages it has now; page 50 is touched only after that and
	 * must still be copied (the window asks pagemap again where pages were missing) */
	CHECK_EQ(mc_premap(getpid(), &im), 0);
	CHECK(im.r[0].had != NULL);
	CHECK_EQ(im.r[0].had[0], (1ull << 1) | (1ull << 40));
	memset(mem + 50 * pg, 0x50, pg);
	CHECK_EQ(mc_copy(getpid(), &im), (int64_t)(3 * pg));   /* only the touched pages */
	CHECK_EQ(img_u64(&im, base + 50 * pg, NULL), 0x5050505050505050ull);
	madvise(mem + 50 * pg, pg, MADV_DONTNEED);
	CHECK(im.r[0].copied);
	CHECK(!self_page_present(mem + 2 * pg));               /* not faulted in */
	CHECK(!self_page_present(mem + 63 * pg));
	CHECK_EQ(img_u64(&im, base + 1 * pg + 8, NULL), 0x1111111111111111ull);
	CHECK_EQ(img_u64(&im, base + 40 * pg, NULL), 0x4040404040404040ull);
	CHECK_EQ(img_u64(&im, base + 2 * pg, NULL), 0);

	/* the target drops page 1 and touches page 3; the re-plan keeps the buffer */
	madvise(mem + 1 * pg, pg, MADV_DONTNEED);
	memset(mem + 3 * pg, 0x33, pg);
	CHECK_EQ(mc_plan(&im, &m, NULL, 0), (int64_t)(npg * pg));
	CHECK(im.r[0].dirty);
	CHECK_EQ(mc_premap(getpid(), &im), 0);   /* as before every attempt */
	CHECK_EQ(mc_copy(getpid(), &im), (int64_t)(2 * pg));
	CHECK_EQ(img_u64(&im, base + 1 * pg + 8, NULL), 0);    /* not the old 0x11 bytes */
	CHECK_EQ(img_u64(&im, base + 3 * pg, NULL), 0x3333333333333333ull);
	CHECK_EQ(img_u64(&im, base + 40 * pg, NULL), 0x4040404040404040ull);
	img_release(&im);

	/* a dense region: every page there before the freeze, read without pagemap */
	memset(mem, 0x77, pg * npg);
	img_init(&im);
	CHECK_EQ(mc_plan(&im, &m, NULL, 0), (int64_t)(npg * pg));
	CHECK_EQ(mc_premap(getpid(), &im), 0);
	CHECK_EQ(im.r[0].had[0], UINT64_MAX);
	CHECK_EQ(mc_copy(getpid(), &im), (int64_t)(npg * pg));
	CHECK_EQ(img_u64(&im, base + 63 * pg + 8, NULL), 0x7777777777777777ull);
	img_release(&im);

	/* a shared or file mapping is never sparse: its absent pages are not zero */
	mc_vma f[] = { vma(base, base + npg * pg, "rw-s", "/dev/shm/x") };
	mc_vmas mf = { f, 1, 1 };
	img_init(&im);
	CHECK_EQ(mc_plan(&im, &mf, NULL, 0), (int64_t)(npg * pg));
	CHECK(!im.r[0].sparse);
	img_release(&im);
	munmap(mem, pg * npg);

	/* a maps read torn by a running target: overlapping rows are clipped */
	mc_vma t[] = {
		vma(0x1000, 0x5000, "rw-p", ""),
		vma(0x3000, 0x8000, "rw-p", ""),   /* overlaps the one before */
		vma(0x4000, 0x6000, "rw-p", ""),   /* inside: dropped */
		vma(0x9000, 0xa000, "rw-p", ""),
	};
	mc_vmas mt = { t, 4, 4 };
	mc_vmas_clip(&mt);
	CHECK_EQ(mt.n, 3);
	CHECK_EQ(mt.v[0].hi, 0x5000);
	CHECK_EQ(mt.v[1].lo, 0x5000);
	CHECK_EQ(mt.v[1].hi, 0x8000);
	CHECK_EQ(mt.v[2].lo, 0x9000);
	fprintf(stderr, "sparse copy: untouched pages not read, dropped pages zero; torn maps clipped\n");
}

static int verify_calls;
static int verify_third(fw_result *r, void *arg)
{
	(void)r;
	(void)arg;
	return ++verify_calls >= 3;
}

static void test_verify_retry(void)
{
	pid_t pid = start_storm(2);
	fw_options o;
	fw_options_default(&o);
	o.verify = verify_third;
	fw_result r;
	char err[256];
	CHECK_EQ(fw_capture(pid, &o, &r, err, sizeof err), 0);
	CHECK_EQ(r.info.attempts, 3);
	fw_result_release(&r);
	verify_calls = -100;
	o.max_attempts = 2;
	CHECK_EQ(fw_capture(pid, &o, &r, err, sizeof err), -EAGAIN);
	CHECK_EQ(r.info.attempts, 2);
	fw_result_release(&r);
	o.verify = NULL;
	o.no_safepoints = 1;
	CHECK_EQ(fw_capture(pid, &o, &r, err, sizeof err), 0);
	fw_result_release(&r);
	CHECK(running_and_progressing(pid));
	CHECK_EQ(stop_storm(pid), 0);
	fprintf(stderr, "verify: retried until accepted, -EAGAIN after max_attempts\n");
}

int main(void)
{
	setvbuf(stderr, NULL, _IONBF, 0);
	(void)check_failures;
	atexit(kill_kids);
	find_fixtures();
	load_libc_debug_syms();
	if (!dbg_main_arena)
		fprintf(stderr, "no libc debug symbols: the heap consistency check is off\n");
	test_plan();
	test_sparse_copy();
	test_wrong_pid();
	test_repeated_captures(4, 50, 0, 0, 0);
	test_repeated_captures(1, 20, 0, 0, 0);
	test_repeated_captures(4, 30, 200, 0, 0);
	test_repeated_captures(1, 30, 200, 0, 0);
	test_repeated_captures(4, 30, 0, 1, 0);
	test_repeated_captures(1, 30, 0, 1, 0);
	test_safepoint_invariant(4, 60, 0, 0);
	test_safepoint_invariant(4, 30, 1, 0);
	test_safepoint_invariant(1, 30, 0, 0);
	test_safepoint_invariant(4, 60, 0, 200);
	test_safepoint_invariant(1, 40, 0, 200);

	/* one arena shared by every thread: threads wait for its lock inside malloc */
	storm_env = "MALLOC_ARENA_MAX=1";
	test_repeated_captures(4, 30, 0, 0, 0);
	test_safepoint_invariant(4, 40, 0, 0);
	/* the single-step fallback, also into futex waits (a queued SIGTRAP to drain) */
	setenv("HEAPSNAP_TEST_SINGLESTEP", "1", 1);
	test_safepoint_invariant(4, 30, 0, 0);
	storm_env = NULL;
	/* stepping through lingering signal handlers may run out of budget: in flux is the
	 * honest outcome then, but the target must come out whole */
	test_repeated_captures(4, 15, 200, 0, 1);
	unsetenv("HEAPSNAP_TEST_SINGLESTEP");
	test_sigstopped();
	test_killed_mid_window();
	test_signal_capturer(SIGINT);
	test_signal_capturer(SIGTERM);
	test_signal_capturer(SIGHUP);
	test_signal_capturer(SIGSEGV);
	test_random_signals(100);
	test_verify_retry();
	fprintf(stderr, "test_freeze: all passed\n");
	return 0;
}
