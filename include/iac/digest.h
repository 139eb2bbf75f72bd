/* digest.h — SHA-256, SHA-1 and base64, in plain C.
 *
 * Used for plan hashes and state checksums (hex SHA-256, ref §7.4), token hashes (base64 of SHA-256, ref §2.2),
 * plan files on the wire (standard base64, ref E8) and the WebSocket handshake (base64 of SHA-1, RFC 6455 §4.2.2).
 * Output buffers are the caller's. None of these can fail: see common/digest.c for why they are not libcrypto's. */
#ifndef IAC_DIGEST_H
#define IAC_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_LEN 32
#define DIGEST_SHA256_HEX_LEN 64
#define DIGEST_SHA1_LEN 20

void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN]);
/* out receives 64 lowercase hex characters and a NUL. */
void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX_LEN + 1]);
/* Hashes a file by streaming it. 0 or -errno. */
int digest_sha256_file_hex(const char *path, char out[DIGEST_SHA256_HEX_LEN + 1]);

/* Incremental SHA-256 for streamed data (logs, downloads). The context is opaque and heap-allocated. */
typedef struct digest_sha256_ctx digest_sha256_ctx;
digest_sha256_ctx *digest_sha256_begin(void);             /* NULL on OOM */
void digest_sha256_update(digest_sha256_ctx *c, const void *data, size_t len);
/* Frees c (NULL: out is ""). */
void digest_sha256_end_hex(digest_sha256_ctx *c, char out[DIGEST_SHA256_HEX_LEN + 1]);

/* SHA-1, for the WebSocket handshake's Sec-WebSocket-Accept only: it is broken as a collision-resistant hash. */
void digest_sha1(const void *data, size_t len, uint8_t out[DIGEST_SHA1_LEN]);

/* Standard base64 with padding. Returns the encoded length; out must hold digest_base64_encoded_len(len) bytes
 * (NUL included). */
size_t digest_base64_encoded_len(size_t len);
size_t digest_base64_encode(const void *data, size_t len, char *out);
/* Decodes standard base64 (padding required, no whitespace). Returns 0 and a malloc'd buffer (*out, caller frees;
 * NUL-terminated for convenience) with *outlen, or -EINVAL on malformed input, -ENOMEM. */
int digest_base64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen);

#endif
