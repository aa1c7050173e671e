/* cmd_retention.c -- the retention commands of issue #4: `leaks`, `dominators`,
 * `retained`, `path` and `histogram`. Each parses its options, loads the snapshot's
 * pointer graph (graph_load.c) and labels (graph_labels.c), and hands them to
 * retention_report.c, which does the printing.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cmdline.h"
#include "commands.h"
#include "graph.h"
#include "graph_labels.h"
#include "output.h"
#include "path_report.h"
#include "retention_report.h"
#include "rootgroups.h"
#include "snapshot.h"
#include "stackfmt.h"

typedef struct {
	snap *s;
	hs_graph g;
	gl_labels gl;
	rr_labels rl;
	char source[512]; /* the last root source named */
} rc_ctx;

static const char *rc_type(void *ctx, uint32_t node)
{
	return gl_type(&((rc_ctx *)ctx)->gl, node);
}

static const char *rc_site(void *ctx, uint32_t node)
{
	return gl_site(&((rc_ctx *)ctx)->gl, node);
}

/* where root r came from, from its root row: module:symbol+off, thread/register, thread
 * stack slot and frame, ... (graph_labels.c) */
static const char *rc_root_source(void *ctx, uint32_t r)
{
	rc_ctx *c = ctx;
	if (!c->g.root_id)
		return NULL;
	return gl_root_source(c->s, c->g.root_id[r], c->source, sizeof c->source);
}

/* open + graph + labels; returns -1 to go on, else the exit code */
static int rc_load(const char *cmd, const char *path, rc_ctx *c)
{
	char err[512];
	int rc;

	memset(c, 0, sizeof *c);
	c->s = cl_open(cmd, path, &rc);
	if (!c->s)
		return rc;
	if (graph_load(c->s, &c->g, err, sizeof err) < 0) {
		out_err(cmd, "%s", err);
		snap_close(c->s);
		return HS_EXIT_FAIL;
	}
	if (!c->g.n && !snap_has_table(c->s, "chunk_edge"))
		fprintf(stderr, "heapsnap %s: this snapshot has no pointer graph\n", cmd);
	if (gl_load(c->s, &c->g, &c->gl) < 0) {
		out_err(cmd, "%s", snap_error(c->s)[0] ? snap_error(c->s) : "out of memory");
		graph_free(&c->g);
		snap_close(c->s);
		return HS_EXIT_FAIL;
	}
	c->rl = (rr_labels){ rc_site, rc_type, rc_root_source, c };
	return -1;
}

static void rc_close(rc_ctx *c)
{
	gl_free(&c->gl);
	graph_free(&c->g);
	snap_close(c->s);
}

static int rc_done(const char *cmd, int rc)
{
	if (rc < 0) {
		out_err(cmd, "out of memory");
		return HS_EXIT_FAIL;
	}
	return HS_EXIT_OK;
}

/* a chunk address (any address inside the chunk) as a node, or -1 with a message */
static int64_t rc_node(const char *cmd, const hs_graph *g, const char *text)
{
	char *end;
	uint64_t a = strtoull(text, &end, 0);
	if (!*text || *end) {
		out_err(cmd, "invalid address '%s'", text);
		return -1;
	}
	int64_t v = graph_find(g, a);
	if (v < 0)
		out_err(cmd, "no in-use chunk contains 0x%" PRIx64, a);
	return v;
}

static int rc_u32(const char *cmd, const char *name, const char *text, uint32_t dflt,
		  uint32_t *out)
{
	int64_t v;
	*out = dflt;
	if (!text)
		return 0;
	if (arg_i64(text, 0, UINT32_MAX, &v)) {
		out_err(cmd, "invalid --%s '%s'", name, text);
		return -1;
	}
	*out = v ? (uint32_t)v : UINT32_MAX;
	return 0;
}

/* ---- --sort: the shared check (cmdline.h), mapped to retention_report's orders ---- */
typedef struct {
	const cl_sort_key *keys;
	const enum rr_sort *order;
	int n;
} rc_sorts;

static const cl_sort_key group_keys[] = { { "bytes", NULL }, { "count", NULL }, { "name", NULL } };
static const enum rr_sort group_order[] = { RR_SORT_DEFAULT, RR_SORT_COUNT, RR_SORT_NAME };
static const rc_sorts group_sorts = { group_keys, group_order, 3 };
static const cl_sort_key ret_keys[] = { { "bytes", NULL }, { "retained", NULL },
					{ "count", NULL }, { "name", NULL } };
static const enum rr_sort ret_order[] = { RR_SORT_DEFAULT, RR_SORT_RETAINED, RR_SORT_COUNT,
					  RR_SORT_NAME };
static const rc_sorts ret_sorts = { ret_keys, ret_order, 4 };
static const cl_sort_key dom_keys[] = { { "retained", NULL }, { "shallow", NULL },
					{ "address", NULL } };
static const enum rr_sort dom_order[] = { RR_SORT_DEFAULT, RR_SORT_SHALLOW, RR_SORT_ADDRESS };
static const rc_sorts dom_sorts = { dom_keys, dom_order, 3 };

/* set the report order from --sort; -1 after the message (exit 2) */
static int rc_sort(const cl_opts *o, const rc_sorts *s)
{
	int k = cl_sort(o, s->keys, s->n, 0);
	if (k < 0)
		return -1;
	rr_set_sort(s->order[k]);
	return 0;
}

/* ---- leaks ---- */

static const char leaks_usage[] =
	"usage: heapsnap leaks FILE [--limit N] [--sort bytes|count|name] [--json]\n";
static const char leaks_help[] =
	"\n"
	"Unreachable and doubtfully reachable heap, with valgrind memcheck's categories and\n"
	"definitions, from the pointer graph of the snapshot:\n"
	"  definitely lost   no pointer from the roots or reachable memory; the leak root of\n"
	"                    its structure (one per leaked structure)\n"
	"  indirectly lost   pointed to only from lost chunks\n"
	"  possibly lost     reachable only through interior pointers\n"
	"  still reachable   reachable from a root through start pointers\n"
	"Each category with chunks and bytes (chunk sizes), by allocation site where the\n"
	"target ran under 'heapsnap run' (else by size), then the leak roots with the bytes\n"
	"each one holds (itself plus its indirectly lost chunks).\n"
	"\n"
	"  --limit N    leak roots shown (default 20; 0 = all)\n"
	"  --sort KEY   the by-site table within each category: bytes (the default), count\n"
	"               or name\n"
	"  --json       {definitely_lost, indirectly_lost, possibly_lost, still_reachable:\n"
	"               {count, bytes}, sites: [{kind, site, count, bytes}], leak_roots}\n"
	"  -h, --help   this help\n"
	"\n"
	"example:\n"
	"  heapsnap leaks s.hsnap\n";

int cmd_leaks(int argc, char **argv)
{
	cl_opts o = { .cmd = "leaks", .usage = leaks_usage, .help = leaks_help, .pos_min = 1,
		      .pos_max = 1, .allow_json = 1, .value_names = { "limit", "sort", NULL } };
	rc_ctx c;
	uint32_t limit;
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	if (rc_u32("leaks", "limit", cl_value(&o, "limit"), 20, &limit) < 0 ||
	    rc_sort(&o, &group_sorts) < 0)
		return HS_EXIT_USAGE;
	if ((rc = rc_load("leaks", o.pos[0], &c)) >= 0)
		return rc;
	rc = rr_leaks(stdout, &c.g, &c.rl, limit, o.json);
	rc_close(&c);
	return rc_done("leaks", rc);
}

/* ---- dominators ---- */

static const char dom_usage[] =
	"usage: heapsnap dominators FILE [--limit N] [--depth D] [--root ADDR]\n"
	"                           [--sort retained|shallow|address] [--json]\n";
static const char dom_help[] =
	"\n"
	"The dominator tree of the heap, largest retained size first: a chunk's retained\n"
	"size is what would be freed with it (the chunks every path from a root to them goes\n"
	"through it), as in Eclipse MAT. Each row: address, retained and shallow bytes, C++\n"
	"class (else the chunk size), allocation site (with 'heapsnap run').\n"
	"\n"
	"  --limit N    children shown per node (default 20; 0 = all)\n"
	"  --sort KEY   which children and in what order: retained (the default), shallow\n"
	"               (largest first) or address\n"
	"  --depth D    levels shown (default 3, at most 12)\n"
	"  --root ADDR  show the subtree under the chunk containing ADDR\n"
	"  --json       {reached_chunks, reached_bytes, nodes: [{address, label, type, site,\n"
	"               shallow_bytes, retained_bytes, children_total, children: [...]}]}\n"
	"  -h, --help   this help\n"
	"\n"
	"example:\n"
	"  heapsnap dominators s.hsnap --depth 2\n";

int cmd_dominators(int argc, char **argv)
{
	cl_opts o = { .cmd = "dominators", .usage = dom_usage, .help = dom_help, .pos_min = 1,
		      .pos_max = 1, .allow_json = 1,
		      .value_names = { "limit", "depth", "root", "sort", NULL } };
	rc_ctx c;
	uint32_t limit, depth;
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	if (rc_u32("dominators", "limit", cl_value(&o, "limit"), 20, &limit) < 0 ||
	    rc_u32("dominators", "depth", cl_value(&o, "depth"), 3, &depth) < 0 ||
	    rc_sort(&o, &dom_sorts) < 0)
		return HS_EXIT_USAGE;
	if ((rc = rc_load("dominators", o.pos[0], &c)) >= 0)
		return rc;
	uint32_t root = UINT32_MAX;
	if (cl_value(&o, "root")) {
		int64_t v = rc_node("dominators", &c.g, cl_value(&o, "root"));
		if (v < 0) {
			rc_close(&c);
			return HS_EXIT_USAGE;
		}
		root = (uint32_t)v;
	}
	rc = rr_dominators(stdout, &c.g, &c.rl, limit, depth, root, o.json);
	rc_close(&c);
	return rc_done("dominators", rc);
}

/* ---- retained ---- */

static const char ret_usage[] =
	"usage: heapsnap retained FILE --by site|type|module|root [--limit N]\n"
	"                         [--sort bytes|retained|count|name] [--json]\n";
static const char ret_help[] =
	"\n"
	"Retained bytes per allocation site or C++ class, computed exactly (MAT's precise\n"
	"retained size): what would become unreachable if every chunk of the group were\n"
	"gone, not the sum of the members' retained sizes. Each group costs one pass over the\n"
	"graph, so only the N groups with the most shallow bytes are computed.\n"
	"By module or root, the groups are groups of roots: the globals of each module, or\n"
	"one thread's registers, stack or TLS, one module's globals, one other mapping; a\n"
	"group retains what would become unreachable without its roots (a chunk that two\n"
	"groups keep alive is retained by neither). All groups in one dominator pass.\n"
	"\n"
	"  --by KEY     site (needs 'heapsnap run'), type (C++ classes), module or root\n"
	"  --limit N    groups computed (site, type) or shown (module, root); default 20,\n"
	"               0 = all\n"
	"  --sort KEY   order of the groups computed (site, type): bytes (shallow: the\n"
	"               default), retained, count or name\n"
	"  --json       {groups_total, groups: [{key, count, shallow_bytes, retained_count,\n"
	"               retained_bytes}]}; module and root add by, kind, module, tid and\n"
	"               roots, and count the chunks the roots point into\n"
	"  -h, --help   this help\n"
	"\n"
	"example:\n"
	"  heapsnap retained s.hsnap --by type\n"
	"  heapsnap retained s.hsnap --by root\n";

int cmd_retained(int argc, char **argv)
{
	cl_opts o = { .cmd = "retained", .usage = ret_usage, .help = ret_help, .pos_min = 1,
		      .pos_max = 1, .allow_json = 1,
		      .value_names = { "by", "limit", "sort", NULL } };
	rc_ctx c;
	uint32_t limit;
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	const char *by = cl_value(&o, "by");
	if (!by || (strcmp(by, "site") && strcmp(by, "type") && strcmp(by, "module") &&
		    strcmp(by, "root"))) {
		out_err("retained", "--by must be site, type, module or root");
		return HS_EXIT_USAGE;
	}
	if (rc_u32("retained", "limit", cl_value(&o, "limit"), 20, &limit) < 0 ||
	    rc_sort(&o, &ret_sorts) < 0)
		return HS_EXIT_USAGE;
	if ((rc = rc_load("retained", o.pos[0], &c)) >= 0)
		return rc;
	if (!strcmp(by, "module") || !strcmp(by, "root")) {
		/* groups of root edges: one dominator pass for all of them (rootgroups.h) */
		rg_by rb = !strcmp(by, "module") ? RG_BY_MODULE : RG_BY_ROOT;
		rg_set set;
		char err[512];
		if (rg_compute(c.s, &c.g, rb, &set, err, sizeof err) < 0) {
			out_err("retained", "%s", err);
			rc_close(&c);
			return HS_EXIT_FAIL;
		}
		rc = rg_print(stdout, &set, rb, limit, o.json);
		rg_free(&set);
	} else {
		rc = rr_retained(stdout, &c.g, !strcmp(by, "site") ? rc_site : rc_type, &c, limit,
				 o.json);
	}
	rc_close(&c);
	return rc_done("retained", rc);
}

/* ---- path ---- */

static const char path_usage[] = "usage: heapsnap path FILE ADDR [--all] [--json]\n";
static const char path_help[] =
	"\n"
	"Why is this chunk alive: the shortest chain of pointers from a root (register,\n"
	"stack slot, global, TLS) to the chunk containing ADDR, each hop with its address,\n"
	"whether the pointer is a start or an interior pointer, where it sits (the byte\n"
	"offset from the previous chunk's user pointer, +0x18; for the first hop the root\n"
	"word: symbol+offset, sp+offset, register), size, class and site, and the root's\n"
	"kind and source (module:symbol+offset, thread and register or stack slot).\n"
	"\n"
	"  --all        one shortest path per root that reaches the chunk (at most 20)\n"
	"  --json       {target, roots_reaching, paths: [{root_kind, root_source, root_slot,\n"
	"               root_offset, hops: [{address, pointer, offset, size, type, site}]}]}\n"
	"               (offset in bytes, null on the first hop)\n"
	"  -h, --help   this help\n"
	"\n"
	"example:\n"
	"  heapsnap path s.hsnap 0x55d0c0a012a0\n";

int cmd_path(int argc, char **argv)
{
	cl_opts o = { .cmd = "path", .usage = path_usage, .help = path_help, .pos_min = 2,
		      .pos_max = 2, .allow_json = 1, .pos_what = "need FILE and ADDR",
		      .flag_names = { "all", NULL } };
	rc_ctx c;
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	int all = cl_flag(&o, "all");
	if ((rc = rc_load("path", o.pos[0], &c)) >= 0)
		return rc;
	int64_t v = rc_node("path", &c.g, o.pos[1]);
	if (v < 0) {
		rc_close(&c);
		return HS_EXIT_USAGE;
	}
	char err[512];
	rc = pr_path(stdout, c.s, &c.g, &c.rl, (uint32_t)v, all ? 20 : 1, o.json, err, sizeof err);
	rc_close(&c);
	if (rc < 0) {
		out_err("path", "%s", err);
		return HS_EXIT_FAIL;
	}
	return HS_EXIT_OK;
}

/* ---- histogram ---- */

static const char hist_usage[] =
	"usage: heapsnap histogram FILE --by type|size [--sort bytes|count|name]\n"
	"                          [--json | --csv]\n";
static const char hist_help[] =
	"\n"
	"In-use chunks and bytes per C++ class (from vtable pointers; other chunks by size)\n"
	"or per chunk size, most bytes first: MAT's class histogram.\n"
	"\n"
	"  --by KEY     type (the default) or size\n"
	"  --sort KEY   bytes (the default), count (largest first) or name\n"
	"  --json       {by, rows: [{type, size, count, bytes}]}\n"
	"  --csv        the table as CSV (type_or_size, chunks, bytes)\n"
	"  -h, --help   this help\n"
	"\n"
	"example:\n"
	"  heapsnap histogram s.hsnap --by type\n";

int cmd_histogram(int argc, char **argv)
{
	cl_opts o = { .cmd = "histogram", .usage = hist_usage, .help = hist_help, .pos_min = 1,
		      .pos_max = 1, .allow_json = 1, .allow_csv = 1,
		      .value_names = { "by", "sort", NULL } };
	rc_ctx c;
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	const char *by = cl_value(&o, "by");
	if (by && strcmp(by, "type") && strcmp(by, "size")) {
		out_err("histogram", "--by must be type or size");
		return HS_EXIT_USAGE;
	}
	if (rc_sort(&o, &group_sorts) < 0)
		return HS_EXIT_USAGE;
	if ((rc = rc_load("histogram", o.pos[0], &c)) >= 0)
		return rc;
	out_table_set_csv(o.csv);   /* --csv: the shared table printer writes CSV */
	rc = rr_histogram(stdout, &c.g, &c.rl, !by || !strcmp(by, "type"), o.json);
	rc_close(&c);
	return rc_done("histogram", rc);
}

/* ---- show ---- */

static const char show_usage[] = "usage: heapsnap show FILE ADDR [--contents] [--json]\n";
static const char show_help[] =
	"\n"
	"One chunk: the chunk containing ADDR with its state, size, C++ class, allocation\n"
	"site, the chunks and roots pointing into it (referrers, at most 50 shown) and the\n"
	"chunks it points into (referents). With --contents, a hex and ASCII dump of its\n"
	"bytes, when the snapshot was captured with 'capture --contents'.\n"
	"\n"
	"  --contents   dump the chunk's bytes\n"
	"  --json       {address, size, state, type, site, referrers:\n"
	"               [{address, pointer}], roots: [{kind, source, pointer}], referents:\n"
	"               [{address, pointer}], contents (hex string or null)}\n"
	"  -h, --help   this help\n"
	"\n"
	"example:\n"
	"  heapsnap show s.hsnap 0x55d0c0a012a0 --contents\n";

#define SHOW_MAX_REFS 50

static void show_dump(FILE *f, uint64_t base, const unsigned char *b, int n)
{
	for (int off = 0; off < n; off += 16) {
		fprintf(f, "  %016" PRIx64 "  ", base + (uint64_t)off);
		for (int i = 0; i < 16; i++) {
			if (off + i < n)
				fprintf(f, "%02x ", b[off + i]);
			else
				fputs("   ", f);
			if (i == 7)
				fputc(' ', f);
		}
		fputs(" |", f);
		for (int i = 0; i < 16 && off + i < n; i++)
			fputc(b[off + i] >= 0x20 && b[off + i] < 0x7f ? b[off + i] : '.', f);
		fputs("|\n", f);
	}
}

int cmd_show(int argc, char **argv)
{
	cl_opts o = { .cmd = "show", .usage = show_usage, .help = show_help, .pos_min = 2,
		      .pos_max = 2, .allow_json = 1, .pos_what = "need FILE and ADDR",
		      .flag_names = { "contents", NULL } };
	rc_ctx c;
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	int contents = cl_flag(&o, "contents");
	char *end;
	uint64_t a = strtoull(o.pos[1], &end, 0);
	if (!*o.pos[1] || *end) {
		out_err("show", "invalid address '%s'", o.pos[1]);
		return HS_EXIT_USAGE;
	}
	if ((rc = rc_load("show", o.pos[0], &c)) >= 0)
		return rc;

	/* the chunk, whatever its state */
	sqlite3_stmt *st = NULL;
	uint64_t caddr = 0, csize = 0;
	char state[64] = "";
	if (snap_prepare(c.s, &st, "SELECT c.addr, c.size, s.name FROM chunk c LEFT JOIN "
			 "chunk_state s ON s.id = c.state WHERE c.addr <= ?1 AND ?1 < c.addr + "
			 "c.size ORDER BY c.addr DESC LIMIT 1") < 0) {
		out_err("show", "%s", snap_error(c.s));
		rc_close(&c);
		return HS_EXIT_FAIL;
	}
	sqlite3_bind_int64(st, 1, (int64_t)a);
	int found = snap_step(c.s, st) == 1;
	if (found) {
		caddr = (uint64_t)snap_i64(st, 0, 0);
		csize = (uint64_t)snap_i64(st, 1, 0);
		snprintf(state, sizeof state, "%s", snap_text(st, 2) ? snap_text(st, 2) : "?");
	}
	sqlite3_finalize(st);
	if (!found) {
		out_err("show", "no chunk contains 0x%" PRIx64, a);
		rc_close(&c);
		return HS_EXIT_USAGE;
	}
	int64_t v = graph_find(&c.g, a);

	/* contents */
	unsigned char *bytes = NULL;
	int nbytes = 0, have_contents = 0;
	if (contents && snap_has_table(c.s, "chunk_content") == 1 &&
	    snap_prepare(c.s, &st, "SELECT bytes FROM chunk_content WHERE addr = ?") == 0) {
		sqlite3_bind_int64(st, 1, (int64_t)caddr);
		if (snap_step(c.s, st) == 1) {
			const void *b = sqlite3_column_blob(st, 0);
			nbytes = sqlite3_column_bytes(st, 0);
			bytes = malloc(nbytes ? (size_t)nbytes : 1);
			if (bytes) {
				if (nbytes)
					memcpy(bytes, b, (size_t)nbytes);
				have_contents = 1;
			}
		}
		sqlite3_finalize(st);
	}

	const char *type = v >= 0 ? gl_type(&c.gl, (uint32_t)v) : NULL;
	const char *site = v >= 0 ? gl_site(&c.gl, (uint32_t)v) : NULL;
	out_json j;
	if (o.json) {
		char buf[32];
		out_json_init(&j, stdout);
		out_json_obj(&j, NULL);
		snprintf(buf, sizeof buf, "0x%" PRIx64, caddr);
		out_json_str(&j, "address", buf);
		out_json_u64(&j, "size", csize);
		out_json_str(&j, "state", state);
		out_json_str(&j, "type", type);
		out_json_str(&j, "site", site);
	} else {
		char sz[OUT_SIZE_LEN];
		printf("chunk 0x%" PRIx64 " (user pointer 0x%" PRIx64 "): %s, %s\n", caddr,
		       caddr + 16, state, out_size(sz, csize));
		printf("type: %s\nsite: %s\n", type ? type : "-", site ? site : "-");
	}
	if (v >= 0) {
		uint32_t node = (uint32_t)v, shown = 0;
		if (o.json)
			out_json_arr(&j, "referrers");
		else
			printf("referrers:\n");
		for (uint32_t u = 0; u < c.g.n && shown < SHOW_MAX_REFS; u++)
			for (uint32_t e = c.g.edge_start[u]; e < c.g.edge_start[u + 1]; e++) {
				if (GRAPH_NODE(c.g.edge_dst[e]) != node)
					continue;
				int in = !!(c.g.edge_dst[e] & GRAPH_INTERIOR);
				shown++;
				if (o.json) {
					char buf[32];
					out_json_obj_line(&j, NULL);
					snprintf(buf, sizeof buf, "0x%" PRIx64, c.g.addr[u]);
					out_json_str(&j, "address", buf);
					out_json_str(&j, "pointer", in ? "interior" : "start");
					out_json_end(&j);
				} else {
					printf("  chunk 0x%" PRIx64 "  %s\n", c.g.addr[u],
					       in ? "interior pointer" : "pointer");
				}
				break;
			}
		if (o.json) {
			out_json_end(&j);
			out_json_arr(&j, "roots");
		}
		shown = 0;
		for (uint32_t r = 0; r < c.g.n_roots && shown < SHOW_MAX_REFS; r++) {
			if (GRAPH_NODE(c.g.root_dst[r]) != node)
				continue;
			int in = !!(c.g.root_dst[r] & GRAPH_INTERIOR);
			const char *src = rc_root_source(&c, r);
			shown++;
			if (o.json) {
				out_json_obj_line(&j, NULL);
				out_json_str(&j, "kind", rr_root_kind_name(c.g.root_kind[r]));
				out_json_str(&j, "source", src);
				out_json_str(&j, "pointer", in ? "interior" : "start");
				out_json_end(&j);
			} else {
				printf("  %s root %s  %s\n", rr_root_kind_name(c.g.root_kind[r]),
				       src ? src : "", in ? "interior pointer" : "pointer");
			}
		}
		if (o.json) {
			out_json_end(&j);
			out_json_arr(&j, "referents");
		} else {
			printf("referents:\n");
		}
		for (uint32_t e = c.g.edge_start[node]; e < c.g.edge_start[node + 1]; e++) {
			uint32_t t = GRAPH_NODE(c.g.edge_dst[e]);
			int in = !!(c.g.edge_dst[e] & GRAPH_INTERIOR);
			if (o.json) {
				char buf[32];
				out_json_obj_line(&j, NULL);
				snprintf(buf, sizeof buf, "0x%" PRIx64, c.g.addr[t]);
				out_json_str(&j, "address", buf);
				out_json_str(&j, "pointer", in ? "interior" : "start");
				out_json_end(&j);
			} else {
				printf("  chunk 0x%" PRIx64 "  %s\n", c.g.addr[t],
				       in ? "interior pointer" : "pointer");
			}
		}
		if (o.json)
			out_json_end(&j);
	} else if (!o.json) {
		printf("not in use: not in the pointer graph\n");
	}
	if (o.json) {
		if (have_contents) {
			char *hex = malloc((size_t)nbytes * 2 + 1);
			if (hex) {
				for (int i = 0; i < nbytes; i++)
					sprintf(hex + 2 * i, "%02x", bytes[i]);
				hex[2 * nbytes] = 0;
			}
			out_json_str(&j, "contents", hex);
			free(hex);
		} else {
			out_json_null(&j, "contents");
		}
		out_json_end(&j);
		out_json_finish(&j);
	} else if (contents) {
		if (have_contents) {
			printf("contents (%d bytes from the user pointer):\n", nbytes);
			show_dump(stdout, caddr + 16, bytes, nbytes);
		} else {
			printf("contents: not in this snapshot (capture with --contents)\n");
		}
	}
	free(bytes);
	rc_close(&c);
	return HS_EXIT_OK;
}
