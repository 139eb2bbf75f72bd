/* vars.h — the root module's input variables: declarations, .tfvars files, -var options, TF_VAR_* variables.
 *
 * Precedence as terraform: default < TF_VAR_name < terraform.tfvars(.json) < -var-file / -var in command-line
 * order. A .tfvars file is parsed as the HCL it is (strings with terraform's escape rules, numbers, bools, null,
 * tuples, objects, heredocs); what terraform would reject there the fake rejects with terraform's message:
 * an unknown escape such as "\p", an interpolation "${…}" ("Variables not allowed"), a bare word, a repeated
 * name. A value for an undeclared variable is a warning; a declared variable without any value is the error
 * "No value for required variable" (the fake never prompts: -input is always false). Values are converted to
 * the declared primitive type (string, number, bool) as terraform converts them. */
#ifndef FT_VARS_H
#define FT_VARS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "diag.h"

typedef struct {
    bool        file; /* -var-file=PATH, else -var NAME=VALUE */
    const char *text;
} ft_var_arg;

/* decls: the merged "variable" blocks (name → object), or NULL. On success *values is an object name → value
 * (caller deletes) and warn->summary is non-empty if a warning is due. 0, or -1 with e set. */
int ft_vars_resolve(const cJSON *decls, const ft_var_arg *args, size_t nargs, cJSON **values, ft_err *warn,
                    ft_err *e);

/* Parses the text of a .tfvars file into obj (name → value). path is used in messages only. 0 or -1 with e. */
int ft_tfvars_parse(const char *path, const char *text, size_t len, cJSON *obj, ft_err *e);

#endif
