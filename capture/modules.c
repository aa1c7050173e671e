/* modules.c -- the loaded ELF objects of a target, found from its file mappings: every
 * distinct file (grouped by path and inode) whose first bytes are an ELF header becomes
 * a module, with its load bias, address range, GNU build-id (libdwelf) and whether DWARF
 * is at hand. Files are opened under the target's root (/proc/PID/root) so containers
 * and upgraded-in-place libraries resolve to what the target really mapped.
 *
 * Load bias: the mapping with the lowest file offset is matched to the PT_LOAD that
 * holds that offset; runtime = vaddr + bias, so bias = map.start - vaddr_of(offset),
 * with vaddr_of(off) = p_vaddr - p_offset + off (equal modulo the page size by the ELF
 * rules, so this is the page-aligned p_vaddr for the usual offset-0 first mapping).
 *
 * The files are untrusted: libelf does the parsing, counts are capped, and nothing
 * read from them is used as a size without a bound.
 */
#define _GNU_SOURCE
#include "modules.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elfutils/libdwelf.h>

#define MOD_MAX_PHDRS    256
#define MOD_MAX_BUILD_ID 64    /* bytes */
#define MOD_MAX_SECTIONS 65536

/* ------------------------------------------------------------------ opening files */

static int is_root_set(const char *root)
{
	return root && root[0] && strcmp(root, "/");
}

static int open_checked(const char *path, uint64_t inode, int *matched)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*matched = !inode || (uint64_t)st.st_ino == inode;
	return fd;
}

static int open_candidates(const char *root, const char *path, uint64_t inode,
			   uint64_t lo, uint64_t hi)
{
	char cand[3][PATH_MAX];
	int n = 0;
	if (is_root_set(root)) {
		if ((size_t)snprintf(cand[n], PATH_MAX, "%s%s", root, path) < PATH_MAX)
			n++;
		size_t rl = strlen(root);
		if (lo < hi && rl >= 5 && !strcmp(root + rl - 5, "/root") &&
		    (size_t)snprintf(cand[n], PATH_MAX, "%.*smap_files/%" PRIx64 "-%" PRIx64,
				     (int)(rl - 4), root, lo, hi) < PATH_MAX)
			n++;
	}
	if ((size_t)snprintf(cand[n], PATH_MAX, "%s", path) < PATH_MAX)
		n++;

	int fallback = -ENOENT;
	for (int i = 0; i < n; i++) {
		int matched = 0;
		int fd = open_checked(cand[i], inode, &matched);
		if (fd < 0)
			continue;
		if (matched) {
			if (fallback >= 0)
				close(fallback);
			return fd;
		}
		if (fallback < 0)
			fallback = fd;
		else
			close(fd);
	}
	return fallback;
}

int mod_open(const hs_capture *c, size_t idx, const char *root)
{
	if (idx >= c->n_modules || !c->modules[idx].path)
		return -EINVAL;
	uint64_t inode = 0, lo = 0, hi = 0;
	for (size_t i = 0; i < c->n_maps; i++)
		if (c->maps[i].module_idx == (int)idx && c->maps[i].path &&
		    !strcmp(c->maps[i].path, c->modules[idx].path)) {
			inode = c->maps[i].inode;
			lo = c->maps[i].start;
			hi = c->maps[i].end;
			break;
		}
	return open_candidates(root, c->modules[idx].path, inode, lo, hi);
}

static int file_exists(const char *root, const char *path, char *out, size_t outsz)
{
	char buf[PATH_MAX];
	struct stat st;
	if (is_root_set(root) && (size_t)snprintf(buf, sizeof buf, "%s%s", root, path) < sizeof buf &&
	    !stat(buf, &st) && S_ISREG(st.st_mode)) {
		snprintf(out, outsz, "%s", buf);
		return 1;
	}
	if (!stat(path, &st) && S_ISREG(st.st_mode)) {
		snprintf(out, outsz, "%s", path);
		return 1;
	}
	return 0;
}

int mod_find_debugfile(const char *root, const char *path, const char *build_id,
		       const char *debuglink, char *out, size_t outsz)
{
	char p[PATH_MAX];
	if (build_id && strlen(build_id) > 2 && strlen(build_id) < 2 * MOD_MAX_BUILD_ID + 1) {
		snprintf(p, sizeof p, "/usr/lib/debug/.build-id/%.2s/%s.debug", build_id, build_id + 2);
		if (file_exists(root, p, out, outsz))
			return 0;
	}
	if (debuglink && *debuglink && !strchr(debuglink, '/') && path && path[0] == '/') {
		const char *slash = strrchr(path, '/');
		int dl = (int)(slash - path);   /* directory without the trailing slash */
		const char *base = slash + 1;
		if (strcmp(debuglink, base)) {   /* the file itself is not its own debuginfo */
			snprintf(p, sizeof p, "%.*s/%s", dl, path, debuglink);
			if (file_exists(root, p, out, outsz))
				return 0;
		}
		snprintf(p, sizeof p, "%.*s/.debug/%s", dl, path, debuglink);
		if (file_exists(root, p, out, outsz))
			return 0;
		snprintf(p, sizeof p, "/usr/lib/debug%.*s/%s", dl, path, debuglink);
		if (file_exists(root, p, out, outsz))
			return 0;
	}
	return -ENOENT;
}

/* ------------------------------------------------------------------ ELF facts */

typedef struct {
	uint64_t bias;
	uint64_t img_end;        /* page-rounded end of the highest PT_LOAD in memory (bias added) */
	char *build_id;
	int has_dwarf;           /* .debug_info in the file itself */
	char debuglink[256];
} elf_facts;

static char *hex(const unsigned char *b, size_t n)
{
	char *s = malloc(2 * n + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", b[i]);
	s[2 * n] = 0;
	return s;
}

static int section_has_dwarf(Elf *elf)
{
	size_t shstrndx;
	if (elf_getshdrstrndx(elf, &shstrndx))
		return 0;
	Elf_Scn *scn = NULL;
	int n = 0;
	while ((scn = elf_nextscn(elf, scn)) && n++ < MOD_MAX_SECTIONS) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS || !sh.sh_size)
			continue;
		const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && (!strcmp(name, ".debug_info") || !strcmp(name, ".zdebug_info")))
			return 1;
	}
	return 0;
}

/* Read what we need from the file; 0, or -ENOEXEC if it is not a usable ELF. */
static int read_elf(int fd, uint64_t map_start, uint64_t map_off, uint64_t pagesz, elf_facts *ef)
{
	unsigned char magic[4];
	if (pread(fd, magic, 4, 0) != 4 || memcmp(magic, ELFMAG, SELFMAG))
		return -ENOEXEC;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	int rc = -ENOEXEC;
	GElf_Ehdr eh;
	size_t phnum;
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    (eh.e_type != ET_DYN && eh.e_type != ET_EXEC) || elf_getphdrnum(elf, &phnum))
		goto out;
	if (phnum > MOD_MAX_PHDRS)
		phnum = MOD_MAX_PHDRS;
	int found = 0;
	uint64_t max_end = 0;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_vaddr + ph.p_memsz > max_end)
			max_end = ph.p_vaddr + ph.p_memsz;
		uint64_t seg_lo = ph.p_offset & ~(pagesz - 1);
		uint64_t seg_hi = ph.p_offset + (ph.p_filesz ? ph.p_filesz : 1);
		if (!found && map_off >= seg_lo && map_off < seg_hi) {
			ef->bias = map_start - (ph.p_vaddr - ph.p_offset + map_off);
			found = 1;
		}
	}
	if (!found)
		goto out;
	ef->img_end = ((max_end + pagesz - 1) & ~(pagesz - 1)) + ef->bias;

	const void *id;
	ssize_t idlen = dwelf_elf_gnu_build_id(elf, &id);
	if (idlen > 0 && idlen <= MOD_MAX_BUILD_ID)
		ef->build_id = hex(id, (size_t)idlen);
	ef->has_dwarf = section_has_dwarf(elf);
	GElf_Word crc;
	const char *dl = dwelf_elf_gnu_debuglink(elf, &crc);
	if (dl)
		snprintf(ef->debuglink, sizeof ef->debuglink, "%s", dl);
	rc = 0;
out:
	elf_end(elf);
	return rc;
}

/* ------------------------------------------------------------------ collection */

static void free_modules(hs_capture *c)
{
	for (size_t i = 0; i < c->n_modules; i++) {
		free(c->modules[i].path);
		free(c->modules[i].build_id);
	}
	free(c->modules);
	c->modules = NULL;
	c->n_modules = 0;
}

static int candidate(const hs_mapping *m)
{
	return m->path && m->path[0] == '/' && m->perms[3] == 'p';
}

static int by_start(const void *a, const void *b)
{
	const hs_module *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Put c->modules in address order and renumber the mappings' module_idx. */
static void sort_modules(hs_capture *c)
{
	if (c->n_modules < 2)
		return;
	int *newidx = malloc(c->n_modules * sizeof *newidx);
	hs_module *old = malloc(c->n_modules * sizeof *old);
	if (!newidx || !old) {
		free(newidx);
		free(old);
		return;   /* unsorted is still correct, only mod_find gets slower */
	}
	memcpy(old, c->modules, c->n_modules * sizeof *old);
	qsort(c->modules, c->n_modules, sizeof *c->modules, by_start);
	for (size_t i = 0; i < c->n_modules; i++)
		for (size_t j = 0; j < c->n_modules; j++)
			if (old[i].path == c->modules[j].path) {   /* same strdup'ed pointer */
				newidx[i] = (int)j;
				break;
			}
	for (size_t i = 0; i < c->n_maps; i++)
		if (c->maps[i].module_idx >= 0)
			c->maps[i].module_idx = newidx[c->maps[i].module_idx];
	free(newidx);
	free(old);
}

static const hs_mapping *sort_maps;   /* qsort has no context argument */

static int by_file(const void *a, const void *b)
{
	const hs_mapping *x = &sort_maps[*(const size_t *)a], *y = &sort_maps[*(const size_t *)b];
	int r = strcmp(x->path, y->path);
	if (r)
		return r;
	if (x->inode != y->inode)
		return x->inode < y->inode ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Describe one group (the mappings ix[0..n) of one file, by address); on success
 * append a module and set module_idx of the members and of the .bss after them.
 * 0 (also when the file is not an ELF), or -ENOMEM. */
static int collect_group(hs_capture *c, const char *root, const size_t *ix, size_t n,
			 uint64_t pagesz)
{
	size_t low = ix[0];
	uint64_t start = c->maps[ix[0]].start, end = c->maps[ix[0]].end;
	for (size_t k = 1; k < n; k++) {
		const hs_mapping *m = &c->maps[ix[k]];
		if (m->offset < c->maps[low].offset)
			low = ix[k];
		if (m->start < start)
			start = m->start;
		if (m->end > end)
			end = m->end;
	}
	int fd = open_candidates(root, c->maps[low].path, c->maps[low].inode,
				 c->maps[low].start, c->maps[low].end);
	if (fd < 0)
		return 0;
	elf_facts ef;
	memset(&ef, 0, sizeof ef);
	int erc = read_elf(fd, c->maps[low].start, c->maps[low].offset, pagesz, &ef);
	close(fd);
	if (erc)
		return 0;
	hs_module *mo = &c->modules[c->n_modules];
	memset(mo, 0, sizeof *mo);
	if (!(mo->path = strdup(c->maps[low].path))) {
		free(ef.build_id);
		return -ENOMEM;
	}
	mo->build_id = ef.build_id;
	mo->load_base = ef.bias;
	mo->start = start;
	mo->end = end;
	mo->is_main = c->proc.exe && !strcmp(c->proc.exe, mo->path);
	char dbg[PATH_MAX];
	mo->has_debuginfo = ef.has_dwarf ||
		!mod_find_debugfile(root, mo->path, mo->build_id,
				    ef.debuglink[0] ? ef.debuglink : NULL, dbg, sizeof dbg);
	int idx = (int)c->n_modules++;
	for (size_t k = 0; k < n; k++) {
		size_t i = ix[k];
		c->maps[i].module_idx = idx;
		/* .bss: the anonymous rw mapping right after a file-backed rw mapping of the
		 * module, within the ELF's memory image */
		if (c->maps[i].perms[1] != 'w' || i + 1 >= c->n_maps)
			continue;
		hs_mapping *b = &c->maps[i + 1];
		if (!b->path && b->start == c->maps[i].end && b->start < ef.img_end &&
		    !strncmp(b->perms, "rw-p", 4) && b->module_idx < 0) {
			b->module_idx = idx;
			uint64_t e = b->end < ef.img_end ? b->end : ef.img_end;
			if (e > mo->end)
				mo->end = e;
		}
	}
	return 0;
}

/* One file may be mapped more than once: ld.so's load image, and whole-file read-only
 * mmaps of it made by code in the target (libdw in the tracking library maps the ELF
 * files it reads at offset 0). A load image starts with its offset-0 mapping, so the
 * file's mappings (by address) are split there, and when the file has executable
 * mappings only the images holding one become modules. 0, or -ENOMEM. */
static int collect_file(hs_capture *c, const char *root, const size_t *ix, size_t n,
			uint64_t pagesz)
{
	int any_exec = 0;
	for (size_t k = 0; k < n; k++)
		any_exec |= c->maps[ix[k]].perms[2] == 'x';
	if (!any_exec)
		return collect_group(c, root, ix, n, pagesz);
	int rc = 0;
	for (size_t s = 0; s < n && !rc;) {
		size_t t = s + 1;
		int exec = c->maps[ix[s]].perms[2] == 'x';
		for (; t < n && c->maps[ix[t]].offset != 0; t++)
			exec |= c->maps[ix[t]].perms[2] == 'x';
		if (exec)
			rc = collect_group(c, root, ix + s, t - s, pagesz);
		s = t;
	}
	return rc;
}

int mod_collect(hs_capture *c, const char *root)
{
	free_modules(c);
	for (size_t i = 0; i < c->n_maps; i++)
		c->maps[i].module_idx = -1;
	if (!c->n_maps)
		return 0;
	elf_version(EV_CURRENT);
	uint64_t pagesz = c->proc.page_size ? c->proc.page_size : 4096;

	size_t *ix = malloc(c->n_maps * sizeof *ix);
	c->modules = calloc(c->n_maps, sizeof *c->modules);
	if (!ix || !c->modules) {
		free(ix);
		free(c->modules);
		c->modules = NULL;
		return -ENOMEM;
	}
	size_t n = 0;
	for (size_t i = 0; i < c->n_maps; i++)
		if (candidate(&c->maps[i]))
			ix[n++] = i;
	sort_maps = c->maps;
	qsort(ix, n, sizeof *ix, by_file);
	sort_maps = NULL;

	int rc = 0;
	for (size_t g = 0; g < n && !rc;) {
		size_t e = g + 1;
		while (e < n && c->maps[ix[e]].inode == c->maps[ix[g]].inode &&
		       !strcmp(c->maps[ix[e]].path, c->maps[ix[g]].path))
			e++;
		rc = collect_file(c, root, ix + g, e - g, pagesz);
		g = e;
	}
	free(ix);
	if (rc) {
		free_modules(c);
		for (size_t i = 0; i < c->n_maps; i++)
			c->maps[i].module_idx = -1;
		return rc;
	}
	sort_modules(c);
	return 0;
}

int mod_find(const hs_capture *c, uint64_t addr)
{
	/* modules are in address order: binary search, then a scan for odd layouts */
	size_t lo = 0, hi = c->n_modules;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->modules[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && addr < c->modules[lo - 1].end && addr >= c->modules[lo - 1].start)
		return (int)(lo - 1);
	for (size_t i = 0; i < c->n_modules; i++)
		if (addr >= c->modules[i].start && addr < c->modules[i].end)
			return (int)i;
	return -1;
}

int mod_vdso(const hs_capture *c, uint64_t *start, const unsigned char **image, size_t *len)
{
	const hs_mapping *tv = NULL;
	for (size_t i = 0; i < c->n_maps; i++)
		if (c->maps[i].path && !strcmp(c->maps[i].path, "[vdso]"))
			tv = &c->maps[i];
	unsigned long mine = getauxval(AT_SYSINFO_EHDR);
	if (!tv || !mine)
		return -ENOENT;
	/* our own [vdso] mapping's size */
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -ENOENT;
	char line[512];
	uint64_t lo = 0, hi = 0;
	while (fgets(line, sizeof line, f)) {
		if (!strstr(line, "[vdso]"))
			continue;
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a == mine) {
			lo = a;
			hi = b;
		}
		break;
	}
	fclose(f);
	if (!hi || hi - lo != tv->end - tv->start)
		return -ENOENT;
	*start = tv->start;
	*image = (const unsigned char *)(uintptr_t)lo;
	*len = (size_t)(hi - lo);
	return 0;
}
