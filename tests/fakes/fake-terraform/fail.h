/* fail.h — the hard failures FAKE_TF_FAIL=<command>[,<command>…] asks for.
 *
 * Each command has one realistic terraform error (a table below), printed like any other diagnostic so that the
 * agent's error extraction (ref §7.7) sees what it would see from terraform; FAKE_TF_FAIL_MESSAGE replaces its
 * summary. None of them contains a phrase of the agent's retryable-init list (ref §7.4 step 2): a hard init
 * failure must not be retried. */
#ifndef FT_FAIL_H
#define FT_FAIL_H

#include <stdbool.h>

#include "knobs.h"

/* Whether FAKE_TF_FAIL names cmd. */
bool ft_fail_wanted(const ft_knobs *k, const char *cmd);

/* Prints cmd's error on stderr. address names the resource an apply failed on (may be NULL). */
void ft_fail_print(const ft_knobs *k, const char *cmd, bool boxed, const char *address);

#endif
