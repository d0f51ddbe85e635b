/*
 * observe.c: /metrics and /health (see observe.h).
 *
 * Both answers are written with stdio into a memory stream and then copied into the reply's
 * evbuffer: sinks add their own series through a FILE * (sink_worker_metrics), and the text is
 * small. Sink series are regrouped (prom_text.c) because two sinks of one kind print the same
 * families, which the exposition format wants together.
 */
#include "daemon/observe.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "core/clock.h"
#include "daemon/prom_text.h"

#define NS_PER_S 1e9

static void counter(FILE *out, const char *name, const char *help, uint64_t v)
{
    prom_family(out, name, "counter", help);
    fprintf(out, "%s %" PRIu64 "\n", name, v);
}

static void gauge(FILE *out, const char *name, const char *help, double v)
{
    prom_family(out, name, "gauge", help);
    fprintf(out, "%s %.17g\n", name, v);
}

static uint64_t sink_lag(const struct spool_stats *sp, const struct sink_stats *st)
{
    uint64_t head = sp->next_seq ? sp->next_seq - 1 : 0;
    return head > st->cursor ? head - st->cursor : 0;
}

static void write_ingest(const struct observe_sources *src, FILE *out)
{
    struct http_ingest_stats h;
    memset(&h, 0, sizeof(h));
    if (src->hi)
        http_ingest_get_stats(src->hi, &h);
    struct udp_ingest_stats u;
    memset(&u, 0, sizeof(u));
    if (src->ui)
        udp_ingest_get_stats(src->ui, &u);

    prom_family(out, "telem_ingest_records_total", "counter",
                "Records by outcome: accepted (spooled), duplicate (a repeated Telem-Batch), "
                "rejected (lines of bodies answered 400), ignored (valid lines with no record)");
    fprintf(out, "telem_ingest_records_total{result=\"accepted\"} %" PRIu64 "\n",
            h.records_accepted + u.records_accepted);
    fprintf(out, "telem_ingest_records_total{result=\"duplicate\"} %" PRIu64 "\n",
            h.records_duplicate);
    fprintf(out, "telem_ingest_records_total{result=\"rejected\"} %" PRIu64 "\n",
            h.records_rejected);
    fprintf(out, "telem_ingest_records_total{result=\"ignored\"} %" PRIu64 "\n", h.records_ignored);

    prom_family(out, "telem_ingest_bytes_total", "counter",
                "Line-protocol bytes by outcome: accepted, rejected (400, 413), refused (503)");
    fprintf(out, "telem_ingest_bytes_total{result=\"accepted\"} %" PRIu64 "\n",
            h.bytes_accepted + u.bytes_accepted);
    fprintf(out, "telem_ingest_bytes_total{result=\"rejected\"} %" PRIu64 "\n", h.bytes_rejected);
    fprintf(out, "telem_ingest_bytes_total{result=\"refused\"} %" PRIu64 "\n", h.bytes_refused);

    prom_family(out, "telem_http_requests_total", "counter", "HTTP answers by status code");
    bool any = false;
    for (int code = 100; code < 600; code++) {
        if (h.requests[code]) {
            fprintf(out, "telem_http_requests_total{code=\"%d\"} %" PRIu64 "\n", code,
                    h.requests[code]);
            any = true;
        }
    }
    if (!any)
        fprintf(out, "telem_http_requests_total{code=\"204\"} 0\n");

    gauge(out, "telem_http_connections", "Open HTTP connections", (double)h.connections_open);
    counter(out, "telem_http_connections_accepted_total", "HTTP connections accepted",
            h.connections_accepted);
    counter(out, "telem_http_connections_rejected_total",
            "HTTP connections closed at once because connections_max was reached",
            h.connections_rejected);
    gauge(out, "telem_inflight_bytes", "Body bytes of requests awaiting durability",
          (double)h.inflight_bytes);
    gauge(out, "telem_http_pending_requests", "Requests awaiting durability",
          (double)h.pending_requests);
    counter(out, "telem_http_abandoned_replies_total",
            "Clients that left before their batch became durable", h.abandoned_replies);

    prom_family(out, "telem_udp_datagrams_total", "counter",
                "UDP datagrams by outcome: accepted, invalid (refused by the parser), dropped "
                "(spool full or disk error)");
    fprintf(out, "telem_udp_datagrams_total{result=\"accepted\"} %" PRIu64 "\n",
            u.datagrams_accepted);
    fprintf(out, "telem_udp_datagrams_total{result=\"invalid\"} %" PRIu64 "\n",
            u.datagrams_invalid);
    fprintf(out, "telem_udp_datagrams_total{result=\"dropped\"} %" PRIu64 "\n",
            u.datagrams_dropped);
}

static void write_spool(const struct spool_stats *st, uint64_t max_bytes, int64_t now_ns, FILE *out)
{
    gauge(out, "telem_spool_bytes", "Bytes of spool segments on disk", (double)st->bytes);
    gauge(out, "telem_spool_max_bytes", "Spool size at which writes are answered 503",
          (double)max_bytes);
    gauge(out, "telem_spool_segments", "Spool segment files on disk", (double)st->segments);
    gauge(out, "telem_spool_next_seq", "Sequence number the next record will get",
          (double)st->next_seq);
    gauge(out, "telem_spool_oldest_seq", "First sequence number still on disk",
          (double)st->oldest_seq);
    gauge(out, "telem_spool_durable_seq", "Last sequence number made durable",
          (double)st->durable_seq);
    counter(out, "telem_spool_records_total", "Records appended since start", st->records);
    counter(out, "telem_spool_frames_total", "Frames appended since start", st->frames);
    counter(out, "telem_spool_fsyncs_total", "fdatasync calls", st->fsyncs);
    counter(out, "telem_spool_fsync_errors_total", "Failed write or fdatasync calls",
            st->fsync_errors);
    counter(out, "telem_spool_corrupt_frames_total",
            "Frames skipped for a bad CRC or header, at recovery or read", st->corrupt_frames);
    counter(out, "telem_spool_torn_bytes_total", "Bytes cut off a torn tail at recovery",
            st->torn_bytes);
    counter(out, "telem_spool_duplicate_batches_total",
            "Batches answered as repeats of an appended Telem-Batch", st->duplicates);
    gauge(out, "telem_spool_producers", "Producers in the client-batch table",
          (double)st->producers);
    double oldest = st->oldest_unsent_ns > 0 && now_ns > st->oldest_unsent_ns
                        ? (double)(now_ns - st->oldest_unsent_ns) / NS_PER_S
                        : 0;
    gauge(out, "telem_spool_oldest_unsent_seconds",
          "Age of the oldest record some sink has not stored yet", oldest);
}

static void write_sinks(const struct observe_sources *src, const struct spool_stats *sp,
                        int64_t now_ns, FILE *out)
{
    size_t n = src->nsinks;
    struct sink_stats *st = calloc(n ? n : 1, sizeof(*st));
    if (!st)
        return;
    for (size_t i = 0; i < n; i++)
        sink_worker_stats(src->sinks[i], &st[i]);
    static const struct {
        const char *name;
        const char *type;
        const char *help;
    } fams[] = {
        {"telem_sink_rows_total", "counter", "Records stored by the sink"},
        {"telem_sink_batches_total", "counter", "Successful batch writes"},
        {"telem_sink_retries_total", "counter", "Writes answered RETRY (transient failure)"},
        {"telem_sink_errors_total", "counter", "Writes answered ERROR (refused batch)"},
        {"telem_sink_quarantined_total", "counter", "Records sent to the dead-letter file"},
        {"telem_sink_gap_total", "counter",
         "Sequence numbers skipped because the spool no longer had them"},
        {"telem_sink_cursor", "gauge", "Last sequence number the sink stored (lowest lane)"},
        {"telem_sink_lag_records", "gauge", "Records in the spool the sink has not stored"},
        {"telem_sink_oldest_unsent_seconds", "gauge",
         "Age of the oldest record the sink has not stored (0 when caught up; from arrival "
         "times the spool samples every 250 ms)"},
        {"telem_sink_last_ok_seconds", "gauge", "Seconds since the last successful write"},
        {"telem_sink_up", "gauge", "1 when the sink's last open or write succeeded"},
    };
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        prom_family(out, fams[f].name, fams[f].type, fams[f].help);
        for (size_t i = 0; i < n; i++) {
            const char *name = sink_worker_name(src->sinks[i]);
            uint64_t lag = sink_lag(sp, &st[i]);
            double v = 0;
            switch (f) {
            case 0:
                v = (double)st[i].rows;
                break;
            case 1:
                v = (double)st[i].batches;
                break;
            case 2:
                v = (double)st[i].retries;
                break;
            case 3:
                v = (double)st[i].errors;
                break;
            case 4:
                v = (double)st[i].quarantined;
                break;
            case 5:
                v = (double)st[i].gap;
                break;
            case 6:
                v = (double)st[i].cursor;
                break;
            case 7:
                v = (double)lag;
                break;
            case 8:
                if (lag > 0) {
                    int64_t t = spool_arrival_ns(src->sp, st[i].cursor + 1);
                    if (t > 0 && now_ns > t)
                        v = (double)(now_ns - t) / NS_PER_S;
                }
                break;
            case 9:
                if (st[i].last_ok_ns > 0 && now_ns > st[i].last_ok_ns)
                    v = (double)(now_ns - st[i].last_ok_ns) / NS_PER_S;
                break;
            case 10:
                v = st[i].up ? 1 : 0;
                break;
            }
            fprintf(out, "%s{sink=\"%s\"} %.17g\n", fams[f].name, name, v);
        }
    }
    free(st);

    /* The sinks' own series (pools, ...), regrouped by family. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return;
    for (size_t i = 0; i < n; i++)
        sink_worker_metrics(src->sinks[i], mem);
    fclose(mem);
    prom_regroup(text, len, out);
    free(text);
}

void observe_write_metrics(const struct observe_sources *src, FILE *out)
{
    int64_t now = clock_wall_ns();
    struct spool_stats sp;
    memset(&sp, 0, sizeof(sp));
    spool_get_stats(src->sp, &sp);
    prom_family(out, "telem_build_info", "gauge", "telemd's version");
    fprintf(out, "telem_build_info{version=\"%s\"} 1\n", TELEM_VERSION);
    write_ingest(src, out);
    write_spool(&sp, src->spool_max_bytes, now, out);
    write_sinks(src, &sp, now, out);
}

/* json_print_string prints s as a JSON string; sink errors are our own ASCII text. */
static void json_print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else if (*p >= 0x80)
            fputc('?', out);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

int observe_write_health(const struct observe_sources *src, FILE *out)
{
    struct spool_stats sp;
    memset(&sp, 0, sizeof(sp));
    spool_get_stats(src->sp, &sp);
    bool ok = true;
    bool full = src->spool_max_bytes && sp.bytes >= src->spool_max_bytes;
    if (full)
        ok = false;

    char *text = NULL;
    size_t len = 0;
    FILE *sinks = open_memstream(&text, &len);
    if (!sinks) {
        fprintf(out, "{\"status\":\"degraded\",\"reason\":\"out of memory\"}\n");
        return 503;
    }
    fputc('{', sinks);
    for (size_t i = 0; i < src->nsinks; i++) {
        struct sink_stats st;
        memset(&st, 0, sizeof(st));
        sink_worker_stats(src->sinks[i], &st);
        uint64_t lag = sink_lag(&sp, &st);
        char reason[96] = "";
        if (!st.up)
            snprintf(reason, sizeof(reason), "down");
        else if (src->health_lag_max >= 0 && lag > (uint64_t)src->health_lag_max)
            snprintf(reason, sizeof(reason), "lag %" PRIu64 " over health_lag_max %" PRId64, lag,
                     src->health_lag_max);
        if (reason[0])
            ok = false;
        fprintf(sinks, "%s", i ? "," : "");
        json_print_string(sinks, sink_worker_name(src->sinks[i]));
        fprintf(sinks, ":{\"up\":%s,\"lag\":%" PRIu64 ",\"cursor\":%" PRIu64 ",\"last_error\":",
                st.up ? "true" : "false", lag, st.cursor);
        json_print_string(sinks, st.last_error);
        if (reason[0]) {
            fprintf(sinks, ",\"reason\":");
            json_print_string(sinks, reason);
        }
        fputc('}', sinks);
    }
    fputc('}', sinks);
    fclose(sinks);

    fprintf(out, "{\"status\":\"%s\",", ok ? "ok" : "degraded");
    fprintf(out, "\"spool\":{\"bytes\":%" PRIu64 ",\"max_bytes\":%" PRIu64 ",\"full\":%s},",
            sp.bytes, src->spool_max_bytes, full ? "true" : "false");
    fprintf(out, "\"sinks\":%.*s}\n", (int)len, text);
    free(text);
    return ok ? 200 : 503;
}

static int observe_reply(struct evhttp_request *req, struct evbuffer *body, const char *type,
                         int (*write)(const struct observe_sources *, FILE *),
                         const struct observe_sources *src)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return 500;
    int code = write(src, mem);
    fclose(mem);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        evbuffer_add(body, text, len);
    free(text);
    return code;
}

static int metrics_write(const struct observe_sources *src, FILE *out)
{
    observe_write_metrics(src, out);
    return 200;
}

static int route_metrics(struct evhttp_request *req, struct evbuffer *body, void *arg)
{
    return observe_reply(req, body, "text/plain; version=0.0.4; charset=utf-8", metrics_write, arg);
}

static int route_health(struct evhttp_request *req, struct evbuffer *body, void *arg)
{
    return observe_reply(req, body, "application/json", observe_write_health, arg);
}

int observe_add_routes(struct http_ingest *hi, const struct observe_sources *src)
{
    struct http_route metrics = {"/metrics", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, false, route_metrics,
                                 (void *)src};
    struct http_route health = {"/health", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, true, route_health,
                                (void *)src};
    int rc = http_ingest_add_route(hi, &metrics);
    if (rc == 0)
        rc = http_ingest_add_route(hi, &health);
    return rc;
}
