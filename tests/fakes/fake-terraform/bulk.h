/* bulk.h — large volumes of output for log-volume and line-splitting tests.
 *
 * FAKE_TF_OUTPUT_LINES × FAKE_TF_OUTPUT_LINE_BYTES can be hundreds of megabytes, so lines are built in a 1 MiB
 * buffer and written with write(2) (stdio is flushed first so the order with normal output is kept). Content is
 * deterministic: "fake-terraform output line NNNNNNNNNN " padded with a repeating pattern to the exact length. */
#ifndef FT_BULK_H
#define FT_BULK_H

/* Writes n lines of width bytes (plus '\n') to fd. 0 when done, 1 when an interrupt stopped it early, -errno
 * on a write error. */
int ft_bulk_lines(int fd, long n, long width);

/* Writes one line of len bytes (plus '\n'). Same return values. */
int ft_bulk_long_line(int fd, long len);

#endif
