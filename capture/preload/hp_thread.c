/* hp_thread.c -- per-thread state: the private record (caches, counters, sequence
 * batch, sampler) and its public part in the exported thread table (tid, the
 * "where" flag for safe points, the counter directory).
 *
 * Life cycle: a thread gets a record at its first hook (a retired one is reused,
 * counters and all: live totals are sums over every record). At thread exit a
 * pthread key destructor retires it (tid 0) after the other destructors have had
 * their rounds; a thread that still allocates or frees after that uses one shared
 * record whose counters are updated atomically. After fork() the child keeps only the
 * forking thread's record; the others are retired.
 */
#include "hp_internal.h"

#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_THREADS 65536

HP_TLS struct hp_tstate *hp_T;
HP_TLS int hp_busy;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;  /* table, free list */
static struct hp_thread_pub *table;
static struct hp_tstate *free_list;
static struct hp_tstate *shared_rec;    /* for threads past their exit destructors */
static pthread_key_t exit_key;
static HP_TLS int exit_rounds;

static int gettid_(void)
{
	return (int)syscall(SYS_gettid);
}

/* a new record (not yet given to a thread); lock held */
static struct hp_tstate *record_new(void)
{
	struct hp_state *s = HP_ST;
	uint32_t i = s->n_threads;
	if (i >= s->max_threads)
		return NULL;
	struct hp_tstate *t = hp_mmap(sizeof *t);
	t->pub = &table[i];
	t->pub->counters = (uint64_t)(uintptr_t)t->cnt;
	__atomic_store_n(&s->n_threads, i + 1, __ATOMIC_RELEASE);
	return t;
}

static void stack_bounds(struct hp_tstate *t)
{
	pthread_attr_t a;
	void *addr;
	size_t sz;
	t->stack_lo = t->stack_hi = 0;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		if (pthread_attr_getstack(&a, &addr, &sz) == 0) {
			t->stack_lo = (uintptr_t)addr;
			t->stack_hi = (uintptr_t)addr + sz;
		}
		pthread_attr_destroy(&a);
	}
}

static void exit_destructor(void *v)
{
	struct hp_tstate *t = v;
	int busy = hp_busy;
	hp_busy = 1;
	if (++exit_rounds < PTHREAD_DESTRUCTOR_ITERATIONS) {
		pthread_setspecific(exit_key, t);   /* again after the other destructors */
		hp_busy = busy;
		return;
	}
	hp_T = shared_rec;
	pthread_mutex_lock(&lock);
	t->pub->where = HP_WHERE_OUT;
	__atomic_store_n(&t->pub->tid, 0, __ATOMIC_RELEASE);
	t->next_free = free_list;
	free_list = t;
	pthread_mutex_unlock(&lock);
	hp_busy = busy;
}

struct hp_tstate *hp_thread_get(void)
{
	struct hp_tstate *t = hp_T;
	if (t)
		return t;
	if (!hp_cfg.inited)
		hp_init();                      /* returns at once if this thread runs it */
	pthread_mutex_lock(&lock);
	t = free_list;
	if (t)
		free_list = t->next_free;
	else
		t = record_new();
	pthread_mutex_unlock(&lock);
	if (!t) {                               /* thread table full: share, atomically */
		hp_T = shared_rec;
		return shared_rec;
	}
	t->next_free = NULL;
	hp_unwind_flush(t);                     /* caches may hold another stack's words */
	t->seq_next = t->seq_end = 0;
	t->rng = hp_cfg.seed ? hp_cfg.seed * 0x9e3779b97f4a7c15ull + (uint64_t)gettid_()
			     : ((uint64_t)(uintptr_t)&t ^ (uint64_t)gettid_() << 32) * 0xff51afd7ed558ccdull;
	t->rng |= 1;
	t->sample_left = 0;
	t->memo_ok = t->memo_miss = t->memo_hits = t->memo_off = 0;
	t->pub->where = HP_WHERE_OUT;
	__atomic_store_n(&t->pub->tid, gettid_(), __ATOMIC_RELEASE);
	hp_T = t;                               /* before anything that may allocate */
	if (hp_cfg.sample)
		t->sample_left = hp_sample_next(t);
	stack_bounds(t);
	pthread_setspecific(exit_key, t);
	return t;
}

int64_t *hp_counter_block(struct hp_tstate *t, uint32_t dir)
{
	int64_t *b = hp_mmap(2 * sizeof(int64_t) * HP_CNT_PER);
	int64_t *old = NULL;
	if (!__atomic_compare_exchange_n(&t->cnt[dir], &old, b, 0, __ATOMIC_RELEASE,
					 __ATOMIC_ACQUIRE)) {
		munmap(b, 2 * sizeof(int64_t) * HP_CNT_PER);   /* shared record: lost a race */
		return old;
	}
	return b;
}

static void atfork_prepare(void)
{
	hp_busy++;
	hp_dlclose_atfork(0);
	hp_intern_atfork(0);
	hp_unwind_atfork(0);
	pthread_mutex_lock(&lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&lock);
	hp_unwind_atfork(1);
	hp_intern_atfork(1);
	hp_dlclose_atfork(1);
	hp_busy--;
}

static void atfork_child(void)
{
	struct hp_state *s = HP_ST;
	struct hp_tstate *me = hp_T;
	s->pid = (uint32_t)getpid();
	/* every other thread is gone: retire its record (its counters stay) */
	for (uint32_t i = 0; i < s->n_threads; i++) {
		struct hp_thread_pub *p = &table[i];
		if (me && p == me->pub)
			continue;
		if (p->tid != 0 && (!shared_rec || p != shared_rec->pub)) {
			/* it was mid-hook when the fork copied memory: its counter update and
			 * the block's header may disagree here, by one block */
			if (p->where != HP_WHERE_OUT)
				s->n_fork_torn++;
			p->tid = 0;
			p->where = HP_WHERE_OUT;
		}
	}
	/* rebuild the free list from the retired records we can reach: those of the
	 * parent's threads are found through the counter directory address */
	free_list = NULL;
	for (uint32_t i = 0; i < s->n_threads; i++) {
		struct hp_thread_pub *p = &table[i];
		if (p->tid != 0 || (me && p == me->pub) || (shared_rec && p == shared_rec->pub))
			continue;
		struct hp_tstate *t = (struct hp_tstate *)((char *)(uintptr_t)p->counters -
							   offsetof(struct hp_tstate, cnt));
		t->next_free = free_list;
		free_list = t;
	}
	if (me) {
		me->pub->tid = gettid_();
		me->seq_next = me->seq_end = 0;
	}
	pthread_mutex_unlock(&lock);
	hp_unwind_atfork(2);
	hp_intern_atfork(2);
	hp_dlclose_atfork(2);
	hp_busy--;
}

void hp_thread_init_tables(void)
{
	struct hp_state *s = HP_ST;
	table = hp_mmap(sizeof *table * MAX_THREADS);
	s->thread_table = (uint64_t)(uintptr_t)table;
	s->max_threads = MAX_THREADS;
	shared_rec = record_new();        /* single-threaded here: no lock needed */
	shared_rec->shared = 1;
}

void hp_thread_init(void)
{
	pthread_key_create(&exit_key, exit_destructor);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
