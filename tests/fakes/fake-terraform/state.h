/* state.h — terraform's local state file, format version 4 (terraform.tfstate).
 *
 *   {"version":4,"terraform_version":"1.6.6","serial":N,"lineage":"…","outputs":{"name":{"value":…,"type":…}},
 *    "resources":[{"module"?,"mode":"managed","type","name","provider":"provider[\"registry…/null\"]",
 *      "instances":[{"schema_version":0,"attributes":{…},"sensitive_attributes":[]}]}],"check_results":null}
 *
 * Written the way terraform writes it (two-space indentation, fields in terraform's order, attribute keys
 * sorted, trailing newline) and atomically, so an interrupted apply leaves the previous or the next complete
 * state, never a torn file. Resources the fake does not model (data sources, resources with count/for_each
 * instances) are kept as they are and written back unchanged. A missing or empty file is an empty state, as for
 * terraform. */
#ifndef FT_STATE_H
#define FT_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "diag.h"
#include "res.h"

#define FT_STATE_FILE "terraform.tfstate"
#define FT_STATE_BACKUP "terraform.tfstate.backup"
#define FT_ID_LEN 24
#define FT_LINEAGE_LEN 37

typedef struct {
    bool        present;    /* a non-empty file was read */
    char       *tf_version; /* terraform_version recorded in the file, or NULL */
    int64_t     serial;
    char       *lineage;    /* NULL when there is no state */
    cJSON      *outputs;    /* object: name → {"value", "type"[, "sensitive"]} */
    ft_res_list res;        /* managed single-instance resources, sorted by address */
    cJSON      *other;      /* array of resource entries kept verbatim */
} ft_state;

/* 0, or -1 with a terraform-like error in e. st is always initialised (free it in both cases). */
int ft_state_load(const char *path, ft_state *st, ft_err *e);
/* The state document (caller deletes), or NULL on OOM. */
cJSON *ft_state_json(const ft_state *st, const char *tf_version);
/* Writes atomically (mode 0644). 0 or -errno. */
int ft_state_save(const char *path, const ft_state *st, const char *tf_version);
void ft_state_free(ft_state *st);
/* No resources and no outputs. */
bool ft_state_empty(const ft_state *st);

/* A new resource id: decimal digits derived from the address, attributes and serial (deterministic). */
void ft_state_new_id(const char *address, const cJSON *attrs, int64_t serial, char out[FT_ID_LEN]);
/* A UUID-shaped lineage derived from seed (deterministic). */
void ft_state_new_lineage(const void *seed, size_t len, char out[FT_LINEAGE_LEN]);
/* terraform's JSON type expression for a value: "string", ["object",{…}], ["tuple",[…]] … (caller deletes). */
cJSON *ft_cty_type(const cJSON *v);

#endif
