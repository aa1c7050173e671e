/* hp_dump.c -- the in-process dump of live tracked allocations per stack, for tests and
 * debugging (the capture reads the same counters out of the frozen process instead).
 * Written at exit when HEAPSNAP_DUMP=FILE is set, or whenever a program calls the
 * exported heapsnap_preload_dump(path) (fixtures find it with dlsym).
 *
 * Format (text, one record per line):
 *   # heapsnap-preload-dump 1 pid=N stacks=N sample=N depth=N fallback=N checked=N
 *     mismatch=N bootstrap=N foreign=N unloads=N           (one line)
 *   COUNT BYTES ID FRAME...       for each stack with a nonzero live count
 * FRAME is MODULE_PATH:0xOFFSET (OFFSET = pc - the module's load bias, so it is an ELF
 * address of the return address), or ?:0xPC when no module holds pc. Stack ids of
 * HP_STACK_NONE/OVERFLOW have no frames. Counts of live blocks are exact for full
 * tracking; with sampling they count the sampled blocks (not scaled).
 * No stdio and no allocation: a fixed buffer flushed with write(2).
 */
#include "hp_internal.h"

#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct out {
	int fd;
	size_t n;
	char buf[8192];
};

static void flush(struct out *o)
{
	size_t off = 0;
	while (off < o->n) {
		ssize_t r = write(o->fd, o->buf + off, o->n - off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	o->n = 0;
}

static void put(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (o->n == sizeof o->buf)
			flush(o);
		o->buf[o->n++] = *s;
	}
}

static void put_num(struct out *o, int64_t v, int hex)
{
	char tmp[32];
	int k = 0;
	uint64_t u = v < 0 && !hex ? (uint64_t)-v : (uint64_t)v;
	do {
		tmp[k++] = "0123456789abcdef"[u % (hex ? 16 : 10)];
		u /= hex ? 16 : 10;
	} while (u);
	if (v < 0 && !hex)
		tmp[k++] = '-';
	char s[34];
	int j = 0;
	if (hex) {
		s[j++] = '0';
		s[j++] = 'x';
	}
	while (k)
		s[j++] = tmp[--k];
	s[j] = 0;
	put(o, s);
}

static void put_kv(struct out *o, const char *k, int64_t v)
{
	put(o, " ");
	put(o, k);
	put(o, "=");
	put_num(o, v, 0);
}

static void put_frame(struct out *o, uintptr_t pc, uint32_t gen)
{
	const struct hp_state *s = HP_ST;
	/* a module unloaded after this stack was taken held the pc then */
	const struct hp_unload *un = (const struct hp_unload *)(uintptr_t)s->unload_table;
	for (uint32_t i = 0; un && i < s->n_unloads; i++) {
		if (un[i].gen > gen && pc >= un[i].lo && pc < un[i].hi) {
			put(o, " ");
			put(o, (const char *)(uintptr_t)un[i].path);
			put(o, ":");
			put_num(o, (int64_t)(pc - un[i].bias), 1);
			return;
		}
	}
	struct dl_find_object f;
	if (_dl_find_object((void *)(pc - 1), &f) == 0) {
		const struct link_map *lm = f.dlfo_link_map;
		static char exe[4096];
		const char *path = lm->l_name;
		if (!path || !path[0]) {
			if (!exe[0]) {
				ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
				exe[n > 0 ? n : 0] = 0;
			}
			path = exe;
		}
		put(o, " ");
		put(o, path);
		put(o, ":");
		put_num(o, (int64_t)(pc - lm->l_addr), 1);
		return;
	}
	put(o, " ?:");
	put_num(o, (int64_t)pc, 1);
}

static void sum_into(int64_t *tot, uint32_t id, const struct hp_thread_pub *pub)
{
	const int64_t *const *dir = (const int64_t *const *)(uintptr_t)pub->counters;
	const int64_t *b = dir ? dir[id / HP_CNT_PER] : NULL;
	if (b) {
		tot[0] += b[2 * (id % HP_CNT_PER)];
		tot[1] += b[2 * (id % HP_CNT_PER) + 1];
	}
}

HP_EXPORT int heapsnap_preload_dump(const char *path)
{
	const struct hp_state *s = HP_ST;
	if (!hp_cfg.inited || !path)
		return -1;
	int busy = hp_busy;
	hp_busy = 1;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		hp_busy = busy;
		return -1;
	}
	struct out *o = hp_mmap(sizeof *o);
	o->fd = fd;
	put(o, "# heapsnap-preload-dump 1");
	put_kv(o, "pid", getpid());
	put_kv(o, "stacks", (int64_t)s->n_stacks - 1);
	put_kv(o, "sample", (int64_t)s->sample_interval);
	put_kv(o, "depth", s->max_depth);
	put_kv(o, "fallback", (int64_t)s->n_fallback);
	put_kv(o, "checked", (int64_t)s->n_checked);
	put_kv(o, "mismatch", (int64_t)s->n_mismatch);
	put_kv(o, "bootstrap", (int64_t)s->n_bootstrap);
	put_kv(o, "foreign", (int64_t)s->n_foreign_free);
	put_kv(o, "unloads", s->n_unloads);
	uint64_t memo = 0, walkn = 0, nalloc = 0;
	const struct hp_thread_pub *thr = (const struct hp_thread_pub *)(uintptr_t)s->thread_table;
	for (uint32_t i = 0; i < s->n_threads; i++) {
		memo += thr[i].n_memo;
		walkn += thr[i].n_walk;
		nalloc += thr[i].n_alloc + thr[i].n_memo;
	}
	put_kv(o, "recorded", (int64_t)nalloc);
	put_kv(o, "memo", (int64_t)memo);
	put_kv(o, "walk", (int64_t)walkn);
	put(o, "\n");
	static const uint32_t extra[] = { HP_STACK_NONE, HP_STACK_OVERFLOW };
	uint32_t ns = s->n_stacks;
	for (uint32_t k = 1; k < ns + 2; k++) {
		uint32_t id = k < ns ? k : extra[k - ns];
		int64_t tot[2] = { 0, 0 };
		for (uint32_t i = 0; i < s->n_threads; i++)
			sum_into(tot, id, &thr[i]);
		if (!tot[0])
			continue;
		put_num(o, tot[0], 0);
		put(o, " ");
		put_num(o, tot[1], 0);
		put(o, " ");
		put_num(o, id, 0);
		const struct hp_stack *st = k < ns ? hp_stack_get(id) : NULL;
		for (uint32_t f = 0; st && f < st->n; f++)
			put_frame(o, (uintptr_t)st->pc[f], st->gen);
		put(o, "\n");
	}
	flush(o);
	close(fd);
	munmap(o, sizeof *o);
	hp_busy = busy;
	return 0;
}

void hp_dump_at_exit(void)
{
	const char *p = getenv("HEAPSNAP_DUMP");
	if (!p || !*p)
		return;
	char path[4096], pid[16];
	size_t k = 0;
	int n = 0, v = getpid();
	do
		pid[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 15);
	for (; *p && k + 16 < sizeof path; p++) {
		if (p[0] == '%' && p[1] == 'p') {       /* %p: the pid (fork children differ) */
			for (int i = n - 1; i >= 0; i--)
				path[k++] = pid[i];
			p++;
		} else {
			path[k++] = *p;
		}
	}
	path[k] = 0;
	heapsnap_preload_dump(path);
}
