/* plan.h — deciding what to do, and the saved plan file.
 *
 * The plan compares the configuration's resources with the state's, one address at a time:
 *   in the configuration only → ["create"]; in the state only → ["delete"]; in both with equal attributes →
 *   ["no-op"]; with different attributes → ["update"], or ["delete","create"] when the address was named by
 *   -replace=ADDR or FAKE_TF_FORCE_REPLACE (a listed address is replaced even when unchanged; "*" replaces every
 *   changed resource). -target=ADDR limits the changes to matching addresses (and their module children);
 *   -refresh-only plans no resource changes; -destroy plans the deletion of everything.
 * Outputs are evaluated against the state: a value that depends on a resource being created or changed is
 * "known after apply".
 *
 * The result is one JSON document: "show" holds exactly what `terraform show -json` prints (plan format 1.2:
 * variables, planned_values, resource_changes, output_changes, prior_state, configuration, timestamp, errored;
 * empty lists and maps omitted as terraform omits them), "fake" what apply needs besides (the state the plan was
 * made from, the lineage for a new state, the output expressions). The document is built in a fixed order, so
 * the same inputs give byte-identical plan files.
 *
 * Plan file: 16-byte magic "tfplan-fake\0\1\0\0\0", the JSON length (8 bytes, big-endian), the JSON, and its
 * SHA-256 (32 bytes). Binary on purpose: the agent must carry it as bytes (base64 on the wire, ref E8). */
#ifndef FT_PLAN_H
#define FT_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "diag.h"
#include "state.h"

typedef enum { FT_MODE_NORMAL, FT_MODE_REFRESH_ONLY, FT_MODE_DESTROY } ft_plan_mode;

typedef struct {
    ft_plan_mode mode;
    const char **targets;       /* -target values */
    size_t       ntargets;
    const char **replace;       /* -replace values */
    size_t       nreplace;
    const char  *force_replace; /* FAKE_TF_FORCE_REPLACE */
    const char  *tf_version;
} ft_plan_opts;

/* Builds the plan document (caller deletes). 0, or -1 with e. */
int ft_plan_build(const ft_config *c, const ft_state *st, const ft_plan_opts *o, cJSON **doc, ft_err *e);

typedef struct {
    int add, change, destroy; /* as terraform's "Plan:" line counts them (a replace adds and destroys) */
    int outputs;              /* output changes other than no-op */
} ft_plan_counts;

void ft_plan_count(const cJSON *show, ft_plan_counts *n);

/* Evaluates output `name`'s expression at apply time, against the new state and the plan's "variables"
 * section. 0 with *out (NULL for a null value), or -1 with e. */
int ft_plan_eval_output(const char *name, const cJSON *expr, const cJSON *variables, const ft_state *st,
                        cJSON **out, ft_err *e);

/* A state in terraform's JSON values representation, as `show -json` prints it and as the plan's prior_state:
 * {"format_version":"1.0","terraform_version":…,"values":{"outputs":…,"root_module":…}} (caller deletes). */
cJSON *ft_plan_state_json(const ft_state *st, const char *tf_version);

/* Writes doc as a plan file (atomically, mode 0644). 0 or -errno. */
int ft_planfile_write(const char *path, const cJSON *doc);
/* Reads a plan file. 0, or -1 with the reason in why. */
int ft_planfile_read(const char *path, cJSON **doc, char *why, size_t whylen);

#endif
