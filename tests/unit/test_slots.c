/* test_slots.c — the slot table rules of DESIGN §4.2 (slots.h): placement, transitions, summary, names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "iac/slots.h"

#define T0 1000 /* the time tables are created at */

static slot_table table(int n)
{
    slot_table t;
    slots_init(&t, n, T0);
    return t;
}

static void assert_idle(const slot_table *t, int i)
{
    assert_int_equal(t->s[i].status, SLOT_IDLE);
    assert_int_equal(t->s[i].task_id, 0);
    assert_int_equal(t->s[i].type, TASK_TYPE_NONE);
}

/* ---- init ----------------------------------------------------------------------------------------------------- */

/* A new table has n idle slots stamped with the creation time and is not draining; n is kept within
 * [SLOTS_MIN, SLOTS_MAX]. */
static void init_makes_every_slot_idle(void **state)
{
    (void)state;
    slot_table t = table(4);
    assert_int_equal(t.n, 4);
    assert_false(t.draining);
    for (int i = 0; i < 4; i++) {
        assert_idle(&t, i);
        assert_int_equal(t.s[i].since_ms, T0);
    }
    assert_int_equal(table(1).n, SLOTS_MIN);
    assert_int_equal(table(-5).n, SLOTS_MIN);
    assert_int_equal(table(SLOTS_MAX + 1).n, SLOTS_MAX);
}

/* ---- placement ------------------------------------------------------------------------------------------------ */

typedef enum { S0_IDLE, S0_RUNNING_OTHER, S0_RESERVED_THIS, S0_RESERVED_OTHER } slot0_state;

#define THIS 100 /* the task being placed */
#define OTHER 200

static void set_slot0(slot_table *t, slot0_state st)
{
    switch (st) {
    case S0_IDLE: break;
    case S0_RUNNING_OTHER: assert_int_equal(slots_start(t, 0, OTHER, TASK_PLAN_AND_APPLY, ACTION_PLAN, T0), 0); break;
    case S0_RESERVED_THIS:
    case S0_RESERVED_OTHER: {
        uint64_t id = st == S0_RESERVED_THIS ? THIS : OTHER;
        assert_int_equal(slots_start(t, 0, id, TASK_PLAN_AND_APPLY, ACTION_PLAN, T0), 0);
        assert_int_equal(slots_reserve(t, id, T0), 0);
        break;
    }
    }
}

/* Every (type, action) against every state of slot 0, draining or not, with slots 1..3 idle. */
static void placement_for_every_type_action_slot0_state_and_drain(void **state)
{
    (void)state;
    static const struct {
        task_type   type;
        task_action action;
        int         want[4]; /* by slot0_state, not draining */
    } rows[] = {
        { TASK_PLAN_AND_APPLY, ACTION_PLAN, { 0, SLOTS_E_NO_SLOT, SLOTS_E_RESERVED, SLOTS_E_RESERVED } },
        { TASK_PLAN_AND_APPLY, ACTION_APPLY, { 0, SLOTS_E_NO_SLOT, 0, SLOTS_E_RESERVED } },
        { TASK_PLAN, ACTION_PLAN, { 1, 1, SLOTS_E_RESERVED, 1 } },
        { TASK_DRIFT_CHECK, ACTION_PLAN, { 1, 1, SLOTS_E_RESERVED, 1 } },
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        for (int s0 = S0_IDLE; s0 <= S0_RESERVED_OTHER; s0++) {
            for (int draining = 0; draining <= 1; draining++) {
                slot_table t = table(4);
                set_slot0(&t, (slot0_state)s0);
                t.draining = draining;
                int want = draining ? SLOTS_E_DRAINING : rows[r].want[s0];
                int got = slots_place(&t, rows[r].type, rows[r].action, THIS);
                if (got != want)
                    print_error("type %s action %s slot0 state %d draining %d: got %d want %d\n",
                                slots_type_name(rows[r].type), slots_action_name(rows[r].action), s0, draining, got,
                                want);
                assert_int_equal(got, want);
            }
        }
    }
}

/* A task already running anywhere is a duplicate, for any type and action, and this is decided before draining. */
static void duplicate_is_detected_before_draining(void **state)
{
    (void)state;
    for (int draining = 0; draining <= 1; draining++) {
        slot_table t = table(4);
        assert_int_equal(slots_start(&t, 2, 7, TASK_PLAN, ACTION_PLAN, T0), 0);
        assert_int_equal(slots_start(&t, 0, 8, TASK_PLAN_AND_APPLY, ACTION_PLAN, T0), 0);
        t.draining = draining;
        assert_int_equal(slots_place(&t, TASK_PLAN, ACTION_PLAN, 7), SLOTS_E_DUPLICATE);
        assert_int_equal(slots_place(&t, TASK_DRIFT_CHECK, ACTION_PLAN, 7), SLOTS_E_DUPLICATE);
        assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_PLAN, 8), SLOTS_E_DUPLICATE);
        assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_APPLY, 8), SLOTS_E_DUPLICATE);
    }
}

/* An apply for the task that holds slot 0's reservation goes to slot 0 and starts there (warm). */
static void apply_uses_its_own_reservation(void **state)
{
    (void)state;
    slot_table t = table(4);
    set_slot0(&t, S0_RESERVED_THIS);
    assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_APPLY, THIS), 0);
    assert_int_equal(slots_start(&t, 0, THIS, TASK_PLAN_AND_APPLY, ACTION_APPLY, T0 + 5), 0);
    assert_int_equal(t.s[0].status, SLOT_RUNNING);
    assert_int_equal(t.s[0].action, ACTION_APPLY);
}

/* An apply with slot 0 idle takes it (cold apply). */
static void apply_takes_idle_slot0_cold(void **state)
{
    (void)state;
    slot_table t = table(4);
    assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_APPLY, THIS), 0);
    assert_int_equal(slots_start(&t, 0, THIS, TASK_PLAN_AND_APPLY, ACTION_APPLY, T0 + 5), 0);
    assert_int_equal(t.s[0].status, SLOT_RUNNING);
    assert_int_equal(t.s[0].task_id, THIS);
}

/* An apply while slot 0 is reserved for another task is refused as reserved, and cannot be forced in. */
static void apply_refused_while_reserved_for_another(void **state)
{
    (void)state;
    slot_table t = table(4);
    set_slot0(&t, S0_RESERVED_OTHER);
    assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_APPLY, THIS), SLOTS_E_RESERVED);
    assert_int_equal(slots_start(&t, 0, THIS, TASK_PLAN_AND_APPLY, ACTION_APPLY, T0), SLOTS_E_STATE);
    assert_int_equal(t.s[0].task_id, OTHER);
    assert_int_equal(t.s[0].status, SLOT_RESERVED);
}

/* An apply while slot 0 runs another task finds no slot. */
static void apply_refused_while_slot0_runs(void **state)
{
    (void)state;
    slot_table t = table(4);
    set_slot0(&t, S0_RUNNING_OTHER);
    assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_APPLY, THIS), SLOTS_E_NO_SLOT);
}

/* Plans go to the lowest idle slot ≥ 1, and find no slot when all of 1..n-1 are busy, whatever slot 0 does. */
static void plan_takes_lowest_idle_slot_and_none_when_full(void **state)
{
    (void)state;
    slot_table t = table(4);
    assert_int_equal(slots_start(&t, 1, 1, TASK_PLAN, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_start(&t, 3, 3, TASK_DRIFT_CHECK, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_place(&t, TASK_PLAN, ACTION_PLAN, 9), 2);
    assert_int_equal(slots_start(&t, 2, 2, TASK_PLAN, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_place(&t, TASK_PLAN, ACTION_PLAN, 9), SLOTS_E_NO_SLOT);
    assert_int_equal(slots_place(&t, TASK_DRIFT_CHECK, ACTION_PLAN, 9), SLOTS_E_NO_SLOT);
    /* slot 0 idle does not help a plan */
    assert_int_equal(t.s[0].status, SLOT_IDLE);
    assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_PLAN, 9), 0);
}

/* ---- transitions ---------------------------------------------------------------------------------------------- */

/* plan_and_apply on slot 0: idle → running (plan) → reserved → running (apply) → idle, since_ms following each
 * change and the task fields cleared at the end. */
static void plan_and_apply_lifecycle(void **state)
{
    (void)state;
    slot_table t = table(4);
    assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_PLAN, 42), 0);
    assert_int_equal(slots_start(&t, 0, 42, TASK_PLAN_AND_APPLY, ACTION_PLAN, 2000), 0);
    assert_int_equal(t.s[0].status, SLOT_RUNNING);
    assert_int_equal(t.s[0].task_id, 42);
    assert_int_equal(t.s[0].type, TASK_PLAN_AND_APPLY);
    assert_int_equal(t.s[0].action, ACTION_PLAN);
    assert_int_equal(t.s[0].since_ms, 2000);

    assert_int_equal(slots_reserve(&t, 42, 3000), 0);
    assert_int_equal(t.s[0].status, SLOT_RESERVED);
    assert_int_equal(t.s[0].task_id, 42);
    assert_int_equal(t.s[0].type, TASK_PLAN_AND_APPLY);
    assert_int_equal(t.s[0].since_ms, 3000);
    assert_int_equal(slots_find(&t, 42), 0);

    assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_APPLY, 42), 0);
    assert_int_equal(slots_start(&t, 0, 42, TASK_PLAN_AND_APPLY, ACTION_APPLY, 4000), 0);
    assert_int_equal(t.s[0].status, SLOT_RUNNING);
    assert_int_equal(t.s[0].action, ACTION_APPLY);
    assert_int_equal(t.s[0].since_ms, 4000);

    assert_int_equal(slots_finish(&t, 42, 5000), 0);
    assert_idle(&t, 0);
    assert_int_equal(t.s[0].since_ms, 5000);
    assert_int_equal(slots_find(&t, 42), -1);
}

/* A plan on a plan slot: idle → running → idle. */
static void plan_lifecycle(void **state)
{
    (void)state;
    slot_table t = table(3);
    assert_int_equal(slots_start(&t, 2, 5, TASK_DRIFT_CHECK, ACTION_PLAN, 2000), 0);
    assert_int_equal(slots_find(&t, 5), 2);
    assert_int_equal(slots_finish(&t, 5, 2500), 0);
    assert_idle(&t, 2);
    assert_int_equal(t.s[2].since_ms, 2500);
}

/* A reservation ends by release (reserved → idle); releasing what is running, unknown, or already released is a
 * state error, and task 0 is invalid. */
static void release_paths(void **state)
{
    (void)state;
    slot_table t = table(4);
    set_slot0(&t, S0_RESERVED_OTHER);
    assert_int_equal(slots_release(&t, OTHER, 7000), 0);
    assert_idle(&t, 0);
    assert_int_equal(t.s[0].since_ms, 7000);
    assert_int_equal(slots_release(&t, OTHER, 7001), SLOTS_E_STATE);
    assert_int_equal(t.s[0].since_ms, 7000);

    assert_int_equal(slots_start(&t, 0, 9, TASK_PLAN_AND_APPLY, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_release(&t, 9, T0), SLOTS_E_STATE); /* running, not reserved */
    assert_int_equal(t.s[0].status, SLOT_RUNNING);
    assert_int_equal(slots_start(&t, 1, 10, TASK_PLAN, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_release(&t, 10, T0), SLOTS_E_STATE);
    assert_int_equal(slots_release(&t, 12345, T0), SLOTS_E_STATE);
    assert_int_equal(slots_release(&t, 0, T0), SLOTS_E_INVALID);
}

/* finish ends only a running task: a reservation, an unknown task or task 0 is refused. */
static void finish_paths(void **state)
{
    (void)state;
    slot_table t = table(4);
    set_slot0(&t, S0_RESERVED_THIS);
    assert_int_equal(slots_finish(&t, THIS, T0), SLOTS_E_STATE);
    assert_int_equal(t.s[0].status, SLOT_RESERVED);
    assert_int_equal(slots_finish(&t, 777, T0), SLOTS_E_STATE);
    assert_int_equal(slots_finish(&t, 0, T0), SLOTS_E_INVALID);
    /* a cancelled plan of slot 0 (no reservation) ends with finish */
    slot_table u = table(4);
    assert_int_equal(slots_start(&u, 0, 3, TASK_PLAN_AND_APPLY, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_finish(&u, 3, T0 + 1), 0);
    assert_idle(&u, 0);
}

/* reserve applies only to the plan phase of slot 0's plan_and_apply. */
static void reserve_only_from_slot0_plan(void **state)
{
    (void)state;
    slot_table t = table(4);
    assert_int_equal(slots_start(&t, 1, 5, TASK_PLAN, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_reserve(&t, 5, T0), SLOTS_E_STATE); /* a plan slot */
    assert_int_equal(t.s[1].status, SLOT_RUNNING);
    assert_int_equal(slots_start(&t, 0, 6, TASK_PLAN_AND_APPLY, ACTION_APPLY, T0), 0);
    assert_int_equal(slots_reserve(&t, 6, T0), SLOTS_E_STATE); /* the apply phase */
    assert_int_equal(slots_reserve(&t, 99, T0), SLOTS_E_STATE); /* unknown */
    assert_int_equal(slots_reserve(&t, 0, T0), SLOTS_E_INVALID);
    slot_table u = table(4);
    set_slot0(&u, S0_RESERVED_THIS);
    assert_int_equal(slots_reserve(&u, THIS, T0 + 9), SLOTS_E_STATE); /* already reserved */
    assert_int_equal(u.s[0].since_ms, T0);
}

/* start needs an idle slot, except slot 0 reserved for the same task starting its apply. */
static void start_needs_an_idle_slot(void **state)
{
    (void)state;
    slot_table t = table(4);
    assert_int_equal(slots_start(&t, 1, 5, TASK_PLAN, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_start(&t, 1, 6, TASK_PLAN, ACTION_PLAN, T0), SLOTS_E_STATE);
    assert_int_equal(t.s[1].task_id, 5);
    /* one task, one slot */
    assert_int_equal(slots_start(&t, 2, 5, TASK_PLAN, ACTION_PLAN, T0), SLOTS_E_STATE);

    slot_table u = table(4);
    set_slot0(&u, S0_RESERVED_THIS);
    assert_int_equal(slots_start(&u, 0, THIS, TASK_PLAN_AND_APPLY, ACTION_PLAN, T0), SLOTS_E_STATE);
    assert_int_equal(slots_start(&u, 0, OTHER, TASK_PLAN_AND_APPLY, ACTION_APPLY, T0), SLOTS_E_STATE);
    assert_int_equal(slots_start(&u, 0, OTHER, TASK_PLAN_AND_APPLY, ACTION_PLAN, T0), SLOTS_E_STATE);
    /* the id holding the reservation cannot also start a plan elsewhere */
    assert_int_equal(slots_start(&u, 1, THIS, TASK_PLAN, ACTION_PLAN, T0), SLOTS_E_STATE);
    assert_int_equal(u.s[0].status, SLOT_RESERVED);

    slot_table v = table(4);
    set_slot0(&v, S0_RUNNING_OTHER);
    assert_int_equal(slots_start(&v, 0, OTHER, TASK_PLAN_AND_APPLY, ACTION_APPLY, T0), SLOTS_E_STATE);
}

/* Draining stops placement only: runs in progress still finish and reservations are still released. */
static void draining_still_lets_work_end(void **state)
{
    (void)state;
    slot_table t = table(4);
    set_slot0(&t, S0_RESERVED_OTHER);
    assert_int_equal(slots_start(&t, 1, 5, TASK_PLAN, ACTION_PLAN, T0), 0);
    t.draining = true;
    assert_int_equal(slots_place(&t, TASK_PLAN_AND_APPLY, ACTION_APPLY, OTHER), SLOTS_E_DRAINING);
    assert_int_equal(slots_finish(&t, 5, T0), 0);
    assert_int_equal(slots_release(&t, OTHER, T0), 0);
    assert_idle(&t, 0);
    assert_idle(&t, 1);
}

/* ---- arguments ------------------------------------------------------------------------------------------------ */

/* Bad arguments are SLOTS_E_INVALID and change nothing: task 0, no or unknown type, unknown action, apply for a
 * type that has none, a slot out of range or of the wrong kind, an uninitialised table. */
static void invalid_arguments(void **state)
{
    (void)state;
    slot_table t = table(4);
    static const struct { task_type type; task_action action; uint64_t id; } place[] = {
        { TASK_PLAN, ACTION_PLAN, 0 },
        { TASK_TYPE_NONE, ACTION_PLAN, 1 },
        { (task_type)99, ACTION_PLAN, 1 },
        { TASK_PLAN, (task_action)7, 1 },
        { TASK_PLAN, ACTION_APPLY, 1 },
        { TASK_DRIFT_CHECK, ACTION_APPLY, 1 },
    };
    for (size_t i = 0; i < sizeof place / sizeof place[0]; i++) {
        assert_int_equal(slots_place(&t, place[i].type, place[i].action, place[i].id), SLOTS_E_INVALID);
        assert_int_equal(slots_start(&t, 1, place[i].id, place[i].type, place[i].action, T0), SLOTS_E_INVALID);
    }
    static const struct { int slot; task_type type; } start[] = {
        { -1, TASK_PLAN }, { 4, TASK_PLAN }, { SLOTS_MAX, TASK_PLAN },
        { 0, TASK_PLAN }, { 0, TASK_DRIFT_CHECK }, { 1, TASK_PLAN_AND_APPLY }, { 3, TASK_PLAN_AND_APPLY },
    };
    for (size_t i = 0; i < sizeof start / sizeof start[0]; i++)
        assert_int_equal(slots_start(&t, start[i].slot, 5, start[i].type, ACTION_PLAN, T0), SLOTS_E_INVALID);
    for (int i = 0; i < 4; i++)
        assert_idle(&t, i);

    slot_table zero;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(slots_place(&zero, TASK_PLAN, ACTION_PLAN, 1), SLOTS_E_INVALID);
    assert_int_equal(slots_start(&zero, 0, 1, TASK_PLAN_AND_APPLY, ACTION_PLAN, T0), SLOTS_E_INVALID);
    assert_int_equal(slots_finish(&zero, 1, T0), SLOTS_E_INVALID);
    assert_int_equal(slots_find(&zero, 1), -1);
}

/* slots_find reports running and reserved slots, -1 for an unknown task or task 0. */
static void find_reports_running_and_reserved(void **state)
{
    (void)state;
    slot_table t = table(4);
    set_slot0(&t, S0_RESERVED_OTHER);
    assert_int_equal(slots_start(&t, 3, 9, TASK_PLAN, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_find(&t, OTHER), 0);
    assert_int_equal(slots_find(&t, 9), 3);
    assert_int_equal(slots_find(&t, 10), -1);
    assert_int_equal(slots_find(&t, 0), -1);
}

/* ---- summary -------------------------------------------------------------------------------------------------- */

/* The heartbeat numbers in each state: a reserved slot 0 is not "apply running" (DESIGN §4.2); draining reads as
 * full with plan_limit 0 and apply_running true. */
static void summary_in_each_state(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        slot0_state s0;
        int         plan_busy; /* slots 1..plan_busy running */
        bool        draining;
        slots_summary want;
    } rows[] = {
        /*                                      plan_running limit apply free_paa free_plan running reserved */
        { "all idle", S0_IDLE, 0, false, { 0, 3, false, 1, 3, 0, 0 } },
        { "slot 0 running", S0_RUNNING_OTHER, 0, false, { 0, 3, true, 0, 3, 1, 0 } },
        { "slot 0 reserved", S0_RESERVED_OTHER, 0, false, { 0, 3, false, 0, 3, 0, 1 } },
        { "two plans", S0_IDLE, 2, false, { 2, 3, false, 1, 1, 2, 0 } },
        { "full", S0_RUNNING_OTHER, 3, false, { 3, 3, true, 0, 0, 4, 0 } },
        { "reserved + plans", S0_RESERVED_OTHER, 3, false, { 3, 3, false, 0, 0, 3, 1 } },
        { "draining idle", S0_IDLE, 0, true, { 0, 0, true, 0, 0, 0, 0 } },
        { "draining busy", S0_RESERVED_OTHER, 1, true, { 1, 0, true, 0, 0, 1, 1 } },
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        slot_table t = table(4);
        set_slot0(&t, rows[r].s0);
        for (int i = 1; i <= rows[r].plan_busy; i++)
            assert_int_equal(slots_start(&t, i, 500 + i, TASK_PLAN, ACTION_PLAN, T0), 0);
        t.draining = rows[r].draining;
        slots_summary got;
        memset(&got, 0x5A, sizeof got);
        slots_summarize(&t, &got);
        const slots_summary *w = &rows[r].want;
        if (got.plan_running != w->plan_running || got.plan_limit != w->plan_limit
            || got.apply_running != w->apply_running || got.free_plan_and_apply != w->free_plan_and_apply
            || got.free_plan != w->free_plan || got.running != w->running || got.reserved != w->reserved)
            print_error("%s: got %d %d %d %d %d %d %d\n", rows[r].name, got.plan_running, got.plan_limit,
                        got.apply_running, got.free_plan_and_apply, got.free_plan, got.running, got.reserved);
        assert_int_equal(got.plan_running, w->plan_running);
        assert_int_equal(got.plan_limit, w->plan_limit);
        assert_int_equal(got.apply_running, w->apply_running);
        assert_int_equal(got.free_plan_and_apply, w->free_plan_and_apply);
        assert_int_equal(got.free_plan, w->free_plan);
        assert_int_equal(got.running, w->running);
        assert_int_equal(got.reserved, w->reserved);
    }
}

/* ---- sizes ---------------------------------------------------------------------------------------------------- */

/* With SLOTS_MIN slots there is one plan slot; a second plan finds none. */
static void smallest_table(void **state)
{
    (void)state;
    slot_table t = table(SLOTS_MIN);
    assert_int_equal(slots_place(&t, TASK_PLAN, ACTION_PLAN, 1), 1);
    assert_int_equal(slots_start(&t, 1, 1, TASK_PLAN, ACTION_PLAN, T0), 0);
    assert_int_equal(slots_place(&t, TASK_PLAN, ACTION_PLAN, 2), SLOTS_E_NO_SLOT);
    assert_int_equal(slots_start(&t, 2, 2, TASK_PLAN, ACTION_PLAN, T0), SLOTS_E_INVALID);
    slots_summary s;
    slots_summarize(&t, &s);
    assert_int_equal(s.plan_limit, SLOTS_MIN - 1);
    assert_int_equal(s.plan_running, 1);
    assert_int_equal(s.free_plan, 0);
}

/* With SLOTS_MAX slots every plan slot up to the last is used in order, then none is left. */
static void largest_table(void **state)
{
    (void)state;
    slot_table t = table(SLOTS_MAX);
    for (int i = 1; i < SLOTS_MAX; i++) {
        uint64_t id = 1000 + (uint64_t)i;
        assert_int_equal(slots_place(&t, TASK_DRIFT_CHECK, ACTION_PLAN, id), i);
        assert_int_equal(slots_start(&t, i, id, TASK_DRIFT_CHECK, ACTION_PLAN, T0), 0);
    }
    assert_int_equal(slots_place(&t, TASK_PLAN, ACTION_PLAN, 5), SLOTS_E_NO_SLOT);
    assert_int_equal(slots_find(&t, 1000 + SLOTS_MAX - 1), SLOTS_MAX - 1);
    slots_summary s;
    slots_summarize(&t, &s);
    assert_int_equal(s.plan_limit, SLOTS_MAX - 1);
    assert_int_equal(s.plan_running, SLOTS_MAX - 1);
    assert_int_equal(s.free_plan, 0);
    assert_int_equal(s.free_plan_and_apply, 1);
}

/* ---- names ---------------------------------------------------------------------------------------------------- */

/* Names for statuses, types and actions are the wire strings; out-of-range values do not crash. */
static void names_are_the_wire_strings(void **state)
{
    (void)state;
    assert_string_equal(slots_status_name(SLOT_IDLE), "idle");
    assert_string_equal(slots_status_name(SLOT_RUNNING), "running");
    assert_string_equal(slots_status_name(SLOT_RESERVED), "reserved");
    assert_non_null(slots_status_name((slot_status)42));
    assert_string_equal(slots_type_name(TASK_TYPE_NONE), "");
    assert_string_equal(slots_type_name(TASK_PLAN), "plan");
    assert_string_equal(slots_type_name(TASK_PLAN_AND_APPLY), "plan_and_apply");
    assert_string_equal(slots_type_name(TASK_DRIFT_CHECK), "drift_check");
    assert_string_equal(slots_type_name((task_type)42), "");
    assert_string_equal(slots_action_name(ACTION_PLAN), "plan");
    assert_string_equal(slots_action_name(ACTION_APPLY), "apply");
}

/* Type names parse back to their types; anything else (apply, empty, case variants, NULL) is refused. Any action
 * other than exactly "apply" is a plan (ref §3.3). */
static void parsing_types_and_actions(void **state)
{
    (void)state;
    static const task_type types[] = { TASK_PLAN, TASK_PLAN_AND_APPLY, TASK_DRIFT_CHECK };
    for (size_t i = 0; i < 3; i++) {
        task_type got = TASK_TYPE_NONE;
        assert_int_equal(slots_type_parse(slots_type_name(types[i]), &got), 0);
        assert_int_equal(got, types[i]);
    }
    static const char *bad[] = { "apply", "", "Plan", "plan ", "drift", "none" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        task_type got = TASK_PLAN;
        assert_int_equal(slots_type_parse(bad[i], &got), -1);
        assert_int_equal(got, TASK_PLAN);
    }
    task_type got;
    assert_int_equal(slots_type_parse(NULL, &got), -1);
    assert_int_equal(slots_action_parse("apply"), ACTION_APPLY);
    assert_int_equal(slots_action_parse("plan"), ACTION_PLAN);
    assert_int_equal(slots_action_parse("APPLY"), ACTION_PLAN);
    assert_int_equal(slots_action_parse("destroy"), ACTION_PLAN);
    assert_int_equal(slots_action_parse(""), ACTION_PLAN);
    assert_int_equal(slots_action_parse(NULL), ACTION_PLAN);
}

/* Every reason has its own non-empty phrase; unknown codes still get one. */
static void every_reason_has_a_phrase(void **state)
{
    (void)state;
    static const int codes[] = { SLOTS_E_DRAINING, SLOTS_E_NO_SLOT, SLOTS_E_RESERVED, SLOTS_E_DUPLICATE,
                                 SLOTS_E_INVALID, SLOTS_E_STATE };
    for (size_t a = 0; a < sizeof codes / sizeof codes[0]; a++) {
        assert_true(slots_strerror(codes[a])[0] != '\0');
        for (size_t b = a + 1; b < sizeof codes / sizeof codes[0]; b++)
            assert_string_not_equal(slots_strerror(codes[a]), slots_strerror(codes[b]));
    }
    assert_non_null(slots_strerror(-100));
    assert_non_null(slots_strerror(5));
    assert_non_null(slots_strerror(-2147483647 - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_makes_every_slot_idle),
        cmocka_unit_test(placement_for_every_type_action_slot0_state_and_drain),
        cmocka_unit_test(duplicate_is_detected_before_draining),
        cmocka_unit_test(apply_uses_its_own_reservation),
        cmocka_unit_test(apply_takes_idle_slot0_cold),
        cmocka_unit_test(apply_refused_while_reserved_for_another),
        cmocka_unit_test(apply_refused_while_slot0_runs),
        cmocka_unit_test(plan_takes_lowest_idle_slot_and_none_when_full),
        cmocka_unit_test(plan_and_apply_lifecycle),
        cmocka_unit_test(plan_lifecycle),
        cmocka_unit_test(release_paths),
        cmocka_unit_test(finish_paths),
        cmocka_unit_test(reserve_only_from_slot0_plan),
        cmocka_unit_test(start_needs_an_idle_slot),
        cmocka_unit_test(draining_still_lets_work_end),
        cmocka_unit_test(invalid_arguments),
        cmocka_unit_test(find_reports_running_and_reserved),
        cmocka_unit_test(summary_in_each_state),
        cmocka_unit_test(smallest_table),
        cmocka_unit_test(largest_table),
        cmocka_unit_test(names_are_the_wire_strings),
        cmocka_unit_test(parsing_types_and_actions),
        cmocka_unit_test(every_reason_has_a_phrase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
