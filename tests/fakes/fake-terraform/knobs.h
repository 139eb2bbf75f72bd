/* knobs.h — the environment variables that steer fake-terraform (README.md documents each one).
 *
 * Read once at start into a struct that every command receives; nothing else in the program calls getenv for a
 * FAKE_TF_* name. A knob whose value is out of range stops the program with a message naming it, so a mistyped
 * test setting fails loudly instead of silently testing something else. */
#ifndef FT_KNOBS_H
#define FT_KNOBS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    FT_SIGINT_GRACEFUL, /* like terraform: finish the current step, write state, exit 1; a second signal exits */
    FT_SIGINT_IGNORE,   /* print terraform's message but carry on: a hung provider, only SIGKILL stops it */
} ft_sigint_mode;

typedef struct {
    const char    *version;           /* FAKE_TF_VERSION: reported terraform version, "1.6.6" */
    long           delay_ms;          /* FAKE_TF_DELAY_MS: default for the three below */
    long           init_delay_ms;     /* FAKE_TF_INIT_DELAY_MS: once per init */
    long           plan_delay_ms;     /* FAKE_TF_PLAN_DELAY_MS: once per plan, before the plan is decided */
    long           apply_delay_ms;    /* FAKE_TF_APPLY_DELAY_MS: per resource action of an apply */
    long           output_lines;      /* FAKE_TF_OUTPUT_LINES: extra lines printed by the commands in output_on */
    long           output_line_bytes; /* FAKE_TF_OUTPUT_LINE_BYTES: length of each extra line, newline excluded */
    long           long_line_bytes;   /* FAKE_TF_LONG_LINE_BYTES: one extra line of this length (0 = none) */
    const char    *output_on;         /* FAKE_TF_OUTPUT_ON: commands printing the extra output, "plan" */
    long           init_fail_times;   /* FAKE_TF_INIT_FAIL_TIMES: first N inits fail with a network error */
    const char    *state_dir;         /* FAKE_TF_STATE_DIR: attempt counter and invocation log, or NULL */
    const char    *fail;              /* FAKE_TF_FAIL: comma list of commands that fail hard, or NULL */
    const char    *fail_message;      /* FAKE_TF_FAIL_MESSAGE: replaces the summary of that failure, or NULL */
    long           fail_after;        /* FAKE_TF_FAIL_AFTER: resource actions an apply completes before failing */
    ft_sigint_mode sigint;            /* FAKE_TF_SIGINT: graceful | ignore */
    const char    *force_replace;     /* FAKE_TF_FORCE_REPLACE: comma list of addresses, or "*", or NULL */
    const char    *record_env;        /* FAKE_TF_RECORD_ENV: extra variable names for the invocation log */
    bool           require_init;      /* FAKE_TF_REQUIRE_INIT: plan/apply refuse a directory never initialised */
    bool           debug;             /* FAKE_TF_DEBUG: ignored flags are echoed on stderr */
} ft_knobs;

/* Fills k from the environment. 0, or -1 with a message naming the knob and what is allowed. */
int ft_knobs_load(ft_knobs *k, char *err, size_t errlen);

/* Whether the comma-separated list contains word (surrounding blanks ignored); "*" in the list matches anything
 * when star is true. A NULL list contains nothing. */
bool ft_list_has(const char *list, const char *word, bool star);

#endif
