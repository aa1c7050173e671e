/* memcopy.c -- owns the bulk copy of a frozen target's memory: /proc/PID/maps reading,
 * the plan of which mappings become image regions (pre-faulted before the freeze,
 * adjusted while frozen), and the batched process_vm_readv copy into them.
 *
 * The image (image.c) owns its region buffers: each is one anonymous mapping of
 * hi - lo bytes, released with munmap. Re-planning keeps that invariant when it drops a
 * region (munmap), or resizes one (mremap of the whole buffer).
 */
#define _GNU_SOURCE
#include "memcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define ARENA_HEAP_ALIGN (64ull << 20)

/* ---- /proc/PID/maps ---- */

static int push_vma(mc_vmas *m, const mc_vma *v)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		mc_vma *n = realloc(m->v, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		m->v = n;
		m->cap = cap;
	}
	m->v[m->n++] = *v;
	return 0;
}

/* /proc/PID/maps of a running process is read a page at a time, and the kernel
 * re-finds its place between reads: a mapping split, merged or moved meanwhile can show
 * up twice or overlap its neighbour. The plan needs disjoint sorted regions, so a torn
 * read is read again, and after a few tries clipped (the frozen re-read is exact). */
static int maps_torn(const mc_vmas *m)
{
	for (size_t i = 1; i < m->n; i++)
		if (m->v[i].lo < m->v[i - 1].hi)
			return 1;
	return 0;
}

void mc_vmas_clip(mc_vmas *m)
{
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		mc_vma v = m->v[i];
		if (k && v.lo < m->v[k - 1].hi)
			v.lo = m->v[k - 1].hi;
		if (v.hi > v.lo)
			m->v[k++] = v;
	}
	m->n = k;
}

static int read_maps_once(pid_t pid, mc_vmas *out)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	out->n = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;
	for (long k = 0; k < 10000000 && getline(&line, &cap, f) > 0; k++) {
		mc_vma v;
		memset(&v, 0, sizeof v);
		unsigned long long lo, hi, off, ino;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %*s %llu %n", &lo, &hi, perms, &off, &ino, &pos) < 5 ||
		    hi <= lo)
			continue;
		v.lo = lo;
		v.hi = hi;
		v.offset = off;
		memcpy(v.perms, perms, 4);
		v.perms[4] = 0;
		if (pos > 0) {
			char *p = line + pos;
			p[strcspn(p, "\n")] = 0;
			snprintf(v.path, sizeof v.path, "%s", p);
		}
		if ((ret = push_vma(out, &v)))
			break;
	}
	/* an empty maps file: the process exited (a zombie has no mappings) */
	if (!ret && ferror(f))
		ret = -EIO;
	if (!ret && out->n == 0)
		ret = -ESRCH;
	free(line);
	fclose(f);
	return ret;
}

int mc_read_maps(pid_t pid, mc_vmas *out)
{
	for (int tries = 0;; tries++) {
		int rc = read_maps_once(pid, out);
		if (rc || !maps_torn(out))
			return rc;
		if (tries == 4) {
			mc_vmas_clip(out);
			return 0;
		}
	}
}

void mc_vmas_release(mc_vmas *m)
{
	free(m->v);
	m->v = NULL;
	m->n = m->cap = 0;
}

const mc_vma *mc_find(const mc_vmas *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->v[mid].hi <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && addr >= m->v[lo].lo ? &m->v[lo] : NULL;
}

/* ---- the plan ---- */

static int copyable(const mc_vma *v)
{
	if (v->perms[0] != 'r' || v->perms[1] != 'w')
		return 0;
	if (!strncmp(v->path, "[vvar", 5) || !strcmp(v->path, "[vsyscall]"))
		return 0;
	/* device memory (GPU, frame buffers...): reading it may fail or have side effects */
	if (!strncmp(v->path, "/dev/", 5) && strncmp(v->path, "/dev/zero", 9) &&
	    strncmp(v->path, "/dev/shm/", 9))
		return 0;
	return 1;
}

int mc_is_stacklike(const mc_vmas *m, size_t i)
{
	const mc_vma *v = &m->v[i];
	if (!strcmp(v->path, "[stack]"))
		return 1;
	if (v->path[0] || !copyable(v) || (v->lo & (ARENA_HEAP_ALIGN - 1)) == 0 || i == 0)
		return 0;
	const mc_vma *g = &m->v[i - 1];
	return g->hi == v->lo && !strncmp(g->perms, "---", 3) && !g->path[0];
}

typedef struct {
	uint64_t lo, hi;
	int sparse;
} want_t;

/* Private anonymous memory: a page the target never touched is zero and absent from its
 * page tables (pagemap says neither present nor swapped). Shared anonymous memory
 * (shmem) and file mappings are not: their absent pages hold data elsewhere. */
static int anon_private(const mc_vma *v)
{
	if (v->perms[3] != 'p')
		return 0;
	return !v->path[0] || !strcmp(v->path, "[heap]") || !strncmp(v->path, "[anon:", 6) ||
	       !strncmp(v->path, "/dev/zero", 9);
}

/* The regions the plan wants, sorted by lo. */
static int want_list(const mc_vmas *m, const uint64_t *sps, size_t n_sps, want_t **out, size_t *nout)
{
	want_t *w = malloc((m->n ? m->n : 1) * sizeof *w);
	if (!w)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		const mc_vma *v = &m->v[i];
		if (!copyable(v))
			continue;
		uint64_t lo = v->lo;
		if (mc_is_stacklike(m, i)) {
			if (!sps)
				continue;   /* planned while frozen, once rsp is known */
			uint64_t low = UINT64_MAX;
			for (size_t j = 0; j < n_sps; j++)
				if (sps[j] > v->lo && sps[j] <= v->hi && sps[j] < low)
					low = sps[j];
			if (low != UINT64_MAX && low - v->lo > 128)
				lo = low - 128;
		}
		if (v->hi - lo > MC_MAX_REGION && strcmp(v->path, "[heap]"))
			continue;   /* a huge reservation: pre-faulting it could exhaust memory */
		w[k].lo = lo;
		w[k].hi = v->hi;
		w[k].sparse = lo == v->lo && anon_private(v);
		k++;
	}
	*out = w;
	*nout = k;
	return 0;
}

static const want_t *find_want(const want_t *w, size_t n, uint64_t lo)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (w[mid].lo < lo)
			a = mid + 1;
		else
			b = mid;
	}
	return a < n && w[a].lo == lo ? &w[a] : NULL;
}

static int has_region(const img_image *im, size_t n, uint64_t lo)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (im->r[mid].lo < lo)
			a = mid + 1;
		else
			b = mid;
	}
	return a < n && im->r[a].lo == lo;
}

static void drop_region(img_image *im, size_t i)
{
	munmap(im->r[i].buf, im->r[i].hi - im->r[i].lo);
	free(im->r[i].had);
	memmove(&im->r[i], &im->r[i + 1], (im->n - i - 1) * sizeof *im->r);
	im->n--;
	im->last = 0;
}

/* Grow or shrink region i to end at hi, keeping its (pre-faulted) pages. */
static int resize_region(img_image *im, size_t i, uint64_t hi)
{
	img_region *r = &im->r[i];
	size_t old_len = r->hi - r->lo, new_len = hi - r->lo;
	void *nb = mremap(r->buf, old_len, new_len, MREMAP_MAYMOVE);
	if (nb == MAP_FAILED)
		return -1;
	if (new_len > old_len) {
		long pg = sysconf(_SC_PAGESIZE);
		size_t from = (old_len + (size_t)pg - 1) & ~((size_t)pg - 1);
		if (from < new_len)
			madvise((char *)nb + from, new_len - from, MADV_POPULATE_WRITE);
	}
	r->buf = nb;
	r->hi = hi;
	free(r->had);   /* read again by mc_premap, or checked page by page while frozen */
	r->had = NULL;
	return 0;
}

int64_t mc_plan(img_image *im, const mc_vmas *maps, const uint64_t *stack_sps, size_t n_sps)
{
	want_t *w;
	size_t nw;
	int rc = want_list(maps, stack_sps, n_sps, &w, &nw);
	if (rc)
		return rc;
	img_finish(im);
	for (size_t i = 0; i < im->n;) {
		img_region *r = &im->r[i];
		r->copied = 0;
		const want_t *x = find_want(w, nw, r->lo);
		if (!x) {
			drop_region(im, i);
			continue;
		}
		if (x->hi != r->hi && resize_region(im, i, x->hi)) {
			drop_region(im, i);
			continue;
		}
		im->r[i].sparse = (unsigned char)x->sparse;
		i++;
	}
	size_t kept = im->n;   /* sorted, and each equals a wanted region */
	int64_t total = 0;
	for (size_t i = 0; i < nw; i++) {
		total += (int64_t)(w[i].hi - w[i].lo);
		if (has_region(im, kept, w[i].lo))
			continue;
		/* pre-faulted before the freeze; while frozen (live stacks, an exited thread's
		 * cached stack, mappings new since) faulting our side costs the same during
		 * the copy, and then only for the pages the target has */
		if (!img_add(im, w[i].lo, w[i].hi, stack_sps == NULL)) {
			free(w);
			return -ENOMEM;
		}
		im->r[im->n - 1].sparse = (unsigned char)w[i].sparse;
	}
	img_finish(im);
	free(w);
	return total;
}

/* ---- the copy ---- */

/* The copy is CPU-bound in the kernel (page walks and memcpy, about 4-5 GB/s per
 * thread), so a large copy is cut into batches that every CPU takes from a shared
 * counter: the pause then shrinks with the number of cores instead of being one
 * thread's memcpy of the whole heap. Small copies stay on the calling thread.
 *
 * Only pages the target has are read: for a sparse (private anonymous) region,
 * /proc/PID/pagemap, read while frozen, gives the pages present in RAM or swapped out;
 * the others were never touched and are zero in the target and in our buffer. Reading
 * them would fault them in and grow the target's RSS (by every untouched page of its
 * heap top, its mmapped blocks and its .bss) and lengthen the pause. */
#define MC_PIECE (16ull << 20)          /* bytes one batch copies at most */
#define MC_PARALLEL_MIN (32ull << 20)   /* below this, one thread is as fast */
#define MC_MAX_WORKERS 8
#define MC_BATCH_IOV 512                /* iovecs per process_vm_readv */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_BATCH 8192                   /* pagemap entries per pread */

typedef struct {
	size_t region;
	size_t off, len;
} mc_piece;

typedef struct {
	mc_piece *p;
	size_t n, cap;
	uint64_t bytes;
} mc_pieces;

typedef struct {
	size_t from, to;   /* pieces [from, to) */
} mc_batch;

typedef struct {
	pid_t pid;
	img_image *im;
	const mc_piece *p;
	const mc_batch *b;
	size_t nb;
	atomic_size_t next;
	atomic_int gone;
	atomic_uint_fast64_t copied;
	atomic_uchar *failed;           /* per region: a piece of it could not be read */
} mc_job;

static int add_piece(mc_pieces *ps, size_t region, size_t off, size_t len)
{
	while (len) {
		size_t n = len > MC_PIECE ? MC_PIECE : len;
		if (ps->n == ps->cap) {
			size_t cap = ps->cap ? ps->cap * 2 : 256;
			mc_piece *p = realloc(ps->p, cap * sizeof *p);
			if (!p)
				return -ENOMEM;
			ps->p = p;
			ps->cap = cap;
		}
		ps->p[ps->n++] = (mc_piece){ region, off, n };
		ps->bytes += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Forget an earlier copy's bytes in [off, off+len) of region r's buffer. */
static void zero_gap(img_region *r, size_t off, size_t len)
{
	if (r->dirty && len)
		madvise(r->buf + off, len, MADV_DONTNEED);   /* anonymous: reads as zero */
}

/* 1 if the bitmap says pages [p0, p0 + n) were all there */
static int had_all(const uint64_t *had, size_t p0, size_t n)
{
	if (!had)
		return 0;
	size_t p = p0, end = p0 + n;
	for (; p < end && p % 64; p++)
		if (!(had[p / 64] >> (p % 64) & 1))
			return 0;
	for (; p + 64 <= end; p += 64)
		if (had[p / 64] != UINT64_MAX)
			return 0;
	for (; p < end; p++)
		if (!(had[p / 64] >> (p % 64) & 1))
			return 0;
	return 1;
}

int mc_premap(pid_t pid, img_image *im)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint64_t *pm = malloc(PM_BATCH * sizeof *pm);
	int rc = pm ? 0 : -ENOMEM;
	const uint64_t pg = 4096;
	for (size_t i = 0; i < im->n && !rc; i++) {
		img_region *r = &im->r[i];
		free(r->had);
		r->had = NULL;
		if (!r->sparse || (r->lo | r->hi) & (pg - 1))
			continue;
		size_t npages = (r->hi - r->lo) / pg;
		uint64_t *had = calloc((npages + 63) / 64, sizeof *had);
		if (!had) {
			rc = -ENOMEM;
			break;
		}
		size_t p0 = 0;
		for (; p0 < npages; p0 += PM_BATCH) {
			size_t n = npages - p0 < PM_BATCH ? npages - p0 : PM_BATCH;
			if (pread(fd, pm, n * 8, (off_t)((r->lo / pg + p0) * 8)) != (ssize_t)(n * 8))
				break;
			for (size_t k = 0; k < n; k++)
				if (pm[k] & (PM_PRESENT | PM_SWAPPED))
					had[(p0 + k) / 64] |= 1ull << ((p0 + k) % 64);
		}
		if (p0 < npages)
			free(had);   /* unreadable: checked while frozen instead */
		else
			r->had = had;
	}
	free(pm);
	close(fd);
	return rc;
}

/* The pieces of region i: all of it, or for a sparse region the runs of pages the
 * target has. A pagemap that cannot be read makes the region whole. */
static int plan_pieces(int pmfd, img_image *im, size_t i, uint64_t *pm, mc_pieces *ps)
{
	img_region *r = &im->r[i];
	size_t len = r->hi - r->lo;
	const uint64_t pg = 4096;
	if (!r->sparse || pmfd < 0 || (r->lo | r->hi) & (pg - 1))
		return add_piece(ps, i, 0, len);
	size_t npages = len / pg, run = SIZE_MAX, gap = 0;
	for (size_t p0 = 0; p0 < npages; p0 += PM_BATCH) {
		size_t n = npages - p0 < PM_BATCH ? npages - p0 : PM_BATCH;
		if (had_all(r->had, p0, n)) {
			/* every page was there before the freeze: read them without asking
			 * again (one freed meanwhile reads as zero, faulting in one page) */
			for (size_t k = 0; k < n; k++)
				pm[k] = PM_PRESENT;
		} else if (pread(pmfd, pm, n * 8, (off_t)((r->lo / pg + p0) * 8)) != (ssize_t)(n * 8)) {
			/* unreadable pagemap: take the rest whole */
			zero_gap(r, gap * pg, p0 * pg - gap * pg);
			size_t from = run != SIZE_MAX ? run : p0;
			return add_piece(ps, i, from * pg, len - from * pg);
		} else if (r->had) {
			for (size_t k = 0; k < n; k++)
				if (r->had[(p0 + k) / 64] >> ((p0 + k) % 64) & 1)
					pm[k] |= PM_PRESENT;
		}
		for (size_t k = 0; k < n; k++) {
			int has = (pm[k] & (PM_PRESENT | PM_SWAPPED)) != 0;
			size_t pgno = p0 + k;
			if (has && run == SIZE_MAX) {
				zero_gap(r, gap * pg, (pgno - gap) * pg);
				run = pgno;
			} else if (!has && run != SIZE_MAX) {
				int rc = add_piece(ps, i, run * pg, (pgno - run) * pg);
				if (rc)
					return rc;
				run = SIZE_MAX;
				gap = pgno;
			}
		}
	}
	if (run != SIZE_MAX)
		return add_piece(ps, i, run * pg, (npages - run) * pg);
	zero_gap(r, gap * pg, (npages - gap) * pg);
	return 0;
}

/* Read one piece from byte done on, alone. */
static void read_alone(mc_job *j, const mc_piece *pc, size_t done)
{
	img_region *r = &j->im->r[pc->region];
	while (done < pc->len) {
		struct iovec li = { r->buf + pc->off + done, pc->len - done };
		struct iovec ri = { (void *)(uintptr_t)(r->lo + pc->off + done), pc->len - done };
		ssize_t got = process_vm_readv(j->pid, &li, 1, &ri, 1, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got < 0 && errno == ESRCH)
				atomic_store(&j->gone, 1);
			atomic_store(&j->failed[pc->region], 1);
			return;
		}
		done += (size_t)got;
	}
	atomic_fetch_add(&j->copied, pc->len);
}

/* One batch: its pieces in process_vm_readv calls of up to MC_BATCH_IOV iovecs; a piece
 * the kernel stopped in (vanished, shrunk, unreadable page) is finished alone. */
static void copy_batch(mc_job *j, const mc_batch *b)
{
	struct iovec li[MC_BATCH_IOV], ri[MC_BATCH_IOV];
	size_t k = b->from;
	while (k < b->to && !atomic_load(&j->gone)) {
		size_t n = 0;
		for (size_t m = k; m < b->to && n < MC_BATCH_IOV; m++, n++) {
			const mc_piece *pc = &j->p[m];
			const img_region *r = &j->im->r[pc->region];
			li[n] = (struct iovec){ r->buf + pc->off, pc->len };
			ri[n] = (struct iovec){ (void *)(uintptr_t)(r->lo + pc->off), pc->len };
		}
		ssize_t got = process_vm_readv(j->pid, li, (unsigned long)n, ri, (unsigned long)n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ESRCH) {
				atomic_store(&j->gone, 1);
				return;
			}
			got = 0;   /* the first piece failed: it is read alone below */
		}
		size_t rem = (size_t)got, end = k + n;
		while (k < end && rem >= j->p[k].len) {
			rem -= j->p[k].len;
			atomic_fetch_add(&j->copied, j->p[k].len);
			k++;
		}
		if (k < end)
			read_alone(j, &j->p[k++], rem);
	}
}

static void *copy_worker(void *arg)
{
	mc_job *j = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->nb || atomic_load(&j->gone))
			return NULL;
		copy_batch(j, &j->b[i]);
	}
}

/* Batches of consecutive pieces, each at most MC_PIECE bytes. */
static mc_batch *make_batches(const mc_pieces *ps, size_t *nb)
{
	mc_batch *b = malloc((ps->n ? ps->n : 1) * sizeof *b);
	if (!b)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < ps->n;) {
		uint64_t bytes = 0;
		size_t from = i;
		while (i < ps->n && (i == from || bytes + ps->p[i].len <= MC_PIECE))
			bytes += ps->p[i++].len;
		b[n++] = (mc_batch){ from, i };
	}
	*nb = n;
	return b;
}

int64_t mc_copy(pid_t pid, img_image *im)
{
	img_finish(im);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	int pmfd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t *pm = malloc(PM_BATCH * sizeof *pm);
	mc_pieces ps = { 0 };
	int rc = pm ? 0 : -ENOMEM;
	for (size_t i = 0; i < im->n && !rc; i++)
		if (!im->r[i].copied)
			rc = plan_pieces(pm ? pmfd : -1, im, i, pm, &ps);
	free(pm);
	if (pmfd >= 0)
		close(pmfd);
	size_t nb = 0;
	mc_batch *b = rc ? NULL : make_batches(&ps, &nb);
	mc_job j = { .pid = pid, .im = im, .p = ps.p, .b = b, .nb = nb };
	j.failed = calloc(im->n ? im->n : 1, sizeof *j.failed);
	if (rc || !b || !j.failed) {
		free(ps.p);
		free(b);
		free(j.failed);
		return -ENOMEM;
	}

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nw = ncpu < 1 ? 1 : ncpu > MC_MAX_WORKERS ? MC_MAX_WORKERS : (int)ncpu;
	pthread_t th[MC_MAX_WORKERS];
	int started = 0;
	for (int w = 1; w < nw && ps.bytes >= MC_PARALLEL_MIN; w++)
		if (!pthread_create(&th[started], NULL, copy_worker, &j))
			started++;
	copy_worker(&j);
	for (int w = 0; w < started; w++)
		pthread_join(th[w], NULL);

	for (size_t i = 0; i < im->n; i++) {
		if (im->r[i].copied)
			continue;
		im->r[i].dirty = 1;
		im->r[i].copied = !atomic_load(&j.failed[i]);
	}
	int gone = atomic_load(&j.gone);
	int64_t total = (int64_t)atomic_load(&j.copied);
	free(ps.p);
	free(b);
	free(j.failed);
	return gone ? -ESRCH : total;
}
