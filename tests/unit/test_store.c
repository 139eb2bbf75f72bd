/* test_store.c — the agent's persisted state: what survives a restart, and what a corrupt file does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/store.h"
#include "iac/fsutil.h"

static int setup_dir(void **state)
{
    char tmpl[] = "/tmp/iac-test-store-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    *state = strdup(dir);
    return 0;
}

static int teardown_dir(void **state)
{
    fs_rm_rf(*state);
    free(*state);
    return 0;
}

static void fresh_store(agent_store *st, int n)
{
    memset(st, 0, sizeof *st);
    slots_init(&st->slots, n, 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600), 0);
}

static int count_entries_with_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/* A data directory without a state file is a first start, and the directory is created if missing. */
static void missing_file_is_a_fresh_start(void **state)
{
    char sub[512], msg[256];
    snprintf(sub, sizeof sub, "%s/a/b", (char *)*state);
    agent_store st;
    fresh_store(&st, 4);
    assert_int_equal(store_load(sub, &st, msg, sizeof msg), STORE_FRESH);
    assert_string_equal(st.agent_id, "");
    assert_int_equal(st.slots.n, 4);
    assert_int_equal(access(sub, W_OK), 0);
}

/* Identity, earlier ids and slot 0's reservation survive a save and a load; a running task becomes
 * "interrupted" (to be reported as failed), and its slot comes back idle. */
static void reservation_survives_and_running_task_is_interrupted(void **state)
{
    const char *dir = *state;
    char msg[256];
    agent_store st;
    fresh_store(&st, 4);
    store_set_identity(&st, "agent-p-1", "p");
    store_set_identity(&st, "agent-p-2", "p");
    assert_int_equal(slots_start(&st.slots, 0, 7, TASK_PLAN_AND_APPLY, ACTION_PLAN, 1000), 0);
    assert_int_equal(slots_reserve(&st.slots, 7, 2000), 0);
    assert_int_equal(slots_start(&st.slots, 2, 9, TASK_DRIFT_CHECK, ACTION_PLAN, 3000), 0);
    assert_int_equal(store_save(dir, &st), 0);

    agent_store back;
    fresh_store(&back, 4);
    assert_int_equal(store_load(dir, &back, msg, sizeof msg), STORE_LOADED);
    assert_string_equal(back.agent_id, "agent-p-2");
    assert_string_equal(back.pool_id, "p");
    assert_true(store_is_own_id(&back, "agent-p-1"));
    assert_true(store_is_own_id(&back, "agent-p-2"));
    assert_false(store_is_own_id(&back, "agent-p-3"));
    assert_int_equal(back.slots.s[0].status, SLOT_RESERVED);
    assert_int_equal(back.slots.s[0].task_id, 7);
    assert_int_equal(back.slots.s[0].since_ms, 2000);
    assert_int_equal(back.slots.s[2].status, SLOT_IDLE);
    assert_int_equal(back.n_interrupted, 1);
    assert_int_equal(back.interrupted[0].task_id, 9);
    assert_int_equal(back.interrupted[0].type, TASK_DRIFT_CHECK);

    /* The interrupted list itself is persisted until the task is reported. */
    assert_int_equal(store_save(dir, &back), 0);
    agent_store again;
    fresh_store(&again, 4);
    assert_int_equal(store_load(dir, &again, msg, sizeof msg), STORE_LOADED);
    assert_int_equal(again.n_interrupted, 1);
    store_forget_interrupted(&again, 9);
    assert_int_equal(again.n_interrupted, 0);
}

/* Garbage, a wrong type or an unknown version is reported, moved aside (kept for a person to read) and the agent
 * starts fresh: never a crash, never a refusal to start. */
static void corrupt_file_is_moved_aside(void **state)
{
    const char *dir = *state;
    static const char *const bad[] = {
        "\x01\x02 not json at all",
        "{\"version\":1,\"agent_id\":42}",
        "{\"version\":2}",
        "[1,2,3]",
        "{\"version\":1,\"slots\":[{\"slot_id\":0,\"status\":\"reserved\",\"task_id\":\"seven\","
        "\"task_type\":\"plan_and_apply\"}]}",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char sub[512], msg[512];
        snprintf(sub, sizeof sub, "%s/case%zu", dir, i);
        assert_int_equal(fs_mkdir_p(sub, 0700), 0);
        write_file(sub, "state.json", bad[i]);
        agent_store st;
        fresh_store(&st, 4);
        assert_int_equal(store_load(sub, &st, msg, sizeof msg), STORE_CORRUPT);
        assert_non_null(strstr(msg, "corrupt"));
        assert_string_equal(st.agent_id, "");
        assert_int_equal(st.slots.s[0].status, SLOT_IDLE);
        assert_int_equal(count_entries_with_prefix(sub, "state.json.corrupt-"), 1);
        char path[600];
        snprintf(path, sizeof path, "%s/state.json", sub);
        assert_int_not_equal(access(path, F_OK), 0); /* the bad file is no longer where the agent reads */
    }
}

/* A reservation recorded for a slot that no longer exists, or on a slot other than 0, is not resurrected. */
static void reservation_outside_slot_zero_is_dropped(void **state)
{
    const char *dir = *state;
    char msg[256];
    write_file(dir, "state.json",
               "{\"version\":1,\"agent_id\":\"a\",\"pool_id\":\"p\",\"slots\":[{\"slot_id\":3,\"status\":\"reserved\","
               "\"task_id\":5,\"task_type\":\"plan_and_apply\"},{\"slot_id\":9,\"status\":\"running\",\"task_id\":6,"
               "\"task_type\":\"plan\"}]}");
    agent_store st;
    fresh_store(&st, 4);
    assert_int_equal(store_load(dir, &st, msg, sizeof msg), STORE_LOADED);
    for (int i = 0; i < 4; i++)
        assert_int_equal(st.slots.s[i].status, SLOT_IDLE);
    assert_int_equal(st.n_interrupted, 1);
    assert_int_equal(st.interrupted[0].task_id, 6);
}

/* Earlier agent ids are remembered newest first, without duplicates, and at most STORE_PAST_IDS of them. */
static void past_ids_are_bounded_and_deduplicated(void **state)
{
    (void)state;
    agent_store st;
    fresh_store(&st, 2);
    char id[64];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "agent-p-%d", i);
        store_set_identity(&st, id, "p");
    }
    store_set_identity(&st, "agent-p-39", "p"); /* same id again: nothing moves */
    assert_string_equal(st.agent_id, "agent-p-39");
    assert_int_equal(st.n_past_ids, STORE_PAST_IDS);
    assert_string_equal(st.past_ids[0], "agent-p-38");
    assert_true(store_is_own_id(&st, "agent-p-24"));
    assert_false(store_is_own_id(&st, "agent-p-22"));
    assert_false(store_is_own_id(&st, ""));
}

/* Only a save that takes a slot for a starting task skips the fsyncs; a task that ends, a reservation, an identity
 * or an interrupted list is saved durably. Either way the file is complete for the next load: a restarted agent
 * finds the task that had just started and reports it. */
static void only_a_starting_task_is_saved_without_fsync(void **state)
{
    const char *dir = *state;
    char msg[256];
    agent_store st;
    fresh_store(&st, 4);
    store_set_identity(&st, "agent-p-1", "p");
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(st.written.durable); /* the first save after a start */

    assert_int_equal(slots_start(&st.slots, 1, 11, TASK_PLAN, ACTION_PLAN, 1000), 0);
    assert_int_equal(store_save(dir, &st), 0);
    assert_false(st.written.durable); /* a take */
    assert_int_equal(slots_start(&st.slots, 2, 12, TASK_PLAN, ACTION_PLAN, 1001), 0);
    assert_int_equal(store_save(dir, &st), 0);
    assert_false(st.written.durable); /* another, while the first runs */

    agent_store back;
    fresh_store(&back, 4);
    assert_int_equal(store_load(dir, &back, msg, sizeof msg), STORE_LOADED);
    assert_int_equal(back.n_interrupted, 2);
    assert_int_equal(back.interrupted[0].task_id, 11);
    assert_int_equal(back.interrupted[1].task_id, 12);
    assert_false(back.written.durable);
    assert_int_equal(back.written.rest, 0);

    assert_int_equal(slots_finish(&st.slots, 11, 2000), 0);
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(st.written.durable); /* an end: lost, a success would be reported as failed */
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(st.written.durable); /* nothing changed */

    /* A take together with any other change is durable. */
    assert_int_equal(slots_start(&st.slots, 1, 13, TASK_PLAN, ACTION_PLAN, 3000), 0);
    assert_int_equal(slots_finish(&st.slots, 12, 3000), 0);
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(st.written.durable);
    assert_int_equal(slots_start(&st.slots, 0, 14, TASK_PLAN_AND_APPLY, ACTION_PLAN, 4000), 0);
    store_set_identity(&st, "agent-p-2", "p");
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(st.written.durable);

    /* A reservation made or used is durable. */
    assert_int_equal(slots_reserve(&st.slots, 14, 5000), 0);
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(st.written.durable);
    assert_int_equal(slots_start(&st.slots, 0, 14, TASK_PLAN_AND_APPLY, ACTION_APPLY, 6000), 0);
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(st.written.durable);

    /* The interrupted list shrinking (a task reported) is durable. */
    assert_int_equal(store_load(dir, &back, msg, sizeof msg), STORE_LOADED);
    assert_int_equal(store_save(dir, &back), 0);
    assert_true(back.written.durable);
    store_forget_interrupted(&back, back.interrupted[0].task_id);
    assert_int_equal(store_save(dir, &back), 0);
    assert_true(back.written.durable);
}

static ino_t state_inode(const char *dir)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/state.json", dir);
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_ino;
}

/* A save that would write what the last durable save wrote writes nothing (each write renames a new file into
 * place, so the inode tells); after a take it writes once more, durably, and then no more. */
static void a_save_that_changes_nothing_writes_nothing(void **state)
{
    const char *dir = *state;
    agent_store st;
    fresh_store(&st, 4);
    store_set_identity(&st, "agent-p-1", "p");
    assert_int_equal(store_save(dir, &st), 0);
    ino_t first = state_inode(dir);
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(state_inode(dir) == first);
    assert_true(st.written.durable);

    assert_int_equal(slots_start(&st.slots, 1, 11, TASK_PLAN, ACTION_PLAN, 1000), 0);
    assert_int_equal(store_save(dir, &st), 0);
    assert_false(st.written.durable);
    ino_t take = state_inode(dir);
    assert_true(take != first);
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(st.written.durable);
    ino_t durable = state_inode(dir);
    assert_true(durable != take);
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(state_inode(dir) == durable);

    store_set_identity(&st, "agent-p-2", "p"); /* any change is written */
    assert_int_equal(store_save(dir, &st), 0);
    assert_true(state_inode(dir) != durable);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(missing_file_is_a_fresh_start, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(reservation_survives_and_running_task_is_interrupted, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(corrupt_file_is_moved_aside, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(reservation_outside_slot_zero_is_dropped, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(past_ids_are_bounded_and_deduplicated, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(a_save_that_changes_nothing_writes_nothing, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(only_a_starting_task_is_saved_without_fsync, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
