/* tls.h — a TLS client session as a filter between a socket and its user, on OpenSSL's libssl loaded at first use.
 *
 * Why its own module: the agent speaks wss:// only when its plane is https. Linking libssl (directly, or through
 * libwebsockets) costs every start about 2 ms and 1.5 MiB of resident pages although a plain-http agent never
 * uses it (bench/README.md), so libssl.so.3 is loaded with dlopen (common/dynlib) the first time a session is made.
 *
 * The session does no I/O ("sans-I/O"): the caller owns the socket. Bytes read from the socket go in with
 * tls_session_input(); decrypted bytes come out of tls_session_read(); plaintext to send goes in with
 * tls_session_write(); and whatever the session wants on the wire (handshake records, encrypted data, alerts) comes
 * out of tls_session_output(), which the caller writes to the socket after every call that may have produced some
 * (new, input, read, write, close). The handshake runs inside those calls; tls_session_ready() tells when it is
 * done. Plaintext written before that is kept and encrypted once the handshake completes.
 *
 * Verification is always on: the peer's chain must lead to a trusted CA (ca_file, else $SSL_CERT_FILE if set, else
 * the system store) and its certificate must name host (a DNS name, or an IP address literal matched against the
 * certificate's IP SANs). A DNS name is also sent as SNI. TLS 1.2 or newer.
 *
 * Failures are final: after a TLS_E_HANDSHAKE, TLS_E_PROTOCOL or TLS_E_NOMEM from input, read or write, those calls
 * all return that code again and tls_session_error() keeps its text; tls_session_output() still hands out what was
 * queued (an alert for the peer), and the caller then drops the connection.
 *
 * Ownership: the session is the caller's (tls_session_free). Strings passed in are copied. Not thread-safe: one
 * session is used by one thread at a time; sessions on different threads are independent (libssl's own locking).
 * The library is loaded once per process, whichever thread comes first (a once-guard), and stays loaded for the
 * life of the process; a failed load is not retried. */
#ifndef IAC_TLS_H
#define IAC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "iac/strbuf.h"

typedef struct tls_session tls_session;

enum {
    TLS_OK = 0,
    TLS_E_LOAD = -1,      /* libssl could not be loaded or lacks a function we need */
    TLS_E_CONFIG = -2,    /* the CA file could not be read, or the context could not be set up */
    TLS_E_HANDSHAKE = -3, /* the handshake failed: untrusted or mismatched certificate, no common protocol, alert */
    TLS_E_PROTOCOL = -4,  /* a broken record or alert after the handshake */
    TLS_E_CLOSED = -5,    /* read: the peer sent close_notify, no more plaintext will come; write: after close */
    TLS_E_NOMEM = -6,
};

/* A client session for host (a DNS name or an IP literal, without brackets). ca_file: an extra PEM bundle trusted
 * instead of the default store, or NULL. NULL with a message in err on failure ("cannot load libssl.so.3 (package
 * libssl3), which wss:// needs: …", "cannot read CA file /x.pem: …"). The ClientHello is ready in
 * tls_session_output() when this returns. */
tls_session *tls_session_new(const char *host, const char *ca_file, char *err, size_t errlen);

/* Bytes received from the socket (all are taken). Advances the handshake. TLS_OK or a negative TLS_E_*. */
int tls_session_input(tls_session *s, const char *p, size_t n);

/* Decrypted bytes into buf (up to cap): their count (> 0); 0 when none is available now (more input needed, or
 * cap is 0); TLS_E_CLOSED once the peer closed the session, on this and every later read; another TLS_E_* on failure
 * (see tls_session_error). Advances the handshake too, so a caller that feeds input calls this until it returns 0
 * or less. */
ssize_t tls_session_read(tls_session *s, char *buf, size_t cap);

/* Plaintext to send (all of it is taken; kept until the handshake is done). TLS_OK, TLS_E_CLOSED after
 * tls_session_close(), or another negative TLS_E_*. Writing after the peer's close_notify is allowed (TLS 1.3
 * half-close); whether the peer still reads is the peer's business. */
int tls_session_write(tls_session *s, const char *p, size_t n);

/* Moves every byte the session wants to send into out (appended). 0, or TLS_E_NOMEM when out could not grow (out is
 * then marked oom and the bytes stay in the session for a later call). */
int tls_session_output(tls_session *s, strbuf *out);

/* Whether the handshake has completed. */
bool tls_session_ready(const tls_session *s);

/* Queues a close_notify alert after any plaintext still waiting (send it with tls_session_output). Idempotent.
 * Before the handshake completes, or after a failure, there is nothing to send: plaintext still waiting is dropped
 * and the caller just closes the socket. The peer's own close_notify is not awaited. */
void tls_session_close(tls_session *s);

/* A human text for the last failure ("certificate verify failed: self-signed certificate", "handshake: wrong
 * version number"); "" when none. Valid until the next call on s. */
const char *tls_session_error(const tls_session *s);

/* Frees the session (NULL: nothing); plaintext it still held is wiped first. Sends nothing. */
void tls_session_free(tls_session *s);

#endif
