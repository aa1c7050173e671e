/* hp_real.c -- the real allocator behind the hooks, found with dlsym(RTLD_NEXT) (so an
 * allocator loaded after us, e.g. jemalloc, stays in use) with glibc's __libc_*
 * entry points as the fallback, and the bootstrap buffer that serves the allocations
 * made while dlsym itself runs (it may call calloc).
 *
 * Bootstrap blocks are never freed (free() of one is ignored) and carry their size in
 * the 16 bytes before them, for realloc and malloc_usable_size, then HP_BOOT_WORD, so
 * that free() takes them for marked blocks and never passes them to the real free.
 */
#include "hp_internal.h"

#include <dlfcn.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

struct hp_real hp_real;
int hp_real_ready;

void hp_real_resolve(void)
{
	if (hp_real_ready)
		return;
	struct hp_real r;
	r.malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	r.free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	r.calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	r.realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	r.memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	r.usable = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
	if (!r.malloc || !r.free || !r.calloc || !r.realloc || !r.memalign || !r.usable) {
		/* not found after us (unusual link order): glibc's own entry points */
		r.malloc = __libc_malloc;
		r.free = __libc_free;
		r.calloc = __libc_calloc;
		r.realloc = __libc_realloc;
		r.memalign = __libc_memalign;
		void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
		r.usable = libc ? (size_t(*)(void *))dlsym(libc, "malloc_usable_size") : NULL;
		if (!r.usable)
			hp_die("cannot find the real malloc_usable_size");
	}
	hp_real = r;
	__atomic_store_n(&hp_real_ready, 1, __ATOMIC_RELEASE);
}

/* ---- bootstrap buffer ---- */
char hp_boot_buf[HP_BOOT_SIZE] __attribute__((aligned(4096)));
static size_t boot_used;

void *hp_boot_alloc(size_t n, size_t align, int zero)
{
	(void)zero;                              /* the buffer is never reused: all zero */
	if (align < 16)
		align = 16;
	if (n > HP_BOOT_SIZE)
		return NULL;
	size_t cur = __atomic_load_n(&boot_used, __ATOMIC_RELAXED), start, end;
	do {
		start = (cur + 16 + align - 1) & ~(align - 1);
		end = start + ((n + 15) & ~(size_t)15);
		if (end > HP_BOOT_SIZE)
			return NULL;
	} while (!__atomic_compare_exchange_n(&boot_used, &cur, end, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	((uint64_t *)(hp_boot_buf + start))[-2] = n;
	((uint64_t *)(hp_boot_buf + start))[-1] = HP_BOOT_WORD;
	__atomic_fetch_add(&HP_ST->n_bootstrap, 1, __ATOMIC_RELAXED);
	return hp_boot_buf + start;
}

size_t hp_boot_size(const void *p)
{
	return ((const uint64_t *)p)[-2];
}
