/* pass_preload.c -- the floor for any interposing library: a preload whose malloc, free,
 * calloc and realloc only forward to glibc's __libc_* entry points. bench/track_ab.sh
 * runs it beside the tracking library, so the cost of interposition itself is measured
 * in the same conditions. */
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

void *malloc(size_t n) { return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t a, size_t b) { return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
