/*
 * sink_redis.c: the Redis sink (scheme "redis"): live per-profile state, kept exactly once.
 *
 * Each write() packs its batch into chunks and pipelines one EVALSHA of apply.lua per chunk on a
 * pooled connection. The script checks the lane's cursor key first, applies only records above
 * it, and sets the new cursor in the same atomic step, so a batch replayed after a crash or a
 * lost reply changes nothing, even for counters.
 *
 * Lost state. The state carries an epoch (a random token in P epoch:H, redis_rebuild.h) and every
 * apply call names the epoch it expects and the cursor it believes stored. A missing or foreign
 * epoch (FLUSHALL, a restart without persistence, a rebuild by telemctl) answers LOST; a stored
 * cursor below the expected one (Redis lost acknowledged writes) answers BEHIND. Then the sink
 * takes its state lock exclusively, so no lane writes, and recovers:
 *   - the epoch is another process's finished rebuild whose base cursor is at or past every
 *     lane's cursor: adopt it and carry on;
 *   - a rebuild marker is in place: RETRY until it is done;
 *   - otherwise rebuild from the SQL store (setting rebuild_from, default <data_dir>/telem.db)
 *     up to its cursor, which must be at or past every lane's cursor: the spool may already
 *     have deleted what the lanes stored, and only SQL still has it. Until the SQL store gets
 *     there the sink answers RETRY. Records above the rebuilt cursor come from the spool as
 *     usual; the script skips those at or below it.
 *   - with no SQL store, the sink starts a new epoch at the lanes' cursors, logs an error and
 *     counts the records the live state is now missing (lost_records_total).
 * open_lane does the same when the epoch is missing at start, when the number of lanes changed
 * (profiles would move between lane cursors), or when a lane's stored cursor went backwards.
 *
 * Lossy mode (lossy_after > 0): a lane more than lossy_after records behind the SQL store's
 * cursor (the sink cannot see the spool head; the SQL sink tracks it closely) moves its cursor
 * over whole batches without applying them, counted in lossy_skipped_total, until it is within
 * reach again. The live totals then miss those records until `telemctl redis rebuild`.
 *
 * Lanes: one per pool connection (pool_size, default 2), by hash of profile, each with its own
 * cursor key P cursor:H:SINK.N.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/log.h"
#include "pool/pool.h"
#include "sink/redis/redis_apply.h"
#include "sink/redis/redis_conn.h"
#include "sink/redis/redis_rebuild.h"
#include "sink/redis/redis_source.h"
#include "sink/redis/redis_url.h"
#include "sink/sink.h"

#define LOG_COMPONENT      "redis"
#define KEY_MAX            512
#define LOSSY_CHECK_NS     (1000LL * 1000 * 1000)
#define WRITE_ATTEMPTS_MAX 4

struct redis_settings {
    char *password;
    char *prefix;
    int64_t pool_size;
    double starting_equity;
    int64_t stream_maxlen;
    bool publish;
    int64_t lossy_after;
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
    int64_t chunk_records;
    char *rebuild_from;
    char *rebuild_password;
};

static const struct conf_entry redis_settings_table[] = {
    {"password", CONF_STRING, NULL, offsetof(struct redis_settings, password),
     "password (AUTH); better from TELEM_<NAME>_PASSWORD than the config file", 0, 0, NULL},
    {"prefix", CONF_STRING, "telem:", offsetof(struct redis_settings, prefix),
     "prefix of every key the sink writes; one spool per prefix", 0, 0, NULL},
    {"pool_size", CONF_INT, "2", offsetof(struct redis_settings, pool_size),
     "connections, and lanes writing in parallel", 1, 64, NULL},
    {"starting_equity", CONF_DOUBLE, "0", offsetof(struct redis_settings, starting_equity),
     "equity of a profile before its first trade", 0, 0, NULL},
    {"stream_maxlen", CONF_INT, "1000", offsetof(struct redis_settings, stream_maxlen),
     "approximate length of each profile's trade stream; 0 keeps no stream", 0, 1e9, NULL},
    {"publish", CONF_BOOL, "false", offsetof(struct redis_settings, publish),
     "PUBLISH each trade as JSON on <prefix>events:<profile>", 0, 0, NULL},
    {"lossy_after", CONF_INT, "0", offsetof(struct redis_settings, lossy_after),
     "skip ahead when more than this many records behind the SQL store; 0: never", 0, 1e15, NULL},
    {"connect_timeout_ms", CONF_INT, "2000", offsetof(struct redis_settings, connect_timeout_ms),
     "connect timeout", 1, 600000, NULL},
    {"command_timeout_ms", CONF_INT, "10000", offsetof(struct redis_settings, command_timeout_ms),
     "timeout of one reply", 1, 3600000, NULL},
    {"chunk_records", CONF_INT, "2000", offsetof(struct redis_settings, chunk_records),
     "records per EVALSHA; a batch goes as several, pipelined", 1, 100000, NULL},
    {"rebuild_from", CONF_STRING, NULL, offsetof(struct redis_settings, rebuild_from),
     "SQL store to rebuild lost state from (sqlite:PATH, mariadb://...; none: never); "
     "default <data_dir>/telem.db when it exists",
     0, 0, NULL},
    {"rebuild_password", CONF_STRING, NULL, offsetof(struct redis_settings, rebuild_password),
     "password of the MariaDB store named by rebuild_from", 0, 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL},
};

struct redis_lane {
    bool opened;
    uint64_t known; /* the cursor this lane last stored or read; valid when opened */
    char cursor_key[KEY_MAX];
    struct redis_apply_buf buf;
    struct redis_source *lossy_src; /* opened lazily, for lossy_after */
    int64_t lossy_checked_ns;
    uint64_t lossy_sql_cursor;
};

struct sink_redis {
    char *name;
    char *data_dir;
    struct redis_settings set;
    struct redis_url url;
    char where[REDIS_URL_HOST_MAX + 32]; /* the URL without password, for messages */
    uint8_t spool_id[REDIS_REBUILD_SPOOL_ID_SIZE];
    char spool_hex[2 * REDIS_REBUILD_SPOOL_ID_SIZE + 1];
    char epoch_key[KEY_MAX];
    char base_key[KEY_MAX];
    char lanes_key[KEY_MAX];
    unsigned nlanes;
    struct redis_lane *lanes;
    struct pool *pool;

    /*
     * Writes hold state_lock shared; recovery (rebuild, adopting an epoch) and open_lane hold it
     * exclusively. epoch and every lane's `known` of another lane are read under it.
     */
    pthread_rwlock_t state_lock;
    char epoch[REDIS_APPLY_EPOCH_MAX + 1]; /* "" until the first open_lane */
    bool durability_checked;

    pthread_mutex_t sha_lock;
    char sha[REDIS_APPLY_SHA_SIZE]; /* "" until loaded */

    atomic_uint_fast64_t rebuilds;
    atomic_uint_fast64_t rebuild_failures;
    atomic_uint_fast64_t lossy_skipped;
    atomic_uint_fast64_t lost_records;
    atomic_uint_fast64_t adopted;
};

enum write_outcome {
    WRITE_DONE,    /* every chunk OK or DUP */
    WRITE_RECOVER, /* LOST or BEHIND: recover, then write again */
    WRITE_RELOAD,  /* NOSCRIPT: load the script, then write again */
    WRITE_RETRY,
    WRITE_ERROR,
};

/* ---- connections ---------------------------------------------------------------------- */

static int redis_pool_connect(void *ctx, void **conn, char *err, size_t errlen)
{
    struct sink_redis *st = ctx;
    struct redis_conn_options co = {
        .url = &st->url,
        .password = st->set.password,
        .connect_timeout_ms = (unsigned)st->set.connect_timeout_ms,
        .command_timeout_ms = (unsigned)st->set.command_timeout_ms,
    };
    redisContext *c = redis_conn_open(&co, err, errlen);
    if (!c)
        return -ECONNREFUSED;
    *conn = c;
    return 0;
}

static int redis_pool_ping(void *conn)
{
    return redis_conn_ping(conn);
}

static void redis_pool_close(void *conn)
{
    redisFree(conn);
}

static const struct pool_conn_ops redis_pool_ops = {
    .connect = redis_pool_connect,
    .ping = redis_pool_ping,
    .close = redis_pool_close,
};

/* Loads the script once per process (again after NOSCRIPT), and copies its SHA into sha. */
static int ensure_script(struct sink_redis *st, redisContext *c, bool force, char *sha, char *err,
                         size_t errlen)
{
    pthread_mutex_lock(&st->sha_lock);
    int rc = 0;
    if (force || st->sha[0] == '\0')
        rc = redis_apply_load(c, st->sha, err, errlen);
    memcpy(sha, st->sha, REDIS_APPLY_SHA_SIZE);
    pthread_mutex_unlock(&st->sha_lock);
    return rc;
}

/* ---- small key reads and writes ------------------------------------------------------- */

static int get_text(redisContext *c, const char *key, char *out, size_t cap, bool *found, char *err,
                    size_t errlen)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    int rc = redis_conn_reply_check(c, r, err, errlen);
    *found = false;
    out[0] = '\0';
    if (rc == 0 && r->type == REDIS_REPLY_STRING) {
        snprintf(out, cap, "%.*s", (int)r->len, r->str);
        *found = true;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

static int get_u64(redisContext *c, const char *key, uint64_t *v, char *err, size_t errlen)
{
    char text[32];
    bool found;
    int rc = get_text(c, key, text, sizeof(text), &found, err, errlen);
    *v = found ? strtoull(text, NULL, 10) : 0;
    return rc;
}

static int set_text(redisContext *c, const char *key, const char *value, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "SET %s %s", key, value);
    int rc = redis_conn_reply_check(c, r, err, errlen);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* The lane's stored cursor: its own key or the base cursor, whichever is further. */
static int stored_cursor(struct sink_redis *st, redisContext *c, unsigned lane, uint64_t *cur,
                         char *err, size_t errlen)
{
    uint64_t own = 0, base = 0;
    int rc = get_u64(c, st->lanes[lane].cursor_key, &own, err, errlen);
    if (rc == 0)
        rc = get_u64(c, st->base_key, &base, err, errlen);
    *cur = own > base ? own : base;
    return rc;
}

static uint64_t max_known(const struct sink_redis *st)
{
    uint64_t k = 0;
    for (unsigned i = 0; i < st->nlanes; i++) {
        if (st->lanes[i].opened && st->lanes[i].known > k)
            k = st->lanes[i].known;
    }
    return k;
}

/* The SQL store to rebuild from, or NULL when there is none. */
static const char *rebuild_source(const struct sink_redis *st, char *buf, size_t cap)
{
    if (st->set.rebuild_from) {
        if (strcmp(st->set.rebuild_from, "none") == 0 || st->set.rebuild_from[0] == '\0')
            return NULL;
        return st->set.rebuild_from;
    }
    struct stat sb;
    snprintf(buf, cap, "%s/telem.db", st->data_dir ? st->data_dir : ".");
    return stat(buf, &sb) == 0 ? buf : NULL;
}

/* ---- recovery ------------------------------------------------------------------------- */

/* No SQL store: start a new epoch at the lanes' cursors and count what is now missing. */
static int restart_without_sql(struct sink_redis *st, redisContext *c, const char *why, char *err,
                               size_t errlen)
{
    char token[33], base[24];
    uint64_t k = max_known(st), stored = 0;
    int rc = redis_rebuild_stored_cursor(c, st->set.prefix, st->spool_id, &stored, err, errlen);
    if (rc < 0)
        return rc;
    if (stored > k)
        k = stored; /* never let a lane go back over records other lanes' cursors passed */
    rc = redis_rebuild_new_token(token);
    if (rc < 0) {
        snprintf(err, errlen, "getrandom: %s", strerror(-rc));
        return rc;
    }
    snprintf(base, sizeof(base), "%llu", (unsigned long long)k);
    rc = set_text(c, st->base_key, base, err, errlen);
    if (rc == 0)
        rc = set_text(c, st->epoch_key, token, err, errlen);
    if (rc < 0)
        return rc;
    if (k > 0) {
        atomic_fetch_add(&st->lost_records, k);
        LOG_ERROR(LOG_COMPONENT,
                  "sink %s: %s and no SQL store to rebuild from (rebuild_from): live totals "
                  "now miss records up to seq %llu; run `telemctl redis rebuild` to repair",
                  st->name, why, (unsigned long long)k);
    } else {
        LOG_INFO(LOG_COMPONENT, "sink %s: new live state in %s", st->name, st->where);
    }
    snprintf(st->epoch, sizeof(st->epoch), "%s", token);
    return 0;
}

/* Rebuilds from SQL up to at least every lane's cursor. Exclusive lock held. */
static int rebuild(struct sink_redis *st, redisContext *c, const char *why, char *err,
                   size_t errlen)
{
    char path[4096];
    const char *sql = rebuild_source(st, path, sizeof(path));
    if (!sql)
        return restart_without_sql(st, c, why, err, errlen);

    struct redis_rebuild_options opt = {
        .prefix = st->set.prefix,
        .spool_id = st->spool_id,
        .sql_url = sql,
        .sql_password = st->set.rebuild_password,
        .data_dir = st->data_dir,
        .starting_equity = st->set.starting_equity,
        .stream_maxlen = st->set.stream_maxlen,
        .min_cursor = max_known(st),
        .wait_ms = 0,
        .chunk_records = (unsigned)st->set.chunk_records,
    };
    struct redis_rebuild_result res;
    bool first = st->epoch[0] == '\0'; /* building a new store's state is routine */
    LOG(first ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, LOG_COMPONENT,
        "sink %s: %s; rebuilding live state from %s", st->name, why, sql);
    int rc = redis_rebuild_on(c, &opt, &res, err, errlen);
    if (rc < 0) {
        atomic_fetch_add(&st->rebuild_failures, 1);
        LOG_WARN(LOG_COMPONENT, "sink %s: rebuild not done yet: %s", st->name, err);
        return rc;
    }
    if (!first || res.trades + res.metrics > 0)
        atomic_fetch_add(&st->rebuilds, 1); /* a new store's empty start is no rebuild */
    snprintf(st->epoch, sizeof(st->epoch), "%s", res.epoch);
    bool replayed = res.trades + res.metrics > 0;
    LOG(first && !replayed ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, LOG_COMPONENT,
        "sink %s: rebuilt live state up to seq %llu (%llu trades, %llu metrics) in %.1f s",
        st->name, (unsigned long long)res.cursor, (unsigned long long)res.trades,
        (unsigned long long)res.metrics, res.seconds);
    return 0;
}

/*
 * Brings the sink's idea of the live state in line with Redis (see the file comment).
 * Exclusive lock held. Returns 0 when writes may go on, -EAGAIN to retry later, or another
 * negative errno; err filled.
 */
static int recover_state(struct sink_redis *st, redisContext *c, char *err, size_t errlen)
{
    char cur[REDIS_APPLY_EPOCH_MAX + 1];
    bool found;
    int rc = get_text(c, st->epoch_key, cur, sizeof(cur), &found, err, errlen);
    if (rc < 0)
        return rc;
    if (!found)
        return rebuild(st, c, st->epoch[0] ? "live state lost (epoch key gone)" : "no live state",
                       err, errlen);
    if (strncmp(cur, "rebuilding:", 11) == 0) {
        snprintf(err, errlen, "a rebuild of the live state is running");
        return -EAGAIN;
    }
    if (st->epoch[0] == '\0') {
        /* The first open of this process: the state is what it is. */
        LOG_INFO(LOG_COMPONENT, "sink %s: live state in %s", st->name, st->where);
        snprintf(st->epoch, sizeof(st->epoch), "%s", cur);
        return 0;
    }
    if (strcmp(cur, st->epoch) != 0) {
        uint64_t base = 0;
        rc = get_u64(c, st->base_key, &base, err, errlen);
        if (rc < 0)
            return rc;
        if (base >= max_known(st)) {
            LOG_INFO(LOG_COMPONENT, "sink %s: adopting live state rebuilt up to seq %llu", st->name,
                     (unsigned long long)base);
            atomic_fetch_add(&st->adopted, 1);
            snprintf(st->epoch, sizeof(st->epoch), "%s", cur);
            return 0;
        }
        return rebuild(st, c, "live state rebuilt elsewhere short of our cursors", err, errlen);
    }
    /* Same epoch: has any lane's stored cursor gone backwards? */
    for (unsigned i = 0; i < st->nlanes; i++) {
        uint64_t stored;
        if (!st->lanes[i].opened)
            continue;
        rc = stored_cursor(st, c, i, &stored, err, errlen);
        if (rc < 0)
            return rc;
        if (stored < st->lanes[i].known) {
            char why[160];
            snprintf(why, sizeof(why), "lane %u's cursor went back from %llu to %llu", i,
                     (unsigned long long)st->lanes[i].known, (unsigned long long)stored);
            return rebuild(st, c, why, err, errlen);
        }
    }
    return 0;
}

/*
 * Records how many lanes this sink writes with, so that a later start with another number
 * (profiles would change lanes and lane cursors) is noticed. A rebuild deletes the key, so it
 * is written again after every recovery.
 */
static int note_lanes(struct sink_redis *st, redisContext *c, char *err, size_t errlen)
{
    char text[16];
    snprintf(text, sizeof(text), "%u", st->nlanes);
    return set_text(c, st->lanes_key, text, err, errlen);
}

/* recover_state, then note_lanes. */
static int recover(struct sink_redis *st, redisContext *c, char *err, size_t errlen)
{
    int rc = recover_state(st, c, err, errlen);
    return rc < 0 ? rc : note_lanes(st, c, err, errlen);
}

static enum sink_result result_for(int rc)
{
    return rc == -EINVAL ? SINK_ERROR : SINK_RETRY;
}

/* ---- the sink ops --------------------------------------------------------------------- */

static void settings_free(struct redis_settings *s)
{
    conf_free(redis_settings_table, s);
}

static void redis_destroy(void *state)
{
    struct sink_redis *st = state;
    if (!st)
        return;
    pool_destroy(st->pool);
    for (unsigned i = 0; st->lanes && i < st->nlanes; i++) {
        redis_apply_buf_free(&st->lanes[i].buf);
        redis_source_close(st->lanes[i].lossy_src);
    }
    free(st->lanes);
    pthread_rwlock_destroy(&st->state_lock);
    pthread_mutex_destroy(&st->sha_lock);
    settings_free(&st->set);
    free(st->name);
    free(st->data_dir);
    free(st);
}

static int redis_create(const struct sink_config *cfg, void **state, char *err, size_t errlen)
{
    struct sink_redis *st = xcalloc(1, sizeof(*st));
    char why[200];
    int rc;

    pthread_rwlock_init(&st->state_lock, NULL);
    pthread_mutex_init(&st->sha_lock, NULL);
    st->name = xstrdup(cfg->name);
    st->data_dir = cfg->data_dir ? xstrdup(cfg->data_dir) : NULL;
    rc = conf_defaults(redis_settings_table, &st->set);
    if (rc < 0) {
        snprintf(err, errlen, "redis settings: bad defaults");
        goto fail;
    }
    for (size_t i = 0; i < cfg->nsettings; i++) {
        const struct sink_setting *s = &cfg->settings[i];
        rc = conf_set(redis_settings_table, &st->set, s->key, s->value, why, sizeof(why));
        if (rc < 0) {
            if (s->file)
                snprintf(err, errlen, "%s:%d: %s: %s", s->file, s->line, s->key, why);
            else
                snprintf(err, errlen, "%s: %s", s->key, why);
            goto fail;
        }
    }
    rc = redis_url_parse(cfg->url, &st->url, err, errlen);
    if (rc < 0)
        goto fail;
    redis_url_describe(&st->url, st->where, sizeof(st->where));
    if (strlen(st->set.prefix) > 200) {
        snprintf(err, errlen, "prefix: longer than 200 bytes");
        rc = -EINVAL;
        goto fail;
    }

    memcpy(st->spool_id, cfg->spool_id, sizeof(st->spool_id));
    redis_rebuild_spool_hex(st->spool_id, st->spool_hex);
    snprintf(st->epoch_key, KEY_MAX, "%sepoch:%s", st->set.prefix, st->spool_hex);
    snprintf(st->base_key, KEY_MAX, "%scursor:%s", st->set.prefix, st->spool_hex);
    snprintf(st->lanes_key, KEY_MAX, "%slanes:%s:%s", st->set.prefix, st->spool_hex, st->name);
    st->nlanes = (unsigned)st->set.pool_size;
    st->lanes = xcalloc(st->nlanes, sizeof(*st->lanes));
    for (unsigned i = 0; i < st->nlanes; i++)
        snprintf(st->lanes[i].cursor_key, KEY_MAX, "%scursor:%s:%s.%u", st->set.prefix,
                 st->spool_hex, st->name, i);

    char pool_name[200];
    snprintf(pool_name, sizeof(pool_name), "redis %s", st->name);
    struct pool_options po = {
        .max = st->nlanes,
        .borrow_timeout_ms = (unsigned)st->set.command_timeout_ms,
        .idle_check_ms = 30000,
    };
    st->pool = pool_create(pool_name, &redis_pool_ops, st, &po);
    if (!st->pool) {
        snprintf(err, errlen, "redis: cannot create the connection pool");
        rc = -EINVAL;
        goto fail;
    }
    *state = st;
    return 0;

fail:
    redis_destroy(st);
    return rc < 0 ? rc : -EINVAL;
}

static unsigned redis_lanes(void *state)
{
    struct sink_redis *st = state;
    return st->nlanes;
}

/*
 * Warns once when Redis does not fsync every write (DESIGN.md, "Durable before delete"): a crash
 * of Redis then loses acknowledged writes, which the sink notices (cursors going back) and
 * repairs by a rebuild from SQL only while the SQL store still has the rows. CONFIG may be
 * disabled on managed servers; then nothing is said.
 */
static void check_durability(struct sink_redis *st, redisContext *c)
{
    redisReply *r = redisCommand(c, "CONFIG GET append*");
    if (!r)
        return;
    const char *aof = NULL, *fsync = NULL;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (strcmp(r->element[i]->str, "appendonly") == 0)
            aof = r->element[i + 1]->str;
        else if (strcmp(r->element[i]->str, "appendfsync") == 0)
            fsync = r->element[i + 1]->str;
    }
    if (aof && fsync && (strcmp(aof, "yes") != 0 || strcmp(fsync, "always") != 0))
        LOG_WARN(LOG_COMPONENT,
                 "sink %s: %s runs with appendonly %s, appendfsync %s: a Redis crash can lose "
                 "acknowledged writes; the sink then rebuilds from SQL (appendonly yes and "
                 "appendfsync always avoid that)",
                 st->name, st->where, aof, fsync);
    freeReplyObject(r);
}

/* Checks the lane count recorded for this sink; a change means the lanes' cursors are void. */
static int check_lanes(struct sink_redis *st, redisContext *c, bool *changed, char *err,
                       size_t errlen)
{
    char text[16], want[16];
    bool found;
    snprintf(want, sizeof(want), "%u", st->nlanes);
    int rc = get_text(c, st->lanes_key, text, sizeof(text), &found, err, errlen);
    *changed = rc == 0 && found && strcmp(text, want) != 0;
    return rc;
}

static enum sink_result redis_open_lane(void *state, unsigned lane, uint64_t *cursor, char *err,
                                        size_t errlen)
{
    struct sink_redis *st = state;
    struct redis_lane *L = &st->lanes[lane];
    void *conn = NULL;
    char sha[REDIS_APPLY_SHA_SIZE];
    bool changed = false;
    int rc = pool_borrow(st->pool, -1, &conn, err, errlen);
    if (rc < 0)
        return SINK_RETRY;
    redisContext *c = conn;

    pthread_rwlock_wrlock(&st->state_lock);
    rc = ensure_script(st, c, false, sha, err, errlen);
    if (rc == 0 && !st->durability_checked) {
        st->durability_checked = true;
        check_durability(st, c);
    }
    if (rc == 0)
        rc = check_lanes(st, c, &changed, err, errlen);
    if (rc == 0 && changed) {
        /* Profiles moved between lanes: rebuild up to the furthest of the old cursors. */
        rc = rebuild(st, c, "the number of lanes changed", err, errlen);
    } else if (rc == 0) {
        rc = recover(st, c, err, errlen);
    }
    uint64_t stored = 0;
    if (rc == 0)
        rc = stored_cursor(st, c, lane, &stored, err, errlen);
    if (rc == 0 && L->opened && stored < L->known) {
        char why[160];
        snprintf(why, sizeof(why), "lane %u's cursor went back from %llu to %llu", lane,
                 (unsigned long long)L->known, (unsigned long long)stored);
        rc = rebuild(st, c, why, err, errlen);
        if (rc == 0)
            rc = stored_cursor(st, c, lane, &stored, err, errlen);
    }
    if (rc == 0)
        rc = note_lanes(st, c, err, errlen);
    if (rc == 0) {
        L->known = stored;
        L->opened = true;
        *cursor = stored;
    }
    pthread_rwlock_unlock(&st->state_lock);
    pool_return(st->pool, conn, c->err == 0);
    if (rc < 0) {
        if (rc == -EAGAIN && strstr(err, "OOM"))
            LOG_ERROR(LOG_COMPONENT, "sink %s: Redis is out of memory (maxmemory): %s", st->name,
                      err);
        return result_for(rc);
    }
    LOG_DEBUG(LOG_COMPONENT, "sink %s lane %u: open at seq %llu", st->name, lane,
              (unsigned long long)stored);
    return SINK_OK;
}

/* Lossy mode: is this lane so far behind the SQL store that it should skip the batch? */
static bool lane_should_skip(struct sink_redis *st, struct redis_lane *L, uint64_t cursor)
{
    if (st->set.lossy_after <= 0)
        return false;
    int64_t now = clock_mono_ns();
    if (now - L->lossy_checked_ns >= LOSSY_CHECK_NS) {
        char path[4096], err[256];
        L->lossy_checked_ns = now;
        const char *sql = rebuild_source(st, path, sizeof(path));
        if (sql && !L->lossy_src) {
            struct redis_source_options so = {
                .url = sql, .password = st->set.rebuild_password, .data_dir = st->data_dir};
            L->lossy_src = redis_source_open(&so, err, sizeof(err));
        }
        if (L->lossy_src && redis_source_cursor(L->lossy_src, st->spool_id, &L->lossy_sql_cursor,
                                                err, sizeof(err)) < 0) {
            redis_source_close(L->lossy_src);
            L->lossy_src = NULL;
        }
    }
    return L->lossy_sql_cursor > cursor &&
           L->lossy_sql_cursor - cursor > (uint64_t)st->set.lossy_after;
}

/*
 * One attempt at writing the batch: every chunk pipelined on one connection, then every answer
 * read. Shared lock held. Updates the lane's known cursor for the chunks that were stored.
 */
static enum write_outcome write_once(struct sink_redis *st, unsigned lane, redisContext *c,
                                     const char *sha, const struct record *recs, size_t n,
                                     uint64_t cursor, char *err, size_t errlen)
{
    struct redis_lane *L = &st->lanes[lane];
    size_t chunk = (size_t)st->set.chunk_records;
    bool skip = lane_should_skip(st, L, cursor);
    size_t nchunks = (skip || n == 0) ? 1 : (n + chunk - 1) / chunk;
    uint64_t expected = L->known;
    uint64_t *ends = xmalloc(nchunks * sizeof(*ends));
    enum write_outcome out = WRITE_DONE;

    for (size_t k = 0; k < nchunks; k++) {
        size_t first = skip ? 0 : k * chunk;
        size_t count = skip ? 0 : (n - first < chunk ? n - first : chunk);
        ends[k] = (k + 1 == nchunks) ? cursor : recs[first + count - 1].seq;
        struct redis_apply_call call = {
            .cursor_key = L->cursor_key,
            .epoch_key = st->epoch_key,
            .base_key = st->base_key,
            .prefix = st->set.prefix,
            .epoch = st->epoch,
            .check_expected = L->opened,
            .expected = expected,
            .new_cursor = ends[k],
            .starting_equity = st->set.starting_equity,
            .stream_maxlen = st->set.stream_maxlen,
            .publish = st->set.publish,
            .skip = skip,
        };
        if (redis_apply_append(c, sha, &call, recs + first, count, &L->buf) < 0) {
            snprintf(err, errlen, "out of memory");
            free(ends);
            return WRITE_RETRY;
        }
        /* Send each chunk at once, so Redis applies it while the next one is packed. */
        if (k + 1 < nchunks && redis_apply_flush(c) < 0) {
            snprintf(err, errlen, "redis %s: %s", st->where, c->errstr);
            free(ends);
            return WRITE_RETRY;
        }
        expected = ends[k];
    }

    for (size_t k = 0; k < nchunks; k++) {
        struct redis_apply_result res;
        char why[256];
        int rc = redis_apply_read(c, &res, why, sizeof(why));
        if (rc == -EIO) {
            snprintf(err, errlen, "redis %s: %s", st->where, why);
            out = WRITE_RETRY;
            break; /* the connection is gone; the pool closes it */
        }
        if (out != WRITE_DONE)
            continue; /* read the remaining answers to keep the connection in step */
        if (rc == -ENOENT) {
            out = WRITE_RELOAD;
        } else if (rc == -EAGAIN || rc == -EPROTO) {
            snprintf(err, errlen, "redis %s: %s", st->where, why);
            if (strncmp(why, "OOM", 3) == 0)
                LOG_ERROR(LOG_COMPONENT,
                          "sink %s: Redis is out of memory (maxmemory reached), retrying: %s",
                          st->name, why);
            out = WRITE_RETRY;
        } else if (rc < 0) {
            /*
             * Records are checked before they are sent, so a refusal tied to the data is a key
             * of the wrong type under the prefix for one profile: ERROR lets the worker set that
             * profile's records aside. Anything else (a renamed command, a script error) would
             * refuse every batch alike, so it is retried and logged rather than quarantined.
             */
            snprintf(err, errlen, "redis %s: apply script failed: %s", st->where, why);
            if (strstr(why, "WRONGTYPE")) {
                out = WRITE_ERROR;
            } else {
                LOG_ERROR(LOG_COMPONENT, "sink %s: %s", st->name, err);
                out = WRITE_RETRY;
            }
        } else if (res.status == REDIS_APPLY_OK || res.status == REDIS_APPLY_DUP) {
            L->known = ends[k] > res.cursor ? ends[k] : res.cursor;
            L->opened = true;
        } else if (res.status == REDIS_APPLY_BAD) {
            snprintf(err, errlen, "apply script refused record %llu of the batch",
                     (unsigned long long)res.applied);
            out = WRITE_ERROR;
        } else {
            snprintf(err, errlen, "%s",
                     res.status == REDIS_APPLY_LOST ? "live state lost or replaced"
                                                    : "stored cursor went backwards");
            out = WRITE_RECOVER;
        }
    }
    if (out == WRITE_DONE && skip && n > 0) {
        atomic_fetch_add(&st->lossy_skipped, n);
        LOG_DEBUG(LOG_COMPONENT, "sink %s lane %u: lossy: skipped %zu records", st->name, lane, n);
    }
    free(ends);
    return out;
}

static enum sink_result redis_write(void *state, unsigned lane, const struct record *recs, size_t n,
                                    uint64_t cursor, char *err, size_t errlen)
{
    struct sink_redis *st = state;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        if (redis_apply_check_record(&recs[i], err, errlen) < 0)
            return SINK_ERROR;
        if (recs[i].seq <= prev || recs[i].seq > cursor) {
            snprintf(err, errlen, "record seq %llu out of order in the batch",
                     (unsigned long long)recs[i].seq);
            return SINK_ERROR;
        }
        prev = recs[i].seq;
    }
    if (cursor > REDIS_APPLY_SEQ_MAX) {
        snprintf(err, errlen, "cursor %llu beyond 2^53", (unsigned long long)cursor);
        return SINK_ERROR;
    }

    void *conn = NULL;
    int rc = pool_borrow(st->pool, -1, &conn, err, errlen);
    if (rc < 0)
        return SINK_RETRY;
    redisContext *c = conn;
    enum sink_result result = SINK_RETRY;
    bool force_load = false;

    for (int attempt = 0; attempt < WRITE_ATTEMPTS_MAX; attempt++) {
        char sha[REDIS_APPLY_SHA_SIZE];
        rc = ensure_script(st, c, force_load, sha, err, errlen);
        if (rc < 0) {
            result = result_for(rc == -EINVAL ? -EAGAIN : rc);
            break;
        }
        pthread_rwlock_rdlock(&st->state_lock);
        enum write_outcome out = write_once(st, lane, c, sha, recs, n, cursor, err, errlen);
        pthread_rwlock_unlock(&st->state_lock);
        if (out == WRITE_DONE) {
            result = SINK_OK;
            break;
        }
        if (out == WRITE_RETRY || out == WRITE_ERROR) {
            result = out == WRITE_RETRY ? SINK_RETRY : SINK_ERROR;
            break;
        }
        if (out == WRITE_RELOAD) {
            force_load = true;
            continue;
        }
        force_load = false;
        pthread_rwlock_wrlock(&st->state_lock);
        rc = recover(st, c, err, errlen);
        pthread_rwlock_unlock(&st->state_lock);
        if (rc < 0) {
            result = SINK_RETRY;
            break;
        }
    }
    pool_return(st->pool, conn, c->err == 0);
    return result;
}

static void redis_metrics(void *state, const struct sink_metrics_out *m)
{
    struct sink_redis *st = state;
    struct pool_stats ps;
    char labels[200];
    snprintf(labels, sizeof(labels), "sink=\"%s\"", m->sink_name);
    pool_get_stats(st->pool, &ps);
    pool_stats_print(&ps, m->out, "telem_sink_redis_pool", labels, true);

    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"telem_redis_rebuilds_total", "Rebuilds of the live state from SQL",
         offsetof(struct sink_redis, rebuilds)},
        {"telem_redis_rebuild_failures_total", "Rebuild attempts that had to be retried",
         offsetof(struct sink_redis, rebuild_failures)},
        {"telem_redis_adopted_total", "Live states rebuilt by another process and adopted",
         offsetof(struct sink_redis, adopted)},
        {"telem_redis_lossy_skipped_total", "Records skipped in lossy mode (lossy_after)",
         offsetof(struct sink_redis, lossy_skipped)},
        {"telem_redis_lost_records_total",
         "Sequence numbers the live state lost with no SQL store to rebuild from",
         offsetof(struct sink_redis, lost_records)},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        atomic_uint_fast64_t *v = (atomic_uint_fast64_t *)((char *)st + counters[i].offset);
        fprintf(m->out, "# HELP %s %s\n# TYPE %s counter\n%s{%s} %llu\n", counters[i].name,
                counters[i].help, counters[i].name, counters[i].name, labels,
                (unsigned long long)atomic_load(v));
    }
}

const struct sink_ops sink_redis_ops = {
    .scheme = "redis",
    .create = redis_create,
    .lanes = redis_lanes,
    .open_lane = redis_open_lane,
    .write = redis_write,
    .metrics = redis_metrics,
    .destroy = redis_destroy,
};
