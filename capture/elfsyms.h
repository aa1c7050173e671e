/* elfsyms.h -- data symbols of a capture's modules, for naming what the pointer scan
 * finds: which global (module + symbol + offset) holds a root pointer, and which C++
 * vtable (a _ZTV... symbol) a chunk's first word points at. Symbols come from each
 * module's .symtab and .dynsym (and the .symtab of its separate debuginfo found by
 * build-id when the file itself is stripped), loaded lazily once per module.
 */
#ifndef HEAPSNAP_ELFSYMS_H
#define HEAPSNAP_ELFSYMS_H

#include <stdint.h>

#include "model.h"

typedef struct es_table es_table;

/* root: prefix to open target files ("/proc/PID/root" or ""). NULL on OOM. */
es_table *es_open(const hs_capture *c, const char *root);
void es_close(es_table *t);

typedef struct {
	int module;           /* module index */
	const char *name;     /* mangled symbol name, owned by the table */
	uint64_t start;       /* runtime address of the symbol */
	uint64_t size;        /* bytes */
} es_symbol;

/* The data symbol (STT_OBJECT, or STT_NOTYPE with a size) containing addr in the module
 * that maps addr. 1 and *out set, or 0 if none. */
int es_lookup(es_table *t, uint64_t addr, es_symbol *out);

/* For a word v read from a chunk: if v points into a _ZTV vtable symbol at an address
 * point (8-aligned, at least 16 bytes in), the vtable symbol. 1 and *out set, or 0. Fast
 * when v is no code/data address at all. */
int es_vtable(es_table *t, uint64_t v, es_symbol *out);

/* "Foo::Bar" for "_ZTVN3Foo3BarE" (heap string), or a copy of the mangled name when it
 * does not demangle. NULL on OOM. */
char *es_class_name(const char *ztv);

#endif
