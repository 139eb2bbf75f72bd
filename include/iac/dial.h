/* dial.h — a TCP connection to host:port on a libuv loop: name lookup, every address in turn, a time limit.
 *
 * What h1 (plain HTTP) and wsc (WebSocket) both need before their first byte. A host name is resolved by
 * getaddrinfo on a thread that lives only as long as the lookup (uv_getaddrinfo would start libuv's pool of four
 * threads and keep them for the life of the process; the agent idles with one thread). An address literal needs
 * no lookup and no thread. Each address the lookup returns is tried in turn until one connects; the time limit
 * covers the lookup and every attempt.
 *
 * Ownership: dial_start() copies host. The connected handle handed to the callback becomes the caller's: it was
 * allocated with malloc, its data field is free for the caller's use, and the caller closes it with uv_close()
 * and frees it in the close callback (free(handle); dial_tcp_closed does just that). After the callback, or after
 * dial_abort(), the dial is gone: no callback runs again and the dial must not be used. The loop must run on
 * after dial_abort(): the handles of an attempt close asynchronously, and a lookup in flight finishes on its
 * thread and is dropped when it reports back. */
#ifndef IAC_DIAL_H
#define IAC_DIAL_H

#include <stdint.h>

#include <uv.h>

typedef struct dial dial;

enum {
    DIAL_OK = 0,
    DIAL_E_RESOLVE = -1, /* the name could not be resolved (or no resolver thread could be started) */
    DIAL_E_CONNECT = -2, /* no address accepted the connection */
    DIAL_E_TIMEOUT = -3, /* connect_timeout_ms passed */
    DIAL_E_NOMEM = -4,
};

/* The end of a dial, on the loop and never from inside dial_start(): DIAL_OK with tcp connected, or a DIAL_E_*
 * with tcp NULL and msg a human text naming host and port ("cannot connect to 127.0.0.1 port 9: connection
 * refused", "cannot resolve nowhere.invalid: Name or service not known", "no connection to 10.0.0.1 port 80
 * within 2000 ms"); msg is valid during the call ("" on success). */
typedef void (*dial_cb)(void *arg, uv_tcp_t *tcp, int error, const char *msg);

/* Starts connecting to host (a name, or an address literal; IPv6 without brackets) on port. connect_timeout_ms 0:
 * no limit of its own. NULL when memory runs out or host is empty; then the callback never runs. */
dial *dial_start(uv_loop_t *loop, const char *host, uint16_t port, uint64_t connect_timeout_ms, dial_cb cb,
                 void *arg);

/* Stops a dial that has not called back yet; its callback never runs. Not from inside that callback. */
void dial_abort(dial *d);

/* A close callback for a handle dial_cb handed over: frees it. */
void dial_tcp_closed(uv_handle_t *h);

#endif
