/* bulk.c — fast deterministic filler output; see bulk.h. */
#include "bulk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intr.h"

#define FT_BULK_BUF (1u << 20)
#define FT_BULK_DIGITS 10

static const char ft_bulk_pattern[] = "abcdefghijklmnopqrstuvwxyz0123456789";

static int ft_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void ft_fill_pattern(char *p, size_t len, size_t phase)
{
    size_t plen = sizeof ft_bulk_pattern - 1;
    for (size_t i = 0; i < len; i++)
        p[i] = ft_bulk_pattern[(phase + i) % plen];
}

/* Increments the decimal counter at d[0..FT_BULK_DIGITS). */
static void ft_counter_next(char *d)
{
    for (int i = FT_BULK_DIGITS - 1; i >= 0; i--) {
        if (d[i] != '9') {
            d[i]++;
            return;
        }
        d[i] = '0';
    }
}

int ft_bulk_lines(int fd, long n, long width)
{
    if (n <= 0)
        return 0;
    fflush(stdout);
    size_t w = (size_t)width;
    char *line = malloc(w + 1);
    char *buf = malloc(FT_BULK_BUF);
    if (!line || !buf) {
        free(line);
        free(buf);
        return -ENOMEM;
    }
    /* Template: prefix, counter, space, pattern; cut to the width. The counter is updated in place when it fits
     * (a line too short for it simply repeats its prefix, which is still deterministic). */
    char full[64];
    int plen = snprintf(full, sizeof full, "fake-terraform output line %0*d ", FT_BULK_DIGITS, 0);
    size_t head = (size_t)plen < w ? (size_t)plen : w;
    memcpy(line, full, head);
    ft_fill_pattern(line + head, w - head, 0);
    line[w] = '\n';
    char *digits = (size_t)plen <= w ? line + plen - 1 - FT_BULK_DIGITS : NULL;

    int rc = 0;
    size_t used = 0;
    for (long i = 0; i < n; i++) {
        if (digits)
            ft_counter_next(digits);
        if (used + w + 1 > FT_BULK_BUF) {
            if ((rc = ft_write_all(fd, buf, used)) < 0)
                break;
            used = 0;
            if (ft_intr_requested()) {
                rc = 1;
                break;
            }
        }
        if (w + 1 > FT_BULK_BUF) { /* a line longer than the buffer goes out on its own */
            if ((rc = ft_write_all(fd, line, w + 1)) < 0)
                break;
            continue;
        }
        memcpy(buf + used, line, w + 1);
        used += w + 1;
    }
    if (rc == 0 && used > 0)
        rc = ft_write_all(fd, buf, used);
    free(line);
    free(buf);
    return rc;
}

int ft_bulk_long_line(int fd, long len)
{
    if (len <= 0)
        return 0;
    fflush(stdout);
    char *buf = malloc(FT_BULK_BUF);
    if (!buf)
        return -ENOMEM;
    size_t left = (size_t)len, phase = 0;
    int rc = 0;
    while (left > 0 && rc == 0) {
        size_t chunk = left < FT_BULK_BUF ? left : FT_BULK_BUF;
        ft_fill_pattern(buf, chunk, phase);
        phase += chunk;
        left -= chunk;
        rc = ft_write_all(fd, buf, chunk);
    }
    if (rc == 0)
        rc = ft_write_all(fd, "\n", 1);
    free(buf);
    return rc;
}
