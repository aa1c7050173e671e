/* hp_dlclose.c -- dlclose interposition. When a dlclose unloads modules, their address
 * ranges and paths go to the exported unload table and hp_state.dl_gen moves, which
 * makes every thread drop its cached CFA rules and memoized stacks (the code they
 * describe is gone; something else may be mapped there next) and gives stacks taken
 * from then on a new generation, so equal PCs in different generations stay distinct.
 *
 * Modules are compared before and after the real dlclose with dl_iterate_phdr, so the
 * dependencies unloaded with the handle are recorded too.
 */
#include "hp_internal.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_UNLOADS 4096
#define MAX_SEEN 2048

struct seen {
	uintptr_t lo, hi, bias;
	const char *name;
};
struct seen_list {
	struct seen m[MAX_SEEN];
	int n;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;   /* the unload table */
static struct hp_unload *unloads;
static int (*real_dlclose)(void *);
#define SCRATCH (1u << 20)

void hp_dlclose_init(void)
{
	struct hp_state *s = HP_ST;
	unloads = hp_mmap(sizeof *unloads * MAX_UNLOADS);
	s->unload_table = (uint64_t)(uintptr_t)unloads;
	s->max_unloads = MAX_UNLOADS;
}

void hp_dlclose_atfork(int phase)
{
	if (phase == 0)
		pthread_mutex_lock(&lock);
	else
		pthread_mutex_unlock(&lock);
}

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct seen_list *l = arg;
	(void)size;
	if (l->n == MAX_SEEN)
		return 1;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;
		if (a < lo)
			lo = a;
		if (a + ph->p_memsz > hi)
			hi = a + ph->p_memsz;
	}
	if (lo >= hi)
		return 0;
	l->m[l->n++] = (struct seen){ lo, hi, info->dlpi_addr, info->dlpi_name };
	return 0;
}

static const char *keep_string(const char *s)
{
	/* unload paths live as long as the process: an mmap'd pool, never freed */
	static char *pool, *end;
	size_t n = s ? strlen(s) + 1 : 1;
	if (n > 4096)
		n = 4096;
	if (!pool || (size_t)(end - pool) < n) {
		pool = hp_mmap(65536);
		end = pool + 65536;
	}
	char *r = pool;
	if (s)
		memcpy(r, s, n - 1);
	r[n - 1] = 0;
	pool += n;
	return r;
}

/* No lock is held across the real dlclose: the destructors it runs may allocate (they
 * are tracked as usual) or dlclose other modules themselves. */
HP_EXPORT int dlclose(void *handle)
{
	int busy = hp_busy;
	hp_busy = 1;
	if (!real_dlclose)
		real_dlclose = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
	hp_busy = busy;
	if (!real_dlclose)
		return -1;
	if (!unloads)
		return real_dlclose(handle);
	struct seen_list *before = hp_mmap(sizeof *before), *after = hp_mmap(sizeof *after);
	char *scratch = hp_mmap(SCRATCH);     /* names of `before`: dlclose frees them */
	dl_iterate_phdr(collect, before);
	size_t used = 0;
	for (int i = 0; i < before->n; i++) {
		const char *nm = before->m[i].name ? before->m[i].name : "";
		size_t len = strnlen(nm, 4095);
		if (used + len + 1 > SCRATCH)
			len = 0, nm = "";
		memcpy(scratch + used, nm, len);
		scratch[used + len] = 0;
		before->m[i].name = scratch + used;
		used += len + 1;
	}
	int r = real_dlclose(handle);
	dl_iterate_phdr(collect, after);
	struct hp_state *s = HP_ST;
	pthread_mutex_lock(&lock);
	int gone = 0;
	for (int i = 0; i < before->n; i++) {
		int found = 0;
		for (int j = 0; j < after->n && !found; j++)
			found = after->m[j].lo == before->m[i].lo && after->m[j].bias == before->m[i].bias;
		if (found)
			continue;
		if (!gone++)
			__atomic_fetch_add(&s->dl_gen, 1, __ATOMIC_RELEASE);
		uint32_t k = s->n_unloads;
		if (k < MAX_UNLOADS) {
			unloads[k] = (struct hp_unload){ before->m[i].lo, before->m[i].hi, before->m[i].bias,
							  s->dl_gen,
							  (uint64_t)(uintptr_t)keep_string(before->m[i].name) };
			__atomic_store_n(&s->n_unloads, k + 1, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&lock);
	munmap(scratch, SCRATCH);
	munmap(after, sizeof *after);
	munmap(before, sizeof *before);
	return r;
}
