/* blob.c — text columns in anonymous files; see blob.h.
 *
 * Writes are pwrite()s at an offset we track (0 for a replacement, after ftruncate), reads are pread()s: no file
 * position is shared between calls. */
#include "blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOB_IO 65536

void blob_init(blob *b, const char *dir)
{
    memset(b, 0, sizeof *b);
    b->dir = dir;
    b->fd = -1;
}

/* An unnamed file in dir: O_TMPFILE where the file system has it, else a temporary name removed at once. */
static int open_anonymous(const char *dir)
{
    char path[4096];
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd : -errno;
    if (snprintf(path, sizeof path, "%s/.iac-devplane-XXXXXX", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
        return -errno;
    unlink(path);
    return fd;
}

static int write_at(int fd, const char *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int blob_write(blob *b, const void *data, size_t len, bool append)
{
    int rc;

    if (b->fd < 0) {
        if ((rc = open_anonymous(b->dir)) < 0)
            return rc;
        b->fd = rc;
    }
    b->sha256[0] = '\0';
    if (!append) {
        if (ftruncate(b->fd, 0) < 0)
            return -errno;
        b->len = 0;
    }
    if ((rc = write_at(b->fd, data, len, b->len)) < 0) {
        /* Whatever is on disk now is the column's value: take its length rather than guess. */
        struct stat st;
        b->len = fstat(b->fd, &st) == 0 ? (uint64_t)st.st_size : b->len;
        return rc;
    }
    b->len += len;
    return 0;
}

int blob_set(blob *b, const void *data, size_t len)
{
    return blob_write(b, data, len, false);
}

int blob_append(blob *b, const void *data, size_t len)
{
    return blob_write(b, data, len, true);
}

/* Feeds len bytes from offset off to fn (a strbuf append or a digest update). */
static int read_range(const blob *b, uint64_t off, uint64_t len, void (*fn)(void *, const void *, size_t),
                      void *arg)
{
    char *buf;

    if (b->fd < 0 || len == 0)
        return 0;
    if (!(buf = malloc(BLOB_IO)))
        return -ENOMEM;
    while (len) {
        ssize_t n = pread(b->fd, buf, len < BLOB_IO ? (size_t)len : BLOB_IO, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int rc = n < 0 ? -errno : -EIO; /* shorter than we wrote */
            free(buf);
            return rc;
        }
        fn(arg, buf, (size_t)n);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    free(buf);
    return 0;
}

static void to_strbuf(void *arg, const void *data, size_t len)
{
    strbuf_append(arg, data, len);
}

static void to_digest(void *arg, const void *data, size_t len)
{
    digest_sha256_update(arg, data, len);
}

int blob_read(const blob *b, strbuf *out)
{
    int rc = read_range(b, 0, b->len, to_strbuf, out);
    return rc == 0 && out->oom ? -ENOMEM : rc;
}

int blob_tail(const blob *b, size_t max, strbuf *out)
{
    uint64_t off = b->len > max ? b->len - max : 0;
    size_t start = out->len, skip = 0;
    int rc = read_range(b, off, b->len - off, to_strbuf, out);

    if (rc == 0 && out->oom)
        rc = -ENOMEM;
    if (rc < 0 || off == 0)
        return rc;
    /* Cut into a character? Drop its continuation bytes (at most 3). */
    while (skip < 3 && start + skip < out->len && ((unsigned char)out->data[start + skip] & 0xC0) == 0x80)
        skip++;
    if (skip) {
        memmove(out->data + start, out->data + start + skip, out->len - start - skip + 1);
        out->len -= skip;
    }
    return 0;
}

int blob_sha256(blob *b, char out[DIGEST_SHA256_HEX_LEN + 1])
{
    digest_sha256_ctx *c;
    int rc;

    if (!b->sha256[0]) {
        if (!(c = digest_sha256_begin()))
            return -ENOMEM;
        rc = read_range(b, 0, b->len, to_digest, c);
        digest_sha256_end_hex(c, b->sha256);
        if (rc < 0 || !b->sha256[0]) {
            b->sha256[0] = '\0';
            return rc < 0 ? rc : -EIO;
        }
    }
    memcpy(out, b->sha256, sizeof b->sha256);
    return 0;
}

void blob_free(blob *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
}
