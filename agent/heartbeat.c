/* heartbeat.c — builds the heartbeat payload; see heartbeat.h. */
#include "heartbeat.h"

#include <stdio.h>
#include <string.h>

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

double heartbeat_mem_usage(void)
{
    FILE *fp = fopen("/proc/meminfo", "re");
    if (!fp)
        return 0;
    char line[256];
    double total = 0, avail = -1;
    while (fgets(line, sizeof line, fp)) {
        double v;
        if (sscanf(line, "MemTotal: %lf", &v) == 1)
            total = v;
        else if (sscanf(line, "MemAvailable: %lf", &v) == 1)
            avail = v;
    }
    fclose(fp);
    if (total <= 0 || avail < 0)
        return 0;
    return (total - avail) / total * 100.0;
}
