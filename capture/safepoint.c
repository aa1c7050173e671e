/* safepoint.c -- owns the safe points of a frozen target: which threads are inside
 * glibc's allocator, and letting each of them (alone) run until it is out.
 *
 * The allocator's code: exact from symbols (the locals grouped under malloc.c's
 * STT_FILE plus the malloc family, from the file's own .symtab or libc's debug file
 * found by build-id), else estimated from .dynsym as in shared/glibc-heap.md section 4
 * (from the end of the last foreign export below the malloc exports to the next foreign
 * export above them).
 *
 * Which thread is inside: its libc frames are unwound with libdw's CFI (libc's
 * .eh_frame through dwarf_cfi_addrframe / dwarf_frame_cfa / dwarf_frame_register; the
 * small DWARF expressions libdw hands back are evaluated here) over the live stack, read
 * once per stop with process_vm_readv. A thread whose innermost frames are outside libc
 * (a signal handler) also has its stack scanned for signal frames (the word holding
 * libc's __restore_rt); the interrupted context stored there is unwound the same way.
 *
 * Running out: a hardware breakpoint (DR0 through PTRACE_POKEUSER, no code patched) on
 * the return address of the outermost allocator frame; only that thread runs, with its
 * asynchronous signals blocked (PTRACE_SETSIGMASK, re-applied after each signal stop);
 * a hit counts only when RSP >= that frame's CFA (a deeper call through the same return
 * address does not). A thread that goes to sleep on a futex (a lock) or in a syscall
 * malloc never makes is parked; after the budget it is in flux. Single-stepping is the
 * fallback when no return address is known or the breakpoint cannot be set.
 *
 * Everything read from the target is untrusted: unwinding is capped in frames, DWARF
 * expressions in length and stack depth, and every memory read is checked.
 */
#define _GNU_SOURCE
#include "safepoint.h"

#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload/hp_format.h"

#define SP_MAX_FRAMES 64          /* libc frames unwound per context */
#define SP_STACK_FIRST 4096       /* bytes of stack read first */
#define SP_STACK_SCAN 32768       /* bytes scanned for signal frames */
#define SP_MAX_SIGFRAMES 8
#define SP_MAX_ROUNDS 16          /* breakpoint runs per thread */
#define SP_MAX_STEPS 200000
#define SP_SLICE_NS 300000ull     /* how long a run goes before we look at it */
#define SP_DEFAULT_BUDGET 50000000ull

typedef struct {
	uint64_t lo, hi;
} sp_range;

struct sp_libc {
	int fd;
	Elf *elf;
	Dwarf_CFI *cfi;
	uint64_t bias;                /* runtime address = ELF vaddr + bias */
	uint64_t text_lo, text_hi;    /* runtime span of the executable segments */
	sp_range *r;                  /* allocator code, runtime addresses, sorted, merged */
	size_t nr;
	int exact;
	uint64_t restorer;            /* runtime address of __restore_rt, 0 if unknown */
	const unsigned char *raw;     /* the file's bytes */
	size_t rawsz;
	GElf_Phdr xseg[4];            /* executable PT_LOADs, for reading code bytes */
	int nxseg;
	uint64_t trk_state;           /* heapsnap_tracker_state in the target, 0 if none */
	uint64_t trk_lo, trk_hi;      /* the tracking library's code in the target */
};

/* ------------------------------------------------------------------------------------ */
/* symbols                                                                              */

/* The malloc family, after stripping "__GI_" and then "__libc_" or "__". */
static const char *const family[] = {
	"malloc", "free", "cfree", "calloc", "realloc", "memalign", "aligned_alloc", "valloc",
	"pvalloc", "posix_memalign", "malloc_trim", "malloc_usable_size", "mallinfo", "mallinfo2",
	"malloc_stats", "mallopt", "malloc_info", "default_morecore", "glibc_morecore",
	"malloc_fork_lock_parent", "malloc_fork_unlock_parent", "malloc_fork_unlock_child",
	"malloc_arena_thread_freeres", NULL,
};

static int is_family(const char *name)
{
	if (!name)
		return 0;
	if (!strncmp(name, "__GI_", 5))
		name += 5;
	if (!strncmp(name, "__libc_", 7))
		name += 7;
	else if (!strncmp(name, "__", 2))
		name += 2;
	size_t len = strcspn(name, "@");
	for (int i = 0; family[i]; i++)
		if (strlen(family[i]) == len && !strncmp(family[i], name, len))
			return 1;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const sp_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int add_range(sp_libc *l, size_t *cap, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return 0;
	if (l->nr == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		sp_range *n = realloc(l->r, nc * sizeof *n);
		if (!n)
			return -ENOMEM;
		l->r = n;
		*cap = nc;
	}
	l->r[l->nr++] = (sp_range){ lo, hi };
	return 0;
}

static void merge_ranges(sp_libc *l)
{
	if (!l->nr)
		return;
	qsort(l->r, l->nr, sizeof *l->r, range_cmp);
	size_t k = 0;
	for (size_t i = 1; i < l->nr; i++) {
		/* functions are padded to 16 bytes: close small gaps */
		if (l->r[i].lo <= l->r[k].hi + 16) {
			if (l->r[i].hi > l->r[k].hi)
				l->r[k].hi = l->r[i].hi;
		} else {
			l->r[++k] = l->r[i];
		}
	}
	l->nr = k + 1;
}

/* Find a section of the given type; returns its data and header. */
static Elf_Data *find_symtab(Elf *elf, Elf64_Word type, GElf_Shdr *shdr_out)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		*shdr_out = sh;
		return d;
	}
	return NULL;
}

/* Exact allocator ranges from a .symtab. Returns 1 if found, 0 if not, <0 on OOM.
 * Also looks up __restore_rt and whether _int_malloc (glibc) is there. */
static int ranges_from_symtab(sp_libc *l, Elf *elf, int *has_int_malloc, uint64_t *restorer)
{
	GElf_Shdr sh;
	Elf_Data *d = find_symtab(elf, SHT_SYMTAB, &sh);
	if (!d)
		return 0;
	size_t n = sh.sh_size / sh.sh_entsize, cap = 0, before = l->nr;
	int in_malloc_c = 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		if (!gelf_getsym(d, (int)i, &sym))
			break;
		const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
		int type = GELF_ST_TYPE(sym.st_info), bind = GELF_ST_BIND(sym.st_info);
		if (type == STT_FILE) {
			in_malloc_c = name && !strcmp(name, "malloc.c");
			continue;
		}
		if (type != STT_FUNC || !sym.st_value)
			continue;
		if (name && !strcmp(name, "_int_malloc"))
			*has_int_malloc = 1;
		if (name && !strcmp(name, "__restore_rt") && restorer)
			*restorer = sym.st_value;
		/* locals follow their STT_FILE; globals come after all locals */
		int mine = (bind == STB_LOCAL && in_malloc_c) || is_family(name);
		if (bind != STB_LOCAL)
			in_malloc_c = 0;
		if (mine && add_range(l, &cap, sym.st_value + l->bias,
				      sym.st_value + (sym.st_size ? sym.st_size : 1) + l->bias))
			return -ENOMEM;
	}
	return l->nr > before;
}

/* Estimate from .dynsym (glibc-heap.md section 4). Returns 1 if found. Sets *is_glibc
 * if the glibc-only export gnu_get_libc_version is there. */
static int ranges_from_dynsym(sp_libc *l, int *is_glibc, int estimate)
{
	GElf_Shdr sh;
	Elf_Data *d = find_symtab(l->elf, SHT_DYNSYM, &sh);
	if (!d)
		return 0;
	size_t n = sh.sh_size / sh.sh_entsize;
	uint64_t mlo = UINT64_MAX, mhi = 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		if (!gelf_getsym(d, (int)i, &sym))
			break;
		const char *name = elf_strptr(l->elf, sh.sh_link, sym.st_name);
		if (name && !strcmp(name, "gnu_get_libc_version"))
			*is_glibc = 1;
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value || !is_family(name))
			continue;
		if (sym.st_value < mlo)
			mlo = sym.st_value;
		if (sym.st_value > mhi)
			mhi = sym.st_value;
	}
	if (!estimate || mlo == UINT64_MAX)
		return 0;
	uint64_t lo = 0, hi = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		if (!gelf_getsym(d, (int)i, &sym))
			break;
		const char *name = elf_strptr(l->elf, sh.sh_link, sym.st_name);
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value || is_family(name))
			continue;
		uint64_t v = sym.st_value, e = v + sym.st_size;
		if (v < mlo && e > lo)
			lo = e;
		if (v > mhi && v < hi)
			hi = v;
	}
	if (hi == UINT64_MAX || lo == 0 || hi <= lo)
		return 0;
	size_t cap = 0;
	if (add_range(l, &cap, lo + l->bias, hi + l->bias))
		return -ENOMEM;
	return 1;
}

/* libc's debug file by build-id, if installed and matching. */
static Elf *open_debug(Elf *elf, int *fd_out)
{
	const void *id;
	ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
	if (n < 2 || n > 64)
		return NULL;
	const unsigned char *b = id;
	char path[256];
	static const char hex[] = "0123456789abcdef";
	size_t k = (size_t)snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%c%c/", hex[b[0] >> 4],
				    hex[b[0] & 15]);
	for (ssize_t i = 1; i < n && k + 3 < sizeof path; i++) {
		path[k++] = hex[b[i] >> 4];
		path[k++] = hex[b[i] & 15];
	}
	path[k] = 0;
	if (k + 7 >= sizeof path)
		return NULL;
	strcat(path, ".debug");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	Elf *d = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	const void *id2;
	ssize_t n2 = d ? dwelf_elf_gnu_build_id(d, &id2) : -1;
	if (!d || n2 != n || memcmp(id, id2, (size_t)n)) {
		if (d)
			elf_end(d);
		close(fd);
		return NULL;
	}
	*fd_out = fd;
	return d;
}

/* Code bytes at runtime address a (n bytes), from the file. */
static const unsigned char *code_at(const sp_libc *l, uint64_t a, size_t n)
{
	uint64_t va = a - l->bias;
	for (int i = 0; i < l->nxseg; i++) {
		const GElf_Phdr *p = &l->xseg[i];
		if (va >= p->p_vaddr && va + n <= p->p_vaddr + p->p_filesz) {
			uint64_t off = p->p_offset + (va - p->p_vaddr);
			if (off + n <= l->rawsz)
				return l->raw + off;
		}
	}
	return NULL;
}

/* __restore_rt by its code: mov $15,%rax; syscall (rt_sigreturn). */
static uint64_t find_restorer(const sp_libc *l)
{
	static const unsigned char pat[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };
	for (int i = 0; i < l->nxseg; i++) {
		const GElf_Phdr *p = &l->xseg[i];
		if (p->p_offset + p->p_filesz > l->rawsz)
			continue;
		const unsigned char *c = l->raw + p->p_offset;
		for (uint64_t k = 0; k + sizeof pat <= p->p_filesz; k++)
			if (c[k] == 0x48 && !memcmp(c + k, pat, sizeof pat))
				return p->p_vaddr + k;
	}
	return 0;
}

sp_libc *sp_libc_open(const char *path, uint64_t load_base, int no_debug)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return NULL;
	sp_libc *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->fd = -1;
	l->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0)
		goto fail;
	l->elf = elf_begin(l->fd, ELF_C_READ_MMAP, NULL);
	if (!l->elf || elf_kind(l->elf) != ELF_K_ELF || gelf_getclass(l->elf) != ELFCLASS64)
		goto fail;
	GElf_Ehdr eh;
	if (!gelf_getehdr(l->elf, &eh) || eh.e_machine != EM_X86_64)
		goto fail;
	l->raw = (const unsigned char *)elf_rawfile(l->elf, &l->rawsz);
	if (!l->raw)
		goto fail;

	size_t nph;
	if (elf_getphdrnum(l->elf, &nph))
		goto fail;
	uint64_t min_off = UINT64_MAX, first_va = 0, xlo = UINT64_MAX, xhi = 0;
	for (size_t i = 0; i < nph && i < 256; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(l->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset < min_off) {
			min_off = ph.p_offset;
			first_va = ph.p_vaddr - ph.p_offset;
		}
		if (ph.p_flags & PF_X) {
			if (l->nxseg < 4)
				l->xseg[l->nxseg++] = ph;
			if (ph.p_vaddr < xlo)
				xlo = ph.p_vaddr;
			if (ph.p_vaddr + ph.p_memsz > xhi)
				xhi = ph.p_vaddr + ph.p_memsz;
		}
	}
	if (min_off == UINT64_MAX || !l->nxseg)
		goto fail;
	l->bias = load_base - (first_va & ~0xfffull);
	l->text_lo = xlo + l->bias;
	l->text_hi = xhi + l->bias;

	int is_glibc = 0, has_int_malloc = 0;
	uint64_t restorer = 0;
	/* the file's own .symtab (a static executable, an unstripped libc) */
	int r = ranges_from_symtab(l, l->elf, &has_int_malloc, &restorer);
	if (r < 0)
		goto fail;
	int found = r > 0 && has_int_malloc;
	if (!found)
		l->nr = 0;
	ranges_from_dynsym(l, &is_glibc, 0);
	if (!found && !no_debug && is_glibc) {
		int dfd = -1;
		Elf *dbg = open_debug(l->elf, &dfd);
		if (dbg) {
			r = ranges_from_symtab(l, dbg, &has_int_malloc, &restorer);
			elf_end(dbg);
			close(dfd);
			if (r < 0)
				goto fail;
			found = r > 0 && has_int_malloc;
			if (!found)
				l->nr = 0;
		}
	}
	if (found) {
		l->exact = 1;
	} else if (is_glibc) {
		if (ranges_from_dynsym(l, &is_glibc, 1) <= 0)
			goto fail;
	} else {
		goto fail;   /* not glibc: no allocator we know */
	}
	merge_ranges(l);

	l->cfi = dwarf_getcfi_elf(l->elf);
	l->restorer = restorer ? restorer : find_restorer(l);
	if (l->restorer)
		l->restorer += l->bias;
	/* warm libdw's tables now rather than in the frozen window */
	for (size_t i = 0; l->cfi && i < l->nr && i < 64; i++) {
		Dwarf_Frame *fr = NULL;
		if (dwarf_cfi_addrframe(l->cfi, l->r[i].lo - l->bias, &fr) == 0)
			free(fr);
	}
	const char *hook = getenv("HEAPSNAP_TEST_NO_ALLOC_RANGES");
	if (hook && *hook == '1')
		l->nr = 0;   /* test hook: only the tracker's flags and callers tell */
	return l;
fail:
	sp_libc_close(l);
	return NULL;
}

void sp_libc_close(sp_libc *l)
{
	if (!l)
		return;
	if (l->cfi)
		dwarf_cfi_end(l->cfi);
	if (l->elf)
		elf_end(l->elf);
	if (l->fd >= 0)
		close(l->fd);
	free(l->r);
	free(l);
}

void sp_libc_set_tracker(sp_libc *l, uint64_t state_addr, uint64_t text_lo, uint64_t text_hi)
{
	if (l) {
		l->trk_state = state_addr;
		l->trk_lo = text_lo;
		l->trk_hi = text_hi;
	}
}

int sp_libc_exact(const sp_libc *l)
{
	return l ? l->exact : 0;
}

int sp_in_allocator(const sp_libc *l, uint64_t pc)
{
	if (!l || !l->nr)
		return 0;
	size_t lo = 0, hi = l->nr;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (l->r[m].hi <= pc)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < l->nr && pc >= l->r[lo].lo;
}

static int in_libc_text(const sp_libc *l, uint64_t pc)
{
	return pc >= l->text_lo && pc < l->text_hi;
}

/* Is a a return address into the allocator: preceded by a call instruction? */
static int is_call_ret(const sp_libc *l, uint64_t a)
{
	if (!sp_in_allocator(l, a))
		return 0;
	const unsigned char *c = code_at(l, a - 7, 7);
	if (!c)
		return 0;
	c += 7;
	if (c[-5] == 0xe8)
		return 1;                                           /* call rel32 */
	if (c[-2] == 0xff && (c[-1] & 0xf8) == 0xd0)
		return 1;                                           /* call *%reg */
	if (c[-6] == 0xff && c[-5] == 0x15)
		return 1;                                           /* call *disp32(%rip) */
	if (c[-3] == 0xff && (c[-2] & 0x38) == 0x10 && (c[-2] & 0xc0) == 0x40)
		return 1;                                           /* call *d8(%reg) */
	if (c[-6] == 0xff && (c[-5] & 0x38) == 0x10 && (c[-5] & 0xc0) == 0x80)
		return 1;                                           /* call *d32(%reg) */
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* the live stack of one stopped thread                                                 */

typedef struct {
	pid_t pid;
	uint64_t lo;              /* address of buf[0] */
	size_t n;                 /* valid bytes */
	int eof;                  /* a read hit the end of the mapping */
	unsigned char *buf;       /* SP_STACK_SCAN bytes */
} sp_stack;

static void stack_reset(sp_stack *sb)
{
	sb->lo = 0;
	sb->n = 0;
	sb->eof = 0;
}

/* Make [sp, sp + len) available in the buffer (less at the end of the mapping). */
static void stack_load(sp_stack *sb, uint64_t sp, size_t len)
{
	if (len > SP_STACK_SCAN)
		len = SP_STACK_SCAN;
	if (sb->lo != sp) {
		sb->lo = sp;
		sb->n = 0;
		sb->eof = 0;
	}
	while (!sb->eof && sb->n < len) {
		struct iovec li = { sb->buf + sb->n, len - sb->n };
		struct iovec ri = { (void *)(uintptr_t)(sp + sb->n), len - sb->n };
		ssize_t r = process_vm_readv(sb->pid, &li, 1, &ri, 1, 0);
		if (r <= 0)
			sb->eof = 1;   /* partial reads stop at the first unmapped page */
		else
			sb->n += (size_t)r;
	}
}

static int mem_u64(sp_stack *sb, uint64_t addr, uint64_t *out)
{
	if (addr >= sb->lo && addr - sb->lo <= sb->n && sb->n - (addr - sb->lo) >= 8) {
		memcpy(out, sb->buf + (addr - sb->lo), 8);
		return 0;
	}
	struct iovec li = { out, 8 }, ri = { (void *)(uintptr_t)addr, 8 };
	return process_vm_readv(sb->pid, &li, 1, &ri, 1, 0) == 8 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------ */
/* unwinding libc frames with libdw's CFI                                               */

typedef struct {
	uint64_t r[17];           /* DWARF numbering: rax rdx rcx rbx rsi rdi rbp rsp r8-r15 ra */
	uint32_t valid;
} sp_regs;

static void regs_from_user(sp_regs *o, const struct user_regs_struct *u)
{
	o->r[0] = u->rax; o->r[1] = u->rdx; o->r[2] = u->rcx; o->r[3] = u->rbx;
	o->r[4] = u->rsi; o->r[5] = u->rdi; o->r[6] = u->rbp; o->r[7] = u->rsp;
	o->r[8] = u->r8; o->r[9] = u->r9; o->r[10] = u->r10; o->r[11] = u->r11;
	o->r[12] = u->r12; o->r[13] = u->r13; o->r[14] = u->r14; o->r[15] = u->r15;
	o->r[16] = u->rip;
	o->valid = 0x1ffff;
}

/* Evaluate the DWARF expression libdw gives for a CFA or a register rule. *is_value is
 * set when the result is a value (DW_OP_stack_value or a register), else an address. */
static int eval_ops(const Dwarf_Op *ops, size_t nops, const sp_regs *rg, uint64_t cfa, int have_cfa,
		    sp_stack *sb, uint64_t *out, int *is_value)
{
	uint64_t st[16];
	int sp = 0;
	*is_value = 0;
	if (nops > 64)
		return -1;
	for (size_t i = 0; i < nops; i++) {
		const Dwarf_Op *o = &ops[i];
		unsigned a = o->atom;
		if (sp >= 15)
			return -1;
		if (a >= DW_OP_breg0 && a <= DW_OP_breg31) {
			unsigned reg = a - DW_OP_breg0;
			if (reg > 16 || !(rg->valid & (1u << reg)))
				return -1;
			st[sp++] = rg->r[reg] + o->number;
			continue;
		}
		if (a >= DW_OP_lit0 && a <= DW_OP_lit31) {
			st[sp++] = a - DW_OP_lit0;
			continue;
		}
		if ((a >= DW_OP_reg0 && a <= DW_OP_reg31) || a == DW_OP_regx) {
			uint64_t reg = a == DW_OP_regx ? o->number : a - DW_OP_reg0;
			if (nops != 1 || reg > 16 || !(rg->valid & (1u << reg)))
				return -1;
			*out = rg->r[reg];
			*is_value = 1;
			return 0;
		}
		switch (a) {
		case DW_OP_bregx:
			if (o->number > 16 || !(rg->valid & (1u << o->number)))
				return -1;
			st[sp++] = rg->r[o->number] + o->number2;
			break;
		case DW_OP_call_frame_cfa:
			if (!have_cfa)
				return -1;
			st[sp++] = cfa;
			break;
		case DW_OP_const1u: case DW_OP_const1s: case DW_OP_const2u: case DW_OP_const2s:
		case DW_OP_const4u: case DW_OP_const4s: case DW_OP_const8u: case DW_OP_const8s:
		case DW_OP_constu: case DW_OP_consts: case DW_OP_addr:
			st[sp++] = o->number;
			break;
		case DW_OP_plus_uconst:
			if (sp < 1)
				return -1;
			st[sp - 1] += o->number;
			break;
		case DW_OP_dup:
			if (sp < 1)
				return -1;
			st[sp] = st[sp - 1];
			sp++;
			break;
		case DW_OP_drop:
			if (sp < 1)
				return -1;
			sp--;
			break;
		case DW_OP_over:
			if (sp < 2)
				return -1;
			st[sp] = st[sp - 2];
			sp++;
			break;
		case DW_OP_swap: {
			if (sp < 2)
				return -1;
			uint64_t x = st[sp - 1];
			st[sp - 1] = st[sp - 2];
			st[sp - 2] = x;
			break;
		}
		case DW_OP_deref: {
			if (sp < 1)
				return -1;
			uint64_t v;
			if (mem_u64(sb, st[sp - 1], &v))
				return -1;
			st[sp - 1] = v;
			break;
		}
		case DW_OP_neg:
			if (sp < 1)
				return -1;
			st[sp - 1] = -st[sp - 1];
			break;
		case DW_OP_not:
			if (sp < 1)
				return -1;
			st[sp - 1] = ~st[sp - 1];
			break;
		case DW_OP_plus: case DW_OP_minus: case DW_OP_and: case DW_OP_or: case DW_OP_xor:
		case DW_OP_mul: case DW_OP_shl: case DW_OP_shr: case DW_OP_shra:
		case DW_OP_ge: case DW_OP_gt: case DW_OP_le: case DW_OP_lt: case DW_OP_eq: case DW_OP_ne: {
			if (sp < 2)
				return -1;
			uint64_t b = st[--sp], x = st[sp - 1];
			int64_t sx = (int64_t)x, sb2 = (int64_t)b;
			uint64_t v;
			switch (a) {
			case DW_OP_plus: v = x + b; break;
			case DW_OP_minus: v = x - b; break;
			case DW_OP_and: v = x & b; break;
			case DW_OP_or: v = x | b; break;
			case DW_OP_xor: v = x ^ b; break;
			case DW_OP_mul: v = x * b; break;
			case DW_OP_shl: v = b < 64 ? x << b : 0; break;
			case DW_OP_shr: v = b < 64 ? x >> b : 0; break;
			case DW_OP_shra: v = (uint64_t)(b < 64 ? sx >> b : (sx < 0 ? -1 : 0)); break;
			case DW_OP_ge: v = sx >= sb2; break;
			case DW_OP_gt: v = sx > sb2; break;
			case DW_OP_le: v = sx <= sb2; break;
			case DW_OP_lt: v = sx < sb2; break;
			case DW_OP_eq: v = sx == sb2; break;
			default: v = sx != sb2; break;
			}
			st[sp - 1] = v;
			break;
		}
		case DW_OP_nop:
			break;
		case DW_OP_stack_value:
			if (i + 1 != nops)
				return -1;
			*is_value = 1;
			break;
		default:
			return -1;
		}
	}
	if (sp < 1)
		return -1;
	*out = st[sp - 1];
	return 0;
}

/* One frame up. Returns 0 ok, 1 outermost (return address undefined), -1 failure. */
static int unwind_step(const sp_libc *l, sp_stack *sb, const sp_regs *cur, int exact_pc, sp_regs *next,
		       uint64_t *cfa_out, int *signal_frame)
{
	uint64_t pc = cur->r[16];
	uint64_t look = (exact_pc ? pc : pc - 1) - l->bias;
	Dwarf_Frame *fr = NULL;
	if (!l->cfi || dwarf_cfi_addrframe(l->cfi, look, &fr) != 0 || !fr)
		return -1;
	bool sig = false;
	dwarf_frame_info(fr, NULL, NULL, &sig);
	*signal_frame = sig;
	Dwarf_Op *ops;
	size_t nops;
	uint64_t cfa;
	int isv, ret = 0;
	if (dwarf_frame_cfa(fr, &ops, &nops) != 0 || nops == 0 ||
	    eval_ops(ops, nops, cur, 0, 0, sb, &cfa, &isv)) {
		free(fr);
		return -1;
	}
	memset(next, 0, sizeof *next);
	for (int reg = 0; reg <= 16; reg++) {
		Dwarf_Op mem[3], *rops = NULL;
		size_t rn = 0;
		if (dwarf_frame_register(fr, reg, mem, &rops, &rn) != 0) {
			if (reg == 16)
				ret = -1;
			continue;
		}
		if (rn == 0) {
			if (rops == NULL) {           /* same value */
				next->r[reg] = cur->r[reg];
				next->valid |= cur->valid & (1u << reg);
			} else if (reg == 16) {       /* undefined return address: outermost */
				ret = 1;
			}
			continue;
		}
		uint64_t v;
		if (eval_ops(rops, rn, cur, cfa, 1, sb, &v, &isv) || (!isv && mem_u64(sb, v, &v))) {
			if (reg == 16)
				ret = -1;
			continue;
		}
		next->r[reg] = v;
		next->valid |= 1u << reg;
	}
	free(fr);
	if (ret < 0)
		return -1;
	if (!(next->valid & (1u << 7))) {   /* the CFA is the caller's stack pointer */
		next->r[7] = cfa;
		next->valid |= 1u << 7;
	}
	*cfa_out = cfa;
	return ret;
}

typedef struct {
	int in_alloc;             /* some frame is in the allocator */
	int failed;               /* the unwind failed inside libc */
	int left_libc;            /* the unwind reached a frame outside libc */
	uint64_t exit_pc;         /* return address of the outermost allocator frame (0: none) */
	uint64_t exit_cfa;        /* that frame's CFA: RSP once it has returned */
	int below_handler;        /* found below a signal frame */
} sp_class;

/* Unwind the libc frames of one context (registers rg), recording the outermost
 * allocator frame. exact: rg's pc is not a return address (innermost, or interrupted). */
static void unwind_libc(const sp_libc *l, sp_stack *sb, const sp_regs *rg0, int exact, sp_class *c)
{
	sp_regs rg = *rg0, nx;
	uint64_t last_cfa = 0;
	memset(c, 0, sizeof *c);
	for (int f = 0; f < SP_MAX_FRAMES; f++) {
		uint64_t pc = rg.r[16];
		if (!(rg.valid & (1u << 16)) || !in_libc_text(l, pc)) {
			c->left_libc = 1;
			/* libc called from a tracking hook: the real allocator (see
			 * sp_libc_set_tracker); leave it where the hook gets control back */
			if (f > 0 && !c->in_alloc && (rg.valid & (1u << 16)) && pc >= l->trk_lo &&
			    pc < l->trk_hi) {
				c->in_alloc = 1;
				c->exit_pc = pc;
				c->exit_cfa = last_cfa;
			}
			return;
		}
		int m = sp_in_allocator(l, pc);
		uint64_t cfa;
		int sigf = 0;
		int r = unwind_step(l, sb, &rg, exact, &nx, &cfa, &sigf);
		if (r < 0) {
			c->failed = 1;
			if (m)
				c->in_alloc = 1;
			return;
		}
		if (m) {
			c->in_alloc = 1;
			c->exit_pc = r == 1 ? 0 : nx.r[16];
			c->exit_cfa = cfa;
		}
		last_cfa = cfa;
		if (r == 1)
			return;   /* end of the stack */
		if (nx.r[7] <= rg.r[7] && !sigf) {
			c->failed = 1;   /* the stack must grow towards the caller */
			return;
		}
		exact = sigf;    /* the frame above a signal frame has an exact pc */
		rg = nx;
	}
	c->failed = 1;
}

/* Is there a call instruction right before addr in the target's code (a real return
 * address)? Read live, so it works for any module. */
static int live_call_before(pid_t pid, uint64_t addr)
{
	unsigned char c[8];
	struct iovec li = { c, 8 }, ri = { (void *)(uintptr_t)(addr - 8), 8 };
	if (addr < 4096 || process_vm_readv(pid, &li, 1, &ri, 1, 0) != 8)
		return 0;
	const unsigned char *e = c + 8;   /* e[-k]: k bytes before addr */
	if (e[-5] == 0xe8)
		return 1;                                               /* call rel32 */
	if (e[-2] == 0xff && ((e[-1] & 0xf8) == 0xd0 || (e[-1] & 0xf8) == 0x10))
		return 1;                                               /* call *%r, *(%r) */
	if (e[-3] == 0xff && ((e[-2] & 0xf8) == 0x50 || e[-2] == 0x14))
		return 1;                                               /* call *d8(%r), *(sib) */
	if (e[-4] == 0xff && e[-3] == 0x54)
		return 1;                                               /* call *d8(sib) */
	if (e[-6] == 0xff && (e[-5] == 0x15 || (e[-5] & 0xf8) == 0x90))
		return 1;                                               /* call *d32(%rip), *d32(%r) */
	if (e[-7] == 0xff && e[-6] == 0x94)
		return 1;                                               /* call *d32(sib) */
	if ((e[-3] & 0xf0) == 0x40 && e[-2] == 0xff && ((e[-1] & 0xf8) == 0xd0 || (e[-1] & 0xf8) == 0x10))
		return 1;                                               /* REX forms of the above */
	if ((e[-4] & 0xf0) == 0x40 && e[-3] == 0xff && ((e[-2] & 0xf8) == 0x50 || e[-2] == 0x14))
		return 1;
	if ((e[-5] & 0xf0) == 0x40 && e[-4] == 0xff && e[-3] == 0x54)
		return 1;
	if ((e[-7] & 0xf0) == 0x40 && e[-6] == 0xff && (e[-5] & 0xf8) == 0x90)
		return 1;
	return 0;
}

/* Where the innermost frames are not libc (a signal handler, say): find the signal frame
 * of the handler on the stack (the word holding __restore_rt, then a plausible
 * ucontext), and unwind the interrupted context. Signal frames once written where live
 * frames are now leave stale __restore_rt words behind, so a candidate must pass every
 * check, the chain is followed from the innermost frame (a nested handler's interrupted
 * context leads to the next), and the way out must be a real return address. */
static void scan_sigframes(const sp_libc *l, sp_stack *sb, uint64_t rsp, sp_class *c)
{
	if (!l->restorer)
		return;
	stack_load(sb, rsp, SP_STACK_SCAN);
	uint64_t from = rsp;
	for (int depth = 0; depth < SP_MAX_SIGFRAMES; depth++) {
		int found = 0;
		for (uint64_t a = (from + 7) & ~7ull; a >= sb->lo && a + 8 <= sb->lo + sb->n; a += 8) {
			uint64_t w;
			memcpy(&w, sb->buf + (a - sb->lo), 8);
			if (w != l->restorer)
				continue;
			/* rt_sigframe: pretcode, ucontext {uc_flags, uc_link, stack_t (24),
			 * sigcontext {r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags,
			 * cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate, ...}} */
			uint64_t uc_flags, uc_link, g[24];
			int ok = !mem_u64(sb, a + 8, &uc_flags) && !mem_u64(sb, a + 16, &uc_link);
			for (int i = 0; i < 24 && ok; i++)
				ok = !mem_u64(sb, a + 48 + 8 * (uint64_t)i, &g[i]);
			if (!ok || (uc_flags & ~7ull) || uc_link || (g[18] & 0xffff) != 0x33 ||
			    g[15] <= a || g[15] - a > 65536 || (g[23] && (g[23] <= a || g[23] >= g[15])))
				continue;   /* not a signal frame of ours */
			found = 1;
			sp_regs rg = { .valid = 0x1ffff };
			for (int i = 0; i < 8; i++)
				rg.r[8 + i] = g[i];
			rg.r[5] = g[8]; rg.r[4] = g[9]; rg.r[6] = g[10]; rg.r[3] = g[11];
			rg.r[1] = g[12]; rg.r[0] = g[13]; rg.r[2] = g[14]; rg.r[7] = g[15]; rg.r[16] = g[16];
			if (!in_libc_text(l, rg.r[16])) {
				from = g[15];   /* a handler interrupted user code: a nested one? */
				break;
			}
			sp_class sc;
			unwind_libc(l, sb, &rg, 1, &sc);
			if (sc.in_alloc && !sc.failed && sc.exit_pc && live_call_before(sb->pid, sc.exit_pc) &&
			    sc.exit_cfa > g[15]) {
				c->in_alloc = 1;
				c->failed = 0;
				c->exit_pc = sc.exit_pc;
				c->exit_cfa = sc.exit_cfa;
				c->below_handler = 1;
			}
			return;   /* the innermost plausible frame decides */
		}
		if (!found)
			return;
	}
}

/* Fallback when CFI fails: call-preceded return addresses into the allocator on the
 * stack; the outermost one (highest slot) is the way out, its slot + 8 the CFA. */
static void scan_returns(const sp_libc *l, sp_stack *sb, uint64_t rsp, sp_class *c)
{
	stack_load(sb, rsp, SP_STACK_FIRST);
	for (size_t off = 0; off + 8 <= sb->n; off += 8) {
		uint64_t w;
		memcpy(&w, sb->buf + off, 8);
		if (!is_call_ret(l, w))
			continue;
		c->in_alloc = 1;
		c->exit_pc = w;
		c->exit_cfa = sb->lo + off + 8;
	}
}

static int blocked_syscall(const struct user_regs_struct *r)
{
	long rax = (long)r->rax, nr = (long)r->orig_rax;
	if (nr < 0 || nr > 4096)
		return -1;
	/* interrupted while blocked: -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND,
	 * -ERESTART_RESTARTBLOCK; the syscall is restarted when the thread resumes */
	if (rax == -512 || rax == -513 || rax == -514 || rax == -516)
		return (int)nr;
	return -1;
}

static int malloc_syscall(int nr)
{
	return nr == SYS_brk || nr == SYS_mmap || nr == SYS_munmap || nr == SYS_mprotect ||
	       nr == SYS_madvise || nr == SYS_mremap || nr == SYS_getrandom;
}

static void classify(const sp_libc *l, sp_stack *sb, const struct user_regs_struct *u, int sigscan,
		     sp_class *c)
{
	sp_regs rg;
	regs_from_user(&rg, u);
	stack_reset(sb);
	stack_load(sb, u->rsp, SP_STACK_FIRST);
	unwind_libc(l, sb, &rg, 1, c);
	if (c->failed && !c->exit_pc) {
		sp_class sc = { 0 };
		scan_returns(l, sb, u->rsp, &sc);
		if (sc.in_alloc) {
			c->in_alloc = 1;
			c->exit_pc = sc.exit_pc;
			c->exit_cfa = sc.exit_cfa;
		}
	}
	if (!c->in_alloc && c->left_libc && sigscan)
		scan_sigframes(l, sb, u->rsp, c);
}

int sp_thread_in_allocator(frz_session *s, sp_libc *l, frz_thread *t)
{
	if (!l)
		return 0;
	if (!t->regs_valid && frz_getregs(t))
		return -ESRCH;
	sp_stack sb = { .pid = s->pid };
	sb.buf = malloc(SP_STACK_SCAN);
	if (!sb.buf)
		return -ENOMEM;
	sp_class c;
	classify(l, &sb, &t->regs, 1, &c);
	free(sb.buf);
	if (c.in_alloc)
		return 1;
	return c.failed ? -EIO : 0;
}

/* ------------------------------------------------------------------------------------ */
/* running one thread out                                                               */

enum run_end {
	RUN_HIT,          /* reached the return address with RSP at the caller's level */
	RUN_PARK_LOCK,    /* went to sleep on a futex */
	RUN_PARK_SYS,     /* went to sleep in a syscall malloc never makes */
	RUN_GONE,
	RUN_TIMEOUT,
	RUN_STOPSIG,      /* a stop signal or group-stop came up: leave it to the detach */
	RUN_NOBP,         /* the breakpoint could not be armed */
	RUN_OUT,          /* (single step) no longer inside the allocator */
};

typedef struct {
	frz_session *s;
	const sp_libc *l;
	sp_stack *sb;
	sp_result *res;
	int no_hwbp;              /* test hook HEAPSNAP_TEST_SINGLESTEP: the fallback only */
	uint64_t *trk_where;      /* per thread of s: address of its tracker `where` flag, 0 */
} sp_ctx;

/* ------------------------------------------------------------------------------------ */
/* the tracking library's per-thread flags                                              */

/* Inside the tracking library's hooks (where != HP_WHERE_OUT: its own state or, below
 * it, the heap may be mid-update)? Read now from the stopped thread's record. A thread
 * without a record has not been through a hook. */
static int in_tracker(sp_ctx *cx, int i)
{
	if (!cx->trk_where || !cx->trk_where[i])
		return 0;
	uint32_t where = 0;
	struct iovec li = { &where, sizeof where };
	struct iovec ri = { (void *)(uintptr_t)cx->trk_where[i], sizeof where };
	if (process_vm_readv(cx->s->pid, &li, 1, &ri, 1, 0) != (ssize_t)sizeof where)
		return 0;
	return where != HP_WHERE_OUT;
}

/* The address of each thread's `where` flag, from the exported thread table (read while
 * frozen: records are published before their tid). NULL without the library. */
static uint64_t *tracker_flags(const sp_libc *l, frz_session *s)
{
	if (!l->trk_state)
		return NULL;
	struct hp_state st;
	struct iovec li = { &st, sizeof st };
	struct iovec ri = { (void *)(uintptr_t)l->trk_state, sizeof st };
	if (process_vm_readv(s->pid, &li, 1, &ri, 1, 0) != (ssize_t)sizeof st ||
	    st.magic != HP_MAGIC || st.version != HP_FORMAT_VERSION)
		return NULL;   /* not initialized yet (no thread is in a hook then) */
	uint32_t n = st.n_threads < st.max_threads ? st.n_threads : st.max_threads;
	if (n > 65536)
		n = 65536;
	uint64_t *flags = calloc((size_t)s->n + 1, sizeof *flags);
	struct hp_thread_pub *pub = calloc(n ? n : 1, sizeof *pub);
	li = (struct iovec){ pub, n * sizeof *pub };
	ri = (struct iovec){ (void *)(uintptr_t)st.thread_table, n * sizeof *pub };
	if (!flags || !pub || (n && process_vm_readv(s->pid, &li, 1, &ri, 1, 0) !=
				   (ssize_t)(n * sizeof *pub))) {
		free(pub);
		free(flags);
		return NULL;
	}
	for (int i = 0; i < s->n; i++)
		for (uint32_t k = 0; k < n; k++)
			if (pub[k].tid == s->t[i].tid) {
				flags[i] = st.thread_table + k * sizeof *pub +
					   offsetof(struct hp_thread_pub, where);
				break;
			}
	free(pub);
	return flags;
}

static int is_stop_sig(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* t just stopped (kind k) while we ran it. Returns RUN_HIT when it is the breakpoint
 * with RSP back at the caller's level (pc != 0), another run_end to stop running it, or
 * -1 to go on. */
static int look_at_stop(frz_thread *t, enum frz_stop k, uint64_t pc, uint64_t cfa, int *sysnr)
{
	if (k == FRZ_STOP_GONE || frz_getregs(t))
		return RUN_GONE;
	if (k == FRZ_STOP_TRAP && pc && t->regs.rip == pc && t->regs.rsp >= cfa)
		return RUN_HIT;
	if (k == FRZ_STOP_GROUP || (k == FRZ_STOP_SIGNAL && is_stop_sig(t->pending_sig)))
		return RUN_STOPSIG;   /* a stop signal: the detach delivers it */
	if (k == FRZ_STOP_SIGNAL)
		frz_block_async(t);   /* re-apply: a handler's sigreturn may have reset it */
	int nr = blocked_syscall(&t->regs);
	if (nr == SYS_futex) {
		*sysnr = nr;
		return RUN_PARK_LOCK;
	}
	if (nr >= 0 && !malloc_syscall(nr)) {
		*sysnr = nr;
		return RUN_PARK_SYS;
	}
	return -1;
}

/* Let t run with a breakpoint at pc until it returns there with RSP >= cfa. */
static enum run_end run_to_bp(sp_ctx *cx, frz_thread *t, uint64_t pc, uint64_t cfa, uint64_t deadline,
			      int *sysnr)
{
	if (frz_set_hwbp(t, pc))
		return RUN_NOBP;
	cx->res->bp_runs++;
	int end = -1;
	while (end < 0) {
		if (frz_interrupted) {
			end = RUN_GONE;
			break;
		}
		if (frz_resume(t, 0)) {
			end = RUN_GONE;
			break;
		}
		uint64_t started = frz_now_ns();
		int status = 0;
		for (;;) {
			uint64_t now = frz_now_ns();
			if (now >= deadline) {
				/* budget spent: stop it (the interrupt may race the very hit) */
				end = look_at_stop(t, frz_interrupt(cx->s, t), pc, cfa, sysnr);
				if (end < 0)
					end = RUN_TIMEOUT;
				break;
			}
			uint64_t slice = deadline - now < SP_SLICE_NS ? deadline - now : SP_SLICE_NS;
			int r = frz_wait_stop(cx->s, t, &status, slice);
			if (r < 0) {
				end = RUN_GONE;
				break;
			}
			if (r == 1) {
				enum frz_stop k = frz_stop_kind(t, status);
				if (k == FRZ_STOP_INTERRUPT)
					break;   /* the extra stop of an interrupt that raced a trap */
				end = look_at_stop(t, k, pc, cfa, sysnr);
				break;   /* -1: a deeper frame returned there, or a signal: go on */
			}
			if (frz_now_ns() - started < SP_SLICE_NS)
				continue;
			/* no news: if it sleeps, stop it and see where */
			char st = frz_thread_state(cx->s->pid, t->tid);
			if (st != 'S' && st != 'D')
				continue;
			end = look_at_stop(t, frz_interrupt(cx->s, t), pc, cfa, sysnr);
			break;   /* -1: sleeping in a syscall malloc makes, go on */
		}
	}
	if (t->st == FRZ_T_ATTACHED && !t->gone && !t->stopped &&
	    frz_interrupt(cx->s, t) == FRZ_STOP_GONE)
		end = RUN_GONE;
	frz_clear_hwbp(t);
	return (enum run_end)end;
}

/* Single-step t until it is out of the allocator. */
static enum run_end step_out(sp_ctx *cx, frz_thread *t, int ti, uint64_t exit_cfa,
			     uint64_t deadline, int *sysnr)
{
	for (int steps = 0; steps < SP_MAX_STEPS; steps++) {
		if (frz_interrupted)
			return RUN_GONE;
		if (frz_now_ns() >= deadline)
			return RUN_TIMEOUT;
		if (frz_resume(t, 1))
			return RUN_GONE;
		cx->res->steps++;
		int status;
		enum frz_stop k;
		int r = frz_wait_stop(cx->s, t, &status, 2000000ull);
		if (r < 0)
			return RUN_GONE;
		/* a step into a syscall that sleeps (or a long one): stop it and look */
		k = r == 1 ? frz_stop_kind(t, status) : frz_interrupt(cx->s, t);
		int e = look_at_stop(t, k, 0, 0, sysnr);
		if (e >= 0)
			return (enum run_end)e;
		if (k != FRZ_STOP_TRAP)
			continue;
		if (sp_in_allocator(cx->l, t->regs.rip))
			continue;
		/* below the outermost allocator frame still (a handler that interrupted it):
		 * no need to unwind at every step */
		if (exit_cfa && t->regs.rsp < exit_cfa)
			continue;
		if (in_tracker(cx, ti))
			continue;
		sp_class c;
		classify(cx->l, cx->sb, &t->regs, 1, &c);
		if (!c.in_alloc)
			return RUN_OUT;
	}
	return RUN_TIMEOUT;
}

static enum hs_safepoint run_out(sp_ctx *cx, frz_thread *t, int ti, sp_class *c, uint64_t deadline,
				 int *sysnr)
{
	frz_block_async(t);
	for (int round = 0; round < SP_MAX_ROUNDS; round++) {
		if (frz_interrupted || frz_now_ns() >= deadline)
			break;
		enum run_end e;
		if (c->exit_pc && !cx->no_hwbp) {
			e = run_to_bp(cx, t, c->exit_pc, c->exit_cfa, deadline, sysnr);
			if (e == RUN_NOBP)
				e = step_out(cx, t, ti, c->exit_cfa, deadline, sysnr);
		} else {
			e = step_out(cx, t, ti, c->exit_cfa, deadline, sysnr);
		}
		switch (e) {
		case RUN_HIT:
		case RUN_OUT:
			if (!t->regs_valid)
				return HS_SP_IN_FLUX;
			classify(cx->l, cx->sb, &t->regs, 1, c);
			if (!c->in_alloc && !in_tracker(cx, ti))
				return HS_SP_RAN_OUT;
			if (!c->in_alloc)   /* out of glibc, still in a tracker hook: step */
				c->exit_pc = c->exit_cfa = 0;
			continue;   /* still inside (the unwind saw less than the whole nest) */
		case RUN_PARK_LOCK:
			return HS_SP_PARKED_LOCK;
		case RUN_PARK_SYS:
			return HS_SP_PARKED_SYSCALL;
		case RUN_GONE:
			return t->gone ? HS_SP_CLEAN : HS_SP_IN_FLUX;
		default:
			return HS_SP_IN_FLUX;
		}
	}
	return HS_SP_IN_FLUX;
}

int sp_reach_safepoints(frz_session *s, sp_libc *l, enum hs_safepoint *out, int *syscall_nr,
			sp_result *res)
{
	uint64_t budget = res->budget_ns ? res->budget_ns : SP_DEFAULT_BUDGET;
	res->ran_out = res->parked = res->in_flux = res->unknown = 0;
	res->bp_runs = res->steps = res->below_handler = res->in_tracker = 0;
	int n = s->n;
	for (int i = 0; i < n; i++) {
		frz_thread *t = &s->t[i];
		out[i] = HS_SP_CLEAN;
		syscall_nr[i] = (t->regs_valid && !t->gone) ? blocked_syscall(&t->regs) : -1;
	}
	if (!l)
		return 0;
	sp_stack sb = { .pid = s->pid };
	sb.buf = malloc(SP_STACK_SCAN);
	if (!sb.buf)
		return -ENOMEM;
	sp_ctx cx = { s, l, &sb, res, 0, tracker_flags(l, s) };
	const char *hook = getenv("HEAPSNAP_TEST_SINGLESTEP");
	cx.no_hwbp = (hook && *hook == '1') || !frz_hwbp_works();
	/* an overall bound, so that many stuck threads cannot stretch the pause */
	uint64_t all_deadline = frz_now_ns() + 8 * budget;
	int ret = 0;
	for (int i = 0; i < n; i++) {
		frz_thread *t = &s->t[i];
		if (frz_interrupted) {
			ret = -EINTR;
			break;
		}
		if (t->st != FRZ_T_ATTACHED || t->gone)
			continue;
		if (!t->stopped || !t->regs_valid) {
			out[i] = HS_SP_UNKNOWN;
			res->unknown++;
			continue;
		}
		int sysnr = syscall_nr[i];
		sp_class c;
		classify(l, &sb, &t->regs, sysnr < 0, &c);
		int hooked = in_tracker(&cx, i);
		res->in_tracker += hooked;
		if (!c.in_alloc && !hooked) {
			if (c.failed) {
				out[i] = HS_SP_UNKNOWN;
				res->unknown++;
			}
			continue;
		}
		res->below_handler += c.below_handler;
		if (t->was_stopped || t->group_stop) {
			out[i] = HS_SP_IN_FLUX;   /* never run a thread the user stopped */
			res->in_flux++;
			continue;
		}
		if (sysnr == SYS_futex) {
			out[i] = HS_SP_PARKED_LOCK;
			res->parked++;
			continue;
		}
		if (sysnr >= 0 && !malloc_syscall(sysnr)) {
			out[i] = HS_SP_PARKED_SYSCALL;
			res->parked++;
			continue;
		}
		uint64_t now = frz_now_ns();
		if (now >= all_deadline) {
			out[i] = HS_SP_IN_FLUX;
			res->in_flux++;
			continue;
		}
		uint64_t deadline = now + budget < all_deadline ? now + budget : all_deadline;
		int nr = -1;
		out[i] = run_out(&cx, t, i, &c, deadline, &nr);
		syscall_nr[i] = t->regs_valid && !t->gone ? blocked_syscall(&t->regs) : -1;
		if (nr >= 0)
			syscall_nr[i] = nr;
		switch (out[i]) {
		case HS_SP_RAN_OUT: res->ran_out++; break;
		case HS_SP_PARKED_LOCK: case HS_SP_PARKED_SYSCALL: res->parked++; break;
		case HS_SP_IN_FLUX: res->in_flux++; break;
		default: break;
		}
	}
	free(sb.buf);
	free(cx.trk_where);
	if (frz_interrupted)
		ret = -EINTR;
	return ret;
}
