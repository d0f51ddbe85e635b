/*
 * cmd_send.c: `telemctl send`: line protocol from a file or stdin to telemd, in bodies of N
 * lines.
 *
 * Lines are sent exactly as read, blank lines and comments included, so that the line number in
 * telemd's 400 answer maps straight back to a line of the input: the error is printed as
 * "FILE:LINE:COLUMN: reason". Every body carries a Telem-Batch header (producer telemctl-<host>-
 * <pid>, epoch the start time), so a body resent after a lost connection or a 503 is stored once.
 * A rejected body is rejected whole (telemd stores nothing from it); sending goes on with the
 * next body and the command exits 1 at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/http_client_cli.h"
#include "core/alloc.h"
#include "core/clock.h"

#define SEND_RETRIES_MAX 30 /* attempts per body on 503 or a lost connection */

struct send_state {
    struct http_cli *http;
    const char *input_name; /* for messages: the file name, or "<stdin>" */
    const char *precision;
    const char *token;
    char target[64];
    char producer[65];
    uint64_t epoch;
    uint64_t batch_n;
    int verbose;

    /* The body being filled: raw lines, and where it starts in the input. */
    char *body;
    size_t len;
    size_t cap;
    uint64_t first_line; /* input line number of the body's first line */
    uint64_t data_lines; /* lines that are neither blank nor comments */

    uint64_t accepted;
    uint64_t rejected;
    uint64_t requests;
    bool fatal; /* stop sending: auth failure or telemd unreachable */
};

static void send_usage(FILE *out)
{
    fputs("usage: telemctl send [options] [FILE|-]\n"
          "Sends InfluxDB line protocol (from FILE, or stdin when FILE is - or absent) to\n"
          "telemd in bodies of N lines, and prints how many lines were accepted and rejected.\n"
          "A rejected body is rejected whole; its error names the input line and column.\n"
          "  --socket PATH       telemd's unix socket (default " CLI_DEFAULT_SOCKET
          " when it exists)\n"
          "  --http ADDR:PORT    telemd's TCP listener (default " CLI_DEFAULT_HTTP ")\n"
          "  --precision P       timestamp precision: ns (default), us, ms, s, or the 1.x\n"
          "                      spellings n, u, m, h\n"
          "  --batch N           lines per request (default 5000)\n"
          "  --max-body BYTES    also end a body before it grows past this (default 4194304)\n"
          "  --token-env VAR     read the token from environment variable VAR (default\n"
          "                      " CLI_TOKEN_ENV "); tokens are never taken from the command line\n"
          "  --timeout MS        wait at most this long for each answer (default 30000)\n"
          "  -v, --verbose       print each request's answer\n"
          "Exit status: 0 every line accepted, 1 a line was rejected or telemd failed, 2 usage.\n",
          out);
}

/* send_producer_name builds "telemctl-<host>-<pid>" from safe characters only. */
static void send_producer_name(char *dst, size_t cap)
{
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(dst, cap, "telemctl-%.32s-%ld", host, (long)getpid());
    for (char *p = dst; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
        if (!ok)
            *p = '_';
    }
}

/*
 * send_json_error copies the "error" string of a JSON answer into dst, undoing escapes. Falls
 * back to the whole body when it is not the JSON telemd sends.
 */
static void send_json_error(const char *body, char *dst, size_t cap)
{
    const char *p = strstr(body, "\"error\"");
    if (p)
        p = strchr(p + 7, ':');
    if (p)
        p = strchr(p, '"');
    if (!p) {
        snprintf(dst, cap, "%s", body);
        size_t n = strlen(dst);
        while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
            dst[--n] = '\0';
        return;
    }
    size_t n = 0;
    for (p++; *p && *p != '"' && n + 1 < cap; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            switch (*p) {
            case 'n':
                dst[n++] = ' ';
                break;
            case 't':
                dst[n++] = ' ';
                break;
            case 'u':
                dst[n++] = '?';
                for (int i = 0; i < 4 && p[1]; i++)
                    p++;
                break;
            default:
                dst[n++] = *p;
            }
            continue;
        }
        dst[n++] = *p;
    }
    dst[n] = '\0';
}

/* send_last_line returns the input line number of the body's last line. */
static uint64_t send_last_line(const struct send_state *s)
{
    uint64_t lines = 0;
    for (size_t i = 0; i < s->len; i++)
        if (s->body[i] == '\n')
            lines++;
    return s->first_line + (lines ? lines - 1 : 0);
}

/*
 * send_report_400 prints the server's reason with its body line number turned into the input's
 * line number: "line 3, column 17: reason" (or "line 3: reason") becomes "FILE:LINE:17: reason".
 */
static void send_report_400(struct send_state *s, const char *reason)
{
    unsigned long long line = 0, column = 0;
    int consumed = 0;
    if (sscanf(reason, "line %llu, column %llu: %n", &line, &column, &consumed) == 2 &&
        consumed > 0) {
        fprintf(stderr, "%s:%" PRIu64 ":%llu: %s\n", s->input_name,
                s->first_line + (uint64_t)line - 1, column, reason + consumed);
        return;
    }
    consumed = 0;
    if (sscanf(reason, "line %llu: %n", &line, &consumed) == 1 && consumed > 0) {
        fprintf(stderr, "%s:%" PRIu64 ": %s\n", s->input_name, s->first_line + (uint64_t)line - 1,
                reason + consumed);
        return;
    }
    fprintf(stderr, "%s: lines %" PRIu64 "-%" PRIu64 " rejected: %s\n", s->input_name,
            s->first_line, send_last_line(s), reason);
}

static void send_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* send_flush posts the body being filled (if it holds any data line) and empties it. */
static void send_flush(struct send_state *s)
{
    if (s->data_lines == 0 || s->fatal) {
        if (s->fatal)
            s->rejected += s->data_lines;
        goto done;
    }

    char batch[128];
    snprintf(batch, sizeof(batch), "%s:%" PRIu64 ":%" PRIu64, s->producer, s->epoch, ++s->batch_n);
    char auth[512];
    struct http_cli_header hdr[4];
    size_t nhdr = 0;
    hdr[nhdr++] = (struct http_cli_header){"Content-Type", "text/plain; charset=utf-8"};
    hdr[nhdr++] = (struct http_cli_header){"Telem-Batch", batch};
    if (s->token) {
        snprintf(auth, sizeof(auth), "Token %s", s->token);
        hdr[nhdr++] = (struct http_cli_header){"Authorization", auth};
    }

    for (unsigned attempt = 1;; attempt++) {
        struct http_cli_response resp;
        s->requests++;
        int rc = http_cli_request(s->http, "POST", s->target, hdr, nhdr, s->body, s->len, &resp);
        if (rc < 0) {
            /* A lost connection or a timeout may hide a stored body: resend it under the same
             * Telem-Batch header, which telemd stores once. A refused connection is retried
             * briefly, in case telemd is restarting. */
            bool maybe_sent = rc == -ECONNRESET || rc == -ETIMEDOUT;
            unsigned limit = maybe_sent ? SEND_RETRIES_MAX : 4;
            bool again = attempt < limit && rc != -ENOENT && rc != -EACCES && rc != -EPROTO;
            fprintf(stderr, "telemctl send: %s%s\n", http_cli_error(s->http),
                    again ? "; retrying" : "");
            if (!again) {
                s->rejected += s->data_lines;
                s->fatal = true;
                goto done;
            }
            send_sleep_ms(clock_backoff_ms(attempt, 100, 2000));
            continue;
        }

        if (s->verbose)
            fprintf(stderr, "telemctl send: lines %" PRIu64 "-%" PRIu64 ": HTTP %d\n",
                    s->first_line, send_last_line(s), resp.status);
        char reason[1024];
        switch (resp.status) {
        case 204:
        case 200:
            s->accepted += s->data_lines;
            break;
        case 400:
            send_json_error(resp.body, reason, sizeof(reason));
            send_report_400(s, reason);
            s->rejected += s->data_lines;
            break;
        case 401:
        case 403:
            fprintf(stderr,
                    "telemctl send: telemd answered %d: a token is needed or wrong; put it in "
                    "the environment variable %s\n",
                    resp.status, CLI_TOKEN_ENV);
            s->rejected += s->data_lines;
            s->fatal = true;
            break;
        case 413:
            fprintf(stderr,
                    "%s: lines %" PRIu64 "-%" PRIu64 " rejected: the body (%zu bytes) is over "
                    "telemd's limit; use a smaller --batch or --max-body\n",
                    s->input_name, s->first_line, send_last_line(s), s->len);
            s->rejected += s->data_lines;
            break;
        case 503:
            if (attempt < SEND_RETRIES_MAX) {
                int wait_s = resp.retry_after_s > 0 ? resp.retry_after_s : 1;
                if (wait_s > 30)
                    wait_s = 30;
                fprintf(stderr, "telemctl send: telemd is busy (503); retrying in %d s\n", wait_s);
                http_cli_response_free(&resp);
                send_sleep_ms((unsigned)wait_s * 1000);
                continue;
            }
            __attribute__((fallthrough)); /* give up on this body */
        default:
            send_json_error(resp.body, reason, sizeof(reason));
            fprintf(stderr, "%s: lines %" PRIu64 "-%" PRIu64 " rejected: telemd answered %d: %s\n",
                    s->input_name, s->first_line, send_last_line(s), resp.status, reason);
            s->rejected += s->data_lines;
        }
        http_cli_response_free(&resp);
        break;
    }

done:
    s->len = 0;
    s->data_lines = 0;
}

/* send_is_data_line tells whether a line holds a record (not blank, not a comment). */
static bool send_is_data_line(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = line[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        return c != '#';
    }
    return false;
}

static void send_append(struct send_state *s, const char *line, size_t len)
{
    bool newline = len > 0 && line[len - 1] == '\n';
    if (s->len + len + 2 > s->cap) {
        s->cap = (s->len + len + 2) * 2;
        s->body = xrealloc(s->body, s->cap);
    }
    memcpy(s->body + s->len, line, len);
    s->len += len;
    if (!newline)
        s->body[s->len++] = '\n';
}

int cmd_send(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"http", required_argument, NULL, 'H'},
        {"precision", required_argument, NULL, 'p'},
        {"batch", required_argument, NULL, 'b'},
        {"max-body", required_argument, NULL, 'm'},
        {"token-env", required_argument, NULL, 'T'},
        {"timeout", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *socket_flag = NULL, *http_flag = NULL, *token_env = NULL;
    const char *precision = "ns";
    uint64_t batch = 5000, max_body = 4u << 20, timeout_ms = 30000;
    int verbose = 0;

    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            socket_flag = optarg;
            break;
        case 'H':
            http_flag = optarg;
            break;
        case 'p':
            precision = optarg;
            break;
        case 'b':
            if (cli_parse_u64("send", "--batch", optarg, 1, 10000000, &batch) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'm':
            if (cli_parse_u64("send", "--max-body", optarg, 1, 1u << 30, &max_body) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'T':
            token_env = optarg;
            break;
        case 't':
            if (cli_parse_u64("send", "--timeout", optarg, 1, 3600000, &timeout_ms) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            send_usage(stdout);
            return CLI_EXIT_OK;
        default:
            send_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    static const char *const precisions[] = {"ns", "us", "ms", "s", "n", "u", "m", "h"};
    bool precision_ok = false;
    for (size_t i = 0; i < sizeof(precisions) / sizeof(precisions[0]); i++)
        precision_ok |= strcmp(precision, precisions[i]) == 0;
    if (!precision_ok) {
        fprintf(stderr,
                "telemctl send: --precision: expected ns, us, ms, s, n, u, m or h, got "
                "'%s'\n",
                precision);
        return CLI_EXIT_USAGE;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "telemctl send: one input at most (got %d)\n", argc - optind);
        send_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *socket_path, *http_addr;
    if (cli_endpoint(socket_flag, http_flag, &socket_path, &http_addr) < 0) {
        fprintf(stderr, "telemctl send: give --socket or --http, not both\n");
        return CLI_EXIT_USAGE;
    }

    const char *path = optind < argc ? argv[optind] : "-";
    FILE *in = stdin;
    if (strcmp(path, "-") != 0) {
        in = fopen(path, "r");
        if (!in) {
            fprintf(stderr, "telemctl send: %s: %s\n", path, strerror(errno));
            return CLI_EXIT_FAIL;
        }
    }

    char err[256];
    struct send_state s = {0};
    s.http = http_cli_create(socket_path, http_addr, (unsigned)timeout_ms, err, sizeof(err));
    if (!s.http) {
        fprintf(stderr, "telemctl send: %s\n", err);
        if (in != stdin)
            fclose(in);
        return CLI_EXIT_USAGE;
    }
    s.input_name = in == stdin ? "<stdin>" : path;
    s.precision = precision;
    s.token = cli_token(token_env);
    s.verbose = verbose;
    snprintf(s.target, sizeof(s.target), "/write?precision=%s", precision);
    send_producer_name(s.producer, sizeof(s.producer));
    s.epoch = (uint64_t)clock_wall_ns();

    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    int status = CLI_EXIT_OK;
    while ((n = getline(&line, &line_cap, in)) >= 0) {
        lineno++;
        bool data = send_is_data_line(line, (size_t)n);
        if (data && s.data_lines > 0 && (s.data_lines >= batch || s.len + (size_t)n + 1 > max_body))
            send_flush(&s);
        if (s.len == 0)
            s.first_line = lineno;
        send_append(&s, line, (size_t)n);
        s.data_lines += data;
    }
    if (ferror(in)) {
        fprintf(stderr, "telemctl send: %s: read error after line %" PRIu64 ": %s\n", s.input_name,
                lineno, strerror(errno));
        status = CLI_EXIT_FAIL;
    }
    send_flush(&s);

    printf("accepted %" PRIu64 " lines, rejected %" PRIu64 " lines (%" PRIu64 " requests to %s)\n",
           s.accepted, s.rejected, s.requests, http_cli_endpoint(s.http));
    if (s.rejected > 0)
        status = CLI_EXIT_FAIL;

    free(line);
    free(s.body);
    http_cli_destroy(s.http);
    if (in != stdin)
        fclose(in);
    return status;
}
