/* procmaps.c -- what /proc says about a target: the frozen maps list turned into
 * c->maps, /proc/PID/smaps joined into it with every field, process facts from status,
 * stat, cmdline, exe and comm, thread names, and the classification of every mapping.
 *
 * Everything read here is untrusted text: the kernel writes it, but comm, cmdline and
 * paths are the target's to choose. Lines are read with a length cap, numbers are
 * parsed with overflow checks, and nothing is assumed about field order or which
 * fields a kernel prints (smaps grew fields in 4.14, 5.x and 6.x; unknown ones are kept
 * verbatim in mapping.extra).
 *
 * smaps format (one block per VMA):
 *   55d3c29b4000-55d3c29d5000 rw-p 00000000 00:00 0          [heap]
 *   Size:                132 kB          <- "Key:" number ["kB"]
 *   ...
 *   THPeligible:           0            <- a flag, kept as 0/1
 *   VmFlags: rd wr mr mw me ac sd       <- kept as the string
 * A block is joined to the frozen maps by its exact [start, end); a VMA that changed
 * after the resume matches nothing and its fields stay -1.
 */
#define _GNU_SOURCE
#include "procmaps.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PM_MAX_LINE     (64 * 1024)       /* smaps/status lines longer than this are skipped */
#define PM_MAX_EXTRA    64                /* unknown smaps keys kept per mapping */
#define PM_MAX_CMDLINE  (1024 * 1024)     /* bytes of cmdline read */
#define PM_MAX_ARGS     65536
#define ARENA_HEAP_MAX  (64ull << 20)     /* glibc HEAP_MAX_SIZE on 64-bit */

/* ------------------------------------------------------------------ small helpers */

/* getline with a cap: returns the line length (newline stripped), -1 at EOF/error.
 * Over-long lines are consumed and reported as empty lines. */
static ssize_t read_line(FILE *f, char **buf, size_t *cap)
{
	ssize_t n = getline(buf, cap, f);
	if (n < 0)
		return -1;
	if (n > PM_MAX_LINE) {
		(*buf)[0] = 0;
		return 0;
	}
	if (n && (*buf)[n - 1] == '\n')
		(*buf)[--n] = 0;
	return n;
}

/* Parse an unsigned hex number; *end past it. 0 on success. */
static int parse_hex(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	while (isxdigit((unsigned char)*p)) {
		int d = isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10);
		if (v >> 60)
			return -1;
		v = v << 4 | (uint64_t)d;
		p++;
	}
	if (p == s)
		return -1;
	*end = p;
	*out = v;
	return 0;
}

/* Parse a decimal (optionally negative) number after leading blanks. 0 on success. */
static int parse_dec(const char *s, const char **end, int64_t *out)
{
	while (*s == ' ' || *s == '\t')
		s++;
	int neg = 0;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (!isdigit((unsigned char)*s))
		return -1;
	int64_t v = 0;
	while (isdigit((unsigned char)*s)) {
		int d = *s - '0';
		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		s++;
	}
	*end = s;
	*out = neg ? -v : v;
	return 0;
}

/* Read a whole small file into a NUL-terminated buffer (at most max bytes). Returns the
 * length or a negative errno. */
static ssize_t slurp(const char *path, char **out, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (n < max) {
		if (n == cap) {
			size_t nc = cap * 2 > max ? max : cap * 2;
			char *nb = realloc(buf, nc + 1);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap = nc;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	*out = buf;
	return (ssize_t)n;
}

/* ------------------------------------------------------------------ maps */

static int map_cmp(const void *a, const void *b)
{
	const hs_mapping *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void free_maps(hs_capture *c)
{
	for (size_t i = 0; i < c->n_maps; i++) {
		free(c->maps[i].path);
		free(c->maps[i].extra);
		free(c->maps[i].vmflags);
	}
	free(c->maps);
	c->maps = NULL;
	c->n_maps = 0;
}

static void init_mapping(hs_mapping *m)
{
	memset(m, 0, sizeof *m);
	for (int k = 0; k < HS_SM_COUNT; k++)
		m->sm[k] = -1;
	m->kind = HS_MAP_ANON;
	m->module_idx = -1;
}

int pm_maps_from_vmas(hs_capture *c, const mc_vmas *v)
{
	free_maps(c);
	if (!v || !v->n)
		return 0;
	hs_mapping *maps = calloc(v->n, sizeof *maps);
	if (!maps)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++) {
		const mc_vma *s = &v->v[i];
		if (s->hi <= s->lo)
			continue;
		hs_mapping *m = &maps[n];
		init_mapping(m);
		m->start = s->lo;
		m->end = s->hi;
		m->offset = s->offset;
		memcpy(m->perms, s->perms, sizeof m->perms - 1);
		m->perms[sizeof m->perms - 1] = 0;
		char path[sizeof s->path + 1];
		memcpy(path, s->path, sizeof s->path);
		path[sizeof s->path] = 0;
		if (path[0] && !(m->path = strdup(path))) {
			c->maps = maps;
			c->n_maps = n;
			free_maps(c);
			return -ENOMEM;
		}
		n++;
	}
	qsort(maps, n, sizeof *maps, map_cmp);
	c->maps = maps;
	c->n_maps = n;
	return 0;
}

/* The mapping with exactly [start, end), or NULL (c->maps is sorted by start). */
static hs_mapping *find_exact(hs_capture *c, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = c->n_maps;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->maps[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->n_maps && c->maps[lo].start == start && c->maps[lo].end == end)
		return &c->maps[lo];
	return NULL;
}

/* The mapping containing addr, or -1. */
static long find_containing(const hs_capture *c, uint64_t addr)
{
	size_t lo = 0, hi = c->n_maps;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->maps[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->n_maps && c->maps[lo].start <= addr && addr < c->maps[lo].end)
		return (long)lo;
	return -1;
}

/* "start-end perms offset dev inode [path]": 1 if this is a VMA header line. */
static int parse_header(const char *line, uint64_t *start, uint64_t *end, char perms[5],
			uint64_t *offset, char dev[16], uint64_t *inode, const char **path)
{
	const char *p;
	if (parse_hex(line, &p, start) || *p != '-')
		return 0;
	if (parse_hex(p + 1, &p, end) || *p != ' ')
		return 0;
	p++;
	for (int i = 0; i < 4; i++) {
		if (!p[i] || p[i] == ' ')
			return 0;
		perms[i] = p[i];
	}
	perms[4] = 0;
	p += 4;
	if (*p != ' ' || parse_hex(p + 1, &p, offset) || *p != ' ')
		return 0;
	p++;
	size_t dl = strcspn(p, " ");
	if (!dl || dl >= 16 || p[dl] != ' ')
		return 0;
	memcpy(dev, p, dl);
	dev[dl] = 0;
	p += dl + 1;
	int64_t ino;
	if (parse_dec(p, &p, &ino) || ino < 0)
		return 0;
	*inode = (uint64_t)ino;
	while (*p == ' ' || *p == '\t')
		p++;
	*path = p;
	return 1;
}

static void add_extra(hs_mapping *m, const char *key, size_t keylen, int64_t value)
{
	for (size_t i = 0; i < m->n_extra; i++)
		if (strlen(m->extra[i].key) == keylen && !memcmp(m->extra[i].key, key, keylen)) {
			m->extra[i].value = value;
			return;
		}
	if (m->n_extra >= PM_MAX_EXTRA)
		return;
	hs_kv *x = realloc(m->extra, (m->n_extra + 1) * sizeof *x);
	if (!x)
		return;
	m->extra = x;
	hs_kv *kv = &m->extra[m->n_extra++];
	memset(kv, 0, sizeof *kv);
	if (keylen >= sizeof kv->key)
		keylen = sizeof kv->key - 1;
	memcpy(kv->key, key, keylen);
	kv->value = value;
}

/* One "Key: value" line of the current block. */
static void parse_field(hs_mapping *m, const char *line)
{
	const char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return;
	size_t keylen = (size_t)(colon - line);
	for (size_t i = 0; i < keylen; i++)
		if (isspace((unsigned char)line[i]))
			return;
	const char *val = colon + 1;
	if (keylen == 7 && !memcmp(line, "VmFlags", 7)) {
		while (*val == ' ' || *val == '\t')
			val++;
		size_t n = strlen(val);
		while (n && (val[n - 1] == ' ' || val[n - 1] == '\t'))
			n--;
		char *s = strndup(val, n);
		if (s) {
			free(m->vmflags);
			m->vmflags = s;
		}
		return;
	}
	int64_t v;
	const char *end;
	if (parse_dec(val, &end, &v))
		return;   /* not a number: nothing we can store */
	char key[64];
	if (keylen < sizeof key) {
		memcpy(key, line, keylen);
		key[keylen] = 0;
		int f = hs_smaps_field_of(key);
		if (f >= 0) {
			if (f == HS_SM_THPELIGIBLE)
				v = v != 0;
			m->sm[f] = v;
			return;
		}
	}
	add_extra(m, line, keylen, v);
}

int pm_parse_smaps(FILE *f, hs_capture *c)
{
	char *line = NULL;
	size_t cap = 0;
	hs_mapping *cur = NULL;
	size_t blocks = 0;
	ssize_t n;
	while ((n = read_line(f, &line, &cap)) >= 0) {
		uint64_t start, end, offset, inode;
		char perms[5], dev[16];
		const char *path;
		if (parse_header(line, &start, &end, perms, &offset, dev, &inode, &path)) {
			blocks++;
			cur = find_exact(c, start, end);
			if (cur) {
				memcpy(cur->dev, dev, sizeof cur->dev);
				cur->inode = inode;
				/* the frozen list truncates long paths: take the full one */
				if (*path && cur->path && strlen(cur->path) < strlen(path) &&
				    !strncmp(cur->path, path, strlen(cur->path))) {
					char *p = strdup(path);
					if (p) {
						free(cur->path);
						cur->path = p;
					}
				}
			}
			continue;
		}
		if (cur)
			parse_field(cur, line);
	}
	free(line);
	if (ferror(f))
		return -EIO;
	/* an empty smaps with maps to join means the process is gone (or a zombie) */
	return !blocks && c->n_maps ? -ESRCH : 0;
}

int pm_read_smaps(pid_t pid, hs_capture *c)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int rc = pm_parse_smaps(f, c);
	fclose(f);
	return rc;
}

/* ------------------------------------------------------------------ process facts */

static void status_kb(const char *v, int64_t *out)
{
	int64_t x;
	const char *end;
	if (!parse_dec(v, &end, &x))
		*out = x;
}

static void parse_status(hs_capture *c, char *text)
{
	hs_process *p = &c->proc;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = 0;
		const char *v = colon + 1, *end;
		int64_t x;
		if (!strcmp(line, "Uid")) {
			if (!parse_dec(v, &end, &x) && x >= 0)
				p->uid = (uint32_t)x;
		} else if (!strcmp(line, "Gid")) {
			if (!parse_dec(v, &end, &x) && x >= 0)
				p->gid = (uint32_t)x;
		} else if (!strcmp(line, "PPid")) {
			if (!parse_dec(v, &end, &x) && x >= 0 && x <= INT_MAX)
				p->ppid = (int)x;
		} else if (!strcmp(line, "VmSize")) status_kb(v, &p->vm_size_kb);
		else if (!strcmp(line, "VmRSS")) status_kb(v, &p->vm_rss_kb);
		else if (!strcmp(line, "RssAnon")) status_kb(v, &p->rss_anon_kb);
		else if (!strcmp(line, "RssFile")) status_kb(v, &p->rss_file_kb);
		else if (!strcmp(line, "RssShmem")) status_kb(v, &p->rss_shmem_kb);
		else if (!strcmp(line, "VmSwap")) status_kb(v, &p->vm_swap_kb);
		else if (!strcmp(line, "VmPeak")) status_kb(v, &p->vm_peak_kb);
		else if (!strcmp(line, "VmHWM")) status_kb(v, &p->vm_hwm_kb);
		else if (!strcmp(line, "VmData")) status_kb(v, &p->vm_data_kb);
		else if (!strcmp(line, "VmStk")) status_kb(v, &p->vm_stk_kb);
	}
}

/* /proc/PID/stat: "pid (comm) state ppid ...". comm may hold spaces and parentheses,
 * so the fields are counted from the last ')'. Field 3 (state) is token 0 after it. */
static int parse_stat(hs_capture *c, const char *text)
{
	const char *rp = strrchr(text, ')');
	if (!rp)
		return -EINVAL;
	const char *p = rp + 1;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EINVAL;
		const char *tok = p;
		while (*p && *p != ' ')
			p++;
		if (field == 4 && !c->proc.ppid) {
			int64_t v;
			const char *e;
			if (!parse_dec(tok, &e, &v) && v >= 0 && v <= INT_MAX)
				c->proc.ppid = (int)v;
		}
		if (field == 22) {
			int64_t v;
			const char *e;
			if (parse_dec(tok, &e, &v) || v < 0)
				return -EINVAL;
			c->proc.start_ticks = (uint64_t)v;
		}
	}
	return 0;
}

static int parse_cmdline(hs_capture *c, const char *buf, size_t n)
{
	size_t argc = 0;
	for (size_t i = 0; i < n; i++)
		if (!buf[i])
			argc++;
	if (n && buf[n - 1])
		argc++;   /* the last argument lost its NUL (the target rewrote its argv) */
	if (argc > PM_MAX_ARGS)
		argc = PM_MAX_ARGS;
	char **argv = calloc(argc ? argc : 1, sizeof *argv);
	if (!argv)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n && k < argc;) {
		size_t len = strnlen(buf + i, n - i);
		argv[k] = strndup(buf + i, len);
		if (!argv[k]) {
			for (size_t j = 0; j < k; j++)
				free(argv[j]);
			free(argv);
			return -ENOMEM;
		}
		k++;
		i += len + 1;
	}
	c->proc.argv = argv;
	c->proc.argc = k;
	return 0;
}

static void read_comm(const char *path, char *out, size_t outsz)
{
	char *buf;
	ssize_t n = slurp(path, &buf, 256);
	if (n < 0)
		return;
	if (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	snprintf(out, outsz, "%s", buf);
	free(buf);
}

int pm_read_process(pid_t pid, hs_capture *c)
{
	char path[64];
	char *buf;
	ssize_t n;
	int rc;

	c->proc.pid = (int)pid;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((n = slurp(path, &buf, 64 * 1024)) < 0)
		return (int)n;
	parse_status(c, buf);
	free(buf);

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((n = slurp(path, &buf, 4096)) < 0)
		return (int)n;
	rc = parse_stat(c, buf);
	free(buf);
	if (rc)
		return rc;

	for (size_t i = 0; i < c->proc.argc; i++)
		free(c->proc.argv[i]);
	free(c->proc.argv);
	c->proc.argv = NULL;
	c->proc.argc = 0;
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	if ((n = slurp(path, &buf, PM_MAX_CMDLINE)) >= 0) {
		rc = parse_cmdline(c, buf, (size_t)n);
		free(buf);
		if (rc)
			return rc;
	} else if (n == -ENOMEM) {
		return (int)n;
	}

	free(c->proc.exe);
	c->proc.exe = NULL;
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	char exe[PATH_MAX + 1];
	ssize_t el = readlink(path, exe, sizeof exe - 1);
	if (el > 0) {
		exe[el] = 0;
		c->proc.exe = strdup(exe);   /* NULL on OOM or EACCES: unknown */
	}

	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	read_comm(path, c->proc.comm, sizeof c->proc.comm);

	free(c->proc.kernel);
	struct utsname u;
	c->proc.kernel = uname(&u) ? NULL : strdup(u.release);
	long ps = sysconf(_SC_PAGESIZE);
	c->proc.page_size = ps > 0 ? (uint64_t)ps : 4096;
	return 0;
}

int pm_read_thread_names(pid_t pid, hs_capture *c)
{
	for (size_t i = 0; i < c->n_threads; i++) {
		char path[96];
		snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, c->threads[i].tid);
		read_comm(path, c->threads[i].name, sizeof c->threads[i].name);
	}
	return 0;
}

/* ------------------------------------------------------------------ classification */

static int has_prefix(const char *s, const char *p)
{
	return s && !strncmp(s, p, strlen(p));
}

/* Anonymous for classification: no path, or a name set with PR_SET_VMA_ANON_NAME. */
static int is_anon(const hs_mapping *m)
{
	return !m->path || has_prefix(m->path, "[anon:") || has_prefix(m->path, "[anon_shmem:");
}

static int is_file(const hs_mapping *m)
{
	return m->path && m->path[0] == '/';
}

static int is_shm(const hs_mapping *m)
{
	if (m->perms[3] == 's')
		return 1;
	if (!m->path)
		return 0;
	return has_prefix(m->path, "/dev/shm/") || has_prefix(m->path, "/SYSV") ||
	       has_prefix(m->path, "/memfd:") || has_prefix(m->path, "/dev/zero") ||
	       has_prefix(m->path, "[anon_shmem:");
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* 1 if some address of the sorted list lies in [lo, hi). */
static int any_in(const uint64_t *v, size_t n, uint64_t lo, uint64_t hi)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (v[mid] < lo)
			a = mid + 1;
		else
			b = mid;
	}
	return a < n && v[a] < hi;
}

/* The thread whose stack pointer lies in [lo, hi), or -1. */
static long thread_in(const hs_capture *c, uint64_t lo, uint64_t hi)
{
	for (size_t i = 0; i < c->n_threads; i++)
		if (c->threads[i].regs_valid && c->threads[i].sp >= lo && c->threads[i].sp < hi)
			return (long)i;
	return -1;
}

/* Is [lo, hi) inside the 64 MiB reservation of a non-main arena heap? */
static int in_arena_heap(const hs_capture *c, uint64_t lo, uint64_t hi)
{
	for (size_t a = 0; a < c->n_arenas; a++)
		for (size_t h = 0; h < c->arenas[a].n_heaps; h++) {
			uint64_t base = c->arenas[a].heaps[h].addr;
			if (!base || (base & (ARENA_HEAP_MAX - 1)))
				continue;
			if (lo >= base && hi <= base + ARENA_HEAP_MAX)
				return 1;
		}
	return 0;
}

static int module_of_data_before(const hs_capture *c, size_t i)
{
	if (!i)
		return -1;
	const hs_mapping *p = &c->maps[i - 1];
	if (p->end != c->maps[i].start || p->module_idx < 0 || !is_file(p) ||
	    p->perms[0] != 'r' || p->perms[1] != 'w')
		return -1;
	return p->module_idx;
}

void pm_classify(hs_capture *c)
{
	/* addresses of mmapped chunks, sorted */
	uint64_t *mm = NULL;
	size_t n_mm = 0;
	if (c->n_chunks) {
		mm = malloc(c->n_chunks * sizeof *mm);
		for (size_t i = 0; mm && i < c->n_chunks; i++)
			if (c->chunks[i].mmapped)
				mm[n_mm++] = c->chunks[i].addr;
		if (mm)
			qsort(mm, n_mm, sizeof *mm, u64_cmp);
	}

	for (size_t i = 0; i < c->n_maps; i++) {
		hs_mapping *m = &c->maps[i];
		const char *path = m->path;
		m->tid = 0;
		if (m->module_idx >= 0 && (size_t)m->module_idx >= c->n_modules)
			m->module_idx = -1;

		if (path && !strcmp(path, "[heap]")) {
			m->kind = HS_MAP_HEAP;
		} else if (path && !strcmp(path, "[vdso]")) {
			m->kind = HS_MAP_VDSO;
		} else if (path && (!strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]"))) {
			m->kind = HS_MAP_VVAR;
		} else if (path && !strcmp(path, "[vsyscall]")) {
			m->kind = HS_MAP_VSYSCALL;
		} else if (is_anon(m) && in_arena_heap(c, m->start, m->end)) {
			m->kind = HS_MAP_ARENA_HEAP;
		} else if (is_anon(m) && any_in(mm, n_mm, m->start, m->end)) {
			m->kind = HS_MAP_MMAP_CHUNK;
		} else if ((is_anon(m) || has_prefix(path, "[stack")) &&
			   (thread_in(c, m->start, m->end) >= 0 || has_prefix(path, "[stack"))) {
			long t = thread_in(c, m->start, m->end);
			m->kind = HS_MAP_STACK;
			if (t >= 0) {
				m->tid = c->threads[t].tid;
			} else if (has_prefix(path, "[stack:")) {
				m->tid = atoi(path + 7);   /* kernels before 4.5 named thread stacks */
			} else {
				for (size_t k = 0; k < c->n_threads; k++)
					if (c->threads[k].tid == c->proc.pid)
						m->tid = c->proc.pid;
			}
		} else if (m->module_idx >= 0 && is_file(m) && m->perms[3] != 's') {
			if (m->perms[2] == 'x')
				m->kind = HS_MAP_MODULE_TEXT;
			else if (m->perms[1] == 'w')
				m->kind = HS_MAP_MODULE_DATA;
			else if (m->perms[0] == 'r')
				m->kind = HS_MAP_MODULE_RODATA;
			else
				m->kind = HS_MAP_GUARD;   /* a ---p hole between segments */
		} else if (is_anon(m) && m->perms[0] == 'r' && m->perms[1] == 'w' &&
			   m->perms[3] == 'p' &&
			   (m->module_idx >= 0 || module_of_data_before(c, i) >= 0)) {
			if (m->module_idx < 0)
				m->module_idx = module_of_data_before(c, i);
			m->kind = HS_MAP_MODULE_BSS;
		} else if (is_shm(m)) {
			m->kind = HS_MAP_SHM;
		} else if (is_file(m)) {
			m->kind = HS_MAP_FILE;
		} else if (!strcmp(m->perms, "---p")) {
			m->kind = HS_MAP_GUARD;
		} else {
			m->kind = HS_MAP_ANON;
		}
		if (m->kind != HS_MAP_MODULE_TEXT && m->kind != HS_MAP_MODULE_RODATA &&
		    m->kind != HS_MAP_MODULE_DATA && m->kind != HS_MAP_MODULE_BSS &&
		    !(m->kind == HS_MAP_GUARD && is_file(m)))
			m->module_idx = -1;
	}
	free(mm);

	/* each thread's stack mapping */
	for (size_t t = 0; t < c->n_threads; t++) {
		hs_thread *th = &c->threads[t];
		if (!th->regs_valid)
			continue;
		long k = find_containing(c, th->sp);
		if (k >= 0 && c->maps[k].kind == HS_MAP_STACK) {
			th->stack_lo = c->maps[k].start;
			th->stack_hi = c->maps[k].end;
		}
	}
}
