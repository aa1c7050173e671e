/* model.c -- life cycle of an hs_capture, the enum name tables, and append helpers. */
#include "model.h"
#include "ptrscan.h"

#include <stdlib.h>
#include <string.h>

static const char *const map_kind_names[HS_MAP_KIND_COUNT] = {
	"anon", "heap", "arena_heap", "mmap_chunk", "stack", "module_text", "module_rodata",
	"module_data", "module_bss", "vdso", "vvar", "vsyscall", "shm", "file", "guard",
};

const char *hs_map_kind_name(enum hs_map_kind k)
{
	return (unsigned)k < HS_MAP_KIND_COUNT ? map_kind_names[k] : "?";
}

static const char *const smaps_keys[HS_SM_COUNT] = {
	"Size", "KernelPageSize", "MMUPageSize", "Rss", "Pss", "Pss_Dirty", "Pss_Anon",
	"Pss_File", "Pss_Shmem", "Shared_Clean", "Shared_Dirty", "Private_Clean",
	"Private_Dirty", "Referenced", "Anonymous", "KSM", "LazyFree", "AnonHugePages",
	"ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap",
	"SwapPss", "Locked", "THPeligible",
};

const char *hs_smaps_key(enum hs_smaps_field f)
{
	return (unsigned)f < HS_SM_COUNT ? smaps_keys[f] : "?";
}

int hs_smaps_field_of(const char *key)
{
	for (int i = 0; i < HS_SM_COUNT; i++)
		if (!strcmp(key, smaps_keys[i]))
			return i;
	return -1;
}

static const char *const safepoint_names[] = {
	"clean", "ran_out", "parked_lock", "parked_syscall", "in_flux", "unknown",
};

const char *hs_safepoint_name(enum hs_safepoint s)
{
	return (unsigned)s <= HS_SP_UNKNOWN ? safepoint_names[s] : "?";
}

const char *const hs_reg_names[HS_NREGS] = {
	"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
	"rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
	"gs_base", "ds", "es", "fs", "gs",
};

static const char *const chunk_state_names[HS_CH_STATE_COUNT] = {
	"in_use", "free_bin", "tcache", "fastbin", "top", "internal",
};

const char *hs_chunk_state_name(enum hs_chunk_state s)
{
	return (unsigned)s < HS_CH_STATE_COUNT ? chunk_state_names[s] : "?";
}

void hs_capture_init(hs_capture *c)
{
	memset(c, 0, sizeof *c);
	c->proc.vm_size_kb = c->proc.vm_rss_kb = c->proc.rss_anon_kb = -1;
	c->proc.rss_file_kb = c->proc.rss_shmem_kb = c->proc.vm_swap_kb = -1;
	c->proc.vm_peak_kb = c->proc.vm_hwm_kb = c->proc.vm_data_kb = c->proc.vm_stk_kb = -1;
}

void hs_capture_free(hs_capture *c)
{
	free(c->proc.exe);
	for (size_t i = 0; i < c->proc.argc; i++)
		free(c->proc.argv[i]);
	free(c->proc.argv);
	free(c->proc.kernel);
	free(c->heap.note);
	free(c->heap.glibc_version);
	for (size_t i = 0; i < c->n_maps; i++) {
		free(c->maps[i].path);
		free(c->maps[i].extra);
		free(c->maps[i].vmflags);
	}
	free(c->maps);
	for (size_t i = 0; i < c->n_modules; i++) {
		free(c->modules[i].path);
		free(c->modules[i].build_id);
	}
	free(c->modules);
	free(c->threads);
	for (size_t i = 0; i < c->n_frames; i++) {
		free(c->frames[i].function);
		free(c->frames[i].file);
	}
	free(c->frames);
	free(c->callsites);
	for (size_t i = 0; i < c->n_arenas; i++) {
		free(c->arenas[i].heaps);
		free(c->arenas[i].note);
	}
	free(c->arenas);
	free(c->chunks);
	free(c->allocs);
	free(c->tracking.lib_path);
	free(c->tracking.note);
	free(c->tracking.threads);
	ps_free(c->graph);
	free(c->tool_version);
	free(c->cs_hash);
	hs_capture_init(c);
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 256;
	void *p = realloc(*arr, nc * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = nc;
	return 0;
}

long hs_add_chunk(hs_capture *c, const hs_chunk *ch)
{
	if (grow((void **)&c->chunks, &c->cap_chunks, c->n_chunks, sizeof *c->chunks))
		return -1;
	c->chunks[c->n_chunks] = *ch;
	return (long)c->n_chunks++;
}

long hs_add_frame(hs_capture *c, const hs_frame *f)
{
	if (grow((void **)&c->frames, &c->cap_frames, c->n_frames, sizeof *c->frames))
		return -1;
	c->frames[c->n_frames] = *f;
	return (long)c->n_frames++;
}

/* callsites are deduplicated on (parent, frame) with an open-addressing hash of indices */
static uint64_t cs_key_hash(int parent, int frame)
{
	uint64_t h = ((uint64_t)(uint32_t)parent << 32) | (uint32_t)frame;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static int cs_rehash(hs_capture *c, size_t nslots)
{
	int32_t *t = malloc(nslots * sizeof *t);
	if (!t)
		return -1;
	for (size_t i = 0; i < nslots; i++)
		t[i] = -1;
	for (size_t i = 0; i < c->n_callsites; i++) {
		size_t s = cs_key_hash(c->callsites[i].parent, c->callsites[i].frame) & (nslots - 1);
		while (t[s] >= 0)
			s = (s + 1) & (nslots - 1);
		t[s] = (int32_t)i;
	}
	free(c->cs_hash);
	c->cs_hash = t;
	c->cs_slots = nslots;
	return 0;
}

long hs_add_callsite(hs_capture *c, int parent, int frame, int depth)
{
	if ((c->n_callsites + 1) * 2 > c->cs_slots &&
	    cs_rehash(c, c->cs_slots ? c->cs_slots * 2 : 1024))
		return -1;
	size_t s = cs_key_hash(parent, frame) & (c->cs_slots - 1);
	while (c->cs_hash[s] >= 0) {
		const hs_callsite *cs = &c->callsites[c->cs_hash[s]];
		if (cs->parent == parent && cs->frame == frame)
			return c->cs_hash[s];
		s = (s + 1) & (c->cs_slots - 1);
	}
	if (grow((void **)&c->callsites, &c->cap_callsites, c->n_callsites, sizeof *c->callsites))
		return -1;
	c->callsites[c->n_callsites] = (hs_callsite){ .parent = parent, .frame = frame, .depth = depth };
	c->cs_hash[s] = (int32_t)c->n_callsites;
	return (long)c->n_callsites++;
}
