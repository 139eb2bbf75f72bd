/* digest.c — SHA-256, SHA-1 and base64 in plain C; see digest.h.
 *
 * Why not libcrypto: these are the agent's only uses of it, and linking libcrypto costs every start of a
 * plain-http agent about 1 ms and 1.4 MiB of resident pages (its relocations alone are 0.4 MiB; bench/README.md,
 * "what each library costs"). The functions are small, exact and checked against the FIPS 180-4 and RFC 4648 test
 * vectors in tests/unit/test_digest.c; none can fail, so their callers have no error path to get wrong. Speed is
 * not an issue on the agent's inputs (a state file, a plan file, an engine zip once per version): about 300 MB/s
 * at -O2.
 *
 * The base64 decoder is strict about form (padding required, no whitespace, '=' only at the end) and, like Go's
 * StdEncoding and the EVP decoder it replaces, ignores the unused low bits of the last character. */
#include "iac/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- SHA-256 (FIPS 180-4 §6.2) and SHA-1 (§6.1): one block buffer and length, a compression function each ---- */

typedef struct {
    uint32_t h[8];
    uint64_t total; /* bytes hashed */
    uint8_t  block[64];
    size_t   used;  /* bytes in block */
} md_state;

typedef void (*md_compress)(uint32_t *h, const uint8_t *block);

static uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }
static uint32_t rotl(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha256_compress(uint32_t *h, const uint8_t *block)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[t] + w[t];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

static void sha1_compress(uint32_t *h, const uint8_t *block)
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 80; t++)
        w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void md_update(md_state *s, md_compress compress, const uint8_t *p, size_t len)
{
    s->total += len;
    if (s->used) {
        size_t n = 64 - s->used < len ? 64 - s->used : len;
        memcpy(s->block + s->used, p, n);
        s->used += n;
        p += n;
        len -= n;
        if (s->used < 64)
            return;
        compress(s->h, s->block);
        s->used = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        compress(s->h, p);
    memcpy(s->block, p, len);
    s->used = len;
}

/* Padding of §5.1.1 (the same for both), then the first words of h, big-endian, into out. */
static void md_final(md_state *s, md_compress compress, uint8_t *out, size_t words)
{
    uint64_t bits = s->total * 8;
    s->block[s->used++] = 0x80;
    if (s->used > 56) {
        memset(s->block + s->used, 0, 64 - s->used);
        compress(s->h, s->block);
        s->used = 0;
    }
    memset(s->block + s->used, 0, 56 - s->used);
    store_be32(s->block + 56, (uint32_t)(bits >> 32));
    store_be32(s->block + 60, (uint32_t)bits);
    compress(s->h, s->block);
    for (size_t i = 0; i < words; i++)
        store_be32(out + 4 * i, s->h[i]);
}

static void sha256_init(md_state *s)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memset(s, 0, sizeof *s);
    memcpy(s->h, iv, sizeof iv);
}

struct digest_sha256_ctx {
    md_state md;
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
    md_state s;
    sha256_init(&s);
    if (len)
        md_update(&s, sha256_compress, data, len);
    md_final(&s, sha256_compress, out, 8);
}

void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX_LEN + 1])
{
    uint8_t md[DIGEST_SHA256_LEN];
    digest_sha256(data, len, md);
    to_hex(md, sizeof md, out);
}

digest_sha256_ctx *digest_sha256_begin(void)
{
    digest_sha256_ctx *c = malloc(sizeof *c);
    if (c)
        sha256_init(&c->md);
    return c;
}

void digest_sha256_update(digest_sha256_ctx *c, const void *data, size_t len)
{
    if (c && len)
        md_update(&c->md, sha256_compress, data, len);
}

void digest_sha256_end_hex(digest_sha256_ctx *c, char out[DIGEST_SHA256_HEX_LEN + 1])
{
    uint8_t md[DIGEST_SHA256_LEN];
    out[0] = '\0';
    if (!c)
        return;
    md_final(&c->md, sha256_compress, md, 8);
    to_hex(md, sizeof md, out);
    free(c);
}

void digest_sha1(const void *data, size_t len, uint8_t out[DIGEST_SHA1_LEN])
{
    static const uint32_t iv[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
    md_state s;
    memset(&s, 0, sizeof s);
    memcpy(s.h, iv, sizeof iv);
    if (len)
        md_update(&s, sha1_compress, data, len);
    md_final(&s, sha1_compress, out, 5);
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

/* ---- base64 (RFC 4648 §4) ---- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t digest_base64_encoded_len(size_t len) { return (len + 2) / 3 * 4 + 1; }

size_t digest_base64_encode(const void *data, size_t len, char *out)
{
    const uint8_t *in = data;
    size_t o = 0, i = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i > 0) {
        uint32_t v = (uint32_t)in[i] << 16 | (len - i > 1 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = len - i > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* The 6-bit value of c, or -1 for a character outside the alphabet ('=' included). */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
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
    size_t n = len / 4 * 3 - pad;
    uint8_t *buf = malloc(n + 1);
    if (!buf)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int digits = i + 4 == len ? 4 - (int)pad : 4;
        uint32_t v = 0;
        for (int j = 0; j < 4; j++) {
            int d = j < digits ? b64_value((unsigned char)in[i + j]) : 0;
            if (d < 0) {
                free(buf);
                return -EINVAL;
            }
            v = v << 6 | (uint32_t)d;
        }
        for (int j = 0; j < digits - 1; j++)
            buf[o++] = (uint8_t)(v >> (16 - 8 * j));
    }
    buf[n] = '\0'; /* a convenience for text payloads; the length is what counts */
    *outlen = n;
    *out = buf;
    return 0;
}
