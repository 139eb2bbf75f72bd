/* planjson.h — what the agent reads out of terraform's output: plan JSON, apply progress lines, error blocks.
 *
 * Pure functions, no I/O (ref §7.4 step 5c, §7.7, §7.9):
 *   - change counts from `terraform show -json` (format_version 1.x);
 *   - the E10 `parse-plan-changes` body;
 *   - whether an output really changes (the plan_and_apply "anything to apply?" decision);
 *   - the apply progress line parser and its `resource_status_update` line;
 *   - the `error_message` extractor, streaming: the log lives in a spill file that may be hundreds of megabytes,
 *     so lines are fed one at a time and only the collected error blocks are kept, bounded.
 *
 * Plan JSON is parsed once (planjson_parse or the caller's own cJSON tree) and every reader takes the tree. A
 * root that is not an object, or a `resource_changes` / `output_changes` member of the wrong JSON type, is an
 * error; inside those, an item of an unexpected shape is skipped, as upstream's type assertions skip it. */
#ifndef IAC_AGENT_PLANJSON_H
#define IAC_AGENT_PLANJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "iac/strbuf.h"

/* Parses plan JSON text of len bytes. NULL and a message in err when it is not one JSON object. The caller
 * frees the tree with cJSON_Delete. */
cJSON *planjson_parse(const char *text, size_t len, char *err, size_t errlen);

/* ---- counts (ref §7.4 step 5c) ---------------------------------------------------------------------------------
 * Over resource_changes[].change.actions: each "create" adds one to add, "update" one to change, "delete" one to
 * destroy; a replace (["delete","create"] or ["create","delete"]) therefore counts in add and destroy; "no-op",
 * "read" and unknown strings count nothing. A missing resource_changes (terraform omits it when empty) is zero. */
typedef struct {
    int add;
    int change;
    int destroy;
} planjson_counts;

/* 0, or -1 with a message in err (root not an object, resource_changes not an array). */
int planjson_count(const cJSON *plan, planjson_counts *out, char *err, size_t errlen);

/* ---- E10 body (ref §7.9) ---------------------------------------------------------------------------------------
 * Appends {"resource_changes":[…]} to out, one element per resource change that has an object `change` with an
 * array `actions`, except actions exactly ["no-op"]. Element fields:
 *   action            the single action string; "replace" for ["delete","create"]; "unknown" for anything else
 *                     (several actions, an empty list, a non-string single action)
 *   resource_address  `address`        } "" when absent or not a string (the server stores "" for a
 *   resource_type     `type`           } missing string either way; root-module changes have no
 *   resource_name     `name`           } module_address)
 *   module_address    `module_address` }
 *   changes_before    `change.before`  } copied as they are; null when absent
 *   changes_after     `change.after`   }
 * Written compact with sorted keys and Go's HTML escaping (jsonw JSONW_SORT_KEYS|JSONW_HTML_ESCAPE), which is
 * what Go's json.Marshal of the upstream map produces. An empty list is written as [] (the server treats it like
 * upstream's null: delete the task's rows, insert none). *count is the number of elements. 0, or -1 with a message
 * in err (malformed as for planjson_count, or out of memory; out is then incomplete). */
int planjson_resource_changes(const cJSON *plan, strbuf *out, int *count, char *err, size_t errlen);

/* ---- real output change (ref §7.9) -----------------------------------------------------------------------------
 * *changed = true when an output_changes entry has actions that are not exactly ["no-op"] (missing actions
 * included) and its `before` and `after` differ once both are encoded canonically (sorted keys, numbers as
 * doubles, as Go re-encodes decoded JSON): the same object with its keys in another order is no change.
 * `after_unknown` is not looked at, as upstream does not. 0, or -1 with a message in err. */
int planjson_output_changed(const cJSON *plan, bool *changed, char *err, size_t errlen);

/* ---- apply progress lines (ref §7.9) ---------------------------------------------------------------------------
 * A line, trimmed of ASCII whitespace, that is an address made of [A-Za-z0-9_\-.\[\]"] followed by ':', one or
 * more whitespace characters and one of these prefixes:
 *   Creating...                  applying  create
 *   Modifying...                 applying  update
 *   Destroying...                applying  delete
 *   Creation complete after      completed create
 *   Modifications complete after completed update
 *   Destruction complete after   completed delete
 * Anything may follow the prefix ("Destroying... [id=i-1]"). "Still creating...", addresses with a space, '/' or
 * ':' inside an index key, and everything else do not match. */
typedef struct {
    const char *address;      /* points into the line given to planjson_parse_progress; not NUL-terminated */
    size_t      address_len;
    const char *apply_status; /* "applying" | "completed" (static) */
    const char *action;       /* "create" | "update" | "delete" (static) */
} planjson_progress;

/* true and *out filled when line (len bytes, a trailing newline allowed) is a progress line. */
bool planjson_parse_progress(const char *line, size_t len, planjson_progress *out);

/* Appends the `line` of a resource_status_update stream message (ref §3.9):
 * {"task_id":N,"resource_address":"…","apply_status":"…","action":"…"} in that order, compact. */
void planjson_status_update_json(strbuf *out, uint64_t task_id, const planjson_progress *p);

/* ---- error_message extraction (ref §7.7) -----------------------------------------------------------------------
 * Feed the task log one line at a time. A line that, trimmed, starts with "Error:" or "│ Error:" opens a block;
 * it and the lines after it are collected until a line that starts with '[' (an agent log line, which is not
 * collected). Collected lines lose a trailing "\r" and trailing whitespace, and a leading "│ " (a lone "│" becomes
 * a blank line); the opening line is trimmed first, so it reads "Error: …". Blank lines are kept inside the result;
 * blocks are joined line after line; trailing blank lines are dropped. The text kept is at most `cap` bytes (cut on
 * a UTF-8 character boundary) followed by "…(truncated)"; after that further lines are ignored.
 *
 * The struct is the caller's (stack or embedded); it owns the collected text until finish or free. */
#define PLANJSON_ERRORS_CAP (64 * 1024)

typedef struct {
    strbuf text;      /* collected lines, each followed by '\n' */
    size_t cap;
    bool   in_block;
    bool   truncated;
} planjson_errors;

/* cap 0 means PLANJSON_ERRORS_CAP. */
void planjson_errors_init(planjson_errors *e, size_t cap);
/* One log line of len bytes, without or with its trailing "\n" / "\r\n". */
void planjson_errors_feed(planjson_errors *e, const char *line, size_t len);
/* The extracted message (caller frees), or NULL when no error block was found (the caller then uses its own error
 * text, for example "exit status 1") or memory ran out. Leaves e empty and reusable. */
char *planjson_errors_finish(planjson_errors *e);
/* Drops the collected text (for a caller that gives up before finish). */
void planjson_errors_free(planjson_errors *e);

/* The whole extraction over text of len bytes split on '\n' (tests, and callers holding a short log). */
char *planjson_errors_extract(const char *text, size_t len, size_t cap);

#endif
