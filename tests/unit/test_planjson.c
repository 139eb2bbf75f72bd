/* test_planjson.c — what the agent reads from terraform's output (planjson.h): change counts and the E10 body from
 * plan JSON (ref §7.4 step 5c, §7.9), real output changes, apply progress lines and their status messages, and the
 * streaming error_message extractor (ref §7.7).
 *
 * Plan fixtures are written with ' for " so they stay readable; q() turns them back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/planjson.h"

/* ---- helpers --------------------------------------------------------------------------------------------------- */

static char *q(const char *src)
{
    char *s = strdup(src);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static cJSON *plan_of(const char *fixture)
{
    char *text = q(fixture);
    char err[256] = "";
    cJSON *plan = planjson_parse(text, strlen(text), err, sizeof err);
    if (!plan)
        fail_msg("fixture does not parse: %s", err);
    free(text);
    return plan;
}

/* One resource_changes item in the shape terraform 1.6 writes. */
#define RC(addr, mod, type, name, actions, before, after)                                                             \
    "{'address':'" addr "'," mod "'mode':'managed','type':'" type "','name':'" name "',"                             \
    "'provider_name':'registry.terraform.io/hashicorp/null','change':{'actions':" actions ","                        \
    "'before':" before ",'after':" after ",'after_unknown':{},'before_sensitive':{},'after_sensitive':{}}}"

#define PLAN(resource_changes, output_changes)                                                                        \
    "{'format_version':'1.2','terraform_version':'1.6.6','planned_values':{'root_module':{}},"                       \
    "'resource_changes':[" resource_changes "],'output_changes':{" output_changes "},"                             \
    "'prior_state':{'format_version':'1.0','terraform_version':'1.6.6','values':{'root_module':{}}},"                \
    "'configuration':{'provider_config':{'null':{'name':'null','full_name':'registry.terraform.io/hashicorp/null'}},"\
    "'root_module':{}},'timestamp':'2024-05-01T10:00:00Z','applyable':true,'complete':true,'errored':false}"

/* Every action combination terraform produces, plus items upstream skips. */
static const char every_action_plan[] = PLAN(
    RC("null_resource.new", "", "null_resource", "new", "['create']", "null", "{'triggers':{'v':'1'}}") ","
    RC("null_resource.upd", "", "null_resource", "upd", "['update']", "{'triggers':{'v':'1'}}",
       "{'triggers':{'v':'2'}}") ","
    RC("null_resource.old", "", "null_resource", "old", "['delete']", "{'id':'7'}", "null") ","
    RC("null_resource.rep", "", "null_resource", "rep", "['delete','create']", "{'id':'8'}", "{'id':null}") ","
    RC("null_resource.cbd", "", "null_resource", "cbd", "['create','delete']", "{'id':'9'}", "{'id':null}") ","
    RC("null_resource.same", "", "null_resource", "same", "['no-op']", "{'id':'1'}", "{'id':'1'}") ","
    "{'address':'data.http.x','mode':'data','type':'http','name':'x','change':{'actions':['read'],"
    "'before':null,'after':{'url':'https://example.com'}}},"
    RC("null_resource.odd", "", "null_resource", "odd", "['forget']", "{}", "null") ","
    RC("null_resource.three", "", "null_resource", "three", "['delete','create','update']", "null", "null") ","
    RC("null_resource.none", "", "null_resource", "none", "[]", "null", "null") ","
    "{'address':'no_change_object','change':'create'},"
    "{'address':'actions_not_array','change':{'actions':'create'}},"
    "{'address':'no_change_at_all'},"
    "'not an object',"
    RC("module.app.null_resource.web[0]", "'module_address':'module.app',", "null_resource", "web", "['create']",
       "null", "{'triggers':null}"),
    "");

/* ---- counts ---------------------------------------------------------------------------------------------------- */

/* create/update/delete each count once; both replace orders count in add and destroy; no-op, read, unknown action
 * strings and malformed items count nothing. */
static void counts_every_action_combination(void **state)
{
    (void)state;
    cJSON *plan = plan_of(every_action_plan);
    planjson_counts c;
    char err[256];
    assert_int_equal(planjson_count(plan, &c, err, sizeof err), 0);
    /* add: new, rep, cbd, three, module web; change: upd, three; destroy: old, rep, cbd, three */
    assert_int_equal(c.add, 5);
    assert_int_equal(c.change, 2);
    assert_int_equal(c.destroy, 4);
    cJSON_Delete(plan);
}

/* A plan with nothing to do has no resource_changes member (terraform omits it) or an empty one: all zero. */
static void counts_zero_without_resource_changes(void **state)
{
    (void)state;
    const char *texts[] = { "{'format_version':'1.2','terraform_version':'1.6.6','applyable':false}",
                            "{'format_version':'1.2','resource_changes':[]}",
                            "{'format_version':'1.2','resource_changes':null}" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        cJSON *plan = plan_of(texts[i]);
        planjson_counts c = { 9, 9, 9 };
        char err[256];
        assert_int_equal(planjson_count(plan, &c, err, sizeof err), 0);
        assert_int_equal(c.add + c.change + c.destroy, 0);
        cJSON_Delete(plan);
    }
}

/* Text that is not one JSON object, and top-level members of the wrong type, are errors with a message. */
static void malformed_plan_json_is_an_error(void **state)
{
    (void)state;
    char err[256];
    const char *bad[] = { "", "not json", "[1,2]", "{\"a\":1} trailing", "{\"resource_changes\":[" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_null(planjson_parse(bad[i], strlen(bad[i]), err, sizeof err));
        assert_non_null(strstr(err, "plan JSON"));
    }
    assert_null(planjson_parse(NULL, 0, err, sizeof err));

    cJSON *plan = plan_of("{'resource_changes':{'a':1},'output_changes':[1]}");
    planjson_counts c;
    strbuf b = STRBUF_INIT;
    int n = -1;
    bool changed = true;
    err[0] = '\0';
    assert_int_equal(planjson_count(plan, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "resource_changes"));
    assert_int_equal(planjson_resource_changes(plan, &b, &n, err, sizeof err), -1);
    assert_int_equal(planjson_output_changed(plan, &changed, err, sizeof err), -1);
    assert_non_null(strstr(err, "output_changes"));
    assert_false(changed);
    cJSON_Delete(plan);

    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(planjson_count(arr, &c, err, sizeof err), -1);
    assert_int_equal(planjson_count(NULL, &c, err, sizeof err), -1);
    assert_int_equal(planjson_output_changed(arr, &changed, err, sizeof err), -1);
    cJSON_Delete(arr);
    strbuf_free(&b);
}

/* ---- E10 body -------------------------------------------------------------------------------------------------- */

/* The body is Go's compact json.Marshal of the upstream maps: keys sorted at every level (inside before/after too),
 * <>& escaped, integral numbers without a fraction; root-module changes get module_address "". */
static void resource_changes_body_is_exact(void **state)
{
    (void)state;
    cJSON *plan = plan_of(PLAN(
        RC("module.net[\\'eu\\'].aws_vpc.main", "'module_address':'module.net[\\'eu\\']',", "aws_vpc", "main",
           "['update']", "{'tags':{'z':'1','a':'<b>&'},'cidr':'10.0.0.0/16','n':2.0}",
           "{'cidr':'10.1.0.0/16','tags':{'a':'<b>&','z':'1'},'n':2.5}") ","
        RC("null_resource.a", "", "null_resource", "a", "['delete','create']", "{'id':'1'}", "{'id':null}"),
        ""));
    strbuf b = STRBUF_INIT;
    int n = -1;
    char err[256];
    assert_int_equal(planjson_resource_changes(plan, &b, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    char *want = q("{'resource_changes':["
                   "{'action':'update',"
                   "'changes_after':{'cidr':'10.1.0.0/16','n':2.5,'tags':{'a':'\\u003cb\\u003e\\u0026','z':'1'}},"
                   "'changes_before':{'cidr':'10.0.0.0/16','n':2,'tags':{'a':'\\u003cb\\u003e\\u0026','z':'1'}},"
                   "'module_address':'module.net[\\'eu\\']',"
                   "'resource_address':'module.net[\\'eu\\'].aws_vpc.main',"
                   "'resource_name':'main','resource_type':'aws_vpc'},"
                   "{'action':'replace','changes_after':{'id':null},'changes_before':{'id':'1'},"
                   "'module_address':'','resource_address':'null_resource.a','resource_name':'a',"
                   "'resource_type':'null_resource'}]}");
    assert_string_equal(b.data, want);
    free(want);
    /* And it is valid JSON the server can bind. */
    cJSON *back = cJSON_Parse(b.data);
    assert_non_null(back);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(back, "resource_changes")), 2);
    cJSON_Delete(back);
    strbuf_free(&b);
    cJSON_Delete(plan);
}

/* Items without an object change with an array actions and exactly ["no-op"] are left out; read stays in; the
 * action is the single string, "replace" only for ["delete","create"], "unknown" for any other list. */
static void resource_changes_actions_and_skips(void **state)
{
    (void)state;
    cJSON *plan = plan_of(every_action_plan);
    strbuf b = STRBUF_INIT;
    int n = -1;
    char err[256];
    assert_int_equal(planjson_resource_changes(plan, &b, &n, err, sizeof err), 0);
    cJSON *body = cJSON_Parse(b.data);
    assert_non_null(body);
    const cJSON *list = cJSON_GetObjectItem(body, "resource_changes");
    static const struct {
        const char *address, *action, *module;
    } want[] = {
        { "null_resource.new", "create", "" },        { "null_resource.upd", "update", "" },
        { "null_resource.old", "delete", "" },        { "null_resource.rep", "replace", "" },
        { "null_resource.cbd", "unknown", "" },       { "data.http.x", "read", "" },
        { "null_resource.odd", "forget", "" },        { "null_resource.three", "unknown", "" },
        { "null_resource.none", "unknown", "" },      { "module.app.null_resource.web[0]", "create", "module.app" },
    };
    assert_int_equal(n, (int)(sizeof want / sizeof want[0]));
    assert_int_equal(cJSON_GetArraySize(list), n);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        assert_string_equal(cJSON_GetObjectItem(e, "resource_address")->valuestring, want[i].address);
        assert_string_equal(cJSON_GetObjectItem(e, "action")->valuestring, want[i].action);
        assert_string_equal(cJSON_GetObjectItem(e, "module_address")->valuestring, want[i].module);
        assert_int_equal(cJSON_GetArraySize(e), 7);
    }
    /* The data source keeps its own type and name; before/after are copied. */
    const cJSON *read = cJSON_GetArrayItem(list, 5);
    assert_string_equal(cJSON_GetObjectItem(read, "resource_type")->valuestring, "http");
    assert_string_equal(cJSON_GetObjectItem(read, "resource_name")->valuestring, "x");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(read, "changes_before")));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(read, "changes_after"), "url")->valuestring,
                        "https://example.com");
    cJSON_Delete(body);
    strbuf_free(&b);
    cJSON_Delete(plan);
}

/* No changes at all (or only no-ops) is an empty list; missing string fields read as "" and a missing before/after
 * as null. */
static void resource_changes_empty_and_missing_fields(void **state)
{
    (void)state;
    char err[256];
    int n = -1;
    strbuf b = STRBUF_INIT;
    cJSON *plan = plan_of("{'format_version':'1.2'}");
    assert_int_equal(planjson_resource_changes(plan, &b, &n, err, sizeof err), 0);
    assert_string_equal(b.data, "{\"resource_changes\":[]}");
    assert_int_equal(n, 0);
    cJSON_Delete(plan);

    strbuf_reset(&b);
    plan = plan_of(PLAN(RC("a.b", "", "a", "b", "['no-op']", "null", "null"), ""));
    assert_int_equal(planjson_resource_changes(plan, &b, &n, err, sizeof err), 0);
    assert_string_equal(b.data, "{\"resource_changes\":[]}");
    assert_int_equal(n, 0);
    cJSON_Delete(plan);

    strbuf_reset(&b);
    plan = plan_of("{'resource_changes':[{'address':7,'change':{'actions':['create']}}]}");
    assert_int_equal(planjson_resource_changes(plan, &b, &n, err, sizeof err), 0);
    char *want = q("{'resource_changes':[{'action':'create','changes_after':null,'changes_before':null,"
                   "'module_address':'','resource_address':'','resource_name':'','resource_type':''}]}");
    assert_string_equal(b.data, want);
    free(want);
    cJSON_Delete(plan);
    strbuf_free(&b);
}

/* ---- real output changes --------------------------------------------------------------------------------------- */

static bool output_changed(const char *output_changes)
{
    char *wrapped = malloc(strlen(output_changes) + 64);
    assert_non_null(wrapped);
    sprintf(wrapped, "{'format_version':'1.2','output_changes':{%s}}", output_changes);
    cJSON *plan = plan_of(wrapped);
    free(wrapped);
    bool changed = true;
    char err[256];
    assert_int_equal(planjson_output_changed(plan, &changed, err, sizeof err), 0);
    cJSON_Delete(plan);
    return changed;
}

#define OC(name, actions, before, after)                                                                              \
    "'" name "':{'actions':" actions ",'before':" before ",'after':" after ",'after_unknown':false,"                  \
    "'before_sensitive':false,'after_sensitive':false}"

/* An output counts only when its actions are not exactly ["no-op"] and before and after encode differently; the
 * same object with its keys in another order, or 1 and 1.0, is no change. */
static void output_changes_compare_canonical_json(void **state)
{
    (void)state;
    assert_false(output_changed(""));
    assert_false(output_changed(OC("a", "['no-op']", "'x'", "'x'")));
    /* no-op wins even if the values differ (upstream only compares the others) */
    assert_false(output_changed(OC("a", "['no-op']", "'x'", "'y'")));
    assert_false(output_changed(OC("a", "['update']", "{'b':1,'a':[1,{'d':2,'c':3}]}",
                                   "{'a':[1.0,{'c':3,'d':2}],'b':1}")));
    assert_true(output_changed(OC("a", "['update']", "{'b':1}", "{'b':2}")));
    assert_true(output_changed(OC("a", "['update']", "[1,2]", "[2,1]")));
    assert_true(output_changed(OC("a", "['create']", "null", "'hello'")));
    assert_true(output_changed(OC("a", "['delete']", "'bye'", "null")));
    assert_true(output_changed(OC("a", "['update']", "'1'", "1")));
    /* after unknown until apply: before and after are both null, so upstream sees no change */
    assert_false(output_changed(OC("a", "['create']", "null", "null")));
    /* missing actions is not ["no-op"]; missing before/after read as null */
    assert_true(output_changed("'a':{'after':'v'}"));
    assert_false(output_changed("'a':{'before':null}"));
    /* one changed output among unchanged ones is enough; non-object entries are skipped */
    assert_true(output_changed("'x':7," OC("a", "['no-op']", "1", "1") "," OC("b", "['update']", "1", "2")));
}

/* ---- apply progress lines -------------------------------------------------------------------------------------- */

static void expect_progress(const char *line, const char *address, const char *status, const char *action)
{
    planjson_progress p;
    if (!planjson_parse_progress(line, strlen(line), &p))
        fail_msg("no match for: %s", line);
    assert_int_equal(p.address_len, strlen(address));
    assert_memory_equal(p.address, address, p.address_len);
    assert_string_equal(p.apply_status, status);
    assert_string_equal(p.action, action);
}

static void expect_no_progress(const char *line)
{
    planjson_progress p;
    if (planjson_parse_progress(line, strlen(line), &p))
        fail_msg("unexpected match for: %s", line);
}

/* The six suffixes of the ref §7.9 table map to their status and action, whatever follows them. */
static void progress_table(void **state)
{
    (void)state;
    expect_progress("null_resource.a: Creating...", "null_resource.a", "applying", "create");
    expect_progress("aws_instance.web: Modifying... [id=i-0abc]", "aws_instance.web", "applying", "update");
    expect_progress("aws_s3_bucket.b: Destroying... [id=my-bucket]", "aws_s3_bucket.b", "applying", "delete");
    expect_progress("null_resource.a: Creation complete after 0s [id=4404350176882817396]", "null_resource.a",
                    "completed", "create");
    expect_progress("aws_instance.web: Modifications complete after 1m2s [id=i-0abc]", "aws_instance.web",
                    "completed", "update");
    expect_progress("aws_s3_bucket.b: Destruction complete after 3s", "aws_s3_bucket.b", "completed", "delete");
}

/* Module paths, index keys in quotes, dashes, surrounding whitespace, CRLF and a tab after the colon all match. */
static void progress_unusual_addresses(void **state)
{
    (void)state;
    expect_progress("module.a[\"x\"].b[0]: Creating...", "module.a[\"x\"].b[0]", "applying", "create");
    expect_progress("module.vpc-eu.module.subnets[\"a-1\"].aws_subnet.this[12]: Destruction complete after 1s",
                    "module.vpc-eu.module.subnets[\"a-1\"].aws_subnet.this[12]", "completed", "delete");
    expect_progress("   null_resource.a:   Creating...  \r\n", "null_resource.a", "applying", "create");
    expect_progress("null_resource.a:\tModifying...", "null_resource.a", "applying", "update");
    /* the address points into the caller's line */
    const char *line = "  x.y: Creating...";
    planjson_progress p;
    assert_true(planjson_parse_progress(line, strlen(line), &p));
    assert_ptr_equal(p.address, line + 2);
}

/* Everything else is no match: progress terraform prints that is not in the table, addresses with characters
 * outside the pattern, a missing space, other lines. */
static void progress_non_matches(void **state)
{
    (void)state;
    const char *lines[] = {
        "aws_s3.b: Still creating... [10s elapsed]",
        "aws_s3.b: Still destroying... [id=x, 20s elapsed]",
        "null_resource.a: Refreshing state... [id=1]",
        "module.a[\"x y\"].b: Creating...",
        "module.a[\"k:v\"].b: Creating...",
        "module.a[\"p/q\"].b: Creating...",
        "null resource.a: Creating...",
        "null_resource.a:Creating...",
        "null_resource.a Creating...",
        ": Creating...",
        "null_resource.a: Creating..",
        "null_resource.a: creating...",
        "null_resource.a: Creation complete",
        "null_resource.a: Modification complete after 1s",
        "null_resource.a: Destruction failed",
        "Plan: 1 to add, 0 to change, 0 to destroy.",
        "Apply complete! Resources: 1 added, 0 changed, 0 destroyed.",
        "[12:00:00.000] [INFO] null_resource.a: Creating...",
        "",
        "   ",
        "null_resource.a:",
        "null_resource.a: ",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        expect_no_progress(lines[i]);
    planjson_progress p;
    assert_false(planjson_parse_progress(NULL, 0, &p));
    /* the length bounds the line: a match past len does not count */
    assert_false(planjson_parse_progress("a.b: Creating...", 10, &p));
}

/* The resource_status_update line is the ref §3.9 JSON with keys in its order; quotes in the address escaped. */
static void status_update_line_is_exact(void **state)
{
    (void)state;
    const char *line = "module.a[\"x\"].b[0]: Creation complete after 2s [id=abc]";
    planjson_progress p;
    assert_true(planjson_parse_progress(line, strlen(line), &p));
    strbuf b = STRBUF_INIT;
    planjson_status_update_json(&b, 42, &p);
    assert_string_equal(b.data, "{\"task_id\":42,\"resource_address\":\"module.a[\\\"x\\\"].b[0]\","
                                "\"apply_status\":\"completed\",\"action\":\"create\"}");
    cJSON *back = cJSON_Parse(b.data);
    assert_non_null(back);
    assert_string_equal(cJSON_GetObjectItem(back, "resource_address")->valuestring, "module.a[\"x\"].b[0]");
    cJSON_Delete(back);
    strbuf_free(&b);
}

/* ---- error_message extraction ---------------------------------------------------------------------------------- */

static void expect_errors(const char *log, const char *want)
{
    char *got = planjson_errors_extract(log, strlen(log), 0);
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* terraform -no-color diagnostics: the block runs from "Error:" to the next agent log line, blank lines and
 * indentation kept, trailing blank lines dropped. */
static void errors_plain_block(void **state)
{
    (void)state;
    expect_errors("[10:00:00.000] [INFO] Running terraform plan\n"
                  "null_resource.a: Refreshing state... [id=1]\n"
                  "\n"
                  "Error: Invalid reference\n"
                  "\n"
                  "  on main.tf.json line 3, in resource \"null_resource\" \"a\":\n"
                  "   3:   \"triggers\": {\"x\": \"${foo}\"}\n"
                  "\n"
                  "A reference to a resource type must be followed by at least one attribute\n"
                  "access, specifying the resource name.\n"
                  "\n"
                  "\n"
                  "[10:00:01.000] [ERROR] terraform plan failed: exit status 1\n"
                  "Error: a second block after the agent line\n",
                  "Error: Invalid reference\n"
                  "\n"
                  "  on main.tf.json line 3, in resource \"null_resource\" \"a\":\n"
                  "   3:   \"triggers\": {\"x\": \"${foo}\"}\n"
                  "\n"
                  "A reference to a resource type must be followed by at least one attribute\n"
                  "access, specifying the resource name.\n"
                  "\n"
                  "\n"
                  "Error: a second block after the agent line");
}

/* Diagnostics drawn in a box: "│ " is removed, a lone "│" becomes a blank line, "│ Error:" opens the block; the
 * box's other edges are ordinary lines of the block. */
static void errors_box_characters(void **state)
{
    (void)state;
    expect_errors("\xe2\x95\xb7\n"
                  "\xe2\x94\x82 Error: Unsupported argument\n"
                  "\xe2\x94\x82 \n"
                  "\xe2\x94\x82   on main.tf line 2, in resource \"null_resource\" \"a\":\n"
                  "\xe2\x94\x82    2:   foo = 1\n"
                  "\xe2\x94\x82\n"
                  "\xe2\x94\x82 An argument named \"foo\" is not expected here.\n"
                  "\xe2\x95\xb5\n"
                  "[10:00:01.000] [ERROR] plan failed\n",
                  "Error: Unsupported argument\n"
                  "\n"
                  "  on main.tf line 2, in resource \"null_resource\" \"a\":\n"
                  "   2:   foo = 1\n"
                  "\n"
                  "An argument named \"foo\" is not expected here.\n"
                  "\xe2\x95\xb5");
}

/* Several blocks are concatenated; agent lines between them are not collected; a second "Error:" inside a block
 * simply continues the text. */
static void errors_multiple_blocks(void **state)
{
    (void)state;
    expect_errors("Error: first\n"
                  "  detail one\n"
                  "[10:00:00.000] [WARN] retrying\n"
                  "noise between blocks\n"
                  "   Error: second (indented)\n"
                  "Error: third\n"
                  "[10:00:01.000] [ERROR] giving up\n"
                  "trailing noise\n",
                  "Error: first\n"
                  "  detail one\n"
                  "Error: second (indented)\n"
                  "Error: third");
}

/* No block → NULL, so the caller uses its own error text; "Error:" that does not start the trimmed line does not
 * count; agent lines outside a block change nothing. */
static void errors_none_found(void **state)
{
    (void)state;
    expect_errors("", NULL);
    expect_errors("\n\n\n", NULL);
    expect_errors("[10:00:00.000] [ERROR] Error: from the agent\nplain output\nsomething Error: inside\n", NULL);
    expect_errors("error: lower case\nERROR: upper\n", NULL);
    char *none = planjson_errors_extract(NULL, 0, 0);
    assert_null(none);
}

/* CRLF line ends and trailing spaces are stripped; a line fed with its own newline is the same as without. */
static void errors_crlf(void **state)
{
    (void)state;
    expect_errors("Error: Failed to query available provider packages\r\n"
                  "\r\n"
                  "Could not retrieve the list of available versions for provider hashicorp/null   \r\n"
                  "\r\n"
                  "[10:00:00.000] [ERROR] init failed\r\n",
                  "Error: Failed to query available provider packages\n"
                  "\n"
                  "Could not retrieve the list of available versions for provider hashicorp/null");
    planjson_errors e;
    planjson_errors_init(&e, 0);
    planjson_errors_feed(&e, "Error: x\r\n", 10);
    planjson_errors_feed(&e, "  y\n", 4);
    planjson_errors_feed(&e, "z", 1);
    char *got = planjson_errors_finish(&e);
    assert_string_equal(got, "Error: x\n  y\nz");
    free(got);
}

/* The kept text is bounded: at most cap bytes, cut on a UTF-8 boundary, then "…(truncated)"; later lines are
 * ignored, so a huge log costs no more memory than the cap. */
static void errors_truncation_bound(void **state)
{
    (void)state;
    const char *suffix = "\xe2\x80\xa6(truncated)";
    planjson_errors e;
    planjson_errors_init(&e, 100);
    planjson_errors_feed(&e, "Error: big", 10);
    for (int i = 0; i < 100000; i++)
        planjson_errors_feed(&e, "0123456789 0123456789 0123456789", 32);
    assert_true(e.text.len <= 100);
    char *got = planjson_errors_finish(&e);
    assert_non_null(got);
    size_t n = strlen(got);
    assert_true(n <= 100 + strlen(suffix));
    assert_string_equal(got + n - strlen(suffix), suffix);
    assert_memory_equal(got, "Error: big\n0123456789", 21);
    free(got);

    /* a cut inside a 2-byte character backs off to its start */
    planjson_errors_init(&e, 12);
    planjson_errors_feed(&e, "Error: \xc3\xa9\xc3\xa9\xc3\xa9", 13); /* "Error: ééé" */
    got = planjson_errors_finish(&e);
    char want[64];
    snprintf(want, sizeof want, "Error: \xc3\xa9\xc3\xa9%s", suffix); /* 11 bytes kept, not 12 */
    assert_string_equal(got, want);
    free(got);

    /* the default cap is 64 KiB */
    planjson_errors_init(&e, 0);
    char line[1024];
    memset(line, 'x', sizeof line);
    memcpy(line, "Error: ", 7);
    for (int i = 0; i < 1000; i++)
        planjson_errors_feed(&e, line, sizeof line);
    got = planjson_errors_finish(&e);
    assert_int_equal(strlen(got), PLANJSON_ERRORS_CAP + strlen(suffix));
    free(got);
}

/* finish empties the extractor for reuse; free drops collected text without leaking. */
static void errors_reuse_and_free(void **state)
{
    (void)state;
    planjson_errors e;
    planjson_errors_init(&e, 0);
    planjson_errors_feed(&e, "Error: one", 10);
    char *got = planjson_errors_finish(&e);
    assert_string_equal(got, "Error: one");
    free(got);
    assert_null(planjson_errors_finish(&e));
    planjson_errors_feed(&e, "Error: two", 10);
    got = planjson_errors_finish(&e);
    assert_string_equal(got, "Error: two");
    free(got);
    planjson_errors_feed(&e, "Error: three", 12);
    planjson_errors_free(&e);
    assert_null(planjson_errors_finish(&e));
    planjson_errors_feed(&e, NULL, 5);
    assert_null(planjson_errors_finish(&e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_every_action_combination),
        cmocka_unit_test(counts_zero_without_resource_changes),
        cmocka_unit_test(malformed_plan_json_is_an_error),
        cmocka_unit_test(resource_changes_body_is_exact),
        cmocka_unit_test(resource_changes_actions_and_skips),
        cmocka_unit_test(resource_changes_empty_and_missing_fields),
        cmocka_unit_test(output_changes_compare_canonical_json),
        cmocka_unit_test(progress_table),
        cmocka_unit_test(progress_unusual_addresses),
        cmocka_unit_test(progress_non_matches),
        cmocka_unit_test(status_update_line_is_exact),
        cmocka_unit_test(errors_plain_block),
        cmocka_unit_test(errors_box_characters),
        cmocka_unit_test(errors_multiple_blocks),
        cmocka_unit_test(errors_none_found),
        cmocka_unit_test(errors_crlf),
        cmocka_unit_test(errors_truncation_bound),
        cmocka_unit_test(errors_reuse_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
