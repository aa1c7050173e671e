/* symbols.c -- pc -> frame, with an OFFLINE libdwfl session: every module of the
 * capture is reported from its file on disk (opened under the target's root) at the
 * load bias the target used, so symbolization reads files only, never the live target.
 *
 * For each pc: the module and rel_pc (always), the ELF symbol and offset
 * (dwfl_module_addrinfo), C++ names demangled with __cxa_demangle from libstdc++, the
 * source line (dwfl_module_getsrc), and the chain of inlined functions at that pc from
 * the DWARF scopes (DW_TAG_inlined_subroutine, whose DW_AT_call_file/call_line give the
 * line in the function it was inlined into). A return address is looked up at pc - 1,
 * the call instruction, so the line is that of the call and not of the next statement.
 *
 * Separate debuginfo is found by our own find_debuginfo callback (modules.c's
 * mod_find_debugfile: build-id, then .gnu_debuglink), not dwfl_standard_find_debuginfo,
 * because that one falls back to debuginfod when DEBUGINFOD_URLS is set (Debian sets it
 * in login shells): a capture must never wait on the network. dwz alternate files
 * (.gnu_debugaltlink) are opened by path here, else libdw finds them by build-id.
 *
 * The [vdso] is symbolized from our own copy of it (same kernel), through a memfd.
 *
 * Frames are interned by (pc, is_return_addr) in an open-addressing table.
 */
#define _GNU_SOURCE
#include "symbols.h"

#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>

#include "modules.h"

#define SYM_MAX_INLINE 32          /* inlined levels kept per pc */
#define SYM_MAX_SCOPES 1024        /* function-like scopes looked at per pc */
#define SYM_MAX_NAME   4096        /* longest function name kept */

/* libstdc++'s demangler (cxxabi.h; hs_capture links stdc++). */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

typedef struct {
	uint64_t key;     /* pc << 1 | is_return_addr; 0 = empty slot (pc 0 is never looked up) */
	int32_t frame;
	int32_t n_inline;
} intern_slot;

struct sym_session {
	Dwfl *dwfl;
	char *root;
	intern_slot *tab;
	size_t slots, used;
};

/* ------------------------------------------------------------------ debuginfo lookup */

static int open_verified(const char *path, const void *want_id, size_t want_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !want_len)
		return fd;
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	const void *id;
	ssize_t n = e ? dwelf_elf_gnu_build_id(e, &id) : -1;
	int ok = n == (ssize_t)want_len && !memcmp(id, want_id, want_len);
	if (e)
		elf_end(e);
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  GElf_Addr base, const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	sym_session *s = *userdata;
	const char *root = s ? s->root : "";
	char found[PATH_MAX];

	if (debuglink_file && strchr(debuglink_file, '/')) {
		/* a dwz alternate file (.gnu_debugaltlink): a path, absolute or relative
		 * to the debug file; libdw finds it by build-id if we do not */
		char p[PATH_MAX];
		if (debuglink_file[0] == '/') {
			snprintf(p, sizeof p, "%s", debuglink_file);
		} else if (file_name && strrchr(file_name, '/')) {
			int dl = (int)(strrchr(file_name, '/') - file_name);
			snprintf(p, sizeof p, "%.*s/%s", dl, file_name, debuglink_file);
		} else {
			return -1;
		}
		char q[PATH_MAX];
		if (root[0] && (size_t)snprintf(q, sizeof q, "%s%s", root, p) < sizeof q) {
			int fd = open(q, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				*debuginfo_file_name = strdup(q);
				return fd;
			}
		}
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			*debuginfo_file_name = strdup(p);
		return fd;
	}

	const unsigned char *bits = NULL;
	GElf_Addr vaddr;
	int blen = dwfl_module_build_id(mod, &bits, &vaddr);
	char idhex[2 * 64 + 1] = "";
	if (blen > 0 && blen <= 64)
		for (int i = 0; i < blen; i++)
			snprintf(idhex + 2 * i, 3, "%02x", bits[i]);
	else
		blen = 0;
	if (mod_find_debugfile(root, modname, idhex[0] ? idhex : NULL, debuglink_file, found,
			       sizeof found))
		return -1;
	int fd = open_verified(found, bits, (size_t)blen);
	if (fd >= 0)
		*debuginfo_file_name = strdup(found);
	return fd;
}

static const Dwfl_Callbacks offline_callbacks = {
	.find_elf = dwfl_build_id_find_elf,   /* unused: every module comes with its fd */
	.find_debuginfo = find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = NULL,
};

/* ------------------------------------------------------------------ session */

static void set_userdata(Dwfl_Module *m, sym_session *s)
{
	void **ud = NULL;
	dwfl_module_info(m, &ud, NULL, NULL, NULL, NULL, NULL, NULL);
	if (ud)
		*ud = s;
}

/* Report our own copy of the [vdso] at the target's address, through a memfd. */
static void report_vdso(sym_session *s, const hs_capture *c)
{
	uint64_t start;
	const unsigned char *img;
	size_t len;
	if (mod_vdso(c, &start, &img, &len))
		return;
	Elf *e = elf_memory((char *)(uintptr_t)img, len);
	if (!e)
		return;
	/* bias = target start - page-aligned vaddr of the first PT_LOAD */
	size_t phnum;
	uint64_t first = 0;
	int have = 0;
	if (!elf_getphdrnum(e, &phnum))
		for (size_t i = 0; i < phnum && i < 64 && !have; i++) {
			GElf_Phdr ph;
			if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD) {
				first = ph.p_vaddr & ~(uint64_t)4095;
				have = 1;
			}
		}
	elf_end(e);
	if (!have)
		return;
	int fd = memfd_create("heapsnap-vdso", MFD_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, img, len) != (ssize_t)len) {
		close(fd);
		return;
	}
	Dwfl_Module *m = dwfl_report_elf(s->dwfl, "[vdso]", "[vdso]", fd, start - first, true);
	if (!m)
		close(fd);
	else
		set_userdata(m, s);
}

sym_session *sym_open(const hs_capture *c, const char *root)
{
	elf_version(EV_CURRENT);
	sym_session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->root = strdup(root ? root : "");
	s->dwfl = dwfl_begin(&offline_callbacks);
	if (!s->root || !s->dwfl) {
		sym_close(s);
		return NULL;
	}
	dwfl_report_begin(s->dwfl);
	for (size_t i = 0; i < c->n_modules; i++) {
		int fd = mod_open(c, i, s->root);
		if (fd < 0)
			continue;
		/* the file name only labels the module: the fd is what is read */
		Dwfl_Module *m = dwfl_report_elf(s->dwfl, c->modules[i].path, c->modules[i].path,
						 fd, c->modules[i].load_base, true);
		if (!m) {
			close(fd);
			continue;
		}
		set_userdata(m, s);
	}
	report_vdso(s, c);
	dwfl_report_end(s->dwfl, NULL, NULL);
	return s;
}

void sym_close(sym_session *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	free(s->root);
	free(s->tab);
	free(s);
}

const char *sym_root(const sym_session *s)
{
	return s && s->root ? s->root : "";
}

/* ------------------------------------------------------------------ names and lines */

/* A heap copy of name, demangled if it is a C++ (Itanium ABI) name. */
static char *demangled(const char *name)
{
	if (!name || !*name)
		return NULL;
	if (name[0] == '_' && name[1] == 'Z') {
		int st = -1;
		char *d = __cxa_demangle(name, NULL, NULL, &st);
		if (d && !st)
			return d;
		free(d);
	}
	return strndup(name, SYM_MAX_NAME);
}

/* An ELF symbol name without its version ("__libc_start_main@@GLIBC_2.34"). */
static const char *unversioned(const char *name, char *buf, size_t bufsz)
{
	const char *at = name ? strchr(name, '@') : NULL;
	if (!at || at == name)
		return name;
	size_t n = (size_t)(at - name);
	if (n >= bufsz)
		return name;
	memcpy(buf, name, n);
	buf[n] = 0;
	return buf;
}

/* file as the line table has it, made absolute with the CU's DW_AT_comp_dir when it is
 * relative, with "." and "dir/.." segments folded. A heap string or NULL. */
static char *source_path(const char *file, Dwarf_Die *cu)
{
	if (!file || !*file)
		return NULL;
	const char *dir = NULL;
	Dwarf_Attribute a;
	if (file[0] != '/' && cu && dwarf_attr(cu, DW_AT_comp_dir, &a))
		dir = dwarf_formstring(&a);
	char *joined;
	if (dir && dir[0] == '/') {
		if (asprintf(&joined, "%s/%s", dir, file) < 0)
			return NULL;
	} else if (!(joined = strndup(file, PATH_MAX))) {
		return NULL;
	}
	if (joined[0] != '/')
		return joined;
	/* fold "." and "dir/.." segments into a fresh buffer */
	size_t jl = strlen(joined);
	char *res = malloc(jl + 2);
	if (!res) {
		free(joined);
		return NULL;
	}
	size_t o = 0;
	const char *in = joined;
	while (*in) {
		while (*in == '/')
			in++;
		const char *end = strchr(in, '/');
		size_t len = end ? (size_t)(end - in) : strlen(in);
		if (!len || (len == 1 && in[0] == '.')) {
			/* nothing */
		} else if (len == 2 && in[0] == '.' && in[1] == '.') {
			while (o > 0 && res[o - 1] != '/')
				o--;
			if (o > 0)
				o--;   /* and the '/' before the dropped segment */
		} else {
			res[o++] = '/';
			memcpy(res + o, in, len);
			o += len;
		}
		in += len;
	}
	if (!o)
		res[o++] = '/';
	res[o] = 0;
	free(joined);
	return res;
}

/* Name of a subprogram or inlined-subroutine DIE: its linkage name (demangles to the
 * qualified C++ name) or its plain name, through DW_AT_abstract_origin if needed. */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	const char *n = NULL;
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
		n = dwarf_formstring(&a);
	if (!n)
		n = dwarf_diename(die);
	return n;
}

/* DW_AT_call_file / DW_AT_call_line of an inlined-subroutine DIE. */
static void call_site(Dwarf_Die *inl, Dwarf_Die *cu, const char **file, int *line)
{
	Dwarf_Attribute a;
	Dwarf_Word v;
	*file = NULL;
	*line = 0;
	if (dwarf_attr(inl, DW_AT_call_line, &a) && !dwarf_formudata(&a, &v) && v <= INT32_MAX)
		*line = (int)v;
	if (dwarf_attr(inl, DW_AT_call_file, &a) && !dwarf_formudata(&a, &v)) {
		Dwarf_Files *files;
		size_t nfiles;
		if (!dwarf_getsrcfiles(cu, &files, &nfiles) && v < nfiles)
			*file = dwarf_filesrc(files, v, NULL, NULL);
	}
}

/* ------------------------------------------------------------------ interning */

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static intern_slot *intern_find(sym_session *s, uint64_t key)
{
	if (!s->slots)
		return NULL;
	size_t i = mix(key) & (s->slots - 1);
	while (s->tab[i].key) {
		if (s->tab[i].key == key)
			return &s->tab[i];
		i = (i + 1) & (s->slots - 1);
	}
	return NULL;
}

static int intern_put(sym_session *s, uint64_t key, int32_t frame, int32_t n_inline)
{
	if ((s->used + 1) * 2 > s->slots) {
		size_t ns = s->slots ? s->slots * 2 : 1024;
		intern_slot *t = calloc(ns, sizeof *t);
		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < s->slots; i++)
			if (s->tab[i].key) {
				size_t j = mix(s->tab[i].key) & (ns - 1);
				while (t[j].key)
					j = (j + 1) & (ns - 1);
				t[j] = s->tab[i];
			}
		free(s->tab);
		s->tab = t;
		s->slots = ns;
	}
	size_t j = mix(key) & (s->slots - 1);
	while (s->tab[j].key)
		j = (j + 1) & (s->slots - 1);
	s->tab[j] = (intern_slot){ .key = key, .frame = frame, .n_inline = n_inline };
	s->used++;
	return 0;
}

/* ------------------------------------------------------------------ lookup */

static long add_frame(hs_capture *c, const hs_frame *proto, const char *fn, uint64_t func_off,
		      const char *file, int line, int depth, Dwarf_Die *cu)
{
	hs_frame f = *proto;
	f.function = demangled(fn);
	f.func_offset = fn ? func_off : 0;
	f.file = source_path(file, cu);
	f.line = line > 0 ? line : 0;
	f.inline_depth = depth;
	if ((fn && *fn && !f.function) || (file && *file && !f.file)) {
		free(f.function);
		free(f.file);
		return -1;
	}
	long idx = hs_add_frame(c, &f);
	if (idx < 0) {
		free(f.function);
		free(f.file);
	}
	return idx;
}

long sym_frame_for_pc(sym_session *s, hs_capture *c, uint64_t pc, int is_return_addr,
		      int *n_inline)
{
	if (n_inline)
		*n_inline = 0;
	uint64_t key = pc << 1 | (is_return_addr ? 1 : 0);
	intern_slot *hit = key ? intern_find(s, key) : NULL;
	if (hit) {
		if (n_inline)
			*n_inline = hit->n_inline;
		return hit->frame;
	}

	hs_frame proto;
	memset(&proto, 0, sizeof proto);
	proto.pc = pc;
	proto.module_idx = mod_find(c, pc);
	proto.rel_pc = proto.module_idx >= 0 ? pc - c->modules[proto.module_idx].load_base : pc;

	uint64_t look = is_return_addr && pc ? pc - 1 : pc;
	Dwfl_Module *m = s->dwfl ? dwfl_addrmodule(s->dwfl, look) : NULL;
	const char *sym = NULL;
	char symbuf[512];
	uint64_t sym_off = 0;
	if (m) {
		GElf_Off off = 0;
		GElf_Sym es;
		sym = unversioned(dwfl_module_addrinfo(m, look, &off, &es, NULL, NULL, NULL),
				  symbuf, sizeof symbuf);
		sym_off = off + (pc - look);
	}

	/* the function-like scopes at the pc, innermost first, up to the real function.
	 * dwarf_getscopes follows an inlined instance into its abstract definition's
	 * scopes, so the concrete chain (inlined instances, then the subprogram they sit
	 * in) comes from dwarf_getscopes_die on the innermost function-like scope */
	Dwarf_Die *pcscopes = NULL, *chain = NULL, *scopes = NULL;
	int nscopes = 0;
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = m ? dwfl_module_addrdie(m, look, &bias) : NULL;
	if (cu && dwarf_haspc(cu, look - bias) <= 0)
		cu = NULL;   /* libdwfl may hand out a CU whose ranges end before the pc */
	int npc = cu ? dwarf_getscopes(cu, look - bias, &pcscopes) : 0;
	for (int i = 0; i < npc; i++) {
		int tag = dwarf_tag(&pcscopes[i]);
		if (tag == DW_TAG_subprogram) {
			scopes = &pcscopes[i];
			nscopes = 1;
			break;
		}
		if (tag == DW_TAG_inlined_subroutine) {
			Dwarf_Die inner = pcscopes[i];
			nscopes = dwarf_getscopes_die(&inner, &chain);
			if (nscopes > 0) {
				scopes = chain;
			} else {
				free(chain);
				chain = NULL;
				nscopes = 0;
			}
			break;
		}
	}
	int all[SYM_MAX_SCOPES];
	int nall = 0;
	for (int i = 0; i < nscopes && nall < SYM_MAX_SCOPES; i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag == DW_TAG_inlined_subroutine) {
			all[nall++] = i;
		} else if (tag == DW_TAG_subprogram) {
			all[nall++] = i;
			break;
		}
	}
	/* too deep: drop the innermost levels, keep the real function */
	int drop = nall > SYM_MAX_INLINE + 1 ? nall - (SYM_MAX_INLINE + 1) : 0;
	const int *fn = all + drop;
	int nf = nall - drop;

	/* the innermost level's line is the pc's own (or, if levels were dropped, where the
	 * last dropped one was inlined) */
	const char *file = NULL;
	int line = 0;
	if (drop) {
		call_site(&scopes[all[drop - 1]], cu, &file, &line);
	} else {
		Dwfl_Line *dl = cu ? dwfl_module_getsrc(m, look) : NULL;
		Dwarf_Addr laddr = 0;
		if (dl)
			file = dwfl_lineinfo(dl, &laddr, &line, NULL, NULL, NULL);
		if (line <= 0 || laddr > look) {
			file = NULL;
			line = 0;
		}
	}

	long idx = -1;
	if (nf <= 1) {
		const char *name = sym;
		uint64_t off = sym_off;
		if (!name && nf == 1) {
			name = die_name(&scopes[fn[0]]);
			Dwarf_Addr lo;
			off = !dwarf_lowpc(&scopes[fn[0]], &lo) && pc >= lo + bias ? pc - (lo + bias) : 0;
		}
		idx = add_frame(c, &proto, name, off, file, line, 0, cu);
	} else {
		/* levels 0..nf-1, innermost first: level k has inline_depth nf-1-k, and the
		 * real function (level nf-1) is appended last so it gets the returned index */
		for (int k = 0; k < nf && (k == 0 || idx >= 0); k++) {
			Dwarf_Die *d = &scopes[fn[k]];
			const char *name = die_name(d);
			uint64_t off = 0;
			Dwarf_Addr entry;
			if (k == nf - 1 && sym) {
				name = sym;
				off = sym_off;
			} else if ((!dwarf_entrypc(d, &entry) || !dwarf_lowpc(d, &entry)) &&
				   pc >= entry + bias) {
				off = pc - (entry + bias);
			}
			if (k > 0)   /* where level k-1 was inlined into this level */
				call_site(&scopes[fn[k - 1]], cu, &file, &line);
			idx = add_frame(c, &proto, name, off, file, line, nf - 1 - k, cu);
		}
	}
	free(chain);
	free(pcscopes);
	if (idx < 0)
		return -1;
	int ninl = nf > 1 ? nf - 1 : 0;
	if (key && intern_put(s, key, (int32_t)idx, ninl))
		return -1;
	if (n_inline)
		*n_inline = ninl;
	return idx;
}

long sym_callsite_for_stack(sym_session *s, hs_capture *c, const uint64_t *pcs, int n)
{
	return sym_callsite_for_pcs(s, c, pcs, NULL, n);
}

long sym_callsite_for_pcs(sym_session *s, hs_capture *c, const uint64_t *pcs,
			  const unsigned char *exact, int n)
{
	long parent = -1;
	int depth = 0;
	for (int i = n - 1; i >= 0; i--) {
		int ninl;
		int is_ret = exact ? !exact[i] : i != 0;
		long f = sym_frame_for_pc(s, c, pcs[i], is_ret, &ninl);
		if (f < 0)
			return -1;
		parent = hs_add_callsite(c, (int)parent, (int)f, depth++);
		for (int k = 1; k <= ninl && parent >= 0; k++)
			parent = hs_add_callsite(c, (int)parent, (int)(f - k), depth++);
		if (parent < 0)
			return -1;
	}
	return parent;
}
