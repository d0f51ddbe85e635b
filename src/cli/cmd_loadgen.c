/*
 * cmd_loadgen.c: `telemctl loadgen`: flags, the run, the summary (text or one JSON object), and
 * the optional check that the store holds exactly what was acknowledged.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/loadgen.h"
#include "cli/loadgen_verify.h"
#include "core/clock.h"
#include "core/fdlimit.h"

static void loadgen_usage(FILE *out)
{
    fputs("usage: telemctl loadgen [options]\n"
          "Simulates PROFILES x SCRIPTS senders, each with its own connection to telemd.\n"
          "  --profiles N        profiles (default 100)\n"
          "  --scripts N         scripts per profile (default 3)\n"
          "  --socket PATH       telemd's unix socket (default ./telem-data/telemd.sock)\n"
          "  --http HOST:PORT    telemd's TCP address instead of the socket\n"
          "  --trade-share F     fraction of lines that are trades, 0..1 (default 0.5)\n"
          "  --trade-ids         trades carry a trade_id, unique per profile (default: none)\n"
          "  --rate N            target records/s over all senders (default: as fast as possible)\n"
          "  --duration S        seconds to send for (default 10 unless --records is given)\n"
          "  --records N         records to send in all (whole batches)\n"
          "  --batch N           lines per request (default 1000)\n"
          "  --prefix TEXT       profile name prefix (default lg-<random>-)\n"
          "  --verify URL        afterwards check the store (sqlite:PATH or mariadb://...) holds\n"
          "                      exactly the acknowledged records per profile\n"
          "  --settle S          with --verify: give up when counts stop moving this long (30)\n"
          "  --json              print the summary as one JSON object on stdout\n"
          "  --quiet             no progress lines\n"
          "The token, if telemd wants one, comes from the environment variable TELEM_TOKEN.\n",
          out);
}

static int parse_uint(const char *flag, const char *text, unsigned long long max,
                      unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v > max) {
        fprintf(stderr, "telemctl loadgen: %s: expected a whole number up to %llu, got '%s'\n",
                flag, max, text);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *flag, const char *text, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "telemctl loadgen: %s: expected a number from %g to %g, got '%s'\n", flag,
                lo, hi, text);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static void print_text(const struct loadgen_options *opt, const struct loadgen_summary *s,
                       const struct loadgen_verify_result *v, const char *verify_url)
{
    double rate = s->elapsed_s > 0 ? (double)s->acked_records / s->elapsed_s : 0;
    printf("senders          %u (%u profiles x %u scripts), batch %u lines\n",
           opt->profiles * opt->scripts, opt->profiles, opt->scripts, opt->batch);
    printf("sent             %llu records in %llu requests (%llu retries, %llu reconnects, "
           "%llu failed connects)\n",
           (unsigned long long)s->sent_records, (unsigned long long)s->sent_requests,
           (unsigned long long)s->retries, (unsigned long long)s->reconnects,
           (unsigned long long)s->connect_failures);
    printf("acked            %llu records in %.2f s: %.0f records/s\n",
           (unsigned long long)s->acked_records, s->elapsed_s, rate);
    printf("rejected         %llu records; unfinished batches %llu%s\n",
           (unsigned long long)s->rejected_records, (unsigned long long)s->unfinished,
           s->interrupted ? " (interrupted)" : "");
    printf("ack latency ms   p50 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
           latency_hist_percentile(&s->ack, 0.50) / 1000.0,
           latency_hist_percentile(&s->ack, 0.99) / 1000.0,
           latency_hist_percentile(&s->ack, 0.999) / 1000.0, s->ack.max_us / 1000.0);
    if (s->first_error[0])
        printf("first error      %s\n", s->first_error);
    if (verify_url)
        printf("verify           %s: %llu rows stored, %llu acknowledged (%u profiles short, %u "
               "over; waited %.1f s)%s%s\n",
               v->exact ? "exact" : "MISMATCH", (unsigned long long)v->stored,
               (unsigned long long)v->expected, v->missing, v->extra, v->wait_s,
               v->detail[0] ? ": " : "", v->detail);
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_json(const struct loadgen_options *opt, const struct loadgen_summary *s,
                       const struct loadgen_verify_result *v, const char *verify_url)
{
    double rate = s->elapsed_s > 0 ? (double)s->acked_records / s->elapsed_s : 0;
    printf("{\"profiles\":%u,\"scripts\":%u,\"batch\":%u,\"sent\":%llu,\"acked\":%llu,"
           "\"rejected\":%llu,\"requests\":%llu,\"retries\":%llu,\"reconnects\":%llu,"
           "\"connect_failures\":%llu,\"unfinished\":%llu,\"interrupted\":%s,"
           "\"elapsed_s\":%.3f,\"records_per_s\":%.0f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,"
           "\"ack_p999_ms\":%.3f,\"ack_max_ms\":%.3f,\"prefix\":",
           opt->profiles, opt->scripts, opt->batch, (unsigned long long)s->sent_records,
           (unsigned long long)s->acked_records, (unsigned long long)s->rejected_records,
           (unsigned long long)s->sent_requests, (unsigned long long)s->retries,
           (unsigned long long)s->reconnects, (unsigned long long)s->connect_failures,
           (unsigned long long)s->unfinished, s->interrupted ? "true" : "false", s->elapsed_s, rate,
           latency_hist_percentile(&s->ack, 0.50) / 1000.0,
           latency_hist_percentile(&s->ack, 0.99) / 1000.0,
           latency_hist_percentile(&s->ack, 0.999) / 1000.0, s->ack.max_us / 1000.0);
    print_json_string(opt->prefix);
    printf(",\"first_error\":");
    print_json_string(s->first_error);
    if (verify_url) {
        printf(",\"verified\":%s,\"stored\":%llu,\"verify_wait_s\":%.1f,\"verify_detail\":",
               v->exact ? "true" : "false", (unsigned long long)v->stored, v->wait_s);
        print_json_string(v->detail);
    } else {
        printf(",\"verified\":null");
    }
    printf("}\n");
}

int cmd_loadgen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"profiles", required_argument, NULL, 'p'},
        {"scripts", required_argument, NULL, 's'},
        {"socket", required_argument, NULL, 'S'},
        {"http", required_argument, NULL, 'H'},
        {"trade-share", required_argument, NULL, 't'},
        {"trade-ids", no_argument, NULL, 'T'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"records", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"prefix", required_argument, NULL, 'x'},
        {"verify", required_argument, NULL, 'v'},
        {"settle", required_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct loadgen_options opt = {
        .profiles = 100,
        .scripts = 3,
        .socket_path = "./telem-data/telemd.sock",
        .trade_share = 0.5,
        .batch = 1000,
    };
    const char *verify_url = NULL;
    double settle = 30;
    bool json = false;
    unsigned long long v;
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "lg-%06llx-",
             (unsigned long long)(clock_wall_ns() / 1000) & 0xffffffull);
    opt.prefix = prefix;

    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'p':
            rc = parse_uint("--profiles", optarg, 100000, &v);
            opt.profiles = (unsigned)v;
            break;
        case 's':
            rc = parse_uint("--scripts", optarg, 100, &v);
            opt.scripts = (unsigned)v;
            break;
        case 'S':
            opt.socket_path = optarg;
            opt.http_addr = NULL;
            break;
        case 'H':
            opt.http_addr = optarg;
            opt.socket_path = NULL;
            break;
        case 'T':
            opt.trade_ids = true;
            break;
        case 't':
            rc = parse_double("--trade-share", optarg, 0, 1, &opt.trade_share);
            break;
        case 'r':
            rc = parse_double("--rate", optarg, 0, 1e9, &opt.rate);
            break;
        case 'd':
            rc = parse_double("--duration", optarg, 0, 86400 * 7, &opt.duration_s);
            break;
        case 'n':
            rc = parse_uint("--records", optarg, UINT64_MAX, &v);
            opt.records = v;
            break;
        case 'b':
            rc = parse_uint("--batch", optarg, 1000000, &v);
            opt.batch = (unsigned)v;
            break;
        case 'x':
            opt.prefix = optarg;
            break;
        case 'v':
            verify_url = optarg;
            break;
        case 'w':
            rc = parse_double("--settle", optarg, 0, 3600, &settle);
            break;
        case 'j':
            json = true;
            break;
        case 'q':
            opt.quiet = true;
            break;
        case 'h':
            loadgen_usage(stdout);
            return 0;
        default:
            loadgen_usage(stderr);
            return 2;
        }
        if (rc < 0)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "telemctl loadgen: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (opt.profiles == 0 || opt.scripts == 0 || opt.batch == 0) {
        fprintf(stderr, "telemctl loadgen: --profiles, --scripts and --batch must be at least 1\n");
        return 2;
    }
    if (opt.duration_s == 0 && opt.records == 0)
        opt.duration_s = 10;
    if (strlen(opt.prefix) > 40) {
        fprintf(stderr, "telemctl loadgen: --prefix: at most 40 bytes\n");
        return 2;
    }
    opt.token = getenv("TELEM_TOKEN");
    uint64_t want_fds = (uint64_t)opt.profiles * opt.scripts + 64;
    int64_t fds = fdlimit_raise(want_fds);
    if (fds >= 0 && (uint64_t)fds < want_fds)
        fprintf(stderr, "telemctl loadgen: open file limit %lld is below the %llu senders need\n",
                (long long)fds, (unsigned long long)want_fds);
    opt.progress_tty = isatty(STDERR_FILENO);

    struct loadgen_summary sum;
    char err[256];
    if (loadgen_run(&opt, &sum, err, sizeof(err)) < 0) {
        fprintf(stderr, "telemctl loadgen: %s\n", err);
        return 1;
    }
    struct loadgen_verify_result vr;
    memset(&vr, 0, sizeof(vr));
    int status = sum.rejected_records ? 1 : 0;
    if (verify_url) {
        if (!opt.quiet)
            fprintf(stderr, "loadgen: waiting for the store to hold %llu records...\n",
                    (unsigned long long)sum.acked_records);
        if (loadgen_verify(verify_url, opt.prefix, opt.profiles, sum.acked_per_profile, settle,
                           &vr) < 0)
            status = 1;
        else if (!vr.exact)
            status = 1;
    }
    if (json)
        print_json(&opt, &sum, &vr, verify_url);
    else
        print_text(&opt, &sum, &vr, verify_url);
    loadgen_summary_free(&sum);
    return status;
}
