/* options.h — the agent's configuration (DESIGN §4.1): upstream environment variables with their meaning
 * unchanged (ref §1.1), our additions, each also a --flag.
 *
 * agent_options_parse() validates everything up front; a bad value yields one message naming the variable, the
 * bad value (never for the token) and what is allowed, and main() exits 2 with it. Strings point into the
 * environment or argv (process lifetime) except `token`, which is a malloc'd copy owned by the struct (it may be
 * replaced after a re-read of the token file): free it with agent_options_free(). */
#ifndef IAC_AGENT_OPTIONS_H
#define IAC_AGENT_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "iac/config.h"

typedef struct {
    const char *endpoint;    /* IAC_API_ENDPOINT: bare host or IP */
    char       *token;       /* IAC_AGENT_TOKEN, or the content of IAC_AGENT_TOKEN_FILE (owned) */
    const char *token_file;  /* IAC_AGENT_TOKEN_FILE or NULL */
    const char *name;        /* IAC_AGENT_NAME */
    bool        https;       /* IAC_AGENT_PROTOCOL == https */
    int64_t     server_port; /* SERVER_PORT */
    int64_t     cc_port;     /* CC_SERVER_PORT, or SERVER_PORT + 10 */
    const char *plugin_cache_dir; /* TF_PLUGIN_CACHE_DIR or NULL */
    const char *ssl_cert_file;    /* SSL_CERT_FILE or NULL */
    int64_t     slots;       /* IAC_AGENT_SLOTS */
    const char *data_dir;    /* IAC_AGENT_DATA_DIR */
    char        listen_host[CFG_HOST_MAX]; /* IAC_AGENT_LISTEN host part */
    int64_t     listen_port; /* IAC_AGENT_LISTEN port part */
    int64_t     reservation_ttl_ms;
    int64_t     task_timeout_ms;
    int64_t     cancel_grace_ms;
    int64_t     drain_timeout_ms;
    int64_t     init_retry_wait_ms;
    int64_t     state_retry_wait_ms; /* first wait between state upload attempts (then 2×, 3×, 4×) */ /* wait before the 2nd init attempt; the 3rd waits twice as long (ref §7.4) */
    const char *engine_path; /* IAC_ENGINE_PATH: a local terraform/tofu binary; no version lookup or download */
    int         log_format;  /* log_format */
    int         log_level;   /* log_level */
} agent_options;

enum { AGENT_OPTIONS_OK = 0, AGENT_OPTIONS_ERR = -1, AGENT_OPTIONS_HELP = 1, AGENT_OPTIONS_VERSION = 2 };

/* Fills o from envp and argv. Returns AGENT_OPTIONS_OK, _HELP, _VERSION, or _ERR with a message in err. */
int agent_options_parse(agent_options *o, int argc, char **argv, char **envp, char *err, size_t errlen);
void agent_options_print_help(FILE *out);

/* Reads the token file again. Returns 1 when the token changed, 0 when it is the same, -1 with a message in err
 * when the file is unreadable or holds no valid token (the old token is kept). */
int agent_options_reload_token(agent_options *o, char *err, size_t errlen);

void agent_options_free(agent_options *o);

#endif
