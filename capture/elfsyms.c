/* elfsyms.c -- per-module tables of data symbols (see elfsyms.h): loaded on first use
 * from .symtab and .dynsym with libelf (plus the separate debuginfo's .symtab when the
 * file has none), sorted by address, names in one pool per module. The files are
 * untrusted: counts are capped and libelf does all parsing.
 */
#define _GNU_SOURCE
#include "elfsyms.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modules.h"

#define ES_MAX_SYMS (4u << 20)    /* per module */
#define ES_MAX_NAME 4096

extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

typedef struct {
	uint64_t start, size;
	uint32_t name;        /* offset into the module's pool */
} es_sym;

typedef struct {
	int loaded;
	es_sym *s;
	size_t n, cap;
	char *pool;
	size_t pool_n, pool_cap;
	uint64_t ztv_lo, ztv_hi;  /* span of its _ZTV symbols; lo >= hi when none */
} es_mod;

typedef struct {
	uint64_t start, end;
	int idx;
} es_range;

struct es_table {
	const hs_capture *c;
	char *root;
	es_mod *m;
	es_range *r;          /* modules by start */
	size_t n;
	uint64_t lo, hi;      /* span of all modules */
};

static int cmp_range(const void *a, const void *b)
{
	const es_range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

es_table *es_open(const hs_capture *c, const char *root)
{
	es_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->c = c;
	t->root = strdup(root ? root : "");
	t->m = calloc(c->n_modules ? c->n_modules : 1, sizeof *t->m);
	t->r = calloc(c->n_modules ? c->n_modules : 1, sizeof *t->r);
	if (!t->root || !t->m || !t->r) {
		es_close(t);
		return NULL;
	}
	t->lo = UINT64_MAX;
	for (size_t i = 0; i < c->n_modules; i++) {
		const hs_module *m = &c->modules[i];
		if (m->end <= m->start)
			continue;
		t->r[t->n].start = m->start;
		t->r[t->n].end = m->end;
		t->r[t->n].idx = (int)i;
		t->n++;
		if (m->start < t->lo)
			t->lo = m->start;
		if (m->end > t->hi)
			t->hi = m->end;
	}
	qsort(t->r, t->n, sizeof *t->r, cmp_range);
	return t;
}

void es_close(es_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->m && i < t->c->n_modules; i++) {
		free(t->m[i].s);
		free(t->m[i].pool);
	}
	free(t->m);
	free(t->r);
	free(t->root);
	free(t);
}

static int module_of(const es_table *t, uint64_t a)
{
	if (a < t->lo || a >= t->hi)
		return -1;
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->r[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || a >= t->r[lo - 1].end)
		return -1;
	return t->r[lo - 1].idx;
}

static int push_sym(es_mod *m, uint64_t start, uint64_t size, const char *name)
{
	size_t len = strnlen(name, ES_MAX_NAME);
	if (m->n >= ES_MAX_SYMS || len == 0)
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		es_sym *s = realloc(m->s, cap * sizeof *s);
		if (!s)
			return -1;
		m->s = s;
		m->cap = cap;
	}
	if (m->pool_n + len + 1 > m->pool_cap) {
		size_t cap = m->pool_cap ? m->pool_cap * 2 : 16384;
		while (cap < m->pool_n + len + 1)
			cap *= 2;
		char *p = realloc(m->pool, cap);
		if (!p)
			return -1;
		m->pool = p;
		m->pool_cap = cap;
	}
	memcpy(m->pool + m->pool_n, name, len);
	m->pool[m->pool_n + len] = 0;
	m->s[m->n].start = start;
	m->s[m->n].size = size;
	m->s[m->n].name = (uint32_t)m->pool_n;
	m->pool_n += len + 1;
	m->n++;
	return 0;
}

/* Symbols of one symbol-table kind (SHT_SYMTAB or SHT_DYNSYM); returns how many tables
 * of that kind the file had, or -1 on OOM. */
static int load_kind(es_mod *m, Elf *e, uint64_t bias, Elf64_Word kind)
{
	int tables = 0;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != kind || !sh.sh_entsize)
			continue;
		tables++;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		size_t count = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < count; i++) {
			GElf_Sym s;
			if (!gelf_getsym(d, (int)i, &s))
				break;
			int type = GELF_ST_TYPE(s.st_info);
			if (s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_ABS || !s.st_value)
				continue;
			if (type != STT_OBJECT && !(type == STT_NOTYPE && s.st_size))
				continue;
			const char *name = elf_strptr(e, sh.sh_link, s.st_name);
			if (name && push_sym(m, s.st_value + bias, s.st_size, name))
				return -1;
		}
	}
	return tables;
}

static int cmp_sym(const void *a, const void *b)
{
	const es_sym *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->size > y->size ? -1 : x->size < y->size;  /* the largest first */
}

static void load_file(es_mod *m, int fd, uint64_t bias, int want_dynsym, int *had_symtab)
{
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e)
		return;
	if (elf_kind(e) == ELF_K_ELF) {
		int n = load_kind(m, e, bias, SHT_SYMTAB);
		if (had_symtab)
			*had_symtab = n > 0;
		if (n >= 0 && want_dynsym)
			load_kind(m, e, bias, SHT_DYNSYM);
	}
	elf_end(e);
}

static void load_module(es_table *t, int idx)
{
	es_mod *m = &t->m[idx];
	const hs_module *hm = &t->c->modules[idx];
	m->loaded = 1;
	elf_version(EV_CURRENT);
	int fd = mod_open(t->c, (size_t)idx, t->root);
	int had_symtab = 0;
	if (fd >= 0) {
		load_file(m, fd, hm->load_base, 1, &had_symtab);
		close(fd);
	}
	if (!had_symtab && hm->build_id) {
		char dbg[PATH_MAX];
		if (!mod_find_debugfile(t->root, hm->path, hm->build_id, NULL, dbg, sizeof dbg)) {
			int dfd = open(dbg, O_RDONLY | O_CLOEXEC);
			if (dfd >= 0) {
				load_file(m, dfd, hm->load_base, 0, NULL);
				close(dfd);
			}
		}
	}
	if (m->n)
		qsort(m->s, m->n, sizeof *m->s, cmp_sym);
	/* drop exact duplicates (the same symbol in .symtab and .dynsym) */
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (k && m->s[k - 1].start == m->s[i].start && m->s[k - 1].size == m->s[i].size &&
		    !strcmp(m->pool + m->s[k - 1].name, m->pool + m->s[i].name))
			continue;
		m->s[k++] = m->s[i];
	}
	m->n = k;
	m->ztv_lo = UINT64_MAX;
	m->ztv_hi = 0;
	for (size_t i = 0; i < m->n; i++)
		if (!strncmp(m->pool + m->s[i].name, "_ZTV", 4)) {
			if (m->s[i].start < m->ztv_lo)
				m->ztv_lo = m->s[i].start;
			if (m->s[i].start + m->s[i].size > m->ztv_hi)
				m->ztv_hi = m->s[i].start + m->s[i].size;
		}
}

/* The symbol of module idx containing a, preferring a _ZTV one when ztv is set. */
static const es_sym *find_sym(es_table *t, int idx, uint64_t a, int ztv)
{
	es_mod *m = &t->m[idx];
	if (!m->loaded)
		load_module(t, idx);
	if (ztv && (a < m->ztv_lo || a >= m->ztv_hi))
		return NULL;
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->s[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* a few symbols back: aliases and nested symbols share or precede the start */
	for (size_t k = lo, steps = 0; k > 0 && steps < 8; k--, steps++) {
		const es_sym *s = &m->s[k - 1];
		if (a < s->start + s->size &&
		    (!ztv || !strncmp(m->pool + s->name, "_ZTV", 4)))
			return s;
	}
	return NULL;
}

static void fill(const es_table *t, int idx, const es_sym *s, es_symbol *out)
{
	out->module = idx;
	out->name = t->m[idx].pool + s->name;
	out->start = s->start;
	out->size = s->size;
}

int es_lookup(es_table *t, uint64_t addr, es_symbol *out)
{
	int idx = module_of(t, addr);
	if (idx < 0)
		return 0;
	const es_sym *s = find_sym(t, idx, addr, 0);
	if (!s)
		return 0;
	fill(t, idx, s, out);
	return 1;
}

int es_vtable(es_table *t, uint64_t v, es_symbol *out)
{
	if (v & 7)
		return 0;
	int idx = module_of(t, v);
	if (idx < 0)
		return 0;
	const es_sym *s = find_sym(t, idx, v, 1);
	if (!s || v - s->start < 16)
		return 0;
	fill(t, idx, s, out);
	return 1;
}

char *es_class_name(const char *ztv)
{
	int st = -1;
	char *d = __cxa_demangle(ztv, NULL, NULL, &st);
	if (d && !st) {
		static const char prefix[] = "vtable for ";
		if (!strncmp(d, prefix, sizeof prefix - 1))
			memmove(d, d + sizeof prefix - 1, strlen(d) - (sizeof prefix - 1) + 1);
		return d;
	}
	free(d);
	return strdup(ztv);
}
