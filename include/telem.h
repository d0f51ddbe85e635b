/*
 * telem.h: libtelem, the C client of telemd.
 *
 * A program opens one handle per destination with telem_open(), then records closed trades
 * with telem_trade() and numeric samples with telem_metric() from any number of threads. Those
 * calls only check the record and copy it, as a fixed-size binary record, into a bounded
 * in-memory buffer: no formatting, no allocation and no system call happens on the caller's
 * thread (apart from reading the clock when a timestamp is 0). A background thread takes up to
 * batch_max records at a time, formats them as InfluxDB line protocol and POSTs them to telemd
 * over one keep-alive HTTP/1.1 connection (unix socket or loopback TCP). Every batch carries a
 * `Telem-Batch: <producer>:<epoch>:<n>` header, so a batch that is sent again because its
 * answer was lost is stored only once. Batches of one handle go strictly one at a time, in
 * order. While telemd is down or answers 503 the same batch is retried, with capped jittered
 * backoff (or after Retry-After), until telemd accepts it; records that arrive meanwhile wait
 * in the buffer, and when it is full the handle's policy decides: TELEM_FULL_DROP (the
 * default) refuses and counts the new record, TELEM_FULL_BLOCK makes the caller wait for room.
 *
 * The library never exits, never aborts on out-of-memory (TELEM_ENOMEM), never writes to
 * stdout or stderr and never raises signals (SIGPIPE is suppressed per send). What it has to
 * say goes to the optional log callback, called from the background thread.
 *
 * Times are nanoseconds since the Unix epoch, UTC; 0 means "now". Strings are UTF-8; the
 * published limits below are in bytes. Every public function returns TELEM_OK (0) or a
 * negative TELEM_E* code; telem_strerror() names a code and telem_errmsg() gives the reason of
 * the last failed call on the calling thread (for example "symbol: contains a newline").
 */
#ifndef TELEM_H
#define TELEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TELEM_VERSION "0.1.0"

/* Marks the public functions: the shared library exports these and nothing else. */
#if defined(__GNUC__)
#define TELEM_API __attribute__((visibility("default")))
#else
#define TELEM_API
#endif

/* Published lengths in bytes, the same as telemd's columns (src/core/record.h). */
#define TELEM_PROFILE_MAX  64
#define TELEM_SCRIPT_MAX   64
#define TELEM_SYMBOL_MAX   32
#define TELEM_SIDE_MAX     16
#define TELEM_NAME_MAX     128
#define TELEM_TRADE_ID_MAX 64
#define TELEM_PRODUCER_MAX 64

/* Result codes. Every public function returns TELEM_OK or one of the negative codes. */
enum telem_error_code {
    TELEM_OK = 0,
    TELEM_EINVAL = -1,    /* an argument or option is invalid; telem_errmsg() names it */
    TELEM_ENOMEM = -2,    /* out of memory */
    TELEM_EFULL = -3,     /* buffer full under TELEM_FULL_DROP: the record was dropped */
    TELEM_ETIMEDOUT = -4, /* a wait ran out (block, flush, close) */
    TELEM_ECLOSED = -5,   /* the handle is being closed */
    TELEM_ECONNECT = -6,  /* telemd cannot be reached (delivery error, in telem_stats) */
    TELEM_EIO = -7,       /* the connection broke or timed out mid-request (delivery error) */
    TELEM_EHTTP = -8,     /* telemd's answer was not understood (delivery error) */
    TELEM_EREJECTED = -9, /* telemd refused a batch with 400 or another 4xx (delivery error) */
    TELEM_EAUTH = -10,    /* telemd answered 401: token missing or wrong (delivery error) */
    TELEM_EBUSY = -11,    /* telemd answered 503: its spool is full (delivery error) */
    TELEM_ESYS = -12,     /* a system call failed (thread creation, socket...) */
};

/* What to do when the buffer holds max_buffered records and another one arrives. */
enum telem_full_policy {
    TELEM_FULL_DROP = 0,  /* refuse the new record at once (TELEM_EFULL) and count it dropped */
    TELEM_FULL_BLOCK = 1, /* wait for room up to block_timeout_ms, then TELEM_ETIMEDOUT */
};

enum telem_log_level {
    TELEM_LOG_ERROR = 0,
    TELEM_LOG_WARN = 1,
    TELEM_LOG_INFO = 2,
    TELEM_LOG_DEBUG = 3,
};

/*
 * The log callback: called from the background thread (and from telem_open for option
 * errors) with one line of text, without a newline. It must not call back into the handle.
 */
typedef void (*telem_log_fn)(void *arg, enum telem_log_level level, const char *msg);

/*
 * Options of telem_open. Zero or NULL means the default for every field, so
 * `struct telem_options o = {.profile = "p1", .script = "exec"};` is a complete setting.
 * Every string is borrowed for the duration of telem_open only.
 */
struct telem_options {
    /* "unix:/path/to/telemd.sock" or "http://127.0.0.1:8186". NULL: the environment variable
     * TELEM_ENDPOINT, else "unix:./telem-data/telemd.sock", telemd's default. */
    const char *endpoint;
    const char *profile; /* required: 1..64 bytes, the default profile of every record */
    const char *script;  /* optional: 0..64 bytes, the default script of every record */
    const char *token;   /* optional: sent as `Authorization: Token <token>` */
    /* Names this handle's batches in Telem-Batch: 1..64 of [A-Za-z0-9._-]. NULL: random. The
     * epoch is the time of telem_open, so a reopened producer never collides with itself. */
    const char *producer;

    unsigned batch_max;                 /* records per batch; default 5000 */
    unsigned flush_interval_ms;         /* send a partial batch after this long; default 1000 */
    unsigned max_buffered;              /* records waiting in memory; default 20000 */
    enum telem_full_policy full_policy; /* default TELEM_FULL_DROP */
    unsigned block_timeout_ms;          /* TELEM_FULL_BLOCK: longest wait for room; 0 = no limit */

    unsigned connect_timeout_ms; /* default 2000 */
    unsigned io_timeout_ms;      /* longest wait for telemd's answer to a batch; default 30000 */
    unsigned backoff_max_ms;     /* cap of the reconnect backoff; default 2000 */

    telem_log_fn log;               /* optional */
    void *log_arg;                  /* passed to log */
    enum telem_log_level log_level; /* most verbose level passed to log; default ERROR (0) */
};

/*
 * One closed trade. symbol, side and trade_id may be NULL or "" (absent). qty, entry_price,
 * exit_price, pnl and fees must be finite. opened_at_ns 0 means absent; closed_at_ns 0 means
 * now. profile and script, when not NULL, replace the handle's for this record only (the
 * other one stays the handle's). A
 * trade_id makes the trade unique per profile in the stores.
 */
struct telem_trade {
    const char *symbol; /* <= 32 bytes */
    const char *side;   /* <= 16 bytes, e.g. "buy" / "sell" */
    double qty;
    double entry_price;
    double exit_price;
    double pnl;
    double fees;
    int64_t opened_at_ns; /* 0: absent */
    int64_t closed_at_ns; /* 0: now */
    const char *trade_id; /* <= 64 bytes */
    const char *profile;  /* NULL: the handle's */
    const char *script;   /* NULL: the handle's */
};

/* Counters of one handle, a snapshot taken by telem_stats. */
struct telem_stats {
    uint64_t accepted;   /* records taken into the buffer since open */
    uint64_t queued;     /* accepted and not yet acknowledged, rejected or lost (buffer + batch) */
    uint64_t sent;       /* records sent at least once */
    uint64_t acked;      /* records telemd acknowledged (204: durable in its spool) */
    uint64_t dropped;    /* records refused because the buffer was full (EFULL / ETIMEDOUT) */
    uint64_t rejected;   /* records in batches telemd refused (400 or another 4xx) */
    uint64_t invalid;    /* calls refused by validation (TELEM_EINVAL) */
    uint64_t batches;    /* batches acknowledged */
    uint64_t retries;    /* batch sends that had to be repeated */
    uint64_t reconnects; /* connections opened to telemd */
    int last_error;      /* code of the most recent delivery error, TELEM_OK if none yet */
    char last_error_msg[160]; /* its description */
};

struct telem; /* opaque handle */

/* Details of a telem_open failure. */
struct telem_open_error {
    int code;      /* TELEM_E* */
    char msg[160]; /* e.g. "profile: required" */
};

/*
 * telem_open validates opt, allocates the buffer and starts the background thread. It does
 * not wait for telemd: a daemon that is down only delays delivery. Borrows opt and its strings.
 * Returns a handle to release with telem_close, or NULL when opt is invalid or resources are
 * short; then err (which may be NULL) says why, and opt->log is called with the reason too.
 */
TELEM_API struct telem *telem_open(const struct telem_options *opt, struct telem_open_error *err);

/*
 * telem_trade checks tr and queues it. Borrows tr. Thread-safe. Returns TELEM_OK,
 * TELEM_EINVAL (telem_errmsg names the field), TELEM_EFULL (drop policy), TELEM_ETIMEDOUT
 * (block policy ran out of time) or TELEM_ECLOSED.
 */
TELEM_API int telem_trade(struct telem *t, const struct telem_trade *tr);

/*
 * telem_metric queues one sample: name (1..128 bytes) = value (finite) at ts_ns (0: now), for
 * the handle's profile and script. Borrows name. Thread-safe. Returns as telem_trade.
 */
TELEM_API int telem_metric(struct telem *t, const char *name, double value, int64_t ts_ns);

/*
 * telem_metric_for is telem_metric with the profile and/or script of this sample given (NULL
 * means the handle's).
 */
TELEM_API int telem_metric_for(struct telem *t, const char *profile, const char *script,
                               const char *name, double value, int64_t ts_ns);

/*
 * telem_flush sends what is buffered now and waits until telemd has acknowledged (or
 * rejected) every record accepted before the call, at most timeout_ms (0: no limit).
 * Thread-safe. Returns TELEM_OK, TELEM_ETIMEDOUT or TELEM_ECLOSED.
 */
TELEM_API int telem_flush(struct telem *t, unsigned timeout_ms);

/*
 * telem_close refuses new records, waits up to timeout_ms (0: no limit) for telemd to
 * acknowledge what is buffered, stops the background thread and frees the handle. Records
 * still unsent at the deadline are lost. No other thread may use t during or after the call
 * (threads blocked in telem_trade are woken with TELEM_ECLOSED first). Accepts NULL. Returns
 * TELEM_OK when everything was delivered, else TELEM_ETIMEDOUT.
 */
TELEM_API int telem_close(struct telem *t, unsigned timeout_ms);

/* telem_stats copies the handle's counters into out. Thread-safe. Returns TELEM_OK. */
TELEM_API int telem_stats(struct telem *t, struct telem_stats *out);

/* telem_strerror names a TELEM_E* code ("buffer full"). Returns a static string. */
TELEM_API const char *telem_strerror(int code);

/*
 * telem_errmsg returns why the last call that failed on the calling thread failed, e.g.
 * "pnl: not a finite number". The text is thread-local and valid until the next failing call
 * on this thread.
 */
TELEM_API const char *telem_errmsg(void);

#ifdef __cplusplus
}
#endif

#endif
