/* modules.h -- the loaded ELF objects of a target from its file mappings: path, load
 * bias, address range and GNU build-id (read with libelf), and whether DWARF is at hand
 * (in the file, or separate under /usr/lib/debug/.build-id). Sets mapping.module_idx.
 */
#ifndef HEAPSNAP_MODULES_H
#define HEAPSNAP_MODULES_H

#include "model.h"

/* root: prefix to open target files ("/proc/PID/root" or ""). */
int mod_collect(hs_capture *c, const char *root);

/* The module containing addr, or -1. */
int mod_find(const hs_capture *c, uint64_t addr);

/* Open module idx's file for reading (O_RDONLY|O_CLOEXEC): root+path, then (for a
 * root of the form /proc/PID/root) /proc/PID/map_files/START-END, then the plain path;
 * a candidate whose inode differs from the mapping's is used only if nothing matches.
 * Returns an fd the caller closes, or a negative errno. */
int mod_open(const hs_capture *c, size_t idx, const char *root);

/* Find separate debuginfo for an ELF: by build-id (hex) under
 * /usr/lib/debug/.build-id/xx/rest.debug, then by .gnu_debuglink name (if not NULL)
 * beside path, in its .debug/ and under /usr/lib/debug/<dir>/; each first under root,
 * then on this machine. Never touches the network. Writes the path found to out and
 * returns 0, or -ENOENT. */
int mod_find_debugfile(const char *root, const char *path, const char *build_id,
		       const char *debuglink, char *out, size_t outsz);

/* The target's [vdso] is not a file, but the kernel maps the same image into every
 * process of its ABI: if the target's [vdso] has the size of ours, *image and *len get our
 * own copy (read-only, valid for the life of this process) and *start the target's
 * address. 0, or -ENOENT. */
int mod_vdso(const hs_capture *c, uint64_t *start, const unsigned char **image, size_t *len);

#endif
