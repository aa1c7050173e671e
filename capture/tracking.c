/* tracking.c -- owns the join of the tracking library's data with the heap walk (see
 * tracking.h): finding `heapsnap_tracker_state`, validating it, decoding the header of
 * every in-use chunk with hp_decode(), and checking the headers found against the
 * library's own live counters per stack, both ways. Symbolization of the stacks is in
 * tracking_sym.c.
 *
 * Everything read from the image is untrusted: counts are clamped to their capacities
 * and to our own limits, and a table that was not copied is reported in the note, never
 * guessed.
 */
#define _GNU_SOURCE
#include "tracking.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modules.h"
#include "preload/hp_format.h"

#define TRK_LIB_NAME "libheapsnap_preload.so"
#define TRK_MAX_STACKS (1u << 22)     /* the library holds up to 2^21 */
#define TRK_MAX_THREADS 65536u

_Static_assert(sizeof(struct hp_state) == 256, "hp_state is 256 bytes");
_Static_assert(sizeof(struct hp_thread_pub) == 128, "hp_thread_pub is 128 bytes");

int trk_is_library(const char *path)
{
	if (!path)
		return 0;
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	size_t n = strlen(TRK_LIB_NAME);
	/* "libheapsnap_preload.so" or "libheapsnap_preload.so (deleted)" */
	return !strncmp(b, TRK_LIB_NAME, n) && (!b[n] || b[n] == ' ');
}

static void note(hs_tracking *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(hs_tracking *t, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (t->note) {
		char *joined;
		if (asprintf(&joined, "%s; %s", t->note, buf) < 0)
			return;
		free(t->note);
		t->note = joined;
	} else {
		t->note = strdup(buf);
	}
}

/* st_value of a defined symbol in the .dynsym of the ELF open on fd: 0, or -1 */
static int dynsym_value(int fd, const char *name, uint64_t *value)
{
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e)
		return -1;
	int rc = -1;
	Elf_Scn *scn = NULL;
	while (rc && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		size_t n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n && i < (1u << 24); i++) {
			GElf_Sym sym;
			if (!gelf_getsym(d, (int)i, &sym))
				break;
			const char *nm = elf_strptr(e, sh.sh_link, sym.st_name);
			if (nm && !strcmp(nm, name) && sym.st_shndx != SHN_UNDEF) {
				*value = sym.st_value;
				rc = 0;
				break;
			}
		}
	}
	elf_end(e);
	return rc;
}

int trk_locate(pid_t pid, const mc_vmas *m, uint64_t *state_addr, uint64_t *text_lo,
	       uint64_t *text_hi)
{
	const mc_vma *hit = NULL;
	for (size_t i = 0; i < m->n && !hit; i++)
		if (m->v[i].offset == 0 && trk_is_library(m->v[i].path))
			hit = &m->v[i];
	if (!hit)
		return -ENOENT;
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, hit->lo,
		 hit->hi);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint64_t value = 0, vaddr0 = 0;
	int rc = dynsym_value(fd, HP_STATE_SYMBOL, &value);
	/* the load bias: the mapping of file offset 0 is the first PT_LOAD's page */
	Elf *e = rc ? NULL : elf_begin(fd, ELF_C_READ_MMAP, NULL);
	size_t nph = 0;
	if (e && !elf_getphdrnum(e, &nph))
		for (size_t i = 0; i < nph; i++) {
			GElf_Phdr ph;
			if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD) {
				vaddr0 = ph.p_vaddr & ~(uint64_t)4095;
				break;
			}
		}
	if (e)
		elf_end(e);
	close(fd);
	if (rc)
		return -ENOENT;
	*state_addr = hit->lo - vaddr0 + value;
	*text_lo = *text_hi = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].perms[2] == 'x' && !strcmp(m->v[i].path, hit->path)) {
			if (!*text_lo || m->v[i].lo < *text_lo)
				*text_lo = m->v[i].lo;
			if (m->v[i].hi > *text_hi)
				*text_hi = m->v[i].hi;
		}
	return 0;
}

/* The index of a counted stack id in the per-id arrays: real ids as themselves, then
 * HP_STACK_NONE and HP_STACK_OVERFLOW; -1 for ids that are not counted. */
static long counted_index(uint32_t id, uint32_t n_stacks)
{
	if (id >= 1 && id < n_stacks)
		return id;
	if (id == HP_STACK_NONE)
		return n_stacks;
	if (id == HP_STACK_OVERFLOW)
		return (long)n_stacks + 1;
	return -1;
}

typedef struct {
	int64_t count, bytes;
} trk_cnt;

/* Sum the live counters of every thread record into cnt (n_stacks + 2 entries).
 * 0, or -1 if some record or block was not in the copy. */
static int sum_counters(img_image *im, const struct hp_state *st, uint32_t n_stacks,
			uint32_t n_threads, trk_cnt *cnt)
{
	int complete = 0;
	uint32_t ndirs = (n_stacks + HP_CNT_PER - 1) / HP_CNT_PER;
	for (uint32_t r = 0; r < n_threads; r++) {
		const struct hp_thread_pub *pub =
			(const void *)img_ptr(im, st->thread_table + (uint64_t)r * sizeof *pub, sizeof *pub);
		if (!pub) {
			complete = -1;
			continue;
		}
		uint64_t dir = pub->counters;
		if (!dir)
			continue;
		for (uint32_t k = 0; k <= ndirs && k < HP_CNT_DIRS; k++) {
			uint32_t d = k < ndirs ? k : HP_CNT_DIRS - 1;   /* last: the reserved ids */
			if (k == ndirs && ndirs == HP_CNT_DIRS)
				break;
			int ok = 1;
			uint64_t blk = img_u64(im, dir + (uint64_t)d * 8, &ok);
			if (!ok) {
				complete = -1;
				break;
			}
			if (!blk)
				continue;
			const int64_t *p = (const void *)img_ptr(im, blk, 2 * sizeof(int64_t) * HP_CNT_PER);
			if (!p) {
				complete = -1;
				continue;
			}
			for (uint32_t i = 0; i < HP_CNT_PER; i++) {
				long x = counted_index(d * HP_CNT_PER + i, n_stacks);
				if (x < 0)
					continue;
				cnt[x].count += p[2 * i];
				cnt[x].bytes += p[2 * i + 1];
			}
		}
	}
	return complete;
}

static enum hs_alloc_origin origin_of(const struct hp_block *b, uint32_t n_stacks)
{
	if (b->unsampled || b->stack == HP_STACK_UNSAMPLED)
		return HS_AO_UNSAMPLED;
	if (b->stack == HP_STACK_INTERNAL)
		return HS_AO_INTERNAL;
	if (b->stack == HP_STACK_NONE)
		return HS_AO_NO_STACK;
	if (b->stack == HP_STACK_OVERFLOW)
		return HS_AO_TABLE_FULL;
	if (b->stack >= n_stacks)
		return HS_AO_BAD_STACK;
	return HS_AO_STACK;
}

/* Read and check the state; 0 if valid, else a note is set. */
static int read_state(img_image *im, hs_tracking *t, struct hp_state *st)
{
	if (img_read(im, t->state_addr, st, sizeof *st)) {
		note(t, "the tracker state at %#llx was not in the copy",
		     (unsigned long long)t->state_addr);
		return -1;
	}
	if (st->magic != HP_MAGIC) {
		note(t, "the library is loaded but not initialized (no block has a header)");
		return -1;
	}
	if (st->version != HP_FORMAT_VERSION || st->state_size < sizeof *st ||
	    st->hdr_size != HP_HDR_SIZE) {
		note(t, "unknown tracker format (version %u, state %u bytes, header %u bytes)",
		     st->version, st->state_size, st->hdr_size);
		return -1;
	}
	return 0;
}

/* The live thread records (tid != 0) with their `where` flags as copied. The flags are
 * only recorded: the safe points come from the heap-side method (safepoint.c). A thread
 * copied inside a hook (where 1) may have written a header whose counters it had not
 * updated yet, or the reverse: a small mismatch count is then expected. 0, or -ENOMEM. */
static int read_threads(img_image *im, hs_tracking *t, const struct hp_state *st, uint32_t n)
{
	if (!n)
		return 0;
	t->threads = calloc(n, sizeof *t->threads);
	if (!t->threads)
		return -ENOMEM;
	for (uint32_t r = 0; r < n; r++) {
		struct hp_thread_pub pub;
		if (img_read(im, st->thread_table + (uint64_t)r * sizeof pub, &pub, sizeof pub) || pub.tid <= 0)
			continue;
		hs_trk_thread *x = &t->threads[t->n_trk_threads++];
		x->tid = pub.tid;
		x->where = pub.where;
		x->n_alloc = pub.n_alloc;
		x->n_memo = pub.n_memo;
		x->n_walk = pub.n_walk;
		t->threads_in_hook += pub.where == HP_WHERE_HOOK;
		t->threads_in_alloc += pub.where == HP_WHERE_ALLOC;
	}
	return 0;
}

/* Join the in-use chunks with their headers; fills c->allocs and the counts. */
static int join_chunks(img_image *im, hs_capture *c, const struct hp_state *st,
		       uint32_t n_stacks, trk_cnt *found)
{
	hs_tracking *t = &c->tracking;
	size_t in_use = 0;
	for (size_t i = 0; i < c->n_chunks; i++)
		in_use += c->chunks[i].state == HS_CH_IN_USE;
	free(c->allocs);
	c->n_allocs = 0;
	c->allocs = calloc(in_use ? in_use : 1, sizeof *c->allocs);
	if (!c->allocs)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_chunks; i++) {
		const hs_chunk *ch = &c->chunks[i];
		if (ch->state != HS_CH_IN_USE)
			continue;
		uint64_t u = ch->addr + 16, real = hs_chunk_usable(ch);
		const unsigned char *b = real >= HP_HDR_SIZE ? img_ptr(im, u, HP_HDR_SIZE) : NULL;
		struct hp_block hb;
		if (!b || !hp_decode(u, b, HP_HDR_SIZE, real, &hb)) {
			t->untracked_count++;
			t->untracked_bytes += real;
			continue;
		}
		hs_alloc *a = &c->allocs[c->n_allocs++];
		a->addr = ch->addr;
		a->requested = hb.size == HP_SIZE_SAT ? hb.usable : hb.size;
		a->usable = hb.usable;
		a->seq = hp_seq_full(hb.seq_low, st->seq);
		a->stack_id = hb.stack;
		a->origin = (uint8_t)origin_of(&hb, n_stacks);
		a->callsite = -1;
		switch (a->origin) {
		case HS_AO_INTERNAL:
			t->internal_count++;
			t->internal_bytes += a->requested;
			break;
		case HS_AO_UNSAMPLED:
			t->unsampled_count++;
			t->unsampled_bytes += a->requested;
			break;
		default:
			if (a->origin == HS_AO_TABLE_FULL)
				t->table_full_count++;
			t->tracked_count++;
			t->tracked_bytes += a->requested;
			long x = counted_index(hb.stack, n_stacks);
			if (x >= 0) {
				found[x].count++;
				found[x].bytes += (int64_t)hb.size;   /* as the counters count: saturated */
			}
		}
	}
	return 0;
}

int trk_read(img_image *im, hs_capture *c, const char *root)
{
	hs_tracking *t = &c->tracking;
	free(t->lib_path);
	free(t->note);
	free(t->threads);
	memset(t, 0, sizeof *t);
	t->module_idx = -1;
	for (size_t i = 0; i < c->n_modules && t->module_idx < 0; i++)
		if (trk_is_library(c->modules[i].path))
			t->module_idx = (int)i;
	if (t->module_idx < 0)
		return 0;
	const hs_module *m = &c->modules[t->module_idx];
	t->found = 1;
	if (!(t->lib_path = strdup(m->path)))
		return -ENOMEM;

	int fd = mod_open(c, (size_t)t->module_idx, root);
	uint64_t value = 0;
	int have = fd >= 0 && !dynsym_value(fd, HP_STATE_SYMBOL, &value);
	if (fd >= 0)
		close(fd);
	if (!have) {
		note(t, "cannot find %s in the .dynsym of %s", HP_STATE_SYMBOL, m->path);
		return 0;
	}
	t->state_addr = m->load_base + value;

	struct hp_state st;
	if (read_state(im, t, &st))
		return 0;
	t->version = st.version;
	t->flags = st.flags;
	t->max_depth = st.max_depth;
	t->state_pid = st.pid;
	t->sample_interval = st.sample_interval;
	t->max_stacks = st.max_stacks;
	t->n_stacks = st.n_stacks;
	t->max_threads = st.max_threads;
	t->n_threads = st.n_threads;
	t->n_unloads = st.n_unloads;
	t->dl_gen = st.dl_gen;
	t->seq = st.seq;
	t->n_fallback = st.n_fallback;
	t->n_bootstrap = st.n_bootstrap;
	t->n_foreign_free = st.n_foreign_free;
	t->n_fork_torn = st.n_fork_torn;
	if (st.pid && st.pid != (uint32_t)c->proc.pid)
		note(t, "the tracker state belongs to pid %u", st.pid);

	uint32_t n_stacks = st.n_stacks;
	if (n_stacks > st.max_stacks)
		n_stacks = st.max_stacks;
	if (n_stacks > TRK_MAX_STACKS) {
		note(t, "%u stacks: only the first %u are read", n_stacks, TRK_MAX_STACKS);
		n_stacks = TRK_MAX_STACKS;
	}
	uint32_t n_threads = st.n_threads;
	if (n_threads > st.max_threads)
		n_threads = st.max_threads;
	if (n_threads > TRK_MAX_THREADS)
		n_threads = TRK_MAX_THREADS;

	if (read_threads(im, t, &st, n_threads))
		return -ENOMEM;
	trk_cnt *found = calloc((size_t)n_stacks + 2, sizeof *found);
	trk_cnt *counted = calloc((size_t)n_stacks + 2, sizeof *counted);
	int rc = -ENOMEM;
	if (!found || !counted)
		goto out;
	if ((rc = join_chunks(im, c, &st, n_stacks, found)))
		goto out;
	t->valid = 1;
	if (sum_counters(im, &st, n_stacks, n_threads, counted)) {
		note(t, "some of the library's counters were not in the copy: no mismatch counts");
	} else {
		t->counters_read = 1;
		for (size_t x = 0; x < (size_t)n_stacks + 2; x++) {
			int64_t dc = counted[x].count - found[x].count;
			int64_t db = counted[x].bytes - found[x].bytes;
			if (dc > 0) {
				t->missing_count += (uint64_t)dc;
				t->missing_bytes += db > 0 ? (uint64_t)db : 0;
			} else if (dc < 0) {
				t->extra_count += (uint64_t)-dc;
				t->extra_bytes += db < 0 ? (uint64_t)-db : 0;
			}
		}
	}
	rc = 0;
out:
	free(found);
	free(counted);
	return rc;
}
