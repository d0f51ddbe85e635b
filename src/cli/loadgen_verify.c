/*
 * loadgen_verify.c: per-profile row counts from a store, compared with what was acknowledged.
 *
 * Each store is a small table of functions that counts rows per profile for a name range, so
 * the waiting and comparing logic is written once.
 */
#include "cli/loadgen_verify.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/query_backend.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "sink/mariadb/sink_mariadb.h"

struct count_store_ops {
    const char *scheme;
    /* open connects to url; returns 0 or -errno with err filled. */
    int (*open)(const char *url, void **h, char *err, size_t errlen);
    /* count adds, for every row whose profile starts with prefix, 1 to counts[index]. */
    int (*count)(void *h, const char *prefix, unsigned profiles, uint64_t *counts, char *err,
                 size_t errlen);
    void (*close)(void *h);
};

/* profile_index parses "<prefix>p<N>" back to N; returns -1 for other names. */
static long profile_index(const char *name, size_t prefix_len, unsigned profiles)
{
    if (strlen(name) <= prefix_len + 1 || name[prefix_len] != 'p')
        return -1;
    char *end;
    long i = strtol(name + prefix_len + 1, &end, 10);
    return *end || i < 0 || (unsigned long)i >= profiles ? -1 : i;
}

static int sqlite_count_open(const char *url, void **h, char *err, size_t errlen)
{
    const char *path = url;
    if (strncmp(path, "sqlite://", 9) == 0)
        path += 9;
    else if (strncmp(path, "sqlite:", 7) == 0)
        path += 7;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_busy_timeout(db, 5000);
    *h = db;
    return 0;
}

static int sqlite_count(void *h, const char *prefix, unsigned profiles, uint64_t *counts, char *err,
                        size_t errlen)
{
    static const char *const queries[] = {
        "SELECT profile_id, COUNT(*) FROM trade_performance WHERE profile_id >= ?1 AND "
        "profile_id < ?2 GROUP BY profile_id",
        "SELECT profile_id, COUNT(*) FROM aggregated_metric WHERE profile_id >= ?1 AND "
        "profile_id < ?2 GROUP BY profile_id",
    };
    sqlite3 *db = h;
    char hi[160];
    snprintf(hi, sizeof(hi), "%s\x7f", prefix);
    size_t plen = strlen(prefix);
    for (size_t q = 0; q < 2; q++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, queries[q], -1, &st, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
            return -EIO;
        }
        sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            long i = profile_index((const char *)sqlite3_column_text(st, 0), plen, profiles);
            if (i >= 0)
                counts[i] += (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
            return -EIO;
        }
    }
    return 0;
}

static void sqlite_count_close(void *h)
{
    sqlite3_close(h);
}

static const struct count_store_ops count_sqlite = {
    .scheme = "sqlite:",
    .open = sqlite_count_open,
    .count = sqlite_count,
    .close = sqlite_count_close,
};

/* The MariaDB counter connects like `telemctl query` does (query_mariadb_admin_open). */
static int mariadb_count_open(const char *url, void **h, char *err, size_t errlen)
{
    struct sink_mariadb_admin *a = xcalloc(1, sizeof(*a));
    int rc = query_mariadb_admin_open(url, a, err, errlen);
    if (rc < 0) {
        free(a);
        return rc;
    }
    *h = a;
    return 0;
}

/* mariadb_count_error fills err from st and closes it. */
static int mariadb_count_error(MYSQL_STMT *st, char *err, size_t errlen)
{
    snprintf(err, errlen, "mariadb: %s (error %u)", mysql_stmt_error(st), mysql_stmt_errno(st));
    mysql_stmt_close(st);
    return -EIO;
}

static int mariadb_count(void *h, const char *prefix, unsigned profiles, uint64_t *counts,
                         char *err, size_t errlen)
{
    static const char *const queries[] = {
        "SELECT profile_id, COUNT(*) FROM trade_performance WHERE profile_id >= ? AND "
        "profile_id < ? GROUP BY profile_id",
        "SELECT profile_id, COUNT(*) FROM aggregated_metric WHERE profile_id >= ? AND "
        "profile_id < ? GROUP BY profile_id",
    };
    struct sink_mariadb_admin *a = h;
    char hi[160];
    snprintf(hi, sizeof(hi), "%s\x7f", prefix);
    size_t plen = strlen(prefix);
    unsigned long lens[2] = {(unsigned long)strlen(prefix), (unsigned long)strlen(hi)};
    for (size_t q = 0; q < 2; q++) {
        MYSQL_STMT *st = mysql_stmt_init(a->mysql);
        if (!st) {
            snprintf(err, errlen, "mariadb: out of memory");
            return -ENOMEM;
        }
        MYSQL_BIND params[2], res[2];
        memset(params, 0, sizeof(params));
        memset(res, 0, sizeof(res));
        params[0].buffer_type = MYSQL_TYPE_STRING;
        params[0].buffer = (void *)prefix;
        params[0].buffer_length = lens[0];
        params[0].length = &lens[0];
        params[1].buffer_type = MYSQL_TYPE_STRING;
        params[1].buffer = hi;
        params[1].buffer_length = lens[1];
        params[1].length = &lens[1];
        char name[1024];
        unsigned long name_len = 0;
        my_bool name_null = 0;
        unsigned long long n = 0;
        res[0].buffer_type = MYSQL_TYPE_STRING;
        res[0].buffer = name;
        res[0].buffer_length = sizeof(name) - 1;
        res[0].length = &name_len;
        res[0].is_null = &name_null;
        res[1].buffer_type = MYSQL_TYPE_LONGLONG;
        res[1].buffer = &n;
        res[1].is_unsigned = 1;
        if (mysql_stmt_prepare(st, queries[q], (unsigned long)strlen(queries[q])) != 0 ||
            mysql_stmt_bind_param(st, params) != 0 || mysql_stmt_execute(st) != 0 ||
            mysql_stmt_bind_result(st, res) != 0)
            return mariadb_count_error(st, err, errlen);
        int frc;
        while ((frc = mysql_stmt_fetch(st)) == 0 || frc == MYSQL_DATA_TRUNCATED) {
            if (frc != 0 || name_null)
                continue; /* a name longer than any loadgen makes is not one of its profiles */
            name[name_len] = '\0';
            long i = profile_index(name, plen, profiles);
            if (i >= 0)
                counts[i] += (uint64_t)n;
        }
        if (frc != MYSQL_NO_DATA)
            return mariadb_count_error(st, err, errlen);
        mysql_stmt_close(st);
    }
    return 0;
}

static void mariadb_count_close(void *h)
{
    sink_mariadb_admin_close(h);
    free(h);
}

static const struct count_store_ops count_mariadb = {
    .scheme = "mariadb:",
    .open = mariadb_count_open,
    .count = mariadb_count,
    .close = mariadb_count_close,
};

static const struct count_store_ops *const count_stores[] = {&count_sqlite, &count_mariadb};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int loadgen_verify(const char *url, const char *prefix, unsigned profiles, const uint64_t *acked,
                   double settle_s, struct loadgen_verify_result *res)
{
    memset(res, 0, sizeof(*res));
    const struct count_store_ops *ops = NULL;
    for (size_t i = 0; i < sizeof(count_stores) / sizeof(count_stores[0]); i++) {
        if (strncmp(url, count_stores[i]->scheme, strlen(count_stores[i]->scheme)) == 0)
            ops = count_stores[i];
    }
    if (!ops) {
        snprintf(res->detail, sizeof(res->detail), "cannot verify against '%s': unknown store",
                 url);
        return -EINVAL;
    }
    for (unsigned i = 0; i < profiles; i++)
        res->expected += acked[i];

    void *h = NULL;
    int rc = ops->open(url, &h, res->detail, sizeof(res->detail));
    if (rc < 0)
        return rc;
    uint64_t *counts = xcalloc(profiles, sizeof(*counts));
    int64_t start = clock_mono_ns(), last_change = start;
    uint64_t last_total = UINT64_MAX;
    for (;;) {
        int64_t query_start = clock_mono_ns();
        memset(counts, 0, profiles * sizeof(*counts));
        rc = ops->count(h, prefix, profiles, counts, res->detail, sizeof(res->detail));
        if (rc < 0)
            goto done;
        uint64_t total = 0;
        for (unsigned i = 0; i < profiles; i++)
            total += counts[i];
        int64_t now = clock_mono_ns();
        if (total != last_total) {
            last_total = total;
            last_change = now;
        }
        res->stored = total;
        if (total >= res->expected || (double)(now - last_change) / 1e9 >= settle_s)
            break;
        /* Counting is a read transaction that holds back SQLite's WAL checkpoints and takes a
         * core from the sinks: poll at most a third of the time. */
        int64_t took_ms = (now - query_start) / 1000000;
        sleep_ms((unsigned)(took_ms * 2 > 500 ? took_ms * 2 : 500));
    }
    res->wait_s = (double)(clock_mono_ns() - start) / 1e9;
    res->exact = true;
    for (unsigned i = 0; i < profiles; i++) {
        if (counts[i] == acked[i])
            continue;
        res->exact = false;
        if (counts[i] < acked[i])
            res->missing++;
        else
            res->extra++;
        if (!res->detail[0])
            snprintf(res->detail, sizeof(res->detail),
                     "profile %sp%04u: %llu rows stored, %llu acknowledged", prefix, i,
                     (unsigned long long)counts[i], (unsigned long long)acked[i]);
    }
done:
    free(counts);
    ops->close(h);
    return rc;
}
