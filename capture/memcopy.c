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
#ifndef IOV_MAX
#define IOV_MAX 1024
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

int mc_read_maps(pid_t pid, mc_vmas *out)
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
} want_t;

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
		i++;
	}
	size_t kept = im->n;   /* sorted, and each equals a wanted region */
	int64_t total = 0;
	for (size_t i = 0; i < nw; i++) {
		total += (int64_t)(w[i].hi - w[i].lo);
		if (has_region(im, kept, w[i].lo))
			continue;
		if (!img_add(im, w[i].lo, w[i].hi, 1)) {
			free(w);
			return -ENOMEM;
		}
	}
	img_finish(im);
	free(w);
	return total;
}

/* ---- the copy ---- */

/* Read region r from offset done on, alone. 0 when complete. */
static int read_rest(pid_t pid, img_region *r, size_t done)
{
	size_t len = r->hi - r->lo;
	while (done < len) {
		size_t chunk = len - done > (1u << 30) ? (1u << 30) : len - done;
		struct iovec li = { r->buf + done, chunk };
		struct iovec ri = { (void *)(uintptr_t)(r->lo + done), chunk };
		ssize_t got = process_vm_readv(pid, &li, 1, &ri, 1, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 && errno == ESRCH ? -ESRCH : -EFAULT;
		done += (size_t)got;
	}
	return 0;
}

/* The copy is CPU-bound in the kernel (page walks and memcpy, about 4-5 GB/s per
 * thread), so a large copy is cut into pieces that every CPU takes from a shared
 * counter: the pause then shrinks with the number of cores instead of being one
 * thread's memcpy of the whole heap. Small copies stay on the calling thread in
 * batched calls. */
#define MC_PIECE (16ull << 20)          /* bytes one worker copies at a time */
#define MC_PARALLEL_MIN (32ull << 20)   /* below this, one thread is as fast */
#define MC_MAX_WORKERS 8

typedef struct {
	size_t region;
	size_t off, len;
} mc_piece;

typedef struct {
	pid_t pid;
	img_image *im;
	mc_piece *p;
	size_t np;
	atomic_size_t next;
	atomic_int gone;
	atomic_uchar *failed;           /* per region: a piece of it could not be read */
} mc_job;

static void copy_piece(mc_job *j, const mc_piece *pc)
{
	img_region *r = &j->im->r[pc->region];
	size_t done = 0;
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
}

static void *copy_worker(void *arg)
{
	mc_job *j = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->np || atomic_load(&j->gone))
			return NULL;
		copy_piece(j, &j->p[i]);
	}
}

static int64_t copy_parallel(pid_t pid, img_image *im, uint64_t bytes)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nw = ncpu < 1 ? 1 : ncpu > MC_MAX_WORKERS ? MC_MAX_WORKERS : (int)ncpu;
	size_t np = 0;
	for (size_t i = 0; i < im->n; i++)
		if (!im->r[i].copied)
			np += (im->r[i].hi - im->r[i].lo + MC_PIECE - 1) / MC_PIECE;
	mc_job j = { .pid = pid, .im = im };
	j.p = malloc((np ? np : 1) * sizeof *j.p);
	j.failed = calloc(im->n ? im->n : 1, sizeof *j.failed);
	if (!j.p || !j.failed) {
		free(j.p);
		free(j.failed);
		return -ENOMEM;
	}
	/* pieces of at most MC_PIECE bytes, in address order */
	for (size_t i = 0; i < im->n; i++) {
		if (im->r[i].copied)
			continue;
		size_t len = im->r[i].hi - im->r[i].lo;
		for (size_t off = 0; off < len; off += MC_PIECE)
			j.p[j.np++] = (mc_piece){ i, off, len - off < MC_PIECE ? len - off : MC_PIECE };
	}
	pthread_t th[MC_MAX_WORKERS];
	int started = 0;
	for (int w = 1; w < nw && bytes >= MC_PARALLEL_MIN; w++)
		if (!pthread_create(&th[started], NULL, copy_worker, &j))
			started++;
	copy_worker(&j);
	for (int w = 0; w < started; w++)
		pthread_join(th[w], NULL);
	int64_t total = 0;
	for (size_t i = 0; i < im->n; i++) {
		if (im->r[i].copied)
			continue;
		if (!atomic_load(&j.failed[i])) {
			im->r[i].copied = 1;
			total += (int64_t)(im->r[i].hi - im->r[i].lo);
		}
	}
	int gone = atomic_load(&j.gone);
	free(j.p);
	free(j.failed);
	return gone ? -ESRCH : total;
}

static int64_t copy_batched(pid_t pid, img_image *im)
{
	static struct iovec li[IOV_MAX], ri[IOV_MAX];
	static size_t idx[IOV_MAX];
	int64_t total = 0;
	size_t i = 0;
	while (i < im->n) {
		size_t k = 0;
		uint64_t batch = 0;
		for (; i < im->n && k < IOV_MAX; i++) {
			img_region *r = &im->r[i];
			if (r->copied)
				continue;
			size_t len = r->hi - r->lo;
			if (k && batch + len > (1ull << 30))
				break;   /* keep one call well below the kernel's per-call limit */
			li[k].iov_base = r->buf;
			li[k].iov_len = len;
			ri[k].iov_base = (void *)(uintptr_t)r->lo;
			ri[k].iov_len = len;
			idx[k++] = i;
			batch += len;
		}
		if (!k)
			break;
		ssize_t got = process_vm_readv(pid, li, (unsigned long)k, ri, (unsigned long)k, 0);
		if (got < 0) {
			if (errno == ESRCH)
				return -ESRCH;
			if (errno == EINTR) {
				i = idx[0];
				continue;
			}
			got = 0;   /* the first region failed: it is read alone below */
		}
		size_t j = 0;
		uint64_t rem = (uint64_t)got;
		while (j < k && rem >= li[j].iov_len) {
			im->r[idx[j]].copied = 1;
			rem -= li[j].iov_len;
			total += (int64_t)li[j].iov_len;
			j++;
		}
		if (j < k) {
			/* region idx[j] vanished, shrank or holds an unreadable page: finish it
			 * alone, then go on after it */
			img_region *r = &im->r[idx[j]];
			int rc = read_rest(pid, r, (size_t)rem);
			if (rc == -ESRCH)
				return -ESRCH;
			if (rc == 0) {
				r->copied = 1;
				total += (int64_t)(r->hi - r->lo);
			}
			i = idx[j] + 1;
		}
	}
	return total;
}

int64_t mc_copy(pid_t pid, img_image *im)
{
	img_finish(im);
	uint64_t bytes = 0;
	for (size_t i = 0; i < im->n; i++)
		if (!im->r[i].copied)
			bytes += im->r[i].hi - im->r[i].lo;
	if (bytes < MC_PARALLEL_MIN)
		return copy_batched(pid, im);
	return copy_parallel(pid, im, bytes);
}
