/* test_modules_dup.c -- a loaded file also mapped whole, read-only, at offset 0 by code
 * in the process (as libdw in the tracking library maps the ELF files it reads) must
 * not be taken for the module's load image: mod_collect on our own process, with libc
 * and our executable mapped a second time, still gives their real load biases and
 * ranges, and the extra mappings belong to no module. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "maps_util.h"
#include "modules.h"
#include "procmaps.h"

/* map path whole, read-only, as libdw's ELF_C_READ_MMAP does */
static void *map_whole(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	struct stat st;
	CHECK_EQ(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED);
	close(fd);
	return p;
}

int main(void)
{
	(void)check_failures;
	Dl_info di;
	CHECK(dladdr((void *)&gnu_get_libc_version, &di));
	char exe[PATH_MAX];
	ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHECK(el > 0);
	exe[el] = 0;
	size_t l1, l2;
	void *libc_copy = map_whole(di.dli_fname, &l1);
	void *exe_copy = map_whole(exe, &l2);

	hs_capture c;
	hs_capture_init(&c);
	mc_vmas v;
	CHECK_EQ(tu_read_maps(getpid(), &v), 0);
	CHECK_EQ(pm_maps_from_vmas(&c, &v), 0);
	tu_free_maps(&v);
	CHECK_EQ(pm_read_process(getpid(), &c), 0);
	CHECK_EQ(mod_collect(&c, ""), 0);

	int libc = mod_find(&c, (uint64_t)(uintptr_t)di.dli_saddr);
	CHECK(libc >= 0);
	CHECK_EQ(c.modules[libc].load_base, (uint64_t)(uintptr_t)di.dli_fbase);
	CHECK_EQ(mod_find(&c, (uint64_t)(uintptr_t)libc_copy), -1);
	CHECK(!((uint64_t)(uintptr_t)libc_copy >= c.modules[libc].start &&
		(uint64_t)(uintptr_t)libc_copy < c.modules[libc].end));
	int mains = 0;
	for (size_t i = 0; i < c.n_modules; i++)
		if (c.modules[i].is_main) {
			mains++;
			CHECK_EQ(mod_find(&c, (uint64_t)(uintptr_t)&main), (int)i);
			CHECK(!((uint64_t)(uintptr_t)exe_copy >= c.modules[i].start &&
				(uint64_t)(uintptr_t)exe_copy < c.modules[i].end));
		}
	CHECK_EQ(mains, 1);
	CHECK_EQ(mod_find(&c, (uint64_t)(uintptr_t)exe_copy), -1);
	for (size_t i = 0; i < c.n_maps; i++)
		if (c.maps[i].start == (uint64_t)(uintptr_t)libc_copy ||
		    c.maps[i].start == (uint64_t)(uintptr_t)exe_copy)
			CHECK_EQ(c.maps[i].module_idx, -1);
	printf("libc base 0x%llx, its whole-file copy at %p is no module\n",
	       (unsigned long long)c.modules[libc].load_base, libc_copy);
	hs_capture_free(&c);
	munmap(libc_copy, l1);
	munmap(exe_copy, l2);
	return 0;
}
