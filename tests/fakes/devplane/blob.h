/* blob.h — a text column kept in a file instead of memory: a task's plan_output and apply_output.
 *
 * The agent uploads a task's whole log in its status update and again as a log chunk (ref E5, E6), and a log can be
 * hundreds of megabytes (DESIGN §4.4), so the plane keeps these columns on disk. Each blob is an anonymous file in
 * the data directory (O_TMPFILE, or a temporary name unlinked at once), held open from its first write to
 * blob_free(): it has no name, so nothing is left behind however the process ends, even by SIGKILL. One fd per
 * written column. The I/O is blocking, on the loop: a test tool writing to local disk. The SHA-256 is computed when
 * asked and cached until the next write. Errors are -errno. */
#ifndef DEVPLANE_BLOB_H
#define DEVPLANE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iac/digest.h"
#include "iac/strbuf.h"

typedef struct {
    const char *dir;                             /* the caller's, outlives the blob */
    int         fd;                              /* -1 until the first write */
    uint64_t    len;
    char        sha256[DIGEST_SHA256_HEX_LEN + 1]; /* "" until computed */
} blob;

/* An empty (NULL) column whose file will live in dir. */
void blob_init(blob *b, const char *dir);
/* Replaces the content. */
int blob_set(blob *b, const void *data, size_t len);
int blob_append(blob *b, const void *data, size_t len);
/* Appends the whole content to out (which must be able to hold it: the caller checks b->len first). */
int blob_read(const blob *b, strbuf *out);
/* Appends the last max bytes to out, starting at a UTF-8 character boundary so that the text stays valid. */
int blob_tail(const blob *b, size_t max, strbuf *out);
/* Lowercase hex SHA-256 of the content (of "" when never written) into out. */
int blob_sha256(blob *b, char out[DIGEST_SHA256_HEX_LEN + 1]);
/* Closes the file (which disappears with it). */
void blob_free(blob *b);

#endif
