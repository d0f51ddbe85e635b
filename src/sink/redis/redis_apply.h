/*
 * redis_apply.h: calling the apply script (apply.lua) that turns records into live per-profile
 * state. The script is the one place where running totals, latest metrics and trade streams are
 * computed; this module packs records into its arguments, loads it (SCRIPT LOAD) and pipelines
 * EVALSHA calls on a hiredis connection. The sink and the rebuild both use it, so the state they
 * build is the same. See apply.lua for the keys, the arguments and the replies.
 */
#ifndef TELEM_SINK_REDIS_APPLY_H
#define TELEM_SINK_REDIS_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "core/record.h"

/* The text of apply.lua, embedded at build time (redis_script.c, made by embed_lua.py). */
extern const char redis_apply_script[];

/* Sequence numbers above this cannot be compared exactly by Lua's doubles; they are refused. */
#define REDIS_APPLY_SEQ_MAX (UINT64_C(1) << 53)

/* Hex SHA-1 of the script, as SCRIPT LOAD returns it, with its NUL. */
#define REDIS_APPLY_SHA_SIZE 41

/* Longest epoch value (a "rebuilding:" marker or a 32-digit token), without its NUL. */
#define REDIS_APPLY_EPOCH_MAX 63

/* What one EVALSHA call is told besides its records. All strings borrowed. */
struct redis_apply_call {
    const char *cursor_key; /* KEYS[1] */
    const char *epoch_key;  /* KEYS[2] */
    const char *base_key;   /* KEYS[3] */
    const char *prefix;
    const char *epoch; /* the generation the caller believes current; not empty */
    bool check_expected;
    uint64_t expected;   /* the cursor the caller believes stored (when check_expected) */
    uint64_t new_cursor; /* >= every seq of the records */
    double starting_equity;
    int64_t stream_maxlen; /* 0: no trade streams */
    bool publish;
    bool skip;       /* lossy mode: move the cursor without applying the records */
    unsigned ttl_ms; /* extend the epoch key's TTL by this much; 0: leave it */
};

enum redis_apply_status {
    REDIS_APPLY_OK = 0,
    REDIS_APPLY_DUP,    /* stored cursor >= new cursor: a replay, nothing done */
    REDIS_APPLY_LOST,   /* epoch missing or different: nothing done */
    REDIS_APPLY_BEHIND, /* stored cursor below the expected one: nothing done */
    REDIS_APPLY_BAD,    /* a record did not parse: nothing done */
};

struct redis_apply_result {
    enum redis_apply_status status;
    uint64_t cursor;  /* OK: the new cursor; DUP, BEHIND: the stored cursor */
    uint64_t applied; /* OK: records applied (those above the stored cursor); BAD: 1-based index */
    char epoch[REDIS_APPLY_EPOCH_MAX + 1]; /* LOST: what the epoch key holds ("" if missing) */
};

/*
 * Scratch memory for packing, reused across calls so that a steady stream of batches does not
 * allocate. Zero-initialise it; free with redis_apply_buf_free.
 */
struct redis_apply_buf {
    char *data;
    size_t cap;
    const char **argv;
    size_t *argvlen;
    size_t argcap;
};

/* redis_apply_buf_free releases the scratch memory. Accepts a zeroed buffer. */
void redis_apply_buf_free(struct redis_apply_buf *b);

/*
 * redis_apply_check_record says whether the script can take rec: a known kind, a profile, a
 * metric name, finite numbers and 0 < seq <= REDIS_APPLY_SEQ_MAX. Returns 0 or -EINVAL with err
 * saying which field is wrong.
 */
int redis_apply_check_record(const struct record *rec, char *err, size_t errlen);

/*
 * redis_apply_format_double writes the shortest decimal text that reads back as exactly v
 * ("%.15g" when that round-trips, else "%.17g") to dst (at least 32 bytes). Returns its length.
 */
int redis_apply_format_double(char *dst, double v);

/*
 * redis_apply_load sends SCRIPT LOAD and stores the script's hex SHA-1 in sha. Returns 0, or a
 * redis_conn_reply_check code with err filled.
 */
int redis_apply_load(redisContext *c, char sha[REDIS_APPLY_SHA_SIZE], char *err, size_t errlen);

/*
 * redis_apply_append adds one EVALSHA of recs[0..n) (checked with redis_apply_check_record) to
 * the connection's output buffer; redisGetReply sends it and reads the answer. Borrows
 * everything; the command is copied, so buf and recs may change once it returns. Returns 0 or
 * -ENOMEM.
 */
int redis_apply_append(redisContext *c, const char *sha, const struct redis_apply_call *call,
                       const struct record *recs, size_t n, struct redis_apply_buf *buf);

/*
 * redis_apply_flush sends everything appended so far without waiting for answers, so Redis can
 * work on it while the caller prepares the next call. Returns 0 or -EIO.
 */
int redis_apply_flush(redisContext *c);

/*
 * redis_apply_read reads the reply of the oldest appended call. Returns 0 with *res filled, or a
 * redis_conn_reply_check code (-EIO, -ENOENT for NOSCRIPT, -EAGAIN, -EINVAL) with err filled;
 * -EPROTO when the reply does not have the script's shape.
 */
int redis_apply_read(redisContext *c, struct redis_apply_result *res, char *err, size_t errlen);

#endif
