/* image.h -- the copied memory of a frozen target: a sparse, bounds-checked map from
 * target address to bytes. Everything after the resume (heap walk, unwinding, pointer
 * scan) reads the target only through an image, so unit tests can hand them a
 * synthetic or corrupt one with no process behind it.
 *
 * Ownership: an image owns its region buffers. Regions never overlap; adding an
 * overlapping region fails. Lookups are O(log n) with a one-entry cache.
 */
#ifndef HEAPSNAP_IMAGE_H
#define HEAPSNAP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint64_t lo, hi;      /* [lo, hi) */
	unsigned char *buf;   /* hi - lo bytes */
	int copied;           /* 1 if the bytes were read successfully */
	unsigned char sparse; /* private anonymous: pages the target never touched read as
				 zero and are not copied (copying would fault them in) */
	unsigned char dirty;  /* the buffer holds bytes of an earlier copy */
	uint64_t *had;        /* sparse: bitmap of the pages the target had before the
				 freeze (malloc'ed, owned), NULL if not read */
} img_region;

typedef struct {
	img_region *r;
	size_t n, cap;
	size_t last;          /* lookup cache */
	int sorted;
} img_image;

void img_init(img_image *im);
void img_release(img_image *im);

/* Add a region of hi-lo bytes; the buffer is allocated (not yet filled) and returned,
 * or NULL on overlap or OOM. With prefault, every page is touched so that a later
 * copy into it does not page-fault (copying into fresh pages is several times slower). */
unsigned char *img_add(img_image *im, uint64_t lo, uint64_t hi, int prefault);

/* Add a region whose bytes the caller supplies (copied). For tests. */
int img_add_bytes(img_image *im, uint64_t lo, const void *bytes, size_t n);

/* Sort regions by address; called once after all adds (img_add keeps it valid lazily). */
void img_finish(img_image *im);

/* Read n bytes at addr. Returns 0 if the whole range lies in one copied region, else -1
 * (and dst is zero-filled). */
int img_read(img_image *im, uint64_t addr, void *dst, size_t n);

/* Convenience readers: return the value, and clear *ok (if given) on failure. */
uint64_t img_u64(img_image *im, uint64_t addr, int *ok);
uint32_t img_u32(img_image *im, uint64_t addr, int *ok);
uint16_t img_u16(img_image *im, uint64_t addr, int *ok);

/* Pointer to the bytes for [addr, addr+n) if they lie in one copied region, else NULL. */
const unsigned char *img_ptr(img_image *im, uint64_t addr, size_t n);

/* The region containing addr, or NULL. */
const img_region *img_find(img_image *im, uint64_t addr);

/* Total bytes held. */
uint64_t img_bytes(const img_image *im);

#endif
