/* test_heartbeat.c — the heartbeat payload: upstream fields as DESIGN §4.2 computes them, and our extensions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../agent/heartbeat.h"

static proto_heartbeat *build(heartbeat_frame *f, const slot_table *t, bool draining)
{
    heartbeat_build(f, t, draining, 1700000000, 42.5, "9.9.9");
    assert_int_equal(f->msg.type, MSG_HEARTBEAT);
    return &f->msg.u.heartbeat;
}

/* An idle 4-slot agent advertises 3 plan slots, no apply, an empty (not null) task list, and 4 idle slots. */
static void idle_agent_reports_free_capacity(void **state)
{
    (void)state;
    slot_table t;
    slots_init(&t, 4, 5000);
    heartbeat_frame f;
    proto_heartbeat *h = build(&f, &t, false);
    assert_int_equal(h->plan_limit, 3);
    assert_int_equal(h->plan_running, 0);
    assert_false(h->apply_running);
    assert_false(h->current_tasks_null);
    assert_int_equal(h->n_current_tasks, 0);
    assert_string_equal(h->status, "ok");
    assert_int_equal(h->timestamp, 1700000000);
    assert_true(h->has_slots);
    assert_int_equal(h->n_slots, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(h->slots[i].slot_id, i);
        assert_string_equal(h->slots[i].status, "idle");
        assert_null(h->slots[i].task_type);
        assert_int_equal(h->slots[i].since, 5);
    }
    assert_string_equal(h->state, "ready");
    assert_string_equal(h->agent_version, "9.9.9");
    assert_int_equal(h->n_capabilities, 3);
    assert_string_equal(h->capabilities[0], "slots");
}

/* A reserved slot 0 reports apply_running false (so upstream sends the confirmed apply back here), while running
 * plans count in plan_running and current_tasks. */
static void reserved_slot_zero_is_not_apply_running(void **state)
{
    (void)state;
    slot_table t;
    slots_init(&t, 4, 0);
    assert_int_equal(slots_start(&t, 0, 11, TASK_PLAN_AND_APPLY, ACTION_PLAN, 1000), 0);
    assert_int_equal(slots_reserve(&t, 11, 2000), 0);
    assert_int_equal(slots_start(&t, 1, 12, TASK_PLAN, ACTION_PLAN, 3000), 0);
    assert_int_equal(slots_start(&t, 3, 13, TASK_DRIFT_CHECK, ACTION_PLAN, 3000), 0);
    heartbeat_frame f;
    proto_heartbeat *h = build(&f, &t, false);
    assert_false(h->apply_running);
    assert_int_equal(h->plan_running, 2);
    assert_int_equal(h->n_current_tasks, 2);
    assert_int_equal(h->current_tasks[0], 12);
    assert_int_equal(h->current_tasks[1], 13);
    assert_string_equal(h->slots[0].status, "reserved");
    assert_int_equal(h->slots[0].task_id, 11);
    assert_string_equal(h->slots[0].task_type, "plan_and_apply");
    assert_string_equal(h->slots[3].task_type, "drift_check");
    assert_true(h->cpu_usage > 39.9 && h->cpu_usage < 40.1); /* upstream's 10 + 15 × tasks */

    /* The apply starts on the reservation: now slot 0 is running. */
    assert_int_equal(slots_start(&t, 0, 11, TASK_PLAN_AND_APPLY, ACTION_APPLY, 4000), 0);
    h = build(&f, &t, false);
    assert_true(h->apply_running);
    assert_string_equal(h->slots[0].action, "apply");
}

/* Draining: plan_limit 0 and apply_running true, so an upstream plane sends nothing new; state says so. */
static void draining_agent_advertises_no_capacity(void **state)
{
    (void)state;
    slot_table t;
    slots_init(&t, 6, 0);
    t.draining = true;
    heartbeat_frame f;
    proto_heartbeat *h = build(&f, &t, true);
    assert_int_equal(h->plan_limit, 0);
    assert_true(h->apply_running);
    assert_string_equal(h->state, "draining");
    assert_int_equal(h->n_slots, 6);
}

/* The built message encodes to a frame that decodes back with the same fields. */
static void heartbeat_encodes_and_decodes(void **state)
{
    (void)state;
    slot_table t;
    slots_init(&t, 4, 0);
    assert_int_equal(slots_start(&t, 2, 77, TASK_PLAN, ACTION_PLAN, 9000), 0);
    heartbeat_frame f;
    build(&f, &t, false);
    size_t len = 0;
    char *frame = proto_encode(&f.msg, &len);
    assert_non_null(frame);
    proto_msg back;
    char err[256];
    assert_int_equal(proto_decode(frame, len, &back, err, sizeof err), PROTO_OK);
    assert_int_equal(back.type, MSG_HEARTBEAT);
    assert_int_equal(back.u.heartbeat.n_slots, 4);
    assert_int_equal(back.u.heartbeat.slots[2].task_id, 77);
    assert_string_equal(back.u.heartbeat.slots[2].status, "running");
    assert_int_equal(back.u.heartbeat.plan_running, 1);
    assert_int_equal(back.u.heartbeat.n_current_tasks, 1);
    proto_msg_free(&back);
    free(frame);
}

/* mem_usage is (MemTotal − MemAvailable) / MemTotal in percent, found by name on any line; text without either
 * field, or with impossible values, gives 0 (upstream's value when it cannot read the numbers). */
static void mem_usage_is_parsed_from_meminfo(void **state)
{
    (void)state;
    assert_true(heartbeat_parse_meminfo("MemTotal:       1000 kB\nMemFree:     100 kB\nMemAvailable:    250 kB\n") == 75.0);
    assert_true(heartbeat_parse_meminfo("MemAvailable: 500 kB\nMemTotal: 2000 kB\n") == 75.0);
    assert_true(heartbeat_parse_meminfo("MemTotal: 2000 kB\nMemFree: 10 kB\n") == 0);
    assert_true(heartbeat_parse_meminfo("MemTotalX: 2000 kB\nMemAvailable: 10 kB\n") == 0);
    assert_true(heartbeat_parse_meminfo("MemTotal: 100 kB\nMemAvailable: 200 kB\n") == 0);
    assert_true(heartbeat_parse_meminfo("") == 0);
    double live = heartbeat_mem_usage(); /* this machine's, read for real */
    assert_true(live > 0 && live < 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mem_usage_is_parsed_from_meminfo),
        cmocka_unit_test(idle_agent_reports_free_capacity),
        cmocka_unit_test(reserved_slot_zero_is_not_apply_running),
        cmocka_unit_test(draining_agent_advertises_no_capacity),
        cmocka_unit_test(heartbeat_encodes_and_decodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
