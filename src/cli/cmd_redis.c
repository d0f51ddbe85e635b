/*
 * cmd_redis.c: `telemctl redis rebuild`: recompute Redis's live per-profile state from the SQL
 * store, so Redis can be flushed or replaced at any time (docs/redis.md). It runs the same
 * rebuild the Redis sink runs by itself when it finds its state lost (redis_rebuild.h): a
 * running telemd pauses its Redis writes while the rebuild holds the marker and adopts the
 * result afterwards. Passwords come from the environment, never from the command line.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "sink/redis/redis_rebuild.h"

#define REDIS_PASSWORD_ENV "TELEM_REDIS_PASSWORD"
#define DB_PASSWORD_ENV    "TELEM_DB_PASSWORD"

static void redis_usage(FILE *out)
{
    fputs("usage: telemctl redis rebuild [options]\n"
          "Recomputes Redis's live per-profile state (totals, latest metrics, trade streams)\n"
          "from the SQL store, replacing everything under the key prefix.\n"
          "  --redis URL             redis://[:password@]host:port/db or redis:///path.sock?db=N\n"
          "                          (default redis://127.0.0.1:6379/0)\n"
          "  --db URL                the SQL store: sqlite:PATH or mariadb://user@host/db\n"
          "                          (default " CLI_DEFAULT_DB ")\n"
          "  --prefix P              key prefix, as the sink's `prefix` (default telem:)\n"
          "  --spool HEX             the spool to rebuild (32 hex digits); needed only when the\n"
          "                          store holds several\n"
          "  --starting-equity X     as the sink's `starting_equity` (default 0)\n"
          "  --stream-maxlen N       as the sink's `stream_maxlen` (default 1000)\n"
          "  --wait-ms N             how long to wait for the SQL store to reach the cursors\n"
          "                          Redis already has (default 60000)\n"
          "  --quiet                 no progress lines\n"
          "Passwords: " REDIS_PASSWORD_ENV " (Redis, overrides the URL's), " DB_PASSWORD_ENV
          " (MariaDB).\n"
          "Exit status: 0 rebuilt, 1 failed, 2 bad usage.\n",
          out);
}

static int parse_spool_hex(const char *text, uint8_t *id)
{
    if (strlen(text) != 2 * REDIS_REBUILD_SPOOL_ID_SIZE)
        return -1;
    for (int i = 0; i < REDIS_REBUILD_SPOOL_ID_SIZE; i++) {
        unsigned v;
        if (sscanf(text + 2 * i, "%2x", &v) != 1)
            return -1;
        id[i] = (uint8_t)v;
    }
    return 0;
}

struct rebuild_progress {
    bool quiet;
    int64_t last_ns;
};

static void print_progress(void *ctx, uint64_t rows, uint64_t seq)
{
    struct rebuild_progress *p = ctx;
    int64_t now = clock_mono_ns();
    if (p->quiet || now - p->last_ns < 1000000000)
        return;
    p->last_ns = now;
    fprintf(stderr, "telemctl redis rebuild: %llu rows, up to seq %llu\n", (unsigned long long)rows,
            (unsigned long long)seq);
}

static int redis_rebuild_command(int argc, char **argv)
{
    static const struct option opts[] = {
        {"redis", required_argument, NULL, 'r'},
        {"db", required_argument, NULL, 'd'},
        {"prefix", required_argument, NULL, 'p'},
        {"spool", required_argument, NULL, 's'},
        {"starting-equity", required_argument, NULL, 'e'},
        {"stream-maxlen", required_argument, NULL, 'm'},
        {"wait-ms", required_argument, NULL, 'w'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *redis_url = "redis://127.0.0.1:6379/0";
    uint8_t spool[REDIS_REBUILD_SPOOL_ID_SIZE];
    uint64_t maxlen = 1000, wait_ms = 60000;
    struct rebuild_progress progress = {0};
    struct redis_rebuild_options opt = {
        .prefix = "telem:",
        .sql_url = CLI_DEFAULT_DB,
        .progress = print_progress,
        .progress_ctx = &progress,
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'r':
            redis_url = optarg;
            break;
        case 'd':
            opt.sql_url = optarg;
            break;
        case 'p':
            opt.prefix = optarg;
            break;
        case 's':
            if (parse_spool_hex(optarg, spool) < 0) {
                fprintf(stderr, "telemctl redis rebuild: --spool: expected 32 hex digits\n");
                return CLI_EXIT_USAGE;
            }
            opt.spool_id = spool;
            break;
        case 'e':
            opt.starting_equity = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0') {
                fprintf(stderr, "telemctl redis rebuild: --starting-equity: expected a number\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'm':
            if (cli_parse_u64("redis rebuild", "--stream-maxlen", optarg, 0, 1000000000, &maxlen) <
                0)
                return CLI_EXIT_USAGE;
            break;
        case 'w':
            if (cli_parse_u64("redis rebuild", "--wait-ms", optarg, 0, 86400000, &wait_ms) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'q':
            progress.quiet = true;
            break;
        case 'h':
            redis_usage(stdout);
            return CLI_EXIT_OK;
        default:
            redis_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "telemctl redis rebuild: unexpected argument '%s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    opt.stream_maxlen = (int64_t)maxlen;
    opt.wait_ms = (unsigned)wait_ms;
    const char *db_password = getenv(DB_PASSWORD_ENV);
    opt.sql_password = db_password && *db_password ? db_password : NULL;
    const char *password = getenv(REDIS_PASSWORD_ENV);
    if (password && !*password)
        password = NULL;

    struct redis_rebuild_result res;
    char err[512] = "";
    int rc = redis_rebuild_run(redis_url, password, &opt, &res, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "telemctl redis rebuild: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    char hex[2 * REDIS_REBUILD_SPOOL_ID_SIZE + 1];
    redis_rebuild_spool_hex(res.spool_id, hex);
    printf("rebuilt spool %s up to seq %llu: %llu trades, %llu metrics in %.1f s\n", hex,
           (unsigned long long)res.cursor, (unsigned long long)res.trades,
           (unsigned long long)res.metrics, res.seconds);
    return CLI_EXIT_OK;
}

int cmd_redis(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        redis_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "rebuild") == 0)
        return redis_rebuild_command(argc - 1, argv + 1);
    fprintf(stderr, "telemctl redis: unknown subcommand '%s' (expected rebuild)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
