/* test_root_frames.c -- where ps_scan says a stack or TLS root came from, on a synthetic
 * capture with hand-placed stacks, return addresses and TLS (no process behind it):
 *   - each stack root's frame (root.frame_no, root.frame_id): frame k holds the words
 *     from just above the return address into frame k (frame 0: from below sp, the red
 *     zone included) up to and including the return address into frame k + 1; inlined
 *     levels do not count as frames; the outermost frame owns the rest of the stack only
 *     when the unwind was complete; a return address missing from the stack leaves the
 *     frames from there on unknown;
 *   - TLS: a static TLS word below fs_base, and the DTV of a thread lying outside
 *     malloc's memory (its dynamic TLS entry points into a chunk), are TLS roots of that
 *     thread, not "other" ones;
 * then written by sw_write and named by gl_root_source as `heapsnap path` names them.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "heap_fixture.h"
#include "graph.h"
#include "graph_labels.h"
#include "model.h"
#include "ptrscan.h"
#include "snapshot.h"
#include "snapwrite.h"
#include "unwind.h"

#define HEAP 0x100000000ull
#define NCH 8
#define CH(i) (HEAP + 64ull * (i))   /* chunk i: 64 bytes, user pointer CH(i) + 16 */
#define STK(t) (0x7ff000000000ull + 0x10000ull * (t))   /* thread t's stack, 4 KiB */
#define SP(t) (STK(t) + 0x800)
#define TLSR 0x7fe000000000ull       /* thread 0's TCB region, 4 KiB */
#define FS (TLSR + 0x800)
#define DTVR 0x7fd000000000ull       /* thread 0's DTV, in an anonymous mapping */

/* return addresses into frames 1, 2, 3 */
#define RA1 0x402005ull
#define RA2 0x403007ull
#define RA3 0x404009ull

static long add_frame(hs_capture *c, const char *fn, uint64_t pc, int line, int inline_depth)
{
	hs_frame f = { .module_idx = -1, .rel_pc = pc, .pc = pc, .function = strdup(fn),
		       .file = strdup("src/x.c"), .line = line, .inline_depth = inline_depth };
	CHECK(f.function && f.file);
	long i = hs_add_frame(c, &f);
	CHECK(i >= 0);
	return i;
}

/* the backtrace leaf <- (inl2 <- inl1 inlined in) mid <- outer <- start, built as
 * symbols.c builds it: outermost first, a frame's real function before its inlined levels */
static int backtrace(hs_capture *c)
{
	long start = add_frame(c, "start", RA3, 40, 0);
	long outer = add_frame(c, "outer", RA2, 30, 0);
	long mid = add_frame(c, "mid", RA1, 20, 0);
	long inl1 = add_frame(c, "inl1", RA1, 21, 1);
	long inl2 = add_frame(c, "inl2", RA1, 22, 2);
	long leaf = add_frame(c, "leaf", 0x401000, 10, 0);
	long cs = -1;
	int depth = 0;
	long order[] = { start, outer, mid, inl1, inl2, leaf };
	for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
		cs = hs_add_callsite(c, (int)cs, (int)order[i], depth++);
		CHECK(cs >= 0);
	}
	return (int)cs;
}

static void add_map(hs_capture *c, uint64_t start, uint64_t end, enum hs_map_kind kind, int tid)
{
	sc_map(c, start, end, kind)->tid = tid;
}

/* a stack root's row: frame_no (-1 for NULL) and the function (NULL for none) */
static int64_t frame_of(sqlite3 *db, int tid, uint64_t slot, char *fn, size_t n)
{
	sqlite3_stmt *st;
	CHECK_EQ(sqlite3_prepare_v2(db, "SELECT r.frame_no, f.function, r.frame_id IS NULL "
				    "FROM root r LEFT JOIN frame f ON f.id = r.frame_id "
				    "WHERE r.kind = 1 AND r.tid = ? AND r.slot = ?", -1, &st, NULL),
		 SQLITE_OK);
	sqlite3_bind_int(st, 1, tid);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)slot);
	CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
	int64_t k = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	const char *f = (const char *)sqlite3_column_text(st, 1);
	snprintf(fn, n, "%s", f ? f : "(none)");
	CHECK_EQ(sqlite3_column_int(st, 2), k < 0);   /* frame_id NULL exactly with frame_no */
	CHECK_EQ(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	return k;
}

/* the one integer a query returns */
static int64_t one(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	CHECK_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	CHECK_EQ(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	return v;
}

/* the id of the one root of that kind, thread, slot (and chunk, when dst is not 0) */
static int64_t root_id(sqlite3 *db, int kind, int tid, uint64_t slot, uint64_t dst)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT id FROM root WHERE kind = %d AND tid = %d AND "
		 "slot = %llu AND (%llu = 0 OR dst = %llu)", kind, tid, (unsigned long long)slot,
		 (unsigned long long)dst, (unsigned long long)dst);
	return one(db, sql);
}

int main(void)
{
	char path[] = "/tmp/test_root_frames_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);

	/* three threads with the same backtrace: 0 complete, 1 stopped early (no unwind
	 * info past the outermost frame found), 2 with the return address into frame 2
	 * missing from its stack */
	uint64_t heap[NCH * 8] = { 0 };
	uint64_t stk[3][512];
	memset(stk, 0, sizeof stk);
	/* word index of an address on thread t's stack */
#define W(t, a) stk[t][((a) - STK(t)) / 8]
	for (int t = 0; t < 3; t++) {
		W(t, SP(t) + 0x18) = RA1;                   /* frame 0 = [.., sp + 0x20) */
		if (t != 2)
			W(t, SP(t) + 0x78) = RA2;           /* frame 1 = [sp + 0x20, sp + 0x80) */
		W(t, SP(t) + 0x100) = RA3;                  /* frame 2 = [sp + 0x80, sp + 0x108) */
		W(t, SP(t) - 0x10) = CH(1) + 16;            /* red zone: frame 0 */
		W(t, SP(t) + 0x8) = CH(1) + 16;             /* frame 0 */
		W(t, SP(t) + 0x20) = CH(2) + 16;            /* frame 1, its lowest word */
		W(t, SP(t) + 0x70) = CH(2) + 24;            /* frame 1, interior */
		W(t, SP(t) + 0x80) = CH(3) + 16;            /* frame 2 */
		W(t, SP(t) + 0x108) = CH(4) + 16;           /* frame 3, its lowest word */
		W(t, SP(t) + 0x600) = CH(4) + 16;           /* frame 3: the rest of the stack */
	}
	/* thread 0's TLS: the TCB at FS (dtv at FS + 8), one static block at FS - 0x100
	 * holding a pointer at FS - 8; its DTV in an anonymous mapping, entry 2 a dynamic
	 * TLS block (chunk 6) */
	uint64_t tls[512] = { 0 }, dtv[8] = { 0 };
	tls[(FS + 8 - TLSR) / 8] = DTVR + 16;
	tls[(FS - 8 - TLSR) / 8] = CH(5) + 16;
	dtv[0] = 2;                  /* dtv[-1] (16-byte entries; dtv = DTVR + 16): its length */
	dtv[2] = 1;                  /* dtv[0]: generation */
	dtv[4] = FS - 0x100;         /* dtv[1]: the static block */
	dtv[6] = CH(6) + 16;         /* dtv[2]: a dynamic block */

	img_image im;
	img_init(&im);
	CHECK(img_add_bytes(&im, HEAP, heap, sizeof heap) == 0);
	/* the capture copies a stack from sp - 128 up */
	for (int t = 0; t < 3; t++)
		CHECK(img_add_bytes(&im, SP(t) - 0x80, &W(t, SP(t) - 0x80),
				    sizeof stk[t] - (SP(t) - 0x80 - STK(t))) == 0);
	CHECK(img_add_bytes(&im, TLSR, tls, sizeof tls) == 0);
	CHECK(img_add_bytes(&im, DTVR, dtv, sizeof dtv) == 0);
	img_finish(&im);

	hs_capture c;
	sc_init(&c, 8);
	for (int i = 0; i < NCH; i++)
		sc_chunk(&c, CH(i), 64, 1);
	add_map(&c, HEAP, HEAP + sizeof heap, HS_MAP_HEAP, 0);
	add_map(&c, DTVR, DTVR + sizeof dtv, HS_MAP_ANON, 0);
	add_map(&c, TLSR, TLSR + sizeof tls, HS_MAP_ANON, 0);
	for (int t = 0; t < 3; t++)
		add_map(&c, STK(t), STK(t) + sizeof stk[t], HS_MAP_STACK, 100 + t);
	int cs = backtrace(&c);
	c.threads = calloc(3, sizeof *c.threads);
	CHECK(c.threads);
	c.n_threads = 3;
	for (int t = 0; t < 3; t++) {
		hs_thread *th = &c.threads[t];
		th->tid = 100 + t;
		th->regs_valid = 1;
		th->sp = th->regs[19] = SP(t);
		th->pc = th->regs[16] = 0x401000;
		th->stack_lo = STK(t);
		th->stack_hi = STK(t) + sizeof stk[t];
		th->callsite = cs;
		th->syscall_nr = -1;
	}
	c.threads[0].fs_base = FS;
	c.threads[1].unwind_error = UW_E_NOINFO;

	ps_options po = { .root = "", .no_types = 1 };
	CHECK_EQ(ps_scan(&im, &c, &po, &c.graph), 0);
	sc_write(&c, path);
	char err[512] = "";

	sqlite3 *db;
	CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
	char fn[64];
	/* every stack word pointing into a chunk is a root */
	for (int t = 0; t < 3; t++) {
		char sql[128];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM root WHERE kind = 1 AND tid = %d",
			 100 + t);
		CHECK_EQ(one(db, sql), 7);
	}
	/* thread 0: complete */
	static const struct { int64_t off; int frame; } want[] = {
		{ -0x10, 0 }, { 0x8, 0 }, { 0x20, 1 }, { 0x70, 1 }, { 0x80, 2 }, { 0x108, 3 },
		{ 0x600, 3 },
	};
	static const char *const names[] = { "leaf", "mid", "outer", "start" };
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		int64_t k = frame_of(db, 100, SP(0) + (uint64_t)want[i].off, fn, sizeof fn);
		CHECK_EQ(k, want[i].frame);
		CHECK_STR(fn, names[want[i].frame]);
	}
	/* thread 1: the unwind stopped early: the last frame's extent is unknown */
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		int64_t k = frame_of(db, 101, SP(1) + (uint64_t)want[i].off, fn, sizeof fn);
		CHECK_EQ(k, want[i].frame == 3 ? -1 : want[i].frame);
	}
	/* thread 2: no return address into frame 2: frame 1 has no end, nothing above is known */
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		int64_t k = frame_of(db, 102, SP(2) + (uint64_t)want[i].off, fn, sizeof fn);
		CHECK_EQ(k, want[i].frame == 0 ? 0 : -1);
	}
	/* TLS of thread 0: the static word and the DTV entry, nothing left as "other" */
	int64_t tls_static = root_id(db, 3, 100, FS - 8, CH(5));
	char where[160];
	snprintf(where, sizeof where, "SELECT offset FROM root WHERE id = %lld", (long long)tls_static);
	CHECK_EQ(one(db, where), -8);
	int64_t tls_dtv = root_id(db, 3, 100, DTVR + 48, CH(6));
	CHECK_EQ(one(db, "SELECT count(*) FROM root WHERE kind = 4 OR "
		     "(kind != 1 AND frame_no IS NOT NULL)"), 0);
	int64_t stack_mid = root_id(db, 1, 100, SP(0) + 0x70, 0);
	int64_t stack_red = root_id(db, 1, 100, SP(0) - 0x10, 0);
	int64_t stack_unknown = root_id(db, 1, 102, SP(2) + 0x80, 0);
	sqlite3_close(db);

	/* the names `heapsnap path` and `show` give them */
	snap *s = NULL;
	CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
	char buf[256];
	CHECK_STR(gl_root_source(s, stack_mid, buf, sizeof buf),
		  "thread 100 stack sp+0x70 frame #1 mid (x.c:20)");
	CHECK_STR(gl_root_source(s, stack_red, buf, sizeof buf),
		  "thread 100 stack sp-0x10 frame #0 leaf (x.c:10)");
	CHECK_STR(gl_root_source(s, stack_unknown, buf, sizeof buf), "thread 102 stack sp+0x80");
	CHECK_STR(gl_root_source(s, tls_static, buf, sizeof buf), "thread 100 tls-0x8");
	snprintf(where, sizeof where, "thread 100 tls-0x%llx",
		 (unsigned long long)(FS - (DTVR + 48)));
	CHECK_STR(gl_root_source(s, tls_dtv, buf, sizeof buf), where);
	CHECK(gl_root_source(s, 999999, buf, sizeof buf) == NULL);
	/* a short buffer truncates, never overflows */
	char tiny[12];
	CHECK_STR(gl_root_source(s, stack_mid, tiny, sizeof tiny), "thread 100 ");
	snap_close(s);

	unlink(path);
	hs_capture_free(&c);
	img_release(&im);
	printf("ok\n");
	return 0;
}
