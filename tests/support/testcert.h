/* testcert.h — self-signed certificates for the TLS tests, made with OpenSSL at test time.
 *
 * A P-256 key and a certificate valid from a minute ago for an hour, marked as a CA so that it can be trusted on
 * its own (ca_file, SSL_CERT_FILE), with the subject alternative names the test asks for. Shared by the unit tests
 * of the TLS session (test_tls) and of the WebSocket client (test_wsc). */
#ifndef IAC_TEST_TESTCERT_H
#define IAC_TEST_TESTCERT_H

/* Writes the certificate (cn, subjectAltName san such as "DNS:localhost,IP:127.0.0.1") to cert_path and its key to
 * key_path as PEM. 0, or -1 when OpenSSL or a file failed (the caller asserts). */
int testcert_write(const char *cert_path, const char *key_path, const char *cn, const char *san);

#endif
