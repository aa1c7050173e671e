/* hp_state.c -- the exported state (heapsnap_tracker_state, format in hp_format.h),
 * the configuration read from the environment, and the library's initialization.
 *
 * Initialization may start inside the first hook (a dependency's constructor or the
 * dynamic loader allocates before our constructor runs): hp_init() is idempotent,
 * runs with hp_busy set, and publishes the magic last.
 *
 * Environment (read once):
 *   HEAPSNAP_SAMPLE=BYTES  Poisson sampling by bytes (0 or unset: every allocation)
 *   HEAPSNAP_DEPTH=N       frames per stack, 1..256 (default 64)
 *   HEAPSNAP_CHECK=1       compare every fast stack with libunwind's (slow; tests)
 *   HEAPSNAP_MEMO=0, HEAPSNAP_FAST=0   disable the stack memo / the CFA walk (tests)
 *   HEAPSNAP_SEED=N        seed of the sampler (tests)
 *   HEAPSNAP_DUMP=FILE     write the live allocations per stack at exit (hp_dump.c)
 */
#include "hp_internal.h"

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libunwind.h>

HP_EXPORT struct hp_state heapsnap_tracker_state __attribute__((aligned(64)));
struct hp_config hp_cfg;

_Static_assert(sizeof(struct hp_state) == 256, "hp_state layout");
_Static_assert(offsetof(struct hp_state, seq) == 192, "hp_state layout");
_Static_assert(offsetof(struct hp_state, dl_gen) == 88, "hp_state layout");
_Static_assert(sizeof(struct hp_thread_pub) == 128, "hp_thread_pub layout");
_Static_assert(sizeof(struct hp_unload) == 40, "hp_unload layout");

void hp_die(const char *msg)
{
	static const char pfx[] = "heapsnap preload: fatal: ";
	ssize_t r = write(2, pfx, sizeof pfx - 1);
	r = write(2, msg, strlen(msg));
	r = write(2, "\n", 1);
	(void)r;
	abort();
}

void *hp_mmap(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		hp_die("out of memory (mmap)");
	return p;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return dflt;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	return *end ? dflt : (uint64_t)v;
}

static void text_range(void *addr, uintptr_t *lo, uintptr_t *hi)
{
	struct dl_find_object o;
	if (_dl_find_object(addr, &o) == 0) {
		*lo = (uintptr_t)o.dlfo_map_start;
		*hi = (uintptr_t)o.dlfo_map_end;
	}
}

void hp_init(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static HP_TLS int in_init;           /* this thread is running hp_init */
	if (hp_cfg.inited || in_init)
		return;
	int busy = hp_busy;
	hp_busy = 1;
	pthread_mutex_lock(&lock);
	if (hp_cfg.inited) {                 /* another thread finished it meanwhile */
		pthread_mutex_unlock(&lock);
		hp_busy = busy;
		return;
	}
	in_init = 1;
	hp_thread_init_tables();
	hp_real_resolve();

	struct hp_state *s = HP_ST;
	hp_cfg.depth = (int)env_u64("HEAPSNAP_DEPTH", HP_DEFAULT_DEPTH);
	if (hp_cfg.depth < 1)
		hp_cfg.depth = 1;
	if (hp_cfg.depth > HP_MAX_DEPTH)
		hp_cfg.depth = HP_MAX_DEPTH;
	hp_cfg.sample = env_u64("HEAPSNAP_SAMPLE", 0);
	hp_cfg.seed = env_u64("HEAPSNAP_SEED", 0);
	hp_cfg.check = env_u64("HEAPSNAP_CHECK", 0) != 0;
	hp_cfg.no_memo = env_u64("HEAPSNAP_MEMO", 1) == 0;
	hp_cfg.no_fast = env_u64("HEAPSNAP_FAST", 1) == 0;
	text_range((void *)hp_init, &hp_cfg.self_lo, &hp_cfg.self_hi);
	text_range((void *)unw_backtrace, &hp_cfg.unw_lo, &hp_cfg.unw_hi);

	s->version = HP_FORMAT_VERSION;
	s->state_size = sizeof *s;
	s->hdr_size = HP_HDR_SIZE;
	s->flags = (hp_cfg.sample ? HP_ST_SAMPLING : 0) | (hp_cfg.check ? HP_ST_CHECK : 0);
	s->sample_interval = hp_cfg.sample;
	s->max_depth = (uint32_t)hp_cfg.depth;
	s->pid = (uint32_t)getpid();
	hp_intern_init();
	hp_thread_init();
	hp_dlclose_init();
	__atomic_store_n(&s->magic, HP_MAGIC, __ATOMIC_RELEASE);
	hp_cfg.inited = 1;
	in_init = 0;
	pthread_mutex_unlock(&lock);
	hp_busy = busy;
}

__attribute__((constructor)) static void hp_constructor(void)
{
	hp_init();
}

__attribute__((destructor)) static void hp_destructor(void)
{
	hp_busy = 1;
	hp_dump_at_exit();
	hp_busy = 0;
}
