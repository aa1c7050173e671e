/* snapwrite.h -- writes an hs_capture as a snapshot file (schema/schema.sql): a temp
 * file beside the destination (mode 0600), one transaction with prepared statements,
 * fsync, then rename over the destination. On any failure the temp file is removed and
 * nothing is left at the destination (an older file there is left untouched) -- except
 * when only the final fsync of the directory fails: then the complete snapshot is in
 * place and the message says so.
 */
#ifndef HEAPSNAP_SNAPWRITE_H
#define HEAPSNAP_SNAPWRITE_H

#include <stddef.h>

#include "model.h"

/* 0, or -1 with a one-line message in err. */
int sw_write(const hs_capture *c, const char *path, char *err, size_t errlen);

/* The temp file currently being written, or NULL: the SIGINT path unlinks it. */
const char *sw_temp_path(void);

#endif
