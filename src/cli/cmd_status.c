/*
 * cmd_status.c: `telemctl status`: is telemd up, are its sinks healthy, how far behind are they.
 *
 * It asks /health (200 healthy, 503 not, a JSON reason per sink) and prints that answer, then
 * the /metrics samples an operator looks at first: records accepted and rejected, spool size,
 * and per-sink rows, lag, oldest unsent age, retries and errors. `--all` prints every sample.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/http_client_cli.h"

static void status_usage(FILE *out)
{
    fputs("usage: telemctl status [options]\n"
          "Prints telemd's /health answer and its key /metrics samples.\n"
          "  --socket PATH       telemd's unix socket (default " CLI_DEFAULT_SOCKET
          " when it exists)\n"
          "  --http ADDR:PORT    telemd's TCP listener (default " CLI_DEFAULT_HTTP ")\n"
          "  --all               print every /metrics sample, not just the key ones\n"
          "  --timeout MS        wait at most this long for each answer (default 5000)\n"
          "The token, if telemd wants one, comes from the environment variable " CLI_TOKEN_ENV ".\n"
          "Exit status: 0 healthy, 1 unhealthy or unreachable, 2 usage.\n",
          out);
}

/* status_key_sample tells whether a /metrics sample belongs to a family the summary shows. */
static bool status_key_sample(const char *line, size_t len)
{
    static const char *const families[] = {
        "telem_ingest_records_total",
        "telem_http_connections",
        "telem_http_pending_requests",
        "telem_udp_datagrams_total",
        "telem_spool_bytes",
        "telem_spool_max_bytes",
        "telem_spool_corrupt_frames_total",
        "telem_spool_oldest_unsent_seconds",
        "telem_sink_up",
        "telem_sink_rows_total",
        "telem_sink_lag_records",
        "telem_sink_oldest_unsent_seconds",
        "telem_sink_retries_total",
        "telem_sink_errors_total",
        "telem_sink_quarantined_total",
    };
    size_t name_len = strcspn(line, "{ ");
    if (name_len > len)
        name_len = len;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        if (strlen(families[i]) == name_len && memcmp(line, families[i], name_len) == 0)
            return true;
    return false;
}

static void status_print_metrics(const char *body, bool all)
{
    const char *p = body;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0 && p[0] != '#' && (all || status_key_sample(p, len)))
            printf("  %.*s\n", (int)len, p);
        p += len + (nl ? 1 : 0);
    }
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'}, {"http", required_argument, NULL, 'H'},
        {"all", no_argument, NULL, 'a'},          {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *socket_flag = NULL, *http_flag = NULL;
    bool all = false;
    uint64_t timeout_ms = 5000;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            socket_flag = optarg;
            break;
        case 'H':
            http_flag = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 't':
            if (cli_parse_u64("status", "--timeout", optarg, 1, 3600000, &timeout_ms) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            status_usage(stdout);
            return CLI_EXIT_OK;
        default:
            status_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "telemctl status: unexpected argument '%s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    const char *socket_path, *http_addr;
    if (cli_endpoint(socket_flag, http_flag, &socket_path, &http_addr) < 0) {
        fprintf(stderr, "telemctl status: give --socket or --http, not both\n");
        return CLI_EXIT_USAGE;
    }
    char err[256];
    struct http_cli *http =
        http_cli_create(socket_path, http_addr, (unsigned)timeout_ms, err, sizeof(err));
    if (!http) {
        fprintf(stderr, "telemctl status: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    const char *token = cli_token(NULL);
    char auth[512];
    struct http_cli_header hdr[1];
    size_t nhdr = 0;
    if (token) {
        snprintf(auth, sizeof(auth), "Token %s", token);
        hdr[nhdr++] = (struct http_cli_header){"Authorization", auth};
    }

    int status = CLI_EXIT_FAIL;
    struct http_cli_response resp;
    if (http_cli_request(http, "GET", "/health", hdr, nhdr, NULL, 0, &resp) < 0) {
        fprintf(stderr, "telemctl status: telemd is not reachable: %s\n", http_cli_error(http));
        goto done;
    }
    printf("telemd at %s: %s (HTTP %d)\n", http_cli_endpoint(http),
           resp.status == 200 ? "healthy" : "UNHEALTHY", resp.status);
    printf("health: %s%s", resp.body,
           resp.body_len && resp.body[resp.body_len - 1] == '\n' ? "" : "\n");
    status = resp.status == 200 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    http_cli_response_free(&resp);

    if (http_cli_request(http, "GET", "/metrics", hdr, nhdr, NULL, 0, &resp) < 0) {
        fprintf(stderr, "telemctl status: /metrics: %s\n", http_cli_error(http));
        status = CLI_EXIT_FAIL;
        goto done;
    }
    if (resp.status != 200) {
        fprintf(stderr, "telemctl status: /metrics answered HTTP %d%s\n", resp.status,
                resp.status == 401 ? " (set " CLI_TOKEN_ENV ")" : "");
        status = CLI_EXIT_FAIL;
    } else {
        printf("metrics:\n");
        status_print_metrics(resp.body, all);
    }
    http_cli_response_free(&resp);

done:
    http_cli_destroy(http);
    return status;
}
