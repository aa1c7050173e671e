/* test_analyze_snapshot.c -- opening snapshots: every kind of bad file gets its error
 * kind and a one-line message; a good one opens and answers queries; and a few hundred
 * randomly damaged copies of a good snapshot go through `summary` and `regions` (text,
 * JSON, CSV) without a crash, a hang or an exit code other than 0, 1 or 2. Run it under
 * the ASan build to make "without a crash" mean something.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "commands.h"
#include "snapshot.h"
#include "snapwrite.h"
#include "synth_capture.h"

static char dir[256];

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static unsigned char *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	CHECK(f);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc((size_t)len);
	CHECK(b);
	CHECK(fread(b, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return b;
}

static void spill(const char *p, const void *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	CHECK(f);
	CHECK(fwrite(b, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

static void sql_on(const char *p, const char *sql)
{
	sqlite3 *db;
	CHECK(sqlite3_open(p, &db) == SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", sql, msg);
		exit(1);
	}
	sqlite3_close(db);
}

static void copy_good(const char *good, const char *to)
{
	size_t n;
	unsigned char *b = slurp(good, &n);
	spill(to, b, n);
	free(b);
}

/* snap_open(path) must fail with kind and a one-line "cannot open 'path': ..." holding want */
static void expect(const char *path, int kind, const char *want)
{
	snap *s = (snap *)1;
	char err[512] = "";
	int st = snap_open(path, &s, err, sizeof err);
	fprintf(stderr, "  %-28s -> %s\n", strrchr(path, '/') + 1, err);
	CHECK_EQ(st, kind);
	CHECK(s == NULL);
	CHECK(strchr(err, '\n') == NULL);
	char head[600];
	snprintf(head, sizeof head, "cannot open '%s': ", path);
	CHECK(!strncmp(err, head, strlen(head)));
	CHECK(strstr(err, want));
	CHECK_EQ(snap_status_exit(st), HS_EXIT_USAGE);
}

static void test_open(const char *good)
{
	char p[1024];
	snap *s;
	char err[512];
	CHECK_EQ(snap_open(good, &s, err, sizeof err), SNAP_OK);
	CHECK_EQ(snap_format(s), 1);
	CHECK_STR(snap_path(s), good);
	int64_t v;
	CHECK_EQ(snap_query_i64(s, "SELECT count(*) FROM chunk", -1, &v), 0);
	CHECK_EQ(v, 11);
	CHECK_EQ(snap_query_i64(s, "SELECT pid FROM process", -1, &v), 0);
	CHECK_EQ(v, 4242);
	CHECK_EQ(snap_query_i64(s, "SELECT NULL", -9, &v), 0);
	CHECK_EQ(v, -9);
	CHECK_EQ(snap_has_table(s, "chunk"), 1);
	CHECK_EQ(snap_has_table(s, "mallinfo"), 0);     /* a view, not a table */
	/* read-only: writing fails and says why */
	CHECK_EQ(snap_query_i64(s, "DELETE FROM chunk", 0, &v), -1);
	CHECK(strstr(snap_error(s), "cannot read '"));
	CHECK_EQ(snap_query_i64(s, "SELECT nonsense FROM chunk", 0, &v), -1);
	snap_close(s);
	/* nothing was created beside the file (immutable: no journal, no -shm) */
	struct stat sb;
	snprintf(p, sizeof p, "%s-journal", good);
	CHECK(stat(p, &sb) != 0);
	snprintf(p, sizeof p, "%s-shm", good);
	CHECK(stat(p, &sb) != 0);

	/* a name that needs URI escaping */
	path_of(p, sizeof p, "we?ird#name%20 x.hsnap");
	copy_good(good, p);
	CHECK_EQ(snap_open(p, &s, err, sizeof err), SNAP_OK);
	snap_close(s);
	unlink(p);

	fprintf(stderr, "bad files:\n");
	path_of(p, sizeof p, "missing.hsnap");
	expect(p, SNAP_ERR_MISSING, "No such file or directory");
	path_of(p, sizeof p, "nodir/x.hsnap");
	expect(p, SNAP_ERR_MISSING, "No such file or directory");
	expect(dir, SNAP_ERR_UNREADABLE, "Is a directory");

	path_of(p, sizeof p, "text.txt");
	spill(p, "hello, world\n", 13);
	expect(p, SNAP_ERR_NOT_SQLITE, "not a heapsnap snapshot");
	path_of(p, sizeof p, "empty.hsnap");
	spill(p, "", 0);
	expect(p, SNAP_ERR_NOT_SQLITE, "not a heapsnap snapshot");

	path_of(p, sizeof p, "plain.db");
	sql_on(p, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
	expect(p, SNAP_ERR_FOREIGN, "not a heapsnap snapshot (application_id 0x00000000)");

	path_of(p, sizeof p, "foreign.hsnap");
	copy_good(good, p);
	sql_on(p, "PRAGMA application_id = 0x12345678");
	expect(p, SNAP_ERR_FOREIGN, "not a heapsnap snapshot (application_id 0x12345678)");

	path_of(p, sizeof p, "newer.hsnap");
	copy_good(good, p);
	sql_on(p, "PRAGMA user_version = 99");
	expect(p, SNAP_ERR_NEWER, "written by a newer heapsnap (format 99, this build reads up to 1)");

	path_of(p, sizeof p, "older.hsnap");
	copy_good(good, p);
	sql_on(p, "PRAGMA user_version = 0");
	expect(p, SNAP_ERR_OLDER, "format 0 is not supported");

	size_t n;
	unsigned char *b = slurp(good, &n);
	path_of(p, sizeof p, "half.hsnap");
	spill(p, b, n / 2);
	expect(p, SNAP_ERR_TRUNCATED, "truncated");
	path_of(p, sizeof p, "header-only.hsnap");
	spill(p, b, 100);
	expect(p, SNAP_ERR_TRUNCATED, "truncated");
	path_of(p, sizeof p, "short-page.hsnap");
	spill(p, b, n - 1);
	expect(p, SNAP_ERR_TRUNCATED, "truncated");
	free(b);

	path_of(p, sizeof p, "no-table.hsnap");
	copy_good(good, p);
	sql_on(p, "DROP TABLE thread_tcache");
	expect(p, SNAP_ERR_DAMAGED, "damaged snapshot: no table 'thread_tcache'");

	path_of(p, sizeof p, "no-column.hsnap");
	copy_good(good, p);
	sql_on(p, "ALTER TABLE thread DROP COLUMN unwind_error");
	expect(p, SNAP_ERR_DAMAGED, "table 'thread' has no column 'unwind_error'");

	path_of(p, sizeof p, "view.hsnap");
	copy_good(good, p);
	sql_on(p, "ALTER TABLE chunk RENAME TO chunk_real; DROP VIEW mallinfo;"
		  "CREATE VIEW chunk AS SELECT * FROM chunk_real");
	expect(p, SNAP_ERR_DAMAGED, "no table 'chunk'");
}

/* ---------------------------------------------------------------- damaged copies */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int run_quiet(int (*fn)(int, char **), int argc, char **argv)
{
	fflush(stdout);
	fflush(stderr);
	int o = dup(1), e = dup(2), nul = open("/dev/null", O_WRONLY);
	CHECK(o >= 0 && e >= 0 && nul >= 0);
	dup2(nul, 1);
	dup2(nul, 2);
	int rc = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(o, 1);
	dup2(e, 2);
	close(o);
	close(e);
	close(nul);
	return rc;
}

static void test_damaged(const char *good, int rounds)
{
	size_t n;
	unsigned char *orig = slurp(good, &n);
	unsigned char *b = malloc(n + 8192);
	CHECK(b);
	char p[512];
	path_of(p, sizeof p, "fuzz.hsnap");
	int by_rc[3] = { 0 };
	for (int r = 0; r < rounds; r++) {
		memcpy(b, orig, n);
		size_t len = n;
		int flips = 1 + (int)(rnd() % 24);
		for (int k = 0; k < flips; k++) {
			size_t at;
			switch (rnd() % 4) {
			case 0: at = rnd() % 100; break;                     /* the header */
			case 1: at = 100 + rnd() % 4000; break;              /* the schema page */
			default: at = rnd() % n; break;                      /* anywhere */
			}
			switch (rnd() % 3) {
			case 0: b[at] ^= (unsigned char)(1u << (rnd() % 8)); break;
			case 1: b[at] = (unsigned char)rnd(); break;
			default: b[at] = (rnd() & 1) ? 0xff : 0x00; break;
			}
		}
		if (rnd() % 8 == 0)
			len = (size_t)(rnd() % n);
		spill(p, b, len);

		char *s1[] = { "summary", p, NULL };
		char *s2[] = { "summary", p, "--json", NULL };
		char *r1[] = { "regions", p, "--sort", "rss", NULL };
		char *r2[] = { "regions", p, "--csv", NULL };
		char *r3[] = { "regions", p, "--json", "--limit", "3", NULL };
		int rcs[] = { run_quiet(cmd_summary, 2, s1), run_quiet(cmd_summary, 3, s2),
			      run_quiet(cmd_regions, 4, r1), run_quiet(cmd_regions, 3, r2),
			      run_quiet(cmd_regions, 5, r3) };
		for (int k = 0; k < 5; k++) {
			if (rcs[k] < 0 || rcs[k] > 2) {
				fprintf(stderr, "round %d: exit code %d\n", r, rcs[k]);
				exit(1);
			}
			by_rc[rcs[k]]++;
		}
	}
	fprintf(stderr, "damaged copies: %d rounds, exit codes 0: %d, 1: %d, 2: %d\n", rounds,
		by_rc[0], by_rc[1], by_rc[2]);
	CHECK(by_rc[2] > 0);
	free(orig);
	free(b);
	unlink(p);
}

int main(int argc, char **argv)
{
	(void)check_failures;
	int rounds = argc > 1 ? atoi(argv[1]) : 300;
	snprintf(dir, sizeof dir, "/tmp/test_analyze_snapshot.XXXXXX");
	CHECK(mkdtemp(dir));
	char good[512], err[512];
	path_of(good, sizeof good, "good.hsnap");
	hs_capture c;
	build(&c);
	CHECK_EQ(sw_write(&c, good, err, sizeof err), 0);
	hs_capture_free(&c);
	test_open(good);

	/* a larger file for damage: many b-tree pages of chunks */
	char big[512];
	path_of(big, sizeof big, "big.hsnap");
	build_big(&c, 20000);
	CHECK_EQ(sw_write(&c, big, err, sizeof err), 0);
	hs_capture_free(&c);
	char *s1[] = { "summary", big, NULL };
	CHECK_EQ(run_quiet(cmd_summary, 2, s1), 0);
	test_damaged(big, rounds);

	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	printf("test_analyze_snapshot: ok\n");
	return 0;
}
