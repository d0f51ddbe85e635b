/*
 * test_sink_redis.c: the Redis sink against real redis-servers.
 *
 * The throwaway server of scripts/test-services.sh (TELEM_TEST_REDIS_PORT, _SOCKET) takes the
 * tests that do no harm to others; each test uses its own key prefix. Tests that flush, stop or
 * password-protect Redis start their own redis-server on a free port in a temporary folder and
 * stop it by pid.
 *
 * The workload is randomized (seeded, printed) over many profiles; the test keeps a model of
 * the live state computed in C with the same operations in the same order as apply.lua, and
 * compares every total bit for bit. A "worker" here drives the sink as sink_worker.c does:
 * batches of consecutive sequence numbers, split into lanes by record_lane(), each write with
 * the batch's last seq as cursor, retried on RETRY.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <mysql.h>
#include <sqlite3.h>

#include "core/log.h"
#include "core/record.h"
#include "sink/redis/redis_rebuild.h"
#include "sink/sink.h"
#include "sink/sqlite/sqlite_schema.h"

#define PROFILES    60
#define METRIC_KEYS 5

/* ---- the model: live state computed in C, same operations as apply.lua ------------------ */

struct model_profile {
    bool has_trades;
    double trades, wins, losses, gross_pnl, fees, gross_win, gross_loss, peak, max_dd, last;
    bool has_metric[METRIC_KEYS];
    double metric_ts[METRIC_KEYS];
    double metric_value[METRIC_KEYS];
};

struct model {
    double starting_equity;
    struct model_profile p[PROFILES];
};

static int profile_index(const struct record *r)
{
    return atoi(r->profile + 1);
}

static void model_apply(struct model *m, const struct record *r)
{
    struct model_profile *p = &m->p[profile_index(r)];
    if (r->kind == RECORD_METRIC) {
        int k = atoi(r->name + 1);
        double ts = (double)(r->ts_ns / 1000);
        if (!p->has_metric[k] || ts >= p->metric_ts[k]) {
            p->has_metric[k] = true;
            p->metric_ts[k] = ts;
            p->metric_value[k] = r->value;
        }
        return;
    }
    if (!p->has_trades) {
        p->has_trades = true;
        p->peak = m->starting_equity;
    }
    double pnl = (r->present & REC_HAS_PNL) ? r->pnl : 0;
    double fees = (r->present & REC_HAS_FEES) ? r->fees : 0;
    p->trades += 1;
    if (pnl > 0) {
        p->wins += 1;
        p->gross_win += pnl;
    } else if (pnl < 0) {
        p->losses += 1;
        p->gross_loss -= pnl;
    }
    p->gross_pnl += pnl;
    p->fees += fees;
    double equity = m->starting_equity + (p->gross_pnl - p->fees);
    if (equity > p->peak)
        p->peak = equity;
    if (p->peak - equity > p->max_dd)
        p->max_dd = p->peak - equity;
    double closed = (double)(r->ts_ns / 1000);
    if (closed > p->last)
        p->last = closed;
}

/* ---- the workload --------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

/* Makes n records with seq first_seq.. over PROFILES profiles, trades and metrics mixed. */
static struct record *make_workload(size_t n, uint64_t first_seq)
{
    struct record *recs = calloc(n, sizeof(*recs));
    int64_t base_ns = INT64_C(1700000000000000000);
    for (size_t i = 0; i < n; i++) {
        struct record *r = &recs[i];
        r->seq = first_seq + i;
        r->profile_len =
            (uint8_t)snprintf(r->profile, sizeof(r->profile), "p%d", (int)(rng_next() % PROFILES));
        r->script_len =
            (uint8_t)snprintf(r->script, sizeof(r->script), "s%d", (int)(rng_next() % 3));
        /* Mostly increasing times with jitter, so some metric samples arrive late. */
        int64_t jitter_us = (int64_t)(rng_next() % 5000000) - 2500000;
        r->ts_ns = base_ns + ((int64_t)r->seq * 1000 + jitter_us) * 1000;
        if (rng_next() % 10 < 6) {
            r->kind = RECORD_TRADE;
            r->symbol_len =
                (uint8_t)snprintf(r->symbol, sizeof(r->symbol), "SYM%d", (int)(rng_next() % 7));
            r->side_len =
                (uint8_t)snprintf(r->side, sizeof(r->side), "%s", rng_next() % 2 ? "buy" : "sell");
            r->present = REC_HAS_QTY | REC_HAS_ENTRY_PRICE | REC_HAS_EXIT_PRICE | REC_HAS_PNL |
                         REC_HAS_FEES | REC_HAS_OPENED_AT;
            r->qty = (double)(1 + rng_next() % 100);
            r->entry_price = 100 + rng_unit() * 50;
            r->exit_price = r->entry_price * (0.97 + rng_unit() * 0.06);
            r->pnl = (r->exit_price - r->entry_price) * r->qty;
            if (rng_next() % 20 == 0)
                r->pnl = 0; /* neither a win nor a loss */
            r->fees = rng_unit() * 0.5;
            if (rng_next() % 15 == 0)
                r->present &= (uint8_t)~REC_HAS_FEES; /* absent fees count as 0 */
            r->opened_at_ns = r->ts_ns - (int64_t)(rng_next() % 600000) * 1000000;
            if (rng_next() % 4 == 0)
                r->trade_id_len = (uint8_t)snprintf(r->trade_id, sizeof(r->trade_id), "t%llu",
                                                    (unsigned long long)r->seq);
        } else {
            r->kind = RECORD_METRIC;
            r->name_len =
                (uint8_t)snprintf(r->name, sizeof(r->name), "m%d", (int)(rng_next() % METRIC_KEYS));
            r->value = rng_unit() * 1000 - 500;
        }
    }
    return recs;
}

/* ---- an SQL store the tests fill like the SQLite sink would ------------------------------ */

static sqlite3 *sql_open(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite_schema_migrate(db, err, errlen), 0);
    return db;
}

static void sql_store(sqlite3 *db, const uint8_t *spool_id, const struct record *recs, size_t n,
                      uint64_t cursor)
{
    sqlite3_stmt *t = NULL, *m = NULL, *c = NULL;
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO trade_performance (" SINK_SQLITE_TRADE_COLUMNS
                                        ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                        -1, &t, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO aggregated_metric (" SINK_SQLITE_METRIC_COLUMNS
                                        ") VALUES (?,?,?,?,?,?,?)",
                                        -1, &m, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT OR REPLACE INTO telem_cursor (spool_id, sink, seq)"
                                        " VALUES (?, 'sqlite', ?)",
                                        -1, &c, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        const struct record *r = &recs[i];
        sqlite3_stmt *s = r->kind == RECORD_TRADE ? t : m;
        sqlite3_bind_blob(s, 1, spool_id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)r->seq);
        sqlite3_bind_text(s, 3, r->profile, r->profile_len, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, r->script, r->script_len, SQLITE_STATIC);
        if (r->kind == RECORD_TRADE) {
            sqlite3_bind_text(s, 5, r->symbol, r->symbol_len, SQLITE_STATIC);
            sqlite3_bind_text(s, 6, r->side, r->side_len, SQLITE_STATIC);
            const double v[5] = {r->qty, r->entry_price, r->exit_price, r->pnl, r->fees};
            const unsigned bits[5] = {REC_HAS_QTY, REC_HAS_ENTRY_PRICE, REC_HAS_EXIT_PRICE,
                                      REC_HAS_PNL, REC_HAS_FEES};
            for (int k = 0; k < 5; k++) {
                if (r->present & bits[k])
                    sqlite3_bind_double(s, 7 + k, v[k]);
                else
                    sqlite3_bind_null(s, 7 + k);
            }
            if (r->present & REC_HAS_OPENED_AT)
                sqlite3_bind_int64(s, 12, r->opened_at_ns / 1000);
            else
                sqlite3_bind_null(s, 12);
            sqlite3_bind_int64(s, 13, r->ts_ns / 1000);
            if (r->trade_id_len)
                sqlite3_bind_text(s, 14, r->trade_id, r->trade_id_len, SQLITE_STATIC);
            else
                sqlite3_bind_null(s, 14);
        } else {
            sqlite3_bind_text(s, 5, r->name, r->name_len, SQLITE_STATIC);
            sqlite3_bind_double(s, 6, r->value);
            sqlite3_bind_int64(s, 7, r->ts_ns / 1000);
        }
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_reset(s);
    }
    sqlite3_bind_blob(c, 1, spool_id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(c, 2, (sqlite3_int64)cursor);
    assert_int_equal(sqlite3_step(c), SQLITE_DONE);
    sqlite3_finalize(t);
    sqlite3_finalize(m);
    sqlite3_finalize(c);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

/* ---- redis-servers ---------------------------------------------------------------------- */

struct own_redis {
    char dir[256];
    int port;
    pid_t pid;
};

/* Servers this process started, killed at exit even when a test failed half-way. */
static pid_t started_servers[16];

static void kill_started_servers(void)
{
    for (size_t i = 0; i < sizeof(started_servers) / sizeof(started_servers[0]); i++) {
        if (started_servers[i] > 0 && kill(started_servers[i], 0) == 0) {
            kill(started_servers[i], SIGKILL);
            waitpid(started_servers[i], NULL, 0);
        }
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static redisContext *connect_tcp(int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Starts redis-server in r->dir on r->port; aof: appendonly with fsync always. */
static void own_redis_start(struct own_redis *r, bool aof, const char *password)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[24] = {"redis-server", "--port",           port,
                                "--bind",       "127.0.0.1",        "--dir",
                                r->dir,         "--save",           "",
                                "--appendonly", aof ? "yes" : "no", "--appendfsync",
                                "always",       "--logfile",        "redis.log"};
        int argc = 15;
        if (password) {
            argv[argc++] = "--requirepass";
            argv[argc++] = password;
        }
        argv[argc] = NULL;
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    r->pid = pid;
    for (size_t i = 0; i < sizeof(started_servers) / sizeof(started_servers[0]); i++) {
        if (started_servers[i] == 0) {
            started_servers[i] = pid;
            break;
        }
    }
    for (int i = 0; i < 200; i++) {
        redisContext *c = connect_tcp(r->port);
        if (c) {
            redisReply *rep = redisCommand(c, "PING");
            bool up = rep && (rep->type == REDIS_REPLY_STATUS ||
                              (rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "NOAUTH")));
            bool loading = rep && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "LOADING");
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            if (up && !loading)
                return;
        }
        usleep(50000);
    }
    fail_msg("redis-server on port %d did not start (see %s/redis.log)", r->port, r->dir);
}

static void own_redis_stop(struct own_redis *r, int sig)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    waitpid(r->pid, NULL, 0);
    for (size_t i = 0; i < sizeof(started_servers) / sizeof(started_servers[0]); i++) {
        if (started_servers[i] == r->pid)
            started_servers[i] = 0;
    }
    r->pid = 0;
}

static void own_redis_init(struct own_redis *r)
{
    snprintf(r->dir, sizeof(r->dir), "/tmp/telem-redis-test.XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    r->port = free_port();
}

static void own_redis_cleanup(struct own_redis *r)
{
    char cmd[300];
    own_redis_stop(r, SIGKILL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", r->dir);
}

static void redis_do(int port, const char *password, const char *cmd)
{
    redisContext *c = connect_tcp(port);
    assert_non_null(c);
    if (password) {
        redisReply *a = redisCommand(c, "AUTH %s", password);
        freeReplyObject(a);
    }
    redisReply *rep = redisCommand(c, cmd);
    assert_non_null(rep);
    freeReplyObject(rep);
    redisFree(c);
}

/* The shared server of scripts/test-services.sh; fails loudly when it is not there. */
static int shared_port(void)
{
    const char *p = getenv("TELEM_TEST_REDIS_PORT");
    if (!p || !*p)
        fail_msg("TELEM_TEST_REDIS_PORT is not set: start the test services "
                 "(eval \"$(scripts/test-services.sh start DIR)\"), or run scripts/test.sh");
    return atoi(p);
}

static const char *shared_socket(void)
{
    const char *s = getenv("TELEM_TEST_REDIS_SOCKET");
    if (!s || !*s)
        fail_msg("TELEM_TEST_REDIS_SOCKET is not set: start the test services "
                 "(eval \"$(scripts/test-services.sh start DIR)\"), or run scripts/test.sh");
    return s;
}

/* ---- driving the sink as the worker does ---------------------------------------------- */

struct harness {
    char url[300];
    char prefix[64];
    char data_dir[256];
    uint8_t spool_id[16];
    struct sink_setting settings[16];
    size_t nsettings;
    char values[16][300];
    void *state;
    unsigned lanes;
    int port; /* for direct checks */
    const char *password;
    uint64_t cursor[16];
};

static void harness_init(struct harness *h, const char *url, int port)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->url, sizeof(h->url), "%s", url);
    snprintf(h->prefix, sizeof(h->prefix), "t%llx:", (unsigned long long)(rng_next() >> 20));
    snprintf(h->data_dir, sizeof(h->data_dir), "/tmp/telem-redis-data.XXXXXX");
    assert_non_null(mkdtemp(h->data_dir));
    for (int i = 0; i < 16; i++)
        h->spool_id[i] = (uint8_t)rng_next();
    h->port = port;
}

static void harness_set(struct harness *h, const char *key, const char *value)
{
    for (size_t i = 0; i < h->nsettings; i++) {
        if (strcmp(h->settings[i].key, key) == 0) {
            snprintf(h->values[i], sizeof(h->values[i]), "%s", value);
            return;
        }
    }
    snprintf(h->values[h->nsettings], sizeof(h->values[0]), "%s", value);
    h->settings[h->nsettings].key = key;
    h->settings[h->nsettings].value = h->values[h->nsettings];
    h->nsettings++;
}

static int harness_create(struct harness *h, char *err, size_t errlen)
{
    harness_set(h, "prefix", h->prefix);
    struct sink_config cfg = {
        .name = "live",
        .url = h->url,
        .settings = h->settings,
        .nsettings = h->nsettings,
        .spool_id = h->spool_id,
        .data_dir = h->data_dir,
    };
    int rc = sink_redis_ops.create(&cfg, &h->state, err, errlen);
    if (rc == 0)
        h->lanes = sink_redis_ops.lanes(h->state);
    return rc;
}

static void harness_destroy(struct harness *h)
{
    sink_redis_ops.destroy(h->state);
    h->state = NULL;
}

static void harness_cleanup(struct harness *h)
{
    char cmd[300];
    harness_destroy(h);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->data_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", h->data_dir);
}

/* Opens every lane, retrying RETRY for up to tries attempts. Returns the last result. */
static enum sink_result harness_open(struct harness *h, int tries, char *err, size_t errlen)
{
    enum sink_result res = SINK_RETRY;
    for (unsigned l = 0; l < h->lanes; l++) {
        for (int t = 0; t < tries; t++) {
            res = sink_redis_ops.open_lane(h->state, l, &h->cursor[l], err, errlen);
            if (res != SINK_RETRY)
                break;
            usleep(100000);
        }
        if (res != SINK_OK)
            return res;
    }
    return res;
}

/* Writes recs[0..n) (consecutive seqs) in spool batches of batch, split into lanes. */
static enum sink_result harness_drive(struct harness *h, const struct record *recs, size_t n,
                                      size_t batch, int tries)
{
    struct record *lane_recs = calloc(batch, sizeof(*lane_recs));
    char err[300];
    enum sink_result res = SINK_OK;
    for (size_t a = 0; a < n && res == SINK_OK; a += batch) {
        size_t b = a + batch < n ? a + batch : n;
        uint64_t cursor = recs[b - 1].seq;
        for (unsigned l = 0; l < h->lanes && res == SINK_OK; l++) {
            size_t k = 0;
            for (size_t i = a; i < b; i++) {
                if (record_lane(&recs[i], h->lanes) == l && recs[i].seq > h->cursor[l])
                    lane_recs[k++] = recs[i];
            }
            if (cursor <= h->cursor[l])
                continue;
            for (int t = 0; t < tries; t++) {
                res = sink_redis_ops.write(h->state, l, lane_recs, k, cursor, err, sizeof(err));
                if (res != SINK_RETRY)
                    break;
                usleep(20000);
            }
            if (res != SINK_OK)
                print_message("write lane %u up to %llu: result %d: %s\n", l,
                              (unsigned long long)cursor, res, err);
            else
                h->cursor[l] = cursor;
        }
    }
    free(lane_recs);
    return res;
}

/* ---- reading the live state back ------------------------------------------------------- */

static redisContext *check_conn(const struct harness *h)
{
    redisContext *c;
    if (h->port > 0) {
        c = connect_tcp(h->port);
    } else {
        struct timeval tv = {1, 0};
        c = redisConnectUnixWithTimeout(shared_socket(), tv);
    }
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    if (h->password) {
        redisReply *a = redisCommand(c, "AUTH %s", h->password);
        freeReplyObject(a);
    }
    return c;
}

static const char *hash_field(const redisReply *r, const char *field)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (strcmp(r->element[i]->str, field) == 0)
            return r->element[i + 1]->str;
    }
    return NULL;
}

static void expect_double(const redisReply *r, const char *pid, const char *field, double want)
{
    const char *v = hash_field(r, field);
    if (!v)
        fail_msg("%s: field %s missing", pid, field);
    double got = strtod(v, NULL);
    if (got != want)
        fail_msg("%s.%s: live %s (%.17g) != model %.17g", pid, field, v, got, want);
}

/* Compares every profile's live state with the model, exactly. */
static void expect_model(const struct harness *h, const struct model *m)
{
    redisContext *c = check_conn(h);
    size_t nprofiles = 0;
    for (int i = 0; i < PROFILES; i++) {
        const struct model_profile *p = &m->p[i];
        char pid[16];
        snprintf(pid, sizeof(pid), "p%d", i);
        redisReply *r = redisCommand(c, "HGETALL %sprofile:%s", h->prefix, pid);
        assert_non_null(r);
        if (!p->has_trades) {
            assert_int_equal(r->elements, 0);
        } else {
            double equity = m->starting_equity + (p->gross_pnl - p->fees);
            expect_double(r, pid, "trades", p->trades);
            expect_double(r, pid, "wins", p->wins);
            expect_double(r, pid, "losses", p->losses);
            expect_double(r, pid, "gross_pnl", p->gross_pnl);
            expect_double(r, pid, "fees", p->fees);
            expect_double(r, pid, "net_pnl", p->gross_pnl - p->fees);
            expect_double(r, pid, "equity", equity);
            expect_double(r, pid, "peak_equity", p->peak);
            expect_double(r, pid, "max_drawdown", p->max_dd);
            expect_double(r, pid, "last_trade_at", p->last);
            expect_double(r, pid, "win_rate", p->wins / p->trades);
            expect_double(r, pid, "gross_win", p->gross_win);
            expect_double(r, pid, "gross_loss", p->gross_loss);
            if (p->gross_loss > 0)
                expect_double(r, pid, "profit_factor", p->gross_win / p->gross_loss);
            else
                assert_string_equal(hash_field(r, "profit_factor"), "");
        }
        freeReplyObject(r);

        r = redisCommand(c, "HGETALL %smetrics:%s", h->prefix, pid);
        size_t want_fields = 0;
        for (int k = 0; k < METRIC_KEYS; k++) {
            if (!p->has_metric[k])
                continue;
            char name[16], ts[24];
            want_fields += 2;
            snprintf(name, sizeof(name), "m%d", k);
            expect_double(r, pid, name, p->metric_value[k]);
            snprintf(ts, sizeof(ts), "m%d@ts", k);
            expect_double(r, pid, ts, p->metric_ts[k]);
        }
        assert_int_equal(r->elements, 2 * want_fields);
        freeReplyObject(r);
        if (p->has_trades || want_fields)
            nprofiles++;
    }
    redisReply *r = redisCommand(c, "SCARD %sprofiles", h->prefix);
    assert_int_equal(r->integer, (long long)nprofiles);
    freeReplyObject(r);
    redisFree(c);
}

static void model_build(struct model *m, const struct record *recs, size_t n, double start)
{
    memset(m, 0, sizeof(*m));
    m->starting_equity = start;
    for (size_t i = 0; i < n; i++)
        model_apply(m, &recs[i]);
}

static char *metrics_text(void *state)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    struct sink_metrics_out out = {.out = f, .sink_name = "live"};
    sink_redis_ops.metrics(state, &out);
    long len = ftell(f);
    char *text = calloc(1, (size_t)len + 1);
    rewind(f);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return text;
}

static void expect_metric(void *state, const char *series)
{
    char *text = metrics_text(state);
    if (!strstr(text, series))
        fail_msg("metrics lack '%s':\n%s", series, text);
    free(text);
}

/* ---- the tests ----------------------------------------------------------------------- */

static void test_totals_exact_and_replay(void **unused)
{
    (void)unused;
    struct harness h;
    struct model m;
    char err[300];
    const size_t n = 30000;
    harness_init(&h, "", shared_port());
    snprintf(h.url, sizeof(h.url), "redis://127.0.0.1:%d/0", h.port);
    harness_set(&h, "starting_equity", "10000");
    harness_set(&h, "stream_maxlen", "50");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_int_equal(h.lanes, 2);
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);
    assert_int_equal(h.cursor[0], 0);

    struct record *recs = make_workload(n, 1);
    assert_int_equal(harness_drive(&h, recs, n, 2000, 1), SINK_OK);
    model_build(&m, recs, n, 10000);
    expect_model(&h, &m);

    /* A replay of batches already stored changes nothing, even partly overlapping ones. */
    for (unsigned l = 0; l < 2; l++) {
        struct record *mine = calloc(n, sizeof(*mine));
        size_t k = 0;
        for (size_t i = n - 5000; i < n; i++) {
            if (record_lane(&recs[i], 2) == l)
                mine[k++] = recs[i];
        }
        assert_int_equal(
            sink_redis_ops.write(h.state, l, mine, k, recs[n - 1].seq, err, sizeof(err)), SINK_OK);
        assert_int_equal(
            sink_redis_ops.write(h.state, l, mine, k / 2, mine[k / 2 - 1].seq, err, sizeof(err)),
            SINK_OK);
        free(mine);
    }
    expect_model(&h, &m);

    /* The trade stream is capped near stream_maxlen and its newest entry is the last trade. */
    redisContext *c = check_conn(&h);
    const struct record *last = NULL;
    for (size_t i = n; i-- > 0;) {
        if (recs[i].kind == RECORD_TRADE && strcmp(recs[i].profile, "p7") == 0) {
            last = &recs[i];
            break;
        }
    }
    assert_non_null(last);
    redisReply *r = redisCommand(c, "XLEN %strades:p7", h.prefix);
    assert_true(r->integer >= 50 && r->integer < 200);
    freeReplyObject(r);
    r = redisCommand(c, "XREVRANGE %strades:p7 + - COUNT 1", h.prefix);
    assert_int_equal(r->elements, 1);
    const redisReply *fields = r->element[0]->element[1];
    char seq[24];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)last->seq);
    assert_string_equal(hash_field(fields, "seq"), seq);
    assert_true(strtod(hash_field(fields, "pnl"), NULL) == last->pnl);
    assert_string_equal(hash_field(fields, "symbol"), last->symbol);
    freeReplyObject(r);
    redisFree(c);

    /* Cursors read back by a new sink state, as after a restart. */
    uint64_t before[2] = {h.cursor[0], h.cursor[1]};
    harness_destroy(&h);
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    memset(h.cursor, 0, sizeof(h.cursor));
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);
    assert_int_equal(h.cursor[0], before[0]);
    assert_int_equal(h.cursor[1], before[1]);
    expect_metric(h.state, "telem_redis_rebuilds_total{sink=\"live\"} 0");
    expect_metric(h.state, "telem_sink_redis_pool");
    free(recs);
    harness_cleanup(&h);
}

static void test_late_metric_and_unix_socket(void **unused)
{
    (void)unused;
    struct harness h;
    char err[300];
    harness_init(&h, "", 0);
    /* The redis:///path form: the socket path follows the empty host. */
    snprintf(h.url, sizeof(h.url), "redis://%s?db=0", shared_socket());
    harness_set(&h, "pool_size", "1");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);

    struct record r[4];
    memset(r, 0, sizeof(r));
    const int64_t ts_us[4] = {2000, 1000, 2000, 1500};
    const double values[4] = {1.5, 2.5, 3.5, 4.5};
    for (int i = 0; i < 4; i++) {
        r[i].seq = (uint64_t)i + 1;
        r[i].kind = RECORD_METRIC;
        r[i].profile_len = (uint8_t)snprintf(r[i].profile, sizeof(r[i].profile), "late");
        r[i].name_len = (uint8_t)snprintf(r[i].name, sizeof(r[i].name), "equity");
        r[i].value = values[i];
        r[i].ts_ns = ts_us[i] * 1000;
    }
    /* One per batch: the older sample (seq 2) never overwrites; an equal time (seq 3) does. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(sink_redis_ops.write(h.state, 0, &r[i], 1, r[i].seq, err, sizeof(err)),
                         SINK_OK);
    redisContext *c = check_conn(&h);
    redisReply *rep = redisCommand(c, "HGETALL %smetrics:late", h.prefix);
    assert_string_equal(hash_field(rep, "equity"), "3.5");
    assert_string_equal(hash_field(rep, "equity@ts"), "2000");
    freeReplyObject(rep);
    redisFree(c);

    /* A record the script cannot take is refused as a data error, before Redis sees it. */
    struct record bad = r[0];
    bad.seq = 10;
    bad.value = 1.0 / 0.0;
    assert_int_equal(sink_redis_ops.write(h.state, 0, &bad, 1, 10, err, sizeof(err)), SINK_ERROR);
    assert_non_null(strstr(err, "not finite"));
    harness_cleanup(&h);
}

static void test_wrong_type_key_refused(void **unused)
{
    (void)unused;
    struct harness h;
    char err[300];
    harness_init(&h, "", shared_port());
    snprintf(h.url, sizeof(h.url), "redis://127.0.0.1:%d/0", h.port);
    harness_set(&h, "pool_size", "1");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);
    redisContext *c = check_conn(&h);
    redisReply *r = redisCommand(c, "SET %sprofile:p3 oops", h.prefix);
    freeReplyObject(r);

    /* A batch touching p3 is refused as a whole and changes nothing, not even for p1. */
    struct record recs[2];
    memset(recs, 0, sizeof(recs));
    for (int i = 0; i < 2; i++) {
        recs[i].seq = (uint64_t)i + 1;
        recs[i].kind = RECORD_TRADE;
        recs[i].ts_ns = INT64_C(1700000000000000000);
        recs[i].profile_len =
            (uint8_t)snprintf(recs[i].profile, sizeof(recs[i].profile), "p%d", 1 + 2 * i);
        recs[i].present = REC_HAS_PNL;
        recs[i].pnl = 1;
    }
    assert_int_equal(sink_redis_ops.write(h.state, 0, recs, 2, 2, err, sizeof(err)), SINK_ERROR);
    assert_non_null(strstr(err, "WRONGTYPE"));
    r = redisCommand(c, "EXISTS %sprofile:p1 %strades:p1", h.prefix, h.prefix);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* Without it (as the worker retries after setting the record aside), the rest goes in. */
    assert_int_equal(sink_redis_ops.write(h.state, 0, recs, 1, 2, err, sizeof(err)), SINK_OK);
    r = redisCommand(c, "HGET %sprofile:p1 trades", h.prefix);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    redisFree(c);
    harness_cleanup(&h);
}

static void test_publish(void **unused)
{
    (void)unused;
    struct harness h;
    char err[300], channel[128];
    harness_init(&h, "", shared_port());
    snprintf(h.url, sizeof(h.url), "redis://127.0.0.1:%d/0", h.port);
    harness_set(&h, "pool_size", "1");
    harness_set(&h, "publish", "true");
    harness_set(&h, "stream_maxlen", "0");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);

    redisContext *sub = check_conn(&h);
    snprintf(channel, sizeof(channel), "%sevents:pub", h.prefix);
    redisReply *r = redisCommand(sub, "SUBSCRIBE %s", channel);
    freeReplyObject(r);
    struct record t;
    memset(&t, 0, sizeof(t));
    t.seq = 7;
    t.kind = RECORD_TRADE;
    t.ts_ns = INT64_C(1700000000123456000);
    t.profile_len = (uint8_t)snprintf(t.profile, sizeof(t.profile), "pub");
    t.symbol_len = (uint8_t)snprintf(t.symbol, sizeof(t.symbol), "a\"b");
    t.trade_id_len = (uint8_t)snprintf(t.trade_id, sizeof(t.trade_id), "x-1");
    t.present = REC_HAS_PNL;
    t.pnl = -2.5;
    assert_int_equal(sink_redis_ops.write(h.state, 0, &t, 1, 7, err, sizeof(err)), SINK_OK);
    void *vr = NULL;
    assert_int_equal(redisGetReply(sub, &vr), REDIS_OK);
    r = vr;
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[2]->str,
                        "{\"seq\":7,\"profile\":\"pub\",\"symbol\":\"a\\\"b\","
                        "\"trade_id\":\"x-1\",\"pnl\":-2.5,\"closed_at\":1700000000123456}");
    freeReplyObject(r);
    redisFree(sub);

    /* Absent fields are left out of the event; stream_maxlen 0 keeps no stream. */
    redisContext *c = check_conn(&h);
    r = redisCommand(c, "EXISTS %strades:pub", h.prefix);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = redisCommand(c, "HGET %sprofile:pub losses", h.prefix);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    redisFree(c);
    harness_cleanup(&h);
}

static void test_flushall_rebuilds_from_sql(void **unused)
{
    (void)unused;
    struct own_redis srv;
    struct harness h;
    struct model m;
    char err[300], url[64], dbpath[300];
    const size_t n = 20000;
    own_redis_init(&srv);
    own_redis_start(&srv, false, NULL);
    harness_init(&h, "", srv.port);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", srv.port);
    snprintf(h.url, sizeof(h.url), "%s", url);
    harness_set(&h, "starting_equity", "250.5");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    /* The default rebuild source: <data_dir>/telem.db, filled like the SQLite sink would. */
    snprintf(dbpath, sizeof(dbpath), "%s/telem.db", h.data_dir);
    sqlite3 *db = sql_open(dbpath, err, sizeof(err));
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);

    struct record *recs = make_workload(n, 1);
    sql_store(db, h.spool_id, recs, n / 2, recs[n / 2 - 1].seq);
    assert_int_equal(harness_drive(&h, recs, n / 2, 1500, 1), SINK_OK);

    /* Redis loses everything; a new sink state (a telemd restart) rebuilds at open_lane. */
    redis_do(srv.port, NULL, "FLUSHALL");
    harness_destroy(&h);
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);
    assert_int_equal(h.cursor[0], recs[n / 2 - 1].seq);
    assert_int_equal(h.cursor[1], recs[n / 2 - 1].seq);
    model_build(&m, recs, n / 2, 250.5);
    expect_model(&h, &m);
    expect_metric(h.state, "telem_redis_rebuilds_total{sink=\"live\"} 1");

    /* Lost while running: the next write finds the epoch gone and rebuilds by itself. The SQL
     * store is ahead (as the SQLite sink usually is); the rows above its cursor come from the
     * "spool" (the harness) and the ones at or below it are skipped. */
    size_t third = n * 3 / 4;
    sql_store(db, h.spool_id, recs + n / 2, third - n / 2, recs[third - 1].seq);
    assert_int_equal(harness_drive(&h, recs + n / 2, n / 8, 1000, 1), SINK_OK);
    redis_do(srv.port, NULL, "FLUSHALL");
    assert_int_equal(harness_drive(&h, recs + n / 2 + n / 8, n - n / 2 - n / 8, 1000, 1), SINK_OK);
    model_build(&m, recs, n, 250.5);
    expect_model(&h, &m);
    expect_metric(h.state, "telem_redis_rebuilds_total{sink=\"live\"} 2");

    /* Lost while the SQL store lags the lanes: RETRY until it catches up, then exact. */
    redis_do(srv.port, NULL, "FLUSHALL");
    struct record *more = make_workload(2000, n + 1);
    enum sink_result res = harness_drive(&h, more, 2000, 1000, 3);
    assert_int_equal(res, SINK_RETRY);
    sql_store(db, h.spool_id, recs + third, n - third, recs[n - 1].seq);
    assert_int_equal(harness_drive(&h, more, 2000, 1000, 5), SINK_OK);
    struct model m2;
    struct record *all = calloc(n + 2000, sizeof(*all));
    memcpy(all, recs, n * sizeof(*all));
    memcpy(all + n, more, 2000 * sizeof(*all));
    model_build(&m2, all, n + 2000, 250.5);
    expect_model(&h, &m2);

    /* More lanes than before: profiles change lanes, so the sink rebuilds at open. */
    sql_store(db, h.spool_id, more, 2000, more[1999].seq);
    harness_destroy(&h);
    harness_set(&h, "pool_size", "3");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_int_equal(h.lanes, 3);
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);
    for (unsigned l = 0; l < 3; l++)
        assert_int_equal(h.cursor[l], more[1999].seq);
    expect_model(&h, &m2);
    expect_metric(h.state, "telem_redis_rebuilds_total{sink=\"live\"} 1");

    sqlite3_close(db);
    free(all);
    free(more);
    free(recs);
    harness_cleanup(&h);
    own_redis_cleanup(&srv);
}

static void test_redis_down_then_back(void **unused)
{
    (void)unused;
    struct own_redis srv;
    struct harness h;
    struct model m;
    char err[300], url[64];
    const size_t n = 12000;
    own_redis_init(&srv);
    own_redis_start(&srv, true, NULL);
    harness_init(&h, "", srv.port);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", srv.port);
    snprintf(h.url, sizeof(h.url), "%s", url);
    harness_set(&h, "rebuild_from", "none");
    harness_set(&h, "connect_timeout_ms", "500");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);
    struct record *recs = make_workload(n, 1);
    assert_int_equal(harness_drive(&h, recs, n / 3, 1000, 1), SINK_OK);

    /* Killed (appendfsync always keeps every acknowledged write): writes answer RETRY. */
    own_redis_stop(&srv, SIGKILL);
    assert_int_equal(harness_drive(&h, recs + n / 3, n / 3, 1000, 3), SINK_RETRY);
    own_redis_start(&srv, true, NULL);
    assert_int_equal(harness_drive(&h, recs + n / 3, n - n / 3, 1000, 100), SINK_OK);
    model_build(&m, recs, n, 0);
    expect_model(&h, &m);
    expect_metric(h.state, "telem_redis_rebuilds_total{sink=\"live\"} 0");

    harness_cleanup(&h);
    own_redis_cleanup(&srv);
    free(recs);
}

static void test_password_and_lossy(void **unused)
{
    (void)unused;
    struct own_redis srv;
    struct harness h;
    char err[300], url[64], dbpath[300];
    own_redis_init(&srv);
    own_redis_start(&srv, false, "pw-right");
    harness_init(&h, "", srv.port);
    h.password = "pw-right";
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", srv.port);
    snprintf(h.url, sizeof(h.url), "%s", url);
    harness_set(&h, "password", "pw-wrong-secret");
    harness_set(&h, "lossy_after", "500");
    harness_set(&h, "pool_size", "1");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    err[0] = '\0';
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_RETRY);
    assert_non_null(strstr(err, "AUTH"));
    assert_null(strstr(err, "pw-wrong-secret"));
    harness_destroy(&h);

    harness_set(&h, "password", "pw-right");
    assert_int_equal(harness_create(&h, err, sizeof(err)), 0);
    snprintf(dbpath, sizeof(dbpath), "%s/telem.db", h.data_dir);
    sqlite3 *db = sql_open(dbpath, err, sizeof(err));
    assert_int_equal(harness_open(&h, 1, err, sizeof(err)), SINK_OK);

    /* The SQL store is 5000 records ahead: batches are skipped until within 500 of it. */
    struct record *recs = make_workload(6000, 1);
    sql_store(db, h.spool_id, recs, 5000, 5000);
    assert_int_equal(harness_drive(&h, recs, 6000, 1000, 1), SINK_OK);
    char *text = metrics_text(h.state);
    const char *line = strstr(text, "telem_redis_lossy_skipped_total{sink=\"live\"} ");
    assert_non_null(line);
    unsigned long long skipped = strtoull(strchr(line, '}') + 2, NULL, 10);
    assert_true(skipped >= 4000 && skipped <= 5000);
    free(text);
    /* The cursor moved on over the skipped batches. */
    redisContext *c = check_conn(&h);
    redisReply *r = redisCommand(c, "KEYS %scursor:*", h.prefix);
    assert_true(r->elements >= 1);
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(h.cursor[0], 6000);

    sqlite3_close(db);
    free(recs);
    harness_cleanup(&h);
    own_redis_cleanup(&srv);
}

/* Drives any sink as the worker does (used for the MariaDB store the rebuild reads). */
static void drive_ops(const struct sink_ops *ops, void *state, const struct record *recs, size_t n,
                      size_t batch)
{
    unsigned lanes = ops->lanes(state);
    struct record *mine = calloc(batch, sizeof(*mine));
    char err[512];
    for (unsigned l = 0; l < lanes; l++) {
        uint64_t c = 0;
        if (ops->open_lane(state, l, &c, err, sizeof(err)) != SINK_OK)
            fail_msg("%s open_lane %u: %s", ops->scheme, l, err);
    }
    for (size_t a = 0; a < n; a += batch) {
        size_t b = a + batch < n ? a + batch : n;
        for (unsigned l = 0; l < lanes; l++) {
            size_t k = 0;
            for (size_t i = a; i < b; i++) {
                if (record_lane(&recs[i], lanes) == l)
                    mine[k++] = recs[i];
            }
            enum sink_result r = ops->write(state, l, mine, k, recs[b - 1].seq, err, sizeof(err));
            if (r != SINK_OK)
                fail_msg("%s write: %d %s", ops->scheme, r, err);
        }
    }
    free(mine);
}

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: start the test services "
                 "(eval \"$(scripts/test-services.sh start DIR)\"), or run scripts/test.sh",
                 name);
    return v;
}

static void test_rebuild_from_mariadb(void **unused)
{
    (void)unused;
    const char *sock = need_env("TELEM_TEST_MARIADB_SOCKET");
    const char *user = need_env("TELEM_TEST_MARIADB_USER");
    const char *password = need_env("TELEM_TEST_MARIADB_PASSWORD");
    char db[64], q[200], url[600], err[512], redis_url[64];
    snprintf(db, sizeof(db), "telem_redis_%d", (int)getpid());
    MYSQL *admin = mysql_init(NULL);
    assert_non_null(mysql_real_connect(admin, NULL, user, password, NULL, 0, sock, 0));
    snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s", db);
    assert_int_equal(mysql_query(admin, q), 0);
    snprintf(q, sizeof(q), "CREATE DATABASE %s", db);
    assert_int_equal(mysql_query(admin, q), 0);

    /* The real MariaDB sink writes the rows: first with 3 lanes, then with 2, which leaves
     * the rows of the 3-lane layout frozen behind in telem_cursor. */
    struct harness h;
    struct model m;
    const size_t n = 9000;
    harness_init(&h, "", shared_port());
    snprintf(url, sizeof(url), "mariadb://%s@localhost/%s?socket=%s", user, db, sock);
    struct record *recs = make_workload(n, 1);
    for (int round = 0; round < 2; round++) {
        struct sink_setting set[] = {
            {.key = "password", .value = password},
            {.key = "lanes", .value = round == 0 ? "3" : "2"},
            {.key = "pool_size", .value = "3"},
        };
        struct sink_config cfg = {.name = "main",
                                  .url = url,
                                  .settings = set,
                                  .nsettings = 3,
                                  .spool_id = h.spool_id,
                                  .data_dir = h.data_dir};
        void *state = NULL;
        if (sink_mariadb_ops.create(&cfg, &state, err, sizeof(err)) < 0)
            fail_msg("mariadb create: %s", err);
        if (round == 0)
            drive_ops(&sink_mariadb_ops, state, recs, n / 3, 1000);
        else
            drive_ops(&sink_mariadb_ops, state, recs + n / 3, n - n / 3, 1000);
        sink_mariadb_ops.destroy(state);
    }

    snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%d/0", h.port);
    struct redis_rebuild_options opt = {
        .prefix = h.prefix,
        .spool_id = NULL, /* the only spool of this database */
        .sql_url = url,
        .sql_password = password,
        .starting_equity = 0,
        .stream_maxlen = 1000,
        .chunk_records = 700,
    };
    struct redis_rebuild_result res;
    if (redis_rebuild_run(redis_url, NULL, &opt, &res, err, sizeof(err)) < 0)
        fail_msg("rebuild: %s", err);
    assert_memory_equal(res.spool_id, h.spool_id, 16);
    assert_int_equal(res.cursor, n);
    assert_int_equal(res.trades + res.metrics, n);
    model_build(&m, recs, n, 0);
    expect_model(&h, &m);

    snprintf(q, sizeof(q), "DROP DATABASE %s", db);
    assert_int_equal(mysql_query(admin, q), 0);
    mysql_close(admin);
    free(recs);
    harness_cleanup(&h);
}

static void test_settings_errors(void **unused)
{
    (void)unused;
    struct harness h;
    char err[300];
    harness_init(&h, "redis://127.0.0.1:1/0", 0);
    harness_set(&h, "bogus", "1");
    assert_int_not_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "bogus"));
    harness_cleanup(&h);

    harness_init(&h, "redis://127.0.0.1:1/0", 0);
    harness_set(&h, "pool_size", "0");
    assert_int_not_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "pool_size"));
    harness_cleanup(&h);

    harness_init(&h, "redis://h:99999/0", 0);
    assert_int_not_equal(harness_create(&h, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "port"));
    harness_cleanup(&h);
}

int main(void)
{
    const char *seed = getenv("TELEM_TEST_SEED");
    rng_state = seed ? strtoull(seed, NULL, 10) : (uint64_t)time(NULL) * 2654435761u + 1;
    if (rng_state == 0)
        rng_state = 1;
    printf("test_sink_redis: TELEM_TEST_SEED=%llu\n", (unsigned long long)rng_state);
    log_level_current = LOG_LEVEL_WARN;
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_started_servers);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_totals_exact_and_replay),
        cmocka_unit_test(test_late_metric_and_unix_socket),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_wrong_type_key_refused),
        cmocka_unit_test(test_flushall_rebuilds_from_sql),
        cmocka_unit_test(test_redis_down_then_back),
        cmocka_unit_test(test_password_and_lossy),
        cmocka_unit_test(test_rebuild_from_mariadb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
