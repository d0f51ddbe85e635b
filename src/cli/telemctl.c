/*
 * telemctl.c: the `telemctl` program: finds the command named by the first argument and runs
 * it (commands.h). Everything else lives in cli_lib so the commands' parts can be unit-tested.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"

struct telemctl_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct telemctl_command telemctl_commands[] = {
    {"send", cmd_send, "send line protocol from a file or stdin to telemd"},
    {"query", cmd_query, "print stored trades or metrics (query trades|metrics)"},
    {"report", cmd_report, "per-profile performance: win rate, pnl, profit factor, drawdown"},
    {"status", cmd_status, "telemd's health and key metrics"},
    {"spool", cmd_spool, "inspect a spool folder (spool inspect DIR)"},
    {"migrate", cmd_migrate, "create or upgrade a store's schema"},
    {"loadgen", cmd_loadgen, "generate load: many concurrent senders"},
    {"redis", cmd_redis, "rebuild Redis live state from the SQL store (redis rebuild)"},
};

#define TELEMCTL_NCOMMANDS (sizeof(telemctl_commands) / sizeof(telemctl_commands[0]))

static void telemctl_usage(FILE *out)
{
    fputs("usage: telemctl COMMAND [options]\n"
          "Talks to telemd and reads its stores.\n\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < TELEMCTL_NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", telemctl_commands[i].name, telemctl_commands[i].summary);
    fputs("\n`telemctl COMMAND --help` describes a command's options.\n"
          "Exit status: 0 done, 1 the work failed, 2 bad usage.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        telemctl_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        telemctl_usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < TELEMCTL_NCOMMANDS; i++)
        if (strcmp(name, telemctl_commands[i].name) == 0)
            return telemctl_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "telemctl: unknown command '%s'\n\n", name);
    telemctl_usage(stderr);
    return CLI_EXIT_USAGE;
}
