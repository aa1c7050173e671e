/* glibc_elf.c -- which file holds the target's malloc (libc.so.6, or the executable
 * itself when it is linked statically), which glibc it is, and, when allowed, where its
 * symbols put main_arena, mp_, tcache_key and the TLS variables tcache and thread_arena.
 *
 * The version comes from the "release version X.Y" banner in the file. A static
 * executable carries that banner only if it uses it; then the glibc.malloc.hugetlb
 * tunable (2.35+) is the evidence, and the layout is confirmed later by structure.
 * Symbols come from the file's own .symtab or from the separate debug file named by its
 * GNU build-id (libelf). Nothing here reads the target's memory.
 */
#define _GNU_SOURCE
#include "glibc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCAN_BLOCK (1u << 20)
#define SCAN_MAX_BYTES (1ull << 30)

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* path without a trailing " (deleted)" */
static size_t path_len(const char *p)
{
	size_t n = strlen(p);
	static const char del[] = " (deleted)";
	if (n >= sizeof del - 1 && !strcmp(p + n - (sizeof del - 1), del))
		n -= sizeof del - 1;
	return n;
}

static int same_path(const char *a, const char *b)
{
	size_t na = path_len(a), nb = path_len(b);
	return na == nb && !memcmp(a, b, na);
}

static int is_libc_name(const char *path, int *old)
{
	size_t n = path_len(path);
	char buf[256];
	if (n >= sizeof buf)
		return 0;
	memcpy(buf, path, n);
	buf[n] = 0;
	const char *b = base_name(buf);
	*old = 0;
	if (!strcmp(b, "libc.so.6"))
		return 1;
	size_t bl = strlen(b);
	if (!strncmp(b, "libc-2.", 7) && bl > 3 && !strcmp(b + bl - 3, ".so")) {
		*old = 1;
		return 1;
	}
	return 0;
}

static int open_target_file(const gh_ctx *x, const char *path)
{
	char full[4096];
	size_t n = path_len(path);
	if ((size_t)snprintf(full, sizeof full, "%s%.*s", x->root, (int)n, path) >= sizeof full)
		return -ENAMETOOLONG;
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* ---- the module ---- */

static void add_rw(gh_ctx *x, uint64_t lo, uint64_t hi)
{
	if (x->n_rw < GH_MAX_RW && hi > lo) {
		x->rw_lo[x->n_rw] = lo;
		x->rw_hi[x->n_rw] = hi;
		x->n_rw++;
	}
}

static int is_anon(const hs_mapping *m)
{
	return !m->path || !m->path[0] || !strncmp(m->path, "[anon:", 6);
}

/* The module's writable ranges: its rw mappings plus the anonymous rw mapping right
 * after each (the tail of .bss). */
static void module_ranges(gh_ctx *x)
{
	const hs_capture *c = x->c;
	x->n_rw = 0;
	x->mod_base = 0;
	int have_base = 0;   /* 1: some offset-0 mapping, 2: one that starts a load image */
	for (size_t i = 0; i < c->n_maps; i++) {
		const hs_mapping *m = &c->maps[i];
		if (!m->path || !same_path(m->path, x->mod_path))
			continue;
		/* the file may also be mapped whole, read-only, by code in the target (libdw
		 * in the tracking library): the base is the offset-0 mapping an executable
		 * mapping of the file follows */
		int image = 0;
		for (size_t j = i; m->offset == 0 && j < c->n_maps && j < i + 32 && !image; j++) {
			const hs_mapping *v = &c->maps[j];
			if (v->path && !same_path(v->path, x->mod_path))
				break;
			if (j > i && v->path && v->offset == 0)
				break;
			image = v->path && v->perms[2] == 'x';
		}
		if (m->offset == 0 && (have_base < 1 + image ||
				       (have_base == 1 + image && m->start < x->mod_base))) {
			x->mod_base = m->start;
			have_base = 1 + image;
		}
		if (m->perms[1] != 'w')
			continue;
		add_rw(x, m->start, m->end);
		if (i + 1 < c->n_maps && c->maps[i + 1].start == m->end && is_anon(&c->maps[i + 1]) &&
		    c->maps[i + 1].perms[1] == 'w')
			add_rw(x, c->maps[i + 1].start, c->maps[i + 1].end);
	}
}

static int locate_module(gh_ctx *x, int *old)
{
	const hs_capture *c = x->c;
	*old = 0;
	for (size_t i = 0; i < c->n_maps; i++) {
		const char *p = c->maps[i].path;
		int o = 0;
		if (p && p[0] == '/' && is_libc_name(p, &o)) {
			x->mod_path = strndup(p, path_len(p));
			x->mod_deleted = path_len(p) != strlen(p);
			*old = o;
			break;
		}
	}
	if (!x->mod_path) {
		const char *exe = c->proc.exe;
		if (!exe)
			for (size_t i = 0; i < c->n_maps && !exe; i++)
				if (c->maps[i].path && c->maps[i].path[0] == '/')
					exe = c->maps[i].path;
		if (!exe)
			return 1;
		x->mod_path = strndup(exe, path_len(exe));
		x->mod_deleted = path_len(exe) != strlen(exe);
		x->is_static = 1;
	}
	if (!x->mod_path)
		return -ENOMEM;
	module_ranges(x);
	return 0;
}

/* ---- version banner and markers, by plain reads ---- */

typedef struct {
	char version[32];   /* from "release version X.Y" */
	int hugetlb;        /* "glibc.malloc.hugetlb" seen */
} scan_result;

static void parse_version(const char *p, const char *end, char *out, size_t outn)
{
	size_t n = 0;
	while (p < end && n + 1 < outn && ((*p >= '0' && *p <= '9') || *p == '.')) {
		out[n++] = *p++;
	}
	while (n && out[n - 1] == '.')
		n--;
	out[n] = 0;
}

/* glibc's banner: "GNU C Library (...) stable release version 2.36." Another program's
 * own "release version" text does not count. 1 if found in buf (the end of the buffer
 * is only trusted when final). */
static int find_banner(const char *buf, size_t n, int final, char *out, size_t outn)
{
	static const char gnu[] = "GNU C Library";
	static const char rel[] = "release version ";
	const char *p = buf, *end = buf + n;
	while ((p = memmem(p, (size_t)(end - p), gnu, sizeof gnu - 1))) {
		const char *wend = end - p > 256 ? p + 256 : end;
		const char *h = memmem(p, (size_t)(wend - p), rel, sizeof rel - 1);
		if (h && (final || end - (h + sizeof rel - 1) >= 8)) {
			parse_version(h + sizeof rel - 1, end, out, outn);
			if (out[0])
				return 1;
		}
		p += sizeof gnu - 1;
	}
	return 0;
}

static int scan_file(int fd, scan_result *r)
{
	static const char tun[] = "glibc.malloc.hugetlb";
	const size_t keep = 512;
	char *buf = malloc(SCAN_BLOCK + keep);
	if (!buf)
		return -ENOMEM;
	size_t have = 0;
	uint64_t total = 0;
	memset(r, 0, sizeof *r);
	for (;;) {
		ssize_t got = read(fd, buf + have, SCAN_BLOCK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			/* end of file: a banner in the kept tail may end right at the end */
			if (!r->version[0])
				find_banner(buf, have, 1, r->version, sizeof r->version);
			break;
		}
		size_t n = have + (size_t)got;
		total += (uint64_t)got;
		if (!r->version[0])
			find_banner(buf, n, 0, r->version, sizeof r->version);
		if (!r->hugetlb && memmem(buf, n, tun, sizeof tun - 1))
			r->hugetlb = 1;
		if ((r->version[0] && r->hugetlb) || total > SCAN_MAX_BYTES)
			break;
		have = n < keep ? n : keep;
		memmove(buf, buf + n - have, have);
	}
	free(buf);
	return 0;
}

static int version_supported(const char *v)
{
	unsigned maj = 0, min = 0;
	if (sscanf(v, "%u.%u", &maj, &min) != 2)
		return 0;
	return maj == 2 && min >= 35 && min <= 41;
}

/* ---- symbols with libelf ---- */

typedef struct {
	uint64_t main_arena, mp, tcache_key;
	uint64_t tls_tcache, tls_thread_arena;
	int have_ma, have_mp, have_key, have_tc, have_ta;
	uint64_t ma_size, mp_size;
} symset;

static void read_symtab(Elf *e, symset *s)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		size_t n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(d, (int)i, &sym))
				break;
			int t = GELF_ST_TYPE(sym.st_info);
			if (t != STT_OBJECT && t != STT_TLS)
				continue;
			const char *nm = elf_strptr(e, sh.sh_link, sym.st_name);
			if (!nm || nm[0] == 0)
				continue;
			if (t == STT_OBJECT && !strcmp(nm, "main_arena") && !s->have_ma) {
				s->main_arena = sym.st_value;
				s->ma_size = sym.st_size;
				s->have_ma = 1;
			} else if (t == STT_OBJECT && !strcmp(nm, "mp_") && sym.st_size == GH_MP_SIZE &&
				   !s->have_mp) {
				s->mp = sym.st_value;
				s->mp_size = sym.st_size;
				s->have_mp = 1;
			} else if (t == STT_OBJECT && !strcmp(nm, "tcache_key") && sym.st_size == 8) {
				s->tcache_key = sym.st_value;
				s->have_key = 1;
			} else if (t == STT_TLS && !strcmp(nm, "tcache") && sym.st_size == 8) {
				s->tls_tcache = sym.st_value;
				s->have_tc = 1;
			} else if (t == STT_TLS && !strcmp(nm, "thread_arena") && sym.st_size == 8) {
				s->tls_thread_arena = sym.st_value;
				s->have_ta = 1;
			}
		}
	}
}

/* GNU build-id of an ELF as lowercase hex; 0 or -1 */
static int read_build_id(Elf *e, char *hex, size_t hexn)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		size_t off = 0, noff, doff;
		GElf_Nhdr nh;
		while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((const char *)d->d_buf + noff, "GNU", 4))
				continue;
			if (nh.n_descsz == 0 || nh.n_descsz * 2 + 1 > hexn)
				return -1;
			const unsigned char *b = (const unsigned char *)d->d_buf + doff;
			for (size_t i = 0; i < nh.n_descsz; i++)
				snprintf(hex + 2 * i, 3, "%02x", b[i]);
			return 0;
		}
	}
	return -1;
}

/* load bias of the module: mod_base minus the page of the PT_LOAD at file offset 0 */
static uint64_t load_bias(Elf *e, uint64_t mod_base)
{
	GElf_Ehdr eh;
	if (!gelf_getehdr(e, &eh) || eh.e_type == ET_EXEC)
		return 0;
	size_t np = 0;
	if (elf_getphdrnum(e, &np))
		return mod_base;
	for (size_t i = 0; i < np; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD)
			return mod_base - (ph.p_vaddr - ph.p_offset);
	}
	return mod_base;
}

static Elf *open_elf(int fd)
{
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (e && elf_kind(e) != ELF_K_ELF) {
		elf_end(e);
		return NULL;
	}
	return e;
}

/* Try one debug file candidate; 1 if it matched the build-id and gave symbols. */
static int try_debug_file(gh_ctx *x, const char *full, const char *want_id, symset *s)
{
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int ok = 0;
	Elf *e = open_elf(fd);
	char id[128];
	if (e && !read_build_id(e, id, sizeof id) && !strcmp(id, want_id)) {
		read_symtab(e, s);
		ok = s->have_ma;
		if (ok)
			snprintf(x->sym_file, sizeof x->sym_file, "%s", full);
	}
	if (e)
		elf_end(e);
	close(fd);
	return ok;
}

/* Returns 0 (symbols or none), 1 if the symbols prove an unsupported layout. */
static int load_symbols(gh_ctx *x, int fd)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return 0;
	Elf *e = open_elf(fd);
	if (!e)
		return 0;
	symset s;
	memset(&s, 0, sizeof s);
	uint64_t bias = load_bias(e, x->mod_base);
	read_symtab(e, &s);
	if (s.have_ma) {
		snprintf(x->sym_file, sizeof x->sym_file, "%s", x->mod_path);
	} else {
		char id[128];
		memset(&s, 0, sizeof s);
		if (!read_build_id(e, id, sizeof id) && strlen(id) > 2) {
			char full[4096];
			snprintf(full, sizeof full, "%s/usr/lib/debug/.build-id/%.2s/%s.debug", x->root, id, id + 2);
			if (!try_debug_file(x, full, id, &s) && x->root[0]) {
				snprintf(full, sizeof full, "/usr/lib/debug/.build-id/%.2s/%s.debug", id, id + 2);
				try_debug_file(x, full, id, &s);
			}
		}
	}
	elf_end(e);
	if (!s.have_ma)
		return 0;
	if (s.ma_size != GH_MS_SIZE) {
		gh_heap_note(x, "no glibc heap walked: the symbols of %s give sizeof(main_arena) = %llu, "
			     "not the 2.35-2.41 layout", x->sym_file, (unsigned long long)s.ma_size);
		return 1;
	}
	x->have_syms = 1;
	x->sym_main_arena = s.main_arena + bias;
	x->sym_mp = s.have_mp ? s.mp + bias : 0;
	x->sym_tcache_key = s.have_key ? s.tcache_key + bias : 0;
	if (s.have_tc && s.have_ta) {
		x->have_tls_syms = 1;
		x->sym_tls_delta = (long)(s.tls_thread_arena - s.tls_tcache);
	}
	return 0;
}

int gh_elf_setup(gh_ctx *x)
{
	int old = 0;
	int rc = locate_module(x, &old);
	if (rc < 0)
		return rc;
	if (rc) {
		gh_heap_note(x, "no glibc heap found: no libc.so.6 is mapped and the executable is unknown");
		return 1;
	}
	int fd = open_target_file(x, x->mod_path);
	if (fd < 0) {
		gh_heap_note(x, "no glibc heap walked: cannot open '%s' to read its glibc version: %s",
			     x->mod_path, strerror(-fd));
		return 1;
	}
	scan_result sr;
	rc = scan_file(fd, &sr);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	if (sr.version[0]) {
		snprintf(x->version, sizeof x->version, "%s", sr.version);
		x->version_exact = 1;
		if (!version_supported(sr.version)) {
			gh_heap_note(x, "no glibc heap walked: glibc %s ('%s') is not supported; "
				     "only the 2.35-2.41 x86-64 layout is", sr.version, x->mod_path);
			close(fd);
			return 1;
		}
	} else if (x->is_static && sr.hugetlb) {
		/* glibc >= 2.35 by its tunables; the upper bound is checked by structure */
		snprintf(x->version, sizeof x->version, "2.35-2.41");
		x->version_exact = 0;
	} else {
		if (x->is_static)
			gh_heap_note(x, "no glibc heap found: no libc.so.6 is mapped and the executable '%s' "
				     "shows no glibc 2.35+ malloc (another libc, or an old glibc)", x->mod_path);
		else
			gh_heap_note(x, "no glibc heap walked: no glibc version banner in '%s'%s", x->mod_path,
				     old ? " (an old libc-2.x.so)" : "");
		close(fd);
		return 1;
	}
	if (x->mod_deleted)
		/* the file on disk is not the one mapped: its symbols would point anywhere */
		gh_heap_note(x, "'%s' was replaced since the target mapped it: version from the new file, "
			     "no symbols used", x->mod_path);
	else if (!x->no_debug && lseek(fd, 0, SEEK_SET) == 0)
		rc = load_symbols(x, fd);
	close(fd);
	return rc;
}
