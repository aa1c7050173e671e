/* test_graph_labels.c -- gl_load (analyze/graph_labels.c) on a synthetic snapshot with
 * type and tracking rows added: the class of a typed chunk, the site of a tracked one
 * (named from its callsite chain), nothing for the others. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph_labels.h"
#include "snapwrite.h"
#include "synth_capture.h"

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

int main(void)
{
	(void)check_failures;
	(void)build_big;
	char dir[] = "/tmp/test_graph_labels.XXXXXX", path[256], err[512], sql[1024];
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/s.hsnap", dir);
	hs_capture c;
	build(&c);
	CHECK_EQ(sw_write(&c, path, err, sizeof err), 0);
	hs_capture_free(&c);

	/* the in-use chunks, as a graph without edges */
	snap *s;
	CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
	hs_graph g;
	memset(&g, 0, sizeof g);
	int64_t n, cs;
	CHECK_EQ(snap_query_i64(s, "SELECT count(*) FROM node", -1, &n), 0);
	CHECK(n >= 2);
	CHECK_EQ(snap_query_i64(s, "SELECT id FROM callsite WHERE depth = 0", -1, &cs), 0);
	g.n = (uint32_t)n;
	g.addr = calloc(n, 8);
	g.size = calloc(n, 8);
	sqlite3_stmt *st;
	CHECK_EQ(snap_prepare(s, &st, "SELECT addr, size FROM node ORDER BY idx"), 0);
	for (uint32_t i = 0; snap_step(s, st) == 1; i++) {
		g.addr[i] = (uint64_t)snap_i64(st, 0, 0);
		g.size[i] = (uint64_t)snap_i64(st, 1, 0);
	}
	sqlite3_finalize(st);
	snap_close(s);

	snprintf(sql, sizeof sql,
		 "DELETE FROM chunk_type; DELETE FROM type; DELETE FROM alloc;"
		 "INSERT INTO type VALUES (7, 'ns::Widget', '_ZTVN2ns6WidgetE', NULL, 4096, 1);"
		 "INSERT INTO chunk_type VALUES (%llu, 7);"
		 "INSERT INTO alloc (addr, requested, callsite_id) VALUES (%llu, 24, %lld);",
		 (unsigned long long)g.addr[0], (unsigned long long)g.addr[1], (long long)cs);
	sql_on(path, sql);

	CHECK_EQ(snap_open(path, &s, err, sizeof err), SNAP_OK);
	gl_labels l;
	CHECK_EQ(gl_load(s, &g, &l), 0);
	CHECK_EQ(l.has_types, 1);
	CHECK_EQ(l.has_sites, 1);
	CHECK_STR(gl_type(&l, 0), "ns::Widget");
	CHECK(gl_type(&l, 1) == NULL);
	CHECK(gl_site(&l, 0) == NULL);
	CHECK_STR(gl_site(&l, 1), "main (demo.c:42)");
	CHECK(gl_site(&l, g.n) == NULL);
	gl_free(&l);
	snap_close(s);
	free(g.addr);
	free(g.size);
	unlink(path);
	rmdir(dir);
	return 0;
}
