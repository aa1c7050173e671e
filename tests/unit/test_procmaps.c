/* test_procmaps.c -- smaps parsing (two kernels' formats, unknown and missing keys, a
 * different field order), process facts of a child whose comm has spaces and
 * parentheses and whose argv has spaces, our own smaps joined to our own maps, and the
 * classification of every kind of mapping on a synthetic capture. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "maps_util.h"
#include "procmaps.h"

/* ---------------------------------------------------------------- canned smaps */

/* A 4.15-era kernel: no Pss_Dirty/Pss_Anon/Pss_File/Pss_Shmem/FilePmdMapped/SwapPss
 * order as printed then, ProtectionKey (unknown to us), THPeligible absent. */
static const char smaps_old[] =
	"00400000-0040c000 r-xp 00000000 08:01 1234                       /bin/true\n"
	"Size:                 48 kB\n"
	"KernelPageSize:        4 kB\n"
	"MMUPageSize:           4 kB\n"
	"Rss:                  44 kB\n"
	"Pss:                  22 kB\n"
	"Shared_Clean:         44 kB\n"
	"Shared_Dirty:          0 kB\n"
	"Private_Clean:         0 kB\n"
	"Private_Dirty:         0 kB\n"
	"Referenced:           44 kB\n"
	"Anonymous:             0 kB\n"
	"LazyFree:              0 kB\n"
	"AnonHugePages:         0 kB\n"
	"ShmemPmdMapped:        0 kB\n"
	"Shared_Hugetlb:        0 kB\n"
	"Private_Hugetlb:       0 kB\n"
	"Swap:                  0 kB\n"
	"SwapPss:               0 kB\n"
	"Locked:                0 kB\n"
	"ProtectionKey:         0\n"
	"VmFlags: rd ex mr mw me dw \n"
	"01000000-01021000 rw-p 00000000 00:00 0                          [heap]\n"
	"Size:                132 kB\n"
	"Rss:                   8 kB\n"
	"Pss:                   8 kB\n"
	"Private_Dirty:         8 kB\n"
	"Anonymous:             8 kB\n"
	"Swap:                  4 kB\n"
	"VmFlags: rd wr mr mw me ac \n"
	/* a VMA that is not in the frozen maps (appeared after the resume): ignored */
	"02000000-02001000 rw-p 00000000 00:00 0 \n"
	"Size:                  4 kB\n"
	"Rss:                   4 kB\n";

/* A 6.x kernel: every field, in a shuffled order, a future key, a path with spaces. */
static const char smaps_new[] =
	"7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
	"Rss:                 100 kB\n"
	"Size:                132 kB\n"
	"KernelPageSize:        4 kB\n"
	"MMUPageSize:           4 kB\n"
	"Pss:                  50 kB\n"
	"Pss_Dirty:            40 kB\n"
	"Pss_Anon:             49 kB\n"
	"Pss_File:              1 kB\n"
	"Pss_Shmem:             0 kB\n"
	"Shared_Clean:          2 kB\n"
	"Shared_Dirty:          3 kB\n"
	"Private_Clean:         4 kB\n"
	"Private_Dirty:        91 kB\n"
	"Referenced:           99 kB\n"
	"Anonymous:            98 kB\n"
	"KSM:                   5 kB\n"
	"LazyFree:              6 kB\n"
	"AnonHugePages:        64 kB\n"
	"ShmemPmdMapped:        0 kB\n"
	"FilePmdMapped:         0 kB\n"
	"Shared_Hugetlb:        0 kB\n"
	"Private_Hugetlb:       0 kB\n"
	"Swap:                 12 kB\n"
	"SwapPss:              11 kB\n"
	"Locked:                7 kB\n"
	"THPeligible:           1\n"
	"Future_Thing:         17 kB\n"
	"ProtectionKey:         3\n"
	"VmFlags: rd wr mr mw me ac sd\n"
	"7f0000021000-7f0000022000 r--s 00001000 00:05 77                 /dev/shm/my seg (deleted)\n"
	"Size:                  4 kB\n"
	"THPeligible:    0\n"
	"VmFlags: rd sh mr mw me ms sd\n";

static void add_map(hs_capture *c, uint64_t lo, uint64_t hi, const char *perms, uint64_t off,
		    const char *path)
{
	c->maps = realloc(c->maps, (c->n_maps + 1) * sizeof *c->maps);
	CHECK(c->maps);
	hs_mapping *m = &c->maps[c->n_maps++];
	memset(m, 0, sizeof *m);
	m->start = lo;
	m->end = hi;
	m->offset = off;
	memcpy(m->perms, perms, 4);
	m->path = path ? strdup(path) : NULL;
	for (int k = 0; k < HS_SM_COUNT; k++)
		m->sm[k] = -1;
	m->module_idx = -1;
}

static void maps_via_vmas(hs_capture *c, const uint64_t (*r)[2], const char *const *perms,
			  const char *const *paths, size_t n)
{
	mc_vmas v = { 0 };
	v.v = calloc(n, sizeof *v.v);
	v.n = v.cap = n;
	for (size_t i = 0; i < n; i++) {
		v.v[i].lo = r[i][0];
		v.v[i].hi = r[i][1];
		memcpy(v.v[i].perms, perms[i], 4);
		snprintf(v.v[i].path, sizeof v.v[i].path, "%s", paths[i]);
	}
	CHECK_EQ(pm_maps_from_vmas(c, &v), 0);
	free(v.v);
}

static int64_t extra(const hs_mapping *m, const char *key)
{
	for (size_t i = 0; i < m->n_extra; i++)
		if (!strcmp(m->extra[i].key, key))
			return m->extra[i].value;
	return -999;
}

static void test_smaps_old(void)
{
	hs_capture c;
	hs_capture_init(&c);
	static const uint64_t r[][2] = { { 0x400000, 0x40c000 }, { 0x1000000, 0x1021000 },
					 { 0x3000000, 0x3001000 } };
	static const char *const perms[] = { "r-xp", "rw-p", "rw-p" };
	static const char *const paths[] = { "/bin/true", "[heap]", "" };
	maps_via_vmas(&c, r, perms, paths, 3);
	CHECK_EQ(c.n_maps, 3);
	CHECK(!c.maps[2].path);

	FILE *f = fmemopen((void *)smaps_old, sizeof smaps_old - 1, "r");
	CHECK(f);
	CHECK_EQ(pm_parse_smaps(f, &c), 0);
	fclose(f);

	const hs_mapping *t = &c.maps[0];
	CHECK_EQ(t->sm[HS_SM_SIZE], 48);
	CHECK_EQ(t->sm[HS_SM_RSS], 44);
	CHECK_EQ(t->sm[HS_SM_PSS], 22);
	CHECK_EQ(t->sm[HS_SM_SHARED_CLEAN], 44);
	CHECK_EQ(t->sm[HS_SM_SWAPPSS], 0);
	CHECK_EQ(t->sm[HS_SM_PSS_DIRTY], -1);   /* not printed by that kernel */
	CHECK_EQ(t->sm[HS_SM_PSS_ANON], -1);
	CHECK_EQ(t->sm[HS_SM_FILEPMDMAPPED], -1);
	CHECK_EQ(t->sm[HS_SM_KSM], -1);
	CHECK_EQ(t->sm[HS_SM_THPELIGIBLE], -1);
	CHECK_EQ(t->n_extra, 1);
	CHECK_EQ(extra(t, "ProtectionKey"), 0);
	CHECK_STR(t->vmflags, "rd ex mr mw me dw");
	CHECK_STR(t->dev, "08:01");
	CHECK_EQ(t->inode, 1234);

	const hs_mapping *h = &c.maps[1];
	CHECK_EQ(h->sm[HS_SM_SIZE], 132);
	CHECK_EQ(h->sm[HS_SM_RSS], 8);
	CHECK_EQ(h->sm[HS_SM_SWAP], 4);
	CHECK_EQ(h->sm[HS_SM_KERNELPAGESIZE], -1);
	CHECK_EQ(h->n_extra, 0);
	CHECK_STR(h->vmflags, "rd wr mr mw me ac");

	/* the frozen VMA that smaps no longer shows keeps -1 everywhere */
	for (int k = 0; k < HS_SM_COUNT; k++)
		CHECK_EQ(c.maps[2].sm[k], -1);
	CHECK(!c.maps[2].vmflags);
	hs_capture_free(&c);
}

static void test_smaps_new(void)
{
	hs_capture c;
	hs_capture_init(&c);
	static const uint64_t r[][2] = { { 0x7f0000000000, 0x7f0000021000 },
					 { 0x7f0000021000, 0x7f0000022000 } };
	static const char *const perms[] = { "rw-p", "r--s" };
	static const char *const paths[] = { "", "/dev/shm/my seg (deleted)" };
	maps_via_vmas(&c, r, perms, paths, 2);

	FILE *f = fmemopen((void *)smaps_new, sizeof smaps_new - 1, "r");
	CHECK(f);
	CHECK_EQ(pm_parse_smaps(f, &c), 0);
	fclose(f);

	const hs_mapping *a = &c.maps[0];
	static const int64_t want[HS_SM_COUNT] = {
		[HS_SM_SIZE] = 132, [HS_SM_KERNELPAGESIZE] = 4, [HS_SM_MMUPAGESIZE] = 4,
		[HS_SM_RSS] = 100, [HS_SM_PSS] = 50, [HS_SM_PSS_DIRTY] = 40, [HS_SM_PSS_ANON] = 49,
		[HS_SM_PSS_FILE] = 1, [HS_SM_PSS_SHMEM] = 0, [HS_SM_SHARED_CLEAN] = 2,
		[HS_SM_SHARED_DIRTY] = 3, [HS_SM_PRIVATE_CLEAN] = 4, [HS_SM_PRIVATE_DIRTY] = 91,
		[HS_SM_REFERENCED] = 99, [HS_SM_ANONYMOUS] = 98, [HS_SM_KSM] = 5,
		[HS_SM_LAZYFREE] = 6, [HS_SM_ANONHUGEPAGES] = 64, [HS_SM_SHMEMPMDMAPPED] = 0,
		[HS_SM_FILEPMDMAPPED] = 0, [HS_SM_SHARED_HUGETLB] = 0, [HS_SM_PRIVATE_HUGETLB] = 0,
		[HS_SM_SWAP] = 12, [HS_SM_SWAPPSS] = 11, [HS_SM_LOCKED] = 7, [HS_SM_THPELIGIBLE] = 1,
	};
	for (int k = 0; k < HS_SM_COUNT; k++) {
		if (a->sm[k] != want[k])
			fprintf(stderr, "field %s\n", hs_smaps_key(k));
		CHECK_EQ(a->sm[k], want[k]);
	}
	CHECK_EQ(a->n_extra, 2);
	CHECK_EQ(extra(a, "Future_Thing"), 17);
	CHECK_EQ(extra(a, "ProtectionKey"), 3);
	CHECK_STR(a->vmflags, "rd wr mr mw me ac sd");

	const hs_mapping *s = &c.maps[1];
	CHECK_EQ(s->sm[HS_SM_SIZE], 4);
	CHECK_EQ(s->sm[HS_SM_THPELIGIBLE], 0);
	CHECK_EQ(s->sm[HS_SM_RSS], -1);
	CHECK_STR(s->path, "/dev/shm/my seg (deleted)");
	CHECK_EQ(s->inode, 77);
	hs_capture_free(&c);
}

/* Garbage must not crash the parser or invent values. */
static void test_smaps_garbage(void)
{
	hs_capture c;
	hs_capture_init(&c);
	static const uint64_t r[][2] = { { 0x1000, 0x2000 } };
	static const char *const perms[] = { "rw-p" };
	static const char *const paths[] = { "" };
	maps_via_vmas(&c, r, perms, paths, 1);
	static const char junk[] =
		"1000-2000 rw-p 00000000 00:00 0\n"
		"Size: lots kB\n"
		"Rss: 99999999999999999999999 kB\n"
		"Pss:\n"
		": 5 kB\n"
		"Weird Key: 5 kB\n"
		"Swap: -3 kB\n"
		"zzzz-2000 rw-p 0 0 0\n"
		"Locked: 1 kB\n";
	FILE *f = fmemopen((void *)junk, sizeof junk - 1, "r");
	CHECK_EQ(pm_parse_smaps(f, &c), 0);
	fclose(f);
	CHECK_EQ(c.maps[0].sm[HS_SM_SIZE], -1);
	CHECK_EQ(c.maps[0].sm[HS_SM_RSS], -1);
	CHECK_EQ(c.maps[0].sm[HS_SM_PSS], -1);
	CHECK_EQ(c.maps[0].sm[HS_SM_SWAP], -3);   /* as printed */
	CHECK_EQ(c.maps[0].sm[HS_SM_LOCKED], 1);
	CHECK_EQ(c.maps[0].n_extra, 0);
	hs_capture_free(&c);
}

/* Our own smaps joined to our own maps: every VMA gets its Size. */
static void test_smaps_self(void)
{
	hs_capture c;
	hs_capture_init(&c);
	mc_vmas v;
	CHECK_EQ(tu_read_maps(getpid(), &v), 0);
	CHECK_EQ(pm_maps_from_vmas(&c, &v), 0);
	tu_free_maps(&v);
	CHECK_EQ(pm_read_smaps(getpid(), &c), 0);
	size_t joined = 0;
	for (size_t i = 0; i < c.n_maps; i++)
		if (c.maps[i].sm[HS_SM_SIZE] >= 0) {
			joined++;
			CHECK_EQ(c.maps[i].sm[HS_SM_SIZE] * 1024, c.maps[i].end - c.maps[i].start);
			CHECK(c.maps[i].sm[HS_SM_RSS] >= 0);
			CHECK(c.maps[i].vmflags);
		}
	/* a few VMAs may change between reading maps and smaps (our own mallocs; many more
	 * under a sanitizer's allocator) */
	if (joined + 3 < c.n_maps)
		for (size_t i = 0; i < c.n_maps; i++)
			if (c.maps[i].sm[HS_SM_SIZE] < 0)
				fprintf(stderr, "not joined: %llx-%llx %s %s\n", (unsigned long long)c.maps[i].start, (unsigned long long)c.maps[i].end, c.maps[i].perms, c.maps[i].path ? c.maps[i].path : "");
	CHECK(joined * 10 >= c.n_maps * 9);
	hs_capture_free(&c);
}

/* ---------------------------------------------------------------- process facts */

static const char child_comm[] = "a (b) c";

static int child_main(int fd)
{
	prctl(PR_SET_NAME, child_comm);
	if (write(fd, "r", 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

static uint64_t my_start_ticks(void)
{
	FILE *f = fopen("/proc/self/stat", "r");
	char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')') + 2;
	unsigned long long v = 0;
	for (int field = 3; field <= 22; field++) {
		if (field == 22)
			v = strtoull(p, NULL, 10);
		p = strchr(p, ' ') + 1;
	}
	return v;
}

static void test_process(void)
{
	int pfd[2];
	CHECK_EQ(pipe(pfd), 0);
	char fdarg[16];
	snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a crashed test */
		close(pfd[0]);
		char *argv[] = { "heapsnap test child", "--child", fdarg, "arg with  spaces", "",
				 "(paren) arg", NULL };
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(pfd[1]);
	char ch;
	CHECK_EQ(read(pfd[0], &ch, 1), 1);
	close(pfd[0]);

	hs_capture c;
	hs_capture_init(&c);
	int rc = pm_read_process(pid, &c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK_EQ(rc, 0);

	CHECK_EQ(c.proc.pid, pid);
	CHECK_EQ(c.proc.ppid, getpid());
	CHECK_EQ(c.proc.uid, getuid());
	CHECK_EQ(c.proc.gid, getgid());
	CHECK_STR(c.proc.comm, child_comm);
	CHECK_EQ(c.proc.argc, 6);
	CHECK_STR(c.proc.argv[0], "heapsnap test child");
	CHECK_STR(c.proc.argv[1], "--child");
	CHECK_STR(c.proc.argv[3], "arg with  spaces");
	CHECK_STR(c.proc.argv[4] ? c.proc.argv[4] : "(null)", "");
	CHECK_STR(c.proc.argv[5], "(paren) arg");
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHECK(n > 0);
	exe[n] = 0;
	CHECK_STR(c.proc.exe, exe);
	uint64_t mine = my_start_ticks();
	CHECK(mine > 0);
	CHECK(c.proc.start_ticks >= mine);
	CHECK(c.proc.start_ticks < mine + 100 * 600);   /* within 10 minutes at 100 Hz */
	CHECK(c.proc.kernel && c.proc.kernel[0]);
	CHECK_EQ(c.proc.page_size, (uint64_t)sysconf(_SC_PAGESIZE));
	CHECK(c.proc.vm_size_kb > 0);
	CHECK(c.proc.vm_rss_kb > 0);
	CHECK(c.proc.rss_anon_kb >= 0);
	CHECK(c.proc.rss_file_kb >= 0);
	CHECK(c.proc.rss_shmem_kb >= 0);
	CHECK(c.proc.vm_swap_kb >= 0);
	CHECK(c.proc.vm_peak_kb >= c.proc.vm_size_kb);
	CHECK(c.proc.vm_hwm_kb >= c.proc.vm_rss_kb);
	CHECK(c.proc.vm_data_kb > 0);
	CHECK(c.proc.vm_stk_kb > 0);
	hs_capture_free(&c);

	/* a process that is gone */
	hs_capture_init(&c);
	CHECK(pm_read_process(pid, &c) < 0);
	hs_capture_free(&c);
}

static void test_thread_names(void)
{
	hs_capture c;
	hs_capture_init(&c);
	prctl(PR_SET_NAME, "tn (x) y");
	c.threads = calloc(2, sizeof *c.threads);
	c.n_threads = 2;
	c.threads[0].tid = getpid();
	c.threads[1].tid = 999999999;   /* no such thread: name stays empty */
	CHECK_EQ(pm_read_thread_names(getpid(), &c), 0);
	CHECK_STR(c.threads[0].name, "tn (x) y");
	CHECK_STR(c.threads[1].name, "");
	hs_capture_free(&c);
}

/* ---------------------------------------------------------------- classification */

static void test_classify(void)
{
	hs_capture c;
	hs_capture_init(&c);
	c.proc.pid = 100;
	const uint64_t M = 1ull << 20, A = 64 * M;

	/* the executable: r--p, r-xp, r--p (relro), rw-p, then .bss (module 0) */
	add_map(&c, 0x555555554000, 0x555555556000, "r--p", 0, "/usr/bin/prog");        /* 0 */
	add_map(&c, 0x555555556000, 0x55555555a000, "r-xp", 0x2000, "/usr/bin/prog");    /* 1 */
	add_map(&c, 0x55555555a000, 0x55555555c000, "r--p", 0x6000, "/usr/bin/prog");    /* 2 */
	add_map(&c, 0x55555555c000, 0x55555555d000, "rw-p", 0x8000, "/usr/bin/prog");    /* 3 */
	add_map(&c, 0x55555555d000, 0x55555555f000, "rw-p", 0, NULL);                    /* 4 bss */
	add_map(&c, 0x555555560000, 0x555555581000, "rw-p", 0, "[heap]");                /* 5 */
	/* an arena heap: 64 MiB aligned, rw part and ---p reserve */
	add_map(&c, 5 * A, 5 * A + 2 * M, "rw-p", 0, NULL);                               /* 6 */
	add_map(&c, 5 * A + 2 * M, 6 * A, "---p", 0, NULL);                              /* 7 */
	/* an anon mapping holding an mmapped chunk, and one that does not */
	add_map(&c, 0x7f0000000000, 0x7f0000100000, "rw-p", 0, NULL);                    /* 8 */
	add_map(&c, 0x7f0000100000, 0x7f0000200000, "rw-p", 0, NULL);                    /* 9 */
	/* a thread stack with its guard page below */
	add_map(&c, 0x7f0000200000, 0x7f0000201000, "---p", 0, NULL);                    /* 10 */
	add_map(&c, 0x7f0000201000, 0x7f0000a01000, "rw-p", 0, NULL);                    /* 11 */
	/* a library: text module 1, a ---p hole in it, data, bss */
	add_map(&c, 0x7f1000000000, 0x7f1000001000, "r--p", 0, "/usr/lib/libfoo.so");    /* 12 */
	add_map(&c, 0x7f1000001000, 0x7f1000005000, "r-xp", 0x1000, "/usr/lib/libfoo.so"); /* 13 */
	add_map(&c, 0x7f1000005000, 0x7f1000006000, "---p", 0x5000, "/usr/lib/libfoo.so"); /* 14 */
	add_map(&c, 0x7f1000006000, 0x7f1000007000, "rw-p", 0x5000, "/usr/lib/libfoo.so"); /* 15 */
	add_map(&c, 0x7f1000007000, 0x7f1000009000, "rw-p", 0, NULL);                    /* 16 bss */
	/* shared memory of every flavour, plain files */
	add_map(&c, 0x7f2000000000, 0x7f2000001000, "rw-s", 0, "/dev/shm/seg");          /* 17 */
	add_map(&c, 0x7f2000001000, 0x7f2000002000, "rw-s", 0, "/SYSV00001234 (deleted)"); /* 18 */
	add_map(&c, 0x7f2000002000, 0x7f2000003000, "rw-s", 0, "/memfd:buf (deleted)");  /* 19 */
	add_map(&c, 0x7f2000003000, 0x7f2000004000, "rw-s", 0, "/dev/zero (deleted)");   /* 20 */
	add_map(&c, 0x7f2000004000, 0x7f2000005000, "r--s", 0, "/var/cache/x.cache");    /* 21 */
	add_map(&c, 0x7f2000005000, 0x7f2000006000, "r--p", 0, "/usr/lib/locale/C.utf8/LC_CTYPE"); /* 22 */
	add_map(&c, 0x7f2000006000, 0x7f2000007000, "---p", 0, NULL);                    /* 23 guard */
	add_map(&c, 0x7f2000007000, 0x7f2000008000, "rw-p", 0, NULL);                    /* 24 anon */
	add_map(&c, 0x7f2000008000, 0x7f2000009000, "rw-p", 0, "[anon:my pool]");        /* 25 anon */
	add_map(&c, 0x7ffff7fc1000, 0x7ffff7fc5000, "r--p", 0, "[vvar]");                /* 26 */
	add_map(&c, 0x7ffff7fc5000, 0x7ffff7fc7000, "r--p", 0, "[vvar_vclock]");         /* 27 */
	add_map(&c, 0x7ffff7fc7000, 0x7ffff7fc9000, "r-xp", 0, "[vdso]");                /* 28 */
	add_map(&c, 0x7ffffffde000, 0x7ffffffff000, "rw-p", 0, "[stack]");               /* 29 */
	add_map(&c, 0xffffffffff600000, 0xffffffffff601000, "--xp", 0, "[vsyscall]");    /* 30 */
	/* an anon rw mapping right after the [heap]-less region: not bss (no module before) */
	add_map(&c, 0x7f3000000000, 0x7f3000001000, "rw-p", 0, NULL);                    /* 31 */

	c.modules = calloc(2, sizeof *c.modules);
	c.n_modules = 2;
	c.modules[0].path = strdup("/usr/bin/prog");
	c.modules[1].path = strdup("/usr/lib/libfoo.so");
	for (int i = 0; i <= 3; i++)
		c.maps[i].module_idx = 0;
	for (int i = 12; i <= 15; i++)
		c.maps[i].module_idx = 1;
	/* mod_collect marks the executable's bss itself; the library's is found here */
	c.maps[4].module_idx = 0;

	c.threads = calloc(3, sizeof *c.threads);
	c.n_threads = 3;
	c.threads[0] = (hs_thread){ .tid = 100, .regs_valid = 1, .sp = 0x7fffffffe000 };
	c.threads[1] = (hs_thread){ .tid = 101, .regs_valid = 1, .sp = 0x7f0000a00800 };
	c.threads[2] = (hs_thread){ .tid = 102, .regs_valid = 0, .sp = 0x7f2000007800 };

	c.arenas = calloc(2, sizeof *c.arenas);
	c.n_arenas = 2;
	c.arenas[0].is_main = 1;
	c.arenas[1].heaps = calloc(1, sizeof *c.arenas[1].heaps);
	c.arenas[1].n_heaps = 1;
	c.arenas[1].heaps[0] = (hs_heap){ .addr = 5 * A, .size = 2 * M, .mprotect_size = 2 * M };

	hs_chunk ch = { .addr = 0x7f0000000010, .size = 0xff000, .mmapped = 1, .arena = -1 };
	CHECK(hs_add_chunk(&c, &ch) >= 0);
	hs_chunk ch2 = { .addr = 0x555555560010, .size = 0x20, .arena = 0 };
	CHECK(hs_add_chunk(&c, &ch2) >= 0);

	pm_classify(&c);

	static const struct { int kind, module, tid; } want[] = {
		{ HS_MAP_MODULE_RODATA, 0, 0 }, { HS_MAP_MODULE_TEXT, 0, 0 },
		{ HS_MAP_MODULE_RODATA, 0, 0 }, { HS_MAP_MODULE_DATA, 0, 0 },
		{ HS_MAP_MODULE_BSS, 0, 0 }, { HS_MAP_HEAP, -1, 0 },
		{ HS_MAP_ARENA_HEAP, -1, 0 }, { HS_MAP_ARENA_HEAP, -1, 0 },
		{ HS_MAP_MMAP_CHUNK, -1, 0 }, { HS_MAP_ANON, -1, 0 },
		{ HS_MAP_GUARD, -1, 0 }, { HS_MAP_STACK, -1, 101 },
		{ HS_MAP_MODULE_RODATA, 1, 0 }, { HS_MAP_MODULE_TEXT, 1, 0 },
		{ HS_MAP_GUARD, 1, 0 }, { HS_MAP_MODULE_DATA, 1, 0 },
		{ HS_MAP_MODULE_BSS, 1, 0 },
		{ HS_MAP_SHM, -1, 0 }, { HS_MAP_SHM, -1, 0 }, { HS_MAP_SHM, -1, 0 },
		{ HS_MAP_SHM, -1, 0 }, { HS_MAP_SHM, -1, 0 }, { HS_MAP_FILE, -1, 0 },
		{ HS_MAP_GUARD, -1, 0 }, { HS_MAP_ANON, -1, 0 }, { HS_MAP_ANON, -1, 0 },
		{ HS_MAP_VVAR, -1, 0 }, { HS_MAP_VVAR, -1, 0 }, { HS_MAP_VDSO, -1, 0 },
		{ HS_MAP_STACK, -1, 100 }, { HS_MAP_VSYSCALL, -1, 0 }, { HS_MAP_ANON, -1, 0 },
	};
	CHECK_EQ(c.n_maps, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < c.n_maps; i++) {
		if ((int)c.maps[i].kind != want[i].kind || c.maps[i].module_idx != want[i].module ||
		    c.maps[i].tid != want[i].tid)
			fprintf(stderr, "mapping %zu: kind %s module %d tid %d\n", i,
				hs_map_kind_name(c.maps[i].kind), c.maps[i].module_idx, c.maps[i].tid);
		CHECK_EQ(c.maps[i].kind, want[i].kind);
		CHECK_EQ(c.maps[i].module_idx, want[i].module);
		CHECK_EQ(c.maps[i].tid, want[i].tid);
	}
	CHECK_EQ(c.threads[1].stack_lo, 0x7f0000201000);
	CHECK_EQ(c.threads[1].stack_hi, 0x7f0000a01000);
	CHECK_EQ(c.threads[0].stack_lo, 0x7ffffffde000);
	CHECK_EQ(c.threads[2].stack_lo, 0);

	/* [stack] with no known thread pointer in it still is the main thread's stack */
	c.threads[0].sp = 0;
	pm_classify(&c);
	CHECK_EQ(c.maps[29].kind, HS_MAP_STACK);
	CHECK_EQ(c.maps[29].tid, 100);
	hs_capture_free(&c);
}

int main(int argc, char **argv)
{
	(void)check_failures;
	if (argc >= 3 && !strcmp(argv[1], "--child"))
		return child_main(atoi(argv[2]));
	test_smaps_old();
	test_smaps_new();
	test_smaps_garbage();
	test_smaps_self();
	test_process();
	test_thread_names();
	test_classify();
	printf("procmaps: ok\n");
	return 0;
}
