/* digest.c — SHA-256 and base64 on libcrypto; see digest.h.
 *
 * SHA-256 goes through OpenSSL's low-level SHA256_* functions, not EVP. In OpenSSL 3 the first EVP digest builds
 * the default library context and loads the default provider: about 1.9 MiB that an agent then holds for the rest
 * of its life, against about 0.5 MiB for the low-level code (bench/README.md, "what each library costs"). They are
 * marked deprecated in 3.0 but remain part of its API; should a later OpenSSL drop them, EVP_Digest* is the
 * drop-in replacement. Base64 uses EVP_EncodeBlock/EVP_DecodeBlock, which need no provider either.
 *
 * EVP_DecodeBlock() is lenient (it skips surrounding whitespace) and counts padding as decoded zero bytes, so the
 * decoder validates the input itself first — alphabet, length, where '=' may stand — and computes the decoded
 * length from the padding. Both EVP block functions take an int length; longer inputs go through in chunks. */
#define OPENSSL_SUPPRESS_DEPRECATED /* the SHA256_* functions: see above */

#include "iac/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

struct digest_sha256_ctx {
    SHA256_CTX sha;
    bool       failed; /* a call failed: the result is reported as no digest ("") */
};

static void to_hex(const uint8_t *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
}

void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN])
{
    SHA256_CTX sha;
    if (SHA256_Init(&sha) != 1 || SHA256_Update(&sha, len ? data : "", len) != 1 || SHA256_Final(out, &sha) != 1)
        memset(out, 0, DIGEST_SHA256_LEN);
}

void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX_LEN + 1])
{
    uint8_t md[DIGEST_SHA256_LEN];
    digest_sha256(data, len, md);
    to_hex(md, sizeof md, out);
}

digest_sha256_ctx *digest_sha256_begin(void)
{
    digest_sha256_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (SHA256_Init(&c->sha) != 1)
        c->failed = true;
    return c;
}

void digest_sha256_update(digest_sha256_ctx *c, const void *data, size_t len)
{
    if (!c || c->failed || len == 0)
        return;
    if (SHA256_Update(&c->sha, data, len) != 1)
        c->failed = true;
}

void digest_sha256_end_hex(digest_sha256_ctx *c, char out[DIGEST_SHA256_HEX_LEN + 1])
{
    uint8_t md[DIGEST_SHA256_LEN];
    out[0] = '\0';
    if (!c)
        return;
    if (!c->failed && SHA256_Final(md, &c->sha) == 1)
        to_hex(md, sizeof md, out);
    OPENSSL_cleanse(&c->sha, sizeof c->sha);
    free(c);
}

int digest_sha256_file_hex(const char *path, char out[DIGEST_SHA256_HEX_LEN + 1])
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    digest_sha256_ctx *c = digest_sha256_begin();
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    uint8_t buf[65536];
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        digest_sha256_update(c, buf, (size_t)n);
    }
    close(fd);
    digest_sha256_end_hex(c, out);
    if (r == 0 && out[0] == '\0')
        r = -EIO;
    if (r < 0)
        out[0] = '\0';
    return r;
}

/* ---- base64 ---- */

/* Largest input per EVP call: a multiple of 3 bytes (encode) and of 4 characters (decode) that fits in an int. */
#define B64_CHUNK_BYTES (3u * (1u << 28))
#define B64_CHUNK_CHARS (4u * (1u << 28))

size_t digest_base64_encoded_len(size_t len) { return (len + 2) / 3 * 4 + 1; }

size_t digest_base64_encode(const void *data, size_t len, char *out)
{
    const unsigned char *in = data;
    size_t o = 0;
    out[0] = '\0';
    while (len > 0) {
        size_t n = len < B64_CHUNK_BYTES ? len : B64_CHUNK_BYTES;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, in, (int)n);
        in += n;
        len -= n;
    }
    return o;
}

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int digest_base64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (len % 4 != 0 || (len && !in))
        return -EINVAL;
    /* '=' may only end the input: "xx==" or "xxx=". */
    size_t pad = 0;
    if (len >= 4 && in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char((unsigned char)in[i]))
            return -EINVAL;

    size_t full = len / 4 * 3;
    uint8_t *buf = malloc(full + 1);
    if (!buf)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = len - i < B64_CHUNK_CHARS ? len - i : B64_CHUNK_CHARS;
        int got = EVP_DecodeBlock(buf + o, (const unsigned char *)in + i, (int)n);
        if (got < 0 || (size_t)got != n / 4 * 3) {
            free(buf);
            return -EINVAL;
        }
        o += (size_t)got;
        i += n;
    }
    *outlen = full - pad;
    buf[*outlen] = '\0'; /* a convenience for text payloads; the length is what counts */
    *out = buf;
    return 0;
}
