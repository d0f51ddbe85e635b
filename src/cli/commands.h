/*
 * commands.h: the entry points of telemctl's commands, one file each (cmd_<name>.c).
 *
 * Each takes the command's own argument vector (argv[0] is the command name, e.g. "send") and
 * returns the process exit status (enum cli_exit): 0 done, 1 the work failed, 2 bad usage.
 * Each prints its own --help.
 */
#ifndef TELEM_CLI_COMMANDS_H
#define TELEM_CLI_COMMANDS_H

/* cmd_send: `telemctl send`: line protocol from a file or stdin to telemd. */
int cmd_send(int argc, char **argv);

/* cmd_query: `telemctl query trades|metrics`: rows from a store. */
int cmd_query(int argc, char **argv);

/* cmd_report: `telemctl report`: per-profile performance from a store. */
int cmd_report(int argc, char **argv);

/* cmd_status: `telemctl status`: telemd's /health and the key /metrics lines. */
int cmd_status(int argc, char **argv);

/* cmd_spool: `telemctl spool inspect DIR`: what a spool folder holds, frame by frame. */
int cmd_spool(int argc, char **argv);

/* cmd_migrate: `telemctl migrate`: create or upgrade a store's schema. */
int cmd_migrate(int argc, char **argv);

/* cmd_loadgen: `telemctl loadgen`: many concurrent senders (the engine is loadgen.h). */
int cmd_loadgen(int argc, char **argv);

/* cmd_redis: `telemctl redis rebuild`: recompute Redis live state from the SQL store. */
int cmd_redis(int argc, char **argv);

#endif
