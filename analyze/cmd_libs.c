/* cmd_libs.c -- `heapsnap libs FILE`: memory charged to each module (the executable and
 * every shared library): its mapped segments with their smaps figures, the live heap its
 * code allocated (when the target ran under `heapsnap run`), and what is not attributed
 * to any module, so that the sums reconcile with the process RSS. Data: libfig.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "commands.h"
#include "libfig.h"
#include "output.h"
#include "snapshot.h"
#include "stackfmt.h"

static const char libs_usage[] =
	"usage: heapsnap libs FILE [--json | --csv] [--sort KEY] [--limit N]\n";

static const char libs_help[] =
	"\n"
	"Memory charged to each module, the executable and every shared library:\n"
	"  mapped footprint   text, rodata (with relro), data and bss, each as VIRT (Size),\n"
	"                     RSS, PSS (shared pages divided among the processes mapping them),\n"
	"                     PRIVATE (USS: pages only this process maps), SHARED (pages others\n"
	"                     map too) and SWAP, from /proc/PID/smaps at the capture;\n"
	"                     FILE-RSS is what top counts in its SHR column (resident file pages,\n"
	"                     shared or not): top's SHR = RssFile + RssShmem of the process;\n"
	"  heap               live heap bytes (as requested) and chunks allocated from code in\n"
	"                     the module: the first frame of the allocating stack outside libc,\n"
	"                     libstdc++, libgcc_s, ld.so and heapsnap's preload library (as\n"
	"                     'top' names sites). Needs allocation\n"
	"                     tracking (heapsnap run); otherwise 'n/a (target not tracked)';\n"
	"  retained           heap bytes the module's globals (.data, .bss, .got) retain: the\n"
	"                     chunks that would become unreachable without them, from the\n"
	"                     dominator tree of the pointer graph (as 'retained --by\n"
	"                     module'); n/a when the capture ran with --no-graph.\n"
	"Then what no module is charged with (anonymous memory, [heap], arena heaps, mmapped\n"
	"chunks, thread stacks, vdso, ...), and the reconciliation: modules + not attributed =\n"
	"the sum of every mapping's Rss, compared with VmRSS.\n"
	"\n"
	"  --sort KEY   rss (default), pss, private, virt, heap or name\n"
	"  --limit N    at most N modules (totals still cover all)\n"
	"  --json       everything above for scripts; sizes in kB (*_kb) or bytes\n"
	"  --csv        one line per module and segment, sizes in kB\n"
	"  -h, --help   this help\n"
	"\n"
	"examples:\n"
	"  heapsnap libs s.hsnap\n"
	"  heapsnap libs s.hsnap --sort heap --limit 10\n"
	"  heapsnap libs s.hsnap --json | jq '.modules[] | {path, rss: .total.rss_kb}'\n";

static const char *libs_sort_key;

static int64_t libs_key(const lib_module *m)
{
	if (!strcmp(libs_sort_key, "pss"))
		return m->total.pss;
	if (!strcmp(libs_sort_key, "private"))
		return m->total.priv;
	if (!strcmp(libs_sort_key, "virt"))
		return m->total.virt;
	if (!strcmp(libs_sort_key, "heap"))
		return m->heap_bytes;
	return m->total.rss;
}

static int libs_cmp(const void *a, const void *b)
{
	const lib_module *x = a, *y = b;
	if (!strcmp(libs_sort_key, "name"))
		return strcmp(stk_base(x->path), stk_base(y->path));
	int64_t kx = libs_key(x), ky = libs_key(y);
	if (kx != ky)
		return kx < ky ? 1 : -1;
	return strcmp(x->path, y->path);
}

static void j_fig(out_json *j, const char *key, const lib_fig *f)
{
	out_json_obj_line(j, key);
	out_json_i64(j, "virt_kb", f->virt);
	out_json_i64(j, "rss_kb", f->rss);
	out_json_i64(j, "pss_kb", f->pss);
	out_json_i64(j, "private_kb", f->priv);
	out_json_i64(j, "shared_kb", f->shared);
	out_json_i64(j, "swap_kb", f->swap);
	out_json_i64(j, "file_rss_kb", f->file_rss);
	out_json_i64(j, "mappings", f->mappings);
	out_json_end(j);
}

static void j_opt_kb(out_json *j, const char *key, int64_t v)
{
	if (v < 0)
		out_json_null(j, key);
	else
		out_json_i64(j, key, v);
}

static void t_fig(out_table *t, const lib_fig *f)
{
	out_cell_kb(t, f->virt);
	out_cell_kb(t, f->rss);
	out_cell_kb(t, f->pss);
	out_cell_kb(t, f->priv);
	out_cell_kb(t, f->shared);
	out_cell_kb(t, f->swap);
	out_cell_kb(t, f->file_rss);
}

static void libs_json(const char *file, const lib_report *r, int nshow)
{
	out_json j;
	out_json_init(&j, stdout);
	out_json_obj(&j, NULL);
	out_json_str(&j, "file", file);
	out_json_obj(&j, "process");
	j_opt_kb(&j, "vm_size_kb", r->vm_size);
	j_opt_kb(&j, "vm_rss_kb", r->vm_rss);
	j_opt_kb(&j, "rss_anon_kb", r->rss_anon);
	j_opt_kb(&j, "rss_file_kb", r->rss_file);
	j_opt_kb(&j, "rss_shmem_kb", r->rss_shmem);
	j_opt_kb(&j, "top_shr_kb", r->rss_file < 0 || r->rss_shmem < 0 ? -1 : r->rss_file + r->rss_shmem);
	j_opt_kb(&j, "vm_swap_kb", r->vm_swap);
	out_json_end(&j);
	out_json_bool(&j, "tracked", r->tracked);
	out_json_arr(&j, "modules");
	for (int i = 0; i < nshow; i++) {
		const lib_module *m = &r->mods[i];
		out_json_obj(&j, NULL);
		out_json_str(&j, "path", m->path);
		out_json_str(&j, "name", stk_base(m->path));
		out_json_str(&j, "build_id", m->build_id);
		out_json_bool(&j, "is_main", m->is_main);
		out_json_bool(&j, "allocator", m->is_allocator);
		out_json_obj(&j, "segments");
		for (int k = 0; k < LIB_NSEG; k++)
			j_fig(&j, lib_seg_name[k], &m->seg[k]);
		out_json_end(&j);
		j_fig(&j, "total", &m->total);
		if (r->tracked) {
			out_json_obj_line(&j, "heap");
			out_json_i64(&j, "bytes", m->heap_bytes);
			out_json_i64(&j, "count", m->heap_count);
			out_json_end(&j);
		} else {
			out_json_null(&j, "heap");
		}
		if (r->has_graph) {
			out_json_i64(&j, "globals_retained_bytes", m->globals_retained_bytes);
			out_json_i64(&j, "globals_retained_count", m->globals_retained_count);
		} else {
			out_json_null(&j, "globals_retained_bytes");
			out_json_null(&j, "globals_retained_count");
		}
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_arr(&j, "unattributed");
	for (int k = 0; k < LIB_MAX_KINDS; k++) {
		if (!r->other[k].mappings)
			continue;
		out_json_obj_line(&j, NULL);
		out_json_str(&j, "kind", r->other_name[k]);
		out_json_i64(&j, "virt_kb", r->other[k].virt);
		out_json_i64(&j, "rss_kb", r->other[k].rss);
		out_json_i64(&j, "pss_kb", r->other[k].pss);
		out_json_i64(&j, "private_kb", r->other[k].priv);
		out_json_i64(&j, "shared_kb", r->other[k].shared);
		out_json_i64(&j, "swap_kb", r->other[k].swap);
		out_json_i64(&j, "mappings", r->other[k].mappings);
		out_json_end(&j);
	}
	out_json_end(&j);
	out_json_obj(&j, "heap");
	out_json_i64(&j, "in_use_bytes", r->heap_inuse_bytes);
	out_json_i64(&j, "in_use_count", r->heap_inuse_count);
	out_json_i64(&j, "free_bytes", r->heap_free_bytes);
	if (r->tracked) {
		out_json_i64(&j, "tracked_bytes", r->tracked_bytes);
		out_json_i64(&j, "tracked_count", r->tracked_count);
		out_json_i64(&j, "allocator_only_bytes", r->alloc_only_bytes);
		out_json_i64(&j, "allocator_only_count", r->alloc_only_count);
	}
	if (r->has_graph)
		out_json_i64(&j, "globals_retained_bytes", r->globals_retained_bytes);
	else
		out_json_null(&j, "globals_retained_bytes");
	out_json_end(&j);
	out_json_obj(&j, "totals");
	j_fig(&j, "modules", &r->mods_total);
	j_fig(&j, "unattributed", &r->other_total);
	j_fig(&j, "all_mappings", &r->all);
	j_opt_kb(&j, "vm_rss_kb", r->vm_rss);
	if (r->vm_rss < 0)
		out_json_null(&j, "vm_rss_minus_mappings_kb");
	else
		out_json_i64(&j, "vm_rss_minus_mappings_kb", r->vm_rss - r->all.rss);
	out_json_end(&j);
	out_json_finish(&j);
}

static void libs_csv(const lib_report *r, int nshow)
{
	out_csv c;
	out_csv_init(&c, stdout);
	static const char *const hdr[] = { "module", "path", "build_id", "segment", "virt_kb", "rss_kb",
					   "pss_kb", "private_kb", "shared_kb", "swap_kb", "file_rss_kb",
					   "heap_bytes", "heap_count", "globals_retained_bytes" };
	for (size_t k = 0; k < sizeof hdr / sizeof *hdr; k++)
		out_csv_str(&c, hdr[k]);
	out_csv_end(&c);
	for (int i = 0; i < nshow; i++) {
		const lib_module *m = &r->mods[i];
		for (int k = 0; k <= LIB_NSEG; k++) {
			const lib_fig *f = k < LIB_NSEG ? &m->seg[k] : &m->total;
			out_csv_str(&c, stk_base(m->path));
			out_csv_str(&c, m->path);
			out_csv_str(&c, m->build_id);
			out_csv_str(&c, k < LIB_NSEG ? lib_seg_name[k] : "total");
			const int64_t v[] = { f->virt, f->rss, f->pss, f->priv, f->shared, f->swap, f->file_rss };
			for (size_t x = 0; x < sizeof v / sizeof *v; x++)
				out_csv_i64(&c, v[x]);
			if (k == LIB_NSEG && r->tracked) {
				out_csv_i64(&c, m->heap_bytes);
				out_csv_i64(&c, m->heap_count);
			} else {
				out_csv_str(&c, NULL);
				out_csv_str(&c, NULL);
			}
			if (k == LIB_NSEG && r->has_graph)
				out_csv_i64(&c, m->globals_retained_bytes);
			else
				out_csv_str(&c, NULL);
			out_csv_end(&c);
		}
	}
}

static int libs_table(const lib_report *r, int nshow)
{
	static const out_col cols[] = {
		{ "MODULE", OUT_LEFT }, { "SEGMENT", OUT_LEFT }, { "VIRT", OUT_RIGHT }, { "RSS", OUT_RIGHT },
		{ "PSS", OUT_RIGHT }, { "PRIVATE", OUT_RIGHT }, { "SHARED", OUT_RIGHT }, { "SWAP", OUT_RIGHT },
		{ "FILE-RSS", OUT_RIGHT }, { "HEAP", OUT_RIGHT }, { "CHUNKS", OUT_RIGHT },
		{ "RETAINED", OUT_RIGHT },
	};
	out_table *t = out_table_new(cols, (int)(sizeof cols / sizeof *cols));
	if (!t)
		return -1;
	for (int i = 0; i < nshow; i++) {
		const lib_module *m = &r->mods[i];
		int first = 1;
		for (int k = 0; k <= LIB_NSEG; k++) {
			const lib_fig *f = k < LIB_NSEG ? &m->seg[k] : &m->total;
			if (k < LIB_NSEG && !f->mappings)
				continue;
			out_cell(t, first ? stk_base(m->path) : "");
			first = 0;
			out_cell(t, k < LIB_NSEG ? lib_seg_name[k] : "total");
			t_fig(t, f);
			if (k < LIB_NSEG) {
				out_cell(t, "");
				out_cell(t, "");
			} else if (!r->tracked) {
				out_cell(t, "n/a");
				out_cell(t, "n/a");
			} else if (m->is_allocator) {
				out_cell(t, "-");
				out_cell(t, "-");
			} else {
				out_cell_size(t, (uint64_t)m->heap_bytes);
				out_cell_u64(t, (uint64_t)m->heap_count);
			}
			if (k < LIB_NSEG)
				out_cell(t, "");
			else if (r->has_graph)
				out_cell_size(t, (uint64_t)m->globals_retained_bytes);
			else
				out_cell(t, "n/a");
		}
	}
	out_cell(t, "all modules");
	out_cell(t, "");
	t_fig(t, &r->mods_total);
	if (r->tracked) {
		out_cell_size(t, (uint64_t)(r->tracked_bytes - r->alloc_only_bytes));
		out_cell_u64(t, (uint64_t)(r->tracked_count - r->alloc_only_count));
	} else {
		out_cell(t, "n/a");
		out_cell(t, "n/a");
	}
	if (r->has_graph)
		out_cell_size(t, (uint64_t)r->globals_retained_bytes);
	else
		out_cell(t, "n/a");
	int rc = out_table_print(t, stdout);
	out_table_free(t);
	if (rc)
		return -1;
	if (nshow < r->nmods)
		printf("(%d of %d modules shown; totals cover all)\n", nshow, r->nmods);
	if (!r->tracked)
		puts("HEAP: n/a (target not tracked); start it with 'heapsnap run' to charge heap to modules");
	else
		printf("HEAP: live requested bytes allocated from the module's code; %s in %" PRId64
		       " chunks had no frame outside the C/C++ runtime libraries\n",
		       out_size((char[OUT_SIZE_LEN]){ 0 }, (uint64_t)r->alloc_only_bytes), r->alloc_only_count);
	if (r->has_graph)
		puts("RETAINED: heap the module's globals retain (unreachable without them)");
	else
		puts("RETAINED: n/a (no pointer graph: captured with --no-graph, or no heap)");

	static const out_col ocols[] = {
		{ "NOT ATTRIBUTED", OUT_LEFT }, { "MAPPINGS", OUT_RIGHT }, { "VIRT", OUT_RIGHT },
		{ "RSS", OUT_RIGHT }, { "PSS", OUT_RIGHT }, { "PRIVATE", OUT_RIGHT }, { "SHARED", OUT_RIGHT },
		{ "SWAP", OUT_RIGHT },
	};
	t = out_table_new(ocols, (int)(sizeof ocols / sizeof *ocols));
	if (!t)
		return -1;
	for (int k = 0; k < LIB_MAX_KINDS; k++) {
		const lib_fig *f = &r->other[k];
		if (!f->mappings)
			continue;
		out_cell(t, r->other_name[k]);
		out_cell_u64(t, (uint64_t)f->mappings);
		out_cell_kb(t, f->virt);
		out_cell_kb(t, f->rss);
		out_cell_kb(t, f->pss);
		out_cell_kb(t, f->priv);
		out_cell_kb(t, f->shared);
		out_cell_kb(t, f->swap);
	}
	const struct { const char *label; const lib_fig *f; } tot[] = {
		{ "total not attributed", &r->other_total },
		{ "+ all modules", &r->mods_total },
		{ "= all mappings", &r->all },
	};
	for (size_t k = 0; k < sizeof tot / sizeof *tot; k++) {
		out_cell(t, tot[k].label);
		out_cell_u64(t, (uint64_t)tot[k].f->mappings);
		out_cell_kb(t, tot[k].f->virt);
		out_cell_kb(t, tot[k].f->rss);
		out_cell_kb(t, tot[k].f->pss);
		out_cell_kb(t, tot[k].f->priv);
		out_cell_kb(t, tot[k].f->shared);
		out_cell_kb(t, tot[k].f->swap);
	}
	putchar('\n');
	rc = out_table_print(t, stdout);
	out_table_free(t);
	if (rc)
		return -1;
	char a[OUT_SIZE_LEN], b[OUT_SIZE_LEN], c[OUT_SIZE_LEN], d[OUT_SIZE_LEN];
	printf("\nheap (in [heap], arena heaps, mmapped chunks above): %s in use, %s free in the allocator\n",
	       out_size(a, (uint64_t)r->heap_inuse_bytes), out_size(b, (uint64_t)r->heap_free_bytes));
	if (r->vm_rss >= 0)
		printf("process: VmRSS %s (smaps Rss of all mappings %s, difference %+" PRId64 " kB: the\n"
		       "  kernel's RSS counters vs the page walk); top's SHR %s (RssFile + RssShmem)\n",
		       out_size_kb(a, r->vm_rss), out_size_kb(b, r->all.rss), r->vm_rss - r->all.rss,
		       out_size_kb(c, r->rss_file < 0 || r->rss_shmem < 0 ? -1 : r->rss_file + r->rss_shmem));
	(void)d;
	return 0;
}

int cmd_libs(int argc, char **argv)
{
	cl_opts o = {
		.cmd = "libs", .usage = libs_usage, .help = libs_help,
		.pos_min = 1, .pos_max = 1, .allow_json = 1, .allow_csv = 1,
		.value_names = { "limit", "sort", NULL },
	};
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	long long limit;
	if (cl_limit(&o, -1, &limit))
		return HS_EXIT_USAGE;
	libs_sort_key = cl_value(&o, "sort") ? cl_value(&o, "sort") : "rss";
	static const char *const keys[] = { "rss", "pss", "private", "virt", "heap", "name" };
	int ok = 0;
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
		ok |= !strcmp(keys[k], libs_sort_key);
	if (!ok) {
		out_err("libs", "invalid --sort '%s' (rss, pss, private, virt, heap, name)", libs_sort_key);
		return HS_EXIT_USAGE;
	}
	snap *s = cl_open("libs", o.pos[0], &rc);
	if (!s)
		return rc;
	lib_report r;
	if (lib_load(s, &r)) {
		const char *e = snap_error(s);
		out_err("libs", "%s", e && *e ? e : "out of memory");
		rc = e && *e ? snap_exit_code(s) : HS_EXIT_FAIL;
		lib_free(&r);
		snap_close(s);
		return rc;
	}
	char err[512];
	if (lib_load_retained(s, &r, err, sizeof err)) {
		out_err("libs", "%s", err);
		lib_free(&r);
		snap_close(s);
		return HS_EXIT_FAIL;
	}
	qsort(r.mods, (size_t)r.nmods, sizeof *r.mods, libs_cmp);
	int nshow = limit >= 0 && limit < r.nmods ? (int)limit : r.nmods;
	if (o.json)
		libs_json(o.pos[0], &r, nshow);
	else if (o.csv)
		libs_csv(&r, nshow);
	else if (libs_table(&r, nshow)) {
		out_err("libs", "out of memory");
		rc = HS_EXIT_FAIL;
	}
	lib_free(&r);
	snap_close(s);
	return rc;
}
