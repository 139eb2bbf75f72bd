/* eval.h — the little of terraform's expression language the fake understands.
 *
 * Strings in .tf.json files are templates: "${expr}" is an interpolation and "$${" a literal "${". The fake
 * evaluates references only: "var.NAME", resource attributes ("null_resource.a.id", "module.web.out") — the
 * caller's lookup decides what they are worth. Anything else (functions, locals, data sources, arithmetic) is
 * not evaluated and stays as written, "${…}" included. A string that is exactly one interpolation takes the
 * referenced value's type (a number, an object…); otherwise the parts are joined as text. */
#ifndef FT_EVAL_H
#define FT_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef enum {
    FT_REF_VAR,      /* var.NAME */
    FT_REF_RESOURCE, /* TYPE.NAME[.ATTR…] or module.NAME[.OUTPUT…] */
    FT_REF_OTHER,    /* anything the fake does not evaluate */
} ft_ref_kind;

typedef enum {
    FT_LOOKUP_KNOWN,   /* *out set (a new tree the evaluator takes) */
    FT_LOOKUP_UNKNOWN, /* known after apply */
    FT_LOOKUP_MISSING, /* no such variable / resource / attribute: an error */
    FT_LOOKUP_LITERAL, /* leave the interpolation as written */
} ft_lookup_result;

typedef ft_lookup_result (*ft_lookup_fn)(void *ctx, ft_ref_kind kind, const char *ref, cJSON **out);

/* Classifies a trimmed expression. */
ft_ref_kind ft_ref_classify(const char *expr);

/* Evaluates v (any JSON; strings anywhere inside are templates). Returns 0 with *out set (caller deletes), 0 with
 * *out NULL when the value is unknown, -1 with the offending reference in missing (a lookup said MISSING), or
 * -ENOMEM. */
int ft_eval(const cJSON *v, ft_lookup_fn fn, void *ctx, cJSON **out, char *missing, size_t missing_len);

/* Every reference in v's templates (var.x, null_resource.a.id …), appended to refs (a JSON array of strings,
 * duplicates removed). Used for the "references" of the plan's configuration section. */
void ft_eval_references(const cJSON *v, cJSON *refs);

/* Whether any string inside v contains an interpolation. */
bool ft_eval_has_template(const cJSON *v);

#endif
