/* cmd_regions.c -- `heapsnap regions FILE`: the captured address space, one row per
 * mapping (/proc/PID/smaps at the capture) with its kind, its owner (module, thread
 * stack, arena heap) and its memory figures; as a table, JSON or CSV.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cmdline.h"
#include "commands.h"
#include "output.h"
#include "snapshot.h"

static const char regions_usage[] =
	"usage: heapsnap regions FILE [--json | --csv] [--sort KEY] [--limit N]\n";

static const char regions_help[] =
	"\n"
	"Every mapping of the captured address space (/proc/PID/smaps at the capture): its\n"
	"address range, permissions, kind (heap, arena_heap, stack, module_text, ...), owner\n"
	"(the module, the thread whose stack it is, or the arena whose heap it holds) and its\n"
	"memory figures.\n"
	"\n"
	"  --sort KEY   addr (the default, ascending), or size, rss, pss, private, shared or\n"
	"               swap (largest first)\n"
	"  --limit N    list only the first N mappings (the total still covers all)\n"
	"  --json       JSON: {\"file\", \"regions\": [...], \"total\": {...}}, sizes in kB\n"
	"  --csv        CSV with a header line, sizes in kB, addresses in hex\n"
	"  -h, --help   this help\n"
	"\n"
	"SIZE is virtual size; RSS resident; PSS resident with each shared page divided among\n"
	"the processes mapping it; PRIVATE resident pages only this process maps; SHARED\n"
	"resident pages others map too; SWAP swapped out. '-' means the kernel did not say.\n"
	"\n"
	"examples:\n"
	"  heapsnap regions s.hsnap --sort rss --limit 20\n"
	"  heapsnap regions s.hsnap --csv > regions.csv\n";

/* the columns of the query below */
enum {
	R_START, R_END, R_PERMS, R_KIND, R_KIND_NAME, R_SIZE, R_RSS, R_PSS, R_PRIVATE, R_SHARED,
	R_SWAP, R_MODULE, R_TID, R_THREAD, R_PATH, R_OFFSET, R_DEV, R_INODE, R_ARENA,
};

static const char regions_sql[] =
	"SELECT m.start, m.\"end\", m.perms, m.kind, k.name, m.size_kb, m.rss_kb, m.pss_kb,"
	" CASE WHEN m.private_clean_kb IS NULL AND m.private_dirty_kb IS NULL THEN NULL"
	"  ELSE coalesce(m.private_clean_kb, 0) + coalesce(m.private_dirty_kb, 0) END AS private_kb,"
	" CASE WHEN m.shared_clean_kb IS NULL AND m.shared_dirty_kb IS NULL THEN NULL"
	"  ELSE coalesce(m.shared_clean_kb, 0) + coalesce(m.shared_dirty_kb, 0) END AS shared_kb,"
	" m.swap_kb, mo.path, m.tid, t.name, m.path, m.offset, m.dev, m.inode,"
	" (SELECT min(h.arena_id) FROM heap h WHERE h.addr >= m.start AND h.addr < m.\"end\")"
	" FROM mapping m"
	" LEFT JOIN mapping_kind k ON k.id = m.kind"
	" LEFT JOIN module mo ON mo.id = m.module_id"
	" LEFT JOIN thread t ON t.tid = m.tid";

/* Addresses are stored as signed 64-bit: [vsyscall] at 0xffffffffff600000 reads as
 * negative, so "start < 0" first puts it last, where unsigned order has it. */
#define BY_ADDR "m.start < 0, m.start"
static const struct {
	const char *key, *order;
} sorts[] = {
	{ "addr", BY_ADDR ", m.id" },
	{ "size", "m.size_kb DESC, " BY_ADDR },
	{ "rss", "m.rss_kb DESC, " BY_ADDR },
	{ "pss", "m.pss_kb DESC, " BY_ADDR },
	{ "private", "private_kb DESC, " BY_ADDR },
	{ "shared", "shared_kb DESC, " BY_ADDR },
	{ "swap", "m.swap_kb DESC, " BY_ADDR },
};

static const char *base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s && s[1] ? s + 1 : p;
}

/* who owns the mapping, for humans: "libc.so.6", "thread 42 (worker)", "arena 2" */
static void owner_of(sqlite3_stmt *st, char *buf, size_t n, int full_path)
{
	const char *mod = snap_text(st, R_MODULE);
	const char *kind = snap_text(st, R_KIND_NAME);
	buf[0] = 0;
	if (mod)
		snprintf(buf, n, "%s", full_path ? mod : base_name(mod));
	else if (!snap_isnull(st, R_TID)) {
		const char *tn = snap_text(st, R_THREAD);
		if (tn)
			snprintf(buf, n, "thread %" PRId64 " (%s)", snap_i64(st, R_TID, 0), tn);
		else
			snprintf(buf, n, "thread %" PRId64, snap_i64(st, R_TID, 0));
	} else if (!snap_isnull(st, R_ARENA))
		snprintf(buf, n, "arena %" PRId64, snap_i64(st, R_ARENA, 0));
	else if (kind && !strcmp(kind, "heap"))
		snprintf(buf, n, "main arena");
}

static void j_opt(out_json *j, const char *key, sqlite3_stmt *st, int col)
{
	if (snap_isnull(st, col))
		out_json_null(j, key);
	else
		out_json_i64(j, key, snap_i64(st, col, 0));
}

static void csv_opt(out_csv *c, sqlite3_stmt *st, int col)
{
	if (snap_isnull(st, col))
		out_csv_str(c, NULL);
	else
		out_csv_i64(c, snap_i64(st, col, 0));
}

enum { FMT_TABLE, FMT_JSON, FMT_CSV };

typedef struct {
	int64_t count, size, rss, pss, priv, shared, swap;
} totals;

static int load_totals(snap *s, totals *t)
{
	sqlite3_stmt *st;
	if (snap_prepare(s, &st,
			 "SELECT count(*), sum(size_kb), sum(rss_kb), sum(pss_kb),"
			 " sum(coalesce(private_clean_kb, 0) + coalesce(private_dirty_kb, 0)),"
			 " sum(coalesce(shared_clean_kb, 0) + coalesce(shared_dirty_kb, 0)), sum(swap_kb)"
			 " FROM mapping"))
		return -1;
	int r = snap_step(s, st);
	if (r == 1) {
		t->count = snap_i64(st, 0, 0);
		t->size = snap_i64(st, 1, -1);
		t->rss = snap_i64(st, 2, -1);
		t->pss = snap_i64(st, 3, -1);
		t->priv = snap_i64(st, 4, -1);
		t->shared = snap_i64(st, 5, -1);
		t->swap = snap_i64(st, 6, -1);
	}
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int cmd_regions(int argc, char **argv)
{
	const char *file = NULL, *sort = "addr", *limit_s = NULL;
	int json = 0, csv = 0, only_args = 0;
	int64_t limit = -1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int r;
		if (only_args || a[0] != '-' || !a[1]) {
			if (file) {
				out_err("regions", "unexpected argument '%s' (see 'heapsnap help regions')", a);
				return HS_EXIT_USAGE;
			}
			file = a;
		} else if (!strcmp(a, "--")) {
			only_args = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(regions_usage, stdout);
			fputs(regions_help, stdout);
			return HS_EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--csv")) {
			csv = 1;
		} else if ((r = arg_value(argc, argv, &i, "sort", &sort)) ||
			   (r = arg_value(argc, argv, &i, "limit", &limit_s))) {
			if (r < 0) {
				out_err("regions", "option '%s' needs a value", a);
				return HS_EXIT_USAGE;
			}
		} else {
			out_err("regions", "unknown option '%s' (see 'heapsnap help regions')", a);
			return HS_EXIT_USAGE;
		}
	}
	if (json && csv) {
		out_err("regions", "--json and --csv cannot be combined");
		return HS_EXIT_USAGE;
	}
	int fmt = json ? FMT_JSON : csv ? FMT_CSV : FMT_TABLE;
	if (!file) {
		out_err("regions", "no snapshot file given");
		fputs(regions_usage, stderr);
		return HS_EXIT_USAGE;
	}
	/* the shared --sort check (cmdline.h); the order itself is SQL */
	cl_sort_key keys[sizeof sorts / sizeof *sorts];
	for (size_t k = 0; k < sizeof sorts / sizeof *sorts; k++)
		keys[k] = (cl_sort_key){ sorts[k].key, NULL };
	int si = cl_sort_pick("regions", sort, keys, (int)(sizeof keys / sizeof *keys), 0);
	if (si < 0)
		return HS_EXIT_USAGE;
	const char *order = sorts[si].order;
	if (limit_s && arg_i64(limit_s, 0, INT64_MAX, &limit)) {
		out_err("regions", "invalid --limit '%s'", limit_s);
		return HS_EXIT_USAGE;
	}

	char err[512];
	snap *s;
	int st_open = snap_open(file, &s, err, sizeof err);
	if (st_open != SNAP_OK) {
		out_err("regions", "%s", err);
		return snap_status_exit(st_open);
	}

	totals tot = { 0 };
	char sql[2048];
	snprintf(sql, sizeof sql, "%s ORDER BY %s LIMIT %" PRId64, regions_sql, order, limit);
	sqlite3_stmt *st = NULL;
	int rc = HS_EXIT_OK;
	if (load_totals(s, &tot) || snap_prepare(s, &st, sql)) {
		out_err("regions", "%s", snap_error(s));
		rc = snap_exit_code(s);
		snap_close(s);
		return rc;
	}

	static const out_col cols[] = {
		{ "START-END", OUT_LEFT }, { "PERMS", OUT_LEFT }, { "KIND", OUT_LEFT },
		{ "SIZE", OUT_RIGHT }, { "RSS", OUT_RIGHT }, { "PSS", OUT_RIGHT },
		{ "PRIVATE", OUT_RIGHT }, { "SHARED", OUT_RIGHT }, { "SWAP", OUT_RIGHT },
		{ "OWNER", OUT_LEFT }, { "PATH", OUT_LEFT },
	};
	out_table *t = NULL;
	out_json j;
	out_csv c;
	if (fmt == FMT_TABLE) {
		t = out_table_new(cols, (int)(sizeof cols / sizeof *cols));
		if (!t) {
			out_err("regions", "out of memory");
			sqlite3_finalize(st);
			snap_close(s);
			return HS_EXIT_FAIL;
		}
	} else if (fmt == FMT_JSON) {
		out_json_init(&j, stdout);
		out_json_obj(&j, NULL);
		out_json_str(&j, "file", file);
		out_json_arr(&j, "regions");
	} else {
		out_csv_init(&c, stdout);
		static const char *const hdr[] = {
			"start", "end", "perms", "kind", "size_kb", "rss_kb", "pss_kb", "private_kb",
			"shared_kb", "swap_kb", "owner", "module", "tid", "path", "offset", "dev", "inode",
		};
		for (size_t k = 0; k < sizeof hdr / sizeof *hdr; k++)
			out_csv_str(&c, hdr[k]);
		out_csv_end(&c);
	}

	int64_t shown = 0;
	int r;
	char owner[512], range[64], kindbuf[32];
	while ((r = snap_step(s, st)) == 1) {
		shown++;
		uint64_t start = (uint64_t)snap_i64(st, R_START, 0), end = (uint64_t)snap_i64(st, R_END, 0);
		const char *kind = snap_text(st, R_KIND_NAME);
		if (!kind) {
			snprintf(kindbuf, sizeof kindbuf, "%" PRId64, snap_i64(st, R_KIND, -1));
			kind = kindbuf;
		}
		if (fmt == FMT_TABLE) {
			snprintf(range, sizeof range, "%012" PRIx64 "-%012" PRIx64, start, end);
			out_cell(t, range);
			out_cell(t, snap_text(st, R_PERMS));
			out_cell(t, kind);
			for (int col = R_SIZE; col <= R_SWAP; col++)
				out_cell_kb(t, snap_i64(st, col, -1));
			owner_of(st, owner, sizeof owner, 0);
			out_cell(t, owner);
			out_cell(t, snap_text(st, R_PATH));
		} else if (fmt == FMT_JSON) {
			out_json_obj_line(&j, NULL);
			out_json_u64(&j, "start", start);
			out_json_u64(&j, "end", end);
			out_json_str(&j, "perms", snap_text(st, R_PERMS));
			out_json_str(&j, "kind", kind);
			j_opt(&j, "size_kb", st, R_SIZE);
			j_opt(&j, "rss_kb", st, R_RSS);
			j_opt(&j, "pss_kb", st, R_PSS);
			j_opt(&j, "private_kb", st, R_PRIVATE);
			j_opt(&j, "shared_kb", st, R_SHARED);
			j_opt(&j, "swap_kb", st, R_SWAP);
			owner_of(st, owner, sizeof owner, 1);
			out_json_str(&j, "owner", owner[0] ? owner : NULL);
			out_json_str(&j, "module", snap_text(st, R_MODULE));
			j_opt(&j, "tid", st, R_TID);
			j_opt(&j, "arena_id", st, R_ARENA);
			out_json_str(&j, "path", snap_text(st, R_PATH));
			j_opt(&j, "offset", st, R_OFFSET);
			out_json_str(&j, "dev", snap_text(st, R_DEV));
			j_opt(&j, "inode", st, R_INODE);
			out_json_end(&j);
		} else {
			out_csv_hex(&c, start);
			out_csv_hex(&c, end);
			out_csv_str(&c, snap_text(st, R_PERMS));
			out_csv_str(&c, kind);
			for (int col = R_SIZE; col <= R_SWAP; col++)
				csv_opt(&c, st, col);
			owner_of(st, owner, sizeof owner, 1);
			out_csv_str(&c, owner);
			out_csv_str(&c, snap_text(st, R_MODULE));
			csv_opt(&c, st, R_TID);
			out_csv_str(&c, snap_text(st, R_PATH));
			csv_opt(&c, st, R_OFFSET);
			out_csv_str(&c, snap_text(st, R_DEV));
			csv_opt(&c, st, R_INODE);
			out_csv_end(&c);
		}
	}
	sqlite3_finalize(st);
	if (r < 0) {
		/* a damaged page found mid-way: what was printed stays, the error says why */
		if (fmt == FMT_JSON)
			out_json_finish(&j);
		out_err("regions", "%s", snap_error(s));
		rc = snap_exit_code(s);
		out_table_free(t);
		snap_close(s);
		return rc;
	}

	if (fmt == FMT_TABLE) {
		char label[96];
		if (shown < tot.count)
			snprintf(label, sizeof label, "total: %" PRId64 " mappings, %" PRId64 " shown",
				 tot.count, shown);
		else
			snprintf(label, sizeof label, "total: %" PRId64 " mappings", tot.count);
		out_cell(t, label);
		out_cell(t, "");
		out_cell(t, "");
		out_cell_kb(t, tot.size);
		out_cell_kb(t, tot.rss);
		out_cell_kb(t, tot.pss);
		out_cell_kb(t, tot.priv);
		out_cell_kb(t, tot.shared);
		out_cell_kb(t, tot.swap);
		out_cell(t, "");
		out_cell(t, "");
		if (out_table_print(t, stdout)) {
			out_err("regions", "out of memory");
			rc = HS_EXIT_FAIL;
		}
		out_table_free(t);
	} else if (fmt == FMT_JSON) {
		out_json_end(&j);
		out_json_obj(&j, "total");
		out_json_i64(&j, "count", tot.count);
		out_json_i64(&j, "shown", shown);
		const struct { const char *k; int64_t v; } f[] = {
			{ "size_kb", tot.size }, { "rss_kb", tot.rss }, { "pss_kb", tot.pss },
			{ "private_kb", tot.priv }, { "shared_kb", tot.shared }, { "swap_kb", tot.swap },
		};
		for (size_t k = 0; k < sizeof f / sizeof *f; k++)
			if (f[k].v < 0)
				out_json_null(&j, f[k].k);
			else
				out_json_i64(&j, f[k].k, f[k].v);
		out_json_end(&j);
		out_json_finish(&j);
	}
	snap_close(s);
	return rc;
}
