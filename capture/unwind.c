/* unwind.c -- thread backtraces from the copy: libunwind's REMOTE interface over the
 * image, after the target runs again (no ptrace here).
 *
 * Why libunwind and how: libunwind's own remote back-ends (_UPT_*, _UCD_*) read the
 * target with ptrace or a core file, so we give it our own unw_accessors_t:
 *   - access_reg: the thread's registers at the freeze (initial frame only);
 *   - access_mem: the image (stacks, writable data), else the module files on disk for
 *     read-only segments (.eh_frame_hdr, .eh_frame, code bytes), else our own copy of
 *     the [vdso] (same kernel, same image); never a writable segment from a file, whose
 *     bytes are not what the target had;
 *   - find_proc_info: the module's .eh_frame_hdr binary-search table, located from its
 *     PT_GNU_EH_FRAME in the FILE, handed to libunwind as an UNW_INFO_FORMAT_REMOTE_TABLE
 *     through dwarf_search_unwind_table -- what _UPT_find_proc_info and Linux perf's
 *     unwind-libunwind-local.c do. libunwind 1.6.2 exports that function
 *     (_Ux86_64_dwarf_search_unwind_table; libunwind-ptrace links against it) but does
 *     not declare it in a public header, so it is declared here as perf does.
 *     Static executables are linked without --eh-frame-hdr (GCC's spec): for them we
 *     index .eh_frame ourselves (CIEs' 'R' encodings, FDEs' pc_begin) into the same
 *     table format and serve it at a synthetic address (SYN_BASE) through access_mem.
 * libunwind 1.6.2 itself follows the rbp chain where there is no CFI; a stack that ends
 * there is reported as UW_E_NOINFO, not as complete (rbp == 0 is only a guess), and
 * such steps must climb the stack (its sp is a guess too). When libunwind fails, the
 * walk goes on along the rbp chain while it stays inside the thread's stack and every
 * return address lands in executable code.
 *
 * Signal frames: a pc at an rt_sigreturn trampoline (__restore_rt) and the pc of the
 * frame a signal interrupted are exact, not return addresses; they are flagged so that
 * symbols.c does not look them up at pc - 1.
 *
 * Everything read is untrusted: the stack is the target's, the files may be anything.
 * Frames are capped (UW_MAX_FRAMES), the stack pointer must advance (except across a
 * signal frame), every pc must lie in an executable mapping, and the .eh_frame index is
 * bounded in bytes and entries.
 */
#define _GNU_SOURCE
#include "unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libunwind.h>

#include "modules.h"

/* Exported by libunwind-x86_64 (used by libunwind-ptrace), not in its headers. */
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
					      unw_dyn_info_t *di, unw_proc_info_t *pi,
					      int need_unwind_info, void *arg);

#define UW_MAX_SEGS     16
#define UW_PAGE         4096
#define UW_MAX_FDES     (16u << 20)
#define UW_MAX_EH_FRAME (256u << 20)   /* bytes of .eh_frame we index */
/* Synthetic search tables live at SYN_BASE + (object index << 32): a kernel-half
 * address no user mapping can have, so access_mem can tell them apart. */
#define SYN_BASE        0xffff900000000000ull

/* ------------------------------------------------------------------ code objects */

static int ignore_eh_frame_hdr;   /* tests: index .eh_frame ourselves everywhere */

void uw_set_ignore_eh_frame_hdr(int on)
{
	ignore_eh_frame_hdr = on;
}

/* One module file (or the vdso) as libunwind sees it: its read-only segments. */
typedef struct {
	int state;                 /* 0 not opened yet, 1 ready, -1 unusable */
	int fd;                    /* the file, or -1 for the vdso */
	const unsigned char *mem;  /* vdso: our own copy */
	size_t mem_len;
	uint64_t bias, lo, hi;     /* runtime = vaddr + bias; [lo, hi) in the target */
	struct { uint64_t vaddr, filesz, memsz, offset; } seg[UW_MAX_SEGS];  /* read-only PT_LOADs */
	int nseg;
	uint64_t hdr;              /* runtime address of .eh_frame_hdr, 0 if none */
	uint64_t table, fde_count; /* its search table */
	/* without .eh_frame_hdr (static links): a search table we build from .eh_frame,
	 * served to libunwind at a synthetic address (see SYN_BASE) */
	int32_t *synth;            /* pairs (pc_begin, fde) relative to synth_base */
	size_t synth_n;
	uint64_t synth_base;       /* runtime address of .eh_frame */
	/* one-page read cache */
	uint64_t cache_off;
	int cache_len;             /* -1: empty */
	unsigned char cache[UW_PAGE];
} uw_obj;

typedef struct {
	img_image *im;
	const hs_capture *c;
	const char *root;
	const hs_thread *t;        /* thread being unwound (access_reg) */
	uw_obj *objs;              /* one per module, then the vdso */
	size_t nobjs;
	uint64_t vdso_lo;
	int read_failed;           /* an access_mem failed since the last step */
	uint64_t noinfo_ip;        /* the last pc find_proc_info had nothing for */
	unw_addr_space_t as;
} uw_ctx;

static int obj_file_read(uw_obj *o, uint64_t off, unsigned char *dst, size_t n)
{
	if (o->mem) {
		if (off > o->mem_len || n > o->mem_len - off)
			return -1;
		memcpy(dst, o->mem + off, n);
		return 0;
	}
	while (n) {
		uint64_t page = off & ~(uint64_t)(UW_PAGE - 1);
		if (o->cache_len < 0 || o->cache_off != page) {
			ssize_t r = pread(o->fd, o->cache, UW_PAGE, (off_t)page);
			if (r <= 0) {
				o->cache_len = -1;
				return -1;
			}
			o->cache_off = page;
			o->cache_len = (int)r;
		}
		size_t in = (size_t)(off - page);
		if (in >= (size_t)o->cache_len)
			return -1;
		size_t k = (size_t)o->cache_len - in;
		if (k > n)
			k = n;
		memcpy(dst, o->cache + in, k);
		dst += k;
		off += k;
		n -= k;
	}
	return 0;
}

/* Read n bytes at runtime address addr from the object's read-only segments. */
static int obj_read(uw_obj *o, uint64_t addr, void *dst, size_t n)
{
	uint64_t va = addr - o->bias;
	for (int i = 0; i < o->nseg; i++) {
		uint64_t sv = o->seg[i].vaddr;
		if (va < sv || va - sv >= o->seg[i].memsz || n > o->seg[i].memsz - (va - sv))
			continue;
		uint64_t in = va - sv;
		size_t from_file = 0;
		if (in < o->seg[i].filesz)
			from_file = o->seg[i].filesz - in < n ? (size_t)(o->seg[i].filesz - in) : n;
		if (from_file && obj_file_read(o, o->seg[i].offset + in, dst, from_file))
			return -1;
		memset((unsigned char *)dst + from_file, 0, n - from_file);
		return 0;
	}
	return -1;
}

/* DWARF pointer encodings used by .eh_frame_hdr (enough for what linkers emit). */
static int read_encoded(uw_obj *o, uint64_t *addr, uint8_t enc, uint64_t datarel, uint64_t *out)
{
	uint64_t at = *addr, v;
	size_t sz;
	switch (enc & 0x0f) {
	case 0x00: sz = 8; break;   /* absptr */
	case 0x02: case 0x0a: sz = 2; break;
	case 0x03: case 0x0b: sz = 4; break;
	case 0x04: case 0x0c: sz = 8; break;
	default: return -1;
	}
	unsigned char b[8];
	if (obj_read(o, at, b, sz))
		return -1;
	switch (enc & 0x0f) {
	case 0x02: v = (uint16_t)(b[0] | b[1] << 8); break;
	case 0x0a: v = (uint64_t)(int64_t)(int16_t)(b[0] | b[1] << 8); break;
	case 0x03: { uint32_t u; memcpy(&u, b, 4); v = u; break; }
	case 0x0b: { int32_t s; memcpy(&s, b, 4); v = (uint64_t)(int64_t)s; break; }
	default: memcpy(&v, b, 8); break;
	}
	switch (enc & 0x70) {
	case 0x00: break;
	case 0x10: v += at; break;        /* pcrel */
	case 0x30: v += datarel; break;   /* datarel */
	default: return -1;
	}
	*addr = at + sz;
	*out = v;
	return 0;
}

/* Find and check .eh_frame_hdr: version 1, a sorted table of (datarel sdata4) pairs. */
static void obj_find_table(uw_obj *o, uint64_t hdr)
{
	unsigned char h[4];
	if (!hdr || obj_read(o, hdr, h, 4) || h[0] != 1 || h[1] == 0xff || h[2] == 0xff ||
	    h[3] != 0x3b)   /* DW_EH_PE_datarel | DW_EH_PE_sdata4: what libunwind expects */
		return;
	uint64_t p = hdr + 4, eh_frame, count;
	if (read_encoded(o, &p, h[1], hdr, &eh_frame) || read_encoded(o, &p, h[2], hdr, &count))
		return;
	if (!count || count > UW_MAX_FDES)
		return;
	unsigned char last[8];
	if (obj_read(o, p + (count - 1) * 8, last, 8))   /* the whole table is in the file */
		return;
	o->hdr = hdr;
	o->table = p;
	o->fde_count = count;
}

/* ---- .eh_frame without .eh_frame_hdr ---- */

typedef struct {
	const unsigned char *b;
	size_t n;
	uint64_t rt;    /* runtime address of b[0] */
} eh_buf;

static int eh_uleb(const eh_buf *e, size_t *p, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= e->n)
			return -1;
		unsigned char c = e->b[(*p)++];
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

static int eh_sleb(const eh_buf *e, size_t *p, int64_t *out)
{
	uint64_t v = 0;
	int shift = 0;
	unsigned char c;
	do {
		if (*p >= e->n || shift >= 64)
			return -1;
		c = e->b[(*p)++];
		v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	if (shift < 64 && (c & 0x40))
		v |= ~0ull << shift;
	*out = (int64_t)v;
	return 0;
}

/* A DWARF-encoded pointer at b[*p]; pcrel is relative to the field's runtime address. */
static int eh_ptr(const eh_buf *e, size_t *p, uint8_t enc, uint64_t *out)
{
	if (enc == 0xff)
		return -1;
	size_t at = *p;
	uint64_t v;
	size_t sz = 0;
	switch (enc & 0x0f) {
	case 0x00: case 0x04: case 0x0c: sz = 8; break;
	case 0x02: case 0x0a: sz = 2; break;
	case 0x03: case 0x0b: sz = 4; break;
	case 0x01: if (eh_uleb(e, p, &v)) return -1; break;
	case 0x09: { int64_t sv; if (eh_sleb(e, p, &sv)) return -1; v = (uint64_t)sv; break; }
	default: return -1;
	}
	if (sz) {
		if (at > e->n || sz > e->n - at)
			return -1;
		const unsigned char *q = e->b + at;
		switch (enc & 0x0f) {
		case 0x02: v = (uint16_t)(q[0] | q[1] << 8); break;
		case 0x0a: v = (uint64_t)(int64_t)(int16_t)(q[0] | q[1] << 8); break;
		case 0x03: { uint32_t u; memcpy(&u, q, 4); v = u; break; }
		case 0x0b: { int32_t i; memcpy(&i, q, 4); v = (uint64_t)(int64_t)i; break; }
		default: memcpy(&v, q, 8); break;
		}
		*p = at + sz;
	}
	switch (enc & 0x70) {
	case 0x00: break;
	case 0x10: v += e->rt + at; break;
	default: return -1;   /* textrel/datarel/funcrel do not occur in .eh_frame pc_begin */
	}
	*out = v;
	return 0;
}

/* The FDE pointer encoding ('R' augmentation) of the CIE at offset off, or -1. */
static int eh_cie_enc(const eh_buf *e, size_t off)
{
	size_t p = off;
	if (p + 8 > e->n)
		return -1;
	uint32_t len;
	memcpy(&len, e->b + p, 4);
	p += 4;
	if (len == 0xffffffff) {
		if (p + 12 > e->n)
			return -1;
		p += 8;
	}
	uint32_t id;
	memcpy(&id, e->b + p, 4);
	p += 4;
	if (id != 0 || p >= e->n)
		return -1;
	unsigned char version = e->b[p++];
	char aug[16];
	size_t k = 0;
	while (p < e->n && e->b[p] && k < sizeof aug - 1)
		aug[k++] = (char)e->b[p++];
	aug[k] = 0;
	if (p >= e->n || e->b[p])
		return -1;
	p++;
	if (strstr(aug, "eh"))
		p += 8;
	uint64_t u;
	int64_t sv;
	if (eh_uleb(e, &p, &u) || eh_sleb(e, &p, &sv))
		return -1;
	if (version == 1)
		p++;
	else if (eh_uleb(e, &p, &u))
		return -1;
	if (aug[0] != 'z')
		return 0;   /* DW_EH_PE_absptr */
	if (eh_uleb(e, &p, &u))
		return -1;
	for (const char *a = aug + 1; *a; a++) {
		if (p >= e->n)
			return -1;
		switch (*a) {
		case 'R':
			return e->b[p];
		case 'L':
			p++;
			break;
		case 'P': {
			uint8_t penc = e->b[p++];
			uint64_t dummy;
			if (eh_ptr(e, &p, penc & 0x7f, &dummy))
				return -1;
			break;
		}
		case 'S': case 'B':
			break;
		default:
			return -1;
		}
	}
	return 0;
}

static int synth_cmp(const void *a, const void *b)
{
	const int32_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Index .eh_frame (runtime address ehf, size sz) into o->synth. */
static void obj_build_table(uw_obj *o, uint64_t ehf, uint64_t sz)
{
	if (!sz || sz > UW_MAX_EH_FRAME)
		return;
	unsigned char *buf = malloc(sz);
	if (!buf)
		return;
	if (obj_read(o, ehf, buf, sz)) {
		free(buf);
		return;
	}
	eh_buf e = { buf, sz, ehf };
	size_t cap = 0, n = 0;
	int32_t *t = NULL;
	size_t last_cie = SIZE_MAX;
	int last_enc = -1;
	for (size_t off = 0; off + 8 <= sz && n < UW_MAX_FDES;) {
		uint32_t len32;
		memcpy(&len32, buf + off, 4);
		if (!len32)
			break;   /* terminator */
		uint64_t len = len32;
		size_t hdr = 4;
		if (len32 == 0xffffffff) {
			if (off + 12 > sz)
				break;
			memcpy(&len, buf + off + 4, 8);
			hdr = 12;
		}
		if (len < 4 || len > sz - off - hdr)
			break;
		size_t id_off = off + hdr, end = off + hdr + (size_t)len;
		uint32_t id;
		memcpy(&id, buf + id_off, 4);
		if (id && id <= id_off) {   /* an FDE; id is the distance back to its CIE */
			size_t cie = id_off - id;
			if (cie != last_cie) {
				last_cie = cie;
				last_enc = eh_cie_enc(&e, cie);
			}
			size_t p = id_off + 4;
			uint64_t begin;
			e.n = end;   /* the FDE's own bytes only */
			int ok = last_enc >= 0 && !eh_ptr(&e, &p, (uint8_t)(last_enc & 0x7f), &begin);
			e.n = sz;
			int64_t rb = (int64_t)(begin - ehf), rf = (int64_t)off;
			if (ok && begin >= o->lo && begin < o->hi && rb >= INT32_MIN && rb <= INT32_MAX &&
			    rf <= INT32_MAX) {
				if (n == cap) {
					size_t nc = cap ? cap * 2 : 1024;
					int32_t *nt = realloc(t, nc * 2 * sizeof *nt);
					if (!nt)
						break;
					t = nt;
					cap = nc;
				}
				t[2 * n] = (int32_t)rb;
				t[2 * n + 1] = (int32_t)rf;
				n++;
			}
		}
		off = end;
	}
	free(buf);
	if (!n) {
		free(t);
		return;
	}
	qsort(t, n, 2 * sizeof *t, synth_cmp);
	o->synth = t;
	o->synth_n = n;
	o->synth_base = ehf;
}

/* .eh_frame's runtime address and size from the section headers, 0 if none. */
static uint64_t find_eh_frame(Elf *elf, uint64_t bias, uint64_t *size)
{
	size_t shstrndx;
	if (elf_getshdrstrndx(elf, &shstrndx))
		return 0;
	Elf_Scn *scn = NULL;
	for (int i = 0; (scn = elf_nextscn(elf, scn)) && i < 65536; i++) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_ALLOC))
			continue;
		const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && !strcmp(name, ".eh_frame")) {
			*size = sh.sh_size;
			return sh.sh_addr + bias;
		}
	}
	return 0;
}

/* Load phdrs of an ELF (file fd, or memory) into o. 0 or -1. */
static int obj_load_elf(uw_obj *o, Elf *elf)
{
	size_t phnum;
	if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getphdrnum(elf, &phnum))
		return -1;
	uint64_t hdr_vaddr = 0;
	for (size_t i = 0; i < phnum && i < 256; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph))
			continue;
		if (ph.p_type == PT_GNU_EH_FRAME)
			hdr_vaddr = ph.p_vaddr;
		/* writable segments hold relocated pointers and live data: the file's bytes
		 * are not what the target has, so only the image may answer for them */
		if (ph.p_type == PT_LOAD && !(ph.p_flags & PF_W) && o->nseg < UW_MAX_SEGS &&
		    ph.p_filesz <= ph.p_memsz) {
			o->seg[o->nseg].vaddr = ph.p_vaddr;
			o->seg[o->nseg].filesz = ph.p_filesz;
			o->seg[o->nseg].memsz = ph.p_memsz;
			o->seg[o->nseg].offset = ph.p_offset;
			o->nseg++;
		}
	}
	if (hdr_vaddr && !ignore_eh_frame_hdr)
		obj_find_table(o, hdr_vaddr + o->bias);
	if (!o->hdr) {
		uint64_t sz = 0, ehf = find_eh_frame(elf, o->bias, &sz);
		if (ehf)
			obj_build_table(o, ehf, sz);
	}
	return 0;
}

static uw_obj *obj_get(uw_ctx *x, uint64_t addr)
{
	uw_obj *o = NULL;
	int mi = mod_find(x->c, addr);
	if (mi >= 0 && (size_t)mi < x->nobjs - 1)
		o = &x->objs[mi];
	else if (x->objs[x->nobjs - 1].mem_len && addr >= x->vdso_lo &&
		 addr - x->vdso_lo < x->objs[x->nobjs - 1].mem_len)
		o = &x->objs[x->nobjs - 1];
	if (!o || o->state < 0)
		return NULL;
	if (o->state == 1)
		return o;

	o->state = -1;
	o->cache_len = -1;
	if (mi >= 0 && o != &x->objs[x->nobjs - 1]) {
		const hs_module *m = &x->c->modules[mi];
		o->fd = mod_open(x->c, (size_t)mi, x->root);
		if (o->fd < 0)
			return NULL;
		o->bias = m->load_base;
		o->lo = m->start;
		o->hi = m->end;
		Elf *elf = elf_begin(o->fd, ELF_C_READ_MMAP, NULL);
		int rc = obj_load_elf(o, elf);
		if (elf)
			elf_end(elf);
		if (rc)
			return NULL;
	} else {
		Elf *elf = elf_memory((char *)(uintptr_t)o->mem, o->mem_len);
		int rc = -1;
		if (elf) {
			/* bias from the first PT_LOAD, page-aligned */
			size_t phnum;
			if (!elf_getphdrnum(elf, &phnum))
				for (size_t i = 0; i < phnum && i < 64; i++) {
					GElf_Phdr ph;
					if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
						o->bias = x->vdso_lo - (ph.p_vaddr & ~(uint64_t)(UW_PAGE - 1));
						rc = 0;
						break;
					}
				}
			o->lo = x->vdso_lo;
			o->hi = x->vdso_lo + o->mem_len;
			if (!rc)
				rc = obj_load_elf(o, elf);
			elf_end(elf);
		}
		if (rc)
			return NULL;
	}
	o->state = 1;
	return o;
}

/* Bytes of a synthetic search table (see SYN_BASE). */
static int read_synth(uw_ctx *x, uint64_t addr, void *dst, size_t n)
{
	uint64_t idx = (addr - SYN_BASE) >> 32, off = (addr - SYN_BASE) & 0xffffffffu;
	if (idx >= x->nobjs || x->objs[idx].state != 1 || !x->objs[idx].synth)
		return -1;
	uint64_t len = x->objs[idx].synth_n * 8;
	if (off > len || n > len - off)
		return -1;
	memcpy(dst, (const unsigned char *)x->objs[idx].synth + off, n);
	return 0;
}

/* Any bytes of the target: the image first, then read-only file data. */
static int read_target(uw_ctx *x, uint64_t addr, void *dst, size_t n)
{
	if (addr >= SYN_BASE)
		return read_synth(x, addr, dst, n);
	if (!img_read(x->im, addr, dst, n))
		return 0;
	uw_obj *o = obj_get(x, addr);
	if (o && !obj_read(o, addr, dst, n))
		return 0;
	/* straddling two sources: byte by byte */
	unsigned char *d = dst;
	for (size_t i = 0; i < n; i++) {
		if (!img_read(x->im, addr + i, d + i, 1))
			continue;
		o = obj_get(x, addr + i);
		if (!o || obj_read(o, addr + i, d + i, 1))
			return -1;
	}
	return 0;
}

static int in_code(const hs_capture *c, uint64_t pc);

/* ------------------------------------------------------------------ accessors */

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
			      int need_unwind_info, void *arg)
{
	uw_ctx *x = arg;
	uw_obj *o = obj_get(x, ip);
	int r = -UNW_ENOINFO;
	if (o && (o->hdr || o->synth) && ip >= o->lo && ip < o->hi) {
		unw_dyn_info_t di;
		memset(&di, 0, sizeof di);
		di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
		di.start_ip = o->lo;
		di.end_ip = o->hi;
		if (o->hdr) {
			di.u.rti.segbase = o->hdr;
			di.u.rti.table_data = o->table;
			di.u.rti.table_len = o->fde_count * 8 / sizeof(unw_word_t);
		} else {
			di.u.rti.segbase = o->synth_base;
			di.u.rti.table_data = SYN_BASE + ((uint64_t)(o - x->objs) << 32);
			di.u.rti.table_len = o->synth_n * 8 / sizeof(unw_word_t);
		}
		r = UNW_OBJ(dwarf_search_unwind_table)(as, ip, &di, pi, need_unwind_info, arg);
	}
	if (r < 0)
		x->noinfo_ip = ip;   /* libunwind may now guess an end of stack: not a real one */
	return r;
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
	/* DWARF unwind info from dwarf_search_unwind_table is owned (and freed) by
	 * libunwind itself; nothing of ours to release */
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *dil, void *arg)
{
	return -UNW_ENOINFO;
}

static int acc_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
			  void *arg)
{
	uw_ctx *x = arg;
	if (write)
		return -UNW_EINVAL;
	if (read_target(x, addr, val, sizeof *val)) {
		*val = 0;
		/* code bytes are only probed (signal trampolines); data is needed */
		if (!in_code(x->c, addr))
			x->read_failed = 1;
		return -UNW_EINVAL;
	}
	return 0;
}

/* libunwind x86-64 register numbers -> struct user_regs_struct slots (hs_reg_names) */
static const int reg_slot[] = {
	[UNW_X86_64_RAX] = 10, [UNW_X86_64_RDX] = 12, [UNW_X86_64_RCX] = 11,
	[UNW_X86_64_RBX] = 5,  [UNW_X86_64_RSI] = 13, [UNW_X86_64_RDI] = 14,
	[UNW_X86_64_RBP] = 4,  [UNW_X86_64_RSP] = 19, [UNW_X86_64_R8] = 9,
	[UNW_X86_64_R9] = 8,   [UNW_X86_64_R10] = 7,  [UNW_X86_64_R11] = 6,
	[UNW_X86_64_R12] = 3,  [UNW_X86_64_R13] = 2,  [UNW_X86_64_R14] = 1,
	[UNW_X86_64_R15] = 0,  [UNW_X86_64_RIP] = 16,
};

static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
			  void *arg)
{
	uw_ctx *x = arg;
	if (write)
		return -UNW_EREADONLYREG;
	if (reg < 0 || (size_t)reg >= sizeof reg_slot / sizeof reg_slot[0])
		return -UNW_EBADREG;
	*val = x->t->regs[reg_slot[reg]];
	return 0;
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val,
			    int write, void *arg)
{
	return -UNW_EBADREG;
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *cur, void *arg)
{
	return -UNW_EINVAL;
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
			     unw_word_t *off, void *arg)
{
	return -UNW_ENOINFO;   /* symbols.c names frames */
}

static unw_accessors_t accessors = {
	.find_proc_info = acc_find_proc_info,
	.put_unwind_info = acc_put_unwind_info,
	.get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
	.access_mem = acc_access_mem,
	.access_reg = acc_access_reg,
	.access_fpreg = acc_access_fpreg,
	.resume = acc_resume,
	.get_proc_name = acc_get_proc_name,
};

/* ------------------------------------------------------------------ context */

static int ctx_init(uw_ctx *x, img_image *im, const hs_capture *c, const char *root)
{
	memset(x, 0, sizeof *x);
	elf_version(EV_CURRENT);
	x->im = im;
	x->c = c;
	x->root = root ? root : "";
	x->nobjs = c->n_modules + 1;
	x->objs = calloc(x->nobjs, sizeof *x->objs);
	if (!x->objs)
		return -ENOMEM;
	for (size_t i = 0; i < x->nobjs; i++)
		x->objs[i].fd = -1;
	uint64_t vstart;
	const unsigned char *vimg;
	size_t vlen;
	if (!mod_vdso(c, &vstart, &vimg, &vlen)) {
		x->vdso_lo = vstart;
		x->objs[x->nobjs - 1].mem = vimg;
		x->objs[x->nobjs - 1].mem_len = vlen;
	}
	x->as = unw_create_addr_space(&accessors, 0);
	if (!x->as) {
		free(x->objs);
		return -ENOMEM;
	}
	/* unwind rules depend on the pc only, never on the thread: share them */
	unw_set_caching_policy(x->as, UNW_CACHE_GLOBAL);
	return 0;
}

static void ctx_release(uw_ctx *x)
{
	if (x->as)
		unw_destroy_addr_space(x->as);
	for (size_t i = 0; x->objs && i < x->nobjs; i++) {
		if (x->objs[i].fd >= 0)
			close(x->objs[i].fd);
		free(x->objs[i].synth);
	}
	free(x->objs);
	memset(x, 0, sizeof *x);
}

/* ------------------------------------------------------------------ the walk */

/* Is pc inside an executable mapping of the target? */
static int in_code(const hs_capture *c, uint64_t pc)
{
	size_t lo = 0, hi = c->n_maps;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->maps[mid].end <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n_maps && c->maps[lo].start <= pc && c->maps[lo].perms[2] == 'x';
}

static void stack_bounds(uw_ctx *x, const hs_thread *t, uint64_t *lo, uint64_t *hi)
{
	*lo = t->stack_lo;
	*hi = t->stack_hi;
	if (!*hi) {
		const img_region *r = img_find(x->im, t->sp);
		*lo = r ? r->lo : t->sp;
		*hi = r ? r->hi : t->sp;
	}
}

/* Did find_proc_info come up empty for the frame at ip (looked up at ip, or at ip - 1
 * for a return address)? */
static int no_info_at(const uw_ctx *x, uint64_t ip)
{
	return x->noinfo_ip && (x->noinfo_ip == ip || x->noinfo_ip + 1 == ip);
}

static int map_unw_error(uw_ctx *x, int r, uint64_t ip)
{
	if (no_info_at(x, ip))
		return UW_E_NOINFO;
	if (x->read_failed)
		return UW_E_NOMEM;
	switch (-r) {
	case UNW_ENOINFO: return UW_E_NOINFO;
	case UNW_EINVALIDIP: case UNW_EBADFRAME: return UW_E_BADPC;
	default: return UW_E_LIBUNWIND;
	}
}

/* Follow the rbp chain from (bp, sp) while it stays on the stack and returns into code.
 * Returns 1 if it took at least one step and ended at rbp == 0 (a complete chain). */
static int fp_walk(uw_ctx *x, const hs_thread *t, uint64_t bp, uint64_t sp, uint64_t *pcs,
		   int *n, int max)
{
	uint64_t lo, hi;
	stack_bounds(x, t, &lo, &hi);
	if (sp > lo)
		lo = sp;
	int n0 = *n;
	while (*n < max) {
		if (!bp)
			return *n > n0;
		if (bp < lo || bp > hi - 16 || (bp & 7))
			return 0;
		uint64_t fr[2];
		if (img_read(x->im, bp, fr, sizeof fr) || !in_code(x->c, fr[1]))
			return 0;
		pcs[(*n)++] = fr[1];
		if (fr[0] && fr[0] <= bp)
			return 0;
		lo = bp + 16;
		bp = fr[0];
	}
	return 0;
}

/* Is ip the first instruction of a signal return trampoline (rt_sigreturn)? glibc's
 * __restore_rt is "mov $15,%rax; syscall", musl's "mov $15,%eax; syscall".
 * (libunwind's unw_is_signal_frame only knows after the next step.) */
static int is_sigtramp(uw_ctx *x, uint64_t ip)
{
	static const unsigned char glibc[9] = { 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	static const unsigned char musl[7] = { 0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	unsigned char b[9];
	if (read_target(x, ip, b, sizeof b)) {
		if (read_target(x, ip, b, sizeof musl))
			return 0;
		return !memcmp(b, musl, sizeof musl);
	}
	return !memcmp(b, glibc, sizeof glibc) || !memcmp(b, musl, sizeof musl);
}

/* exact[i] (may be NULL) is set to 1 when pcs[i] is not a return address: the pc of
 * the innermost frame, a signal trampoline (the kernel's "return address" is its first
 * instruction), and the frame a signal interrupted. */
static int backtrace_one(uw_ctx *x, const hs_thread *t, uint64_t *pcs, unsigned char *exact,
			 int max, int *stop)
{
	unsigned char exact_dummy[UW_MAX_FRAMES];
	if (!exact) {
		exact = exact_dummy;
		if (max > UW_MAX_FRAMES)
			max = UW_MAX_FRAMES;
	}
	*stop = 0;
	if (!t->regs_valid) {
		*stop = UW_E_NOREGS;
		return -EINVAL;
	}
	if (max <= 0)
		return 0;
	x->t = t;
	int n = 0;
	memset(exact, 0, (size_t)max);
	exact[n] = 1;
	pcs[n++] = t->pc;
	if (!in_code(x->c, t->pc)) {
		/* not executing code we know: no CFI to trust; the rbp chain may still say
		 * who called, but the backtrace is not complete */
		*stop = UW_E_BADPC;
		fp_walk(x, t, t->regs[4], t->sp, pcs, &n, max);
		return n;
	}

	unw_cursor_t cur;
	x->read_failed = 0;
	int r = unw_init_remote(&cur, x->as, x);
	if (r < 0) {
		*stop = map_unw_error(x, r, t->pc);
		if (fp_walk(x, t, t->regs[4], t->sp, pcs, &n, max))
			*stop = 0;
		return n;
	}
	uint64_t prev_sp = t->sp, prev_ip = t->pc;
	int sig = is_sigtramp(x, t->pc);
	for (;;) {
		unw_word_t cfa_bp = 0, cur_sp = 0, cur_ip = 0;
		unw_get_reg(&cur, UNW_X86_64_RBP, &cfa_bp);
		unw_get_reg(&cur, UNW_REG_SP, &cur_sp);
		unw_get_reg(&cur, UNW_REG_IP, &cur_ip);
		if (n >= max) {
			*stop = UW_E_DEPTH;
			break;
		}
		x->read_failed = 0;
		x->noinfo_ip = 0;
		r = unw_step(&cur);
		if (r == 0 && no_info_at(x, cur_ip)) {
			/* no CFI here and libunwind gave up (rbp == 0 looks like the end to
			 * it): that is not the outermost frame, only where we lost track */
			*stop = UW_E_NOINFO;
			break;
		}
		if (r == 0)
			break;   /* the outermost frame: CFI marks the return address undefined */
		if (r < 0) {
			*stop = map_unw_error(x, r, cur_ip);
			if (fp_walk(x, t, cfa_bp, cur_sp, pcs, &n, max))
				*stop = 0;
			break;
		}
		unw_word_t ip = 0, sp = 0;
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || unw_get_reg(&cur, UNW_REG_SP, &sp) < 0) {
			*stop = UW_E_LIBUNWIND;
			break;
		}
		if (!ip)
			break;   /* a zero return address ends the chain */
		if (!sig && (sp < prev_sp || (sp == prev_sp && ip == prev_ip))) {
			*stop = UW_E_LOOP;
			break;
		}
		if (no_info_at(x, cur_ip)) {
			/* libunwind followed the rbp chain (no CFI): its sp is a guess, so the
			 * chain itself must climb the stack */
			unw_word_t bp = 0;
			unw_get_reg(&cur, UNW_X86_64_RBP, &bp);
			if (bp && bp <= cfa_bp) {
				*stop = UW_E_LOOP;
				break;
			}
		}
		if (!in_code(x->c, ip)) {
			*stop = UW_E_BADPC;
			break;
		}
		int next_sig = is_sigtramp(x, ip);
		exact[n] = sig || next_sig;
		pcs[n++] = ip;
		sig = next_sig;
		prev_sp = sp;
		prev_ip = ip;
	}
	return n;
}

const char *uw_strerror(int stop)
{
	switch (stop) {
	case 0: return "complete";
	case UW_E_NOREGS: return "no registers for the thread";
	case UW_E_NOINFO: return "no unwind information for a frame";
	case UW_E_BADPC: return "unwound to an address outside executable code";
	case UW_E_NOMEM: return "needed memory that was not copied";
	case UW_E_LOOP: return "the stack pointer did not advance";
	case UW_E_DEPTH: return "too many frames";
	case UW_E_LIBUNWIND: return "libunwind failed";
	case UW_E_NOSYM: return "symbolization failed";
	default: return "unknown unwind error";
	}
}

int uw_backtrace(img_image *im, const hs_capture *c, const char *root, const hs_thread *t,
		 uint64_t *pcs, int max, int *stop)
{
	int dummy;
	if (!stop)
		stop = &dummy;
	*stop = 0;
	if (!t->regs_valid) {
		*stop = UW_E_NOREGS;
		return -EINVAL;
	}
	uw_ctx x;
	int rc = ctx_init(&x, im, c, root);
	if (rc)
		return rc;
	int n = backtrace_one(&x, t, pcs, NULL, max, stop);
	ctx_release(&x);
	return n;
}

int uw_unwind_threads(img_image *im, hs_capture *c, sym_session *sy)
{
	uw_ctx x;
	int rc = ctx_init(&x, im, c, sym_root(sy));
	if (rc)
		return rc;
	uint64_t pcs[UW_MAX_FRAMES];
	unsigned char exact[UW_MAX_FRAMES];
	for (size_t i = 0; i < c->n_threads; i++) {
		hs_thread *t = &c->threads[i];
		int stop = 0;
		t->callsite = -1;
		int n = backtrace_one(&x, t, pcs, exact, UW_MAX_FRAMES, &stop);
		t->unwind_error = stop;
		if (n <= 0)
			continue;
		long cs = sym_callsite_for_pcs(sy, c, pcs, exact, n);
		if (cs < 0) {
			t->unwind_error = UW_E_NOSYM;
			rc = -ENOMEM;
			break;
		}
		t->callsite = (int)cs;
	}
	ctx_release(&x);
	return rc;
}
