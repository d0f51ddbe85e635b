/*
 * telemd.h: the daemon's life: take the data folder's lock, open the spool, start a worker per
 * sink, listen, print the ready line, run the event loop, and on SIGTERM or SIGINT drain
 * (stop accepting, answer what waits for durability, let the sinks catch up, close the spool)
 * and exit 0. Everything but main() lives here so that tests can link it.
 */
#ifndef TELEM_DAEMON_TELEMD_H
#define TELEM_DAEMON_TELEMD_H

#include "daemon/telemd_conf.h"

/* Exit statuses of telemd. */
enum telemd_exit {
    TELEMD_EXIT_OK = 0,
    TELEMD_EXIT_FAILURE = 1, /* could not start, or a store's cursor is ahead of the spool */
    TELEMD_EXIT_CONFIG = 2,  /* the configuration is wrong (errors printed as file:line) */
};

/*
 * telemd_check_config creates and destroys every sink's state (create() does no I/O), so that
 * a sink's own settings are checked too. Errors ("file:line: key: reason") are added to c.
 * Returns 0 or -EINVAL.
 */
int telemd_check_config(struct telemd_conf *c);

/*
 * telemd_run runs the daemon with the finished configuration c until it is told to stop.
 * Borrows c. Prints "telemd: listening on ..." to stdout once ready. Returns an enum
 * telemd_exit value.
 */
int telemd_run(const struct telemd_conf *c);

#endif
