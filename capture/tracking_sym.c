/* tracking_sym.c -- owns the symbolization of the tracking library's stacks (see
 * tracking.h): each distinct stack id used by a tracked chunk is read from the copied
 * stack table and becomes a chain of callsites through symbols.c, exactly as thread
 * backtraces do (frames interned per pc, inlined frames as their own callsites).
 *
 * dlclose: a pc of a stack recorded before a module was unloaded (stack.gen < the
 * unload record's gen, pc inside [lo, hi)) belongs to that module, not to whatever is
 * mapped there now. Such pcs are symbolized by a separate session that holds only the
 * unloaded file at its old load bias; the file is added to c->modules once every stack
 * is done (so no address lookup in between sees an overlapping module).
 */
#define _GNU_SOURCE
#include "tracking.h"

#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload/hp_format.h"

#define TRK_MAX_DEPTH 256
#define TRK_MAX_STACKS (1u << 22)     /* as tracking.c */
#define TRK_MAX_UNLOADS 4096
#define TRK_MAX_PATH 4096

/* one unloaded module, opened on first use */
typedef struct {
	struct hp_unload rec;
	char *path;
	int tried;
	hs_capture mini;      /* one module: the unloaded file at its old bias */
	sym_session *sy;
	long *fmap;           /* mini frame index -> c frame index (-1 not yet) */
	size_t n_fmap;
	int module_idx;       /* its future index in c->modules */
} trk_unloaded;

typedef struct {
	img_image *im;
	hs_capture *c;
	sym_session *sy;
	trk_unloaded *un;
	size_t n_un;
	int n_used;           /* unloaded modules that got a module index */
} trk_sym;

static char *image_string(img_image *im, uint64_t addr)
{
	char buf[TRK_MAX_PATH];
	for (size_t i = 0; i < sizeof buf - 1; i++) {
		int ok = 1;
		if (img_read(im, addr + i, &buf[i], 1))
			ok = 0;
		if (!ok)
			return NULL;
		if (!buf[i])
			return strdup(buf);
	}
	return NULL;
}

static char *file_build_id(const char *root, const char *path)
{
	char p[TRK_MAX_PATH + 64];
	int fd = -1;
	if (root && root[0] && (size_t)snprintf(p, sizeof p, "%s%s", root, path) < sizeof p)
		fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	char *hex = NULL;
	const void *id;
	ssize_t n = e ? dwelf_elf_gnu_build_id(e, &id) : -1;
	if (n > 0 && n <= 64 && (hex = malloc(2 * (size_t)n + 1)))
		for (ssize_t i = 0; i < n; i++)
			snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *)id)[i]);
	if (e)
		elf_end(e);
	close(fd);
	return hex;
}

static int load_unloads(trk_sym *ts, const struct hp_state *st)
{
	uint32_t n = st->n_unloads;
	if (n > st->max_unloads)
		n = st->max_unloads;
	if (n > TRK_MAX_UNLOADS)
		n = TRK_MAX_UNLOADS;
	if (!n)
		return 0;
	ts->un = calloc(n, sizeof *ts->un);
	if (!ts->un)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		trk_unloaded *u = &ts->un[ts->n_un];
		if (img_read(ts->im, st->unload_table + (uint64_t)i * sizeof u->rec, &u->rec, sizeof u->rec))
			continue;
		if (u->rec.lo >= u->rec.hi)
			continue;
		u->module_idx = -1;
		hs_capture_init(&u->mini);
		ts->n_un++;
	}
	return 0;
}

/* The unloaded module a pc of a stack recorded at gen belongs to, or NULL: the oldest
 * unload after gen whose range holds the pc is the module that was mapped there when
 * the stack was recorded (records are oldest first). */
static trk_unloaded *unloaded_for(trk_sym *ts, uint64_t pc, uint32_t gen)
{
	for (size_t i = 0; i < ts->n_un; i++) {
		trk_unloaded *u = &ts->un[i];
		if (gen < u->rec.gen && pc >= u->rec.lo && pc < u->rec.hi)
			return u;
	}
	return NULL;
}

static int open_unloaded(trk_sym *ts, trk_unloaded *u)
{
	if (u->tried)
		return u->sy ? 0 : -1;
	u->tried = 1;
	u->path = image_string(ts->im, u->rec.path);
	if (!u->path)
		return -1;
	hs_module *m = calloc(1, sizeof *m);
	if (!m)
		return -1;
	m->path = strdup(u->path);
	m->load_base = u->rec.bias;
	m->start = u->rec.lo;
	m->end = u->rec.hi;
	u->mini.modules = m;
	u->mini.n_modules = 1;
	if (!m->path)
		return -1;
	u->sy = sym_open(&u->mini, sym_root(ts->sy));
	return u->sy ? 0 : -1;
}

/* c's frame index for a pc in an unloaded module (with its inlined frames just before
 * it, as sym_frame_for_pc gives them), or -1 */
static long unloaded_frame(trk_sym *ts, trk_unloaded *u, uint64_t pc, int *n_inline)
{
	int ninl = 0;
	long mf = sym_frame_for_pc(u->sy, &u->mini, pc, 1, &ninl);
	if (mf < 0)
		return -1;
	if ((size_t)mf >= u->n_fmap) {
		size_t nn = u->mini.n_frames + 16;
		long *p = realloc(u->fmap, nn * sizeof *p);
		if (!p)
			return -1;
		for (size_t i = u->n_fmap; i < nn; i++)
			p[i] = -1;
		u->fmap = p;
		u->n_fmap = nn;
	}
	if (u->fmap[mf] < 0) {
		if (u->module_idx < 0)
			u->module_idx = (int)ts->c->n_modules + ts->n_used++;
		long idx = -1;
		for (long k = mf - ninl; k <= mf; k++) {
			hs_frame f = u->mini.frames[k];
			f.module_idx = u->module_idx;
			f.function = f.function ? strdup(f.function) : NULL;
			f.file = f.file ? strdup(f.file) : NULL;
			idx = hs_add_frame(ts->c, &f);
			if (idx < 0) {
				free(f.function);
				free(f.file);
				return -1;
			}
		}
		u->fmap[mf] = idx;
	}
	*n_inline = ninl;
	return u->fmap[mf];
}

/* The callsite chain of one stack (pcs innermost first, all return addresses). */
static long stack_callsite(trk_sym *ts, const uint64_t *pcs, uint32_t n, uint32_t gen)
{
	long parent = -1;
	int depth = 0;
	for (uint32_t k = n; k-- > 0;) {
		int ninl = 0;
		long f = -1;
		trk_unloaded *u = ts->n_un ? unloaded_for(ts, pcs[k], gen) : NULL;
		if (u && !open_unloaded(ts, u))
			f = unloaded_frame(ts, u, pcs[k], &ninl);
		if (f < 0)
			f = sym_frame_for_pc(ts->sy, ts->c, pcs[k], 1, &ninl);
		if (f < 0)
			return -1;
		parent = hs_add_callsite(ts->c, (int)parent, (int)f, depth++);
		for (int i = 1; i <= ninl && parent >= 0; i++)
			parent = hs_add_callsite(ts->c, (int)parent, (int)(f - i), depth++);
		if (parent < 0)
			return -1;
	}
	return parent;
}

/* Append the unloaded modules that frames refer to, in module_idx order. */
static int add_unloaded_modules(trk_sym *ts)
{
	if (!ts->n_used)
		return 0;
	hs_capture *c = ts->c;
	hs_module *m = realloc(c->modules, (c->n_modules + (size_t)ts->n_used) * sizeof *m);
	if (!m)
		return -ENOMEM;
	c->modules = m;
	size_t base = c->n_modules;
	for (int k = 0; k < ts->n_used; k++)
		memset(&c->modules[base + (size_t)k], 0, sizeof *m);
	for (size_t i = 0; i < ts->n_un; i++) {
		trk_unloaded *u = &ts->un[i];
		if (u->module_idx < 0)
			continue;
		hs_module *d = &c->modules[u->module_idx];
		d->path = strdup(u->path);
		d->build_id = file_build_id(sym_root(ts->sy), u->path);
		d->load_base = u->rec.bias;
		d->start = u->rec.lo;
		d->end = u->rec.hi;
	}
	c->n_modules = base + (size_t)ts->n_used;
	return 0;
}

int trk_symbolize(img_image *im, hs_capture *c, sym_session *sy)
{
	hs_tracking *t = &c->tracking;
	if (!t->valid || !c->n_allocs || !t->n_stacks)
		return 0;
	struct hp_state st;
	if (img_read(im, t->state_addr, &st, sizeof st) || st.magic != HP_MAGIC)
		return 0;
	uint32_t n_stacks = t->n_stacks < st.max_stacks ? t->n_stacks : st.max_stacks;
	if (n_stacks > TRK_MAX_STACKS)
		n_stacks = TRK_MAX_STACKS;
	uint32_t depth_cap = st.max_depth && st.max_depth < TRK_MAX_DEPTH ? st.max_depth : TRK_MAX_DEPTH;
	long *cs_of = malloc((size_t)n_stacks * sizeof *cs_of);
	trk_sym ts = { .im = im, .c = c, .sy = sy };
	int rc = -ENOMEM;
	if (!cs_of || load_unloads(&ts, &st))
		goto out;
	for (uint32_t i = 0; i < n_stacks; i++)
		cs_of[i] = -2;   /* not looked at yet */

	for (size_t i = 0; i < c->n_allocs; i++) {
		hs_alloc *a = &c->allocs[i];
		if (a->origin != HS_AO_STACK || a->stack_id >= n_stacks)
			continue;
		long *cs = &cs_of[a->stack_id];
		if (*cs == -2) {
			*cs = -1;
			int ok = 1;
			uint64_t addr = img_u64(im, st.stack_table + (uint64_t)a->stack_id * 8, &ok);
			struct hp_stack hdr;
			if (ok && addr && !img_read(im, addr, &hdr, sizeof hdr) && hdr.n >= 1) {
				uint32_t n = hdr.n < depth_cap ? hdr.n : depth_cap;
				const uint64_t *pcs = (const void *)img_ptr(im, addr + sizeof hdr, (size_t)n * 8);
				if (pcs) {
					uint64_t copy[TRK_MAX_DEPTH];
					memcpy(copy, pcs, (size_t)n * 8);
					*cs = stack_callsite(&ts, copy, n, hdr.gen);
					if (*cs < 0)
						goto out;   /* only out of memory fails */
				}
			}
		}
		a->callsite = (int)*cs;
		if (*cs < 0)
			a->origin = HS_AO_BAD_STACK;
	}
	rc = add_unloaded_modules(&ts);
out:
	for (size_t i = 0; i < ts.n_un; i++) {
		sym_close(ts.un[i].sy);
		hs_capture_free(&ts.un[i].mini);
		free(ts.un[i].path);
		free(ts.un[i].fmap);
	}
	free(ts.un);
	free(cs_of);
	return rc;
}
