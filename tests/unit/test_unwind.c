/* test_unwind.c -- backtrace of a stopped child from a copy of its memory.
 *
 * The child (forked from main) runs main -> level_a -> level_b -> [inl_helper, inlined]
 * -> level_c -> pause(). It sends the source lines of its calls (taken with __LINE__)
 * through a pipe. The parent stops it with a minimal PTRACE_SEIZE + PTRACE_INTERRUPT,
 * reads its registers, copies its stack (from rsp - 128) and its other rw mappings into
 * an image with process_vm_readv, detaches, and from then on works on the copy only:
 * libunwind over the image, libdwfl symbols. The backtrace must hold level_c, inl_helper
 * (inlined), level_b, level_a, main in that order with the call lines, and the libc
 * frames must have module + rel_pc.
 *
 * Also: C++ demangling (libstdc++ symbols in our own process) and callsite interning.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "maps_util.h"
#include "modules.h"
#include "procmaps.h"
#include "symbols.h"
#include "unwind.h"

/* ---------------------------------------------------------------- the child */

static int ready_fd = -1;
static int line_main, line_a, line_b, line_inl;

__attribute__((noipa)) int level_c(int x)
{
	int lines[5] = { line_main, line_a, line_b, line_inl, __LINE__ + 2 };
	if (write(ready_fd, lines, sizeof lines) == (ssize_t)sizeof lines)
		pause();
	return x + 1;
}

static inline __attribute__((always_inline)) int inl_helper(int x)
{
	line_inl = __LINE__; int r = level_c(x * 2);
	return r + 7;
}

__attribute__((noipa)) int level_b(int x)
{
	line_b = __LINE__; int r = inl_helper(x + 1);
	return r * 3;
}

__attribute__((noipa)) int level_a(int x)
{
	line_a = __LINE__; int r = level_b(x + 2);
	return r - 1;
}

/* ---------------------------------------------------------------- the parent */

static pid_t child = -1;

static void kill_child(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] ? p[2] : 0;
}

/* Copy [lo, hi) of the child into the image; 0 or -1. */
static int copy_region(img_image *im, pid_t pid, uint64_t lo, uint64_t hi)
{
	size_t n = (size_t)(hi - lo);
	void *buf = malloc(n);
	if (!buf)
		return -1;
	struct iovec l = { buf, n }, r = { (void *)(uintptr_t)lo, n };
	ssize_t got = process_vm_readv(pid, &l, 1, &r, 1, 0);
	int rc = got == (ssize_t)n ? img_add_bytes(im, lo, buf, n) : -1;
	free(buf);
	return rc;
}

static const char *frame_fn(const hs_capture *c, int cs)
{
	return c->frames[c->callsites[cs].frame].function;
}

static void test_child_backtrace(int rfd)
{
	int lines[5];
	CHECK_EQ(read(rfd, lines, sizeof lines), (ssize_t)sizeof lines);
	close(rfd);
	/* wait until it sleeps in pause() */
	for (int i = 0; i < 2000 && proc_state(child) != 'S'; i++)
		usleep(1000);
	CHECK_EQ(proc_state(child), 'S');

	if (ptrace(PTRACE_SEIZE, child, 0, 0)) {
		if (errno == EPERM)
			SKIP("ptrace not permitted");
		CHECK(!"PTRACE_SEIZE failed");
	}
	CHECK_EQ(ptrace(PTRACE_INTERRUPT, child, 0, 0), 0);
	int st;
	CHECK_EQ(waitpid(child, &st, __WALL), child);
	CHECK(WIFSTOPPED(st));
	struct user_regs_struct regs;
	CHECK_EQ(ptrace(PTRACE_GETREGS, child, 0, &regs), 0);

	hs_capture c;
	hs_capture_init(&c);
	mc_vmas v;
	CHECK_EQ(tu_read_maps(child, &v), 0);
	CHECK_EQ(pm_maps_from_vmas(&c, &v), 0);
	tu_free_maps(&v);

	img_image im;
	img_init(&im);
	for (size_t i = 0; i < c.n_maps; i++) {
		const hs_mapping *m = &c.maps[i];
		if (m->perms[0] != 'r' || m->perms[1] != 'w')
			continue;
		uint64_t lo = m->start;
		if (regs.rsp >= m->start && regs.rsp < m->end)
			lo = (regs.rsp - 128) & ~(uint64_t)15;   /* the stack: from the red zone */
		else if (m->end - m->start > (64u << 20))
			continue;   /* sanitizer shadow and the like */
		if (copy_region(&im, child, lo, m->end))
			fprintf(stderr, "could not copy 0x%llx-0x%llx\n", (unsigned long long)lo,
				(unsigned long long)m->end);
	}
	img_finish(&im);
	CHECK_EQ(ptrace(PTRACE_DETACH, child, 0, 0), 0);
	/* from here on only the copy (and the files on disk) */

	c.threads = calloc(1, sizeof *c.threads);
	c.n_threads = 1;
	hs_thread *t = &c.threads[0];
	t->tid = child;
	memcpy(t->regs, &regs, sizeof t->regs);
	t->regs_valid = 1;
	t->sp = regs.rsp;
	t->pc = regs.rip;
	t->callsite = -1;

	char root[64];
	snprintf(root, sizeof root, "/proc/%d/root", (int)child);
	CHECK_EQ(pm_read_process(child, &c), 0);
	CHECK_EQ(mod_collect(&c, root), 0);
	pm_classify(&c);
	CHECK(t->stack_hi > t->sp);

	/* the raw backtrace */
	uint64_t pcs[UW_MAX_FRAMES];
	int stop = 99;
	int n = uw_backtrace(&im, &c, root, t, pcs, UW_MAX_FRAMES, &stop);
	for (int i = 0; i < n; i++) {
		int mi = mod_find(&c, pcs[i]);
		fprintf(stderr, "  #%d 0x%llx %s\n", i, (unsigned long long)pcs[i],
			mi >= 0 ? c.modules[mi].path : "?");
	}
	fprintf(stderr, "  stop: %s\n", uw_strerror(stop));
	CHECK(n >= 6);
	CHECK_EQ(stop, 0);
	CHECK_EQ(pcs[0], regs.rip);

	/* the same through our own index of .eh_frame (static executables have no
	 * .eh_frame_hdr) */
	uint64_t pcs2[UW_MAX_FRAMES];
	int stop2 = 99;
	uw_set_ignore_eh_frame_hdr(1);
	int n2 = uw_backtrace(&im, &c, root, t, pcs2, UW_MAX_FRAMES, &stop2);
	uw_set_ignore_eh_frame_hdr(0);
	CHECK_EQ(n2, n);
	CHECK_EQ(stop2, 0);
	for (int i = 0; i < n; i++)
		CHECK_EQ(pcs2[i], pcs[i]);

	/* a frame limit is an error, not a complete stack */
	CHECK_EQ(uw_backtrace(&im, &c, root, t, pcs2, 3, &stop2), 3);
	CHECK_EQ(stop2, UW_E_DEPTH);

	/* symbolized */
	sym_session *sy = sym_open(&c, root);
	CHECK(sy);
	CHECK_EQ(uw_unwind_threads(&im, &c, sy), 0);
	CHECK_EQ(t->unwind_error, 0);
	CHECK(t->callsite >= 0);

	int chain[UW_MAX_FRAMES * 4];
	int depth = 0;
	for (int cs = t->callsite; cs >= 0 && depth < (int)(sizeof chain / sizeof chain[0]);
	     cs = c.callsites[cs].parent)
		chain[depth++] = cs;
	for (int i = 0; i < depth; i++) {
		const hs_frame *f = &c.frames[c.callsites[chain[i]].frame];
		fprintf(stderr, "  %2d %-28s %s:%d inl %d mod %d rel 0x%llx\n", i,
			f->function ? f->function : "??", f->file ? f->file : "?", f->line,
			f->inline_depth, f->module_idx, (unsigned long long)f->rel_pc);
	}
	CHECK_EQ(c.callsites[chain[depth - 1]].depth, 0);
	CHECK_EQ(c.callsites[chain[0]].depth, depth - 1);

	int ic = -1;
	for (int i = 0; i < depth; i++)
		if (frame_fn(&c, chain[i]) && !strcmp(frame_fn(&c, chain[i]), "level_c")) {
			ic = i;
			break;
		}
	CHECK(ic >= 1);   /* libc's pause is inside it */
	CHECK(ic + 4 < depth);
	static const char *const names[] = { "level_c", "inl_helper", "level_b", "level_a", "main" };
	const int want_line[] = { lines[4], lines[3], lines[2], lines[1], lines[0] };
	for (int k = 0; k < 5; k++) {
		const hs_frame *f = &c.frames[c.callsites[chain[ic + k]].frame];
		CHECK_STR(f->function, names[k]);
		CHECK(f->file && strstr(f->file, "test_unwind.c"));
		CHECK_EQ(f->line, want_line[k]);
		CHECK_EQ(f->inline_depth, k == 1 ? 1 : 0);
		CHECK(f->module_idx >= 0 && c.modules[f->module_idx].is_main);
		CHECK_EQ(f->rel_pc, f->pc - c.modules[f->module_idx].load_base);
	}
	/* the inlined frame and the frame it is inlined in share the pc */
	CHECK_EQ(c.frames[c.callsites[chain[ic + 1]].frame].pc,
		 c.frames[c.callsites[chain[ic + 2]].frame].pc);

	/* libc frames: the innermost one (pause) and the ones below main */
	const hs_frame *f0 = &c.frames[c.callsites[chain[0]].frame];
	CHECK(f0->module_idx >= 0);
	CHECK(strstr(c.modules[f0->module_idx].path, "libc.so"));
	CHECK_EQ(f0->rel_pc, regs.rip - c.modules[f0->module_idx].load_base);
	CHECK_EQ(f0->pc, regs.rip);
	CHECK(ic + 5 < depth);
	const hs_frame *fb = &c.frames[c.callsites[chain[ic + 5]].frame];
	CHECK(fb->module_idx >= 0);
	CHECK(strstr(c.modules[fb->module_idx].path, "libc.so"));
	CHECK_EQ(fb->rel_pc, fb->pc - c.modules[fb->module_idx].load_base);

	/* interning: the same stack again gives the same callsite and no new frames */
	size_t nf = c.n_frames, ncs = c.n_callsites;
	long again = sym_callsite_for_stack(sy, &c, pcs, n);
	CHECK_EQ(again, t->callsite);
	CHECK_EQ(c.n_frames, nf);
	CHECK_EQ(c.n_callsites, ncs);

	sym_close(sy);
	img_release(&im);
	hs_capture_free(&c);
	kill_child();
}

/* An unwind with nothing copied stops with an error instead of inventing frames. */
static void test_empty_image(void)
{
	hs_capture c;
	hs_capture_init(&c);
	c.threads = calloc(1, sizeof *c.threads);
	c.n_threads = 1;
	c.threads[0].regs_valid = 1;
	c.threads[0].pc = c.threads[0].regs[16] = 0x401000;
	c.threads[0].sp = c.threads[0].regs[19] = 0x7ffc00000000;
	c.threads[0].regs[4] = 0x7ffc00000100;   /* rbp into memory that was not copied */
	img_image im;
	img_init(&im);
	uint64_t pcs[8];
	int stop = 0;
	int n = uw_backtrace(&im, &c, "", &c.threads[0], pcs, 8, &stop);
	CHECK_EQ(n, 1);
	CHECK_EQ(stop, UW_E_BADPC);
	c.threads[0].regs_valid = 0;
	CHECK(uw_backtrace(&im, &c, "", &c.threads[0], pcs, 8, &stop) < 0);
	CHECK_EQ(stop, UW_E_NOREGS);
	sym_session *sy = sym_open(&c, "");
	CHECK(sy);
	CHECK_EQ(uw_unwind_threads(&im, &c, sy), 0);
	CHECK_EQ(c.threads[0].callsite, -1);
	CHECK_EQ(c.threads[0].unwind_error, UW_E_NOREGS);
	/* a pc in no module: still a frame, with the absolute pc */
	long f = sym_frame_for_pc(sy, &c, 0x1234, 1, NULL);
	CHECK(f >= 0);
	CHECK_EQ(c.frames[f].module_idx, -1);
	CHECK_EQ(c.frames[f].rel_pc, 0x1234);
	CHECK(!c.frames[f].function);
	sym_close(sy);
	img_release(&im);
	hs_capture_free(&c);
}

/* Code without CFI (JIT-like, an anonymous r-x mapping): the rbp chain is followed, and
 * a chain that ends without CFI saying so is reported, not passed off as complete. */
static void test_frame_pointers(void)
{
	hs_capture c;
	hs_capture_init(&c);
	const uint64_t code = 0x10000000, stk = 0x7ff000000000;
	mc_vmas v = { 0 };
	v.v = calloc(2, sizeof *v.v);
	v.n = v.cap = 2;
	v.v[0] = (mc_vma){ .lo = code, .hi = code + 0x1000, .perms = "r-xp" };
	v.v[1] = (mc_vma){ .lo = stk, .hi = stk + 0x10000, .perms = "rw-p" };
	CHECK_EQ(pm_maps_from_vmas(&c, &v), 0);
	free(v.v);

	uint64_t words[0x1000 / 8];
	memset(words, 0, sizeof words);
	const uint64_t lo = stk + 0xf000;          /* rsp */
#define W(addr) words[((addr) - lo) / 8]
	W(lo + 0x100) = lo + 0x200;                /* frame 1: saved rbp */
	W(lo + 0x108) = code + 0x100;              /*          return address */
	W(lo + 0x200) = 0;                         /* frame 2: end of the chain */
	W(lo + 0x208) = code + 0x200;
	img_image im;
	img_init(&im);
	CHECK_EQ(img_add_bytes(&im, lo, words, sizeof words), 0);

	c.threads = calloc(1, sizeof *c.threads);
	c.n_threads = 1;
	hs_thread *t = &c.threads[0];
	t->regs_valid = 1;
	t->pc = t->regs[16] = code + 0x50;
	t->sp = t->regs[19] = lo;
	t->regs[4] = lo + 0x100;
	pm_classify(&c);

	uint64_t pcs[16];
	int stop = 0;
	int n = uw_backtrace(&im, &c, "", t, pcs, 16, &stop);
	CHECK_EQ(n, 3);
	CHECK_EQ(pcs[0], code + 0x50);
	CHECK_EQ(pcs[1], code + 0x100);
	CHECK_EQ(pcs[2], code + 0x200);
	CHECK_EQ(stop, UW_E_NOINFO);

	/* a chain that loops back on itself */
	W(lo + 0x200) = lo + 0x100;
	img_release(&im);
	img_init(&im);
	CHECK_EQ(img_add_bytes(&im, lo, words, sizeof words), 0);
	n = uw_backtrace(&im, &c, "", t, pcs, 16, &stop);
	CHECK(n >= 1 && n < 16);
	CHECK_EQ(stop, UW_E_LOOP);

	/* a return address outside code ends the walk */
	W(lo + 0x200) = 0;
	W(lo + 0x208) = 0x12345678;
	img_release(&im);
	img_init(&im);
	CHECK_EQ(img_add_bytes(&im, lo, words, sizeof words), 0);
	n = uw_backtrace(&im, &c, "", t, pcs, 16, &stop);
	CHECK_EQ(n, 2);
	CHECK_EQ(stop, UW_E_BADPC);
#undef W
	img_release(&im);
	hs_capture_free(&c);
}

/* C++ names come out demangled (libstdc++ is linked in for __cxa_demangle). */
static void test_demangle(void)
{
	void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL);
	CHECK(h);
	void *term = dlsym(h, "_ZSt9terminatev");
	void *dtor = dlsym(h, "_ZNSt9exceptionD2Ev");
	CHECK(term && dtor);

	hs_capture c;
	hs_capture_init(&c);
	mc_vmas v;
	CHECK_EQ(tu_read_maps(getpid(), &v), 0);
	CHECK_EQ(pm_maps_from_vmas(&c, &v), 0);
	tu_free_maps(&v);
	CHECK_EQ(pm_read_process(getpid(), &c), 0);
	CHECK_EQ(mod_collect(&c, ""), 0);
	sym_session *sy = sym_open(&c, "");
	CHECK(sy);
	long f = sym_frame_for_pc(sy, &c, (uint64_t)(uintptr_t)term, 0, NULL);
	CHECK(f >= 0);
	CHECK_STR(c.frames[f].function, "std::terminate()");
	CHECK_EQ(c.frames[f].func_offset, 0);
	CHECK(c.frames[f].module_idx >= 0);
	CHECK(strstr(c.modules[c.frames[f].module_idx].path, "libstdc++"));
	f = sym_frame_for_pc(sy, &c, (uint64_t)(uintptr_t)dtor + 1, 0, NULL);
	CHECK_STR(c.frames[f].function, "std::exception::~exception()");
	CHECK_EQ(c.frames[f].func_offset, 1);
	/* a C name stays as it is; interning by pc */
	long g = sym_frame_for_pc(sy, &c, (uint64_t)(uintptr_t)&level_a, 0, NULL);
	CHECK_STR(c.frames[g].function, "level_a");
	CHECK_EQ(sym_frame_for_pc(sy, &c, (uint64_t)(uintptr_t)&level_a, 0, NULL), g);
	sym_close(sy);
	hs_capture_free(&c);
	dlclose(h);
}

int main(void)
{
	(void)check_failures;
	/* the child's chain starts in main itself */
	int pfd[2];
	CHECK_EQ(pipe(pfd), 0);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a crashed test */
		close(pfd[0]);
		ready_fd = pfd[1];
		line_main = __LINE__; int r = level_a(3);
		_exit(r & 1);
	}
	atexit(kill_child);
	close(pfd[1]);

	test_empty_image();
	test_frame_pointers();
	test_demangle();
	test_child_backtrace(pfd[0]);
	printf("unwind: ok\n");
	return 0;
}
