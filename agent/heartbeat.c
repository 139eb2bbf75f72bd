/* heartbeat.c — builds the heartbeat payload; see heartbeat.h. */
#include "heartbeat.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* proto's structs hold non-const char * because decoded messages own their strings; encoding only reads them. */
#define STR(s) ((char *)(s))

void heartbeat_build(heartbeat_frame *f, const slot_table *t, bool draining, int64_t now_s, double mem_usage,
                     const char *version)
{
    memset(f, 0, sizeof *f);
    slots_summary sum;
    slots_summarize(t, &sum);
    proto_heartbeat *h = &f->msg.u.heartbeat;
    f->msg.type = MSG_HEARTBEAT;
    size_t ntasks = 0;
    for (int i = 0; i < t->n; i++) {
        const slot *s = &t->s[i];
        proto_slot *p = &f->slots[i];
        p->slot_id = i;
        p->status = STR(slots_status_name(s->status));
        p->since = s->since_ms / 1000;
        if (s->status != SLOT_IDLE) {
            p->task_id = s->task_id;
            p->task_type = STR(slots_type_name(s->type));
            p->action = STR(slots_action_name(s->status == SLOT_RESERVED ? ACTION_APPLY : s->action));
        }
        if (s->status == SLOT_RUNNING)
            f->tasks[ntasks++] = s->task_id;
    }
    h->plan_running = sum.plan_running;
    h->plan_limit = sum.plan_limit;
    h->apply_running = sum.apply_running;
    /* Always an array: upstream copies a field only when its JSON type matches, so null would keep a stale list. */
    h->current_tasks = f->tasks;
    h->n_current_tasks = ntasks;
    h->current_tasks_null = false;
    h->cpu_usage = 10.0 + 15.0 * (double)ntasks; /* upstream's synthetic figure (ref §3.4) */
    h->mem_usage = mem_usage;
    h->status = STR("ok");
    h->timestamp = now_s;
    h->slots = f->slots;
    h->n_slots = (size_t)t->n;
    h->has_slots = true;
    h->state = STR(draining ? "draining" : "ready");
    h->agent_version = STR(version);
    f->caps[0] = STR("slots");
    f->caps[1] = STR("task_rejected");
    f->caps[2] = STR("task_request");
    h->capabilities = f->caps;
    h->n_capabilities = 3;
}

/* The value of "Name:" at the start of a line of text, in kB; -1 when absent. */
static double meminfo_field(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ':')
            return strtod(p + n + 1, NULL);
    return -1;
}

double heartbeat_parse_meminfo(const char *text)
{
    double total = meminfo_field(text, "MemTotal"), avail = meminfo_field(text, "MemAvailable");
    if (total <= 0 || avail < 0 || avail > total)
        return 0;
    return (total - avail) / total * 100.0;
}

/* MemTotal and MemAvailable are the first and third lines of /proc/meminfo, so one small read has both: no stdio,
 * no scan of the fifty lines after them (this runs at every heartbeat). */
double heartbeat_mem_usage(void)
{
    char buf[512];
    int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return heartbeat_parse_meminfo(buf);
}
