/*
 * main.c: telemd's entry point: read the configuration (defaults, --config file, environment,
 * flags), answer --help, --version and --check-config, open the log, and run the daemon.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>

#include "core/log.h"
#include "daemon/telemd.h"
#include "daemon/telemd_conf.h"

int main(int argc, char **argv)
{
    /* A client that hangs up must cost us an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    /*
     * Request bodies come and go in 100 KB+ buffers. Keep freed memory in the heap instead of
     * giving it back with brk and faulting it in again for the next request, which cost a
     * third of the event thread (page faults and TLB shootdowns) at a thousand requests a
     * second. Only buffers over 64 MiB are mapped and unmapped on their own.
     */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);

    struct telemd_conf conf;
    int rc = telemd_conf_load(&conf, argc, argv);
    int status = TELEMD_EXIT_OK;
    if (conf.want_help) {
        telemd_conf_help(stdout);
        goto done;
    }
    if (conf.want_version) {
        printf("telemd %s\n", TELEM_VERSION);
        goto done;
    }
    if (rc == 0 && conf.check_config)
        rc = telemd_check_config(&conf);
    if (rc < 0) {
        telemd_conf_print_errors(&conf, stderr);
        status = TELEMD_EXIT_CONFIG;
        goto done;
    }
    if (conf.check_config) {
        for (size_t i = 0; i < conf.nwarnings; i++)
            fprintf(stderr, "warning: %s\n", conf.warnings[i]);
        printf("config OK\n");
        goto done;
    }

    log_level_current = conf.s.log_level;
    rc = log_open(conf.s.log_file);
    if (rc < 0) {
        fprintf(stderr, "telemd: log_file %s: cannot open it\n", conf.s.log_file);
        status = TELEMD_EXIT_FAILURE;
        goto done;
    }
    status = telemd_run(&conf);
done:
    telemd_conf_free(&conf);
    return status;
}
