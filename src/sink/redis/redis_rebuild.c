/*
 * redis_rebuild.c: the rebuild of Redis's live state from the SQL store (the algorithm is in
 * redis_rebuild.h). The small scripts below guard the epoch marker; the replay itself goes
 * through apply.lua (redis_apply.c), two chunks in flight so that Redis applies one while the
 * next is read from SQL.
 */
#include "sink/redis/redis_rebuild.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "sink/redis/redis_conn.h"
#include "sink/redis/redis_source.h"
#include "sink/redis/redis_url.h"

#define MARKER_PREFIX "rebuilding:"
#define KEY_MAX       512

/* KEYS[1] epoch; ARGV[1] marker; ARGV[2] TTL ms. Puts the marker in unless one is there. */
static const char begin_script[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if e and string.sub(e, 1, 11) == 'rebuilding:' then return {'BUSY', e} end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return {'OK', e or ''}\n";

/* KEYS[1] epoch; ARGV[1] marker; ARGV[2] TTL ms. Extends the marker if it is still ours. */
static const char refresh_script[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                                     "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                     "return 1\n";

/* KEYS[1] epoch, KEYS[2] base; ARGV[1] marker, ARGV[2] new epoch, ARGV[3] base cursor. */
static const char finish_script[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                                    "redis.call('SET', KEYS[2], ARGV[3])\n"
                                    "redis.call('SET', KEYS[1], ARGV[2])\n"
                                    "return 1\n";

/* KEYS[1] epoch; ARGV[1] marker, ARGV[2] the epoch before ("" when there was none). */
static const char abort_script[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                                   "if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else "
                                   "redis.call('SET', KEYS[1], ARGV[2]) end\n"
                                   "return 1\n";

struct rebuild_run {
    redisContext *c;
    const struct redis_rebuild_options *opt;
    char hex[2 * REDIS_REBUILD_SPOOL_ID_SIZE + 1];
    char epoch_key[KEY_MAX];
    char base_key[KEY_MAX];
    char lane_match[KEY_MAX]; /* SCAN pattern of the lane cursor keys */
    char all_match[KEY_MAX];  /* SCAN pattern of every key under the prefix */
    char marker[64];
    char old_epoch[REDIS_APPLY_EPOCH_MAX + 1];
    unsigned ttl_ms;
    char *err;
    size_t errlen;
};

void redis_rebuild_spool_hex(const uint8_t *id, char hex[2 * REDIS_REBUILD_SPOOL_ID_SIZE + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < REDIS_REBUILD_SPOOL_ID_SIZE; i++) {
        hex[2 * i] = digits[id[i] >> 4];
        hex[2 * i + 1] = digits[id[i] & 15];
    }
    hex[2 * REDIS_REBUILD_SPOOL_ID_SIZE] = '\0';
}

int redis_rebuild_new_token(char token[33])
{
    uint8_t raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    redis_rebuild_spool_hex(raw, token);
    return 0;
}

/* Escapes the glob characters of s for a SCAN MATCH pattern, then appends suffix. */
static void glob_pattern(char *dst, size_t cap, const char *s, const char *suffix)
{
    size_t o = 0;
    for (; *s && o + 3 < cap; s++) {
        if (strchr("*?[]\\", *s))
            dst[o++] = '\\';
        dst[o++] = *s;
    }
    dst[o] = '\0';
    snprintf(dst + o, cap - o, "%s", suffix);
}

/* Runs a small marker script with one or two keys. Returns its reply or NULL (err filled). */
static redisReply *run_script(struct rebuild_run *r, const char *script, int nkeys, const char *k1,
                              const char *k2, const char *a1, const char *a2, const char *a3)
{
    const char *argv[8] = {"EVAL", script, nkeys == 2 ? "2" : "1", k1};
    int argc = 4;
    if (nkeys == 2)
        argv[argc++] = k2;
    argv[argc++] = a1;
    if (a2)
        argv[argc++] = a2;
    if (a3)
        argv[argc++] = a3;
    redisReply *rep = redisCommandArgv(r->c, argc, argv, NULL);
    if (redis_conn_reply_check(r->c, rep, r->err, r->errlen) < 0) {
        if (rep)
            freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static int reply_rc(const struct rebuild_run *r)
{
    /* run_script failed: was it the connection or Redis being unable right now? */
    return r->c->err ? -EIO : -EAGAIN;
}

static int marker_refresh(struct rebuild_run *r)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%u", r->ttl_ms);
    redisReply *rep = run_script(r, refresh_script, 1, r->epoch_key, NULL, r->marker, ttl, NULL);
    if (!rep)
        return reply_rc(r);
    int ours = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    if (!ours) {
        snprintf(r->err, r->errlen, "the rebuild marker vanished: another process took over");
        return -ESTALE;
    }
    return 0;
}

static void marker_abort(struct rebuild_run *r)
{
    char keep[256];
    snprintf(keep, sizeof(keep), "%s", r->err); /* keep the error that made us stop */
    redisReply *rep =
        run_script(r, abort_script, 1, r->epoch_key, NULL, r->marker, r->old_epoch, NULL);
    if (rep)
        freeReplyObject(rep);
    snprintf(r->err, r->errlen, "%s", keep);
}

/* Reads an unsigned number stored at key into *v (0 when missing). */
static int get_u64(struct rebuild_run *r, const char *key, uint64_t *v)
{
    redisReply *rep = redisCommand(r->c, "GET %s", key);
    int rc = redis_conn_reply_check(r->c, rep, r->err, r->errlen);
    *v = 0;
    if (rc == 0 && rep->type == REDIS_REPLY_STRING)
        *v = strtoull(rep->str, NULL, 10);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/*
 * Visits every key matching pattern with SCAN. When del is true the keys are UNLINKed (but for
 * keep); otherwise *max_value gets the largest number they hold.
 */
static int scan_keys(struct rebuild_run *r, const char *pattern, bool del, const char *keep,
                     uint64_t *max_value)
{
    char cursor[32] = "0";
    do {
        redisReply *rep = redisCommand(r->c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        int rc = redis_conn_reply_check(r->c, rep, r->err, r->errlen);
        if (rc < 0) {
            if (rep)
                freeReplyObject(rep);
            return rc;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            freeReplyObject(rep);
            snprintf(r->err, r->errlen, "SCAN: unexpected reply");
            return -EPROTO;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        const redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            if (del) {
                if (keep && strcmp(k, keep) == 0)
                    continue;
                redisAppendCommand(r->c, "UNLINK %b", k, keys->element[i]->len);
            } else {
                redisAppendCommand(r->c, "GET %b", k, keys->element[i]->len);
            }
        }
        for (size_t i = 0; i < keys->elements; i++) {
            if (del && keep && strcmp(keys->element[i]->str, keep) == 0)
                continue;
            void *vr = NULL;
            if (redisGetReply(r->c, &vr) != REDIS_OK)
                vr = NULL;
            redisReply *one = vr;
            rc = redis_conn_reply_check(r->c, one, r->err, r->errlen);
            if (rc == 0 && !del && one->type == REDIS_REPLY_STRING) {
                uint64_t v = strtoull(one->str, NULL, 10);
                if (v > *max_value)
                    *max_value = v;
            }
            if (one)
                freeReplyObject(one);
            if (rc == -EIO) {
                freeReplyObject(rep);
                return rc;
            }
        }
        freeReplyObject(rep);
        if (del) {
            rc = marker_refresh(r);
            if (rc < 0)
                return rc;
        }
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* Step 2: waits until the SQL store has everything up to K. Sets *upto to S. */
static int wait_for_sql(struct rebuild_run *r, struct redis_source *src, const uint8_t *spool,
                        uint64_t *upto)
{
    int64_t deadline = clock_mono_ns() + (int64_t)r->opt->wait_ms * 1000000;
    for (;;) {
        uint64_t k = r->opt->min_cursor, base = 0, s = 0;
        int rc = get_u64(r, r->base_key, &base);
        if (rc == 0)
            rc = scan_keys(r, r->lane_match, false, NULL, &k);
        if (rc == 0)
            rc = redis_source_cursor(src, spool, &s, r->err, r->errlen);
        if (rc < 0)
            return rc;
        if (base > k)
            k = base;
        if (s >= k) {
            *upto = s;
            return 0;
        }
        if (clock_mono_ns() >= deadline) {
            snprintf(r->err, r->errlen,
                     "the SQL store has rows up to seq %llu, the live state needs %llu: waiting "
                     "for the SQL sink",
                     (unsigned long long)s, (unsigned long long)k);
            return -EAGAIN;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000000};
        nanosleep(&ts, NULL);
        rc = marker_refresh(r);
        if (rc < 0)
            return rc;
    }
}

/* Sends one chunk and, when one was already in flight, reads that one's answer. */
static int replay_chunk(struct rebuild_run *r, const char *sha, const struct record *recs, size_t n,
                        bool *inflight, struct redis_apply_buf *buf)
{
    struct redis_apply_call call = {
        .cursor_key = r->base_key,
        .epoch_key = r->epoch_key,
        .base_key = r->base_key,
        .prefix = r->opt->prefix,
        .epoch = r->marker,
        .new_cursor = recs[n - 1].seq,
        .starting_equity = r->opt->starting_equity,
        .stream_maxlen = r->opt->stream_maxlen,
        .ttl_ms = r->ttl_ms,
    };
    if (redis_apply_append(r->c, sha, &call, recs, n, buf) < 0) {
        snprintf(r->err, r->errlen, "out of memory");
        return -ENOMEM;
    }
    if (redis_apply_flush(r->c) < 0) {
        snprintf(r->err, r->errlen, "%s", r->c->errstr);
        return -EIO;
    }
    if (!*inflight) {
        *inflight = true;
        return 0;
    }
    struct redis_apply_result res;
    int rc = redis_apply_read(r->c, &res, r->err, r->errlen);
    if (rc < 0)
        return rc == -ENOENT ? -EAGAIN : rc;
    if (res.status == REDIS_APPLY_OK)
        return 0;
    if (res.status == REDIS_APPLY_LOST) {
        snprintf(r->err, r->errlen, "the rebuild marker vanished: another process took over");
        return -ESTALE;
    }
    snprintf(r->err, r->errlen, "apply script refused a rebuild chunk (status %d)", res.status);
    return -EINVAL;
}

static int drain_chunk(struct rebuild_run *r, bool inflight)
{
    if (!inflight)
        return 0;
    struct redis_apply_result res;
    int rc = redis_apply_read(r->c, &res, r->err, r->errlen);
    if (rc < 0)
        return rc;
    if (res.status == REDIS_APPLY_LOST) {
        snprintf(r->err, r->errlen, "the rebuild marker vanished: another process took over");
        return -ESTALE;
    }
    return res.status == REDIS_APPLY_OK ? 0 : -EINVAL;
}

/* Step 4: replays SQL rows up to upto through apply.lua. */
static int replay(struct rebuild_run *r, struct redis_source *src, const uint8_t *spool,
                  uint64_t upto, const char *sha, struct redis_rebuild_result *res)
{
    size_t cap = r->opt->chunk_records ? r->opt->chunk_records : 5000;
    struct record *recs = xmalloc(cap * sizeof(*recs));
    struct redis_apply_buf buf = {0};
    bool inflight = false;
    uint64_t rows = 0;
    int rc = redis_source_scan(src, spool, upto, r->err, r->errlen);
    size_t n = 0;
    while (rc == 0) {
        int got = redis_source_next(src, &recs[n], r->err, r->errlen);
        if (got < 0) {
            rc = got;
            break;
        }
        if (got == 1) {
            if (redis_apply_check_record(&recs[n], r->err, r->errlen) < 0) {
                rc = -EINVAL;
                break;
            }
            if (recs[n].kind == RECORD_TRADE)
                res->trades++;
            else
                res->metrics++;
            n++;
        }
        if (n == cap || (got == 0 && n > 0)) {
            rc = replay_chunk(r, sha, recs, n, &inflight, &buf);
            rows += n;
            if (rc == 0 && r->opt->progress)
                r->opt->progress(r->opt->progress_ctx, rows, recs[n - 1].seq);
            n = 0;
        }
        if (got == 0)
            break;
    }
    if (rc == 0)
        rc = drain_chunk(r, inflight);
    else if (inflight && r->c->err == 0) {
        char keep[256];
        snprintf(keep, sizeof(keep), "%s", r->err);
        drain_chunk(r, inflight); /* keep the connection in step */
        snprintf(r->err, r->errlen, "%s", keep);
    }
    redis_apply_buf_free(&buf);
    free(recs);
    return rc;
}

/* Fills the key names of r from the prefix and spool. */
static void run_keys(struct rebuild_run *r, const char *prefix, const uint8_t *spool)
{
    char lane_prefix[KEY_MAX];
    redis_rebuild_spool_hex(spool, r->hex);
    snprintf(r->epoch_key, sizeof(r->epoch_key), "%sepoch:%s", prefix, r->hex);
    snprintf(r->base_key, sizeof(r->base_key), "%scursor:%s", prefix, r->hex);
    snprintf(lane_prefix, sizeof(lane_prefix), "%scursor:%s:", prefix, r->hex);
    glob_pattern(r->lane_match, sizeof(r->lane_match), lane_prefix, "*");
    glob_pattern(r->all_match, sizeof(r->all_match), prefix, "*");
}

int redis_rebuild_stored_cursor(redisContext *c, const char *prefix, const uint8_t *spool_id,
                                uint64_t *max, char *err, size_t errlen)
{
    struct rebuild_run r = {.c = c, .err = err, .errlen = errlen};
    uint64_t base = 0;
    *max = 0;
    run_keys(&r, prefix, spool_id);
    int rc = get_u64(&r, r.base_key, &base);
    if (rc == 0)
        rc = scan_keys(&r, r.lane_match, false, NULL, max);
    if (base > *max)
        *max = base;
    return rc;
}

static int pick_spool(struct rebuild_run *r, struct redis_source *src, uint8_t *spool)
{
    if (r->opt->spool_id) {
        memcpy(spool, r->opt->spool_id, REDIS_REBUILD_SPOOL_ID_SIZE);
        return 0;
    }
    uint8_t ids[8][REDIS_SOURCE_SPOOL_ID_SIZE];
    size_t n = 0;
    int rc = redis_source_spools(src, ids, 8, &n, r->err, r->errlen);
    if (rc < 0)
        return rc;
    if (n != 1) {
        if (n == 0)
            snprintf(r->err, r->errlen, "the SQL store has no cursor rows: nothing to rebuild");
        else
            snprintf(r->err, r->errlen, "the SQL store holds %zu spools: name one with --spool HEX",
                     n);
        return -ENOENT;
    }
    memcpy(spool, ids[0], REDIS_REBUILD_SPOOL_ID_SIZE);
    return 0;
}

int redis_rebuild_on(redisContext *c, const struct redis_rebuild_options *opt,
                     struct redis_rebuild_result *res, char *err, size_t errlen)
{
    struct rebuild_run r = {.c = c, .opt = opt, .err = err, .errlen = errlen};
    struct redis_source_options so = {
        .url = opt->sql_url,
        .password = opt->sql_password,
        .data_dir = opt->data_dir,
    };
    char sha[REDIS_APPLY_SHA_SIZE], token[33];
    int64_t t0 = clock_mono_ns();
    bool marked = false;
    int rc;

    memset(res, 0, sizeof(*res));
    r.ttl_ms = opt->marker_ttl_ms ? opt->marker_ttl_ms : 30000;
    struct redis_source *src = redis_source_open(&so, err, errlen);
    if (!src)
        return -EIO;
    rc = pick_spool(&r, src, res->spool_id);
    if (rc < 0)
        goto out;
    run_keys(&r, opt->prefix, res->spool_id);

    rc = redis_apply_load(c, sha, err, errlen);
    if (rc < 0)
        goto out;
    rc = redis_rebuild_new_token(token);
    if (rc < 0) {
        snprintf(err, errlen, "getrandom: %s", strerror(-rc));
        goto out;
    }
    snprintf(r.marker, sizeof(r.marker), MARKER_PREFIX "%s", token);

    /* Step 1: the marker. */
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%u", r.ttl_ms);
    redisReply *rep = run_script(&r, begin_script, 1, r.epoch_key, NULL, r.marker, ttl, NULL);
    if (!rep) {
        rc = reply_rc(&r);
        goto out;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        freeReplyObject(rep);
        snprintf(err, errlen, "begin script: unexpected reply");
        rc = -EPROTO;
        goto out;
    }
    if (strcmp(rep->element[0]->str, "BUSY") == 0) {
        snprintf(err, errlen, "another rebuild is running (%s holds %s)", r.epoch_key,
                 rep->element[1]->str);
        freeReplyObject(rep);
        rc = -EBUSY;
        goto out;
    }
    snprintf(r.old_epoch, sizeof(r.old_epoch), "%s", rep->element[1]->str);
    freeReplyObject(rep);
    marked = true;

    /* Steps 2 to 4. */
    uint64_t upto = 0;
    rc = wait_for_sql(&r, src, res->spool_id, &upto);
    if (rc == 0)
        rc = scan_keys(&r, r.all_match, true, r.epoch_key, NULL);
    if (rc == 0)
        rc = replay(&r, src, res->spool_id, upto, sha, res);
    if (rc < 0)
        goto out;

    /* Step 5: the base cursor and a new epoch, in one step. */
    rc = redis_rebuild_new_token(token);
    if (rc < 0) {
        snprintf(err, errlen, "getrandom: %s", strerror(-rc));
        goto out;
    }
    char upto_text[24];
    snprintf(upto_text, sizeof(upto_text), "%llu", (unsigned long long)upto);
    rep = run_script(&r, finish_script, 2, r.epoch_key, r.base_key, r.marker, token, upto_text);
    if (!rep) {
        rc = reply_rc(&r);
        goto out;
    }
    int done = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    if (!done) {
        snprintf(err, errlen, "the rebuild marker vanished: another process took over");
        rc = -ESTALE;
        marked = false;
        goto out;
    }
    marked = false;
    res->cursor = upto;
    snprintf(res->epoch, sizeof(res->epoch), "%s", token);
    res->seconds = (double)(clock_mono_ns() - t0) / 1e9;
    rc = 0;

out:
    if (marked && rc != -ESTALE && c->err == 0)
        marker_abort(&r);
    redis_source_close(src);
    return rc;
}

int redis_rebuild_run(const char *redis_url, const char *password,
                      const struct redis_rebuild_options *opt, struct redis_rebuild_result *res,
                      char *err, size_t errlen)
{
    struct redis_url u;
    int rc = redis_url_parse(redis_url, &u, err, errlen);
    if (rc < 0)
        return rc;
    struct redis_conn_options co = {
        .url = &u,
        .password = password,
        .connect_timeout_ms = 5000,
        .command_timeout_ms = 60000,
    };
    redisContext *c = redis_conn_open(&co, err, errlen);
    if (!c)
        return -ECONNREFUSED;
    rc = redis_rebuild_on(c, opt, res, err, errlen);
    redisFree(c);
    return rc;
}
