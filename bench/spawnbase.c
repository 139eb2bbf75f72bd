/* spawnbase.c — the baseline of row 3: a bare libuv program that spawns the engine, one run after another.
 *
 * Row 3 measures how long the agent takes from the control plane's run_task to the engine's first exec. The part
 * of that no agent can avoid is the spawn itself (fork/exec by libuv, the engine's libc start), so this program
 * does only that, the way the agent does it: uv_spawn on a libuv loop, the same wrapper binary (bench/tfstamp.c),
 * the same stamp file. The latency of one run is tfstamp's timestamp minus the wall clock read just before
 * uv_spawn.
 *
 *   spawnbase RUNS TFSTAMP REAL_ENGINE STAMP_FILE WORK_DIR
 *
 * Prints one line per run, "S dispatch.base_us <microseconds>", for run.sh to aggregate. Exit 1 on any failure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

typedef struct {
    uv_loop_t   *loop;
    uv_process_t proc;
    const char  *tfstamp, *stamps, *workdir;
    char        *env[4];
    int          runs, done;
    long long    t0;
    int          failed;
} spawnbase;

static long long spawnbase_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The start time of the last line of the stamp file, or -1. */
static long long spawnbase_last_stamp(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4400];
    long long last = -1, start;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lld", &start) == 1)
            last = start;
    fclose(f);
    return last;
}

static void spawnbase_next(spawnbase *b);

static void spawnbase_closed(uv_handle_t *h)
{
    spawnbase *b = h->data;
    if (!b->failed && b->done < b->runs)
        spawnbase_next(b);
}

static void spawnbase_exited(uv_process_t *p, int64_t status, int sig)
{
    spawnbase *b = p->data;
    long long stamp = spawnbase_last_stamp(b->stamps);
    if (status != 0 || sig != 0 || stamp < b->t0) {
        fprintf(stderr, "spawnbase: run %d: exit %lld signal %d, stamp %s\n", b->done + 1, (long long)status, sig,
                stamp < b->t0 ? "missing" : "ok");
        b->failed = 1;
    } else {
        printf("S dispatch.base_us %.1f\n", (double)(stamp - b->t0) / 1000.0);
        b->done++;
    }
    uv_close((uv_handle_t *)p, spawnbase_closed);
}

static void spawnbase_next(spawnbase *b)
{
    char *args[] = { (char *)b->tfstamp, "version", NULL };
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = b->tfstamp;
    o.args = args;
    o.env = b->env;
    o.cwd = b->workdir;
    o.exit_cb = spawnbase_exited;
    o.flags = UV_PROCESS_DETACHED; /* its own process group, as the agent runs an engine */
    uv_stdio_container_t io[3] = { { .flags = UV_IGNORE }, { .flags = UV_IGNORE }, { .flags = UV_INHERIT_FD,
                                                                                      .data.fd = 2 } };
    o.stdio = io;
    o.stdio_count = 3;
    b->proc.data = b;
    b->t0 = spawnbase_now_ns();
    int rc = uv_spawn(b->loop, &b->proc, &o);
    if (rc < 0) {
        fprintf(stderr, "spawnbase: cannot spawn %s: %s\n", b->tfstamp, uv_strerror(rc));
        b->failed = 1;
        uv_close((uv_handle_t *)&b->proc, NULL);
    }
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: spawnbase RUNS TFSTAMP REAL_ENGINE STAMP_FILE WORK_DIR\n");
        return 2;
    }
    spawnbase b;
    memset(&b, 0, sizeof b);
    b.runs = atoi(argv[1]);
    b.tfstamp = argv[2];
    b.stamps = argv[4];
    b.workdir = argv[5];
    char real[4200], stamps[4200];
    snprintf(real, sizeof real, "BENCH_TF_REAL=%s", argv[3]);
    snprintf(stamps, sizeof stamps, "BENCH_TF_STAMPS=%s", argv[4]);
    b.env[0] = real;
    b.env[1] = stamps;
    b.env[2] = "PATH=/usr/local/bin:/usr/bin:/bin";
    b.env[3] = NULL;
    if (b.runs < 1) {
        fprintf(stderr, "spawnbase: RUNS must be at least 1\n");
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    b.loop = &loop;
    setvbuf(stdout, NULL, _IOLBF, 0);
    spawnbase_next(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return b.failed ? 1 : 0;
}
