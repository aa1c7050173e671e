/* test_snapwrite.c -- the snapshot writer: a synthetic capture with every table filled
 * (hostile strings included) is written and read back field by field; the file mode,
 * application_id, user_version and mallinfo view are checked; failures (missing
 * directory, a constraint violation mid-write, a file size limit, every SQLite
 * allocation failing in turn) must leave neither a temp file nor a destination; and
 * the size per chunk is measured on 1M synthetic chunks.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "model.h"
#include "schema_sql.h"
#include "snapwrite.h"
#include "synth_capture.h"

/* ---------------------------------------------------------------- read-back helpers */
static sqlite3 *open_ro(const char *path)
{
	sqlite3 *db;
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	return db;
}

static sqlite3_stmt *q(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "prepare %s: %s\n", sql, sqlite3_errmsg(db));
		exit(1);
	}
	return st;
}

static int64_t q_i64(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = q(db, sql);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int q_isnull(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = q(db, sql);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	int v = sqlite3_column_type(st, 0) == SQLITE_NULL;
	sqlite3_finalize(st);
	return v;
}

static char textbuf[4096];
static const char *q_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = q(db, sql);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	const char *t = (const char *)sqlite3_column_text(st, 0);
	snprintf(textbuf, sizeof textbuf, "%s", t ? t : "(null)");
	sqlite3_finalize(st);
	return textbuf;
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int exists(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0;
}

/* ---------------------------------------------------------------- the checks */
static void check_contents(const char *path, const hs_capture *c)
{
	sqlite3 *db = open_ro(path);
	char sql[512];

	CHECK_EQ(q_i64(db, "PRAGMA application_id"), HS_APPLICATION_ID);
	CHECK_EQ(q_i64(db, "PRAGMA user_version"), HS_FORMAT_VERSION);
	CHECK_STR(q_text(db, "PRAGMA integrity_check"), "ok");

	/* process */
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM process"), 1);
	CHECK_EQ(q_i64(db, "SELECT pid FROM process"), 4242);
	CHECK_EQ(q_i64(db, "SELECT ppid FROM process"), 1);
	CHECK_EQ(q_i64(db, "SELECT uid FROM process"), 1000);
	CHECK_EQ(q_i64(db, "SELECT gid FROM process"), 1001);
	CHECK_STR(q_text(db, "SELECT exe FROM process"), "/usr/bin/demo");
	CHECK_STR(q_text(db, "SELECT comm FROM process"), COMM);
	CHECK_EQ(q_i64(db, "SELECT start_ticks FROM process"), 123456);
	CHECK_STR(q_text(db, "SELECT kernel FROM process"), "6.1.0-test");
	CHECK_STR(q_text(db, "SELECT glibc_version FROM process"), "2.36");
	CHECK_EQ(q_i64(db, "SELECT page_size FROM process"), 4096);
	CHECK_EQ(q_i64(db, "SELECT capture_time_us FROM process"), 1714566896123456LL);
	CHECK_EQ(q_i64(db, "SELECT vm_size_kb FROM process"), 100000);
	CHECK_EQ(q_i64(db, "SELECT vm_rss_kb FROM process"), 20000);
	CHECK_EQ(q_i64(db, "SELECT rss_anon_kb FROM process"), 15000);
	CHECK_EQ(q_i64(db, "SELECT rss_file_kb FROM process"), 4000);
	CHECK_EQ(q_i64(db, "SELECT rss_shmem_kb FROM process"), 1000);
	CHECK(q_isnull(db, "SELECT vm_swap_kb FROM process"));
	CHECK_EQ(q_i64(db, "SELECT vm_peak_kb FROM process"), 110000);
	CHECK_EQ(q_i64(db, "SELECT vm_hwm_kb FROM process"), 21000);
	CHECK_EQ(q_i64(db, "SELECT vm_data_kb FROM process"), 50000);
	CHECK_EQ(q_i64(db, "SELECT vm_stk_kb FROM process"), 132);
	/* the cmdline is a valid JSON array that decodes to argv (invalid UTF-8 as U+FFFD) */
	CHECK_EQ(q_i64(db, "SELECT json_valid(cmdline) FROM process"), 1);
	CHECK_EQ(q_i64(db, "SELECT json_array_length(cmdline) FROM process"), NARGV);
	for (size_t i = 0; i < NARGV; i++) {
		snprintf(sql, sizeof sql, "SELECT json_extract(cmdline, '$[%zu]') FROM process", i);
		const char *want = ARGV[i];
		if (strstr(want, "\xff"))
			want = "bad\xef\xbf\xbd\xef\xbf\xbd" "bytes";
		CHECK_STR(q_text(db, sql), want);
	}
	CHECK_STR(q_text(db, "SELECT cmdline FROM process"),
		  "[\"demo\",\"--name=\\\"quoted\\\"\",\"two\\u000alines\",\"tab\\u0009here\","
		  "\"back\\\\slash\",\"\xc3\xbcnic\xc3\xb6" "de\",\"bad\\ufffd\\ufffdbytes\",\"\","
		  "\"<script>alert(1)</script>\"]");

	/* capture */
	CHECK_STR(q_text(db, "SELECT tool_version FROM capture"), "0.1.0-test");
	CHECK_EQ(q_i64(db, "SELECT pause_us FROM capture"), 1234);
	CHECK_EQ(q_i64(db, "SELECT freeze_us FROM capture"), 100);
	CHECK_EQ(q_i64(db, "SELECT safepoint_us FROM capture"), 200);
	CHECK_EQ(q_i64(db, "SELECT copy_us FROM capture"), 900);
	CHECK_EQ(q_i64(db, "SELECT copy_bytes FROM capture"), 1 << 20);
	CHECK_EQ(q_i64(db, "SELECT attempts FROM capture"), 2);
	CHECK_EQ(q_i64(db, "SELECT threads_ran_out FROM capture"), 1);
	CHECK_EQ(q_i64(db, "SELECT threads_in_flux FROM capture"), 0);
	CHECK_EQ(q_i64(db, "SELECT heap_found FROM capture"), 1);
	CHECK_STR(q_text(db, "SELECT heap_note FROM capture"), "a remark");
	CHECK_EQ(q_i64(db, "SELECT debug_symbols FROM capture"), 1);
	CHECK_EQ(q_i64(db, "SELECT contents FROM capture"), 0);

	/* modules */
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM module"), c->n_modules);
	for (size_t i = 0; i < c->n_modules; i++) {
		const hs_module *m = &c->modules[i];
		sqlite3_stmt *st = q(db, "SELECT path, build_id, load_base, start, end, is_main,"
					 " has_debuginfo FROM module WHERE id = ?");
		sqlite3_bind_int64(st, 1, (int64_t)i + 1);
		CHECK(sqlite3_step(st) == SQLITE_ROW);
		CHECK_STR((const char *)sqlite3_column_text(st, 0), m->path);
		if (m->build_id)
			CHECK_STR((const char *)sqlite3_column_text(st, 1), m->build_id);
		else
			CHECK(sqlite3_column_type(st, 1) == SQLITE_NULL);
		CHECK_EQ(sqlite3_column_int64(st, 2), m->load_base);
		CHECK_EQ(sqlite3_column_int64(st, 3), m->start);
		CHECK_EQ(sqlite3_column_int64(st, 4), m->end);
		CHECK_EQ(sqlite3_column_int64(st, 5), m->is_main);
		CHECK_EQ(sqlite3_column_int64(st, 6), m->has_debuginfo);
		sqlite3_finalize(st);
	}

	/* mappings: every smaps column, in enum order, NULL where the model says absent */
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM mapping"), c->n_maps);
	for (size_t i = 0; i < c->n_maps; i++) {
		const hs_mapping *m = &c->maps[i];
		sqlite3_stmt *st = q(db, "SELECT * FROM mapping WHERE id = ?");
		sqlite3_bind_int64(st, 1, (int64_t)i + 1);
		CHECK(sqlite3_step(st) == SQLITE_ROW);
		CHECK_EQ(sqlite3_column_count(st), 11 + HS_SM_COUNT + 1);
		CHECK_EQ(sqlite3_column_int64(st, 1), m->start);
		CHECK_EQ(sqlite3_column_int64(st, 2), m->end);
		CHECK_STR((const char *)sqlite3_column_text(st, 3), m->perms);
		CHECK_EQ(sqlite3_column_int64(st, 4), m->offset);
		CHECK_STR((const char *)sqlite3_column_text(st, 5), m->dev);
		if (m->inode)
			CHECK_EQ(sqlite3_column_int64(st, 6), m->inode);
		else
			CHECK(sqlite3_column_type(st, 6) == SQLITE_NULL);
		if (m->path)
			CHECK_STR((const char *)sqlite3_column_text(st, 7), m->path);
		else
			CHECK(sqlite3_column_type(st, 7) == SQLITE_NULL);
		CHECK_EQ(sqlite3_column_int64(st, 8), m->kind);
		if (m->module_idx >= 0)
			CHECK_EQ(sqlite3_column_int64(st, 9), m->module_idx + 1);
		else
			CHECK(sqlite3_column_type(st, 9) == SQLITE_NULL);
		if (m->tid)
			CHECK_EQ(sqlite3_column_int64(st, 10), m->tid);
		else
			CHECK(sqlite3_column_type(st, 10) == SQLITE_NULL);
		for (int f = 0; f < HS_SM_COUNT; f++) {
			/* the column is named after the smaps key: check name and value */
			if (m->sm[f] < 0)
				CHECK(sqlite3_column_type(st, 11 + f) == SQLITE_NULL);
			else
				CHECK_EQ(sqlite3_column_int64(st, 11 + f), m->sm[f]);
		}
		if (m->vmflags)
			CHECK_STR((const char *)sqlite3_column_text(st, 11 + HS_SM_COUNT), m->vmflags);
		else
			CHECK(sqlite3_column_type(st, 11 + HS_SM_COUNT) == SQLITE_NULL);
		sqlite3_finalize(st);
		snprintf(sql, sizeof sql, "SELECT count(*) FROM mapping_extra WHERE mapping_id = %zu", i + 1);
		CHECK_EQ(q_i64(db, sql), m->n_extra);
		for (size_t k = 0; k < m->n_extra; k++) {
			snprintf(sql, sizeof sql, "SELECT value FROM mapping_extra WHERE mapping_id = %zu"
				 " AND key = '%s'", i + 1, m->extra[k].key);
			CHECK_EQ(q_i64(db, sql), m->extra[k].value);
		}
	}
	/* the smaps column order follows the enum: spot-check by name */
	CHECK_EQ(q_i64(db, "SELECT rss_kb FROM mapping WHERE id = 2"), c->maps[1].sm[HS_SM_RSS]);
	CHECK_EQ(q_i64(db, "SELECT swap_pss_kb FROM mapping WHERE id = 2"), c->maps[1].sm[HS_SM_SWAPPSS]);
	CHECK_EQ(q_i64(db, "SELECT thp_eligible FROM mapping WHERE id = 2"), c->maps[1].sm[HS_SM_THPELIGIBLE]);
	CHECK_EQ(q_i64(db, "SELECT private_hugetlb_kb FROM mapping WHERE id = 1"),
		 c->maps[0].sm[HS_SM_PRIVATE_HUGETLB]);
	CHECK(q_isnull(db, "SELECT ksm_kb FROM mapping WHERE id = 2"));

	/* frames and callsites */
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM frame"), c->n_frames);
	CHECK_STR(q_text(db, "SELECT function FROM frame WHERE id = 2"),
		  "std::vector<int>::push_back(int const&)");
	CHECK_EQ(q_i64(db, "SELECT module_id FROM frame WHERE id = 1"), 1);
	CHECK_EQ(q_i64(db, "SELECT rel_pc FROM frame WHERE id = 1"), 0x1234);
	CHECK_EQ(q_i64(db, "SELECT func_offset FROM frame WHERE id = 1"), 0x34);
	CHECK_STR(q_text(db, "SELECT file FROM frame WHERE id = 1"), "demo.c");
	CHECK_EQ(q_i64(db, "SELECT line FROM frame WHERE id = 1"), 42);
	CHECK(q_isnull(db, "SELECT module_id FROM frame WHERE id = 3"));
	CHECK(q_isnull(db, "SELECT function FROM frame WHERE id = 3"));
	CHECK(q_isnull(db, "SELECT func_offset FROM frame WHERE id = 3"));
	CHECK(q_isnull(db, "SELECT line FROM frame WHERE id = 3"));
	CHECK_EQ(q_i64(db, "SELECT rel_pc FROM frame WHERE id = 3"), 0xdeadbeef);
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM callsite"), c->n_callsites);
	CHECK(q_isnull(db, "SELECT parent_id FROM callsite WHERE id = 1"));
	CHECK_EQ(q_i64(db, "SELECT parent_id FROM callsite WHERE id = 3"), 2);
	CHECK_EQ(q_i64(db, "SELECT frame_id FROM callsite WHERE id = 3"), 3);
	CHECK_EQ(q_i64(db, "SELECT depth FROM callsite WHERE id = 3"), 2);
	/* the innermost frame of thread 4242, walked to the root */
	CHECK_EQ(q_i64(db, "WITH RECURSIVE w(id, parent, depth) AS (SELECT c.id, c.parent_id, c.depth"
			   " FROM callsite c JOIN thread t ON t.callsite_id = c.id WHERE t.tid = 4242"
			   " UNION ALL SELECT c.id, c.parent_id, c.depth FROM callsite c JOIN w"
			   " ON c.id = w.parent) SELECT count(*) FROM w"), 3);

	/* threads, registers, tcache */
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM thread"), 2);
	CHECK_STR(q_text(db, "SELECT name FROM thread WHERE tid = 4242"), "demo");
	CHECK_STR(q_text(db, "SELECT name FROM thread WHERE tid = 4243"), "worker\x1b]0;x");
	CHECK_STR(q_text(db, "SELECT state FROM thread WHERE tid = 4242"), "S");
	CHECK_EQ(q_i64(db, "SELECT was_stopped FROM thread WHERE tid = 4243"), 1);
	CHECK_EQ(q_i64(db, "SELECT pc FROM thread WHERE tid = 4242"), 0x555500001234LL);
	CHECK_EQ(q_i64(db, "SELECT sp FROM thread WHERE tid = 4242"), 0x7ffc00020000LL);
	CHECK(q_isnull(db, "SELECT pc FROM thread WHERE tid = 4243"));
	CHECK_EQ(q_i64(db, "SELECT fs_base FROM thread WHERE tid = 4242"), 0x7f0000400000LL);
	CHECK_EQ(q_i64(db, "SELECT stack_lo FROM thread WHERE tid = 4242"), 0x7ffc00000000LL);
	CHECK_EQ(q_i64(db, "SELECT stack_hi FROM thread WHERE tid = 4242"), 0x7ffc00021000LL);
	CHECK(q_isnull(db, "SELECT stack_lo FROM thread WHERE tid = 4243"));
	CHECK_EQ(q_i64(db, "SELECT safepoint FROM thread WHERE tid = 4242"), HS_SP_RAN_OUT);
	CHECK_STR(q_text(db, "SELECT k.name FROM thread t JOIN safepoint_kind k ON k.id = t.safepoint"
			     " WHERE tid = 4243"), "unknown");
	CHECK_EQ(q_i64(db, "SELECT syscall_nr FROM thread WHERE tid = 4242"), 7);
	CHECK(q_isnull(db, "SELECT syscall_nr FROM thread WHERE tid = 4243"));
	CHECK_EQ(q_i64(db, "SELECT tcache FROM thread WHERE tid = 4242"), MAIN_ARENA + 0x10000);
	CHECK(q_isnull(db, "SELECT tcache FROM thread WHERE tid = 4243"));
	CHECK_EQ(q_i64(db, "SELECT a.addr FROM thread t JOIN arena a ON a.id = t.arena_id WHERE tid = 4242"),
		 MAIN_ARENA);
	CHECK_EQ(q_i64(db, "SELECT a.addr FROM thread t JOIN arena a ON a.id = t.arena_id WHERE tid = 4243"),
		 ARENA2);
	CHECK_EQ(q_i64(db, "SELECT callsite_id FROM thread WHERE tid = 4242"), 3);
	CHECK(q_isnull(db, "SELECT callsite_id FROM thread WHERE tid = 4243"));
	CHECK(q_isnull(db, "SELECT unwind_error FROM thread WHERE tid = 4242"));
	CHECK(!q_isnull(db, "SELECT unwind_error FROM thread WHERE tid = 4243"));
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM thread_register WHERE tid = 4242"), HS_NREGS);
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM thread_register WHERE tid = 4243"), 0);
	for (int r = 0; r < HS_NREGS; r++) {
		snprintf(sql, sizeof sql, "SELECT value FROM thread_register WHERE tid = 4242 AND name = '%s'",
			 hs_reg_names[r]);
		CHECK_EQ((uint64_t)q_i64(db, sql), c->threads[0].regs[r]);
	}
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM thread_tcache"), 2);
	CHECK_EQ(q_i64(db, "SELECT count FROM thread_tcache WHERE tid = 4242 AND bin_size = 32"), 2);
	CHECK_EQ(q_i64(db, "SELECT bytes FROM thread_tcache WHERE tid = 4242 AND bin_size = 32"), 64);
	CHECK_EQ(q_i64(db, "SELECT count FROM thread_tcache WHERE tid = 4242 AND bin_size = 80"), 1);

	/* arenas and heaps */
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM arena"), 2);
	for (size_t i = 0; i < c->n_arenas; i++) {
		const hs_arena *a = &c->arenas[i];
		sqlite3_stmt *st = q(db, "SELECT addr, is_main, top, system_mem, max_system_mem, mutex, flags,"
					 " attached_threads, list_bin_count, list_bin_bytes, list_fast_count,"
					 " list_fast_bytes, top_size, consistent, note FROM arena WHERE id = ?");
		sqlite3_bind_int64(st, 1, (int64_t)i + 1);
		CHECK(sqlite3_step(st) == SQLITE_ROW);
		CHECK_EQ(sqlite3_column_int64(st, 0), a->addr);
		CHECK_EQ(sqlite3_column_int64(st, 1), a->is_main);
		CHECK_EQ(sqlite3_column_int64(st, 2), a->top);
		CHECK_EQ(sqlite3_column_int64(st, 3), a->system_mem);
		CHECK_EQ(sqlite3_column_int64(st, 4), a->max_system_mem);
		CHECK_EQ(sqlite3_column_int64(st, 5), a->mutex);
		CHECK_EQ(sqlite3_column_int64(st, 6), a->flags);
		CHECK_EQ(sqlite3_column_int64(st, 7), a->attached_threads);
		CHECK_EQ(sqlite3_column_int64(st, 8), a->list_bin_count);
		CHECK_EQ(sqlite3_column_int64(st, 9), a->list_bin_bytes);
		CHECK_EQ(sqlite3_column_int64(st, 10), a->list_fast_count);
		CHECK_EQ(sqlite3_column_int64(st, 11), a->list_fast_bytes);
		CHECK_EQ(sqlite3_column_int64(st, 12), a->top_size);
		CHECK_EQ(sqlite3_column_int64(st, 13), a->consistent);
		if (a->note)
			CHECK_STR((const char *)sqlite3_column_text(st, 14), a->note);
		else
			CHECK(sqlite3_column_type(st, 14) == SQLITE_NULL);
		sqlite3_finalize(st);
	}
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM heap"), 1);
	CHECK_EQ(q_i64(db, "SELECT arena_id FROM heap"), 2);
	CHECK_EQ(q_i64(db, "SELECT addr FROM heap"), 0x7e0000000000LL);
	CHECK_EQ(q_i64(db, "SELECT size FROM heap"), 0x21000);
	CHECK_EQ(q_i64(db, "SELECT mprotect_size FROM heap"), 0x21000);

	/* chunks: each one, found by address, and stored in address (rowid) order */
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM chunk"), c->n_chunks);
	for (size_t i = 0; i < c->n_chunks; i++) {
		const hs_chunk *ch = &c->chunks[i];
		sqlite3_stmt *st = q(db, "SELECT size, state, arena_id, internal, usable FROM chunk WHERE addr = ?");
		sqlite3_bind_int64(st, 1, (int64_t)ch->addr);
		CHECK(sqlite3_step(st) == SQLITE_ROW);
		CHECK_EQ(sqlite3_column_int64(st, 0), ch->size);
		CHECK_EQ(sqlite3_column_int64(st, 1), ch->state);
		if (ch->mmapped)
			CHECK(sqlite3_column_type(st, 2) == SQLITE_NULL);
		else
			CHECK_EQ(sqlite3_column_int64(st, 2), ch->arena + 1);
		if (ch->state == HS_CH_INTERNAL)
			CHECK_EQ(sqlite3_column_int64(st, 3), ch->internal);
		else
			CHECK(sqlite3_column_type(st, 3) == SQLITE_NULL);
		CHECK_EQ(sqlite3_column_int64(st, 4), hs_chunk_usable(ch));
		sqlite3_finalize(st);
	}
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM (SELECT addr, lag(addr) OVER (ORDER BY rowid) AS prev"
			   " FROM chunk) WHERE prev >= addr"), 0);

	/* malloc_params */
	CHECK_EQ(q_i64(db, "SELECT main_arena FROM malloc_params"), MAIN_ARENA);
	CHECK_EQ(q_i64(db, "SELECT mp_addr FROM malloc_params"), 0x7f0000002000LL);
	CHECK_EQ(q_i64(db, "SELECT tcache_tls_offset FROM malloc_params"), 0x48);
	CHECK_EQ(q_i64(db, "SELECT n_mmaps FROM malloc_params"), 1);
	CHECK_EQ(q_i64(db, "SELECT mmapped_mem FROM malloc_params"), 0x21000);
	CHECK_EQ(q_i64(db, "SELECT mmap_threshold FROM malloc_params"), 131072);
	CHECK_EQ(q_i64(db, "SELECT trim_threshold FROM malloc_params"), 131072);
	CHECK_EQ(q_i64(db, "SELECT arena_max FROM malloc_params"), 0);
	CHECK_EQ(q_i64(db, "SELECT tcache_bins FROM malloc_params"), 64);
	CHECK_EQ(q_i64(db, "SELECT tcache_count FROM malloc_params"), 7);

	/* the mallinfo view against glibc's formulas computed here from the model */
	int64_t arena = 0, ordblks = 0, smblks = 0, hblks = 0, hblkhd = 0, uord = 0, ford = 0, fsm = 0, keep = 0;
	for (size_t i = 0; i < c->n_chunks; i++) {
		const hs_chunk *ch = &c->chunks[i];
		int free_ = ch->state == HS_CH_FREE_BIN || ch->state == HS_CH_FASTBIN || ch->state == HS_CH_TOP;
		if (ch->mmapped) {
			hblkhd += ch->size;
			hblks += ch->state == HS_CH_IN_USE;
			continue;
		}
		arena += ch->size;
		ordblks += ch->state == HS_CH_FREE_BIN || ch->state == HS_CH_TOP;
		smblks += ch->state == HS_CH_FASTBIN;
		fsm += ch->state == HS_CH_FASTBIN ? ch->size : 0;
		if (free_)
			ford += ch->size;
		else
			uord += ch->size;
		if (ch->state == HS_CH_TOP && c->arenas[ch->arena].is_main)
			keep += ch->size;
	}
	/* the sizes of an arena's chunks add up to its system_mem */
	CHECK_EQ(arena, c->arenas[0].system_mem + c->arenas[1].system_mem);
	CHECK_EQ(q_i64(db, "SELECT arena FROM mallinfo"), arena);
	CHECK_EQ(q_i64(db, "SELECT ordblks FROM mallinfo"), ordblks);
	CHECK_EQ(q_i64(db, "SELECT smblks FROM mallinfo"), smblks);
	CHECK_EQ(q_i64(db, "SELECT hblks FROM mallinfo"), hblks);
	CHECK_EQ(q_i64(db, "SELECT hblkhd FROM mallinfo"), hblkhd);
	CHECK_EQ(q_i64(db, "SELECT uordblks FROM mallinfo"), uord);
	CHECK_EQ(q_i64(db, "SELECT fordblks FROM mallinfo"), ford);
	CHECK_EQ(q_i64(db, "SELECT fsmblks FROM mallinfo"), fsm);
	CHECK_EQ(q_i64(db, "SELECT keepcost FROM mallinfo"), keep);
	CHECK_EQ(ordblks, 3);   /* one free chunk and two tops */
	CHECK_EQ(smblks, 1);
	CHECK_EQ(hblks, 1);

	sqlite3_close(db);
}

/* ---------------------------------------------------------------- fault injection */
/* SQLite's allocator, failing the Nth allocation (and every one after it) */
static long fail_at = -1, n_allocs;
static int saw_temp_0600;
static const char *watch_dir;

static void *fm_malloc(int n)
{
	if (fail_at >= 0 && ++n_allocs >= fail_at)
		return NULL;
	int64_t *p = malloc((size_t)n + 16);
	if (!p)
		return NULL;
	p[0] = n;
	/* while a write is under way, its temp file exists with mode 0600 */
	const char *t = sw_temp_path();
	struct stat sb;
	if (t && watch_dir && !strncmp(t, watch_dir, strlen(watch_dir)) && !stat(t, &sb))
		saw_temp_0600 |= (sb.st_mode & 07777) == 0600 ? 1 : 2;
	return p + 2;
}
static void fm_free(void *p)
{
	if (p)
		free((int64_t *)p - 2);
}
static void *fm_realloc(void *p, int n)
{
	if (!p)
		return fm_malloc(n);
	if (fail_at >= 0 && ++n_allocs >= fail_at)
		return NULL;
	int64_t *q = realloc((int64_t *)p - 2, (size_t)n + 16);
	if (!q)
		return NULL;
	q[0] = n;
	return q + 2;
}
static int fm_size(void *p) { return p ? (int)((int64_t *)p)[-2] : 0; }
static int fm_roundup(int n) { return (n + 7) & ~7; }
static int fm_init(void *x) { (void)x; return 0; }
static void fm_shutdown(void *x) { (void)x; }

static void install_failing_malloc(void)
{
	static const sqlite3_mem_methods m = { fm_malloc, fm_free, fm_realloc, fm_size, fm_roundup,
					       fm_init, fm_shutdown, NULL };
	CHECK(sqlite3_shutdown() == SQLITE_OK);
	CHECK(sqlite3_config(SQLITE_CONFIG_MALLOC, &m) == SQLITE_OK);
	CHECK(sqlite3_initialize() == SQLITE_OK);
}

/* ---------------------------------------------------------------- tests */
static char dir[256];

static void test_roundtrip(void)
{
	hs_capture c;
	build(&c);
	char path[512], err[512];
	snprintf(path, sizeof path, "%s/snap.hsnap", dir);
	/* a hostile umask: the file must still be exactly 0600 (and readable by us) */
	mode_t old = umask(0777);
	watch_dir = dir;
	int rc = sw_write(&c, path, err, sizeof err);
	watch_dir = NULL;
	umask(old);
	if (rc)
		fprintf(stderr, "sw_write: %s\n", err);
	CHECK_EQ(rc, 0);
	CHECK(sw_temp_path() == NULL);
	CHECK_EQ(saw_temp_0600, 1);      /* seen during the write, always 0600 */
	struct stat sb;
	CHECK(stat(path, &sb) == 0);
	CHECK_EQ(sb.st_mode & 07777, 0600);
	CHECK_EQ(count_files(dir), 1);   /* no temp file, no journal */
	check_contents(path, &c);

	/* writing again replaces the file atomically */
	c.proc.pid = 777;
	CHECK_EQ(sw_write(&c, path, err, sizeof err), 0);
	sqlite3 *db = open_ro(path);
	CHECK_EQ(q_i64(db, "SELECT pid FROM process"), 777);
	sqlite3_close(db);
	CHECK_EQ(count_files(dir), 1);
	hs_capture_free(&c);
}

static void test_no_heap(void)
{
	hs_capture c;
	hs_capture_init(&c);
	c.proc.pid = 5;
	c.heap.found = 0;
	c.heap.note = xstrdup("no glibc heap found: the target does not use glibc malloc");
	char path[512], err[512];
	snprintf(path, sizeof path, "%s/empty.hsnap", dir);
	CHECK_EQ(sw_write(&c, path, err, sizeof err), 0);
	sqlite3 *db = open_ro(path);
	CHECK_EQ(q_i64(db, "SELECT heap_found FROM capture"), 0);
	CHECK_STR(q_text(db, "SELECT heap_note FROM capture"), c.heap.note);
	CHECK_STR(q_text(db, "SELECT tool_version FROM capture"), HEAPSNAP_VERSION);
	CHECK(q_isnull(db, "SELECT cmdline FROM process"));
	CHECK(q_isnull(db, "SELECT comm FROM process"));
	CHECK(q_isnull(db, "SELECT vm_rss_kb FROM process"));
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM malloc_params"), 1);
	CHECK(q_isnull(db, "SELECT main_arena FROM malloc_params"));
	CHECK_EQ(q_i64(db, "SELECT arena + hblkhd + ordblks FROM mallinfo"), 0);
	sqlite3_close(db);
	unlink(path);
	hs_capture_free(&c);
}

static void test_missing_dir(void)
{
	hs_capture c;
	build(&c);
	char path[512], err[512] = "";
	snprintf(path, sizeof path, "%s/no/such/dir/x.hsnap", dir);
	CHECK_EQ(sw_write(&c, path, err, sizeof err), -1);
	CHECK(err[0]);
	CHECK(strchr(err, '\n') == NULL);
	CHECK(strstr(err, "No such file or directory"));
	fprintf(stderr, "missing directory: %s\n", err);
	CHECK_EQ(count_files(dir), 0);
	CHECK(sw_temp_path() == NULL);
	hs_capture_free(&c);
}

/* a failure after rows were written: nothing at the destination, an old file kept */
static void test_mid_write_failure(void)
{
	hs_capture c;
	build(&c);
	char path[512], err[512] = "";
	snprintf(path, sizeof path, "%s/dup.hsnap", dir);
	add_chunk(&c, c.chunks[5].addr, 0x20, HS_CH_IN_USE, 0, 0);   /* a duplicate address */
	CHECK_EQ(sw_write(&c, path, err, sizeof err), -1);
	fprintf(stderr, "duplicate chunk: %s\n", err);
	CHECK(strstr(err, "chunk"));
	CHECK(!exists(path));
	CHECK_EQ(count_files(dir), 0);

	/* a model error (chunk of an arena that does not exist) is caught the same way */
	c.n_chunks--;
	c.chunks[0].arena = 9;
	c.chunks[0].mmapped = 0;
	CHECK_EQ(sw_write(&c, path, err, sizeof err), -1);
	fprintf(stderr, "bad arena index: %s\n", err);
	CHECK(!exists(path));
	CHECK_EQ(count_files(dir), 0);
	hs_capture_free(&c);

	/* an existing snapshot survives a failed overwrite untouched */
	build(&c);
	CHECK_EQ(sw_write(&c, path, err, sizeof err), 0);
	struct stat before, after;
	CHECK(stat(path, &before) == 0);
	c.chunks[1].arena = 99;
	CHECK_EQ(sw_write(&c, path, err, sizeof err), -1);
	CHECK(stat(path, &after) == 0);
	CHECK_EQ(before.st_ino, after.st_ino);
	CHECK_EQ(before.st_size, after.st_size);
	CHECK_EQ(count_files(dir), 1);
	unlink(path);
	hs_capture_free(&c);
}

/* a write that runs into a file size limit (EFBIG): in a child, for the rlimit */
static void test_fsize_limit(void)
{
	char path[512];
	snprintf(path, sizeof path, "%s/big.hsnap", dir);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		hs_capture c;
		build_big(&c, 100000);
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl = { 256 * 1024, 256 * 1024 };
		setrlimit(RLIMIT_FSIZE, &rl);
		char err[512] = "";
		int rc = sw_write(&c, path, err, sizeof err);
		fprintf(stderr, "file size limit: %s\n", err);
		_exit(rc == -1 && err[0] ? 0 : 1);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(!exists(path));
	CHECK_EQ(count_files(dir), 0);
}

/* SIGINT in the middle of a write: the handler unlinks sw_temp_path(), as
 * cmd_capture's does, and nothing is left */
static void on_sigint(int sig)
{
	const char *t = sw_temp_path();
	if (t)
		unlink(t);
	_exit(128 + sig);
}

static int has_temp(void)
{
	DIR *d = opendir(dir);
	CHECK(d);
	int found = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		found |= strstr(e->d_name, ".tmp-") != NULL;
	closedir(d);
	return found;
}

static void test_interrupted(void)
{
	char path[512];
	snprintf(path, sizeof path, "%s/int.hsnap", dir);
	hs_capture c;
	build_big(&c, 2000000);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		signal(SIGINT, on_sigint);
		char err[512];
		sw_write(&c, path, err, sizeof err);
		_exit(0);   /* finished before the signal came: the parent says so */
	}
	hs_capture_free(&c);
	for (int i = 0; i < 20000 && !has_temp(); i++)
		usleep(500);
	CHECK(has_temp());
	usleep(50000);
	kill(pid, SIGINT);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGINT);
	CHECK(!exists(path));
	CHECK_EQ(count_files(dir), 0);
}

/* every SQLite allocation of a whole write failing in turn: each attempt either fails
 * cleanly (message, no files) or succeeds with a complete snapshot */
static void test_oom(void)
{
	hs_capture c;
	build(&c);
	char path[512], err[512];
	snprintf(path, sizeof path, "%s/oom.hsnap", dir);
	long failures = 0, n;
	for (n = 1;; n++) {
		fail_at = n;
		n_allocs = 0;
		err[0] = 0;
		int rc = sw_write(&c, path, err, sizeof err);
		fail_at = -1;
		if (rc == 0)
			break;
		failures++;
		CHECK(err[0]);
		CHECK(!exists(path));
		CHECK_EQ(count_files(dir), 0);
		CHECK(sw_temp_path() == NULL);
		CHECK(n < 100000);
	}
	fprintf(stderr, "allocation failures: %ld injected, each left nothing behind\n", failures);
	CHECK(failures > 10);
	check_contents(path, &c);
	unlink(path);
	hs_capture_free(&c);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_size_per_chunk(void)
{
	const size_t n = 1000000;
	hs_capture c;
	build_big(&c, n);
	char path[512], err[512];
	snprintf(path, sizeof path, "%s/1m.hsnap", dir);
	double t0 = now();
	CHECK_EQ(sw_write(&c, path, err, sizeof err), 0);
	double t1 = now();
	struct stat sb;
	CHECK(stat(path, &sb) == 0);

	/* the same capture without chunks: what the rest of the file costs */
	size_t keep = c.n_chunks;
	c.n_chunks = 0;
	char path0[512];
	snprintf(path0, sizeof path0, "%s/0.hsnap", dir);
	CHECK_EQ(sw_write(&c, path0, err, sizeof err), 0);
	c.n_chunks = keep;
	struct stat sb0;
	CHECK(stat(path0, &sb0) == 0);
	double per = (double)(sb.st_size - sb0.st_size) / (double)n;
	printf("size: %zu chunks, file %lld bytes (%lld without chunks): %.1f bytes/chunk; "
	       "written in %.2f s\n", n, (long long)sb.st_size, (long long)sb0.st_size, per, t1 - t0);
	CHECK(per <= 40.0);
	sqlite3 *db = open_ro(path);
	CHECK_EQ(q_i64(db, "SELECT count(*) FROM chunk"), n);
	sqlite3_close(db);
	unlink(path);
	unlink(path0);
	hs_capture_free(&c);
}

int main(void)
{
	(void)check_failures;
	snprintf(dir, sizeof dir, "/tmp/test_snapwrite.XXXXXX");
	CHECK(mkdtemp(dir));
	install_failing_malloc();

	char p[512];
	test_roundtrip();
	snprintf(p, sizeof p, "%s/snap.hsnap", dir);
	unlink(p);
	test_no_heap();
	test_missing_dir();
	test_mid_write_failure();
	test_fsize_limit();
	test_interrupted();
	test_oom();
	test_size_per_chunk();

	CHECK_EQ(count_files(dir), 0);
	rmdir(dir);
	printf("test_snapwrite: ok\n");
	return 0;
}
