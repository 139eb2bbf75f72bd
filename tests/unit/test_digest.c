/* test_digest.c — SHA-256 (one-shot, incremental, file) against published vectors and against libcrypto (which the
 * module no longer uses, so the test can hold it to the reference) for every length across the padding boundaries,
 * SHA-1 against RFC 3174 and the RFC 6455 handshake example, and base64 against RFC 4648, round trips of every
 * length up to 64, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "iac/digest.h"

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_448 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define MSG_448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"

/* One-shot SHA-256 matches the FIPS 180-2 vectors, in raw and hex form. */
static void sha256_matches_known_vectors(void **state)
{
    (void)state;
    char hex[DIGEST_SHA256_HEX_LEN + 1];
    digest_sha256_hex("", 0, hex);
    assert_string_equal(hex, SHA_EMPTY);
    digest_sha256_hex(NULL, 0, hex);
    assert_string_equal(hex, SHA_EMPTY);
    digest_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, SHA_ABC);
    digest_sha256_hex(MSG_448, strlen(MSG_448), hex);
    assert_string_equal(hex, SHA_448);

    uint8_t raw[DIGEST_SHA256_LEN];
    digest_sha256("abc", 3, raw);
    assert_int_equal(raw[0], 0xba);
    assert_int_equal(raw[31], 0xad);
}

/* A million 'a's (FIPS 180-2's long vector), fed in uneven pieces: the byte count crosses many blocks. */
static void sha256_matches_the_million_a_vector(void **state)
{
    (void)state;
    char a[1000], got[DIGEST_SHA256_HEX_LEN + 1];
    memset(a, 'a', sizeof a);
    digest_sha256_ctx *c = digest_sha256_begin();
    assert_non_null(c);
    size_t left = 1000000;
    for (size_t piece = 1; left > 0; piece = piece % 997 + 1) {
        size_t n = piece < left ? piece : left;
        digest_sha256_update(c, a, n);
        left -= n;
    }
    digest_sha256_end_hex(c, got);
    assert_string_equal(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every length from 0 to 300 bytes (the 55/56/64-byte padding edges several times over) hashes as libcrypto does. */
static void sha256_equals_libcrypto_for_every_length_to_300(void **state)
{
    (void)state;
    uint8_t data[300], mine[DIGEST_SHA256_LEN], ref[EVP_MAX_MD_SIZE];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 131 + 17);
    for (size_t len = 0; len <= sizeof data; len++) {
        unsigned reflen = 0;
        assert_int_equal(EVP_Digest(data, len, ref, &reflen, EVP_sha256(), NULL), 1);
        digest_sha256(data, len, mine);
        assert_int_equal(reflen, DIGEST_SHA256_LEN);
        assert_memory_equal(mine, ref, DIGEST_SHA256_LEN);
    }
}

/* SHA-1 matches RFC 3174's vectors, and gives the Sec-WebSocket-Accept of RFC 6455 §1.3's example key. */
static void sha1_matches_rfc3174_and_the_websocket_example(void **state)
{
    (void)state;
    static const struct { const char *in; const char *hex; } v[] = {
        { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
        { MSG_448, "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
        { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t md[DIGEST_SHA1_LEN];
        char hex[2 * DIGEST_SHA1_LEN + 1];
        digest_sha1(v[i].in, strlen(v[i].in), md);
        for (size_t j = 0; j < sizeof md; j++)
            snprintf(hex + 2 * j, 3, "%02x", md[j]);
        assert_string_equal(hex, v[i].hex);
    }
    const char *keyed = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t md[DIGEST_SHA1_LEN];
    char accept[64];
    digest_sha1(keyed, strlen(keyed), md);
    digest_base64_encode(md, sizeof md, accept);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* Incremental hashing gives the one-shot digest however the input is split. */
static void incremental_equals_one_shot_for_every_split(void **state)
{
    (void)state;
    uint8_t data[200];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    char want[DIGEST_SHA256_HEX_LEN + 1], got[DIGEST_SHA256_HEX_LEN + 1];
    digest_sha256_hex(data, sizeof data, want);
    for (size_t cut = 0; cut <= sizeof data; cut++) {
        digest_sha256_ctx *c = digest_sha256_begin();
        assert_non_null(c);
        digest_sha256_update(c, data, cut);
        digest_sha256_update(c, data + cut, sizeof data - cut);
        digest_sha256_end_hex(c, got);
        assert_string_equal(got, want);
    }
    digest_sha256_ctx *c = digest_sha256_begin();
    digest_sha256_end_hex(c, got); /* nothing fed: the empty digest */
    assert_string_equal(got, SHA_EMPTY);
}

/* Hashing a file streams it (larger than the read buffer) and matches the one-shot digest of its content. */
static void file_digest_matches_content_digest(void **state)
{
    (void)state;
    char path[] = "/tmp/iac-test-digest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = 200003;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i ^ (i >> 8));
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);

    char want[DIGEST_SHA256_HEX_LEN + 1], got[DIGEST_SHA256_HEX_LEN + 1];
    digest_sha256_hex(buf, n, want);
    assert_int_equal(digest_sha256_file_hex(path, got), 0);
    assert_string_equal(got, want);

    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    assert_int_equal(digest_sha256_file_hex(path, got), 0);
    assert_string_equal(got, SHA_EMPTY);
    unlink(path);
    assert_int_equal(digest_sha256_file_hex(path, got), -ENOENT);
    assert_string_equal(got, "");
    assert_int_equal(digest_sha256_file_hex("/tmp", got), -EISDIR);
    free(buf);
}

/* Base64 encoding and decoding match the RFC 4648 §10 test vectors. */
static void base64_matches_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const v[][2] = {
        { "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },        { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len = strlen(v[i][0]);
        char out[16];
        assert_int_equal(digest_base64_encoded_len(len), strlen(v[i][1]) + 1);
        assert_int_equal(digest_base64_encode(v[i][0], len, out), strlen(v[i][1]));
        assert_string_equal(out, v[i][1]);

        uint8_t *dec = NULL;
        size_t declen = 99;
        assert_int_equal(digest_base64_decode(v[i][1], strlen(v[i][1]), &dec, &declen), 0);
        assert_non_null(dec);
        assert_int_equal(declen, len);
        assert_memory_equal(dec, v[i][0], len);
        free(dec);
    }
}

/* Every length from 0 to 64, with every byte value in play, survives encode then decode. */
static void base64_round_trips_lengths_0_to_64(void **state)
{
    (void)state;
    uint8_t data[64];
    for (size_t len = 0; len <= 64; len++) {
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t)(255 - i * 37 - len);
        char *enc = malloc(digest_base64_encoded_len(len));
        assert_non_null(enc);
        size_t elen = digest_base64_encode(data, len, enc);
        assert_int_equal(elen, digest_base64_encoded_len(len) - 1);
        assert_int_equal(strlen(enc), elen);
        uint8_t *dec;
        size_t dlen;
        assert_int_equal(digest_base64_decode(enc, elen, &dec, &dlen), 0);
        assert_int_equal(dlen, len);
        if (len)
            assert_memory_equal(dec, data, len);
        free(dec);
        free(enc);
    }
}

/* Malformed input — wrong length, characters outside the alphabet, whitespace, misplaced padding, URL-safe
 * characters — is refused with -EINVAL and nothing allocated. */
static void base64_rejects_malformed_input(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Z",       "Zg",      "Zg=",      "Zm9vY",   "Zg=A",   "Z===",     "====",   "=Zg=",   "Zm=v",
        "Zg==Zg==", "Zm9v\n", " Zm9v",    "Zm9v ",   "Zm9*",   "Zm9-",     "Zm9_",   "Zm9vYg=\n", "Zg\r\n==",
        "Zm9vYmFy====",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *out = (uint8_t *)0x1;
        size_t outlen = 99;
        assert_int_equal(digest_base64_decode(bad[i], strlen(bad[i]), &out, &outlen), -EINVAL);
        assert_null(out);
        assert_int_equal(outlen, 0);
    }
    uint8_t *out;
    size_t outlen;
    assert_int_equal(digest_base64_decode("Zm\0v", 4, &out, &outlen), -EINVAL); /* an embedded NUL */
    assert_int_equal(digest_base64_decode(NULL, 4, &out, &outlen), -EINVAL);
    assert_int_equal(digest_base64_decode("Zm9vYmFy", 4, &out, &outlen), 0); /* only len bytes are read */
    assert_int_equal(outlen, 3);
    assert_memory_equal(out, "foo", 3);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_known_vectors),
        cmocka_unit_test(sha256_matches_the_million_a_vector),
        cmocka_unit_test(sha256_equals_libcrypto_for_every_length_to_300),
        cmocka_unit_test(sha1_matches_rfc3174_and_the_websocket_example),
        cmocka_unit_test(incremental_equals_one_shot_for_every_split),
        cmocka_unit_test(file_digest_matches_content_digest),
        cmocka_unit_test(base64_matches_rfc4648_vectors),
        cmocka_unit_test(base64_round_trips_lengths_0_to_64),
        cmocka_unit_test(base64_rejects_malformed_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
