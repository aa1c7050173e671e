/* glibc_int.h -- private to the glibc heap walk (glibc.c, glibc_elf.c, glibc_find.c,
 * glibc_walk.c, glibc_check.c): the walk's working context, the set of chunks that
 * free lists name, and the helpers the files share. Nothing outside capture/glibc*.c
 * includes it; the public interface is glibc.h.
 *
 * Ownership: a gh_ctx lives for one gh_walk() call, which frees what it owns.
 * Target addresses read from the image are untrusted everywhere.
 */
#ifndef HEAPSNAP_GLIBC_INT_H
#define HEAPSNAP_GLIBC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "glibc.h"
#include "glibc_layout.h"

#define GH_MAX_ARENAS 1024         /* cap on the arena ring */
#define GH_MAX_HEAPS 4096          /* cap on one arena's heap list */
#define GH_MAX_RW 32               /* writable ranges of the malloc module */
#define GH_LIST_CAP (1u << 26)     /* cap on any one free list (nodes) */
#define GH_NOTE_MAX 1500           /* longest note kept per arena */

/* Why a chunk is on a list (gh_ent.kind). */
enum { GH_K_BIN = 1, GH_K_FAST, GH_K_TCACHE, GH_K_TCSTRUCT };

/* One chunk named by a free list or a TLS slot, keyed by chunk address. */
typedef struct {
	uint64_t key;       /* chunk address; 0 = empty slot */
	uint8_t kind;       /* GH_K_* */
	uint8_t seen;       /* the walk met it at a chunk boundary */
	uint8_t dup;        /* it was named by a second list too (double free) */
	uint8_t pad;
	int16_t bin;        /* bin or fastbin or tcache index */
	int16_t owner;      /* arena index of the list, -1 for tcache entries */
} gh_ent;

typedef struct {
	gh_ent *t;
	size_t cap, n;
} gh_set;

int gh_set_put(gh_set *s, uint64_t key, gh_ent **out, int *existed);
gh_ent *gh_set_get(const gh_set *s, uint64_t key);
void gh_set_release(gh_set *s);

/* A tcache that failed validation: charged to the arena holding its struct. */
typedef struct {
	uint64_t chunk;     /* the tcache_perthread_struct chunk */
	int tid;
	char why[160];
} gh_tcbad;

typedef struct {
	img_image *im;
	hs_capture *c;
	int no_debug;
	const char *root;   /* "" or o->root */

	/* the module holding malloc: libc.so.6, or the executable when static */
	char *mod_path;     /* as in maps */
	int is_static;
	int mod_deleted;    /* maps says "(deleted)": the file was replaced */
	uint64_t mod_base;  /* mapping of file offset 0 */
	uint64_t rw_lo[GH_MAX_RW], rw_hi[GH_MAX_RW];
	int n_rw;

	char version[32];   /* "2.36", or "2.35-2.41" when only the layout is known */
	int version_exact;

	/* from symbols (.symtab of the module itself or its build-id debug file) */
	int have_syms;
	uint64_t sym_main_arena, sym_mp, sym_tcache_key; /* runtime addresses, 0 = absent */
	int have_tls_syms;
	long sym_tls_delta; /* &thread_arena - &tcache */
	char sym_file[512];

	/* located */
	uint64_t main_arena, mp;
	uint64_t heap_max;  /* HEAP_MAX_SIZE in effect */
	uint64_t sbrk_base;
	uint64_t arenas[GH_MAX_ARENAS];
	size_t n_arenas;
	char how_arena[64], how_mp[64];
	uint64_t want_sbrk;  /* scratch for the mp_ search */

	/* tcache */
	long tc_off;        /* &tcache == fs_base - tc_off; 0 = unknown */
	long ta_off;        /* &thread_arena == fs_base - ta_off; 0 = unknown */
	uint64_t tcache_key;
	int key_known;
	gh_tcbad *tcbad;
	size_t n_tcbad, cap_tcbad;

	gh_set set;
	int oom;
} gh_ctx;

/* image readers: value, or 0 with *ok cleared */
static inline uint64_t gh_u64(gh_ctx *x, uint64_t a, int *ok)
{
	return img_u64(x->im, a, ok);
}
static inline uint32_t gh_u32(gh_ctx *x, uint64_t a, int *ok)
{
	return img_u32(x->im, a, ok);
}

/* Append a formatted remark to arena ai's note (and mark it inconsistent), or to the
 * capture-wide heap note when ai < 0 (a remark only). Long notes are cut. */
void gh_arena_fail(gh_ctx *x, int ai, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void gh_heap_note(gh_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* glibc_elf.c: locate the module, read its glibc version and (unless no_debug) the
 * symbols. Returns 0, 1 when no supported glibc is there (heap note says why), or
 * a negative errno. */
int gh_elf_setup(gh_ctx *x);

/* glibc_find.c */
int gh_find_main_arena(gh_ctx *x);  /* 0 found, 1 not found (note set) */
int gh_collect_arenas(gh_ctx *x);   /* fills x->arenas and c->arenas; 0 or -ENOMEM */
int gh_find_mp(gh_ctx *x);          /* 0 found, 1 not found */
int gh_find_tcaches(gh_ctx *x);     /* TLS slots: each thread's tcache and arena; 0 or -ENOMEM */

/* glibc_check.c: the free lists (bins, fastbins, tcaches) into x->set, with their
 * int_mallinfo figures and the list-level checks. 0 or -ENOMEM. */
int gh_collect_lists(gh_ctx *x);
/* after the walk: list nodes the walk never met, and the tcaches that failed */
void gh_post_checks(gh_ctx *x);

/* glibc_walk.c */
int gh_walk_arenas(gh_ctx *x);      /* 0 or -ENOMEM */
int gh_scan_mmapped(gh_ctx *x);     /* 0 or -ENOMEM */
/* arena index whose heaps contain a, or -1 */
int gh_arena_of_addr(const gh_ctx *x, uint64_t a);

#endif
