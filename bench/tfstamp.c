/* tfstamp.c — stands in for the engine binary and records, with a nanosecond wall clock, when it was executed.
 *
 * The benchmarks need the moment the agent's child is exec'd ("fake-terraform's first exec", row 3) and, for the
 * log path (row 4), how long the engine took to push its output through the agent. Neither the agent nor
 * fake-terraform logs that precisely, and tracing the agent (strace, perf) would slow down what is measured; so the
 * agent is given this program as its engine (IAC_ENGINE_PATH) and this program hands over to the real one.
 *
 * It uses nothing but libc on purpose: the timestamp is taken as main() starts, and a program that pulled in the
 * project's libraries would spend milliseconds in the dynamic loader first and blame that on the agent. What is
 * left between the exec and the timestamp is loading libc, about 0.2 ms, the same in the baseline (bench/
 * spawnbase.c spawns this program too).
 *
 * Environment (inherited from the agent, which passes its environment to the engine):
 *   BENCH_TF_REAL    the real engine binary (required; without it the program exits 2 at once, which run.sh uses to
 *                    time a bare libc exec)
 *   BENCH_TF_STAMPS  file to append one line per run to (optional): "<start_ns> <end_ns> <pid> <command> <cwd>"
 *   BENCH_TF_WAIT    "1": run the engine as a child, wait for it and write end_ns (its exit); else exec it (end_ns 0)
 * In wait mode a line with end_ns 0 is written at the start as well, so a watcher can tell the run has begun.
 * The exit status is the engine's. Each line is one write(2) on an O_APPEND descriptor, so parallel runs (four
 * slots) never interleave. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long tfstamp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void tfstamp_write(const char *path, long long start, long long end, const char *cmd)
{
    char cwd[4096], line[4400];
    if (!path || !*path)
        return;
    if (!getcwd(cwd, sizeof cwd))
        snprintf(cwd, sizeof cwd, "?");
    int n = snprintf(line, sizeof line, "%lld %lld %ld %s %s\n", start, end, (long)getpid(), cmd, cwd);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) != n)
        fprintf(stderr, "tfstamp: short write to %s\n", path);
    close(fd);
}

int main(int argc, char **argv)
{
    long long start = tfstamp_now_ns();
    const char *real = getenv("BENCH_TF_REAL");
    const char *stamps = getenv("BENCH_TF_STAMPS");
    const char *wait_mode = getenv("BENCH_TF_WAIT");
    const char *cmd = argc > 1 ? argv[1] : "-";

    if (!real || !*real)
        return 2;
    if (!wait_mode || strcmp(wait_mode, "1") != 0) {
        tfstamp_write(stamps, start, 0, cmd);
        argv[0] = (char *)real;
        execv(real, argv);
        fprintf(stderr, "tfstamp: cannot run %s: %s\n", real, strerror(errno));
        return 127;
    }
    tfstamp_write(stamps, start, 0, cmd);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "tfstamp: fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        argv[0] = (char *)real;
        execv(real, argv);
        _exit(127);
    }
    /* The agent signals the whole process group: the engine gets the signal itself; we only wait for it. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    tfstamp_write(stamps, start, tfstamp_now_ns(), cmd);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
