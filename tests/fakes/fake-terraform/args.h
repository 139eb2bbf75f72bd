/* args.h — command-line flags parsed the way terraform (Go's flag package) parses them.
 *
 * "-name" and "--name" are the same; a value is given as "-name=value" or "-name value"; boolean flags take
 * only the "=" form ("-lock=false"); parsing stops at the first argument that is not a flag, or after "--".
 * Each command lists its flags in a table: the ones the fake implements, the ones terraform knows but the fake
 * ignores (echoed with FAKE_TF_DEBUG), and the ones it refuses because their output is not simulated. */
#ifndef FT_ARGS_H
#define FT_ARGS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    FT_FLAG_USED,        /* implemented */
    FT_FLAG_IGNORED,     /* accepted, no effect on the fake */
    FT_FLAG_UNSUPPORTED, /* a real terraform flag whose behaviour the fake does not simulate: an error */
} ft_flag_use;

typedef struct {
    const char *name;    /* without the dash */
    bool        boolean;
    ft_flag_use use;
} ft_flag_spec;

typedef struct {
    const char *name;    /* the spec's name */
    const char *value;   /* "true"/"false" for booleans; points into argv or a static string */
} ft_flag;

typedef struct {
    ft_flag *flags;
    size_t   nflags;
    char   **pos;        /* positional arguments (into argv) */
    size_t   npos;
} ft_args;

/* Parses argv[0..argc) against a table ending with a NULL name. 0, or -1 with Go's message in err (e.g.
 * "flag provided but not defined: -foo"). With debug, ignored flags are echoed on stderr. Call ft_args_free
 * afterwards in both cases. */
int ft_args_parse(const ft_flag_spec *spec, int argc, char **argv, bool debug, ft_args *out, char *err,
                  size_t errlen);
void ft_args_free(ft_args *a);

/* The last value given for name, or NULL. */
const char *ft_args_get(const ft_args *a, const char *name);
/* A boolean flag's value (false when absent). */
bool ft_args_bool(const ft_args *a, const char *name);
/* Every value given for name, in order; returns how many (at most max were stored). */
size_t ft_args_all(const ft_args *a, const char *name, const char **out, size_t max);

#endif
