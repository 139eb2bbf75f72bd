/* strbuf.h — a growable byte buffer that is always NUL-terminated.
 *
 * The one string builder every module uses (JSON output, metrics pages, log lines), so that nobody hand-rolls
 * realloc arithmetic twice. The caller owns the struct (usually on the stack or embedded); the bytes it points to
 * are owned by the buffer until strbuf_free() or strbuf_detach(). A buffer that failed to grow is marked `oom`;
 * later appends are ignored and the caller checks `oom` once at the end instead of after every append. */
#ifndef IAC_STRBUF_H
#define IAC_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char  *data;  /* NUL-terminated; NULL until the first append */
    size_t len;   /* bytes used, not counting the NUL */
    size_t cap;   /* bytes allocated */
    bool   oom;   /* an append failed to allocate; contents are truncated */
} strbuf;

#define STRBUF_INIT { NULL, 0, 0, false }

void strbuf_append(strbuf *b, const void *data, size_t len);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vprintf(strbuf *b, const char *fmt, va_list ap);
/* Appends s as the body of a JSON string (no surrounding quotes): escapes quotes, backslashes and control bytes. */
void strbuf_json_escape(strbuf *b, const char *s, size_t len);
/* Empties the buffer, keeping its allocation. */
void strbuf_reset(strbuf *b);
/* Returns the bytes (caller frees; never NULL unless oom) and leaves the buffer empty. */
char *strbuf_detach(strbuf *b, size_t *len);
void strbuf_free(strbuf *b);

/* Formats into a fixed buffer of n bytes, cutting what does not fit: for messages kept in structs or error
 * buffers, where a cut text is fine and growing is not. Always NUL-terminates; dst NULL or n 0 writes nothing.
 * Returns what vsnprintf returns (0 when nothing is written). */
int strbuf_fixed_printf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
