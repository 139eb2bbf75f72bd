/* main.c — iac-agent: wires the configuration, the logger, the loop and the agent together.
 *
 * Exit status: 0 after a clean shutdown, 1 when the agent cannot start (data directory, status port), 2 on bad
 * configuration, 3 when the control plane rejects the pool token for good. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent.h"
#include "cli.h"
#include "iac/config.h"
#include "iac/log.h"
#include "options.h"

extern char **environ;

/* `iac-agent status [--listen host:port]`: only the status address matters, so it has its own small table. */
static int main_status(int argc, char **argv)
{
    char host[CFG_HOST_MAX] = "127.0.0.1";
    int64_t port = 9180;
    const cfg_option table[] = {
        { "IAC_AGENT_LISTEN", "listen", CFG_HOSTPORT, host, &port, "127.0.0.1:9180", 1, 65535, NULL,
          "listen address", "the agent's status server address host:port", false, false },
    };
    char err[512];
    int rc = cfg_parse(table, 1, argc, argv, environ, NULL, NULL, err, sizeof err);
    if (rc == CFG_HELP) {
        printf("Usage: iac-agent status [--listen host:port]\n\nPrints a running agent's slot table.\n\n");
        cfg_print_help(stdout, table, 1);
        return 0;
    }
    if (rc != CFG_OK) {
        fprintf(stderr, "iac-agent status: %s\n", rc == CFG_VERSION ? "--version is not a status option" : err);
        return 2;
    }
    return cli_status(host, (int)port, stdout);
}

/* Standard descriptors the agent was started without are opened on /dev/null first, so that nothing it opens
 * later (a file, a socket) takes 0, 1 or 2: proc.c hands the engine its stdout and stderr with dup2 onto 1 and 2
 * after opening /dev/null onto 0, which would clobber a descriptor of ours sitting there. */
static void main_open_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY); /* the lowest free number: fd itself */
}

int main(int argc, char **argv)
{
    main_open_std_fds();
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return main_status(argc - 1, argv + 1);
    agent_options opt;
    char err[1024];
    int rc = agent_options_parse(&opt, argc, argv, environ, err, sizeof err);
    if (rc == AGENT_OPTIONS_HELP) {
        agent_options_print_help(stdout);
        agent_options_free(&opt);
        return 0;
    }
    if (rc == AGENT_OPTIONS_VERSION) {
        printf("iac-agent %s\n", IAC_VERSION);
        agent_options_free(&opt);
        return 0;
    }
    if (rc != AGENT_OPTIONS_OK) {
        fprintf(stderr, "iac-agent: %s\n", err);
        agent_options_free(&opt);
        return 2;
    }
    log_setup((log_level)opt.log_level, (log_format)opt.log_format);
    log_secret_add(opt.token);
    signal(SIGPIPE, SIG_IGN); /* a peer closing a socket must be an error value, not a signal */

    uv_loop_t loop;
    uv_loop_init(&loop);
    agent a;
    int status = 1;
    if (agent_init(&a, &loop, &opt, err, sizeof err) < 0) {
        fprintf(stderr, "iac-agent: %s\n", err);
    } else if (agent_start(&a, err, sizeof err) < 0) {
        fprintf(stderr, "iac-agent: %s\n", err);
        uv_run(&loop, UV_RUN_DEFAULT);
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
        status = a.exit_code;
    }
    agent_dispose(&a);
    /* libuv closes handles asynchronously: run until every one is closed. */
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_debug("main", "loop closed with handles still open");
    agent_options_free(&opt);
    return status;
}
