/* glibc_layout.h -- the x86-64 layout of glibc's malloc structures for glibc 2.35 to
 * 2.41, the only layout the heap walk supports (diffed across those tags; see
 * shared/glibc-heap.md section 1 and "Layout changes across glibc versions").
 *
 * Everything here is a constant or a pure inline helper: no target data is read.
 * Offsets are bytes from the start of the structure named in the prefix:
 *   GH_MS_  struct malloc_state (sizeof 2200)     GH_MP_  struct malloc_par mp_ (136)
 *   GH_HI_  struct _heap_info (48)                GH_TC_  tcache_perthread_struct (640)
 */
#ifndef HEAPSNAP_GLIBC_LAYOUT_H
#define HEAPSNAP_GLIBC_LAYOUT_H

#include <stdint.h>

/* chunks */
#define GH_SIZE_SZ 8u
#define GH_CHUNK_HDR 16u
#define GH_MINSIZE 32u
#define GH_ALIGN 16u
#define GH_PREV_INUSE 0x1u
#define GH_IS_MMAPPED 0x2u
#define GH_NON_MAIN 0x4u
#define GH_SIZE_BITS 0x7u

/* struct malloc_state */
#define GH_MS_SIZE 2200u
#define GH_MS_MUTEX 0u
#define GH_MS_FLAGS 4u
#define GH_MS_HAVE_FAST 8u
#define GH_MS_FASTBINS 16u
#define GH_MS_TOP 96u
#define GH_MS_LAST_REM 104u
#define GH_MS_BINS 112u
#define GH_MS_BINMAP 2144u
#define GH_MS_NEXT 2160u
#define GH_MS_NEXT_FREE 2168u
#define GH_MS_ATTACHED 2176u
#define GH_MS_SYSMEM 2184u
#define GH_MS_MAX_SYSMEM 2192u
#define GH_NFASTBINS 10
#define GH_NBINS 128              /* bins 1..127 are used; 1 is the unsorted bin */
#define GH_NSMALLBINS 64          /* bins 2..63 are small bins */
#define GH_NONCONTIGUOUS 0x2u     /* malloc_state.flags */

/* struct malloc_par (mp_) */
#define GH_MP_SIZE 136u
#define GH_MP_TRIM_THRESHOLD 0u
#define GH_MP_TOP_PAD 8u
#define GH_MP_MMAP_THRESHOLD 16u
#define GH_MP_ARENA_TEST 24u
#define GH_MP_ARENA_MAX 32u
#define GH_MP_THP_PAGESIZE 40u
#define GH_MP_HP_PAGESIZE 48u
#define GH_MP_HP_FLAGS 56u
#define GH_MP_N_MMAPS 60u          /* int */
#define GH_MP_N_MMAPS_MAX 64u      /* int */
#define GH_MP_MAX_N_MMAPS 68u      /* int */
#define GH_MP_NO_DYN 72u           /* int */
#define GH_MP_MMAPPED_MEM 80u
#define GH_MP_MAX_MMAPPED_MEM 88u
#define GH_MP_SBRK_BASE 96u
#define GH_MP_TCACHE_BINS 104u
#define GH_MP_TCACHE_MAX_BYTES 112u
#define GH_MP_TCACHE_COUNT 120u
#define GH_MP_TCACHE_UNSORTED 128u

/* struct _heap_info */
#define GH_HI_SIZE 48u
#define GH_HI_AR_PTR 0u
#define GH_HI_PREV 8u
#define GH_HI_HSIZE 16u
#define GH_HI_MPROTECT 24u
#define GH_HEAP_MAX_DEFAULT (64ull << 20) /* 2 * DEFAULT_MMAP_THRESHOLD_MAX */

/* tcache */
#define GH_TC_BINS 64
#define GH_TC_COUNTS 0u            /* uint16_t counts[64] */
#define GH_TC_ENTRIES 128u         /* tcache_entry *entries[64], user pointers */
#define GH_TC_STRUCT_SIZE 640u
#define GH_TC_STRUCT_CHUNK 0x290u  /* request2size(640) */
#define GH_TC_E_NEXT 0u            /* tcache_entry.next (safe-linked) */
#define GH_TC_E_KEY 8u             /* tcache_entry.key == tcache_key while cached */

/* bin_at(ar, i): the fake chunk whose fd/bk are bins[2(i-1)], bins[2(i-1)+1] */
static inline uint64_t gh_bin_at(uint64_t ar, int i)
{
	return ar + GH_MS_BINS + (uint64_t)(i - 1) * 16 - 16;
}

/* REVEAL_PTR / PROTECT_PTR of safe-linking (glibc >= 2.32): pos is the link's address */
static inline uint64_t gh_reveal(uint64_t pos, uint64_t v)
{
	return (pos >> 12) ^ v;
}

static inline int gh_fastbin_index(uint64_t sz)
{
	return (int)(sz >> 4) - 2;
}

/* bin_index() of malloc.c for 64-bit: small bins below 0x400, then the large bins */
static inline int gh_bin_index(uint64_t sz)
{
	if (sz < 0x400)
		return (int)(sz >> 4);
	if ((sz >> 6) <= 48)
		return 48 + (int)(sz >> 6);
	if ((sz >> 9) <= 20)
		return 91 + (int)(sz >> 9);
	if ((sz >> 12) <= 10)
		return 110 + (int)(sz >> 12);
	if ((sz >> 15) <= 4)
		return 119 + (int)(sz >> 15);
	if ((sz >> 18) <= 2)
		return 124 + (int)(sz >> 18);
	return 126;
}

/* tidx2usize and csize2tidx of malloc.c */
static inline uint64_t gh_tidx2usize(uint64_t i)
{
	return i * GH_ALIGN + GH_MINSIZE - GH_SIZE_SZ;
}

static inline uint64_t gh_request2size(uint64_t n)
{
	uint64_t s = (n + GH_SIZE_SZ + GH_ALIGN - 1) & ~(uint64_t)(GH_ALIGN - 1);
	return s < GH_MINSIZE ? GH_MINSIZE : s;
}

#endif
