/* scaler.c — the coordinator's scaling decision; see scaler.h for the model.
 *
 * One pass measures the view (free and coming capacity, removable pods, pods past the startup timeout); then an
 * ordered table of rules is tried and the first that applies decides. The order is the policy: a shortfall is
 * covered before anything else (so "below min" never hides a bigger need, and a pool that is short never shrinks),
 * then the [min, max] clamp, then a surplus that has lasted its window, else nothing changes. All counts are
 * 64-bit inside so that absurd demand figures clamp at max_replicas instead of overflowing. */
#include "scaler.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const scaler_view   *v;
    const scaler_config *c;
    const scaler_demand *d;
    int64_t              now;
    int64_t              add;  /* pods needed to cover the shortfall, 0 when covered */
    bool                 removable[SCALER_MAX_PODS];
    scaler_decision     *out;
} scaler_ctx;

static int64_t nonneg(int64_t x) { return x < 0 ? 0 : x; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

int64_t scaler_elapsed_ms(int64_t now, int64_t t)
{
    if (t >= now)
        return 0;
    if (t < 0 && now > INT64_MAX + t)
        return INT64_MAX;
    return now - t;
}

static void textf(scaler_decision *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void textf(scaler_decision *out, const char *fmt, ...)
{
    size_t len = strnlen(out->text, sizeof(out->text));
    if (len + 1 >= sizeof(out->text))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->text + len, sizeof(out->text) - len, fmt, ap);
    va_end(ap);
}

static const char *bad_config(const scaler_config *c)
{
    if (c->slots_per_pod < 2 || c->slots_per_pod > SLOTS_MAX)
        return "slots_per_pod must be from 2 to 64";
    if (c->max_replicas < 1)
        return "max_replicas must be at least 1";
    if (c->min_replicas < 0 || c->min_replicas > c->max_replicas)
        return "min_replicas must be from 0 to max_replicas";
    if (c->headroom_slot0 < 0 || c->headroom_plan < 0)
        return "headroom must not be negative";
    if (c->scale_up_window_ms < 0 || c->scale_down_window_ms < 0 || c->pod_startup_timeout_ms < 0)
        return "windows and timeouts must not be negative";
    if (c->max_remove_per_cycle < 1 || c->max_remove_per_cycle > SCALER_MAX_REMOVE)
        return "max_remove_per_cycle must be from 1 to 16";
    return NULL;
}

static const char *bad_view(const scaler_view *v)
{
    if (v->npods < 0 || v->npods > SCALER_MAX_PODS || (v->npods > 0 && v->pods == NULL))
        return "pod count out of range";
    if (v->replicas < 0)
        return "replicas must not be negative";
    return NULL;
}

/* Free and coming capacity, needs, removable pods, pods past the startup timeout. */
static void measure(scaler_ctx *x)
{
    const scaler_view *v = x->v;
    const scaler_config *c = x->c;
    scaler_decision *out = x->out;
    int64_t plan_per_pod = c->slots_per_pod - 1;

    for (int i = 0; i < v->npods; i++) {
        const scaler_pod *p = &v->pods[i];
        x->removable[i] = false;
        if (p->draining)
            continue; /* on its way out: neither capacity nor a candidate */
        if (p->ready) {
            if (!p->has_status) {
                /* Agent not answering: we cannot know its slots, so it is never removable. Young, it is most
                 * likely still starting its status server: coming capacity, as a starting pod. Past the startup
                 * timeout it is nothing, so that real demand is covered — but only then, or pods whose agents
                 * never answer (a wrong agent port) would make every cycle add a pod. */
                if (scaler_elapsed_ms(x->now, p->created_ms) < c->pod_startup_timeout_ms)
                    out->coming_pods++;
                continue;
            }
            bool slot0_free = p->slot0 == SLOT_IDLE && p->reserved_task_id == 0;
            out->free_slot0 += slot0_free;
            out->free_plan += nonneg(p->plan_idle);
            x->removable[i] = slot0_free && p->plan_busy <= 0;
        } else if (p->starting) {
            if (scaler_elapsed_ms(x->now, p->created_ms) >= c->pod_startup_timeout_ms) {
                out->timed_out[out->ntimed_out++] = i;
                continue;
            }
            out->coming_pods++;
        }
    }
    /* Replicas the ReplicaSet has not turned into pods yet are coming too; without this a slow controller would
     * make every cycle scale up again for the same shortfall. */
    out->coming_pods += (int)nonneg((int64_t)v->replicas - v->npods);
    out->free_slot0 += out->coming_pods;
    out->free_plan += (int64_t)out->coming_pods * plan_per_pod;

    out->need_slot0 = nonneg(x->d->plan_and_apply) + c->headroom_slot0;
    out->need_plan = nonneg(x->d->plan) + nonneg(x->d->drift_check) + c->headroom_plan;
    x->add = max64(ceil_div(out->need_slot0 - out->free_slot0, 1),
                   ceil_div(out->need_plan - out->free_plan, plan_per_pod));
}

/* The youngest removable pod not yet considered, or −1. */
static int youngest(scaler_ctx *x)
{
    int best = -1;
    for (int i = 0; i < x->v->npods; i++)
        if (x->removable[i] && (best < 0 || x->v->pods[i].created_ms >= x->v->pods[best].created_ms))
            best = i;
    if (best >= 0)
        x->removable[best] = false;
    return best;
}

/* Choose up to `limit` removable pods, youngest first; with `keep_needs`, only while the needs stay covered. */
static void choose_removals(scaler_ctx *x, int64_t limit, bool keep_needs)
{
    scaler_decision *out = x->out;
    int64_t free0 = out->free_slot0, freep = out->free_plan;
    limit = min64(limit, x->c->max_remove_per_cycle);
    while (out->nremove < limit) {
        if (keep_needs && free0 - 1 < out->need_slot0)
            break; /* every candidate brings one free slot 0: none can go */
        int i = youngest(x);
        if (i < 0)
            break;
        int64_t plan = nonneg(x->v->pods[i].plan_idle);
        if (keep_needs && freep - plan < out->need_plan)
            continue;
        free0 -= 1;
        freep -= plan;
        out->remove[out->nremove++] = i;
    }
}

static void text_removals(scaler_ctx *x)
{
    textf(x->out, "removing");
    for (int k = 0; k < x->out->nremove; k++) {
        const char *name = x->v->pods[x->out->remove[k]].name;
        textf(x->out, "%s %s", k ? "," : "", name ? name : "(unnamed)");
    }
    textf(x->out, " (idle); ");
}

static int64_t since(int64_t prev, int64_t now) { return prev == SCALER_NEVER ? now : prev; }

/* Each rule returns true when it decided. */
typedef bool (*scaler_rule)(scaler_ctx *x);

static bool rule_shortage(scaler_ctx *x)
{
    const scaler_config *c = x->c;
    scaler_decision *out = x->out;
    int replicas = x->v->replicas;
    if (x->add == 0)
        return false;
    out->shortage_since_ms = since(x->v->shortage_since_ms, x->now);
    int64_t waited = scaler_elapsed_ms(x->now, out->shortage_since_ms);
    if (waited < c->scale_up_window_ms) {
        out->desired = (int)max64(replicas, c->min_replicas);
        out->reason = out->desired > replicas ? SCALER_BELOW_MIN : SCALER_SHORTAGE_WAITING;
        textf(out, "short by %lld pods for %lld of %lld ms; ", (long long)x->add, (long long)waited,
              (long long)c->scale_up_window_ms);
        return true;
    }
    int64_t target = max64((int64_t)replicas + x->add, c->min_replicas);
    /* Never below replicas while short: above max, only idle pods may go, and a short pool has none to spare. */
    out->desired = (int)max64(min64(target, c->max_replicas), replicas);
    out->reason = target > c->max_replicas ? SCALER_AT_MAX : SCALER_SCALE_UP;
    if (out->reason == SCALER_AT_MAX)
        textf(out, "needs %lld pods, at max replicas %d; ", (long long)target, c->max_replicas);
    return true;
}

static bool rule_below_min(scaler_ctx *x)
{
    if (x->v->replicas >= x->c->min_replicas)
        return false;
    x->out->desired = x->c->min_replicas;
    x->out->reason = SCALER_BELOW_MIN;
    textf(x->out, "below min replicas %d; ", x->c->min_replicas);
    return true;
}

static bool rule_above_max(scaler_ctx *x)
{
    int replicas = x->v->replicas;
    if (replicas <= x->c->max_replicas)
        return false;
    /* The clamp needs no window, but still removes only idle pods, a few per cycle. */
    choose_removals(x, (int64_t)replicas - x->c->max_replicas, false);
    x->out->desired = replicas - x->out->nremove;
    x->out->reason = SCALER_ABOVE_MAX;
    textf(x->out, "above max replicas %d; ", x->c->max_replicas);
    if (x->out->nremove)
        text_removals(x);
    else
        textf(x->out, "no idle pod to remove; ");
    return true;
}

static bool rule_surplus(scaler_ctx *x)
{
    scaler_decision *out = x->out;
    int replicas = x->v->replicas;
    choose_removals(x, (int64_t)replicas - x->c->min_replicas, true);
    if (out->nremove == 0)
        return false;
    out->surplus_since_ms = since(x->v->surplus_since_ms, x->now);
    int64_t waited = scaler_elapsed_ms(x->now, out->surplus_since_ms);
    if (waited < x->c->scale_down_window_ms) {
        textf(out, "surplus of %d pods for %lld of %lld ms; ", out->nremove, (long long)waited,
              (long long)x->c->scale_down_window_ms);
        out->nremove = 0;
        out->desired = replicas;
        out->reason = SCALER_SURPLUS_WAITING;
        return true;
    }
    /* surplus_since stays: the surplus goes on, so the next idle pod may go next cycle. */
    out->desired = replicas - out->nremove;
    out->reason = SCALER_SCALE_DOWN;
    text_removals(x);
    return true;
}

static bool rule_steady(scaler_ctx *x)
{
    x->out->desired = x->v->replicas;
    x->out->reason = SCALER_STEADY;
    return true;
}

static const scaler_rule rules[] = { rule_shortage, rule_below_min, rule_above_max, rule_surplus, rule_steady };

int scaler_decide(const scaler_view *v, const scaler_demand *d, const scaler_config *c, int64_t now_ms,
                  scaler_decision *out)
{
    memset(out, 0, sizeof(*out));
    out->surplus_since_ms = SCALER_NEVER;
    out->shortage_since_ms = SCALER_NEVER;
    out->desired = v->replicas;

    const char *bad = bad_config(c);
    if (!bad)
        bad = bad_view(v);
    if (bad) {
        out->reason = SCALER_BAD_INPUT;
        out->desired = v->replicas < 0 ? 0 : v->replicas;
        textf(out, "%s; no change", bad);
        return -EINVAL;
    }

    scaler_ctx x = { .v = v, .c = c, .d = d, .now = now_ms, .out = out };
    measure(&x);
    textf(out, "demand %d plan_and_apply, %d plan, %d drift_check; needs %lld free slot 0s, %lld free; "
               "%lld free plan slots, %lld free; pods starting %d; ",
          (int)nonneg(d->plan_and_apply), (int)nonneg(d->plan), (int)nonneg(d->drift_check),
          (long long)out->need_slot0, (long long)out->free_slot0, (long long)out->need_plan,
          (long long)out->free_plan, out->coming_pods);
    if (out->ntimed_out)
        textf(out, "%d pods past the startup timeout; ", out->ntimed_out);

    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (rules[i](&x))
            break;

    if (out->desired != v->replicas)
        textf(out, "scaling %d\u2192%d", v->replicas, out->desired);
    else
        textf(out, "staying at %d", out->desired);
    return 0;
}

const char *scaler_reason_name(scaler_reason r)
{
    static const char *const names[] = {
        [SCALER_STEADY] = "steady",
        [SCALER_SCALE_UP] = "scale up",
        [SCALER_AT_MAX] = "at max replicas",
        [SCALER_SHORTAGE_WAITING] = "shortage waiting",
        [SCALER_BELOW_MIN] = "below min replicas",
        [SCALER_ABOVE_MAX] = "above max replicas",
        [SCALER_SCALE_DOWN] = "scale down",
        [SCALER_SURPLUS_WAITING] = "surplus waiting",
        [SCALER_BAD_INPUT] = "bad input",
    };
    if ((unsigned)r >= sizeof(names) / sizeof(names[0]) || !names[r])
        return "unknown";
    return names[r];
}
