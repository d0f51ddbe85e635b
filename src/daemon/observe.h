/*
 * observe.h: telemd watching itself: GET /metrics (Prometheus text) and GET /health (JSON,
 * 200 or 503 with a reason per sink). Both are answered on the event thread from counters of
 * that thread (ingest) and thread-safe getters (spool, sink workers).
 */
#ifndef TELEM_DAEMON_OBSERVE_H
#define TELEM_DAEMON_OBSERVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ingest/ingest.h"
#include "sink/sink.h"
#include "spool/spool.h"

/* What /metrics and /health read. Everything is borrowed and must outlive the routes. */
struct observe_sources {
    struct spool *sp;
    struct sink_worker **sinks;
    size_t nsinks;
    struct http_ingest *hi; /* may be NULL (tests) */
    struct udp_ingest *ui;  /* NULL when UDP is off */
    uint64_t spool_max_bytes;
    int64_t health_lag_max;
};

/* observe_write_metrics prints the whole /metrics text to out. */
void observe_write_metrics(const struct observe_sources *src, FILE *out);

/*
 * observe_write_health prints the /health JSON to out and returns 200 when every sink is up
 * and within health_lag_max records of the spool's head (and the spool is not full), else 503.
 */
int observe_write_health(const struct observe_sources *src, FILE *out);

/*
 * observe_add_routes registers /metrics (token required) and /health (open) on hi. Borrows
 * src. Returns 0 or -ENOSPC.
 */
int observe_add_routes(struct http_ingest *hi, const struct observe_sources *src);

#endif
