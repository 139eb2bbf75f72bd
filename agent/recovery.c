/* recovery.c — orphaned work directories and the reports owed after a restart; see recovery.h.
 *
 * Cleaning walks two levels with directory descriptors opened O_NOFOLLOW, looks at every entry with
 * fstatat(AT_SYMLINK_NOFOLLOW) and removes with fs_rm_rf (which removes a link as a link), so a symbolic link
 * planted anywhere under workspaces/ can never make us delete something outside it.
 *
 * Reporting keeps one entry per task being reported: a request in flight, or a PUT already accepted whose frame
 * could not be queued yet. The entry is what makes a second recovery_report() harmless. */
#include "recovery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "iac/fsutil.h"
#include "iac/log.h"
#include "iac/strbuf.h"

#define REC_BASE_URL_MAX 512

/* ---- orphaned work directories ----------------------------------------------------------------------------- */

/* A work directory name is a task id: decimal digits, no sign, no leading zero, not 0. */
static bool rec_task_id(const char *name, uint64_t *out)
{
    uint64_t v = 0;
    if (name[0] < '1' || name[0] > '9')
        return false;
    for (const char *p = name; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

/* An entry of workspaces/<ws>/ is kept only when it is a real directory named after a task that holds a slot. */
static bool rec_keep(int dirfd, const char *name, const slot_table *slots)
{
    uint64_t id;
    struct stat st;
    return rec_task_id(name, &id) && slots_find(slots, id) >= 0 &&
           fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static int rec_remove(const char *dir, const char *name)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return 0;
    int rc = fs_rm_rf(path);
    if (rc < 0) {
        log_warn("recovery", "cannot remove orphaned %s: %s", path, strerror(-rc));
        return 0;
    }
    log_info("recovery", "removed orphaned work directory %s", path);
    return 1;
}

/* Opens a directory without following a link in its last component. */
static DIR *rec_opendir(int at, const char *path)
{
    int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d)
        close(fd);
    return d;
}

/* Cleans one workspaces/<ws> directory; *kept counts what stays in it. */
static int rec_clean_workspace(DIR *root, const char *root_path, const char *ws, const slot_table *slots, int *kept)
{
    char path[PATH_MAX];
    int removed = 0;
    *kept = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", root_path, ws) >= sizeof path) {
        (*kept)++;
        return 0;
    }
    DIR *d = rec_opendir(dirfd(root), ws);
    if (!d) {
        log_warn("recovery", "cannot read %s: %s", path, strerror(errno));
        (*kept)++;
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (rec_keep(dirfd(d), de->d_name, slots)) {
            (*kept)++;
            continue;
        }
        int n = rec_remove(path, de->d_name);
        removed += n;
        *kept += !n;
    }
    closedir(d);
    return removed;
}

int recovery_clean_orphans(const char *data_dir, const slot_table *slots)
{
    char root_path[PATH_MAX];
    if (!data_dir || !slots)
        return -EINVAL;
    if ((size_t)snprintf(root_path, sizeof root_path, "%s/workspaces", data_dir) >= sizeof root_path)
        return -ENAMETOOLONG;
    DIR *root = rec_opendir(AT_FDCWD, root_path);
    if (!root)
        return errno == ENOENT ? 0 : -errno;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(root))) {
        struct stat st;
        int kept;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dirfd(root), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (!S_ISDIR(st.st_mode)) { /* a stray file or link where a workspace directory belongs */
            removed += rec_remove(root_path, de->d_name);
            continue;
        }
        removed += rec_clean_workspace(root, root_path, de->d_name, slots, &kept);
        if (kept == 0 && unlinkat(dirfd(root), de->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
            log_warn("recovery", "cannot remove empty %s/%s: %s", root_path, de->d_name, strerror(errno));
    }
    closedir(root);
    return removed;
}

/* ---- reports ------------------------------------------------------------------------------------------------ */

typedef struct {
    recovery   *r;
    uint64_t    task_id;  /* 0: entry unused */
    httpc_call *call;     /* PUT in flight */
    bool        put_done; /* the plane has the status; only the frame is missing */
} rec_entry;

struct recovery {
    recovery_config cfg;
    char      base_url[REC_BASE_URL_MAX];
    rec_entry e[STORE_INTERRUPTED_MAX];
    int       busy;  /* depth of our own frames on the stack: recovery_free() waits for them to unwind */
    bool      freed; /* recovery_free() was called from a callback */
};

/* What a PUT answer means: counted as reported or not, and whether the task_failed frame follows. */
static const struct {
    long lo, hi;
    bool reported, frame;
    const char *note;
} rec_answers[] = {
    { 200, 299, true, true, "reported as failed" },
    { 409, 409, true, true, "was cancelled meanwhile; its status stays cancelled" },
    { 404, 404, true, false, "no longer exists" },
};

static void rec_rfc3339_now(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, n - len, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/* Enter/leave one of our frames; rec_leave() frees the reporter when recovery_free() ran meanwhile. Returns
 * false when it did (the caller must not touch r again). */
static void rec_enter(recovery *r)
{
    r->busy++;
}

static bool rec_leave(recovery *r)
{
    if (--r->busy == 0 && r->freed) {
        free(r);
        return false;
    }
    return true;
}

static rec_entry *rec_find(recovery *r, uint64_t task_id)
{
    for (size_t i = 0; i < STORE_INTERRUPTED_MAX; i++)
        if (r->e[i].task_id == task_id)
            return &r->e[i];
    return NULL;
}

/* The task is reported: free its entry first, so that the callback may call recovery_report() again. */
static void rec_done(rec_entry *e)
{
    recovery *r = e->r;
    uint64_t id = e->task_id;
    *e = (rec_entry){ .r = r };
    r->cfg.reported(id, r->cfg.arg);
}

/* Queues task_failed; the task stays owed (PUT not repeated) while the frame cannot be queued. */
static void rec_send_frame(rec_entry *e)
{
    proto_msg m = { .type = MSG_TASK_FAILED };
    m.u.task_failed.task_id = e->task_id;
    m.u.task_failed.error = (char *)RECOVERY_MESSAGE;
    e->put_done = true;
    if (e->r->cfg.send(&m, e->r->cfg.arg) != 0) {
        log_debug("recovery", "task %" PRIu64 ": task_failed not queued; it goes with the next report", e->task_id);
        return;
    }
    rec_done(e);
}

static void rec_judge(rec_entry *e, const httpc_response *res)
{
    for (size_t i = 0; res->error == HTTPC_OK && i < sizeof rec_answers / sizeof rec_answers[0]; i++) {
        if (res->status < rec_answers[i].lo || res->status > rec_answers[i].hi)
            continue;
        log_info("recovery", "task %" PRIu64 " interrupted by the restart %s", e->task_id, rec_answers[i].note);
        if (rec_answers[i].frame)
            rec_send_frame(e);
        else
            rec_done(e);
        return;
    }
    if (res->error != HTTPC_OK)
        log_warn("recovery", "cannot report task %" PRIu64 " as failed: %s; trying again after the next reconnect",
                 e->task_id, res->errmsg);
    else
        log_warn("recovery", "cannot report task %" PRIu64 " as failed: HTTP %ld; trying again after the next "
                 "reconnect", e->task_id, res->status);
}

static void rec_on_put(const httpc_response *res, void *arg)
{
    rec_entry *e = arg;
    recovery *r = e->r;
    e->call = NULL;
    rec_enter(r);
    rec_judge(e, res);
    rec_leave(r);
}

static void rec_put(rec_entry *e)
{
    recovery *r = e->r;
    char url[REC_BASE_URL_MAX + 80], completed[40];
    strbuf body = STRBUF_INIT;
    snprintf(url, sizeof url, "%s/api/v1/agents/tasks/%" PRIu64 "/status", r->base_url, e->task_id);
    rec_rfc3339_now(completed, sizeof completed);
    strbuf_printf(&body, "{\"status\":\"failed\",\"error_message\":\"%s\",\"completed_at\":\"%s\"}",
                  RECOVERY_MESSAGE, completed);
    if (!body.oom) {
        httpc_req req = { .method = "PUT", .url = url, .bearer = *r->cfg.token, .body = body.data,
                          .body_len = body.len, .mode = HTTPC_RETRYING };
        e->call = httpc_request(r->cfg.http, &req, rec_on_put, e);
    }
    if (!e->call)
        log_warn("recovery", "cannot report task %" PRIu64 " as failed: out of memory", e->task_id);
    strbuf_free(&body);
}

recovery *recovery_new(const recovery_config *cfg)
{
    if (!cfg || !cfg->http || !cfg->base_url || !cfg->token || !cfg->store || !cfg->send || !cfg->reported ||
        strlen(cfg->base_url) > REC_BASE_URL_MAX - 12)
        return NULL;
    recovery *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    snprintf(r->base_url, sizeof r->base_url, "%s", cfg->base_url);
    r->cfg.base_url = r->base_url;
    for (size_t i = 0; i < STORE_INTERRUPTED_MAX; i++)
        r->e[i].r = r;
    return r;
}

int recovery_report(recovery *r)
{
    uint64_t ids[STORE_INTERRUPTED_MAX];
    int n = 0;
    if (!r || r->freed)
        return 0;
    /* A copy: the reported callback edits the store's list while we walk it. */
    for (int i = 0; i < r->cfg.store->n_interrupted && i < STORE_INTERRUPTED_MAX; i++)
        if (r->cfg.store->interrupted[i].task_id)
            ids[n++] = r->cfg.store->interrupted[i].task_id;
    /* Entries of tasks the agent no longer lists are dropped, unless their request is still out. */
    for (size_t i = 0; i < STORE_INTERRUPTED_MAX; i++) {
        bool listed = false;
        for (int j = 0; j < n && !listed; j++)
            listed = ids[j] == r->e[i].task_id;
        if (r->e[i].task_id && !listed && !r->e[i].call)
            r->e[i] = (rec_entry){ .r = r };
    }
    rec_enter(r);
    for (int j = 0; j < n && !r->freed; j++) {
        rec_entry *e = rec_find(r, ids[j]);
        if (!e) {
            e = rec_find(r, 0);
            if (!e)
                continue;
            e->task_id = ids[j];
        }
        if (e->call)
            continue; /* in flight: its answer decides */
        if (e->put_done)
            rec_send_frame(e);
        else
            rec_put(e);
    }
    if (!rec_leave(r))
        return 0;
    int owed = 0;
    for (size_t i = 0; i < STORE_INTERRUPTED_MAX; i++)
        owed += r->e[i].task_id != 0;
    return owed;
}

void recovery_free(recovery *r)
{
    if (!r || r->freed)
        return;
    for (size_t i = 0; i < STORE_INTERRUPTED_MAX; i++) {
        if (r->e[i].call)
            httpc_cancel(r->e[i].call);
        r->e[i].call = NULL;
    }
    r->freed = true;
    if (r->busy == 0)
        free(r);
}
