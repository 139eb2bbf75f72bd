/* res.h — one managed resource instance: its address, provider and attribute object.
 *
 * The same shape serves the configuration (desired attributes, no "id"), the state (attributes with "id") and
 * the plan. Attribute objects are kept with their keys sorted at every depth, as terraform writes them (they
 * are Go maps), so that writing them out is deterministic and comparing them is a plain tree comparison.
 *
 * Providers are derived from the type name as terraform's implied provider rule does: "null_resource" →
 * registry.terraform.io/hashicorp/null; "terraform_data" is the built-in provider. */
#ifndef FT_RES_H
#define FT_RES_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct {
    char  *address;  /* "null_resource.a", "module.web.null_resource.this" */
    char  *module;   /* "module.web", or NULL at the root */
    char  *type;
    char  *name;
    char  *provider; /* "registry.terraform.io/hashicorp/null" */
    cJSON *attrs;    /* object, keys sorted */
} ft_res;

typedef struct {
    ft_res *v;
    size_t  n, cap;
} ft_res_list;

/* Fills r; takes ownership of attrs (sorted here). 0 or -ENOMEM (attrs freed). */
int ft_res_init(ft_res *r, const char *module, const char *type, const char *name, cJSON *attrs);
void ft_res_free(ft_res *r);

/* Appends a deep copy of r (or takes r over when own is true: r is then zeroed). 0 or -ENOMEM. */
int ft_res_list_add(ft_res_list *l, ft_res *r, bool own);
ft_res *ft_res_list_find(const ft_res_list *l, const char *address);
void ft_res_list_remove(ft_res_list *l, const char *address);
void ft_res_list_sort(ft_res_list *l);
void ft_res_list_free(ft_res_list *l);

/* The attributes' "id" string, or "". */
const char *ft_res_id(const ft_res *r);

/* Provider source address for a resource type ("registry.terraform.io/hashicorp/null") and its local name
 * ("null"). Both write into the caller's buffer and return it. */
const char *ft_provider_source(const char *type, char *buf, size_t len);
const char *ft_provider_local(const char *type, char *buf, size_t len);

/* Sorts object keys at every depth of v, in place (Go maps); ft_json_sort_top only v's own members. */
void ft_json_sort(cJSON *v);
void ft_json_sort_top(cJSON *v);

/* Compact text of v (keys in tree order): a malloc'd string or NULL on OOM. */
char *ft_json_compact(const cJSON *v);

#endif
