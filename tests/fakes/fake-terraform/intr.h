/* intr.h — SIGINT/SIGTERM the way terraform handles them, and sleeps that an interrupt can cut short.
 *
 * Terraform treats SIGINT and SIGTERM alike: the first prints "Interrupt received. …" and asks the running
 * operation to stop after its current step (state is written); a second one exits at once with status 1. The
 * handler prints with write(2) and records the interrupt; commands poll ft_intr_requested() between steps and
 * sleep with ft_intr_sleep(). A signal handler needs process-wide state, so this module owns the only mutable
 * globals of the program (the interrupt count, the mode, a self-pipe that wakes sleepers, the record of signals). */
#ifndef FT_INTR_H
#define FT_INTR_H

#include <stdbool.h>

#include "knobs.h"

/* Installs the handlers for SIGINT and SIGTERM. With record_path (the invocation log, FAKE_TF_STATE_DIR), every
 * signal that arrives is also appended there as one JSON line {"cmd","cwd","pid","signal":"SIGINT","n":N} (n counts
 * the signals this process received), so a test can assert that terraform was interrupted — even when the process
 * is SIGKILLed right after, or ignores the signal. 0 or -errno. */
int ft_intr_install(ft_sigint_mode mode, const char *record_path, const char *cmd);

/* A graceful stop has been asked for (always false in FT_SIGINT_IGNORE mode). */
bool ft_intr_requested(void);

/* Sleeps ms milliseconds. An interruptible sleep returns true as soon as a stop is requested; an
 * uninterruptible one (a resource being applied finishes its work) always sleeps the whole time and returns
 * false. */
bool ft_intr_sleep(long ms, bool interruptible);

#endif
