/* args.c — Go-style flag parsing; see args.h. */
#include "args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ft_flag_spec *ft_spec_find(const ft_flag_spec *spec, const char *name, size_t len)
{
    for (; spec->name; spec++)
        if (strlen(spec->name) == len && memcmp(spec->name, name, len) == 0)
            return spec;
    return NULL;
}

static const char *ft_bool_value(const char *v)
{
    static const struct { const char *text; const char *canon; } forms[] = {
        { "1", "true" },  { "t", "true" },   { "T", "true" },   { "true", "true" },    { "TRUE", "true" },
        { "True", "true" }, { "0", "false" }, { "f", "false" }, { "F", "false" },      { "false", "false" },
        { "FALSE", "false" }, { "False", "false" },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (strcmp(forms[i].text, v) == 0)
            return forms[i].canon;
    return NULL;
}

int ft_args_parse(const ft_flag_spec *spec, int argc, char **argv, bool debug, ft_args *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->flags = calloc((size_t)argc + 1, sizeof *out->flags);
    if (!out->flags) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int i = 0;
    while (i < argc) {
        char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        const char *name = a + 1 + (a[1] == '-');
        if (*name == '-' || *name == '=') {
            snprintf(err, errlen, "bad flag syntax: %s", a);
            return -1;
        }
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const ft_flag_spec *s = ft_spec_find(spec, name, nlen);
        if (!s) {
            snprintf(err, errlen, "flag provided but not defined: -%.*s", (int)nlen, name);
            return -1;
        }
        const char *value;
        i++;
        if (s->boolean) {
            value = eq ? ft_bool_value(eq + 1) : "true";
            if (!value) {
                snprintf(err, errlen, "invalid boolean value \"%s\" for -%s: parse error", eq + 1, s->name);
                return -1;
            }
        } else if (eq) {
            value = eq + 1;
        } else if (i < argc) {
            value = argv[i++];
        } else {
            snprintf(err, errlen, "flag needs an argument: -%s", s->name);
            return -1;
        }
        if (s->use == FT_FLAG_UNSUPPORTED) {
            snprintf(err, errlen, "fake-terraform does not simulate the -%s option", s->name);
            return -1;
        }
        if (s->use == FT_FLAG_IGNORED && debug)
            fprintf(stderr, "[DEBUG] fake-terraform: ignoring -%s=%s\n", s->name, value);
        out->flags[out->nflags++] = (ft_flag){ s->name, value };
    }
    out->pos = argv + i;
    out->npos = (size_t)(argc - i);
    return 0;
}

void ft_args_free(ft_args *a)
{
    free(a->flags);
    memset(a, 0, sizeof *a);
}

const char *ft_args_get(const ft_args *a, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->nflags; i++)
        if (strcmp(a->flags[i].name, name) == 0)
            v = a->flags[i].value;
    return v;
}

bool ft_args_bool(const ft_args *a, const char *name)
{
    const char *v = ft_args_get(a, name);
    return v && strcmp(v, "true") == 0;
}

size_t ft_args_all(const ft_args *a, const char *name, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nflags; i++)
        if (strcmp(a->flags[i].name, name) == 0) {
            if (n < max)
                out[n] = a->flags[i].value;
            n++;
        }
    return n;
}
