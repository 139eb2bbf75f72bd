/* ccli.h — `iac-coordinator status` and `iac-coordinator explain TASK_ID`: the coordinator's read API
 * (coordinator/api.h) printed for a person.
 *
 *   iac-coordinator status [--server URL]            GET /v1/pools: per pool a header (pool, namespace/deployment,
 *                                                    replicas current/desired/ready, min–max, decision, config
 *                                                    error) and a table of pods with their slots
 *   iac-coordinator explain TASK_ID [--server URL]   GET /v1/explain?task_id=N: where the task is or why it waits
 *
 * The server is --server, else $IAC_COORD_SERVER, else CCLI_DEFAULT_SERVER (the coordinator's default listen
 * port). Fetching (one request on a private libuv loop with common/httpc) is split from formatting, which is pure
 * (JSON text in, FILE * out, the clock given) and unit-tested on canned documents.
 *
 * Entry point for main.c: before parsing its own flags, if argv[1] is a subcommand (ccli_is_command), return
 * ccli_main(argc - 1, argv + 1). Exit statuses: 0; 1 when the coordinator cannot be reached, answers an error
 * or a document that is not its own (one message on stderr); 2 for bad usage. */
#ifndef IAC_COORD_CCLI_H
#define IAC_COORD_CCLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CCLI_DEFAULT_SERVER "http://127.0.0.1:9190"

/* "status" or "explain". */
bool ccli_is_command(const char *word);

/* argv[0] is the subcommand, then its arguments (TASK_ID, --server URL or --server=URL, -h/--help). Prints to
 * stdout, messages to stderr. Returns the exit status. */
int ccli_main(int argc, char **argv);

/* Fetch and print; messages go to err. server is a base URL ("http://host:port", a trailing '/' is allowed).
 * Return the exit status (0, 1, or 2 for a server that is not an http(s) URL or a task id of 0). */
int ccli_status(const char *server, FILE *out, FILE *err);
int ccli_explain(const char *server, uint64_t task_id, FILE *out, FILE *err);

/* Print a /v1/pools document as `status` does, ages measured at now_ms (epoch ms). 0, or -1 when the document
 * is not the coordinator's shape (nothing useful printed). */
int ccli_format_status(const char *json, size_t len, int64_t now_ms, FILE *out);
/* Print a /v1/explain document's text. 0, or -1 when it has none. */
int ccli_format_explain(const char *json, size_t len, FILE *out);

#endif
