/* test_render.c — the work directory files of ref §7.2, byte for byte, from small task bundles.
 *
 * Fixtures are written with single quotes for readability (sq() turns them into double quotes); none of them needs
 * a literal apostrophe. Expected JSON is what Go's json.MarshalIndent writes for the same map. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/render.h"
#include "iac/fsutil.h"
#include "iac/json.h"

/* ---- helpers ------------------------------------------------------------------------------------------------ */

static char *sq(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static cJSON *fixture(const char *text)
{
    char *t = sq(text), err[256];
    cJSON *b = json_parse_object(t, strlen(t), err, sizeof err);
    if (!b)
        fail_msg("fixture does not parse: %s\n%s", err, t);
    free(t);
    return b;
}

typedef int (*render_fn)(const cJSON *bundle, strbuf *out, char *err, size_t errlen);

static const cJSON *item(const cJSON *b, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(b, key);
}

/* Adapters so that every renderer can be driven from a bundle fixture. */
static int provider_of(const cJSON *b, strbuf *o, char *e, size_t n)
{
    return render_provider_tf(item(b, "provider_config"), o, e, n);
}
static int variables_of(const cJSON *b, strbuf *o, char *e, size_t n)
{
    return render_variables_tf(item(b, "variables"), true, o, e, n);
}
static int tfvars_of(const cJSON *b, strbuf *o, char *e, size_t n)
{
    return render_tfvars(item(b, "variables"), true, o, e, n);
}
static int all_tfvars_of(const cJSON *b, strbuf *o, char *e, size_t n)
{
    return render_tfvars(item(b, "variables"), false, o, e, n);
}
static int all_variables_of(const cJSON *b, strbuf *o, char *e, size_t n)
{
    return render_variables_tf(item(b, "variables"), false, o, e, n);
}
static int remote_of(const cJSON *b, strbuf *o, char *e, size_t n)
{
    return render_remote_data_tf(item(b, "remote_data"), o, e, n);
}

/* Renders the fixture with fn and checks the return code and, for RENDER_WRITE, the exact bytes (quotes in `want`
 * are single quotes too). */
static void expect(render_fn fn, const char *bundle, int want_rc, const char *want)
{
    cJSON *b = fixture(bundle);
    strbuf out = STRBUF_INIT;
    char err[512] = "";
    int rc = fn(b, &out, err, sizeof err);
    if (rc != want_rc)
        fail_msg("rc %d (want %d), err \"%s\"", rc, want_rc, err);
    if (want) {
        char *w = sq(want);
        assert_string_equal(out.data ? out.data : "", w);
        free(w);
    } else {
        assert_int_equal(out.len, 0);
    }
    strbuf_free(&out);
    cJSON_Delete(b);
}

/* Renders and expects -1 with a message containing `want` and none of `secret`. */
static void expect_error(render_fn fn, const char *bundle, const char *want, const char *secret)
{
    cJSON *b = fixture(bundle);
    strbuf out = STRBUF_INIT;
    char err[512] = "";
    assert_int_equal(fn(b, &out, err, sizeof err), -1);
    char *w = sq(want);
    if (!strstr(err, w))
        fail_msg("message \"%s\" lacks \"%s\"", err, w);
    if (secret)
        assert_null(strstr(err, secret));
    free(w);
    strbuf_free(&out);
    cJSON_Delete(b);
}

/* ---- main.tf.json ------------------------------------------------------------------------------------------- */

/* Only resources with a current_version contribute, in bundle order; for module-based code a later resource adds
 * its modules beside the earlier ones and a later equal name wins, exactly as upstream's two-level merge does. */
static void main_tf_merges_module_code_in_bundle_order(void **state)
{
    (void)state;
    expect(render_main_tf,
           "{'workspace': {'tf_code': {'ignored': true}}, 'resources': ["
           " {'resource_name': 'vpc', 'current_version': {'version': 1, 'tf_code':"
           "   {'module': {'vpc': [{'source': 'a', 'cidr': '10.0.0.0/16'}]}, 'locals': {'x': 1}}}},"
           " {'resource_name': 'skipped', 'current_version': null},"
           " {'resource_name': 'no-version'},"
           " {'resource_name': 'db', 'current_version': {'tf_code':"
           "   {'module': {'db': [{'source': 'b'}], 'vpc': [{'source': 'c'}]}, 'locals': {'x': 2, 'y': 'z'}}}}]}",
           RENDER_WRITE,
           "{\n"
           "  'locals': {\n"
           "    'x': 2,\n"
           "    'y': 'z'\n"
           "  },\n"
           "  'module': {\n"
           "    'db': [\n"
           "      {\n"
           "        'source': 'b'\n"
           "      }\n"
           "    ],\n"
           "    'vpc': [\n"
           "      {\n"
           "        'source': 'c'\n"
           "      }\n"
           "    ]\n"
           "  }\n"
           "}");
}

/* DESIGN §4.4: objects merge at every depth, so two resources that both declare resource.null_resource keep both
 * blocks (upstream keeps only the last); a later scalar or array replaces what was there. */
static void main_tf_merges_objects_at_every_depth(void **state)
{
    (void)state;
    expect(render_main_tf,
           "{'resources': ["
           " {'current_version': {'tf_code': {'resource': {'null_resource': {'a': {'triggers': {'k': '1'}}}},"
           "   'terraform': [{'x': 1}], 'locals': {'l': 1}}}},"
           " {'current_version': {'tf_code': {'resource': {'null_resource': {'b': {}}, 'random_id': {'c': {'n': 4}}},"
           "   'terraform': [{'y': 2}]}}},"
           " {'current_version': {'tf_code': {'resource': {'null_resource': {'a': {'triggers': {'k': '2', 'm': '3'}}}},"
           "   'locals': 'scalar'}}}]}",
           RENDER_WRITE,
           "{\n"
           "  'locals': 'scalar',\n"
           "  'resource': {\n"
           "    'null_resource': {\n"
           "      'a': {\n"
           "        'triggers': {\n"
           "          'k': '2',\n"
           "          'm': '3'\n"
           "        }\n"
           "      },\n"
           "      'b': {}\n"
           "    },\n"
           "    'random_id': {\n"
           "      'c': {\n"
           "        'n': 4\n"
           "      }\n"
           "    }\n"
           "  },\n"
           "  'terraform': [\n"
           "    {\n"
           "      'y': 2\n"
           "    }\n"
           "  ]\n"
           "}");
}

/* The merge works on copies: the bundle is unchanged afterwards and a second rendering gives the same bytes. */
static void main_tf_leaves_the_bundle_untouched(void **state)
{
    (void)state;
    cJSON *b = fixture("{'resources': ["
                       " {'current_version': {'tf_code': {'module': {'m': {'a': 1}}}}},"
                       " {'current_version': {'tf_code': {'module': {'m': {'b': 2}}}}}]}");
    char *before = cJSON_PrintUnformatted(b);
    strbuf one = STRBUF_INIT, two = STRBUF_INIT;
    char err[256];
    assert_int_equal(render_main_tf(b, &one, err, sizeof err), RENDER_WRITE);
    assert_int_equal(render_main_tf(b, &two, err, sizeof err), RENDER_WRITE);
    char *after = cJSON_PrintUnformatted(b);
    assert_string_equal(before, after);
    assert_string_equal(one.data, two.data);
    assert_non_null(strstr(one.data, "\"a\": 1"));
    assert_non_null(strstr(one.data, "\"b\": 2"));
    free(before);
    free(after);
    strbuf_free(&one);
    strbuf_free(&two);
    cJSON_Delete(b);
}

/* With no resources the workspace's own tf_code is written (keys sorted, indented); {} when it is absent. With
 * resources that have no current_version, the merge of nothing: {}. */
static void main_tf_without_resources_uses_workspace_code(void **state)
{
    (void)state;
    expect(render_main_tf, "{'workspace': {'tf_code': {'z': [1], 'a': {'b': '<x>'}}}, 'resources': []}", RENDER_WRITE,
           "{\n  'a': {\n    'b': '\\u003cx\\u003e'\n  },\n  'z': [\n    1\n  ]\n}");
    expect(render_main_tf, "{'workspace': {'tf_code': {'a': 1}}}", RENDER_WRITE, "{\n  'a': 1\n}");
    expect(render_main_tf, "{'workspace': {}}", RENDER_WRITE, "{}");
    expect(render_main_tf, "{'workspace': {'tf_code': null}, 'resources': null}", RENDER_WRITE, "{}");
    expect(render_main_tf, "{'workspace': {'tf_code': {'a': 1}}, 'resources': [{'resource_name': 'r'}]}",
           RENDER_WRITE, "{}");
}

/* ---- provider.tf.json --------------------------------------------------------------------------------------- */

/* A top-level "terraform" that is [] or {} is dropped; a non-empty one, and a nested "terraform", stay. */
static void provider_drops_an_empty_terraform_block(void **state)
{
    (void)state;
    expect(provider_of, "{'provider_config': {'terraform': [], 'provider': {'aws': [{'region': 'eu-west-1'}]}}}",
           RENDER_WRITE,
           "{\n  'provider': {\n    'aws': [\n      {\n        'region': 'eu-west-1'\n      }\n    ]\n  }\n}");
    expect(provider_of, "{'provider_config': {'terraform': {}, 'p': {'terraform': []}}}", RENDER_WRITE,
           "{\n  'p': {\n    'terraform': []\n  }\n}");
    expect(provider_of, "{'provider_config': {'terraform': [{'required_providers': [{}]}]}}", RENDER_WRITE,
           "{\n  'terraform': [\n    {\n      'required_providers': [\n        {}\n      ]\n    }\n  ]\n}");
}

/* No file when the config is absent, null, empty, or empty once the terraform block is dropped. */
static void provider_not_written_when_empty(void **state)
{
    (void)state;
    expect(provider_of, "{}", RENDER_SKIP, NULL);
    expect(provider_of, "{'provider_config': null}", RENDER_SKIP, NULL);
    expect(provider_of, "{'provider_config': {}}", RENDER_SKIP, NULL);
    expect(provider_of, "{'provider_config': {'terraform': []}}", RENDER_SKIP, NULL);
}

/* ---- variables.tf.json and variables.tfvars ---------------------------------------------------------------- */

/* Terraform-type variables only, each {"type": "string"} with its description when non-empty and sensitive when
 * set; a later equal key replaces the earlier one (a Go map). */
static void variables_tf_declares_terraform_variables(void **state)
{
    (void)state;
    expect(variables_of,
           "{'variables': ["
           " {'key': 'region', 'value': 'eu', 'variable_type': 'terraform', 'description': 'where <to>'},"
           " {'key': 'pw', 'value': 'x', 'variable_type': 'terraform', 'sensitive': true, 'description': ''},"
           " {'key': 'AWS_PROFILE', 'value': 'p', 'variable_type': 'environment'},"
           " {'key': 'name', 'variable_type': 'terraform', 'sensitive': false, 'description': 'the name'}]}",
           RENDER_WRITE,
           "{\n"
           "  'variable': {\n"
           "    'name': {\n"
           "      'description': 'the name',\n"
           "      'type': 'string'\n"
           "    },\n"
           "    'pw': {\n"
           "      'sensitive': true,\n"
           "      'type': 'string'\n"
           "    },\n"
           "    'region': {\n"
           "      'description': 'where \\u003cto\\u003e',\n"
           "      'type': 'string'\n"
           "    }\n"
           "  }\n"
           "}");
    expect(variables_of,
           "{'variables': [{'key': 'a', 'variable_type': 'terraform', 'description': 'old'},"
           " {'key': 'a', 'variable_type': 'terraform'}]}",
           RENDER_WRITE, "{\n  'variable': {\n    'a': {\n      'type': 'string'\n    }\n  }\n}");
}

/* No variables.tf.json without terraform variables; the tfvars file is then written empty. */
static void variables_tf_not_written_without_terraform_variables(void **state)
{
    (void)state;
    const char *only_env = "{'variables': [{'key': 'TF_LOG', 'value': 'debug', 'variable_type': 'environment'}]}";
    expect(variables_of, only_env, RENDER_SKIP, NULL);
    expect(tfvars_of, only_env, RENDER_WRITE, NULL);
    expect(variables_of, "{}", RENDER_SKIP, NULL);
    expect(tfvars_of, "{'variables': null}", RENDER_WRITE, NULL);
}

/* Ref §8 entry 26: an entry with an empty or missing key appears in neither file. */
static void variables_with_empty_key_are_skipped(void **state)
{
    (void)state;
    const char *b = "{'variables': [{'key': '', 'value': 'v', 'variable_type': 'terraform'},"
                    " {'value': 'w', 'variable_type': 'terraform'},"
                    " {'key': 'k', 'value': 'v', 'variable_type': 'terraform'}]}";
    expect(variables_of, b, RENDER_WRITE, "{\n  'variable': {\n    'k': {\n      'type': 'string'\n    }\n  }\n}");
    expect(tfvars_of, b, RENDER_WRITE, "k = 'v'\n");
    expect(variables_of, "{'variables': [{'key': '', 'variable_type': 'terraform'}]}", RENDER_SKIP, NULL);
}

/* The apply snapshot writes every variable type (ref §7.5 step 6); the plan only terraform ones. */
static void snapshot_variables_include_every_type(void **state)
{
    (void)state;
    const char *b = "{'variables': [{'key': 'AWS_REGION', 'value': 'eu', 'variable_type': 'environment'},"
                    " {'key': 'n', 'value': '1', 'value_format': 'hcl', 'variable_type': 'terraform'}]}";
    expect(tfvars_of, b, RENDER_WRITE, "n = 1\n");
    expect(all_tfvars_of, b, RENDER_WRITE, "AWS_REGION = 'eu'\nn = 1\n");
    expect(all_variables_of, b, RENDER_WRITE,
           "{\n  'variable': {\n    'AWS_REGION': {\n      'type': 'string'\n    },\n"
           "    'n': {\n      'type': 'string'\n    }\n  }\n}");
}

static void check_tfvars_line(const char *format, const char *value, const char *want)
{
    cJSON *vars = cJSON_CreateArray(), *v = cJSON_CreateObject();
    cJSON_AddItemToArray(vars, v);
    cJSON_AddStringToObject(v, "key", "k");
    if (value)
        cJSON_AddStringToObject(v, "value", value);
    cJSON_AddStringToObject(v, "variable_type", "terraform");
    if (format)
        cJSON_AddStringToObject(v, "value_format", format);
    strbuf out = STRBUF_INIT;
    char err[256];
    assert_int_equal(render_tfvars(vars, true, &out, err, sizeof err), RENDER_WRITE);
    if (strcmp(out.data, want) != 0)
        fail_msg("format %s value [%s]: got [%s], want [%s]", format ? format : "(none)", value ? value : "(none)",
                 out.data, want);
    strbuf_free(&out);
    cJSON_Delete(vars);
}

/* The quoting rule: string values are always quoted with " → \" and newline → \n and nothing else escaped;
 * hcl values are written as stored when, trimmed, they open an object or list or are true/false. */
static void tfvars_quoting_rules(void **state)
{
    (void)state;
    static const struct { const char *format, *value, *want; } cases[] = {
        { "string", "plain", "k = \"plain\"\n" },
        { "string", "say \"hi\"\nbye", "k = \"say \\\"hi\\\"\\nbye\"\n" },
        { "string", "C:\\dir\\n", "k = \"C:\\dir\\n\"\n" },      /* backslashes go through as they are */
        { "string", "{\"a\": 1}", "k = \"{\\\"a\\\": 1}\"\n" }, /* string format: quoted whatever it looks like */
        { "string", "42", "k = \"42\"\n" },
        { NULL, "true", "k = \"true\"\n" },                      /* no value_format: a string */
        { "string", NULL, "k = \"\"\n" },
        { "hcl", "{ a = 1 }", "k = { a = 1 }\n" },
        { "hcl", "  [1, 2]\n", "k =   [1, 2]\n\n" },             /* bare values keep their own spacing */
        { "hcl", "true", "k = true\n" },
        { "hcl", "false", "k = false\n" },
        { "hcl", " true ", "k =  true \n" },
        { "hcl", "True", "k = \"True\"\n" },
        { "hcl", "hello", "k = \"hello\"\n" },
        { "hcl", "", "k = \"\"\n" },
        { "hcl", "a\n\"b\"", "k = \"a\\n\\\"b\\\"\"\n" },
        { "hcl", "x{", "k = \"x{\"\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_tfvars_line(cases[i].format, cases[i].value, cases[i].want);
}

/* "Parses as a number" is Go's strconv.ParseFloat: decimal and hex literals, underscores between digits, inf,
 * infinity and nan (a sign only before inf), no overflow; the value is trimmed of Unicode white space first. */
static void tfvars_numbers_are_what_go_parses(void **state)
{
    (void)state;
    static const char *bare[] = {
        "42", "-1.5e3", "+7", ".5", "5.", "1e+5", "1E5", "0x1p-2", "0X1.8P1", "0x.8p1", "0x_1p0", "1_000",
        "0_1", "1e1_0", "Inf", "-inf", "+Infinity", "NaN", "nan", "1e-999", "0e99999", "00012",
        " 3 ", "\t8\n", "\xc2\xa0" "9" "\xe3\x80\x80", /* NBSP and ideographic space are white space to Go */
    };
    static const char *quoted[] = {
        "1e999", "-1e400", "0x1p99999", "+NaN", "-nan", "infinit", "infx", "0x1", "0x", "_1", "1_", "1__0",
        "1_.5", "1._5", ".", "1e", "1e+", "e5", "1.2.3", "12abc", "1 2", "--1", "0b101", "0o7", "1_e5",
        "\xef\xbb\xbf" "1", /* a BOM is not white space */
    };
    char want[64];
    for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++) {
        snprintf(want, sizeof want, "k = %s\n", bare[i]);
        check_tfvars_line("hcl", bare[i], want);
    }
    for (size_t i = 0; i < sizeof quoted / sizeof quoted[0]; i++) {
        snprintf(want, sizeof want, "k = \"%s\"\n", quoted[i]);
        check_tfvars_line("hcl", quoted[i], want);
    }
}

/* ---- outputs.tf.json ---------------------------------------------------------------------------------------- */

/* Static outputs (resource_name "" or "__static__") are "static-<name>" with the value as a literal string; the
 * others "<module>-<name>" with "${…}", the module taken from "module.<m>.…" or else the resource_name;
 * description and sensitive when set. An output of a resource that is not active is dropped, static ones never. */
static void outputs_static_module_and_resource_rules(void **state)
{
    (void)state;
    expect(render_outputs_tf,
           "{'resources': [{'resource_name': 'vpc', 'is_active': true}, {'resource_name': 'old', 'is_active': false},"
           "  {'resource_name': 'net'}],"
           " 'outputs': ["
           "  {'resource_name': '', 'output_name': 'env', 'output_value': 'prod'},"
           "  {'resource_name': '__static__', 'output_name': 'owner', 'output_value': 'team <ops> ${x}'},"
           "  {'resource_name': 'vpc', 'output_name': 'id', 'output_value': 'module.vpc.vpc_id',"
           "   'description': 'the id', 'sensitive': true},"
           "  {'resource_name': 'vpc', 'output_name': 'arn', 'output_value': 'aws_vpc.main.arn', 'sensitive': false},"
           "  {'resource_name': 'vpc', 'output_name': 'sub', 'output_value': 'module.net.subnets'},"
           "  {'resource_name': 'vpc', 'output_name': 'all', 'output_value': 'module.solo'},"
           "  {'resource_name': 'old', 'output_name': 'gone', 'output_value': 'module.old.x'},"
           "  {'resource_name': 'net', 'output_name': 'inactive', 'output_value': 'module.net.x'},"
           "  {'resource_name': 'ghost', 'output_name': 'g', 'output_value': 'module.ghost.x'}]}",
           RENDER_WRITE,
           "{\n"
           "  'output': {\n"
           "    'net-sub': {\n"
           "      'value': '${module.net.subnets}'\n"
           "    },\n"
           "    'solo-all': {\n"
           "      'value': '${module.solo}'\n"
           "    },\n"
           "    'static-env': {\n"
           "      'value': 'prod'\n"
           "    },\n"
           "    'static-owner': {\n"
           "      'value': 'team \\u003cops\\u003e ${x}'\n"
           "    },\n"
           "    'vpc-arn': {\n"
           "      'value': '${aws_vpc.main.arn}'\n"
           "    },\n"
           "    'vpc-id': {\n"
           "      'description': 'the id',\n"
           "      'sensitive': true,\n"
           "      'value': '${module.vpc.vpc_id}'\n"
           "    }\n"
           "  }\n"
           "}");
}

/* The filter applies only when at least one active resource exists: with none, every output stays. */
static void outputs_kept_when_no_resource_is_active(void **state)
{
    (void)state;
    expect(render_outputs_tf,
           "{'resources': [{'resource_name': 'ghost', 'is_active': false}],"
           " 'outputs': [{'resource_name': 'ghost', 'output_name': 'g', 'output_value': 'module.ghost.x'}]}",
           RENDER_WRITE, "{\n  'output': {\n    'ghost-g': {\n      'value': '${module.ghost.x}'\n    }\n  }\n}");
}

/* No outputs.tf.json when there are no outputs or every one was dropped. */
static void outputs_not_written_when_nothing_remains(void **state)
{
    (void)state;
    expect(render_outputs_tf, "{}", RENDER_SKIP, NULL);
    expect(render_outputs_tf, "{'outputs': []}", RENDER_SKIP, NULL);
    expect(render_outputs_tf,
           "{'resources': [{'resource_name': 'a', 'is_active': true}],"
           " 'outputs': [{'resource_name': 'b', 'output_name': 'x', 'output_value': 'module.b.x'}]}",
           RENDER_SKIP, NULL);
}

/* ---- remote_data.tf.json ------------------------------------------------------------------------------------ */

/* data.http.remote_<sanitised> with the URL and the bearer token, locals.<data_name> decoding its outputs; entries
 * missing data_name, token or url are skipped. */
static void remote_data_shape(void **state)
{
    (void)state;
    expect(remote_of,
           "{'remote_data': ["
           " {'remote_data_id': 'rd-1', 'source_workspace_id': 'ws-2', 'data_name': 'net-work', 'token': 't0k',"
           "  'url': 'https://p/api/v1/workspaces/ws-2/state-outputs/full'},"
           " {'data_name': '1st', 'token': 't1', 'url': 'u1'},"
           " {'data_name': 'x', 'token': '', 'url': 'u'},"
           " {'data_name': '', 'token': 't', 'url': 'u'},"
           " {'data_name': 'y', 'token': 't'}]}",
           RENDER_WRITE,
           "{\n"
           "  'data': {\n"
           "    'http': {\n"
           "      'remote__1st': [\n"
           "        {\n"
           "          'request_headers': {\n"
           "            'Authorization': 'Bearer t1'\n"
           "          },\n"
           "          'url': 'u1'\n"
           "        }\n"
           "      ],\n"
           "      'remote_net_work': [\n"
           "        {\n"
           "          'request_headers': {\n"
           "            'Authorization': 'Bearer t0k'\n"
           "          },\n"
           "          'url': 'https://p/api/v1/workspaces/ws-2/state-outputs/full'\n"
           "        }\n"
           "      ]\n"
           "    }\n"
           "  },\n"
           "  'locals': {\n"
           "    '1st': '${jsondecode(data.http.remote__1st.response_body).outputs}',\n"
           "    'net-work': '${jsondecode(data.http.remote_net_work.response_body).outputs}'\n"
           "  }\n"
           "}");
}

/* No file for null, empty, or entirely incomplete remote_data. */
static void remote_data_not_written_without_complete_entries(void **state)
{
    (void)state;
    expect(remote_of, "{'remote_data': null}", RENDER_SKIP, NULL);
    expect(remote_of, "{}", RENDER_SKIP, NULL);
    expect(remote_of, "{'remote_data': [{'data_name': 'a', 'url': 'u', 'token': null}]}", RENDER_SKIP, NULL);
}

/* Every character outside [A-Za-z0-9_] — a whole UTF-8 sequence, or one invalid byte — becomes one "_"; a
 * leading digit gets a "_" in front; the result is cut to the buffer. */
static void sanitize_name_rules(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        { "net-work", "net_work" }, { "1st", "_1st" },   { "ok_Name9", "ok_Name9" }, { "\xc3\xa9t\xc3\xa9", "_t_" },
        { "a\xff" "b", "a_b" },     { "\xe6\x97\xa5\xe6\x9c\xac", "__" }, { "", "" }, { "9", "_9" },
        { "-1", "_1" },             { "a.b c", "a_b_c" }, { "\xf0\x9f\x98\x80x", "_x" }, { "\xe6\x97", "__" },
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        render_sanitize_name(cases[i].in, out, sizeof out);
        assert_string_equal(out, cases[i].want);
    }
    render_sanitize_name("abcdef", out, 4);
    assert_string_equal(out, "abc");
    render_sanitize_name("1abc", out, 3);
    assert_string_equal(out, "_1");
    out[0] = 'x';
    render_sanitize_name("abc", out, 1);
    assert_string_equal(out, "");
}

/* ---- terraform.tfstate -------------------------------------------------------------------------------------- */

/* The state is json.Marshal of the content: compact, keys sorted at every level, < > & escaped. */
static void state_is_compact_sorted_and_escaped(void **state)
{
    (void)state;
    expect(render_state,
           "{'state_version': {'version': 3, 'checksum': 'c', 'size': 9, 'content':"
           " {'version': 4, 'serial': 3, 'lineage': 'l', 'outputs': {'b': {'value': '<&>'}, 'a': {'value': 1.5}},"
           "  'resources': []}}}",
           RENDER_WRITE,
           "{'lineage':'l','outputs':{'a':{'value':1.5},'b':{'value':'\\u003c\\u0026\\u003e'}},'resources':[],"
           "'serial':3,'version':4}");
}

/* No state_version: skip (the writer removes an old file). A state version without content is written as {},
 * as upstream's lenient getter does. */
static void state_absent_or_empty(void **state)
{
    (void)state;
    expect(render_state, "{}", RENDER_SKIP, NULL);
    expect(render_state, "{'state_version': null}", RENDER_SKIP, NULL);
    expect(render_state, "{'state_version': {'version': 1}}", RENDER_WRITE, "{}");
}

/* ---- malformed bundles -------------------------------------------------------------------------------------- */

static int plan_workdir_in_tmp(const cJSON *b, strbuf *o, char *e, size_t n)
{
    (void)o;
    char tmpl[] = "/tmp/iac-test-render-bad-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/w", tmpl);
    int rc = render_plan_workdir(b, dir, false, e, n);
    assert_int_equal(access(dir, F_OK), -1); /* nothing was created */
    fs_rm_rf(tmpl);
    return rc;
}

/* A field of the wrong type is an error naming the field's path, never a crash or a silent default, and never
 * echoing a value. */
static void malformed_bundles_name_the_field(void **state)
{
    (void)state;
    static const struct { render_fn fn; const char *bundle, *want; } cases[] = {
        { render_main_tf, "{'resources': {}}", "resources: expected an array, got object" },
        { render_main_tf, "{'resources': [1]}", "resources[0]: expected an object" },
        { render_main_tf, "{'resources': [{'current_version': 'x'}]}",
          "resources[0].current_version: expected an object, got string" },
        { render_main_tf, "{'resources': [{'resource_name': 'a'}, {'current_version': {'tf_code': []}}]}",
          "resources[1].current_version.tf_code: expected an object, got array" },
        { render_main_tf, "{'workspace': {'tf_code': 'x'}}", "workspace.tf_code: expected an object, got string" },
        { render_main_tf, "{'workspace': []}", "workspace: expected an object, got array" },
        { render_outputs_tf, "{'outputs': [{'output_name': 1}]}", "outputs[0].output_name: expected a string" },
        { render_outputs_tf, "{'outputs': [7]}", "outputs[0]: expected an object" },
        { render_outputs_tf, "{'outputs': [{}], 'resources': [{'is_active': 'yes'}]}",
          "resources[0].is_active: expected a boolean, got string" },
        { render_state, "{'state_version': []}", "state_version: expected an object, got array" },
        { render_state, "{'state_version': {'content': 'x'}}", "state_version.content: expected an object" },
        { variables_of, "{'variables': 'x'}", "variables: expected an array" },
        { tfvars_of, "{'variables': [{'key': 'k', 'value': 3}]}", "variables[0].value: expected a string" },
        { variables_of, "{'variables': [{'key': 'k', 'variable_type': 'terraform', 'description': []}]}",
          "variables[0].description: expected a string, got array" },
        { remote_of, "{'remote_data': {}}", "remote_data: expected an array" },
        { remote_of, "{'remote_data': [{'data_name': 'n', 'token': 't', 'url': 5}]}",
          "remote_data[0].url: expected a string, got number" },
        { provider_of, "{'provider_config': 'x'}", "provider_config: expected an object" },
        { plan_workdir_in_tmp, "{}", "failed to get workspace: workspace: required but missing" },
        { plan_workdir_in_tmp, "{'workspace': 'x'}", "failed to get workspace: workspace: expected an object" },
        { plan_workdir_in_tmp, "{'workspace': {'terraform_lock_hcl': 1}}",
          ".terraform.lock.hcl: workspace.terraform_lock_hcl: expected a string, got number" },
        { plan_workdir_in_tmp, "{'workspace': {'provider_config': []}}",
          "provider.tf.json: workspace.provider_config: expected an object, got array" },
        { plan_workdir_in_tmp, "{'workspace': {}, 'variables': [{'key': {}}]}",
          "variables.tf.json: variables[0].key: expected a string, got object" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].fn, cases[i].bundle, cases[i].want, NULL);
}

/* Secrets in a malformed record stay out of the message. */
static void errors_never_carry_secret_values(void **state)
{
    (void)state;
    expect_error(tfvars_of,
                 "{'variables': [{'key': 'k', 'value': 'SECRET-VALUE', 'variable_type': 'terraform', "
                 "'sensitive': 'yes'}]}",
                 "variables[0].sensitive: expected a boolean, got string", "SECRET");
    expect_error(remote_of, "{'remote_data': [{'data_name': 'n', 'token': 'SECRET-TOKEN', 'url': []}]}",
                 "remote_data[0].url", "SECRET");
    expect_error(render_state, "{'state_version': {'content': 'SECRET-STATE'}}", "state_version.content", "SECRET");
}

/* A NULL or non-object bundle never crashes any renderer. */
static void null_and_non_object_bundles_do_not_crash(void **state)
{
    (void)state;
    render_fn fns[] = { render_main_tf, render_outputs_tf, render_state };
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        strbuf out = STRBUF_INIT;
        char err[256];
        assert_true(fns[i](NULL, &out, err, sizeof err) >= 0);
        strbuf_reset(&out);
        assert_int_equal(fns[i](arr, &out, err, sizeof err), -1);
        strbuf_free(&out);
    }
    char err[256];
    assert_int_equal(render_plan_workdir(NULL, "/tmp/iac-test-render-never", false, err, sizeof err), -1);
    assert_int_equal(render_plan_workdir(arr, "/tmp/iac-test-render-never", false, err, sizeof err), -1);
    assert_int_equal(access("/tmp/iac-test-render-never", F_OK), -1);
    strbuf out = STRBUF_INIT;
    assert_int_equal(render_tfvars(NULL, true, &out, err, sizeof err), RENDER_WRITE);
    assert_int_equal(render_variables_tf(NULL, true, &out, err, sizeof err), RENDER_SKIP);
    assert_int_equal(render_remote_data_tf(NULL, &out, err, sizeof err), RENDER_SKIP);
    assert_int_equal(render_provider_tf(NULL, &out, err, sizeof err), RENDER_SKIP);
    assert_int_equal(render_main_tf_from(NULL, NULL, &out, err, sizeof err), RENDER_WRITE);
    assert_string_equal(out.data, "{}");
    strbuf_free(&out);
    cJSON_Delete(arr);
}

/* cJSON allocations that fail from the n-th one on. */
static long alloc_budget;

static void *failing_malloc(size_t size)
{
    return alloc_budget-- > 0 ? malloc(size) : NULL;
}

/* Running out of memory at any cJSON allocation while a tree is built gives -1 "out of memory" — no crash, no
 * leak (the sanitizer and valgrind runs check the latter) — and enough memory gives the normal result. */
static void out_of_memory_anywhere_is_an_error(void **state)
{
    (void)state;
    render_fn fns[] = { render_main_tf, variables_of, render_outputs_tf, remote_of, provider_of };
    cJSON *b = fixture("{'resources': [{'resource_name': 'vpc', 'is_active': true, 'current_version': {'tf_code':"
                       "   {'module': {'vpc': [{'source': 'a'}]}, 'locals': {'a': {'b': 1}}}}},"
                       "  {'current_version': {'tf_code': {'locals': {'a': {'c': 2}}}}}],"
                       " 'variables': [{'key': 'a', 'variable_type': 'terraform', 'description': 'd',"
                       "   'sensitive': true},"
                       "  {'key': 'a', 'variable_type': 'terraform'}],"
                       " 'outputs': [{'resource_name': 'vpc', 'output_name': 'id', 'output_value': 'module.vpc.id',"
                       "   'description': 'd', 'sensitive': true}, {'output_name': 's', 'output_value': 'v'},"
                       "  {'resource_name': 'vpc', 'output_name': 'id', 'output_value': 'module.vpc.id'}],"
                       " 'remote_data': [{'data_name': 'n', 'token': 't', 'url': 'u'},"
                       "  {'data_name': 'n', 'token': 't2', 'url': 'u2'}],"
                       " 'provider_config': {'terraform': [], 'provider': {'a': [{}]}, 'x': 1}}");
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        int rc = -1;
        for (long n = 0; rc < 0 && n < 1000; n++) {
            strbuf out = STRBUF_INIT;
            char err[256] = "";
            alloc_budget = n;
            cJSON_Hooks hooks = { failing_malloc, free };
            cJSON_InitHooks(&hooks);
            rc = fns[f](b, &out, err, sizeof err);
            cJSON_InitHooks(NULL);
            if (rc < 0)
                assert_string_equal(err, "out of memory");
            strbuf_free(&out);
        }
        assert_int_equal(rc, RENDER_WRITE);
    }
    cJSON_Delete(b);
}

/* ---- the fetching stage's log lines ------------------------------------------------------------------------- */

typedef struct {
    char *lines[64];
    int   n;
} collected;

static void collect(const char *line, void *arg)
{
    collected *c = arg;
    assert_true(c->n < 64);
    c->lines[c->n++] = strdup(line);
}

static void collected_free(collected *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->lines[i]);
    c->n = 0;
}

static void expect_lines(const char *bundle, const char *const *want, int n_want, const char *secret)
{
    cJSON *b = bundle ? fixture(bundle) : NULL;
    collected c = { .n = 0 };
    render_describe(b, collect, &c);
    for (int i = 0; i < c.n && i < n_want; i++)
        assert_string_equal(c.lines[i], want[i]);
    assert_int_equal(c.n, n_want);
    for (int i = 0; secret && i < c.n; i++)
        assert_null(strstr(c.lines[i], secret));
    collected_free(&c);
    cJSON_Delete(b);
}

/* Upstream's fetching lines: resources with their versions, terraform variables with sensitive values masked (a
 * "sensitive" that is not false masks too), the AWS region, the state version with a shortened checksum. */
static void describe_prints_the_fetching_lines(void **state)
{
    (void)state;
    static const char *const want[] = {
        "Fetching workspace resources...",
        "Total: 2 resources loaded",
        "✓ Resource: r1 (version: 3)",
        "Fetching workspace variables...",
        "✓ Variable: name = demo",
        "✓ Variable: pw = ***SENSITIVE***",
        "✓ Variable: odd = ***SENSITIVE***",
        "Total: 3 variables loaded (1 normal, 2 sensitive)",
        "Fetching provider configuration...",
        "✓ Provider: AWS (region: eu-west-1)",
        "Fetching latest state version...",
        "✓ Found state version #5",
        "  - Size: 2.5 KB",
        "  - Checksum: abcdef0123456789...",
    };
    expect_lines("{'resources': [{'resource_id': 'r1', 'current_version': {'version': 3}}, {'resource_id': 'r2'}],"
                 " 'variables': ["
                 "  {'key': 'name', 'value': 'demo', 'variable_type': 'terraform', 'sensitive': false},"
                 "  {'key': 'pw', 'value': 'hunter2', 'variable_type': 'terraform', 'sensitive': true},"
                 "  {'key': 'AWS_SECRET_ACCESS_KEY', 'value': 'hunter1', 'variable_type': 'environment'},"
                 "  {'key': 'odd', 'value': 'hunter3', 'variable_type': 'terraform', 'sensitive': 'yes'},"
                 "  {'key': '', 'value': 'hunter4', 'variable_type': 'terraform'}],"
                 " 'workspace': {'provider_config': {'aws': [{'region': 'eu-west-1'}]}},"
                 " 'state_version': {'version': 5, 'size': 2560, 'checksum': 'abcdef0123456789ffff'}}",
                 want, (int)(sizeof want / sizeof want[0]), "hunter");
}

/* Short and empty checksums, no state, no resources, no region. */
static void describe_variants(void **state)
{
    (void)state;
    static const char *const short_sum[] = {
        "Fetching workspace resources...", "Fetching workspace variables...",
        "Total: 0 variables loaded (0 normal, 0 sensitive)", "Fetching provider configuration...",
        "Fetching latest state version...", "✓ Found state version #1", "  - Size: 0.0 KB", "  - Checksum: abc",
    };
    expect_lines("{'state_version': {'version': 1, 'checksum': 'abc'}}", short_sum, 8, NULL);
    static const char *const empty_sum[] = {
        "Fetching workspace resources...", "Fetching workspace variables...",
        "Total: 0 variables loaded (0 normal, 0 sensitive)", "Fetching provider configuration...",
        "Fetching latest state version...", "✓ Found state version #2", "  - Size: 1.0 KB", "  - Checksum: (empty)",
    };
    expect_lines("{'state_version': {'version': 2, 'size': 1024, 'checksum': ''}}", empty_sum, 8, NULL);
}

/* Garbage reads as empty: wrong types everywhere still give the skeleton of lines, and no crash. */
static void describe_survives_garbage(void **state)
{
    (void)state;
    static const char *const skeleton[] = {
        "Fetching workspace resources...", "Fetching workspace variables...",
        "Total: 0 variables loaded (0 normal, 0 sensitive)", "Fetching provider configuration...",
        "Fetching latest state version...", "No existing state found (first run)",
    };
    expect_lines(NULL, skeleton, 6, NULL);
    expect_lines("{'resources': 'x', 'variables': [1, null, {'key': 5, 'variable_type': 'terraform'}],"
                 " 'workspace': {'provider_config': {'aws': ['x', {'region': 'no'}]}}, 'state_version': 'x'}",
                 skeleton, 6, NULL);
    expect_lines("{'workspace': {'provider_config': {'aws': [{'region': 7}]}}, 'resources': [1, 'r']}", skeleton, 6,
                 NULL);
}

/* ---- the writer --------------------------------------------------------------------------------------------- */

static int setup_dir(void **state)
{
    char tmpl[] = "/tmp/iac-test-render-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    *state = strdup(tmpl);
    return 0;
}

static int teardown_dir(void **state)
{
    fs_rm_rf(*state);
    free(*state);
    return 0;
}

static char *read_in(const char *dir, const char *name)
{
    char path[512], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (fs_read_file(path, 1 << 20, &text, &len) < 0)
        return NULL;
    return text;
}

static int mode_of(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &st) < 0)
        return -1;
    return st.st_mode & 0777;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void write_in(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(fs_write_atomic(path, text, strlen(text), 0644), 0);
}

static const char *full_bundle =
    "{'task': {'id': 7, 'workspace_id': 'ws-1', 'task_type': 'plan', 'action': 'plan', 'context': {}},"
    " 'workspace': {'workspace_id': 'ws-1', 'name': 'demo', 'terraform_version': '1.5.7', 'execution_mode': 'k8s',"
    "  'provider_config': {'provider': {'aws': [{'region': 'eu-west-1'}]}, 'terraform': []},"
    "  'tf_code': {}, 'system_variables': {}, 'terraform_lock_hcl': '# lock\\nprovider x {}\\n'},"
    " 'resources': [{'id': 1, 'resource_id': 'r1', 'resource_name': 'vpc', 'is_active': true,"
    "  'current_version': {'id': 9, 'version': 3, 'tf_code': {'module': {'vpc': [{'source': './vpc'}]}}}}],"
    " 'variables': [{'key': 'name', 'value': 'demo', 'variable_type': 'terraform', 'value_format': 'string',"
    "  'sensitive': false}, {'key': 'AWS_PROFILE', 'value': 'x', 'variable_type': 'environment'}],"
    " 'outputs': [{'resource_name': 'vpc', 'output_name': 'id', 'output_value': 'module.vpc.id'}],"
    " 'remote_data': [{'data_name': 'net', 'token': 'tok', 'url': 'http://x/y'}],"
    " 'module_versions': {},"
    " 'state_version': {'version': 2, 'content': {'version': 4, 'serial': 1}, 'checksum': '', 'size': 10}}";

/* A full bundle gives the eight files, each 0644 with the bytes of its renderer, in a work directory created 0700
 * with its parents; no temporary file is left behind. */
static void plan_workdir_writes_every_file(void **state)
{
    const char *root = *state;
    char dir[256], err[512];
    snprintf(dir, sizeof dir, "%s/workspaces/ws-1/7", root);
    cJSON *b = fixture(full_bundle);
    assert_int_equal(render_plan_workdir(b, dir, false, err, sizeof err), 0);
    assert_int_equal(mode_of(root, "workspaces/ws-1/7"), 0700);
    assert_int_equal(count_entries(dir), 8);

    static const struct { const char *file; render_fn fn; } files[] = {
        { "main.tf.json", render_main_tf },          { "provider.tf.json", NULL },
        { "variables.tf.json", NULL },               { "variables.tfvars", NULL },
        { "outputs.tf.json", render_outputs_tf },    { "remote_data.tf.json", NULL },
        { "terraform.tfstate", render_state },       { ".terraform.lock.hcl", NULL },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        assert_int_equal(mode_of(dir, files[i].file), 0644);
        if (!files[i].fn)
            continue;
        strbuf want = STRBUF_INIT;
        assert_int_equal(files[i].fn(b, &want, err, sizeof err), RENDER_WRITE);
        char *got = read_in(dir, files[i].file);
        assert_non_null(got);
        assert_string_equal(got, want.data);
        free(got);
        strbuf_free(&want);
    }
    static const struct { const char *file, *want; } exact[] = {
        { "main.tf.json",
          "{\n  'module': {\n    'vpc': [\n      {\n        'source': './vpc'\n      }\n    ]\n  }\n}" },
        { "provider.tf.json",
          "{\n  'provider': {\n    'aws': [\n      {\n        'region': 'eu-west-1'\n      }\n    ]\n  }\n}" },
        { "variables.tf.json", "{\n  'variable': {\n    'name': {\n      'type': 'string'\n    }\n  }\n}" },
        { "variables.tfvars", "name = 'demo'\n" },
        { "outputs.tf.json", "{\n  'output': {\n    'vpc-id': {\n      'value': '${module.vpc.id}'\n    }\n  }\n}" },
        { "terraform.tfstate", "{'serial':1,'version':4}" },
        { ".terraform.lock.hcl", "# lock\nprovider x {}\n" },
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        char *got = read_in(dir, exact[i].file), *want = sq(exact[i].want);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
        free(want);
    }
    char *rd = read_in(dir, "remote_data.tf.json");
    assert_non_null(strstr(rd, "\"Authorization\": \"Bearer tok\""));
    free(rd);
    cJSON_Delete(b);
}

/* A file the bundle does not produce is removed when an earlier run left it — the state above all (ref §7.2) — and
 * the tfvars file is always there, empty when there are no terraform variables. */
static void plan_workdir_removes_files_this_bundle_does_not_produce(void **state)
{
    const char *dir = *state;
    static const char *stale[] = { "provider.tf.json", "variables.tf.json", "outputs.tf.json", "remote_data.tf.json",
                                   "terraform.tfstate", ".terraform.lock.hcl" };
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++)
        write_in(dir, stale[i], "old");
    write_in(dir, ".iac-task.log", "kept");
    char err[512];
    cJSON *b = fixture("{'workspace': {'terraform_lock_hcl': ''}}");
    assert_int_equal(render_plan_workdir(b, dir, false, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++)
        assert_int_equal(mode_of(dir, stale[i]), -1);
    char *main_tf = read_in(dir, "main.tf.json"), *tfvars = read_in(dir, "variables.tfvars"),
         *log = read_in(dir, ".iac-task.log");
    assert_string_equal(main_tf, "{}");
    assert_string_equal(tfvars, "");
    assert_string_equal(log, "kept");
    assert_int_equal(count_entries(dir), 3);
    free(main_tf);
    free(tfvars);
    free(log);
    cJSON_Delete(b);
}

/* Everything is rendered before anything is written: a malformed bundle leaves an existing directory as it was. */
static void plan_workdir_untouched_on_malformed_bundle(void **state)
{
    const char *dir = *state;
    write_in(dir, "main.tf.json", "previous");
    write_in(dir, "terraform.tfstate", "previous state");
    char err[512];
    cJSON *b = fixture("{'workspace': {}, 'state_version': {'content': []}}");
    assert_int_equal(render_plan_workdir(b, dir, false, err, sizeof err), -1);
    assert_string_equal(err, "terraform.tfstate: state_version.content: expected an object, got array");
    char *main_tf = read_in(dir, "main.tf.json"), *st = read_in(dir, "terraform.tfstate");
    assert_string_equal(main_tf, "previous");
    assert_string_equal(st, "previous state");
    assert_int_equal(count_entries(dir), 2);
    free(main_tf);
    free(st);
    cJSON_Delete(b);
}

/* In a directory the caller has just made (new_dir), every file is created in place: the same eight files with the
 * same bytes and exactly mode 0644 whatever the umask, no temporary file, and the caller's task log left alone. */
static void plan_workdir_in_a_new_directory_creates_in_place(void **state)
{
    const char *root = *state;
    char dir[256], ref[256], err[512];
    snprintf(dir, sizeof dir, "%s/new", root);
    snprintf(ref, sizeof ref, "%s/ref", root);
    assert_int_equal(fs_mkdir_p_made(dir, 0700), 1);
    write_in(dir, ".iac-task.log", "log");
    cJSON *b = fixture(full_bundle);
    mode_t old = umask(077);
    assert_int_equal(render_plan_workdir(b, dir, true, err, sizeof err), 0);
    umask(old);
    assert_int_equal(render_plan_workdir(b, ref, false, err, sizeof err), 0);
    assert_int_equal(count_entries(dir), 9);
    static const char *files[] = { "main.tf.json", "provider.tf.json", "variables.tf.json", "variables.tfvars",
                                   "outputs.tf.json", "remote_data.tf.json", "terraform.tfstate",
                                   ".terraform.lock.hcl" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        assert_int_equal(mode_of(dir, files[i]), 0644);
        char *got = read_in(dir, files[i]), *want = read_in(ref, files[i]);
        assert_non_null(got);
        assert_non_null(want);
        assert_string_equal(got, want);
        free(got);
        free(want);
    }
    char *log = read_in(dir, ".iac-task.log");
    assert_string_equal(log, "log");
    free(log);
    cJSON_Delete(b);
}

/* new_dir promises an empty directory: a file that is there after all is an error naming it (nothing is
 * overwritten), not a silent replacement. */
static void plan_workdir_in_a_new_directory_refuses_an_existing_file(void **state)
{
    const char *dir = *state;
    write_in(dir, "variables.tfvars", "someone else's");
    char err[512];
    cJSON *b = fixture(full_bundle);
    assert_int_equal(render_plan_workdir(b, dir, true, err, sizeof err), -1);
    assert_non_null(strstr(err, "variables.tfvars"));
    assert_non_null(strstr(err, strerror(EEXIST)));
    char *kept = read_in(dir, "variables.tfvars");
    assert_string_equal(kept, "someone else's");
    free(kept);
    cJSON_Delete(b);
}

/* Empty placeholders of every render_placeholders file (a spare work directory, agent/workdir.h): the ones the
 * bundle produces are filled in place (same inode, mode 0644, the same bytes as a render into a directory of its
 * own), the others are removed, the rest are created, and the task log is left alone. */
static void plan_workdir_fills_placeholders_and_removes_unused_ones(void **state)
{
    const char *root = *state;
    char dir[256], ref[256], path[512], err[512];
    snprintf(dir, sizeof dir, "%s/spare", root);
    snprintf(ref, sizeof ref, "%s/ref", root);
    assert_int_equal(fs_mkdir_p_made(dir, 0700), 1);
    write_in(dir, ".iac-task.log", "log");
    ino_t ino[RENDER_PLACEHOLDERS];
    for (size_t i = 0; i < RENDER_PLACEHOLDERS; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, render_placeholders[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(stat(path, &st), 0);
        ino[i] = st.st_ino;
    }
    /* code, variables and the lock file, but no state version */
    cJSON *b = fixture("{'workspace': {'tf_code': {'locals': {'a': 1}}, 'terraform_lock_hcl': '# lock\\n'},"
                       " 'variables': [{'key': 'n', 'value': 'v', 'variable_type': 'terraform'}]}");
    assert_int_equal(render_plan_workdir(b, dir, true, err, sizeof err), 0);
    assert_int_equal(render_plan_workdir(b, ref, false, err, sizeof err), 0);
    assert_int_equal(count_entries(dir), count_entries(ref) + 1); /* + the task log */
    for (size_t i = 0; i < RENDER_PLACEHOLDERS; i++) {
        const char *f = render_placeholders[i];
        char *want = read_in(ref, f);
        if (!want) { /* not produced: the placeholder is gone */
            assert_int_equal(mode_of(dir, f), -1);
            continue;
        }
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, f);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_ino, ino[i]);
        assert_int_equal(st.st_mode & 07777, 0644);
        char *got = read_in(dir, f);
        assert_string_equal(got, want);
        free(got);
        free(want);
    }
    assert_int_equal(mode_of(dir, "terraform.tfstate"), -1);
    assert_int_equal(mode_of(dir, "variables.tf.json"), 0644);
    char *log = read_in(dir, ".iac-task.log");
    assert_string_equal(log, "log");
    free(log);
    cJSON_Delete(b);
}

/* Each placeholder is a file a render writes for a full bundle: none is a name of its own. */
static void placeholders_are_files_a_render_writes(void **state)
{
    const char *root = *state;
    char dir[256], err[512];
    snprintf(dir, sizeof dir, "%s/full", root);
    cJSON *b = fixture(full_bundle);
    assert_int_equal(render_plan_workdir(b, dir, false, err, sizeof err), 0);
    for (size_t i = 0; i < RENDER_PLACEHOLDERS; i++)
        assert_int_equal(mode_of(dir, render_placeholders[i]), 0644);
    cJSON_Delete(b);
}

/* A work directory that cannot be created is an error naming it. */
static void plan_workdir_reports_an_uncreatable_directory(void **state)
{
    const char *dir = *state;
    write_in(dir, "file", "x");
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/file/sub", dir);
    cJSON *b = fixture("{'workspace': {}}");
    assert_int_equal(render_plan_workdir(b, path, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot create"));
    assert_non_null(strstr(err, path));
    cJSON_Delete(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(main_tf_merges_module_code_in_bundle_order),
        cmocka_unit_test(main_tf_merges_objects_at_every_depth),
        cmocka_unit_test(main_tf_leaves_the_bundle_untouched),
        cmocka_unit_test(main_tf_without_resources_uses_workspace_code),
        cmocka_unit_test(provider_drops_an_empty_terraform_block),
        cmocka_unit_test(provider_not_written_when_empty),
        cmocka_unit_test(variables_tf_declares_terraform_variables),
        cmocka_unit_test(variables_tf_not_written_without_terraform_variables),
        cmocka_unit_test(variables_with_empty_key_are_skipped),
        cmocka_unit_test(snapshot_variables_include_every_type),
        cmocka_unit_test(tfvars_quoting_rules),
        cmocka_unit_test(tfvars_numbers_are_what_go_parses),
        cmocka_unit_test(outputs_static_module_and_resource_rules),
        cmocka_unit_test(outputs_kept_when_no_resource_is_active),
        cmocka_unit_test(outputs_not_written_when_nothing_remains),
        cmocka_unit_test(remote_data_shape),
        cmocka_unit_test(remote_data_not_written_without_complete_entries),
        cmocka_unit_test(sanitize_name_rules),
        cmocka_unit_test(state_is_compact_sorted_and_escaped),
        cmocka_unit_test(state_absent_or_empty),
        cmocka_unit_test(malformed_bundles_name_the_field),
        cmocka_unit_test(errors_never_carry_secret_values),
        cmocka_unit_test(null_and_non_object_bundles_do_not_crash),
        cmocka_unit_test(out_of_memory_anywhere_is_an_error),
        cmocka_unit_test(describe_prints_the_fetching_lines),
        cmocka_unit_test(describe_variants),
        cmocka_unit_test(describe_survives_garbage),
        cmocka_unit_test_setup_teardown(plan_workdir_writes_every_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(plan_workdir_removes_files_this_bundle_does_not_produce, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(plan_workdir_untouched_on_malformed_bundle, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(plan_workdir_in_a_new_directory_creates_in_place, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(plan_workdir_in_a_new_directory_refuses_an_existing_file, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(plan_workdir_fills_placeholders_and_removes_unused_ones, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(placeholders_are_files_a_render_writes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(plan_workdir_reports_an_uncreatable_directory, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
