/* config.h — the root module as written in the work directory's *.tf.json files.
 *
 * terraform reads every *.tf.json (and *.tf) file of the directory; the fake reads the *.tf.json ones (HCL .tf
 * files are ignored: the agent writes JSON only) and merges their blocks, refusing duplicates as terraform does.
 * From the merged blocks it builds:
 *   - resources: each resource.TYPE.NAME body, meta-arguments (count, for_each, depends_on, provider,
 *     lifecycle, provisioner, connection) removed, variables substituted (eval.h) — that object is what the
 *     plan compares with the state's attributes;
 *   - module calls: module.NAME becomes ONE resource "module.NAME.null_resource.this" whose "triggers" map holds
 *     the call's inputs (as strings), so a module-based configuration plans, applies and reports
 *     module_address like a real one without the fake fetching any module source;
 *   - outputs (unevaluated: the plan evaluates them against the state), data sources (only listed, never read),
 *     and the input variables' values (vars.h).
 * Resources are instances without count/for_each: those meta-arguments are ignored. */
#ifndef FT_CONFIG_H
#define FT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "diag.h"
#include "res.h"
#include "vars.h"

typedef struct {
    char *name;
    char *source;
    char *version; /* NULL when not given */
} ft_module_call;

typedef struct {
    char  *name;
    cJSON *value;  /* as written: a literal or a template string */
    bool   sensitive;
} ft_output_cfg;

typedef struct {
    size_t          nfiles;   /* *.tf.json files read */
    cJSON          *blocks;   /* merged top-level blocks: "resource", "module", "variable", "output", "data", … */
    ft_res_list     res;      /* sorted by address */
    ft_module_call *mods;
    size_t          nmods;
    ft_output_cfg  *outs;     /* sorted by name */
    size_t          nouts;
    cJSON          *vars;     /* name → value; NULL when loaded without variables */
    ft_err          warn;     /* a warning to print (summary empty: none) */
} ft_config;

/* Loads the directory's configuration. With vars NULL (init) variables are neither resolved nor substituted.
 * 0, or -1 with a terraform-like error in e. c is always initialised (free it in both cases). */
int ft_config_load(ft_config *c, const ft_var_arg *vars, size_t nvars, bool with_vars, ft_err *e);
void ft_config_free(ft_config *c);

/* Calls fn for each block object of a block value (HCL JSON allows an object or an array of objects). */
void ft_config_each_body(const cJSON *v, void (*fn)(const cJSON *body, void *ctx), void *ctx);

/* The first object body of a value written as an object or an array of objects, or NULL. */
const cJSON *ft_config_body(const cJSON *v);

#endif
