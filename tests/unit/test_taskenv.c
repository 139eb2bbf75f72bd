/* test_taskenv.c — environment and command lines of the engine children (ref §7.6) and the engine choice by URL
 * (ref §7.3), as taskenv.h builds them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/taskenv.h"

/* ---- helpers --------------------------------------------------------------------------------------------------- */

/* JSON written with ' for ". */
static cJSON *json_of(const char *src)
{
    char *s = strdup(src);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *v = cJSON_Parse(s);
    free(s);
    assert_non_null(v);
    return v;
}

/* Asserts v is exactly the NULL-terminated list want, then frees v. */
static void expect_list(char **v, const char *const *want)
{
    assert_non_null(v);
    size_t n = 0;
    while (want[n])
        n++;
    for (size_t i = 0; i < n && v[i]; i++)
        assert_string_equal(v[i], want[i]);
    assert_int_equal(taskenv_count(v), n);
    assert_null(v[n]);
    taskenv_free(v);
}

static char **env_with(char **agent, const char *variables, const char *provider_config, const char *init_workdir)
{
    cJSON *vars = variables ? json_of(variables) : NULL;
    cJSON *pc = provider_config ? json_of(provider_config) : NULL;
    char err[256] = "";
    char **env = taskenv_env(agent, vars, pc, init_workdir, err, sizeof err);
    if (!env)
        fail_msg("taskenv_env: %s", err);
    cJSON_Delete(vars);
    cJSON_Delete(pc);
    return env;
}

#define ENV_VAR(key, value) "{'key':'" key "','value':'" value "','variable_type':'environment','sensitive':false}"
#define TF_VAR(key, value) "{'key':'" key "','value':'" value "','variable_type':'terraform','value_format':'string'}"

/* ---- environment ----------------------------------------------------------------------------------------------- */

/* The agent's environment comes first, then the three fixed TF_* variables. */
static void base_env_is_agent_env_then_fixed(void **state)
{
    (void)state;
    char *agent[] = { "PATH=/usr/bin", "HOME=/home/agent", NULL };
    const char *want[] = { "PATH=/usr/bin", "HOME=/home/agent", "TF_IN_AUTOMATION=true", "TF_INPUT=false",
                           "TF_REGISTRY_CLIENT_TIMEOUT=60", NULL };
    expect_list(env_with(agent, NULL, NULL, NULL), want);
    /* no agent environment, variables or provider config at all */
    const char *bare[] = { "TF_IN_AUTOMATION=true", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60", NULL };
    expect_list(env_with(NULL, "null", "null", NULL), bare);
    expect_list(env_with(NULL, "[]", "{}", NULL), bare);
}

/* Environment-type workspace variables follow in bundle order as KEY=VALUE; terraform-type ones, TF_CLI_ARGS and
 * empty keys are left out; a missing value is empty. */
static void workspace_environment_variables(void **state)
{
    (void)state;
    char *agent[] = { "PATH=/usr/bin", NULL };
    const char *vars = "[" ENV_VAR("B_FIRST", "1") "," TF_VAR("region", "eu") "," ENV_VAR("TF_CLI_ARGS", "-lock=false")
                       "," ENV_VAR("", "orphan") ",{'key':'EMPTY','variable_type':'environment'},"
                       ENV_VAR("A_SECOND", "x=y z") "," ENV_VAR("TF_LOG", "DEBUG") "]";
    const char *want[] = { "PATH=/usr/bin", "TF_IN_AUTOMATION=true", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60",
                           "B_FIRST=1", "EMPTY=", "A_SECOND=x=y z", "TF_LOG=DEBUG", NULL };
    expect_list(env_with(agent, vars, NULL, NULL), want);
}

/* The last definition of a key wins and sits where it was last defined: fixed variables override the agent's,
 * workspace variables override both, a repeated workspace variable keeps its last value. */
static void duplicate_keys_last_definition_wins(void **state)
{
    (void)state;
    char *agent[] = { "PATH=/usr/bin", "TF_INPUT=true", "HOME=/root", "FOO=agent", "FOO=agent2", NULL };
    const char *vars = "[" ENV_VAR("PATH", "/opt/bin") "," ENV_VAR("TF_IN_AUTOMATION", "false") ","
                       ENV_VAR("X", "1") "," ENV_VAR("X", "2") "]";
    const char *want[] = { "HOME=/root",         "FOO=agent2", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60",
                           "PATH=/opt/bin",      "TF_IN_AUTOMATION=false",       "X=2",
                           NULL };
    expect_list(env_with(agent, vars, NULL, NULL), want);
}

/* provider_config.aws[0].region sets AWS_DEFAULT_REGION and AWS_REGION (over the agent's own values) when no
 * workspace variable names either; otherwise the variables alone decide. */
static void aws_region_rule(void **state)
{
    (void)state;
    const char *pc = "{'aws':[{'region':'eu-west-1','default_tags':[]}],'null':[{}]}";
    char *agent[] = { "AWS_REGION=us-east-2", NULL };
    const char *from_provider[] = { "TF_IN_AUTOMATION=true", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60",
                                    "AWS_DEFAULT_REGION=eu-west-1", "AWS_REGION=eu-west-1", NULL };
    expect_list(env_with(agent, "[]", pc, NULL), from_provider);

    const char *named[] = { "TF_IN_AUTOMATION=true", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60",
                            "AWS_REGION=ap-south-1", NULL };
    expect_list(env_with(NULL, "[" ENV_VAR("AWS_REGION", "ap-south-1") "]", pc, NULL), named);
    const char *named_default[] = { "TF_IN_AUTOMATION=true", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60",
                                    "AWS_DEFAULT_REGION=ap-south-2", NULL };
    expect_list(env_with(NULL, "[" ENV_VAR("AWS_DEFAULT_REGION", "ap-south-2") "]", pc, NULL), named_default);
    /* a terraform-type variable of that name does not count */
    char **env = env_with(NULL, "[" TF_VAR("AWS_REGION", "x") "]", pc, NULL);
    assert_int_equal(taskenv_count(env), 5);
    assert_string_equal(env[4], "AWS_REGION=eu-west-1");
    taskenv_free(env);

    /* shapes that give no region */
    const char *none[] = { "TF_IN_AUTOMATION=true", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60", NULL };
    const char *no_region[] = { "{}",
                                "{'aws':[]}",
                                "{'aws':{'region':'eu-west-1'}}",
                                "{'aws':[{'profile':'p'},{'region':'eu-west-1'}]}",
                                "{'aws':[{'region':5}]}",
                                "{'aws':[{'region':''}]}",
                                "{'aws':['eu-west-1']}",
                                "{'AWS':[{'region':'eu-west-1'}]}",
                                "[1]" };
    for (size_t i = 0; i < sizeof no_region / sizeof no_region[0]; i++)
        expect_list(env_with(NULL, "[]", no_region[i], NULL), none);
}

/* The agent's pool token never reaches a child; look-alike names and a workspace variable of that name do. */
static void agent_token_is_dropped(void **state)
{
    (void)state;
    char *agent[] = { "IAC_AGENT_TOKEN=pool-secret", "IAC_AGENT_TOKENS=keep", "IAC_AGENT_NAME=pod-1",
                      "NOEQUALS", NULL };
    char **env = env_with(agent, NULL, NULL, NULL);
    for (size_t i = 0; env[i]; i++)
        assert_null(strstr(env[i], "pool-secret"));
    const char *want[] = { "IAC_AGENT_TOKENS=keep", "IAC_AGENT_NAME=pod-1", "TF_IN_AUTOMATION=true", "TF_INPUT=false",
                           "TF_REGISTRY_CLIENT_TIMEOUT=60", NULL };
    expect_list(env, want);
    assert_string_equal(taskenv_secret_names[0], "IAC_AGENT_TOKEN");

    env = env_with(agent, "[" ENV_VAR("IAC_AGENT_TOKEN", "users-own") "]", NULL, NULL);
    assert_string_equal(env[taskenv_count(env) - 1], "IAC_AGENT_TOKEN=users-own");
    taskenv_free(env);
}

/* init adds the per-workdir plugin cache, last, only when the agent has no (or an empty) TF_PLUGIN_CACHE_DIR;
 * plan and apply never get it. */
static void init_plugin_cache(void **state)
{
    (void)state;
    char *plain[] = { "PATH=/bin", NULL };
    const char *want[] = { "PATH=/bin", "TF_IN_AUTOMATION=true", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60",
                           "TF_PLUGIN_CACHE_DIR=/data/workspaces/ws-1/7/.terraform-plugin-cache", NULL };
    expect_list(env_with(plain, NULL, NULL, "/data/workspaces/ws-1/7"), want);
    /* a workspace variable of that name is overridden, as upstream appends the cache dir last */
    expect_list(env_with(plain, "[" ENV_VAR("TF_PLUGIN_CACHE_DIR", "/ws/cache") "]", NULL, "/data/workspaces/ws-1/7"),
                want);

    char *has[] = { "TF_PLUGIN_CACHE_DIR=/shared/cache", NULL };
    const char *keep[] = { "TF_PLUGIN_CACHE_DIR=/shared/cache", "TF_IN_AUTOMATION=true", "TF_INPUT=false",
                           "TF_REGISTRY_CLIENT_TIMEOUT=60", NULL };
    expect_list(env_with(has, NULL, NULL, "/w"), keep);

    char *empty[] = { "TF_PLUGIN_CACHE_DIR=", NULL };
    const char *added[] = { "TF_IN_AUTOMATION=true", "TF_INPUT=false", "TF_REGISTRY_CLIENT_TIMEOUT=60",
                            "TF_PLUGIN_CACHE_DIR=/w/.terraform-plugin-cache", NULL };
    expect_list(env_with(empty, NULL, NULL, "/w"), added);

    char **env = env_with(plain, NULL, NULL, NULL);
    for (size_t i = 0; env[i]; i++)
        assert_null(strstr(env[i], "TF_PLUGIN_CACHE_DIR"));
    taskenv_free(env);
}

/* Malformed variables are an error naming what is wrong, never a partial environment. */
static void malformed_variables_are_errors(void **state)
{
    (void)state;
    static const struct {
        const char *vars, *needle;
    } cases[] = {
        { "{'key':'A'}", "variables: expected an array" },
        { "'text'", "variables: expected an array" },
        { "[" ENV_VAR("OK", "1") ",7]", "variables[1]: expected an object" },
        { "[{'key':5,'variable_type':'environment'}]", "variables[0]: key" },
        { "[{'key':'A','value':true,'variable_type':'environment'}]", "variables[0]: value" },
        { "[{'key':'A','variable_type':['environment']}]", "variables[0]: variable_type" },
    };
    char *agent[] = { "PATH=/bin", NULL };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *vars = json_of(cases[i].vars);
        char err[256] = "";
        assert_null(taskenv_env(agent, vars, NULL, NULL, err, sizeof err));
        assert_non_null(strstr(err, cases[i].needle));
        err[0] = '\0';
        assert_null(taskenv_argv_plan("tf", "/w", false, vars, err, sizeof err));
        assert_non_null(strstr(err, cases[i].needle));
        cJSON_Delete(vars);
    }
}

/* ---- command lines --------------------------------------------------------------------------------------------- */

/* init, show and apply are fixed command lines around the binary and the work directory. */
static void fixed_command_lines(void **state)
{
    (void)state;
    const char *init[] = { "/data/engines/1.6.6/terraform", "init", "-no-color", "-input=false", NULL };
    expect_list(taskenv_argv_init("/data/engines/1.6.6/terraform"), init);
    const char *show[] = { "tf", "show", "-json", "/data/workspaces/ws-1/7/plan.out", NULL };
    expect_list(taskenv_argv_show("tf", "/data/workspaces/ws-1/7"), show);
    const char *apply[] = { "tf", "apply", "-no-color", "-auto-approve", "/data/workspaces/ws-1/7/plan.out", NULL };
    expect_list(taskenv_argv_apply("tf", "/data/workspaces/ws-1/7"), apply);
}

static char **plan_argv(bool drift, const char *variables)
{
    cJSON *vars = variables ? json_of(variables) : NULL;
    char err[256] = "";
    char **argv = taskenv_argv_plan("tf", "/w", drift, vars, err, sizeof err);
    if (!argv)
        fail_msg("taskenv_argv_plan: %s", err);
    cJSON_Delete(vars);
    return argv;
}

/* plan: -out, -no-color, the var file; drift_check adds -refresh-only. */
static void plan_command_line(void **state)
{
    (void)state;
    const char *plan[] = { "tf", "plan", "-out=/w/plan.out", "-no-color", "-var-file=variables.tfvars", NULL };
    expect_list(plan_argv(false, NULL), plan);
    expect_list(plan_argv(false, "[" ENV_VAR("A", "1") "]"), plan);
    const char *drift[] = { "tf", "plan", "-out=/w/plan.out", "-no-color", "-var-file=variables.tfvars",
                            "-refresh-only", NULL };
    expect_list(plan_argv(true, "[]"), drift);
}

/* TF_CLI_ARGS (environment type only, the last one when repeated) is split on any run of whitespace and appended
 * to plan; targets stay for a plain plan. */
static void plan_appends_tf_cli_args(void **state)
{
    (void)state;
    const char *vars = "[" ENV_VAR("TF_CLI_ARGS", "-ignored") "," TF_VAR("TF_CLI_ARGS", "-terraform-type") ","
                       ENV_VAR("TF_CLI_ARGS", "  -parallelism=5\\t\\t-lock=false   -target=null_resource.a\\n-target "
                                              "module.b  ") "]";
    const char *want[] = { "tf",          "plan",         "-out=/w/plan.out", "-no-color",
                           "-var-file=variables.tfvars", "-parallelism=5",   "-lock=false",
                           "-target=null_resource.a",    "-target",          "module.b",
                           NULL };
    expect_list(plan_argv(false, vars), want);
}

/* For drift_check every -target=…/--target=… token and -target X/--target X pair is removed before appending. */
static void drift_check_removes_targets(void **state)
{
    (void)state;
    const char *vars = "[" ENV_VAR("TF_CLI_ARGS", "-target=a.b -lock=false --target=c.d\\t-target e.f "
                                                  "--target  g.h -parallelism=2 -targets=keep -target") "]";
    const char *want[] = { "tf",
                           "plan",
                           "-out=/w/plan.out",
                           "-no-color",
                           "-var-file=variables.tfvars",
                           "-refresh-only",
                           "-lock=false",
                           "-parallelism=2",
                           "-targets=keep",
                           NULL };
    expect_list(plan_argv(true, vars), want);
}

/* The splitter on its own: empty and blank input give an empty list; tabs, newlines and runs of spaces separate. */
static void cli_args_splitting(void **state)
{
    (void)state;
    const char *empty[] = { NULL };
    expect_list(taskenv_cli_args(NULL, false), empty);
    expect_list(taskenv_cli_args("", true), empty);
    expect_list(taskenv_cli_args(" \t\r\n ", false), empty);
    const char *split[] = { "-a", "-b=c", "d", NULL };
    expect_list(taskenv_cli_args("\t-a \t  -b=c\n\nd\t", false), split);
    const char *lone[] = { "-target", NULL };
    expect_list(taskenv_cli_args("-target", false), lone);
    expect_list(taskenv_cli_args("-target", true), empty);
    const char *pair_only[] = { "-x", NULL };
    expect_list(taskenv_cli_args("--target -x", true), empty);
    expect_list(taskenv_cli_args("--target=a -x", true), pair_only);
    const char *prefix_only[] = { "-target-foo", "x-target=y", NULL };
    expect_list(taskenv_cli_args("-target-foo x-target=y", true), prefix_only);
}

/* ---- engine choice --------------------------------------------------------------------------------------------- */

/* OpenTofu when the lower-cased URL contains "opentofu", "tofu_" or "/tofu/"; terraform otherwise. */
static void engine_choice_by_url(void **state)
{
    (void)state;
    const char *tofu[] = {
        "https://github.com/opentofu/opentofu/releases/download/v1.7.0/tofu_1.7.0_linux_amd64.zip",
        "https://mirror.example.com/OpenTofu/1.7.0/x.zip",
        "https://mirror.example.com/bin/TOFU_1.7.0.zip",
        "https://mirror.example.com/tofu/1.7.0/engine.zip",
        "http://127.0.0.1:8080/engines/Tofu/1.6.2/engine.zip",
    };
    for (size_t i = 0; i < sizeof tofu / sizeof tofu[0]; i++)
        assert_true(taskenv_engine_is_tofu(tofu[i]));
    const char *terraform[] = {
        "https://releases.hashicorp.com/terraform/1.6.6/terraform_1.6.6_linux_amd64.zip",
        "https://mirror.example.com/tofu.zip",
        "https://mirror.example.com/tofu-1.7.0.zip",
        "https://mirror.example.com/open-tofu/x.zip",
        "",
    };
    for (size_t i = 0; i < sizeof terraform / sizeof terraform[0]; i++)
        assert_false(taskenv_engine_is_tofu(terraform[i]));
    assert_false(taskenv_engine_is_tofu(NULL));
    taskenv_free(NULL);
    assert_int_equal(taskenv_count(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base_env_is_agent_env_then_fixed),
        cmocka_unit_test(workspace_environment_variables),
        cmocka_unit_test(duplicate_keys_last_definition_wins),
        cmocka_unit_test(aws_region_rule),
        cmocka_unit_test(agent_token_is_dropped),
        cmocka_unit_test(init_plugin_cache),
        cmocka_unit_test(malformed_variables_are_errors),
        cmocka_unit_test(fixed_command_lines),
        cmocka_unit_test(plan_command_line),
        cmocka_unit_test(plan_appends_tf_cli_args),
        cmocka_unit_test(drift_check_removes_targets),
        cmocka_unit_test(cli_args_splitting),
        cmocka_unit_test(engine_choice_by_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
