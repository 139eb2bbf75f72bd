/* test_view.c — the coordinator's pool view (coordinator/view.h): the parsers of the Deployment, the PodList, the
 * agent's /v1/status and the plane's demand document, the mapping of a pod onto the scaler's model, and where a
 * task is. Documents are written with single quotes for readability (js() turns them into double quotes). Error
 * cases are tables: each names the field the message must name. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../agent/agent.h"
#include "../../agent/status.h"
#include "../../coordinator/view.h"
#include "iac/json.h"
#include "iac/strbuf.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SECRET "s3cr3t" /* a string value that no error message may echo */

/* The document text with ' turned into ", parsed; the test fails on a typo in the test itself. */
static cJSON *js(const char *text)
{
    char *copy = strdup(text);
    assert_non_null(copy);
    for (char *p = copy; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *doc = cJSON_Parse(copy);
    if (!doc)
        fail_msg("test document does not parse: %s", copy);
    free(copy);
    return doc;
}

static void assert_err_names(const char *err, const char *want, const char *what)
{
    if (!strstr(err, want))
        fail_msg("%s: error \"%s\" does not contain \"%s\"", what, err, want);
    if (strstr(err, SECRET))
        fail_msg("%s: error \"%s\" echoes a string value", what, err);
}

/* ---- Deployment ---- */

#define SELECTOR "'selector':{'matchLabels':{'app':'iac-agent','pool':'pool-a'}}"

/* replicas, readyReplicas and the selector in the document's label order. */
static void deployment_reads_replicas_ready_and_selector(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *d = js("{'kind':'Deployment','metadata':{'name':'iac-agent-pool-a'},"
                  "'spec':{'replicas':3," SELECTOR "},'status':{'replicas':3,'readyReplicas':2}}");
    assert_int_equal(view_parse_deployment(d, &v, err, sizeof err), 0);
    assert_true(v.deployment_found);
    assert_string_equal(v.deployment_error, "");
    assert_int_equal(v.replicas, 3);
    assert_int_equal(v.ready_replicas, 2);
    assert_string_equal(v.selector, "app=iac-agent,pool=pool-a");
    cJSON_Delete(d);
    view_pool_free(&v);
}

/* Kubernetes omits replicas only when it defaults it to 1, and readyReplicas when it is 0; zero replicas is a
 * pool scaled to nothing, not a missing field; an empty matchExpressions is no expression. */
static void deployment_defaults_replicas_to_one_and_ready_to_zero(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *d = js("{'spec':{" SELECTOR "}}");
    assert_int_equal(view_parse_deployment(d, &v, err, sizeof err), 0);
    assert_int_equal(v.replicas, 1);
    assert_int_equal(v.ready_replicas, 0);
    cJSON_Delete(d);
    d = js("{'spec':{'replicas':0,'selector':{'matchLabels':{'a':'b'},'matchExpressions':[]}},'status':{}}");
    assert_int_equal(view_parse_deployment(d, &v, err, sizeof err), 0);
    assert_int_equal(v.replicas, 0);
    assert_string_equal(v.selector, "a=b");
    cJSON_Delete(d);
}

typedef struct {
    const char *doc;
    const char *want; /* substring of the error */
} error_case;

/* Every wrong type or missing field is refused with its path; the Deployment fields are reset and the message kept
 * in deployment_error. */
static void deployment_errors_name_the_field(void **state)
{
    (void)state;
    static const error_case cases[] = {
        { "[]", "deployment: expected an object" },
        { "{}", "spec: required but missing" },
        { "{'spec':'" SECRET "'}", "spec: expected an object, got string" },
        { "{'spec':{'replicas':'3'," SELECTOR "}}", "spec.replicas: expected a whole number, got string" },
        { "{'spec':{'replicas':-1," SELECTOR "}}", "spec.replicas: expected a whole number from 0 to 2147483647" },
        { "{'spec':{'replicas':1.5," SELECTOR "}}", "spec.replicas: expected a whole number, got 1.5" },
        { "{'spec':{'replicas':3000000000," SELECTOR "}}", "spec.replicas: expected a whole number from 0" },
        { "{'spec':{'replicas':1}}", "spec.selector: required but missing" },
        { "{'spec':{'selector':[]}}", "spec.selector: expected an object, got array" },
        { "{'spec':{'selector':{}}}", "spec.selector.matchLabels: required but missing" },
        { "{'spec':{'selector':{'matchLabels':{}}}}", "spec.selector.matchLabels: empty" },
        { "{'spec':{'selector':{'matchLabels':{'app':5}}}}", "spec.selector.matchLabels.app: expected a string" },
        { "{'spec':{'selector':{'matchLabels':{'a':'b'},'matchExpressions':[{'key':'a','operator':'Exists'}]}}}",
          "spec.selector.matchExpressions: not supported" },
        { "{'spec':{'selector':{'matchLabels':{'a':'b'},'matchExpressions':'" SECRET "'}}}",
          "spec.selector.matchExpressions: expected an array, got string" },
        { "{'spec':{" SELECTOR "},'status':[]}", "status: expected an object, got array" },
        { "{'spec':{" SELECTOR "},'status':{'readyReplicas':'" SECRET "'}}",
          "status.readyReplicas: expected a whole number, got string" },
        { "{'spec':{" SELECTOR "},'status':{'readyReplicas':-2}}", "status.readyReplicas: expected a whole number from 0" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        view_pool v = { .deployment_found = true, .replicas = 9, .ready_replicas = 9, .selector = "old=1" };
        char err[VIEW_ERR_MAX] = "";
        cJSON *d = js(cases[i].doc);
        assert_int_equal(view_parse_deployment(d, &v, err, sizeof err), -1);
        assert_err_names(err, cases[i].want, cases[i].doc);
        assert_false(v.deployment_found);
        assert_int_equal(v.replicas, 0);
        assert_string_equal(v.selector, "");
        assert_string_equal(v.deployment_error, err);
        cJSON_Delete(d);
    }
    /* No document at all, and no error buffer: still refused, still described. */
    view_pool v = { 0 };
    assert_int_equal(view_parse_deployment(NULL, &v, NULL, 0), -1);
    assert_string_not_equal(v.deployment_error, "");
}

/* A selector that does not fit VIEW's buffer is refused rather than cut (a cut selector selects other pods). */
static void deployment_selector_too_long_is_refused(void **state)
{
    (void)state;
    char doc[2048], value[300];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    snprintf(doc, sizeof doc, "{'spec':{'selector':{'matchLabels':{'a':'%s','b':'%s'}}}}", value, value);
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *d = js(doc);
    assert_int_equal(view_parse_deployment(d, &v, err, sizeof err), -1);
    assert_err_names(err, "spec.selector.matchLabels: longer than 511 characters", "long selector");
    cJSON_Delete(d);
}

/* ---- PodList ---- */

#define META_OK "'metadata':{'name':'p','creationTimestamp':'2024-01-01T00:00:00Z'}"

/* Every Kubernetes field of a pod: name, IP, phase, Ready condition among others, creation time, deletion cost;
 * a second pod that is terminating and not Ready. */
static void pods_read_every_kubernetes_field(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *list = js("{'kind':'PodList','items':["
                     "{'metadata':{'name':'pool-a-1','creationTimestamp':'2024-01-01T00:00:00Z',"
                     "'annotations':{'controller.kubernetes.io/pod-deletion-cost':'100','other':'x'}},"
                     "'status':{'phase':'Running','podIP':'10.0.0.5','conditions':["
                     "{'type':'PodScheduled','status':'True'},{'type':'Ready','status':'True'}]}},"
                     "{'metadata':{'name':'pool-a-2','creationTimestamp':'2024-02-29T12:34:56.789Z',"
                     "'deletionTimestamp':'2024-03-01T00:00:00Z'},"
                     "'status':{'phase':'Running','podIP':'10.0.0.6','conditions':[{'type':'Ready','status':'False'}]}}"
                     "]}");
    assert_int_equal(view_parse_pods(list, &v, err, sizeof err), 0);
    assert_int_equal(v.npods, 2);
    const view_pod *a = &v.pods[0], *b = &v.pods[1];
    assert_string_equal(a->name, "pool-a-1");
    assert_string_equal(a->ip, "10.0.0.5");
    assert_string_equal(a->phase, "Running");
    assert_true(a->ready);
    assert_false(a->terminating);
    assert_int_equal(a->created_ms, INT64_C(1704067200000));
    assert_true(a->has_cost);
    assert_int_equal(a->deletion_cost, 100);
    assert_false(a->has_status);
    assert_string_equal(b->name, "pool-a-2");
    assert_false(b->ready);
    assert_true(b->terminating);
    assert_int_equal(b->created_ms, INT64_C(1709210096789));
    assert_false(b->has_cost);
    cJSON_Delete(list);
    view_pool_free(&v);
}

/* Items that are not objects, have no metadata object, or no name (absent, null or empty) are skipped; the rest
 * are read. A pod without status has no IP, is not Ready, and its phase reads as Pending. */
static void pods_without_a_name_are_skipped_and_missing_status_is_pending(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *list = js("{'items':[5,'pod',null,{},{'metadata':'x'},{'metadata':{}},{'metadata':{'name':null}},"
                     "{'metadata':{'name':''}},{'metadata':{'name':'young','creationTimestamp':'2024-01-01T00:00:00Z'}}]}");
    assert_int_equal(view_parse_pods(list, &v, err, sizeof err), 0);
    assert_int_equal(v.npods, 1);
    assert_string_equal(v.pods[0].name, "young");
    assert_string_equal(v.pods[0].phase, "Pending");
    assert_string_equal(v.pods[0].ip, "");
    assert_false(v.pods[0].ready);
    cJSON_Delete(list);
    view_pool_free(&v);
}

/* "items": null (a Go nil slice) and an empty array are both no pods. */
static void pods_null_or_empty_items_are_no_pods(void **state)
{
    (void)state;
    const char *docs[] = { "{'items':null}", "{'items':[]}" };
    for (size_t i = 0; i < ARRAY_LEN(docs); i++) {
        view_pool v = { 0 };
        char err[VIEW_ERR_MAX] = "";
        cJSON *list = js(docs[i]);
        assert_int_equal(view_parse_pods(list, &v, err, sizeof err), 0);
        assert_int_equal(v.npods, 0);
        cJSON_Delete(list);
        view_pool_free(&v);
    }
}

/* creationTimestamp is RFC 3339: Z or an offset, an optional fraction (cut to ms), 'T'/'Z' in either case, leap
 * days; anything else is refused with the field named. */
static void pod_timestamps_are_rfc3339(void **state)
{
    (void)state;
    static const struct {
        const char *ts;
        int         ok;
        int64_t     ms;
    } cases[] = {
        { "2024-01-01T00:00:00Z", 1, INT64_C(1704067200000) },
        { "2024-02-29T12:34:56.789Z", 1, INT64_C(1709210096789) },
        { "2024-02-29T12:34:56.789123456Z", 1, INT64_C(1709210096789) },
        { "1999-12-31T23:59:59.5Z", 1, INT64_C(946684799500) },
        { "2000-03-01T00:00:00+01:00", 1, INT64_C(951865200000) },
        { "2023-06-15T08:30:00-05:30", 1, INT64_C(1686837600000) },
        { "2024-01-01t00:00:00z", 1, INT64_C(1704067200000) },
        { "1970-01-01T00:00:00Z", 1, 0 },
        { "1969-12-31T23:59:59Z", 1, -1000 },
        { "2100-02-28T00:00:00Z", 1, INT64_C(4107456000000) },
        { "2023-02-29T00:00:00Z", 0, 0 },   /* not a leap year */
        { "2100-02-29T00:00:00Z", 0, 0 },   /* nor is 2100 */
        { "2024-13-01T00:00:00Z", 0, 0 },
        { "2024-00-10T00:00:00Z", 0, 0 },
        { "2024-04-31T00:00:00Z", 0, 0 },
        { "2024-01-01T24:00:00Z", 0, 0 },
        { "2024-01-01T23:60:00Z", 0, 0 },
        { "2024-01-01T23:59:60Z", 0, 0 },
        { "2024-01-01 00:00:00Z", 0, 0 },
        { "2024-01-01T00:00:00", 0, 0 },    /* no zone */
        { "2024-01-01T00:00:00.Z", 0, 0 },  /* empty fraction */
        { "2024-01-01T00:00:00+0100", 0, 0 },
        { "2024-01-01T00:00:00+24:00", 0, 0 },
        { "2024-01-01T00:00:00Zjunk", 0, 0 },
        { "2024-1-01T00:00:00Z", 0, 0 },
        { "2024-01-01", 0, 0 },
        { "", 0, 0 },
        { SECRET, 0, 0 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char doc[256], err[VIEW_ERR_MAX] = "";
        snprintf(doc, sizeof doc, "{'items':[{'metadata':{'name':'p','creationTimestamp':'%s'}}]}", cases[i].ts);
        view_pool v = { 0 };
        cJSON *list = js(doc);
        int rc = view_parse_pods(list, &v, err, sizeof err);
        if (cases[i].ok) {
            if (rc != 0)
                fail_msg("%s: refused: %s", cases[i].ts, err);
            assert_int_equal(v.pods[0].created_ms, cases[i].ms);
        } else {
            if (rc != -1)
                fail_msg("%s: accepted", cases[i].ts);
            assert_err_names(err, "items[0].metadata.creationTimestamp: not an RFC 3339 time", cases[i].ts);
        }
        cJSON_Delete(list);
        view_pool_free(&v);
    }
}

/* The deletion-cost annotation: a decimal int32 is read; absent, null or anything Kubernetes would not parse
 * reads as no cost (not as an error: the coordinator sets it again). */
static void deletion_cost_annotation_present_absent_or_unparsable(void **state)
{
    (void)state;
    static const struct {
        const char *annotations; /* the annotations member, or "" for none */
        bool        has;
        int64_t     cost;
    } cases[] = {
        { "", false, 0 },
        { ",'annotations':{}", false, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':null}", false, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'0'}", true, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'100'}", true, 100 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'-2147483648'}", true, INT32_MIN },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'+2147483647'}", true, INT32_MAX },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'2147483648'}", false, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'99999999999999999999999'}", false, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':''}", false, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'-'}", false, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'1.5'}", false, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':' 5'}", false, 0 },
        { ",'annotations':{'controller.kubernetes.io/pod-deletion-cost':'5x'}", false, 0 },
        { ",'annotations':{'Controller.Kubernetes.io/Pod-Deletion-Cost':'5'}", false, 0 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char doc[512], err[VIEW_ERR_MAX] = "";
        snprintf(doc, sizeof doc, "{'items':[{'metadata':{'name':'p','creationTimestamp':'2024-01-01T00:00:00Z'%s}}]}",
                 cases[i].annotations);
        view_pool v = { 0 };
        cJSON *list = js(doc);
        if (view_parse_pods(list, &v, err, sizeof err) != 0)
            fail_msg("%s: refused: %s", cases[i].annotations, err);
        if (v.pods[0].has_cost != cases[i].has)
            fail_msg("%s: has_cost %d", cases[i].annotations, v.pods[0].has_cost);
        if (cases[i].has)
            assert_int_equal(v.pods[0].deletion_cost, cases[i].cost);
        cJSON_Delete(list);
        view_pool_free(&v);
    }
}

/* Every wrong type or missing required field of a PodList is refused with its path; the index is the item's
 * place in the list (skipped items count). */
static void pods_errors_name_the_field(void **state)
{
    (void)state;
    static const error_case cases[] = {
        { "[]", "pod list: expected an object" },
        { "{}", "items: required but missing" },
        { "{'items':{}}", "items: expected an array, got object" },
        { "{'items':[{'metadata':{'name':5}}]}", "items[0].metadata.name: expected a string, got number" },
        { "{'items':[{'metadata':{'name':'p'}}]}", "items[0].metadata.creationTimestamp: required but missing" },
        { "{'items':[{'metadata':{'name':'p','creationTimestamp':7}}]}",
          "items[0].metadata.creationTimestamp: expected a string, got number" },
        { "{'items':[{'metadata':{'name':'p','creationTimestamp':'2024-01-01T00:00:00Z','deletionTimestamp':'"
          SECRET "'}}]}", "items[0].metadata.deletionTimestamp: not an RFC 3339 time" },
        { "{'items':[{'metadata':{'name':'p','creationTimestamp':'2024-01-01T00:00:00Z','deletionTimestamp':1}}]}",
          "items[0].metadata.deletionTimestamp: expected a string, got number" },
        { "{'items':[{'metadata':{'name':'p','creationTimestamp':'2024-01-01T00:00:00Z','annotations':[]}}]}",
          "items[0].metadata.annotations: expected an object, got array" },
        { "{'items':[{'metadata':{'name':'p','creationTimestamp':'2024-01-01T00:00:00Z','annotations':"
          "{'controller.kubernetes.io/pod-deletion-cost':5}}}]}",
          "items[0].metadata.annotations.controller.kubernetes.io/pod-deletion-cost: expected a string, got number" },
        { "{'items':[{" META_OK ",'status':'" SECRET "'}]}", "items[0].status: expected an object, got string" },
        { "{'items':[{" META_OK ",'status':{'phase':1}}]}", "items[0].status.phase: expected a string, got number" },
        { "{'items':[{" META_OK ",'status':{'podIP':false}}]}", "items[0].status.podIP: expected a string, got boolean" },
        { "{'items':[{" META_OK ",'status':{'conditions':{}}}]}",
          "items[0].status.conditions: expected an array, got object" },
        { "{'items':[{" META_OK ",'status':{'conditions':['Ready']}}]}",
          "items[0].status.conditions[0]: expected an object" },
        { "{'items':[{" META_OK ",'status':{'conditions':[{'type':'PodScheduled','status':'True'},{'status':'True'}]}}]}",
          "items[0].status.conditions[1].type: required but missing" },
        { "{'items':[{" META_OK ",'status':{'conditions':[{'type':'Ready','status':true}]}}]}",
          "items[0].status.conditions[0].status: expected a string, got boolean" },
        { "{'items':[5,{" META_OK "},{'metadata':{'name':'q','creationTimestamp':'x'}}]}",
          "items[2].metadata.creationTimestamp: not an RFC 3339 time" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        view_pool v = { 0 };
        char err[VIEW_ERR_MAX] = "";
        cJSON *list = js(cases[i].doc);
        assert_int_equal(view_parse_pods(list, &v, err, sizeof err), -1);
        assert_err_names(err, cases[i].want, cases[i].doc);
        assert_int_equal(v.npods, 0);
        assert_null(v.pods);
        cJSON_Delete(list);
    }
    view_pool v = { 0 };
    assert_int_equal(view_parse_pods(NULL, &v, NULL, 0), -1);
}

/* A new list replaces the old one; a refused list leaves the old one as it was. */
static void pods_replace_the_previous_list_only_when_read(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *two = js("{'items':[{'metadata':{'name':'a','creationTimestamp':'2024-01-01T00:00:00Z'}},"
                    "{'metadata':{'name':'b','creationTimestamp':'2024-01-01T00:00:00Z'}}]}");
    cJSON *one = js("{'items':[{'metadata':{'name':'c','creationTimestamp':'2024-01-01T00:00:00Z'}}]}");
    cJSON *bad = js("{'items':[{'metadata':{'name':'d','creationTimestamp':'never'}}]}");
    assert_int_equal(view_parse_pods(two, &v, err, sizeof err), 0);
    assert_int_equal(view_parse_pods(one, &v, err, sizeof err), 0);
    assert_int_equal(v.npods, 1);
    assert_string_equal(v.pods[0].name, "c");
    assert_int_equal(view_parse_pods(bad, &v, err, sizeof err), -1);
    assert_int_equal(v.npods, 1);
    assert_string_equal(v.pods[0].name, "c");
    cJSON_Delete(two);
    cJSON_Delete(one);
    cJSON_Delete(bad);
    view_pool_free(&v);
}

/* More items than a pool may have is refused, not cut (a cut list would hide pods from the scaler). */
static void pods_more_than_the_maximum_are_refused(void **state)
{
    (void)state;
    cJSON *list = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(list, "items");
    for (int i = 0; i <= VIEW_MAX_PODS; i++)
        cJSON_AddItemToArray(items, cJSON_CreateObject());
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    assert_int_equal(view_parse_pods(list, &v, err, sizeof err), -1);
    assert_err_names(err, "items: 2049 pods, more than the 2048", "too many pods");
    cJSON_Delete(list);
}

/* A list read in pages: each page's pods are appended in order, and each page hands back its continue token
 * ("" once the list is complete, whether the member is absent or empty). */
static void pod_pages_append_and_hand_back_the_continue_token(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "", cont[VIEW_CONTINUE_MAX] = "";
    cJSON *p1 = js("{'kind':'PodList','metadata':{'resourceVersion':'7','continue':'dG9rZW4','remainingItemCount':2},"
                   "'items':[{'metadata':{'name':'a','creationTimestamp':'2024-01-01T00:00:00Z'}},"
                   "{'metadata':{'name':'b','creationTimestamp':'2024-01-01T00:00:00Z'},"
                   "'status':{'phase':'Running','podIP':'10.0.0.2','conditions':[{'type':'Ready','status':'True'}]}}]}");
    cJSON *p2 = js("{'metadata':{'resourceVersion':'7','continue':'dG9rZW4y'},'items':[5,{'metadata':{}}]}");
    cJSON *p3 = js("{'metadata':{'resourceVersion':'7','continue':''},"
                   "'items':[{'metadata':{'name':'c','creationTimestamp':'2024-01-01T00:00:00Z'}}]}");
    cJSON *alone = js("{'items':[{'metadata':{'name':'d','creationTimestamp':'2024-01-01T00:00:00Z'}}]}");
    assert_int_equal(view_parse_pod_page(p1, &v, cont, sizeof cont, err, sizeof err), 0);
    assert_string_equal(cont, "dG9rZW4");
    assert_int_equal(v.npods, 2);
    assert_int_equal(view_parse_pod_page(p2, &v, cont, sizeof cont, err, sizeof err), 0); /* nothing to keep */
    assert_string_equal(cont, "dG9rZW4y");
    assert_int_equal(v.npods, 2);
    assert_int_equal(view_parse_pod_page(p3, &v, cont, sizeof cont, err, sizeof err), 0);
    assert_string_equal(cont, "");
    assert_int_equal(v.npods, 3);
    assert_string_equal(v.pods[0].name, "a");
    assert_string_equal(v.pods[1].name, "b");
    assert_string_equal(v.pods[1].ip, "10.0.0.2");
    assert_true(v.pods[1].ready);
    assert_string_equal(v.pods[2].name, "c");
    /* A list in one page (no metadata at all) is a complete list too. */
    view_pool_free_pods(&v);
    strcpy(cont, "stale");
    assert_int_equal(view_parse_pod_page(alone, &v, cont, sizeof cont, err, sizeof err), 0);
    assert_string_equal(cont, "");
    assert_int_equal(v.npods, 1);
    assert_string_equal(v.pods[0].name, "d");
    cJSON_Delete(p1);
    cJSON_Delete(p2);
    cJSON_Delete(p3);
    cJSON_Delete(alone);
    view_pool_free(&v);
}

/* A page that cannot be read appends nothing and names what is wrong — a bad item, a continue token that is not a
 * string or is longer than the caller keeps, pods beyond the pool's maximum over all pages — and the pods of the
 * pages before stay as they were. */
static void pod_page_errors_append_nothing(void **state)
{
    (void)state;
    static const error_case cases[] = {
        { "[]", "pod list: expected an object" },
        { "{'metadata':'" SECRET "','items':[]}", "metadata: expected an object, got string" },
        { "{'metadata':{'continue':5},'items':[]}", "metadata.continue: expected a string, got number" },
        { "{'metadata':{'continue':'" SECRET SECRET SECRET "'},'items':[]}", "metadata.continue: a token of 18 bytes" },
        { "{'metadata':{}}", "items: required but missing" },
        { "{'items':[{" META_OK "},{'metadata':{'name':'q','creationTimestamp':'" SECRET "'}}]}",
          "items[1].metadata.creationTimestamp: not an RFC 3339 time" },
    };
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "", cont[16] = "";
    cJSON *first = js("{'metadata':{'continue':'next'},'items':[{" META_OK "}]}");
    assert_int_equal(view_parse_pod_page(first, &v, cont, sizeof cont, err, sizeof err), 0);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        cJSON *page = js(cases[i].doc);
        err[0] = '\0';
        assert_int_equal(view_parse_pod_page(page, &v, cont, sizeof cont, err, sizeof err), -1);
        assert_err_names(err, cases[i].want, cases[i].doc);
        assert_int_equal(v.npods, 1);
        assert_string_equal(v.pods[0].name, "p");
        assert_string_equal(cont, "next");
        cJSON_Delete(page);
    }
    /* Pages that add up to more pods than a pool may have. */
    cJSON *many = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(many, "items");
    for (int i = 0; i < VIEW_MAX_PODS; i++)
        cJSON_AddItemToArray(items, cJSON_CreateObject());
    assert_int_equal(view_parse_pod_page(many, &v, cont, sizeof cont, err, sizeof err), -1);
    assert_err_names(err, "items: 2048 more pods after 1, more than the 2048", "too many pods over pages");
    assert_int_equal(v.npods, 1);
    cJSON_Delete(many);
    cJSON_Delete(first);
    view_pool_free(&v);
}

/* A name longer than the buffer is cut, at a character boundary, never overflowed. */
static void long_names_are_cut_at_a_character_boundary(void **state)
{
    (void)state;
    char name[600], doc[1024];
    size_t n = 0;
    name[n++] = 'x'; /* then "é" (2 bytes) repeatedly: byte 253 falls inside a character */
    while (n + 2 < sizeof name - 1) {
        name[n++] = (char)0xC3;
        name[n++] = (char)0xA9;
    }
    name[n] = '\0';
    snprintf(doc, sizeof doc, "{'items':[{'metadata':{'name':'%s','creationTimestamp':'2024-01-01T00:00:00Z'}}]}",
             name);
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *list = js(doc);
    assert_int_equal(view_parse_pods(list, &v, err, sizeof err), 0);
    size_t len = strlen(v.pods[0].name);
    assert_true(len <= VIEW_NAME_MAX - 1);
    assert_int_equal(len % 2, 1); /* 'x' plus whole 2-byte characters */
    assert_memory_equal(v.pods[0].name, name, len);
    cJSON_Delete(list);
    view_pool_free(&v);
}

/* ---- the agent's /v1/status ---- */

#define AGENT_HEAD                                                                                                 \
    "{'agent_id':'agent-pool-a-1','pool_id':'pool-a','name':'pod-1','version':'0.1.0','state':'ready',"         \
    "'phase':'connected','registered':true,'connected':true,'ready':true,'started_at':1700000000,"
#define SLOT_IDLE_AT(i) "{'slot_id':" #i ",'status':'idle','since':1700000000,'task_id':null}"
#define SLOTS_FOUR                                                                                                 \
    "'slots':[{'slot_id':0,'status':'reserved','since':1700000100,'task_id':7,'task_type':'plan_and_apply',"     \
    "'action':'apply'},{'slot_id':1,'status':'running','since':1700000200,'task_id':8,'task_type':'plan',"       \
    "'action':'plan'},{'slot_id':2,'status':'running','since':1700000300,'task_id':9,'task_type':'drift_check',"  \
    "'action':'plan'}," SLOT_IDLE_AT(3) "]}"

static view_pod k8s_pod(void)
{
    view_pod p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "pool-a-1");
    snprintf(p.phase, sizeof p.phase, "Running");
    p.ready = true;
    return p;
}

/* The agent's own shape (status.c): identity, state, connection, and each slot with status, task, type, action
 * and since (epoch seconds → ms). The Kubernetes fields are left alone. */
static void agent_status_reads_the_agents_shape(void **state)
{
    (void)state;
    view_pod p = k8s_pod();
    char err[VIEW_ERR_MAX] = "";
    cJSON *st = js(AGENT_HEAD SLOTS_FOUR);
    assert_int_equal(view_parse_agent_status(st, &p, err, sizeof err), 0);
    assert_true(p.has_status);
    assert_string_equal(p.status_error, "");
    assert_string_equal(p.agent_id, "agent-pool-a-1");
    assert_string_equal(p.agent_pool, "pool-a");
    assert_false(p.draining);
    assert_true(p.connected);
    assert_int_equal(p.nslots, 4);
    static const view_slot want[] = {
        { SLOT_RESERVED, 7, TASK_PLAN_AND_APPLY, true, INT64_C(1700000100000) },
        { SLOT_RUNNING, 8, TASK_PLAN, false, INT64_C(1700000200000) },
        { SLOT_RUNNING, 9, TASK_DRIFT_CHECK, false, INT64_C(1700000300000) },
        { SLOT_IDLE, 0, TASK_TYPE_NONE, false, INT64_C(1700000000000) },
    };
    for (int i = 0; i < 4; i++) {
        const view_slot *got = &view_pod_slots(&p)[i];
        assert_int_equal(got->status, want[i].status);
        assert_int_equal(got->task_id, want[i].task_id);
        assert_int_equal(got->type, want[i].type);
        assert_int_equal(got->apply, want[i].apply);
        assert_int_equal(got->since_ms, want[i].since_ms);
    }
    assert_string_equal(p.name, "pool-a-1");
    assert_true(p.ready);
    cJSON_Delete(st);
    view_pod_free(&p);
}

/* What agent/status.c writes for a live slot table (registered, connected, draining, slot 0 reserved, a plan
 * running) is read back as the same table: the parser and the writer agree. */
static void agent_status_reads_what_the_agent_writes(void **state)
{
    (void)state;
    agent_options opt;
    memset(&opt, 0, sizeof opt);
    opt.name = "pod-\"1\"";
    agent *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->opt = &opt;
    snprintf(a->store.agent_id, sizeof a->store.agent_id, "agent-pool-a-42");
    snprintf(a->store.pool_id, sizeof a->store.pool_id, "pool-a");
    a->registered = true;
    a->phase = AGENT_CONNECTED;
    a->draining = true;
    a->started_ms = INT64_C(1700000000000);
    slots_init(&a->store.slots, 5, INT64_C(1700000000000));
    assert_int_equal(slots_start(&a->store.slots, 0, 11, TASK_PLAN_AND_APPLY, ACTION_PLAN, INT64_C(1700000001000)), 0);
    assert_int_equal(slots_reserve(&a->store.slots, 11, INT64_C(1700000002500)), 0);
    assert_int_equal(slots_start(&a->store.slots, 3, 12, TASK_DRIFT_CHECK, ACTION_PLAN, INT64_C(1700000003000)), 0);
    strbuf b = STRBUF_INIT;
    status_write_json(a, &b);
    char err[VIEW_ERR_MAX] = "";
    cJSON *st = json_parse_object(b.data, b.len, err, sizeof err);
    assert_non_null(st);
    view_pod p = k8s_pod();
    assert_int_equal(view_parse_agent_status(st, &p, err, sizeof err), 0);
    assert_string_equal(p.agent_id, "agent-pool-a-42");
    assert_string_equal(p.agent_pool, "pool-a");
    assert_true(p.draining);
    assert_true(p.connected);
    assert_int_equal(p.nslots, 5);
    const view_slot *slots = view_pod_slots(&p);
    assert_int_equal(slots[0].status, SLOT_RESERVED);
    assert_int_equal(slots[0].task_id, 11);
    assert_int_equal(slots[0].type, TASK_PLAN_AND_APPLY);
    assert_true(slots[0].apply);
    assert_int_equal(slots[0].since_ms, INT64_C(1700000002000)); /* the agent writes whole seconds */
    assert_int_equal(slots[3].status, SLOT_RUNNING);
    assert_int_equal(slots[3].task_id, 12);
    assert_int_equal(slots[3].type, TASK_DRIFT_CHECK);
    assert_false(slots[3].apply);
    for (int i = 1; i < 5; i++)
        if (i != 3)
            assert_int_equal(slots[i].status, SLOT_IDLE);
    cJSON_Delete(st);
    strbuf_free(&b);
    free(a);
    view_pod_free(&p);
}

/* The agent's slot table of 2, 6, 64 and again 3 slots, read into the same row in turn: each answer replaces the
 * last whole, whatever the count, and the row gives back exactly its slots. */
static void agent_status_of_any_slot_count_replaces_the_last(void **state)
{
    (void)state;
    static const int counts[] = { 2, 6, SLOTS_MAX, 3 };
    view_pod p = k8s_pod();
    for (size_t c = 0; c < ARRAY_LEN(counts); c++) {
        cJSON *st = js(AGENT_HEAD "'slots':[]}");
        cJSON *slots = cJSON_GetObjectItemCaseSensitive(st, "slots");
        for (int i = 0; i < counts[c]; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "slot_id", i);
            cJSON_AddStringToObject(s, "status", i % 2 ? "running" : "idle");
            cJSON_AddNumberToObject(s, "since", 1700000000 + i);
            if (i % 2) {
                cJSON_AddNumberToObject(s, "task_id", 1000 * (double)c + i);
                cJSON_AddStringToObject(s, "task_type", "plan");
            }
            cJSON_AddItemToArray(slots, s);
        }
        char err[VIEW_ERR_MAX] = "";
        assert_int_equal(view_parse_agent_status(st, &p, err, sizeof err), 0);
        assert_int_equal(p.nslots, counts[c]);
        for (int i = 0; i < counts[c]; i++) {
            const view_slot *got = &view_pod_slots(&p)[i];
            assert_int_equal(got->status, i % 2 ? SLOT_RUNNING : SLOT_IDLE);
            assert_int_equal(got->task_id, i % 2 ? (uint64_t)(1000 * c + (size_t)i) : 0);
            assert_int_equal(got->since_ms, (1700000000 + (int64_t)i) * 1000);
        }
        cJSON_Delete(st);
    }
    view_pod_free(&p);
    assert_int_equal(p.nslots, 0);
    assert_null(p.slots_ext);
}

/* Every body that is not the agent's shape is refused with the field named; has_status goes false, status_error
 * says why, and the Kubernetes fields are left alone. */
static void agent_status_errors_name_the_field(void **state)
{
    (void)state;
#define TWO_IDLE "'slots':[" SLOT_IDLE_AT(0) "," SLOT_IDLE_AT(1) "]}"
#define BASE(body) "{'agent_id':'a','pool_id':'p','state':'ready','connected':true," body
    static const error_case cases[] = {
        { "[]", "status: expected an object" },
        { "{'pool_id':'p','state':'ready','connected':true," TWO_IDLE, "agent_id: required but missing" },
        { "{'agent_id':5,'pool_id':'p','state':'ready','connected':true," TWO_IDLE, "agent_id: expected a string" },
        { "{'agent_id':'a','state':'ready','connected':true," TWO_IDLE, "pool_id: required but missing" },
        { "{'agent_id':'a','pool_id':'p','connected':true," TWO_IDLE, "state: required but missing" },
        { "{'agent_id':'a','pool_id':'p','state':'" SECRET "','connected':true," TWO_IDLE,
          "state: not one of ready, draining" },
        { "{'agent_id':'a','pool_id':'p','state':'ready'," TWO_IDLE, "connected: required but missing" },
        { "{'agent_id':'a','pool_id':'p','state':'ready','connected':'yes'," TWO_IDLE,
          "connected: expected a boolean, got string" },
        { BASE("'name':1," TWO_IDLE), "name: expected a string, got number" },
        { BASE("'registered':'" SECRET "'," TWO_IDLE), "registered: expected a boolean, got string" },
        { BASE("'started_at':'now'," TWO_IDLE), "started_at: expected a whole number, got string" },
        { BASE("'x':1}"), "slots: required but missing" },
        { BASE("'slots':{}}"), "slots: expected an array, got object" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) "]}"), "slots: expected 2 to 64 slots, got 1" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",'idle']}"), "slots[1]: expected an object" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) "," SLOT_IDLE_AT(2) "]}"), "slots[1].slot_id: expected 1" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'status':'idle','since':1}]}"), "slots[1].slot_id: required but missing" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':'" SECRET "','since':1}]}"),
          "slots[1].status: not one of idle, running, reserved" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':3,'since':1}]}"),
          "slots[1].status: expected a string, got number" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':'idle'}]}"), "slots[1].since: required but missing" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':'idle','since':'" SECRET "'}]}"),
          "slots[1].since: expected a whole number, got string" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':'running','since':1,'task_type':'plan'}]}"),
          "slots[1].task_id: a running slot needs a task id from 1" },
        { BASE("'slots':[{'slot_id':0,'status':'reserved','since':1,'task_id':0,'task_type':'plan_and_apply'},"
               SLOT_IDLE_AT(1) "]}"), "slots[0].task_id: a reserved slot needs a task id from 1" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':'running','since':1,'task_id':-3}]}"),
          "slots[1].task_id: expected a whole number from 0" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':'running','since':1,'task_id':3}]}"),
          "slots[1].task_type: required for a running slot" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':'running','since':1,'task_id':3,"
               "'task_type':'apply'}]}"), "slots[1].task_type: not one of plan, plan_and_apply, drift_check" },
        { BASE("'slots':[" SLOT_IDLE_AT(0) ",{'slot_id':1,'status':'running','since':1,'task_id':3,"
               "'task_type':'plan','action':'destroy'}]}"), "slots[1].action: not one of plan, apply" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        view_pod p = k8s_pod();
        p.has_status = true; /* a previous cycle's answer must not survive a refused one */
        char err[VIEW_ERR_MAX] = "";
        cJSON *st = js(cases[i].doc);
        assert_int_equal(view_parse_agent_status(st, &p, err, sizeof err), -1);
        assert_err_names(err, cases[i].want, cases[i].doc);
        assert_false(p.has_status);
        assert_string_equal(p.status_error, err);
        assert_string_equal(p.name, "pool-a-1");
        assert_true(p.ready);
        cJSON_Delete(st);
    }
    /* 65 slots: more than an agent can have. */
    cJSON *st = js(BASE(TWO_IDLE));
    cJSON *slots = cJSON_GetObjectItemCaseSensitive(st, "slots");
    for (int i = 2; i <= SLOTS_MAX; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "slot_id", i);
        cJSON_AddStringToObject(s, "status", "idle");
        cJSON_AddNumberToObject(s, "since", 1);
        cJSON_AddItemToArray(slots, s);
    }
    view_pod p = k8s_pod();
    char err[VIEW_ERR_MAX] = "";
    assert_int_equal(view_parse_agent_status(st, &p, err, sizeof err), -1);
    assert_err_names(err, "slots: expected 2 to 64 slots, got 65", "65 slots");
    cJSON_Delete(st);
    assert_int_equal(view_parse_agent_status(NULL, &p, NULL, 0), -1);
    assert_string_not_equal(p.status_error, "");
#undef BASE
#undef TWO_IDLE
}

/* state "draining" and a closed C&C socket are read as such; an idle slot that still names a task holds none. */
static void agent_status_draining_disconnected_and_idle_slots(void **state)
{
    (void)state;
    view_pod p = k8s_pod();
    char err[VIEW_ERR_MAX] = "";
    cJSON *st = js("{'agent_id':'','pool_id':'','state':'draining','connected':false,'slots':["
                   "{'slot_id':0,'status':'idle','since':5,'task_id':4,'task_type':'plan_and_apply','action':'apply'},"
                   SLOT_IDLE_AT(1) "]}");
    assert_int_equal(view_parse_agent_status(st, &p, err, sizeof err), 0);
    assert_true(p.draining);
    assert_false(p.connected);
    const view_slot *s0 = &view_pod_slots(&p)[0];
    assert_int_equal(s0->status, SLOT_IDLE);
    assert_int_equal(s0->task_id, 0);
    assert_int_equal(s0->type, TASK_TYPE_NONE);
    assert_false(s0->apply);
    assert_int_equal(s0->since_ms, 5000);
    cJSON_Delete(st);
    view_pod_free(&p);
}

/* ---- demand ---- */

/* The pool's counts and its waiting tasks, in the plane's order; other pools' entries are not ours. */
static void demand_reads_counts_and_tasks_of_the_pool(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *doc = js("{'pools':{'pool-b':{'plan_and_apply':9,'plan':9,'drift_check':9},"
                    "'pool-a':{'plan_and_apply':2,'plan':1,'drift_check':0,'tasks':["
                    "{'task_id':4,'task_type':'plan_and_apply','waiting_since':1700000000},"
                    "{'task_id':6,'task_type':'plan','waiting_since':1700000060},"
                    "{'task_id':7,'task_type':'plan_and_apply'}]}}}");
    assert_int_equal(view_parse_demand(doc, "pool-a", &v, err, sizeof err), 0);
    assert_true(v.demand_ok);
    assert_string_equal(v.demand_error, "");
    assert_int_equal(v.demand.plan_and_apply, 2);
    assert_int_equal(v.demand.plan, 1);
    assert_int_equal(v.demand.drift_check, 0);
    assert_int_equal(v.nwaiting, 3);
    assert_int_equal(v.waiting[0].task_id, 4);
    assert_int_equal(v.waiting[0].type, TASK_PLAN_AND_APPLY);
    assert_int_equal(v.waiting[0].waiting_since_ms, INT64_C(1700000000000));
    assert_int_equal(v.waiting[1].task_id, 6);
    assert_int_equal(v.waiting[1].type, TASK_PLAN);
    assert_int_equal(v.waiting[1].waiting_since_ms, INT64_C(1700000060000));
    assert_int_equal(v.waiting[2].waiting_since_ms, 0); /* the plane did not say */
    cJSON_Delete(doc);
    view_pool_free(&v);
}

/* A pool the document does not list has no demand: ok, zeros, no tasks — and the previous cycle's list is gone. */
static void demand_of_a_pool_absent_from_the_document_is_zero(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *first = js("{'pools':{'pool-a':{'plan_and_apply':1,'plan':0,'drift_check':0,'tasks':"
                      "[{'task_id':1,'task_type':'plan_and_apply'}]}}}");
    cJSON *doc = js("{'pools':{'pool-b':{'plan_and_apply':3,'plan':3,'drift_check':3}}}");
    cJSON *empty = js("{'pools':{}}");
    assert_int_equal(view_parse_demand(first, "pool-a", &v, err, sizeof err), 0);
    assert_int_equal(v.nwaiting, 1);
    assert_int_equal(view_parse_demand(doc, "pool-a", &v, err, sizeof err), 0);
    assert_true(v.demand_ok);
    assert_int_equal(v.demand.plan_and_apply + v.demand.plan + v.demand.drift_check, 0);
    assert_int_equal(v.nwaiting, 0);
    assert_null(v.waiting);
    assert_int_equal(view_parse_demand(empty, "pool-a", &v, err, sizeof err), 0);
    assert_true(v.demand_ok);
    cJSON_Delete(first);
    cJSON_Delete(doc);
    cJSON_Delete(empty);
    view_pool_free(&v);
}

/* Counts must be whole numbers from 0 (negative, fractional, text, missing, too large refused); every wrong shape is
 * named. A refused document clears the demand (no stale figures) and says why in demand_error. */
static void demand_errors_name_the_field(void **state)
{
    (void)state;
#define POOL(body) "{'pools':{'pool-a':" body "}}"
    static const error_case cases[] = {
        { "[]", "demand: expected an object" },
        { "{}", "pools: required but missing" },
        { "{'pools':[]}", "pools: expected an object, got array" },
        { POOL("'" SECRET "'"), "pools.pool-a: expected an object, got string" },
        { POOL("{'plan_and_apply':-1,'plan':0,'drift_check':0}"),
          "pools.pool-a.plan_and_apply: expected a whole number from 0 to 2147483647, got -1" },
        { POOL("{'plan_and_apply':0,'plan':1.5,'drift_check':0}"), "pools.pool-a.plan: expected a whole number, got 1.5" },
        { POOL("{'plan_and_apply':0,'plan':0,'drift_check':'" SECRET "'}"),
          "pools.pool-a.drift_check: expected a whole number, got string" },
        { POOL("{'plan_and_apply':0,'plan':0}"), "pools.pool-a.drift_check: required but missing" },
        { POOL("{'plan':0,'drift_check':0}"), "pools.pool-a.plan_and_apply: required but missing" },
        { POOL("{'plan_and_apply':3000000000,'plan':0,'drift_check':0}"),
          "pools.pool-a.plan_and_apply: expected a whole number from 0 to 2147483647" },
        { POOL("{'plan_and_apply':1e300,'plan':0,'drift_check':0}"), "pools.pool-a.plan_and_apply: expected a whole number" },
        { POOL("{'plan_and_apply':0,'plan':0,'drift_check':0,'tasks':{}}"),
          "pools.pool-a.tasks: expected an array, got object" },
        { POOL("{'plan_and_apply':0,'plan':0,'drift_check':0,'tasks':[3]}"), "pools.pool-a.tasks[0]: expected an object" },
        { POOL("{'plan_and_apply':0,'plan':0,'drift_check':0,'tasks':[{'task_type':'plan'}]}"),
          "pools.pool-a.tasks[0].task_id: required but missing" },
        { POOL("{'plan_and_apply':0,'plan':0,'drift_check':0,'tasks':[{'task_id':0,'task_type':'plan'}]}"),
          "pools.pool-a.tasks[0].task_id: expected a task id from 1" },
        { POOL("{'plan_and_apply':0,'plan':0,'drift_check':0,'tasks':[{'task_id':2,'task_type':'plan'},"
               "{'task_id':3,'task_type':'" SECRET "'}]}"),
          "pools.pool-a.tasks[1].task_type: not one of plan, plan_and_apply, drift_check" },
        { POOL("{'plan_and_apply':0,'plan':0,'drift_check':0,'tasks':[{'task_id':2}]}"),
          "pools.pool-a.tasks[0].task_type: required but missing" },
        { POOL("{'plan_and_apply':0,'plan':0,'drift_check':0,'tasks':[{'task_id':2,'task_type':'plan',"
               "'waiting_since':'today'}]}"), "pools.pool-a.tasks[0].waiting_since: expected a whole number, got string" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        view_pool v = { 0 };
        char err[VIEW_ERR_MAX] = "";
        cJSON *ok = js(POOL("{'plan_and_apply':4,'plan':4,'drift_check':4,'tasks':[{'task_id':1,'task_type':'plan'}]}"));
        assert_int_equal(view_parse_demand(ok, "pool-a", &v, err, sizeof err), 0);
        cJSON *doc = js(cases[i].doc);
        assert_int_equal(view_parse_demand(doc, "pool-a", &v, err, sizeof err), -1);
        assert_err_names(err, cases[i].want, cases[i].doc);
        assert_false(v.demand_ok);
        assert_string_equal(v.demand_error, err);
        assert_int_equal(v.demand.plan_and_apply + v.demand.plan + v.demand.drift_check, 0);
        assert_int_equal(v.nwaiting, 0);
        assert_null(v.waiting);
        cJSON_Delete(ok);
        cJSON_Delete(doc);
        view_pool_free(&v);
    }
    view_pool v = { 0 };
    assert_int_equal(view_parse_demand(NULL, "pool-a", &v, NULL, 0), -1);
    assert_string_not_equal(v.demand_error, "");
#undef POOL
}

/* The task list is kept up to VIEW_MAX_WAITING entries (the plane's first, i.e. oldest); the counts are the
 * plane's, whatever the list's length. */
static void demand_task_list_is_capped(void **state)
{
    (void)state;
    cJSON *doc = js("{'pools':{'pool-a':{'plan_and_apply':0,'plan':5000,'drift_check':0}}}");
    cJSON *entry = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "pools"), "pool-a");
    cJSON *tasks = cJSON_AddArrayToObject(entry, "tasks");
    for (int i = 1; i <= 5000; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "task_id", i);
        cJSON_AddStringToObject(t, "task_type", "plan");
        cJSON_AddItemToArray(tasks, t);
    }
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    assert_int_equal(view_parse_demand(doc, "pool-a", &v, err, sizeof err), 0);
    assert_int_equal(v.demand.plan, 5000);
    assert_int_equal(v.nwaiting, VIEW_MAX_WAITING);
    assert_int_equal(v.waiting[0].task_id, 1);
    assert_int_equal(v.waiting[VIEW_MAX_WAITING - 1].task_id, VIEW_MAX_WAITING);
    cJSON_Delete(doc);
    view_pool_free(&v);
}

/* ---- to the scaler ---- */

/* A pod for the mapping tests (view_pod_free it). slots: one letter per slot — i idle, a slot 0 running an apply,
 * r slot 0 reserved, p a plan running, d a drift_check running; "" = no answer from the agent. Task ids are
 * 100·pod + slot. */
static view_pod make_pod(int index, const char *phase, bool ready, bool terminating, const char *slots,
                         bool agent_draining, int64_t since_ms)
{
    view_pod p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "pod-%d", index);
    snprintf(p.phase, sizeof p.phase, "%s", phase);
    p.ready = ready;
    p.terminating = terminating;
    p.created_ms = 1000 * (index + 1);
    p.has_status = *slots != '\0';
    p.draining = agent_draining;
    p.nslots = (int)strlen(slots);
    view_slot *table = p.slots;
    if (p.nslots > VIEW_SLOTS_INLINE) { /* as view_parse_agent_status keeps a large agent's slots */
        p.slots_ext = calloc((size_t)p.nslots, sizeof *p.slots_ext);
        assert_non_null(p.slots_ext);
        table = p.slots_ext;
    }
    for (int i = 0; i < p.nslots; i++) {
        view_slot *s = &table[i];
        s->since_ms = since_ms;
        if (slots[i] == 'i')
            continue;
        s->task_id = (uint64_t)(100 * index + i);
        s->status = slots[i] == 'r' ? SLOT_RESERVED : SLOT_RUNNING;
        s->type = slots[i] == 'p' ? TASK_PLAN : slots[i] == 'd' ? TASK_DRIFT_CHECK : TASK_PLAN_AND_APPLY;
        s->apply = slots[i] == 'r' || slots[i] == 'a';
    }
    return p;
}

/* Each mapping rule: terminating → draining (and not ready); Ready and not terminating → ready, with the agent's
 * answer as has_status; not Ready, not terminating and Pending or Running → starting; Failed, Succeeded and
 * Unknown → nothing; the agent's draining state → draining; slot 0, its reservation and the plan slots' counts. */
static void scaler_pod_follows_every_mapping_rule(void **state)
{
    (void)state;
    static const struct {
        const char *what, *phase;
        bool        ready, terminating;
        const char *slots;
        bool        agent_draining;
        /* expected */
        bool        w_ready, w_starting, w_draining, w_status;
        slot_status w_slot0;
        bool        w_reserved;
        int         w_busy, w_idle;
    } cases[] = {
        { "ready, all idle", "Running", true, false, "iiii", false, true, false, false, true, SLOT_IDLE, false, 0, 3 },
        { "ready, reserved + plan + drift", "Running", true, false, "ripd", false, true, false, false, true,
          SLOT_RESERVED, true, 2, 1 },
        { "ready, slot 0 applying", "Running", true, false, "aiip", false, true, false, false, true, SLOT_RUNNING,
          false, 1, 2 },
        { "ready, six slots", "Running", true, false, "ripdpi", false, true, false, false, true, SLOT_RESERVED, true,
          3, 2 },
        { "ready, agent silent", "Running", true, false, "", false, true, false, false, false, SLOT_IDLE, false, 0, 0 },
        { "ready, agent draining", "Running", true, false, "iii", true, true, false, true, true, SLOT_IDLE, false, 0,
          2 },
        { "terminating while Ready", "Running", true, true, "iii", false, false, false, true, true, SLOT_IDLE, false,
          0, 2 },
        { "terminating, Pending", "Pending", false, true, "", false, false, false, true, false, SLOT_IDLE, false, 0,
          0 },
        { "Pending", "Pending", false, false, "", false, false, true, false, false, SLOT_IDLE, false, 0, 0 },
        { "Running, not Ready yet", "Running", false, false, "", false, false, true, false, false, SLOT_IDLE, false,
          0, 0 },
        { "Running, not Ready, agent answered", "Running", false, false, "iii", false, false, true, false, true,
          SLOT_IDLE, false, 0, 2 },
        { "Failed", "Failed", false, false, "", false, false, false, false, false, SLOT_IDLE, false, 0, 0 },
        { "Succeeded", "Succeeded", false, false, "", false, false, false, false, false, SLOT_IDLE, false, 0, 0 },
        { "Unknown", "Unknown", false, false, "", false, false, false, false, false, SLOT_IDLE, false, 0, 0 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        view_pod p = make_pod(3, cases[i].phase, cases[i].ready, cases[i].terminating, cases[i].slots,
                              cases[i].agent_draining, 10000);
        scaler_pod s;
        view_to_scaler_pod(&p, &s, 15000);
#define EXPECT(got, want)                                                                                          \
    do {                                                                                                           \
        if ((int64_t)(got) != (int64_t)(want))                                                                     \
            fail_msg("%s: %s is %lld, want %lld", cases[i].what, #got, (long long)(got), (long long)(want));       \
    } while (0)
        assert_ptr_equal(s.name, p.name);
        EXPECT(s.created_ms, 4000);
        EXPECT(s.ready, cases[i].w_ready);
        EXPECT(s.starting, cases[i].w_starting);
        EXPECT(s.draining, cases[i].w_draining);
        EXPECT(s.has_status, cases[i].w_status);
        EXPECT(s.slot0, cases[i].w_slot0);
        EXPECT(s.reserved_task_id, cases[i].w_reserved ? 300 : 0);
        EXPECT(s.reserved_age_ms, cases[i].w_reserved ? 5000 : 0);
        EXPECT(s.plan_busy, cases[i].w_busy);
        EXPECT(s.plan_idle, cases[i].w_idle);
#undef EXPECT
        view_pod_free(&p);
    }
}

/* A reservation stamped later than now (clocks of two machines) has age 0, never a negative one. */
static void reservation_age_is_never_negative(void **state)
{
    (void)state;
    view_pod p = make_pod(1, "Running", true, false, "rii", false, 20000);
    scaler_pod s;
    view_to_scaler_pod(&p, &s, 15000);
    assert_int_equal(s.reserved_task_id, 100);
    assert_int_equal(s.reserved_age_ms, 0);
}

/* From JSON to the decision: a pool of a reserved pod, an idle one and a Failed one, with the agents' answers and
 * the plane's demand, scales up for a second plan_and_apply (the reserved slot 0 is not free, the Failed pod is no
 * capacity) and removes nothing for one (the idle pod is needed, the reserved one is not removable). */
static void parsed_pool_drives_the_scaler(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *deploy = js("{'spec':{'replicas':3,'selector':{'matchLabels':{'pool':'a'}}},'status':{'readyReplicas':2}}");
    cJSON *pods = js("{'items':["
                     "{'metadata':{'name':'old','creationTimestamp':'2024-01-01T00:00:00Z'},"
                     "'status':{'phase':'Running','podIP':'10.0.0.1','conditions':[{'type':'Ready','status':'True'}]}},"
                     "{'metadata':{'name':'young','creationTimestamp':'2024-01-01T01:00:00Z'},"
                     "'status':{'phase':'Running','podIP':'10.0.0.2','conditions':[{'type':'Ready','status':'True'}]}},"
                     "{'metadata':{'name':'dead','creationTimestamp':'2024-01-01T02:00:00Z'},"
                     "'status':{'phase':'Failed','conditions':[{'type':'Ready','status':'False'}]}}]}");
    cJSON *idle = js(AGENT_HEAD "'slots':[" SLOT_IDLE_AT(0) "," SLOT_IDLE_AT(1) "]}");
    cJSON *reserved = js(AGENT_HEAD "'slots':[{'slot_id':0,'status':'reserved','since':1704070000,'task_id':5,"
                                    "'task_type':'plan_and_apply','action':'apply'}," SLOT_IDLE_AT(1) "]}");
    assert_int_equal(view_parse_deployment(deploy, &v, err, sizeof err), 0);
    assert_int_equal(view_parse_pods(pods, &v, err, sizeof err), 0);
    assert_int_equal(view_parse_agent_status(idle, &v.pods[0], err, sizeof err), 0);
    assert_int_equal(view_parse_agent_status(reserved, &v.pods[1], err, sizeof err), 0);

    int64_t now = INT64_C(1704070000000) + 60000;
    scaler_pod sp[3];
    for (int i = 0; i < v.npods; i++)
        view_to_scaler_pod(&v.pods[i], &sp[i], now);
    assert_int_equal(sp[1].reserved_age_ms, 60000);
    scaler_config c = { .slots_per_pod = 2, .min_replicas = 1, .max_replicas = 10, .max_remove_per_cycle = 1,
                        .pod_startup_timeout_ms = 600000 };
    scaler_view sv = { .pods = sp, .npods = v.npods, .replicas = v.replicas, .surplus_since_ms = SCALER_NEVER,
                       .shortage_since_ms = SCALER_NEVER };
    scaler_decision d;
    scaler_demand two = { .plan_and_apply = 2 }, one = { .plan_and_apply = 1 };
    assert_int_equal(scaler_decide(&sv, &two, &c, now, &d), 0);
    assert_int_equal(d.reason, SCALER_SCALE_UP);
    assert_int_equal(d.free_slot0, 1);
    assert_int_equal(d.desired, 4);
    assert_int_equal(scaler_decide(&sv, &one, &c, now, &d), 0);
    assert_int_equal(d.reason, SCALER_STEADY);
    assert_int_equal(d.nremove, 0);
    cJSON_Delete(deploy);
    cJSON_Delete(pods);
    cJSON_Delete(idle);
    cJSON_Delete(reserved);
    view_pool_free(&v);
}

/* ---- where is a task ---- */

/* A task running or reserved is found at its pod and slot; a running slot wins over a reservation another pod has
 * not let go of yet; task 0, an unknown task and pods whose agent did not answer find nothing. */
static void find_task_names_the_pod_and_slot(void **state)
{
    (void)state;
    view_pod pods[4] = {
        make_pod(1, "Running", true, false, "ripi", false, 0), /* task 100 reserved, 102 plan */
        make_pod(2, "Running", true, false, "aidi", false, 0), /* 200 applying, 202 drift */
        make_pod(3, "Running", true, false, "ipii", false, 0), /* 301, but the agent did not answer */
        make_pod(4, "Running", true, false, "ipii", false, 0), /* 401 plan */
    };
    pods[2].has_status = false;
    pods[1].slots[0].task_id = 100; /* the apply of 100 runs on pod-2 while pod-1 still holds its reservation */
    view_pool v = { .pods = pods, .npods = 4 };
    static const struct {
        uint64_t task;
        int      pod, slot;
    } cases[] = {
        { 100, 1, 0 }, { 102, 0, 2 }, { 202, 1, 2 }, { 401, 3, 1 }, { 0, -1, -1 }, { 999, -1, -1 }, { 301, -1, -1 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int slot = -1;
        assert_int_equal(view_find_task(&v, cases[i].task, &slot), cases[i].pod);
        if (cases[i].pod >= 0)
            assert_int_equal(slot, cases[i].slot);
    }
    pods[1].slots[0] = (view_slot){ 0 }; /* the apply has not started: the reservation is where it is */
    int slot = -1;
    assert_int_equal(view_find_task(&v, 100, &slot), 0);
    assert_int_equal(slot, 0);
    assert_int_equal(view_find_task(&v, 102, NULL), 0);
    view_pool none = { 0 };
    assert_int_equal(view_find_task(&none, 1, &slot), -1);
}

/* ---- robustness ---- */

/* Counts the nodes of a tree below the root (pre-order). */
static int count_nodes(const cJSON *n)
{
    int c = 0;
    for (const cJSON *k = n->child; k; k = k->next)
        c += 1 + count_nodes(k);
    return c;
}

/* The idx-th node below root in pre-order, and its parent. */
static cJSON *nth_node(cJSON *root, int *idx, cJSON **parent)
{
    for (cJSON *k = root->child; k; k = k->next) {
        if ((*idx)-- == 0) {
            *parent = root;
            return k;
        }
        cJSON *found = nth_node(k, idx, parent);
        if (found)
            return found;
    }
    return NULL;
}

typedef int (*parse_fn)(const cJSON *doc, char *err, size_t errlen);

static int try_deployment(const cJSON *doc, char *err, size_t errlen)
{
    view_pool v = { 0 };
    int rc = view_parse_deployment(doc, &v, err, errlen);
    view_pool_free(&v);
    return rc;
}

static int try_pods(const cJSON *doc, char *err, size_t errlen)
{
    view_pool v = { 0 };
    int rc = view_parse_pods(doc, &v, err, errlen);
    view_pool_free(&v);
    return rc;
}

static int try_pod_page(const cJSON *doc, char *err, size_t errlen)
{
    view_pool v = { 0 };
    char cont[64] = "unchanged";
    int rc = view_parse_pod_page(doc, &v, cont, sizeof cont, err, errlen);
    if (rc == 0 && strcmp(cont, "unchanged") == 0) /* an accepted page always says whether another follows */
        rc = -2;
    view_pool_free(&v);
    return rc;
}

static int try_status(const cJSON *doc, char *err, size_t errlen)
{
    view_pod p;
    memset(&p, 0, sizeof p);
    int rc = view_parse_agent_status(doc, &p, err, errlen);
    const view_slot *slots = view_pod_slots(&p);
    for (int i = 0; rc == 0 && i < p.nslots; i++) /* an accepted table is one of ours */
        if ((slots[i].status == SLOT_IDLE) != (slots[i].task_id == 0))
            rc = -2;
    view_pod_free(&p);
    return rc;
}

static int try_demand(const cJSON *doc, char *err, size_t errlen)
{
    view_pool v = { 0 };
    int rc = view_parse_demand(doc, "pool-a", &v, err, errlen);
    if (rc == 0 && (v.demand.plan_and_apply < 0 || v.demand.plan < 0 || v.demand.drift_check < 0))
        rc = -2;
    view_pool_free(&v);
    return rc;
}

/* Replacing any value of a valid document with a value of any other type (null, numbers negative, fractional and
 * huge, a string, a boolean, an empty array or object) never crashes or leaks: the parser accepts the document or
 * refuses it with a message, and what it accepts is sound. */
static void any_value_of_any_type_is_accepted_or_named(void **state)
{
    (void)state;
    static const char *const replacements[] = { "null", "-1", "1.5", "1e300", "'" SECRET "'", "true", "[]", "{}" };
    const struct {
        const char *doc;
        parse_fn    parse;
    } docs[] = {
        { "{'spec':{'replicas':3," SELECTOR "},'status':{'readyReplicas':2}}", try_deployment },
        { "{'items':[{'metadata':{'name':'a','creationTimestamp':'2024-01-01T00:00:00Z','deletionTimestamp':"
          "'2024-01-02T00:00:00Z','annotations':{'controller.kubernetes.io/pod-deletion-cost':'3'}},'status':"
          "{'phase':'Running','podIP':'10.0.0.1','conditions':[{'type':'Ready','status':'True'}]}}]}", try_pods },
        { "{'kind':'PodList','metadata':{'resourceVersion':'9','continue':'tok','remainingItemCount':3},'items':"
          "[{'metadata':{'name':'a','creationTimestamp':'2024-01-01T00:00:00Z'},'status':{'phase':'Running'}}]}",
          try_pod_page },
        { AGENT_HEAD SLOTS_FOUR, try_status },
        { "{'pools':{'pool-a':{'plan_and_apply':1,'plan':2,'drift_check':3,'tasks':[{'task_id':4,'task_type':"
          "'plan','waiting_since':1700000000}]}}}", try_demand },
    };
    for (size_t d = 0; d < ARRAY_LEN(docs); d++) {
        cJSON *base = js(docs[d].doc);
        char err[VIEW_ERR_MAX] = "";
        assert_int_equal(docs[d].parse(base, err, sizeof err), 0);
        int n = count_nodes(base);
        for (int k = 0; k < n; k++)
            for (size_t r = 0; r < ARRAY_LEN(replacements); r++) {
                cJSON *doc = cJSON_Duplicate(base, true), *parent = NULL;
                int idx = k;
                cJSON *node = nth_node(doc, &idx, &parent);
                assert_non_null(node);
                assert_true(cJSON_ReplaceItemViaPointer(parent, node, js(replacements[r])));
                err[0] = '\0';
                int rc = docs[d].parse(doc, err, sizeof err);
                if (rc != 0 && (rc != -1 || err[0] == '\0')) {
                    char *text = cJSON_PrintUnformatted(doc);
                    fail_msg("document %zu, node %d → %s: rc %d, err \"%s\": %s", d, k, replacements[r], rc, err,
                             text);
                }
                if (rc < 0 && strstr(err, SECRET))
                    fail_msg("document %zu, node %d: the error echoes a string value: %s", d, k, err);
                cJSON_Delete(doc);
            }
        cJSON_Delete(base);
    }
}

/* view_pool_free frees and zeroes; on a zeroed pool (or twice) it does nothing harmful. */
static void pool_free_zeroes_and_can_be_repeated(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "";
    cJSON *pods = js("{'items':[{" META_OK "}]}");
    cJSON *demand = js("{'pools':{'p':{'plan_and_apply':1,'plan':0,'drift_check':0,'tasks':"
                       "[{'task_id':1,'task_type':'plan_and_apply'}]}}}");
    assert_int_equal(view_parse_pods(pods, &v, err, sizeof err), 0);
    assert_int_equal(view_parse_demand(demand, "p", &v, err, sizeof err), 0);
    view_pool_free(&v);
    assert_null(v.pods);
    assert_null(v.waiting);
    assert_int_equal(v.npods + v.nwaiting, 0);
    assert_false(v.demand_ok);
    view_pool_free(&v);
    view_pool_free(NULL);
    cJSON_Delete(pods);
    cJSON_Delete(demand);
}

/* Starting a pod list again frees the pods read so far and nothing else: the Deployment and the demand stay. */
static void pool_free_pods_keeps_the_rest_of_the_view(void **state)
{
    (void)state;
    view_pool v = { 0 };
    char err[VIEW_ERR_MAX] = "", cont[VIEW_CONTINUE_MAX];
    cJSON *deploy = js("{'spec':{'replicas':3," SELECTOR "}}");
    cJSON *page = js("{'metadata':{'continue':'more'},'items':[{" META_OK "}]}");
    cJSON *status = js(AGENT_HEAD "'slots':[" SLOT_IDLE_AT(0) "," SLOT_IDLE_AT(1) "," SLOT_IDLE_AT(2) ","
                       SLOT_IDLE_AT(3) "," SLOT_IDLE_AT(4) "]}");
    assert_int_equal(view_parse_deployment(deploy, &v, err, sizeof err), 0);
    assert_int_equal(view_parse_pod_page(page, &v, cont, sizeof cont, err, sizeof err), 0);
    assert_int_equal(view_parse_agent_status(status, &v.pods[0], err, sizeof err), 0); /* five slots: not in the row */
    view_pool_free_pods(&v);
    assert_null(v.pods);
    assert_int_equal(v.npods, 0);
    assert_true(v.deployment_found);
    assert_int_equal(v.replicas, 3);
    assert_string_equal(v.selector, "app=iac-agent,pool=pool-a");
    assert_int_equal(view_parse_pod_page(page, &v, cont, sizeof cont, err, sizeof err), 0);
    assert_int_equal(v.npods, 1);
    cJSON_Delete(deploy);
    cJSON_Delete(page);
    cJSON_Delete(status);
    view_pool_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deployment_reads_replicas_ready_and_selector),
        cmocka_unit_test(deployment_defaults_replicas_to_one_and_ready_to_zero),
        cmocka_unit_test(deployment_errors_name_the_field),
        cmocka_unit_test(deployment_selector_too_long_is_refused),
        cmocka_unit_test(pods_read_every_kubernetes_field),
        cmocka_unit_test(pods_without_a_name_are_skipped_and_missing_status_is_pending),
        cmocka_unit_test(pods_null_or_empty_items_are_no_pods),
        cmocka_unit_test(pod_timestamps_are_rfc3339),
        cmocka_unit_test(deletion_cost_annotation_present_absent_or_unparsable),
        cmocka_unit_test(pods_errors_name_the_field),
        cmocka_unit_test(pods_replace_the_previous_list_only_when_read),
        cmocka_unit_test(pods_more_than_the_maximum_are_refused),
        cmocka_unit_test(pod_pages_append_and_hand_back_the_continue_token),
        cmocka_unit_test(pod_page_errors_append_nothing),
        cmocka_unit_test(long_names_are_cut_at_a_character_boundary),
        cmocka_unit_test(agent_status_reads_the_agents_shape),
        cmocka_unit_test(agent_status_reads_what_the_agent_writes),
        cmocka_unit_test(agent_status_of_any_slot_count_replaces_the_last),
        cmocka_unit_test(agent_status_errors_name_the_field),
        cmocka_unit_test(agent_status_draining_disconnected_and_idle_slots),
        cmocka_unit_test(demand_reads_counts_and_tasks_of_the_pool),
        cmocka_unit_test(demand_of_a_pool_absent_from_the_document_is_zero),
        cmocka_unit_test(demand_errors_name_the_field),
        cmocka_unit_test(demand_task_list_is_capped),
        cmocka_unit_test(scaler_pod_follows_every_mapping_rule),
        cmocka_unit_test(reservation_age_is_never_negative),
        cmocka_unit_test(parsed_pool_drives_the_scaler),
        cmocka_unit_test(find_task_names_the_pod_and_slot),
        cmocka_unit_test(any_value_of_any_type_is_accepted_or_named),
        cmocka_unit_test(pool_free_zeroes_and_can_be_repeated),
        cmocka_unit_test(pool_free_pods_keeps_the_rest_of_the_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
