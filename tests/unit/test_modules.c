/* test_modules.c -- mod_collect on our own process, checked against independent
 * sources: the dynamic linker's load biases (dl_iterate_phdr), the build-id as
 * `readelf -n` prints it, the executable from /proc/self/exe, and the classification
 * of libc's mappings (text, rodata, data, bss). */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <elf.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "maps_util.h"
#include "modules.h"
#include "procmaps.h"

static hs_capture cap;
static int checked_objects;

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *name = info->dlpi_name;
	if (name && strstr(name, "linux-vdso"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t addr = info->dlpi_addr + ph->p_vaddr;
		int m = mod_find(&cap, addr);
		if (m < 0) {
			fprintf(stderr, "no module for %s at 0x%llx\n", name && *name ? name : "(main)",
				(unsigned long long)addr);
			CHECK(m >= 0);
		}
		if (cap.modules[m].load_base != (uint64_t)info->dlpi_addr)
			fprintf(stderr, "%s: load_base 0x%llx, dlpi_addr 0x%llx\n", cap.modules[m].path,
				(unsigned long long)cap.modules[m].load_base,
				(unsigned long long)info->dlpi_addr);
		CHECK_EQ(cap.modules[m].load_base, info->dlpi_addr);
		CHECK_EQ(cap.modules[m].is_main, !name || !*name);
		checked_objects++;
		break;
	}
	return 0;
}

/* The build-id as binutils prints it: "    Build ID: 1a2b..." */
static int readelf_build_id(const char *path, char *out, size_t outsz)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof cmd, "readelf -n '%s' 2>/dev/null", path);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char line[512];
	int found = -1;
	while (fgets(line, sizeof line, p)) {
		char *b = strstr(line, "Build ID: ");
		if (!b)
			continue;
		b += 10;
		size_t n = 0;
		while (isxdigit((unsigned char)b[n]) && n + 1 < outsz) {
			out[n] = (char)tolower((unsigned char)b[n]);
			n++;
		}
		out[n] = 0;
		found = 0;
	}
	pclose(p);
	return found;
}

static void build(hs_capture *c, const char *root)
{
	hs_capture_init(c);
	mc_vmas v;
	CHECK_EQ(tu_read_maps(getpid(), &v), 0);
	CHECK_EQ(pm_maps_from_vmas(c, &v), 0);
	tu_free_maps(&v);
	CHECK_EQ(pm_read_smaps(getpid(), c), 0);
	CHECK_EQ(pm_read_process(getpid(), c), 0);
	CHECK_EQ(mod_collect(c, root), 0);
	pm_classify(c);
}

int main(void)
{
	(void)check_failures;
	build(&cap, "");
	CHECK(cap.n_modules >= 3);   /* us, libc, ld.so at least */

	/* load bias of every object the dynamic linker knows */
	dl_iterate_phdr(phdr_cb, NULL);
	CHECK(checked_objects >= 3);

	/* exactly one main module, our executable */
	int mains = 0;
	char exe[PATH_MAX];
	ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHECK(el > 0);
	exe[el] = 0;
	for (size_t i = 0; i < cap.n_modules; i++)
		if (cap.modules[i].is_main) {
			mains++;
			CHECK_STR(cap.modules[i].path, exe);
			/* built with -g (RelWithDebInfo or Debug): DWARF in the file */
			CHECK_EQ(cap.modules[i].has_debuginfo, 1);
		}
	CHECK_EQ(mains, 1);

	/* libc: build-id as readelf sees it, found for a libc function's address */
	Dl_info di;
	CHECK(dladdr((void *)&gnu_get_libc_version, &di));   /* not intercepted by ASan */
	int libc = mod_find(&cap, (uint64_t)(uintptr_t)di.dli_saddr);
	CHECK(libc >= 0);
	const hs_module *lm = &cap.modules[libc];
	CHECK(strstr(lm->path, "libc.so"));
	CHECK_EQ(lm->load_base, (uint64_t)(uintptr_t)di.dli_fbase);
	char want[160];
	CHECK_EQ(readelf_build_id(lm->path, want, sizeof want), 0);
	CHECK(strlen(want) >= 16);
	CHECK_STR(lm->build_id, want);
	char dbg[PATH_MAX];
	struct stat st;
	snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", want, want + 2);
	CHECK_EQ(lm->has_debuginfo, stat(dbg, &st) == 0);
	printf("libc: %s build-id %s base 0x%llx debuginfo %d\n", lm->path, lm->build_id,
	       (unsigned long long)lm->load_base, lm->has_debuginfo);

	/* libc's mappings: all claimed, classified by permissions; the anonymous rw mapping
	 * right after its data is its .bss */
	int text = 0, rodata = 0, data = 0, bss = 0;
	for (size_t i = 0; i < cap.n_maps; i++) {
		const hs_mapping *m = &cap.maps[i];
		if (m->path && !strcmp(m->path, lm->path)) {
			CHECK_EQ(m->module_idx, libc);
			CHECK(m->start >= lm->start && m->end <= lm->end);
		}
		if (m->module_idx != libc)
			continue;
		text += m->kind == HS_MAP_MODULE_TEXT;
		rodata += m->kind == HS_MAP_MODULE_RODATA;
		data += m->kind == HS_MAP_MODULE_DATA;
		bss += m->kind == HS_MAP_MODULE_BSS;
		if (m->kind == HS_MAP_MODULE_BSS) {
			CHECK(!m->path);
			CHECK_STR(cap.maps[i - 1].path, lm->path);
			CHECK(cap.maps[i - 1].perms[1] == 'w');
		}
	}
	CHECK_EQ(text, 1);
	CHECK(rodata >= 1);
	CHECK_EQ(data, 1);
	CHECK_EQ(bss, 1);

	/* non-ELF files (locale archives etc.) are no modules; the vdso is none either */
	for (size_t i = 0; i < cap.n_maps; i++) {
		const hs_mapping *m = &cap.maps[i];
		if (m->path && strstr(m->path, "/locale/"))
			CHECK_EQ(m->module_idx, -1);
		if (m->path && !strcmp(m->path, "[vdso]"))
			CHECK_EQ(mod_find(&cap, m->start), -1);
	}
	CHECK_EQ(mod_find(&cap, 0), -1);

	/* the same through our own /proc/PID/root */
	hs_capture c2;
	char root[64];
	snprintf(root, sizeof root, "/proc/%d/root", (int)getpid());
	build(&c2, root);
	CHECK_EQ(c2.n_modules, cap.n_modules);
	for (size_t i = 0; i < cap.n_modules; i++) {
		CHECK_STR(c2.modules[i].path, cap.modules[i].path);
		CHECK_EQ(c2.modules[i].load_base, cap.modules[i].load_base);
		CHECK_EQ(c2.modules[i].start, cap.modules[i].start);
		CHECK_EQ(c2.modules[i].end, cap.modules[i].end);
		if (cap.modules[i].build_id)
			CHECK_STR(c2.modules[i].build_id, cap.modules[i].build_id);
		int fd = mod_open(&c2, i, root);
		CHECK(fd >= 0);
		close(fd);
	}
	hs_capture_free(&c2);

	/* the vdso: ours, same size */
	uint64_t vs;
	const unsigned char *vimg;
	size_t vlen;
	if (!mod_vdso(&cap, &vs, &vimg, &vlen)) {
		CHECK(!memcmp(vimg, ELFMAG, SELFMAG));
		CHECK_EQ(vs, (uint64_t)(uintptr_t)vimg);   /* our own process */
	}

	for (size_t i = 0; i < cap.n_modules; i++)
		printf("module %zu: %s base 0x%llx [0x%llx, 0x%llx) main %d dbg %d id %s\n", i,
		       cap.modules[i].path, (unsigned long long)cap.modules[i].load_base,
		       (unsigned long long)cap.modules[i].start, (unsigned long long)cap.modules[i].end,
		       cap.modules[i].is_main, cap.modules[i].has_debuginfo,
		       cap.modules[i].build_id ? cap.modules[i].build_id : "-");
	hs_capture_free(&cap);
	printf("modules: ok\n");
	return 0;
}
