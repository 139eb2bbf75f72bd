/* test_proc.c — child processes: line splitting, exit reporting, process-group signals, interrupt with grace,
 * stdout to a file, environment and cwd, spawn errors, volume with bounded memory. Every test spawns /bin/sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iac/strbuf.h"

#include "../../agent/proc.h"

#define MAX_PIECES 64

typedef struct {
    uv_loop_t   loop;
    uv_timer_t  tick; /* wakes uv_run(UV_RUN_ONCE) so that a deadline can be checked */
    proc       *p;
    /* lines per stream (index 1 stdout, 2 stderr) */
    int         nlines[3];
    size_t      bytes[3];
    strbuf      text[3]; /* lines joined by '\n', kept only while small */
    size_t      piece_len[3][MAX_PIECES];
    /* behaviours */
    int         on_first_line_signal;    /* proc_signal_group(sig) at the first stdout line */
    int         on_first_line_interrupt; /* proc_interrupt(grace) at each of the first N stdout lines */
    unsigned    interrupt_grace_ms;
    bool        free_on_first_line;
    bool        check_seq;      /* stdout lines must be 1, 2, 3, … */
    long        seq_next;
    bool        seq_ok;
    long        first_value;    /* first stdout line as a number */
    /* exit */
    bool        exited;
    int         exit_calls;
    int64_t     status;
    int         sig;
    int         lines_after_exit;
    int         signal_after_exit_rc;
    uint64_t    start_ns, exit_ns;
} ctx;

static void tick_cb(uv_timer_t *t) { (void)t; }

static void ctx_init(ctx *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->tick);
    uv_timer_start(&c->tick, tick_cb, 20, 20);
    c->seq_next = 1;
    c->seq_ok = true;
    c->signal_after_exit_rc = 1;
}

static void on_line(proc_stream stream, const char *line, size_t len, void *arg)
{
    ctx *c = arg;
    if (c->exited)
        c->lines_after_exit++;
    int s = (int)stream;
    assert_true(s == 1 || s == 2);
    if (c->nlines[s] < MAX_PIECES)
        c->piece_len[s][c->nlines[s]] = len;
    if (c->text[s].len < 4096) {
        if (c->nlines[s])
            strbuf_putc(&c->text[s], '\n');
        strbuf_append(&c->text[s], line, len);
    }
    c->nlines[s]++;
    c->bytes[s] += len;
    if (s != PROC_STDOUT)
        return;
    if (c->nlines[s] == 1) {
        char num[32];
        size_t n = len < sizeof num - 1 ? len : sizeof num - 1;
        memcpy(num, line, n);
        num[n] = '\0';
        c->first_value = strtol(num, NULL, 10);
    }
    if (c->check_seq) {
        char want[32];
        int n = snprintf(want, sizeof want, "%ld", c->seq_next++);
        if ((size_t)n != len || memcmp(want, line, len) != 0)
            c->seq_ok = false;
    }
    if (c->nlines[s] == 1 && c->on_first_line_signal)
        assert_int_equal(proc_signal_group(c->p, c->on_first_line_signal), 0);
    if (c->nlines[s] <= c->on_first_line_interrupt)
        assert_int_equal(proc_interrupt(c->p, c->interrupt_grace_ms), 0);
    if (c->nlines[s] == 1 && c->free_on_first_line) {
        proc_free(c->p);
        c->p = NULL;
    }
}

static void on_exit_cb(int64_t exit_status, int term_signal, void *arg)
{
    ctx *c = arg;
    c->exit_calls++;
    c->exited = true;
    c->status = exit_status;
    c->sig = term_signal;
    c->exit_ns = uv_hrtime();
    c->signal_after_exit_rc = proc_signal_group(c->p, 0);
    proc_free(c->p);
    c->p = NULL;
}

static const proc_callbacks callbacks = { on_line, on_exit_cb };

static int spawn_sh(ctx *c, const char *script, const proc_options *o, char *const envp[], const char *cwd)
{
    char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
    c->start_ns = uv_hrtime();
    return proc_spawn(&c->loop, argv, envp, cwd, o, &callbacks, c, &c->p);
}

/* Runs the loop until on_exit (or the proc was freed by a callback) or ms passed. */
static void run_until_exit(ctx *c, int ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000u;
    while (!c->exited && (c->p || c->exit_calls) && uv_hrtime() < deadline)
        uv_run(&c->loop, UV_RUN_ONCE);
    if (!c->exited && !c->free_on_first_line)
        fail_msg("the child did not finish within %d ms", ms);
}

/* Frees what is left and checks that every handle was closed. */
static void ctx_done(ctx *c)
{
    if (c->p) {
        proc_free(c->p);
        c->p = NULL;
    }
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    for (int i = 0; i < 3; i++)
        strbuf_free(&c->text[i]);
}

static unsigned elapsed_ms(const ctx *c) { return (unsigned)((c->exit_ns - c->start_ns) / 1000000u); }

static const char *text(ctx *c, int s) { return c->text[s].data ? c->text[s].data : ""; }

/* A process that exited is gone: no such pid, or only a zombie waiting for its new parent to reap it. */
static bool pid_gone_now(int pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* Its pipes close a moment before a dying process becomes a zombie: allow it a second. */
static bool pid_gone(int pid)
{
    for (int i = 0; i < 100; i++) {
        if (pid_gone_now(pid))
            return true;
        usleep(10000);
    }
    return false;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Lines of stdout and stderr arrive separately and in order, without newlines; CRLF loses its CR. */
static void lines_from_both_streams(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    assert_int_equal(spawn_sh(&c, "echo out1; echo err1 >&2; printf 'a\\r\\nb\\n\\n'; echo err2 >&2", NULL, NULL,
                              NULL), 0);
    run_until_exit(&c, 5000);
    assert_string_equal(text(&c, PROC_STDOUT), "out1\na\nb\n");
    assert_int_equal(c.nlines[PROC_STDOUT], 4); /* the empty line counts */
    assert_string_equal(text(&c, PROC_STDERR), "err1\nerr2");
    assert_int_equal(c.status, 0);
    assert_int_equal(c.sig, 0);
    assert_int_equal(c.exit_calls, 1);
    ctx_done(&c);
}

/* A 200 KiB line arrives as three 64 KiB pieces and the rest; a line of exactly 64 KiB (with CRLF) is one piece;
 * 64 KiB + 1 is two. Nothing is lost and the next line is intact. */
static void long_lines_are_split_into_64k_pieces(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    assert_int_equal(spawn_sh(&c,
                              "head -c 204800 /dev/zero | tr '\\0' x; echo;"
                              "head -c 65536 /dev/zero | tr '\\0' y; printf '\\r\\n';"
                              "head -c 65537 /dev/zero | tr '\\0' z; echo; echo next",
                              NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    static const size_t want[] = { 65536, 65536, 65536, 8192, 65536, 65536, 1, 4 };
    assert_int_equal(c.nlines[PROC_STDOUT], 8);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(c.piece_len[PROC_STDOUT][i], want[i]);
    assert_int_equal(c.bytes[PROC_STDOUT], 204800 + 65536 + 65537 + 4);
    ctx_done(&c);
}

/* A '\r' that arrives alone right after 64 KiB, in a later read, is judged by what follows it: the end of a
 * CRLF line (one 64 KiB line) or content (a second piece that keeps the '\r'). */
static void cr_after_64k_is_split_correctly_across_reads(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    assert_int_equal(spawn_sh(&c,
                              "head -c 65536 /dev/zero | tr '\\0' y; sleep 0.05; printf '\\r'; sleep 0.05; echo;"
                              "head -c 65536 /dev/zero | tr '\\0' w; sleep 0.05; printf '\\r'; sleep 0.05; echo q",
                              NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.nlines[PROC_STDOUT], 3);
    assert_int_equal(c.piece_len[PROC_STDOUT][0], 65536);
    assert_int_equal(c.piece_len[PROC_STDOUT][1], 65536);
    assert_int_equal(c.piece_len[PROC_STDOUT][2], 2); /* "\rq" */
    ctx_done(&c);
}

/* Output that does not end in a newline still arrives, on both streams, before on_exit. */
static void last_line_without_newline_is_delivered(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    assert_int_equal(spawn_sh(&c, "printf 'one\\ntwo'; printf 'e' >&2", NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_string_equal(text(&c, PROC_STDOUT), "one\ntwo");
    assert_string_equal(text(&c, PROC_STDERR), "e");
    assert_int_equal(c.lines_after_exit, 0);
    ctx_done(&c);
}

/* The exit code and the killing signal are reported once; signalling after on_exit is refused (-ESRCH). */
static void exit_code_and_signal_are_reported(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    assert_int_equal(spawn_sh(&c, "echo bye; exit 3", NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.status, 3);
    assert_int_equal(c.sig, 0);
    assert_int_equal(c.exit_calls, 1);
    assert_int_equal(c.signal_after_exit_rc, -ESRCH);
    ctx_done(&c);

    ctx_init(&c);
    assert_int_equal(spawn_sh(&c, "kill -TERM $$; sleep 5", NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.sig, SIGTERM);
    assert_int_equal(c.exit_calls, 1);
    ctx_done(&c);
}

/* A signal to the group reaches a grandchild too: sh runs `sleep 100` in the background and waits; one SIGTERM
 * ends both (on_exit comes only once sleep, which holds the stdout pipe, is gone). */
static void group_signal_reaches_grandchild(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    c.on_first_line_signal = SIGTERM;
    assert_int_equal(spawn_sh(&c, "sleep 100 & echo $!; wait", NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.sig, SIGTERM);
    assert_true(c.first_value > 1);
    assert_true(pid_gone((int)c.first_value));
    assert_true(elapsed_ms(&c) < 3000);
    ctx_done(&c);
}

/* Interrupt: a process that stops gracefully on SIGINT (as terraform does: it finishes, exits 1) is not killed. */
static void interrupt_lets_cooperative_process_stop(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    c.on_first_line_interrupt = 1;
    c.interrupt_grace_ms = 5000;
    assert_int_equal(spawn_sh(&c, "trap 'echo stopping; exit 1' INT; echo ready; while :; do sleep 0.05; done",
                              NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.status, 1);
    assert_int_equal(c.sig, 0);
    assert_string_equal(text(&c, PROC_STDOUT), "ready\nstopping");
    assert_true(elapsed_ms(&c) < 3000);
    ctx_done(&c);
}

/* Interrupt: when the whole group ignores SIGINT, SIGKILL follows after the grace — not before. */
static void interrupt_kills_after_grace_when_sigint_ignored(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    c.on_first_line_interrupt = 1;
    c.interrupt_grace_ms = 200;
    assert_int_equal(spawn_sh(&c, "trap '' INT; echo ready; sleep 100", NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.sig, SIGKILL);
    assert_true(elapsed_ms(&c) >= 200);
    assert_true(elapsed_ms(&c) < 3000);
    ctx_done(&c);
}

/* A second interrupt does not wait for the grace: SIGKILL at once. */
static void second_interrupt_kills_at_once(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    c.on_first_line_interrupt = 2;
    c.interrupt_grace_ms = 10000;
    assert_int_equal(spawn_sh(&c, "trap '' INT; echo ready; echo again; sleep 100", NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.sig, SIGKILL);
    assert_true(elapsed_ms(&c) < 3000);
    ctx_done(&c);
}

/* With stdout_path, stdout goes byte for byte to the file (mode 0600), not to on_line; stderr is still lines. */
static void stdout_path_writes_stdout_to_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_proc.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/show.json", dir);
    ctx c;
    ctx_init(&c);
    proc_options o = { .stdout_path = path };
    assert_int_equal(spawn_sh(&c, "printf '{\"a\":1}\\nno newline'; echo err >&2", &o, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.nlines[PROC_STDOUT], 0);
    assert_string_equal(text(&c, PROC_STDERR), "err");
    assert_int_equal(c.status, 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[64] = { 0 };
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    assert_int_equal(n, strlen("{\"a\":1}\nno newline"));
    assert_string_equal(buf, "{\"a\":1}\nno newline");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ctx_done(&c);
    unlink(path);
    rmdir(dir);
}

/* The child sees exactly the environment given, and runs in the given directory; stdin is empty. */
static void env_and_cwd_are_applied(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_proc.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *real = realpath(dir, NULL);
    assert_non_null(real);
    ctx c;
    ctx_init(&c);
    char *envp[] = { "FOO=bar baz", "PATH=/usr/bin:/bin", NULL };
    assert_int_equal(spawn_sh(&c, "echo \"$FOO\"; pwd; echo \"${HOME:-unset}\"; cat; echo end", NULL, envp, dir),
                     0);
    run_until_exit(&c, 5000);
    char want[512];
    snprintf(want, sizeof want, "bar baz\n%s\nunset\nend", real);
    assert_string_equal(text(&c, PROC_STDOUT), want);
    ctx_done(&c);
    free(real);
    rmdir(dir);
}

/* The child starts with every signal at its default and none blocked, whatever the agent ignores (SIGPIPE) or
 * blocks: a terraform that inherited an ignored SIGPIPE would spin on EPIPE instead of dying. */
static void child_gets_default_signals_and_an_empty_mask(void **state)
{
    (void)state;
    struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe, old_hup;
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigaction(SIGHUP, &ign, &old_hup);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    ctx c;
    ctx_init(&c);
    /* grep reads its own status: the first process the agent starts, no shell in between. */
    char *argv[] = { "grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status", NULL };
    assert_int_equal(proc_spawn(&c.loop, argv, NULL, NULL, NULL, &callbacks, &c, &c.p), 0);
    run_until_exit(&c, 5000);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    assert_int_equal(c.status, 0);
    unsigned long long blocked = 1, ignored = 1;
    assert_int_equal(sscanf(text(&c, PROC_STDOUT), "SigBlk: %llx SigIgn: %llx", &blocked, &ignored), 2);
    assert_int_equal(blocked, 0);
    /* Signals 1–31; glibc's posix_spawn leaves its two internal real-time signals (32, 33) ignored. */
    assert_int_equal(ignored & 0x7fffffffu, 0);
    ctx_done(&c);
}

/* A bare program name is looked up in the PATH of the child's environment (not the agent's), in order, skipping a
 * directory whose file of that name is not executable, a relative directory taken in the child's cwd; a name
 * found nowhere is -ENOENT, one found only without execute permission -EACCES. */
static void bare_name_is_searched_in_the_childs_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_proc.XXXXXX", a[64], b[64], path[160];
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    assert_int_equal(mkdir(a, 0700), 0);
    assert_int_equal(mkdir(b, 0700), 0);
    char f[96];
    snprintf(f, sizeof f, "%s/iac-prog", a); /* not executable: skipped */
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\necho from-a\n", fp);
    fclose(fp);
    snprintf(f, sizeof f, "%s/iac-prog", b);
    fp = fopen(f, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\necho from-b\n", fp);
    fclose(fp);
    assert_int_equal(chmod(f, 0700), 0);
    snprintf(path, sizeof path, "PATH=%s:%s:/usr/bin:/bin", a, b);
    char *envp[] = { path, NULL };
    char *argv[] = { "iac-prog", NULL };
    ctx c;
    ctx_init(&c);
    assert_int_equal(proc_spawn(&c.loop, argv, envp, NULL, NULL, &callbacks, &c, &c.p), 0);
    run_until_exit(&c, 5000);
    assert_string_equal(text(&c, PROC_STDOUT), "from-b");
    ctx_done(&c);

    /* A relative entry is taken in the child's cwd (dir here), not the agent's. */
    char *rel_envp[] = { "PATH=b:/usr/bin:/bin", NULL };
    ctx_init(&c);
    assert_int_equal(proc_spawn(&c.loop, argv, rel_envp, dir, NULL, &callbacks, &c, &c.p), 0);
    run_until_exit(&c, 5000);
    assert_string_equal(text(&c, PROC_STDOUT), "from-b");
    ctx_done(&c);

    proc *p = NULL;
    ctx_init(&c);
    assert_int_equal(proc_spawn(&c.loop, argv, NULL, NULL, NULL, &callbacks, &c, &p), -ENOENT); /* agent's PATH */
    assert_int_equal(unlink(f), 0);
    assert_int_equal(proc_spawn(&c.loop, argv, envp, NULL, NULL, &callbacks, &c, &p), -EACCES);
    assert_null(p);
    ctx_done(&c);
    snprintf(f, sizeof f, "%s/iac-prog", a);
    unlink(f);
    rmdir(a);
    rmdir(b);
    rmdir(dir);
}

/* A program that cannot be started is a spawn error (negative errno), with no callback and nothing to free; a
 * missing command run through sh is sh's own exit 127. */
static void missing_binary_is_a_spawn_error(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    char *argv[] = { "/nonexistent/terraform", "version", NULL };
    proc *p = (proc *)&c; /* must be reset */
    assert_int_equal(proc_spawn(&c.loop, argv, NULL, NULL, NULL, &callbacks, &c, &p), UV_ENOENT);
    assert_null(p);
    char *sh[] = { "/bin/sh", "-c", "true", NULL };
    assert_int_equal(proc_spawn(&c.loop, sh, NULL, "/nonexistent/dir", NULL, &callbacks, &c, &p), UV_ENOENT);
    assert_null(p);
    uv_run(&c.loop, UV_RUN_NOWAIT);
    assert_int_equal(c.exit_calls, 0);
    assert_int_equal(c.nlines[1] + c.nlines[2], 0);
    ctx_done(&c);

    ctx_init(&c);
    assert_int_equal(spawn_sh(&c, "no-such-command-here", NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.status, 127);
    assert_true(c.nlines[PROC_STDERR] >= 1);
    ctx_done(&c);
}

/* 200 000 lines arrive complete and in order, fast. */
static void many_lines_arrive_complete_and_in_order(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    c.check_seq = true;
    assert_int_equal(spawn_sh(&c, "seq 1 200000", NULL, NULL, NULL), 0);
    run_until_exit(&c, 10000);
    assert_int_equal(c.nlines[PROC_STDOUT], 200000);
    assert_true(c.seq_ok);
    ctx_done(&c);
}

/* 64 MB of output (one huge line and many short ones) goes through without the agent's memory growing with it. */
static void volume_does_not_grow_memory(void **state)
{
    (void)state;
    long before = maxrss_kib();
    ctx c;
    ctx_init(&c);
    assert_int_equal(spawn_sh(&c, "head -c 32000000 /dev/zero | tr '\\0' x; echo;"
                                  "yes 0123456789012345678901234567890123456789012345678901234567890123456789 |"
                                  " head -n 450000",
                              NULL, NULL, NULL), 0);
    run_until_exit(&c, 20000);
    assert_int_equal(c.nlines[PROC_STDOUT], 489 + 450000); /* 32e6 = 488 × 65536 + 18432 */
    assert_int_equal(c.bytes[PROC_STDOUT], 32000000 + 450000 * 70);
    long grown = maxrss_kib() - before;
    print_message("max RSS grew by %ld KiB\n", grown);
    if (grown > 8 * 1024)
        fail_msg("max RSS grew by %ld KiB while 63 MB went through", grown);
    ctx_done(&c);
}

/* After exit, output held open by a leftover (a background job that outlives sh) is cut off after the linger:
 * the leftover is killed and on_exit reports sh's own exit status. */
static void leftover_holding_pipe_is_killed_after_linger(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    proc_options o = { .linger_ms = 150 };
    assert_int_equal(spawn_sh(&c, "sleep 100 & echo $!; exit 4", &o, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.status, 4);
    assert_int_equal(c.sig, 0);
    assert_true(elapsed_ms(&c) >= 150);
    assert_true(elapsed_ms(&c) < 3000);
    assert_true(pid_gone((int)c.first_value));
    ctx_done(&c);
}

/* proc_free from inside on_line stops every callback; proc_free of a running process kills its group and still
 * lets the loop end cleanly. */
static void free_stops_callbacks_and_kills_group(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    c.free_on_first_line = true;
    assert_int_equal(spawn_sh(&c, "echo 1; echo 2; echo 3 >&2; sleep 100", NULL, NULL, NULL), 0);
    run_until_exit(&c, 5000);
    assert_int_equal(c.nlines[PROC_STDOUT], 1);
    uint64_t t0 = uv_hrtime();
    ctx_done(&c); /* would wait for `sleep 100` if the group had not been killed */
    assert_true(uv_hrtime() - t0 < 3000000000u);
    assert_int_equal(c.exit_calls, 0);
}

/* Freed after its process exited but while a leftover it started still holds the output (before on_exit, in the
 * linger), a proc still takes the leftover down with it: a plugin must not outlive its task. */
static void free_during_the_linger_kills_the_leftover(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c);
    proc_options o = { .linger_ms = 30000 };
    assert_int_equal(spawn_sh(&c, "sleep 30 & echo $!", &o, NULL, NULL), 0);
    int sh = proc_pid(c.p);
    uint64_t deadline = uv_hrtime() + 5000000000u;
    while ((c.nlines[PROC_STDOUT] == 0 || !pid_gone_now(sh)) && uv_hrtime() < deadline)
        uv_run(&c.loop, UV_RUN_NOWAIT);
    assert_int_equal(c.nlines[PROC_STDOUT], 1);
    int leftover = (int)c.first_value;
    assert_true(leftover > 0);
    for (int i = 0; i < 20; i++) /* the SIGCHLD reaches the proc */
        uv_run(&c.loop, UV_RUN_NOWAIT);
    assert_int_equal(c.exit_calls, 0); /* in the linger: the leftover holds stdout */
    ctx_done(&c);                     /* proc_free() */
    assert_true(pid_gone(leftover));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(volume_does_not_grow_memory),
        cmocka_unit_test(lines_from_both_streams),
        cmocka_unit_test(long_lines_are_split_into_64k_pieces),
        cmocka_unit_test(cr_after_64k_is_split_correctly_across_reads),
        cmocka_unit_test(last_line_without_newline_is_delivered),
        cmocka_unit_test(exit_code_and_signal_are_reported),
        cmocka_unit_test(group_signal_reaches_grandchild),
        cmocka_unit_test(interrupt_lets_cooperative_process_stop),
        cmocka_unit_test(interrupt_kills_after_grace_when_sigint_ignored),
        cmocka_unit_test(second_interrupt_kills_at_once),
        cmocka_unit_test(stdout_path_writes_stdout_to_file),
        cmocka_unit_test(env_and_cwd_are_applied),
        cmocka_unit_test(missing_binary_is_a_spawn_error),
        cmocka_unit_test(child_gets_default_signals_and_an_empty_mask),
        cmocka_unit_test(bare_name_is_searched_in_the_childs_path),
        cmocka_unit_test(many_lines_arrive_complete_and_in_order),
        cmocka_unit_test(leftover_holding_pipe_is_killed_after_linger),
        cmocka_unit_test(free_stops_callbacks_and_kills_group),
        cmocka_unit_test(free_during_the_linger_kills_the_leftover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
