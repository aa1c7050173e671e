/* synth_capture.h -- a synthetic hs_capture with every table of the snapshot filled,
 * for the writer and analyzer tests: 2 modules, 5 mappings (smaps fields, extra keys,
 * a hostile path), 3 frames and callsites, 2 threads (registers, tcache holdings,
 * hostile names), 2 arenas (one with a heap and a note), chunks of every state given
 * out of address order, mmapped chunks, and a process whose comm and argv hold
 * quotes, newlines, invalid UTF-8 and "<script>". Included by one .c file each.
 */
#ifndef HEAPSNAP_SYNTH_CAPTURE_H
#define HEAPSNAP_SYNTH_CAPTURE_H
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model.h"

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	CHECK(d);
	return d;
}

static const char *const ARGV[] = {
	"demo", "--name=\"quoted\"", "two\nlines", "tab\there", "back\\slash", "\xc3\xbcnic\xc3\xb6" "de",
	"bad\xff\xfe" "bytes", "", "<script>alert(1)</script>",
};
#define NARGV (sizeof ARGV / sizeof *ARGV)
static const char COMM[] = "<script>\"x\"</script>";

#define MAIN_ARENA 0x7f0000001000ull
#define ARENA2     0x7e0000000020ull

static void add_chunk(hs_capture *c, uint64_t addr, uint64_t size, int state, int internal, int arena)
{
	hs_chunk ch = { .addr = addr, .size = size, .state = (uint8_t)state,
			.internal = (uint8_t)internal, .mmapped = arena < 0, .arena = arena };
	CHECK(hs_add_chunk(c, &ch) >= 0);
}

static void build(hs_capture *c)
{
	hs_capture_init(c);
	hs_process *p = &c->proc;
	p->pid = 4242;
	p->ppid = 1;
	p->uid = 1000;
	p->gid = 1001;
	p->exe = xstrdup("/usr/bin/demo");
	p->argc = NARGV;
	p->argv = calloc(NARGV, sizeof *p->argv);
	CHECK(p->argv);
	for (size_t i = 0; i < NARGV; i++)
		p->argv[i] = xstrdup(ARGV[i]);
	memcpy(p->comm, COMM, sizeof COMM);
	p->start_ticks = 123456;
	p->kernel = xstrdup("6.1.0-test");
	p->page_size = 4096;
	p->capture_time_us = 1714566896123456ull;
	p->vm_size_kb = 100000;
	p->vm_rss_kb = 20000;
	p->rss_anon_kb = 15000;
	p->rss_file_kb = 4000;
	p->rss_shmem_kb = 1000;
	p->vm_swap_kb = -1;           /* absent: NULL */
	p->vm_peak_kb = 110000;
	p->vm_hwm_kb = 21000;
	p->vm_data_kb = 50000;
	p->vm_stk_kb = 132;

	c->freeze = (hs_freezeinfo){ .pause_us = 1234, .freeze_us = 100, .safepoint_us = 200,
				     .copy_us = 900, .copy_bytes = 1 << 20, .attempts = 2,
				     .threads_ran_out = 1, .threads_in_flux = 0 };
	c->tool_version = xstrdup("0.1.0-test");

	hs_heapinfo *h = &c->heap;
	h->found = 1;
	h->note = xstrdup("a remark");
	h->glibc_version = xstrdup("2.36");
	h->used_debug_symbols = 1;
	h->main_arena = MAIN_ARENA;
	h->mp = 0x7f0000002000ull;
	h->tcache_tls_offset = 0x48;
	h->mp_n_mmaps = 1;
	h->mp_mmapped_mem = 0x21000;
	h->mp_mmap_threshold = 131072;
	h->mp_trim_threshold = 131072;
	h->mp_arena_max = 0;
	h->mp_tcache_bins = 64;
	h->mp_tcache_count = 7;

	c->n_modules = 2;
	c->modules = calloc(2, sizeof *c->modules);
	CHECK(c->modules);
	c->modules[0] = (hs_module){ .path = xstrdup("/usr/bin/demo"), .build_id = xstrdup("abcdef01"),
				     .load_base = 0x555500000000ull, .start = 0x555500000000ull,
				     .end = 0x555500005000ull, .is_main = 1, .has_debuginfo = 1 };
	c->modules[1] = (hs_module){ .path = xstrdup("/lib/x86_64-linux-gnu/libc.so.6"), .build_id = NULL,
				     .load_base = 0x7f0000100000ull, .start = 0x7f0000100000ull,
				     .end = 0x7f0000300000ull, .is_main = 0, .has_debuginfo = 0 };

	c->n_maps = 5;
	c->maps = calloc(5, sizeof *c->maps);
	CHECK(c->maps);
	for (size_t i = 0; i < 5; i++) {
		hs_mapping *m = &c->maps[i];
		for (int f = 0; f < HS_SM_COUNT; f++)
			m->sm[f] = (int64_t)(i * 100 + f);
		m->module_idx = -1;
		strcpy(m->perms, "rw-p");
		strcpy(m->dev, "00:00");
	}
	c->maps[0].start = 0x555500000000ull; c->maps[0].end = 0x555500002000ull;
	strcpy(c->maps[0].perms, "r-xp"); strcpy(c->maps[0].dev, "fd:01");
	c->maps[0].inode = 77; c->maps[0].offset = 0x1000;
	c->maps[0].path = xstrdup("/usr/bin/demo"); c->maps[0].kind = HS_MAP_MODULE_TEXT;
	c->maps[0].module_idx = 0; c->maps[0].vmflags = xstrdup("rd ex mr mw me dw");
	c->maps[1].start = 0x555500100000ull; c->maps[1].end = 0x555500200000ull;
	c->maps[1].path = xstrdup("[heap]"); c->maps[1].kind = HS_MAP_HEAP;
	c->maps[1].sm[HS_SM_KSM] = -1;       /* absent on this kernel */
	c->maps[1].n_extra = 2;
	c->maps[1].extra = calloc(2, sizeof(hs_kv));
	CHECK(c->maps[1].extra);
	strcpy(c->maps[1].extra[0].key, "ProtectionKey");
	c->maps[1].extra[0].value = 3;
	strcpy(c->maps[1].extra[1].key, "NewThing");
	c->maps[1].extra[1].value = -5;
	c->maps[2].start = 0x7e0000000000ull; c->maps[2].end = 0x7e0000021000ull;
	c->maps[2].kind = HS_MAP_ARENA_HEAP;
	c->maps[3].start = 0x7ffc00000000ull; c->maps[3].end = 0x7ffc00021000ull;
	c->maps[3].path = xstrdup("[stack]"); c->maps[3].kind = HS_MAP_STACK; c->maps[3].tid = 4242;
	c->maps[4].start = 0x7f0000500000ull; c->maps[4].end = 0x7f0000d00000ull;
	c->maps[4].path = xstrdup("weird\npath\x1b[31m"); c->maps[4].kind = HS_MAP_STACK;
	c->maps[4].tid = 4243;

	hs_frame f0 = { .module_idx = 0, .rel_pc = 0x1234, .pc = 0x555500001234ull,
			.function = xstrdup("main"), .func_offset = 0x34, .file = xstrdup("demo.c"),
			.line = 42, .inline_depth = 0 };
	hs_frame f1 = { .module_idx = 1, .rel_pc = 0x9999, .pc = 0x7f0000109999ull,
			.function = xstrdup("std::vector<int>::push_back(int const&)"), .func_offset = 9 };
	hs_frame f2 = { .module_idx = -1, .rel_pc = 0xdeadbeef, .pc = 0xdeadbeef };
	CHECK_EQ(hs_add_frame(c, &f0), 0);
	CHECK_EQ(hs_add_frame(c, &f1), 1);
	CHECK_EQ(hs_add_frame(c, &f2), 2);
	CHECK_EQ(hs_add_callsite(c, -1, 0, 0), 0);
	CHECK_EQ(hs_add_callsite(c, 0, 1, 1), 1);
	CHECK_EQ(hs_add_callsite(c, 1, 2, 2), 2);

	c->n_threads = 2;
	c->threads = calloc(2, sizeof *c->threads);
	CHECK(c->threads);
	hs_thread *t = &c->threads[0];
	t->tid = 4242;
	strcpy(t->name, "demo");
	t->state = 'S';
	t->regs_valid = 1;
	for (int r = 0; r < HS_NREGS; r++)
		t->regs[r] = 0x1000ull * (uint64_t)(r + 1);
	t->regs[0] = 0xffffffffffffffffull;  /* stored as -1, read back masked */
	t->pc = 0x555500001234ull;
	t->sp = 0x7ffc00020000ull;
	t->fs_base = 0x7f0000400000ull;
	t->safepoint = HS_SP_RAN_OUT;
	t->syscall_nr = 7;
	t->stack_lo = 0x7ffc00000000ull;
	t->stack_hi = 0x7ffc00021000ull;
	t->tcache = MAIN_ARENA + 0x10000;
	t->arena = MAIN_ARENA;
	t->callsite = 2;
	t->tcache_count[0] = 2;
	t->tcache_bytes[0] = 64;
	t->tcache_count[3] = 1;
	t->tcache_bytes[3] = 80;
	t = &c->threads[1];
	t->tid = 4243;
	strcpy(t->name, "worker\x1b]0;x");
	t->state = 'R';
	t->was_stopped = 1;
	t->regs_valid = 0;
	t->safepoint = HS_SP_UNKNOWN;
	t->syscall_nr = -1;
	t->arena = ARENA2;
	t->callsite = -1;
	t->unwind_error = -3;

	c->n_arenas = 2;
	c->arenas = calloc(2, sizeof *c->arenas);
	CHECK(c->arenas);
	hs_arena *a = &c->arenas[0];
	a->addr = MAIN_ARENA;
	a->is_main = 1;
	a->top = 0x555500100000ull + 0x290 + 0x30 + 0x40 + 0x20 + 0x20;
	a->system_mem = 0x21000;
	a->max_system_mem = 0x21000;
	a->attached_threads = 1;
	a->list_bin_count = 1; a->list_bin_bytes = 0x40;
	a->list_fast_count = 1; a->list_fast_bytes = 0x20;
	a->top_size = 0x21000 - (0x290 + 0x30 + 0x40 + 0x20 + 0x20);
	a->consistent = 1;
	a = &c->arenas[1];
	a->addr = ARENA2;
	a->top = 0x7e0000000000ull + 0x8e0 + 0x100;
	a->system_mem = 0x21000;
	a->max_system_mem = 0x22000;
	a->mutex = 1;
	a->flags = 2;
	a->attached_threads = 1;
	a->n_heaps = 1;
	a->heaps = calloc(1, sizeof *a->heaps);
	CHECK(a->heaps);
	a->heaps[0] = (hs_heap){ .addr = 0x7e0000000000ull, .size = 0x21000, .mprotect_size = 0x21000 };
	a->top_size = 0x21000 - 0x8e0 - 0x100;
	a->consistent = 0;
	a->note = xstrdup("fastbin 2: chunk \"0x10\" outside\nthe heap");

	/* out of address order on purpose: the writer must sort */
	uint64_t b = 0x555500100000ull;
	add_chunk(c, 0x7e0000000000ull, 0x8e0, HS_CH_INTERNAL, HS_INT_HEAP_HEADER, 1);
	add_chunk(c, 0x7e0000000000ull + 0x8e0, 0x100, HS_CH_IN_USE, 0, 1);
	add_chunk(c, 0x7e0000000000ull + 0x9e0, 0x21000 - 0x9e0, HS_CH_TOP, 0, 1);
	add_chunk(c, b, 0x290, HS_CH_INTERNAL, HS_INT_TCACHE_STRUCT, 0);
	add_chunk(c, b + 0x290, 0x30, HS_CH_IN_USE, 0, 0);
	add_chunk(c, b + 0x2c0, 0x40, HS_CH_FREE_BIN, 0, 0);
	add_chunk(c, b + 0x300, 0x20, HS_CH_TCACHE, 0, 0);
	add_chunk(c, b + 0x320, 0x20, HS_CH_FASTBIN, 0, 0);
	add_chunk(c, b + 0x340, 0x21000 - 0x340, HS_CH_TOP, 0, 0);
	add_chunk(c, 0x7f0000600000ull, 0x1000, HS_CH_INTERNAL, HS_INT_MMAP_LEAD, -1);
	add_chunk(c, 0x7f0000601000ull, 0x20000, HS_CH_IN_USE, 0, -1);
}


/* the synthetic capture with n plausible chunks instead (address order, two arenas) */
static void build_big(hs_capture *c, size_t n)
{
	build(c);
	c->n_chunks = 0;
	uint64_t a = 0x555500100000ull;
	for (size_t i = 0; i < n; i++) {
		uint64_t size = 32 + 16 * (uint64_t)((i * 7919) % 24);
		int state = (i % 10 == 3) ? HS_CH_FREE_BIN : (i % 10 == 7) ? HS_CH_TCACHE : HS_CH_IN_USE;
		add_chunk(c, a, size, state, 0, i < n * 3 / 4 ? 0 : 1);
		a += size;
	}
}

#endif
