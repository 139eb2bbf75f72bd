/* diag.h — terraform's diagnostics: "Error: …" and "Warning: …" blocks.
 *
 * Modules that can fail fill an ft_err (summary + detail) instead of printing; the command decides where it goes.
 * Printing follows terraform: with -no-color a plain block (blank line, "Error: summary", blank line, detail);
 * without it the boxed form ("╷", "│ Error: …", "╵") that the agent's error extraction must also understand
 * (ref §7.7). Detail paragraphs are wrapped at 78 columns like terraform does; lines that start with a space
 * (source snippets) are kept as they are. Errors go to stderr, warnings to stdout, as terraform does. */
#ifndef FT_DIAG_H
#define FT_DIAG_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
    char summary[256];
    char detail[4096];
} ft_err;

/* Sets both parts; detail is a printf format (may be NULL for none). Returns -1 so that callers can write
 * `return ft_err_set(e, …);`. */
int ft_err_set(ft_err *e, const char *summary, const char *detail_fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prints one diagnostic. severity is "Error" or "Warning"; boxed = the command ran without -no-color. */
void ft_diag_print(FILE *f, bool boxed, const char *severity, const ft_err *e);

/* Shorthand for an error on stderr. */
void ft_diag_error(bool boxed, const ft_err *e);

/* Appends text to f wrapped at width columns (UTF-8 aware); used for terraform's long explanatory paragraphs. */
void ft_wrap_print(FILE *f, const char *text, int width);

#endif
