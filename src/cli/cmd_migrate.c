/*
 * cmd_migrate.c: `telemctl migrate`: create a store's tables, or bring them to the schema
 * version this build knows, before telemd first writes to it (telemd's sink also migrates on
 * start; doing it ahead lets an operator check permissions and the result by hand).
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/query_backend.h"

static void migrate_usage(FILE *out)
{
    fputs("usage: telemctl migrate [--db URL]\n"
          "Creates or upgrades the store's schema (tables, indexes, the schema version row).\n"
          "  --db URL            the store: sqlite:PATH (default " CLI_DEFAULT_DB ")\n"
          "A missing SQLite file is created.\n",
          out);
}

int cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = CLI_DEFAULT_DB;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'h':
            migrate_usage(stdout);
            return CLI_EXIT_OK;
        default:
            migrate_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "telemctl migrate: unexpected argument '%s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    const struct query_backend_ops *be = query_backend_for_url(db);
    if (!be || !be->migrate) {
        fprintf(stderr,
                "telemctl migrate: --db %s: cannot migrate this store (this build "
                "knows: %s)\n",
                db, query_backend_schemes());
        return CLI_EXIT_USAGE;
    }
    char err[512] = "";
    void *state = NULL;
    if (be->open(db, true, &state, err, sizeof(err)) < 0) {
        fprintf(stderr, "telemctl migrate: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    int from = 0, to = 0;
    int status = CLI_EXIT_OK;
    if (be->migrate(state, &from, &to, err, sizeof(err)) < 0) {
        fprintf(stderr, "telemctl migrate: %s\n", err);
        status = CLI_EXIT_FAIL;
    } else if (from == to) {
        printf("%s: schema is at version %d, nothing to do\n", db, to);
    } else {
        printf("%s: schema migrated from version %d to %d\n", db, from, to);
    }
    be->close(state);
    return status;
}
