/* maps_util.h -- test helper: /proc/PID/maps into an mc_vmas without memcopy.c, so the
 * procmaps/modules/unwind tests do not depend on the freezer's code. */
#ifndef HEAPSNAP_TEST_MAPS_UTIL_H
#define HEAPSNAP_TEST_MAPS_UTIL_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "memcopy.h"

static int tu_read_maps(pid_t pid, mc_vmas *out)
{
	char path[64], line[4096];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	memset(out, 0, sizeof *out);
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi, off;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off, &pos) < 4)
			continue;
		if (out->n == out->cap) {
			out->cap = out->cap ? out->cap * 2 : 64;
			out->v = realloc(out->v, out->cap * sizeof *out->v);
		}
		mc_vma *v = &out->v[out->n++];
		memset(v, 0, sizeof *v);
		v->lo = lo;
		v->hi = hi;
		v->offset = off;
		memcpy(v->perms, perms, 4);
		const char *p = pos ? line + pos : "";
		size_t n = strcspn(p, "\n");
		if (n >= sizeof v->path)
			n = sizeof v->path - 1;
		memcpy(v->path, p, n);
	}
	fclose(f);
	return 0;
}

static void tu_free_maps(mc_vmas *m)
{
	free(m->v);
	memset(m, 0, sizeof *m);
}

#endif
