/* test_preload_state.c -- reads the tracking library's exported state out of a stopped
 * process exactly as README.md (capture/preload) tells the capture to: the library's
 * load base from /proc/PID/maps, heapsnap_tracker_state from its .dynsym with libelf,
 * then process_vm_readv. Checks the magic, the thread records and their `where` flags,
 * the stack table and summed counters of a known site, and decodes the headers of a
 * plain and an aligned block with hp_decode(). A reference for the capture's reader. */
#include "test_preload_util.h"

#include <errno.h>
#include <gelf.h>
#include <sys/uio.h>

#include "../../capture/preload/hp_format.h"

static pid_t g_child;
static void kill_child(void)
{
	if (g_child > 0) {
		kill(-g_child, SIGKILL);
		kill(g_child, SIGCONT);
		waitpid(g_child, NULL, 0);
		g_child = 0;
	}
}

static void rd(uint64_t addr, void *buf, size_t n)
{
	struct iovec l = { buf, n }, r = { (void *)(uintptr_t)addr, n };
	ssize_t got = process_vm_readv(g_child, &l, 1, &r, 1, 0);
	if (got != (ssize_t)n) {
		if (errno == EPERM)
			SKIP("no permission to read the child's memory");
		fprintf(stderr, "process_vm_readv 0x%llx: %s\n", (unsigned long long)addr, strerror(errno));
		exit(1);
	}
}
static uint64_t rd64(uint64_t addr)
{
	uint64_t v;
	rd(addr, &v, 8);
	return v;
}

/* first mapping (offset 0) of a file whose path ends in `suffix` */
static uint64_t map_base(const char *suffix, char *path, size_t len)
{
	char f[64], line[4600];
	snprintf(f, sizeof f, "/proc/%d/maps", (int)g_child);
	FILE *m = fopen(f, "r");
	CHECK(m != NULL);
	uint64_t base = 0;
	while (fgets(line, sizeof line, m)) {
		unsigned long long lo, hi, off;
		char perms[8], p[4200] = "";
		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %4199s", &lo, &hi, perms, &off, p) < 4)
			continue;
		size_t pl = strlen(p), sl = strlen(suffix);
		if (off == 0 && pl >= sl && !strcmp(p + pl - sl, suffix)) {
			base = lo;
			snprintf(path, len, "%s", p);
			break;
		}
	}
	fclose(m);
	return base;
}

static uint64_t dynsym(const char *file, const char *name)
{
	elf_version(EV_CURRENT);
	int fd = open(file, O_RDONLY);
	CHECK(fd >= 0);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	CHECK(e != NULL);
	uint64_t val = 0;
	Elf_Scn *s = NULL;
	while ((s = elf_nextscn(e, s)) && !val) {
		GElf_Shdr sh;
		if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_DYNSYM)
			continue;
		Elf_Data *d = elf_getdata(s, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			if (gelf_getsym(d, (int)i, &sym) &&
			    !strcmp(elf_strptr(e, sh.sh_link, sym.st_name), name))
				val = sym.st_value;
		}
	}
	elf_end(e);
	close(fd);
	return val;
}

int main(void)
{
	(void)check_failures;
	tp_setup();
	atexit(kill_child);
	char fx[4400], out[4400];
	snprintf(fx, sizeof fx, "%s/fx_track_hold", g_fx);
	snprintf(out, sizeof out, "%s", tp_path("hold.out"));
	g_child = fork();
	CHECK(g_child >= 0);
	if (g_child == 0) {
		setpgid(0, 0);
		setenv("LD_PRELOAD", g_lib, 1);
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		execl(fx, fx, (char *)NULL);
		_exit(127);
	}
	setpgid(g_child, g_child);
	int st;
	alarm(30);
	CHECK_EQ(waitpid(g_child, &st, WUNTRACED), g_child);
	CHECK(WIFSTOPPED(st));
	void *blk = NULL, *al = NULL;
	char *o = tp_slurp(out);
	CHECK(sscanf(o, "block %p\naligned %p", &blk, &al) == 2);

	/* 1. find the state */
	char lib[4200], exe[4200];
	uint64_t base = map_base("libheapsnap_preload.so", lib, sizeof lib);
	CHECK(base != 0);
	uint64_t off = dynsym(lib, HP_STATE_SYMBOL);
	CHECK(off != 0);
	struct hp_state s;
	rd(base + off, &s, sizeof s);
	CHECK_EQ(s.magic, HP_MAGIC);
	CHECK_EQ(s.version, HP_FORMAT_VERSION);
	CHECK_EQ(s.state_size, sizeof s);
	CHECK_EQ(s.hdr_size, HP_HDR_SIZE);
	CHECK_EQ(s.pid, g_child);
	CHECK(s.n_threads <= s.max_threads && s.n_stacks <= s.max_stacks);

	/* 2. threads: main + parked are live, and both stopped outside the allocator */
	int live = 0;
	for (uint32_t i = 0; i < s.n_threads; i++) {
		struct hp_thread_pub t;
		rd(s.thread_table + i * sizeof t, &t, sizeof t);
		if (t.tid) {
			live++;
			CHECK_EQ(t.where, HP_WHERE_OUT);
		}
	}
	CHECK_EQ(live, 2);

	/* 3. the plain block's header */
	uint64_t p = (uint64_t)(uintptr_t)blk, u = p - 16;
	unsigned char hb[16];
	rd(u, hb, 16);
	uint64_t chunk_size = rd64(u - 8) & ~7ull;
	struct hp_block b;
	CHECK(hp_decode(u, hb, 16, chunk_size - 8, &b));
	CHECK_EQ(b.user, p);
	CHECK_EQ(b.size, 123);
	CHECK(b.usable >= 123);
	CHECK(b.stack > 0 && b.stack < s.n_stacks);
	CHECK(hp_seq_full(b.seq_low, s.seq) < s.seq);

	/* 4. its stack: innermost frame in hold_site, called from main */
	uint64_t rec = rd64(s.stack_table + 8ull * b.stack);
	struct hp_stack sh;
	rd(rec, &sh, sizeof sh);
	CHECK_EQ(sh.id, b.stack);
	CHECK(sh.n >= 2 && sh.n <= s.max_depth);
	uint64_t pcs[2];
	rd(rec + sizeof sh, pcs, sizeof pcs);
	uint64_t ebase = map_base("/fx_track_hold", exe, sizeof exe);
	CHECK(ebase != 0);
	CHECK_STR(tp_sym(exe, pcs[0] - ebase, NULL, 0), "hold_site");
	CHECK_STR(tp_sym(exe, pcs[1] - ebase, NULL, 0), "main");

	/* 5. the counters summed over all records: 5 blocks, 615 bytes for that stack */
	int64_t count = 0, bytes = 0;
	for (uint32_t i = 0; i < s.n_threads; i++) {
		struct hp_thread_pub t;
		rd(s.thread_table + i * sizeof t, &t, sizeof t);
		uint64_t dir = t.counters ? rd64(t.counters + 8ull * (b.stack / HP_CNT_PER)) : 0;
		if (!dir)
			continue;
		int64_t cb[2];
		rd(dir + 16ull * (b.stack % HP_CNT_PER), cb, sizeof cb);
		count += cb[0];
		bytes += cb[1];
	}
	CHECK_EQ(count, 5);
	CHECK_EQ(bytes, 615);

	/* 6. the aligned block: header at the chunk's user start, p = u + 64 */
	uint64_t ap = (uint64_t)(uintptr_t)al;
	CHECK_EQ(ap & 63, 0);
	uint64_t back = rd64(ap - 8);
	CHECK((back & (HP_B_MARK | HP_B_BACK)) == (HP_B_MARK | HP_B_BACK));
	unsigned ulog = (unsigned)(back >> HP_B_ULOG_SHIFT & HP_B_ULOG_MASK);
	CHECK_EQ(ulog, 6);
	uint64_t au = ap - 64;
	rd(au, hb, 16);
	chunk_size = rd64(au - 8) & ~7ull;
	CHECK(hp_decode(au, hb, 16, chunk_size - 8, &b));
	CHECK_EQ(b.user, ap);
	CHECK_EQ(b.size, 50);
	CHECK(b.usable >= 50);

	kill(g_child, SIGCONT);
	CHECK_EQ(waitpid(g_child, &st, 0), g_child);
	g_child = 0;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fprintf(stderr, "state: magic ok, %u threads, %u stacks, seq %llu: ok\n", s.n_threads,
		s.n_stacks, (unsigned long long)s.seq);
	tp_cleanup();
	return 0;
}
