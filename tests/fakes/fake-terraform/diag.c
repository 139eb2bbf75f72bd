/* diag.c — terraform-style diagnostics; see diag.h. */
#include "diag.h"

#include <stdarg.h>
#include <string.h>

#include "iac/strbuf.h"

#define FT_DIAG_COLUMNS 78

int ft_err_set(ft_err *e, const char *summary, const char *detail_fmt, ...)
{
    snprintf(e->summary, sizeof e->summary, "%s", summary);
    e->detail[0] = '\0';
    if (detail_fmt) {
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(e->detail, sizeof e->detail, detail_fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Display width of s[0..len): UTF-8 continuation bytes take no column. */
static int ft_cols(const char *s, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* Wraps one line into b: words are never split; a word longer than the width gets a line of its own. */
static void ft_wrap_line(strbuf *b, const char *line, size_t len, int width)
{
    if (len == 0 || line[0] == ' ' || ft_cols(line, len) <= width) {
        strbuf_append(b, line, len);
        strbuf_putc(b, '\n');
        return;
    }
    int col = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && line[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && line[i] != ' ')
            i++;
        if (i == start)
            break;
        int w = ft_cols(line + start, i - start);
        if (col > 0 && col + 1 + w > width) {
            strbuf_putc(b, '\n');
            col = 0;
        }
        if (col > 0) {
            strbuf_putc(b, ' ');
            col++;
        }
        strbuf_append(b, line + start, i - start);
        col += w;
    }
    strbuf_putc(b, '\n');
}

static void ft_wrap(strbuf *b, const char *text, int width)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        ft_wrap_line(b, p, len, width);
        p += len + (nl ? 1 : 0);
    }
}

void ft_wrap_print(FILE *f, const char *text, int width)
{
    strbuf b = STRBUF_INIT;
    ft_wrap(&b, text, width);
    if (b.data)
        fputs(b.data, f);
    strbuf_free(&b);
}

void ft_diag_print(FILE *f, bool boxed, const char *severity, const ft_err *e)
{
    strbuf body = STRBUF_INIT;
    strbuf_printf(&body, "%s: %s\n", severity, e->summary);
    if (e->detail[0]) {
        strbuf_putc(&body, '\n');
        ft_wrap(&body, e->detail, boxed ? FT_DIAG_COLUMNS - 2 : FT_DIAG_COLUMNS);
    }
    if (!body.data) {
        strbuf_free(&body);
        return;
    }
    fflush(stdout);
    if (!boxed) {
        fprintf(f, "\n%s\n", body.data);
    } else {
        fputs("╷\n", f);
        for (char *line = body.data, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            fprintf(f, "│ %.*s\n", (int)(nl - line), line);
        }
        fputs("╵\n", f);
    }
    fflush(f);
    strbuf_free(&body);
}

void ft_diag_error(bool boxed, const ft_err *e)
{
    ft_diag_print(stderr, boxed, "Error", e);
}
