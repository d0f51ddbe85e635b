/*
 * bench_redis.c: the Redis sink's write rate beside raw pipelined XADD, measured in the same run
 * against the same server, so the ratio says what exactly-once live state costs.
 *
 *   raw:  XADD of each trade (the same fields the sink's stream gets, MAXLEN ~ 1000) into its
 *         profile's stream, pipelined 1000 commands deep on one hiredis connection;
 *   sink: sink_redis_ops.write() driven directly, one thread per lane as the sink worker does,
 *         batches of 5000 trades per write, with 1 and then 2 connections (pool_size = lanes);
 *   rebuild: the same trades rebuilt from an SQLite file (telemctl redis rebuild's engine).
 * Each sink write runs apply.lua: running totals, drawdown, the capped stream, the profile set
 * and the cursor, in one atomic step per chunk.
 *
 *   bench_redis [URL] [TRADES]     URL default: redis://127.0.0.1:$TELEM_TEST_REDIS_PORT/0
 * Keys go under a fresh prefix and are deleted afterwards.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/record.h"
#include "sink/redis/redis_apply.h"
#include "sink/redis/redis_rebuild.h"
#include "sink/redis/redis_url.h"
#include "sink/sink.h"
#include "sink/sqlite/sqlite_schema.h"

#define PROFILES     100
#define RAW_PIPELINE 1000
#define LANE_BATCH   5000

static struct record *make_trades(size_t n)
{
    struct record *recs = calloc(n, sizeof(*recs));
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        struct record *r = &recs[i];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r->seq = i + 1;
        r->kind = RECORD_TRADE;
        r->ts_ns = INT64_C(1700000000000000000) + (int64_t)i * 1000000;
        r->profile_len =
            (uint8_t)snprintf(r->profile, sizeof(r->profile), "bench-p%03d", (int)(x % PROFILES));
        r->script_len = (uint8_t)snprintf(r->script, sizeof(r->script), "execution");
        r->symbol_len = (uint8_t)snprintf(r->symbol, sizeof(r->symbol), "BTCUSDT");
        r->side_len = (uint8_t)snprintf(r->side, sizeof(r->side), "%s", x & 1 ? "buy" : "sell");
        r->present = REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE | REC_HAS_PNL |
                     REC_HAS_FEES | REC_HAS_OPENED_AT;
        r->qty = (double)(1 + (x >> 8) % 10);
        r->entry_price = 42000.5;
        r->exit_price = 42000.5 + (double)((int)((x >> 16) % 2001) - 1000) / 4;
        r->pnl = (r->exit_price - r->entry_price) * r->qty;
        r->fees = 0.25 * r->qty;
        r->opened_at_ns = r->ts_ns - 60000000000;
    }
    return recs;
}

static redisContext *bench_connect(const struct redis_url *u)
{
    struct timeval tv = {5, 0};
    redisContext *c = u->socket[0] ? redisConnectUnixWithTimeout(u->socket, tv)
                                   : redisConnectWithTimeout(u->host, u->port, tv);
    if (!c || c->err) {
        fprintf(stderr, "bench_redis: cannot connect: %s\n", c ? c->errstr : "out of memory");
        exit(1);
    }
    if (u->db) {
        redisReply *r = redisCommand(c, "SELECT %d", u->db);
        freeReplyObject(r);
    }
    return c;
}

/* Raw pipelined XADD of every trade; returns trades per second. */
static double run_raw(const struct redis_url *u, const char *prefix, const struct record *recs,
                      size_t n)
{
    redisContext *c = bench_connect(u);
    int64_t t0 = clock_mono_ns();
    size_t pending = 0;
    for (size_t i = 0; i < n; i++) {
        const struct record *r = &recs[i];
        char key[128], seq[24], qty[32], entry[32], exit_px[32], pnl[32], fees[32], opened[24],
            closed[24];
        snprintf(key, sizeof(key), "%sraw:%s", prefix, r->profile);
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)r->seq);
        redis_apply_format_double(qty, r->qty);
        redis_apply_format_double(entry, r->entry_price);
        redis_apply_format_double(exit_px, r->exit_price);
        redis_apply_format_double(pnl, r->pnl);
        redis_apply_format_double(fees, r->fees);
        snprintf(opened, sizeof(opened), "%lld", (long long)(r->opened_at_ns / 1000));
        snprintf(closed, sizeof(closed), "%lld", (long long)(r->ts_ns / 1000));
        const char *argv[] = {"XADD",       key,         "MAXLEN", "~",           "1000",
                              "*",          "seq",       seq,      "profile",     r->profile,
                              "script",     r->script,   "symbol", r->symbol,     "side",
                              r->side,      "qty",       qty,      "entry_price", entry,
                              "exit_price", exit_px,     "pnl",    pnl,           "fees",
                              fees,         "opened_at", opened,   "closed_at",   closed};
        redisAppendCommandArgv(c, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
        if (++pending == RAW_PIPELINE || i + 1 == n) {
            for (; pending > 0; pending--) {
                void *rep = NULL;
                if (redisGetReply(c, &rep) != REDIS_OK) {
                    fprintf(stderr, "bench_redis: XADD: %s\n", c->errstr);
                    exit(1);
                }
                freeReplyObject(rep);
            }
        }
    }
    double s = (double)(clock_mono_ns() - t0) / 1e9;
    redisFree(c);
    return (double)n / s;
}

struct lane_run {
    void *state;
    unsigned lane, lanes;
    const struct record *recs;
    size_t n;
    int failed;
};

/* One lane's thread: batches of LANE_BATCH of its own trades, as the worker would send them. */
static void *lane_thread(void *arg)
{
    struct lane_run *lr = arg;
    struct record *batch = malloc(LANE_BATCH * sizeof(*batch));
    size_t k = 0;
    char err[256];
    for (size_t i = 0; i < lr->n; i++) {
        if (record_lane(&lr->recs[i], lr->lanes) == lr->lane)
            batch[k++] = lr->recs[i];
        if (k == LANE_BATCH || i + 1 == lr->n) {
            uint64_t cursor = lr->recs[i].seq;
            enum sink_result res;
            int tries = 0;
            while ((res = sink_redis_ops.write(lr->state, lr->lane, batch, k, cursor, err,
                                               sizeof(err))) == SINK_RETRY &&
                   tries++ < 50)
                usleep(100000);
            if (res != SINK_OK) {
                fprintf(stderr, "bench_redis: lane %u: write: %s\n", lr->lane, err);
                lr->failed = 1;
                break;
            }
            k = 0;
        }
    }
    free(batch);
    return NULL;
}

/* The sink with `lanes` connections; returns trades per second. */
static double run_sink(const char *url, const char *prefix, unsigned lanes,
                       const struct record *recs, size_t n)
{
    char pool[16], data_dir[] = "/tmp/bench-redis.XXXXXX";
    snprintf(pool, sizeof(pool), "%u", lanes);
    if (!mkdtemp(data_dir))
        exit(1);
    struct sink_setting settings[] = {
        {.key = "prefix", .value = prefix},
        {.key = "pool_size", .value = pool},
        {.key = "rebuild_from", .value = "none"},
    };
    uint8_t spool_id[16];
    for (int i = 0; i < 16; i++)
        spool_id[i] = (uint8_t)(prefix[i % strlen(prefix)] + lanes + i);
    struct sink_config cfg = {
        .name = "bench",
        .url = url,
        .settings = settings,
        .nsettings = 3,
        .spool_id = spool_id,
        .data_dir = data_dir,
    };
    void *state = NULL;
    char err[256];
    if (sink_redis_ops.create(&cfg, &state, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_redis: create: %s\n", err);
        exit(1);
    }
    for (unsigned l = 0; l < lanes; l++) {
        uint64_t cur;
        if (sink_redis_ops.open_lane(state, l, &cur, err, sizeof(err)) != SINK_OK) {
            fprintf(stderr, "bench_redis: open_lane: %s\n", err);
            exit(1);
        }
    }
    pthread_t th[8];
    struct lane_run lr[8];
    int64_t t0 = clock_mono_ns();
    for (unsigned l = 0; l < lanes; l++) {
        lr[l] = (struct lane_run){state, l, lanes, recs, n, 0};
        pthread_create(&th[l], NULL, lane_thread, &lr[l]);
    }
    int failed = 0;
    for (unsigned l = 0; l < lanes; l++) {
        pthread_join(th[l], NULL);
        failed |= lr[l].failed;
    }
    double s = (double)(clock_mono_ns() - t0) / 1e9;
    sink_redis_ops.destroy(state);
    rmdir(data_dir);
    if (failed)
        exit(1);
    return (double)n / s;
}

/* Stores the trades and a cursor in a fresh SQLite file at path, as the SQLite sink would. */
static void make_sql_store(const char *path, const uint8_t *spool_id, const struct record *recs,
                           size_t n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char err[256];
    if (sqlite3_open(path, &db) != SQLITE_OK || sqlite_schema_migrate(db, err, sizeof(err)) < 0 ||
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO trade_performance (" SINK_SQLITE_TRADE_COLUMNS
                           ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_redis: %s: %s\n", path, db ? sqlite3_errmsg(db) : "no memory");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        const struct record *r = &recs[i];
        sqlite3_bind_blob(st, 1, spool_id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)r->seq);
        sqlite3_bind_text(st, 3, r->profile, r->profile_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->script, r->script_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r->symbol, r->symbol_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, r->side, r->side_len, SQLITE_STATIC);
        sqlite3_bind_double(st, 7, r->qty);
        sqlite3_bind_double(st, 8, r->entry_price);
        sqlite3_bind_double(st, 9, r->exit_price);
        sqlite3_bind_double(st, 10, r->pnl);
        sqlite3_bind_double(st, 11, r->fees);
        sqlite3_bind_int64(st, 12, r->opened_at_ns / 1000);
        sqlite3_bind_int64(st, 13, r->ts_ns / 1000);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "bench_redis: insert: %s\n", sqlite3_errmsg(db));
            exit(1);
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "INSERT INTO telem_cursor (spool_id, sink, seq) VALUES (?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        exit(1);
    sqlite3_bind_blob(st, 1, spool_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "sqlite", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)recs[n - 1].seq);
    sqlite3_step(st);
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
}

/* telemctl redis rebuild's engine over the same trades; returns rows per second. */
static double run_rebuild(const char *url, const char *prefix, const struct record *recs, size_t n)
{
    char dir[] = "/tmp/bench-redis-sql.XXXXXX", path[64], err[256];
    uint8_t spool_id[16] = {0xbe, 0x9c};
    if (!mkdtemp(dir))
        exit(1);
    snprintf(path, sizeof(path), "%s/telem.db", dir);
    make_sql_store(path, spool_id, recs, n);
    struct redis_rebuild_options opt = {
        .prefix = prefix,
        .spool_id = spool_id,
        .sql_url = path,
        .stream_maxlen = 1000,
    };
    struct redis_rebuild_result res;
    if (redis_rebuild_run(url, NULL, &opt, &res, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_redis: rebuild: %s\n", err);
        exit(1);
    }
    unlink(path);
    rmdir(dir);
    return (double)(res.trades + res.metrics) / res.seconds;
}

static void delete_prefix(const struct redis_url *u, const char *prefix)
{
    redisContext *c = bench_connect(u);
    char cursor[32] = "0", pattern[128];
    snprintf(pattern, sizeof(pattern), "%s*", prefix);
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY)
            break;
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            redisReply *d = redisCommand(c, "UNLINK %s", r->element[1]->element[i]->str);
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
}

int main(int argc, char **argv)
{
    char url[256], err[200], prefix[64];
    const char *port = getenv("TELEM_TEST_REDIS_PORT");
    if (argc > 1) {
        snprintf(url, sizeof(url), "%s", argv[1]);
    } else if (port) {
        snprintf(url, sizeof(url), "redis://127.0.0.1:%s/0", port);
    } else {
        fprintf(stderr, "usage: bench_redis [URL] [TRADES] (or set TELEM_TEST_REDIS_PORT)\n");
        return 2;
    }
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 500000;
    struct redis_url u;
    if (redis_url_parse(url, &u, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_redis: %s\n", err);
        return 2;
    }
    log_level_current = LOG_LEVEL_WARN;
    snprintf(prefix, sizeof(prefix), "bench%d:", (int)getpid());
    struct record *recs = make_trades(n);

    double raw = run_raw(&u, prefix, recs, n);
    delete_prefix(&u, prefix);
    double one = run_sink(url, prefix, 1, recs, n);
    delete_prefix(&u, prefix);
    double two = run_sink(url, prefix, 2, recs, n);
    delete_prefix(&u, prefix);
    double rebuild = run_rebuild(url, prefix, recs, n);
    delete_prefix(&u, prefix);

    printf("redis raw pipelined XADD:        %9.0f trades/s\n", raw);
    printf("redis sink, 1 connection:        %9.0f trades/s  (%.2f of raw)\n", one, one / raw);
    printf("redis sink, 2 connections:       %9.0f trades/s  (%.2f of raw; target >= 0.67)\n", two,
           two / raw);
    printf("rebuild from SQLite:             %9.0f rows/s\n", rebuild);
    free(recs);
    return 0;
}
