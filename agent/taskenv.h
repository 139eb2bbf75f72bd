/* taskenv.h — the environment and command lines of the terraform/tofu children of a task (ref §7.6), and the
 * engine choice by download URL (ref §7.3).
 *
 * Pure functions, no I/O: the caller passes the agent's own environment (environ) and the bundle's pieces, and
 * gets back NULL-terminated arrays ready for uv_spawn. Every array is malloc'd (strings too) and freed with
 * taskenv_free; NULL means out of memory or, where an err buffer is taken, malformed input described in err.
 *
 * Environment (ref §7.6 "base"), in order, the last definition of a key winning (Go os/exec semantics; the result
 * holds each key once, at the place of its last definition):
 *   1. the agent's own environment, WITHOUT the agent's secrets (taskenv_secret_names: IAC_AGENT_TOKEN).
 *      Deliberate difference from upstream, whose children inherit everything: terraform, its providers and the
 *      user's code (local-exec, external data sources) must not be able to read the pool token. Entries without
 *      '=' are dropped;
 *   2. TF_IN_AUTOMATION=true, TF_INPUT=false, TF_REGISTRY_CLIENT_TIMEOUT=60;
 *   3. every workspace variable with variable_type "environment" as KEY=VALUE (a missing value is ""), in bundle
 *      order, except TF_CLI_ARGS (it goes on the plan command line) and empty keys;
 *   4. unless step 3 named AWS_REGION or AWS_DEFAULT_REGION: when provider_config.aws is a non-empty array whose
 *      first element has a non-empty string `region`, AWS_DEFAULT_REGION and AWS_REGION set to it;
 *   5. for init only: TF_PLUGIN_CACHE_DIR=<workdir>/.terraform-plugin-cache when the agent's own environment has
 *      no (or an empty) TF_PLUGIN_CACHE_DIR.
 * `variables` is the E3 `variables` array (or the expanded snapshot variables); `provider_config` the workspace's
 * provider_config (or the apply's snapshot_provider_config). Either may be NULL or JSON null (none). */
#ifndef IAC_AGENT_TASKENV_H
#define IAC_AGENT_TASKENV_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* NULL-terminated list of the agent environment variables never passed to a child. */
extern const char *const taskenv_secret_names[];

/* The base environment for plan and apply (steps 1–4). init_workdir non-NULL adds step 5 (init). NULL with a
 * message in err when variables is not an array, an element is not an object, or a key, value or variable_type is
 * not a string; or when memory runs out. */
char **taskenv_env(char *const *agent_env, const cJSON *variables, const cJSON *provider_config,
                   const char *init_workdir, char *err, size_t errlen);

/* Command lines (cwd = the work directory):
 *   <bin> init -no-color -input=false
 *   <bin> plan -out=<workdir>/plan.out -no-color -var-file=variables.tfvars [-refresh-only] [TF_CLI_ARGS tokens]
 *   <bin> show -json <workdir>/plan.out
 *   <bin> apply -no-color -auto-approve <workdir>/plan.out
 * For plan, drift_check adds -refresh-only and strips -target from TF_CLI_ARGS (taskenv_cli_args). The plan
 * builder returns NULL with a message in err on malformed variables (as taskenv_env) or out of memory; the others
 * return NULL only when out of memory. */
char **taskenv_argv_init(const char *bin);
char **taskenv_argv_plan(const char *bin, const char *workdir, bool drift_check, const cJSON *variables, char *err,
                         size_t errlen);
char **taskenv_argv_show(const char *bin, const char *workdir);
char **taskenv_argv_apply(const char *bin, const char *workdir);

/* The value of the environment-type workspace variable TF_CLI_ARGS (the last one when several), or NULL when there
 * is none. Points into the tree. -1 with a message in err when variables is malformed (as taskenv_env), else 0. */
int taskenv_find_cli_args(const cJSON *variables, const char **value, char *err, size_t errlen);

/* TF_CLI_ARGS split on ASCII whitespace (runs of spaces, tabs, newlines are one separator). drop_targets (for
 * drift_check) removes "-target=…"/"--target=…" tokens and "-target X"/"--target X" pairs (a trailing lone
 * "-target" too). s NULL reads as "". Returns a NULL-terminated array (possibly empty), NULL when out of memory. */
char **taskenv_cli_args(const char *s, bool drop_targets);

/* Frees an array returned by this module (NULL is fine). */
void taskenv_free(char **v);

/* Number of entries before the terminating NULL. */
size_t taskenv_count(char *const *v);

/* ref §7.3: the engine is OpenTofu when the lower-cased download URL contains "opentofu", "tofu_" or "/tofu/";
 * otherwise terraform. NULL is terraform. */
bool taskenv_engine_is_tofu(const char *url);

#endif
