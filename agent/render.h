/* render.h — the task bundle (ref E3) → the files of a work directory (ref §7.2).
 *
 * The Go agent turns the bundle into main.tf.json, provider.tf.json, variables.tf.json, variables.tfvars,
 * outputs.tf.json, remote_data.tf.json, terraform.tfstate and .terraform.lock.hcl. We write the same bytes
 * (json.MarshalIndent through jsonw: sorted keys, two-space indent, HTML escaping; compact json.Marshal for the
 * state), with one deliberate difference (DESIGN §4.4): the resources' code is merged into main.tf.json at every
 * depth, where upstream merges two levels and loses all but the last of two resources that share a
 * `resource.<type>`; for module-based code the bytes are identical.
 *
 * The render_* functions are pure: they read a cJSON tree they do not modify and append to `out`. Each returns
 * RENDER_WRITE (0) with the file's bytes in out, RENDER_SKIP (1) when the file must not exist for this bundle, or -1
 * with a message naming the offending field ("variables[2].key: expected a string, got number"). Fields are read
 * like the Go agent reads them — absent or null means empty — but a present field of the wrong type is an error,
 * never a silent default. Messages and log lines never carry a value: variable values, tokens and state are secret.
 *
 * The bundle should come from json_parse_object() (it refuses \u0000, which would cut a C string short). */
#ifndef IAC_AGENT_RENDER_H
#define IAC_AGENT_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "iac/strbuf.h"

enum { RENDER_WRITE = 0, RENDER_SKIP = 1 };

/* main.tf.json from the bundle: render_main_tf_from(bundle.resources, bundle.workspace.tf_code). */
int render_main_tf(const cJSON *bundle, strbuf *out, char *err, size_t errlen);
/* main.tf.json from a resource list (the bundle's, or the apply snapshot's) and the workspace's own code. With at
 * least one resource: {} merged with a deep copy of each current_version.tf_code in list order (a resource without
 * current_version adds nothing; objects merge at every depth, anything else — arrays included — replaces). With no
 * resources: tf_code as it is, {} when absent. Always RENDER_WRITE. */
int render_main_tf_from(const cJSON *resources, const cJSON *tf_code, strbuf *out, char *err, size_t errlen);
/* provider.tf.json: the provider config without a top-level "terraform" whose value is [] or {}; RENDER_SKIP when
 * nothing remains (or the config is absent). */
int render_provider_tf(const cJSON *provider_config, strbuf *out, char *err, size_t errlen);
/* variables.tf.json: {"variable": {key: {"type": "string", "description"?, "sensitive"?: true}}} for the variables
 * of type "terraform" (all of them when terraform_only is false: the apply snapshot writes every type); entries
 * with an empty key are skipped (ref §8 entry 26); a later equal key wins. RENDER_SKIP when none remain. */
int render_variables_tf(const cJSON *variables, bool terraform_only, strbuf *out, char *err, size_t errlen);
/* variables.tfvars: one `key = value` line per variable selected as above, in bundle order. value_format "hcl" and
 * a trimmed value that starts with { or [, is true or false, or parses as a Go float → the value as stored; else
 * quoted, with " → \" and newline → \n (backslashes are left alone, as upstream does). Always RENDER_WRITE, maybe
 * empty. */
int render_tfvars(const cJSON *variables, bool terraform_only, strbuf *out, char *err, size_t errlen);
/* outputs.tf.json from bundle.outputs: static outputs (resource_name "" or "__static__") as
 * "static-<name>": {"value": <output_value>}; the others as "<module>-<name>": {"value": "${<output_value>}"},
 * <module> being the second dot-separated part of an output_value that starts with "module.", else resource_name;
 * "description" when non-empty, "sensitive": true when set. A non-static output whose resource_name is not the
 * resource_name of a resource with is_active true is dropped — when at least one such resource exists.
 * RENDER_SKIP when nothing remains. */
int render_outputs_tf(const cJSON *bundle, strbuf *out, char *err, size_t errlen);
/* remote_data.tf.json from bundle.remote_data (the array, or NULL/null): for each entry with non-empty data_name,
 * token and url, data.http.remote_<sanitised data_name> = [{"url", "request_headers": {"Authorization":
 * "Bearer <token>"}}] and locals.<data_name> = "${jsondecode(data.http.remote_<sanitised>.response_body).outputs}".
 * RENDER_SKIP when no entry qualifies. */
int render_remote_data_tf(const cJSON *remote_data, strbuf *out, char *err, size_t errlen);
/* terraform.tfstate: compact json.Marshal of bundle.state_version.content (sorted keys, HTML escaping; {} when the
 * state version has no content, as upstream writes it). RENDER_SKIP when the bundle has no state_version: the
 * caller removes an old file. */
int render_state(const cJSON *bundle, strbuf *out, char *err, size_t errlen);
/* Terraform-safe name: every character (UTF-8 sequence, or invalid byte) outside [A-Za-z0-9_] becomes one "_", and
 * "_" is prefixed when the result starts with a digit. The result is cut to outlen-1 bytes; strlen(in) + 2 always
 * suffices. */
void render_sanitize_name(const char *in, char *out, size_t outlen);

/* The files a render of a work directory writes for nearly every task, plan and apply alike: the code and the
 * variables always, the state and the lock file once the workspace has them. A new directory may hold them ahead
 * as empty placeholders (agent/workdir.h), which takes their creation off the dispatch path; the render fills the
 * ones it writes and removes the others. */
#define RENDER_PLACEHOLDERS 4
#define RENDER_FILE_MODE 0644 /* every file a render writes */
extern const char *const render_placeholders[RENDER_PLACEHOLDERS];

/* Writes every plan-phase file into workdir (created 0700 with its parents when missing), each 0644 and replaced
 * atomically but not fsync'd (terraform reads them at once; render.c says why): main.tf.json, provider.tf.json,
 * variables.tf.json, variables.tfvars, outputs.tf.json, remote_data.tf.json, terraform.tfstate, and
 * .terraform.lock.hcl when workspace.terraform_lock_hcl is non-empty.
 * A file this bundle does not produce is removed if an earlier run left it (ref §7.2 says so for the state; doing
 * it for all keeps a reused directory from mixing two bundles). Everything is rendered before anything is written:
 * a malformed bundle leaves the directory untouched.
 * new_dir: workdir is new (workdir_make said 1): it holds nothing but dot files of the caller's (the task log) and,
 * maybe, empty placeholders named in render_placeholders. The files are then written in place (fs_write_fresh: no
 * temporary file, no rename; a placeholder is filled), a placeholder of a file this bundle does not produce is
 * removed, nothing else is, and any other file that exists after all is an error (EEXIST).
 * 0, or -1 with "<file>: <why>" in err. */
int render_plan_workdir(const cJSON *bundle, const char *workdir, bool new_dir, char *err, size_t errlen);

/* Checks an E4 plan task as ref §7.5 step 4 does: snapshot_created_at present ("no snapshot data
 * (snapshot_created_at is nil)" otherwise), snapshot_resource_versions an object whose entries carry numeric
 * resource_db_id and version, snapshot_variables present. 0, or -1 with the message in err. */
int render_validate_snapshot(const cJSON *plan_task, char *err, size_t errlen);

/* Writes the files of a cold apply (ref §7.5 step 6) into workdir: main.tf.json from the snapshot's resource
 * versions (each found in plan_task.snapshot_resources, else among the bundle's resources with the same version;
 * missing → error), provider.tf.json from snapshot_provider_config, variables.tf.json and variables.tfvars from
 * every snapshot variable (environment ones too, as upstream), no outputs or remote data, terraform.tfstate and
 * .terraform.lock.hcl from the current bundle. plan_task is the whole E4 document; new_dir as for
 * render_plan_workdir. 0, or -1 with a message. */
int render_apply_workdir(const cJSON *bundle, const cJSON *plan_task, const char *workdir, bool new_dir, char *err,
                         size_t errlen);

/* The lines the fetching stage logs (ref §7.4 step 1, upstream's wording): resources and their versions, terraform
 * variables (a sensitive value — or one whose "sensitive" is anything but false — as ***SENSITIVE***), the AWS
 * region of provider_config, the state version. emit(line, arg) once per line; a non-sensitive value is printed
 * as it is, newlines included, as upstream prints it. Never fails: a field of the wrong type reads as empty. */
void render_describe(const cJSON *bundle, void (*emit)(const char *line, void *arg), void *arg);

#endif
