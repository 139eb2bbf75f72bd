/* res.c — resource instances, lists of them, and the small JSON helpers they need; see res.h. */
#include "res.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/jsonw.h"
#include "iac/strbuf.h"

static int ft_key_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* Reorders the members of one object by key. */
static void ft_sort_members(cJSON *v)
{
    int n = cJSON_GetArraySize(v);
    if (n < 2)
        return;
    cJSON **items = malloc((size_t)n * sizeof *items);
    if (!items)
        return; /* left unsorted: output stays valid, only its order differs */
    int i = 0;
    for (cJSON *c = v->child; c; c = c->next)
        items[i++] = c;
    qsort(items, (size_t)n, sizeof *items, ft_key_cmp);
    for (i = 0; i < n; i++) {
        items[i]->prev = i > 0 ? items[i - 1] : items[n - 1]; /* cJSON: the head's prev is the tail */
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    v->child = items[0];
    free(items);
}

void ft_json_sort(cJSON *v)
{
    if (!v || !(cJSON_IsObject(v) || cJSON_IsArray(v)))
        return;
    for (cJSON *c = v->child; c; c = c->next)
        ft_json_sort(c);
    if (cJSON_IsObject(v))
        ft_sort_members(v);
}

void ft_json_sort_top(cJSON *v)
{
    if (cJSON_IsObject(v))
        ft_sort_members(v);
}

char *ft_json_compact(const cJSON *v)
{
    strbuf b = STRBUF_INIT;
    jsonw_write(&b, v, JSONW_HTML_ESCAPE);
    if (b.oom) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_detach(&b, NULL);
}

int ft_res_init(ft_res *r, const char *module, const char *type, const char *name, cJSON *attrs)
{
    memset(r, 0, sizeof *r);
    char prov[256];
    size_t alen = (module ? strlen(module) + 1 : 0) + strlen(type) + 1 + strlen(name) + 1;
    r->address = malloc(alen);
    r->module = module ? strdup(module) : NULL;
    r->type = strdup(type);
    r->name = strdup(name);
    r->provider = strdup(ft_provider_source(type, prov, sizeof prov));
    r->attrs = attrs ? attrs : cJSON_CreateObject();
    if (!r->address || (module && !r->module) || !r->type || !r->name || !r->provider || !r->attrs) {
        ft_res_free(r);
        return -ENOMEM;
    }
    snprintf(r->address, alen, "%s%s%s.%s", module ? module : "", module ? "." : "", type, name);
    ft_json_sort(r->attrs);
    return 0;
}

void ft_res_free(ft_res *r)
{
    free(r->address);
    free(r->module);
    free(r->type);
    free(r->name);
    free(r->provider);
    cJSON_Delete(r->attrs);
    memset(r, 0, sizeof *r);
}

int ft_res_list_add(ft_res_list *l, ft_res *r, bool own)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        ft_res *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            if (own)
                ft_res_free(r);
            return -ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    if (own) {
        l->v[l->n++] = *r;
        memset(r, 0, sizeof *r);
        return 0;
    }
    cJSON *attrs = cJSON_Duplicate(r->attrs, 1);
    if (!attrs)
        return -ENOMEM;
    int rc = ft_res_init(&l->v[l->n], r->module, r->type, r->name, attrs);
    if (rc == 0)
        l->n++;
    return rc;
}

ft_res *ft_res_list_find(const ft_res_list *l, const char *address)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].address, address) == 0)
            return &l->v[i];
    return NULL;
}

void ft_res_list_remove(ft_res_list *l, const char *address)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].address, address) == 0) {
            ft_res_free(&l->v[i]);
            memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof l->v[0]);
            l->n--;
            return;
        }
    }
}

static int ft_res_cmp(const void *a, const void *b)
{
    return strcmp(((const ft_res *)a)->address, ((const ft_res *)b)->address);
}

void ft_res_list_sort(ft_res_list *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof l->v[0], ft_res_cmp);
}

void ft_res_list_free(ft_res_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        ft_res_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

const char *ft_res_id(const ft_res *r)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r->attrs, "id");
    return cJSON_IsString(id) ? id->valuestring : "";
}

const char *ft_provider_local(const char *type, char *buf, size_t len)
{
    size_t n = strcspn(type, "_");
    snprintf(buf, len, "%.*s", (int)n, type);
    return buf;
}

const char *ft_provider_source(const char *type, char *buf, size_t len)
{
    char local[128];
    ft_provider_local(type, local, sizeof local);
    if (strcmp(local, "terraform") == 0)
        snprintf(buf, len, "terraform.io/builtin/terraform");
    else
        snprintf(buf, len, "registry.terraform.io/hashicorp/%s", local);
    return buf;
}
