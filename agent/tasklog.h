/* tasklog.h — a task's log: a spill file that keeps every line, and live log_stream frames that may be lost.
 *
 * DESIGN §4.4 and ref §3.9. Every line of a run — terraform's stdout and stderr, the agent's own lines, stage
 * markers — is appended to the spill file ({workdir}/.iac-task.log, mode 0600) and offered to the live stream as
 * one log_stream frame. The two have different promises:
 *
 *   spill  complete. Writes are buffered (64 KiB) and flushed at every stage end, on tasklog_flush() and at close.
 *          A failed write is counted and reported once in the agent's log; the bytes of that write are lost, the
 *          task goes on (a full disk must not crash the agent).
 *   live   best effort, bounded. A frame is handed to the caller's sink at once; when the sink refuses it (the
 *          socket is down or its bounded queue is full) the frame is dropped and counted — or before it is even
 *          built, when the sink's probe (tasklog_opts.ready) says it would refuse. There is no second queue
 *          here: the C&C writer's queue (wsc: 256 messages / 4 MiB) is the one bound, and a frame that cannot go
 *          now is stale anyway. The executor's sink should also refuse when that queue is more than about half
 *          full (cc_queued()), so that a chatty task never crowds out heartbeats and task reports.
 *
 * The full text is uploaded at the end by streaming the spill file as a JSON string (tasklog_reader below), never
 * by holding it in memory: memory stays bounded whatever terraform prints.
 *
 * Formats (ref §3.9): a stage marker is "========== <STAGE IN UPPER CASE> BEGIN at YYYY-MM-DD HH:MM:SS.mmm
 * ==========" (or END); an agent line is "[HH:MM:SS.mmm] [LEVEL] text", LEVEL one of DEBUG INFO WARN ERROR, and
 * DEBUG lines are left out (upstream's agent-mode threshold is INFO). Times are local time, as upstream prints them
 * (UTC on a pod); a frame's `timestamp` is RFC 3339 UTC with milliseconds. `line_num` is a per-task counter: the
 * n-th line written to the log carries n (output, agent lines and markers alike, whether or not its frame was
 * sent); `completed` carries the count so far.
 *
 * Ownership: the caller owns the tasklog (tasklog_open / tasklog_close). No I/O besides the spill file and the sink;
 * no loop needed. */
#ifndef IAC_AGENT_TASKLOG_H
#define IAC_AGENT_TASKLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iac/log.h"
#include "iac/proto.h"

#define TASKLOG_FILE ".iac-task.log"
#define TASKLOG_FRAME_LINE_MAX (64 * 1024) /* a live frame carries at most this much of its line (spill: all) */

typedef struct tasklog tasklog;

/* Offered one frame, valid during the call only (its line points into the tasklog's own buffer: the sink must not
 * write to the same tasklog meanwhile). Returns 0 when it took it (e.g. cc_send() == 0), else non-zero. */
typedef int (*tasklog_send_fn)(const proto_log_stream *m, void *arg);
/* Asked before a frame is built, with send_arg: false when the sink would refuse a frame now (its queue is full or
 * the socket is down). */
typedef bool (*tasklog_ready_fn)(void *arg);
/* Unix time in milliseconds. */
typedef int64_t (*tasklog_clock_fn)(void *arg);

typedef struct {
    uint64_t         task_id;
    tasklog_send_fn  send;      /* NULL: no live stream (frames are neither sent nor counted as dropped) */
    void            *send_arg;
    tasklog_ready_fn ready;     /* NULL: every frame is built and offered to send. Else a frame it is not ready for
                                 * is counted as dropped without being built (no clock read, no timestamp, no call
                                 * to send): when terraform floods, nearly every frame is one of those. */
    tasklog_clock_fn clock;     /* NULL: the real clock (tests pass a fixed one) */
    void            *clock_arg;
} tasklog_opts;

typedef struct {
    uint64_t lines;          /* lines written (line_num of the last one) */
    uint64_t frames_sent;
    uint64_t frames_dropped; /* refused by the sink */
    uint64_t write_errors;   /* failed writes to the spill file */
    int      first_error;    /* -errno of the first failed write, else 0 */
} tasklog_stats;

#define TASKLOG_MODE 0600 /* the spill file's */

/* Creates (or truncates) the spill file at path, mode TASKLOG_MODE. 0 and *out, or a negative errno. */
int tasklog_open(const char *path, const tasklog_opts *opts, tasklog **out);

/* One line of output (len bytes, no trailing newline) at stage (NULL → the current stage). Frame type `output`. */
void tasklog_line(tasklog *t, const char *stage, const char *text, size_t len);

/* A stage marker: begin makes `stage` the current stage; end also flushes the spill. Frame type `stage_marker`
 * with status "begin" or "end". */
void tasklog_stage(tasklog *t, const char *stage, bool begin);

/* An agent line "[HH:MM:SS.mmm] [LEVEL] text" (frame type `output`). Registered secrets are redacted (log.h);
 * the text is cut at 16 KiB. LOG_DEBUG lines are left out. */
void tasklog_agent_line(tasklog *t, log_level level, const char *text);
void tasklog_agent_linef(tasklog *t, log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The `completed` frame (empty line; live only, ref §3.9): once, when a plan or apply succeeded. */
void tasklog_completed(tasklog *t);

/* Writes the buffered lines to the spill file (do this before reading it). 0, or the -errno of this flush. */
int tasklog_flush(tasklog *t);

uint64_t tasklog_dropped(const tasklog *t);
const tasklog_stats *tasklog_get_stats(const tasklog *t);

/* Flushes, closes and frees. Returns 0, or the first write error of the whole log (-errno). NULL → 0. */
int tasklog_close(tasklog *t);

/* ---- streaming the log as a JSON string -----------------------------------------------------------------------
 *
 * tasklog_reader yields prefix + the spill file as the body of a JSON string + suffix, e.g. prefix
 * `{"phase":"plan","content":"` and suffix `","offset":0,"checksum":""}`, for a request body that is streamed from
 * the file in chunks (libcurl read callback). Escaping is strbuf_json_escape()'s, and invalid UTF-8 becomes
 * \ufffd, one per bad byte, as Go's encoding/json does (so the plane stores what upstream's agent would send).
 * The content is the file as it was at open: lines appended later are not part of this body, so every retry
 * sends the same bytes. A read error ends the content early (the body stays valid JSON) and is reported by
 * tasklog_reader_error(). Memory: two 64 KiB buffers, whatever the file size. */

typedef struct tasklog_reader tasklog_reader;

/* path NULL → empty content. prefix/suffix are copied (NULL → ""). 0 and *out, or a negative errno. */
int tasklog_reader_open(const char *path, const char *prefix, const char *suffix, tasklog_reader **out);
/* Fills up to n bytes of buf; returns how many, 0 at the end. Shaped as a body read callback: arg is the reader. */
size_t tasklog_reader_read(void *buf, size_t n, void *arg);
/* Back to the first byte (a retry). Returns 0. Shaped as a body rewind callback: arg is the reader. */
int tasklog_reader_rewind(void *arg);
/* The body's total length (for Content-Length), found by reading it through once; leaves the reader rewound.
 * A negative errno when the file cannot be read. */
int64_t tasklog_reader_size(tasklog_reader *r);
/* 0, or the -errno that cut the content short. */
int tasklog_reader_error(const tasklog_reader *r);
void tasklog_reader_close(tasklog_reader *r);

#endif
