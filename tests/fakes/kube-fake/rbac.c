/* rbac.c — the deny list (see rbac.h). A rule is kept as its text and matched by splitting it again: at most 64
 * rules, checked once per request, so there is nothing to gain from a parsed form. */
#include "rbac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resources.h"

struct rbac {
    char   rules[RBAC_MAX_RULES][RBAC_RULE_MAX];
    size_t n;
};

rbac *rbac_new(void) { return calloc(1, sizeof(rbac)); }

void rbac_free(rbac *r) { free(r); }

static bool resource_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
}

int rbac_check_rule(const char *rule, char *err, size_t errlen)
{
    const char *colon = strchr(rule, ':');
    if (strlen(rule) >= RBAC_RULE_MAX || !colon) {
        snprintf(err, errlen, "\"%.200s\" is not a rule: write VERB:RESOURCE such as patch:deployments/scale",
                 rule);
        return -1;
    }
    size_t vlen = (size_t)(colon - rule);
    if (!(vlen == 1 && rule[0] == '*') && verb_parse(rule, vlen) < 0) {
        snprintf(err, errlen,
                 "\"%.200s\": the verb must be one of get, list, watch, create, update, patch, delete, "
                 "deletecollection or *",
                 rule);
        return -1;
    }
    const char *res = colon + 1;
    if (strcmp(res, "*") == 0)
        return 0;
    const char *slash = strchr(res, '/');
    size_t rlen = slash ? (size_t)(slash - res) : strlen(res);
    bool ok = rlen > 0 && (!slash || (slash[1] && !strchr(slash + 1, '/')));
    for (const char *p = res; ok && *p; p++)
        ok = resource_char(*p) || p == slash;
    if (!ok) {
        snprintf(err, errlen,
                 "\"%.200s\": the resource must be a lowercase resource name with an optional /subresource "
                 "(deployments/scale), or *",
                 rule);
        return -1;
    }
    return 0;
}

int rbac_deny(rbac *r, const char *rule, char *err, size_t errlen)
{
    if (rbac_check_rule(rule, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->rules[i], rule) == 0)
            return 0;
    if (r->n >= RBAC_MAX_RULES) {
        snprintf(err, errlen, "at most %d deny rules", RBAC_MAX_RULES);
        return -1;
    }
    snprintf(r->rules[r->n++], RBAC_RULE_MAX, "%s", rule);
    return 0;
}

void rbac_clear(rbac *r) { r->n = 0; }

static bool rule_matches(const char *rule, const char *verb, const char *resource, const char *sub)
{
    const char *colon = strchr(rule, ':');
    size_t vlen = (size_t)(colon - rule);
    if (!(vlen == 1 && rule[0] == '*') && !(strlen(verb) == vlen && memcmp(rule, verb, vlen) == 0))
        return false;
    const char *res = colon + 1;
    if (strcmp(res, "*") == 0)
        return true;
    char want[RBAC_RULE_MAX];
    snprintf(want, sizeof want, "%s%s%s", resource, sub && *sub ? "/" : "", sub && *sub ? sub : "");
    return strcmp(res, want) == 0;
}

bool rbac_allowed(const rbac *r, const char *verb, const char *resource, const char *sub)
{
    for (size_t i = 0; i < r->n; i++)
        if (rule_matches(r->rules[i], verb, resource, sub))
            return false;
    return true;
}

size_t rbac_count(const rbac *r) { return r->n; }

const char *rbac_rule(const rbac *r, size_t i) { return i < r->n ? r->rules[i] : NULL; }
