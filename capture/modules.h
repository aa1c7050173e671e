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

#endif
