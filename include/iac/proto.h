/* proto.h — the C&C WebSocket messages: envelope, every message of ref §3.3 and the extensions of DESIGN §6.
 *
 * A frame is one JSON object {"type": "<name>", "payload": {...}}. proto_decode() turns a frame into a proto_msg
 * with strict type checks (a task_id must be a whole JSON number, a string must be a string, required fields must be
 * present); anything else — not JSON, not an object, payload not an object, a field of the wrong type, a frame
 * over PROTO_MAX_FRAME — is an error with a message, never a crash. Unknown types decode successfully as
 * MSG_UNKNOWN (ref §3.2: ignored by both sides); unknown fields are ignored.
 *
 * proto_encode() writes the frame for a message; fields that are optional on the wire (the DESIGN §6 extensions)
 * are written only when set. Pure: no I/O. Strings inside a decoded proto_msg are owned by it and freed by
 * proto_msg_free(); for encoding, the caller fills the struct with pointers it owns (proto_encode copies nothing
 * and frees nothing). */
#ifndef IAC_PROTO_H
#define IAC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX_FRAME (1u << 20) /* 1 MiB: far above any legitimate frame (a log line is cut at 64 KiB) */

typedef enum {
    MSG_UNKNOWN = 0,
    /* plane → agent */
    MSG_RUN_TASK,
    MSG_CANCEL_TASK,
    MSG_REFRESH_CREDENTIALS,
    MSG_START_REALTIME_STREAM,
    MSG_STOP_REALTIME_STREAM,
    MSG_RELEASE_RESERVATION, /* extension */
    MSG_DRAIN,               /* extension */
    MSG_UNDRAIN,             /* extension */
    /* agent → plane */
    MSG_HEARTBEAT,
    MSG_LOG_STREAM,
    MSG_TASK_COMPLETED,
    MSG_TASK_FAILED,
    MSG_CREDENTIALS_REFRESHED,
    MSG_TASK_REJECTED, /* extension */
    MSG_TASK_REQUEST,  /* extension */
    MSG__COUNT
} msg_type;

/* "run_task" etc.; "unknown" for MSG_UNKNOWN. */
const char *proto_type_name(msg_type t);

typedef struct {
    uint64_t task_id;
    char    *workspace_id;
    char    *action;    /* "plan" or "apply"; anything other than "apply" means plan (ref §3.3) */
    char    *task_type; /* extension, NULL when absent */
} proto_run_task;

/* cancel_task, start_realtime_stream, stop_realtime_stream, release_reservation, task_completed. */
typedef struct {
    uint64_t task_id;
} proto_task_ref;

typedef struct {
    char   *pool_id;
    int64_t timestamp; /* Unix seconds */
} proto_refresh_credentials;

typedef struct {
    int      slot_id;
    char    *status;    /* "idle" | "running" | "reserved" */
    uint64_t task_id;   /* 0 when idle (written as null) */
    char    *task_type; /* NULL when idle */
    char    *action;    /* NULL when idle */
    int64_t  since;     /* Unix seconds of the last status change */
} proto_slot;

typedef struct {
    int64_t    plan_running;
    int64_t    plan_limit;
    bool       apply_running;
    uint64_t  *current_tasks; /* n_current_tasks entries */
    size_t     n_current_tasks;
    bool       current_tasks_null; /* written/read as JSON null (no task has run yet) */
    double     cpu_usage;
    double     mem_usage;
    char      *status;        /* "ok" */
    int64_t    timestamp;     /* Unix seconds */
    /* extensions (absent on decode → NULL / 0) */
    proto_slot *slots;
    size_t      n_slots;
    bool        has_slots;
    char       *state;         /* "ready" | "draining" */
    char       *agent_version;
    char      **capabilities;
    size_t      n_capabilities;
} proto_heartbeat;

typedef struct {
    uint64_t task_id;
    char    *type;      /* "output" | "stage_marker" | "completed" | "error" | "resource_status_update" */
    char    *line;
    char    *timestamp; /* RFC 3339 */
    int64_t  line_num;
    char    *stage;
    char    *status;
} proto_log_stream;

typedef struct {
    uint64_t task_id;
    char    *error;
} proto_task_failed;

typedef struct {
    char   *agent_id;
    char   *pool_id;
    int64_t timestamp;
    int64_t count;
} proto_credentials_refreshed;

typedef struct {
    uint64_t task_id;
    char    *action;
    char    *reason;
} proto_task_rejected;

typedef struct {
    int64_t   free_plan_and_apply;
    int64_t   free_plan;
    uint64_t *reserved; /* task ids holding a reservation here */
    size_t    n_reserved;
} proto_task_request;

typedef struct {
    msg_type type;
    char    *type_name; /* the type string as received (decode only; owned) */
    union {
        proto_run_task              run_task;
        proto_task_ref              task_ref;
        proto_refresh_credentials   refresh_credentials;
        proto_heartbeat             heartbeat;
        proto_log_stream            log_stream;
        proto_task_failed           task_failed;
        proto_credentials_refreshed credentials_refreshed;
        proto_task_rejected         task_rejected;
        proto_task_request          task_request;
    } u; /* drain/undrain/unknown carry nothing */
} proto_msg;

enum {
    PROTO_OK = 0,
    PROTO_E_TOOBIG = -1,   /* frame larger than PROTO_MAX_FRAME */
    PROTO_E_JSON = -2,     /* not JSON, or not an object */
    PROTO_E_ENVELOPE = -3, /* type missing / not a string, payload missing / not an object */
    PROTO_E_FIELD = -4,    /* a payload field is missing or of the wrong type */
    PROTO_E_NOMEM = -5,
};

/* Decodes one frame of len bytes. On success returns PROTO_OK and fills *out (free with proto_msg_free). On error
 * returns a PROTO_E_* code, writes a message naming the field ("run_task: task_id: expected a whole number, got
 * string") into err, and leaves *out empty (safe to free). */
int proto_decode(const char *frame, size_t len, proto_msg *out, char *err, size_t errlen);

/* Encodes m as a frame. Returns a malloc'd NUL-terminated string (caller frees) and *len, or NULL on OOM or for
 * MSG_UNKNOWN. */
char *proto_encode(const proto_msg *m, size_t *len);

void proto_msg_free(proto_msg *m);

#endif
