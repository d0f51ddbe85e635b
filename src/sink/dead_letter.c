/*
 * dead_letter.c: the quarantine file of refused records, one fsynced JSON line each (see
 * dead_letter.h). Formatting is pure and bounded; the file is opened on the first quarantine
 * and kept open, and every line is written in one append and synced before the worker is told
 * the record is safe to pass.
 */
#include "sink/dead_letter.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#define DEAD_LETTER_TEXT_MAX 256 /* sink names and reasons are cut to this many bytes */

struct dead_letter {
    char *path;
    pthread_mutex_t lock; /* guards fd and the file's end */
    int fd;               /* -1 until the first write */
};

/* A bounded output buffer: once full, further output is dropped and overflow is set. */
struct dl_out {
    char *dst;
    size_t cap;
    size_t len;
    bool overflow;
};

static void dl_put(struct dl_out *o, const char *s, size_t n)
{
    if (o->overflow || n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->dst + o->len, s, n);
    o->len += n;
    o->dst[o->len] = '\0';
}

static void dl_puts(struct dl_out *o, const char *s)
{
    dl_put(o, s, strlen(s));
}

/* dl_utf8_len returns the length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t dl_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < need + 1 || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    return need + 1;
}

/* dl_string writes s[0..n) as a JSON string; invalid UTF-8 bytes become U+FFFD. */
static void dl_string(struct dl_out *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    dl_put(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            dl_put(o, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            dl_put(o, esc, 6);
            i++;
        } else {
            size_t len = dl_utf8_len(u + i, n - i);
            if (len == 0) {
                dl_put(o, "\\ufffd", 6);
                i++;
            } else {
                dl_put(o, s + i, len);
                i += len;
            }
        }
    }
    dl_put(o, "\"", 1);
}

static void dl_key(struct dl_out *o, const char *key)
{
    dl_puts(o, ",\"");
    dl_puts(o, key);
    dl_puts(o, "\":");
}

static void dl_field_string(struct dl_out *o, const char *key, const char *s, size_t n)
{
    dl_key(o, key);
    dl_string(o, s, n);
}

/* dl_field_text writes a caller's text, cut to DEAD_LETTER_TEXT_MAX bytes. */
static void dl_field_text(struct dl_out *o, const char *key, const char *s)
{
    size_t n = s ? strnlen(s, DEAD_LETTER_TEXT_MAX) : 0;
    dl_field_string(o, key, s ? s : "", n);
}

static void dl_field_double(struct dl_out *o, const char *key, bool present, double v)
{
    char num[40];
    dl_key(o, key);
    if (!present)
        dl_puts(o, "null");
    else if (isnan(v))
        dl_puts(o, "\"nan\"");
    else if (isinf(v))
        dl_puts(o, v > 0 ? "\"inf\"" : "\"-inf\"");
    else {
        snprintf(num, sizeof(num), "%.17g", v);
        dl_puts(o, num);
    }
}

static void dl_field_int(struct dl_out *o, const char *key, bool present, long long v)
{
    char num[24];
    dl_key(o, key);
    if (!present) {
        dl_puts(o, "null");
        return;
    }
    snprintf(num, sizeof(num), "%lld", v);
    dl_puts(o, num);
}

int dead_letter_format(const struct record *rec, const char *sink, const char *reason,
                       int64_t wall_ns, char *dst, size_t cap)
{
    struct dl_out o = {.dst = dst, .cap = cap, .len = 0, .overflow = cap == 0};
    if (cap)
        dst[0] = '\0';

    /* Floor division, so that times before 1970 still print a valid instant. */
    int64_t secs = wall_ns / 1000000000;
    int64_t frac = wall_ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    char stamp[64];
    if (gmtime_r(&t, &tm))
        snprintf(stamp, sizeof(stamp), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (long long)(frac / 1000));
    else
        snprintf(stamp, sizeof(stamp), "{\"time\":null");
    dl_puts(&o, stamp);
    dl_field_text(&o, "sink", sink);
    dl_field_text(&o, "reason", reason);
    dl_field_int(&o, "seq", true, (long long)rec->seq);
    dl_key(&o, "kind");
    dl_puts(&o, rec->kind == RECORD_TRADE ? "\"trade\"" : "\"metric\"");
    dl_field_int(&o, "ts_ns", true, rec->ts_ns);
    dl_field_string(&o, "profile", rec->profile, rec->profile_len);
    dl_field_string(&o, "script", rec->script, rec->script_len);
    if (rec->kind == RECORD_TRADE) {
        unsigned p = rec->present;
        dl_field_string(&o, "symbol", rec->symbol, rec->symbol_len);
        dl_field_string(&o, "side", rec->side, rec->side_len);
        dl_field_double(&o, "qty", p & REC_HAS_QTY, rec->qty);
        dl_field_double(&o, "entry_price", p & REC_HAS_ENTRY_PRICE, rec->entry_price);
        dl_field_double(&o, "exit_price", p & REC_HAS_EXIT_PRICE, rec->exit_price);
        dl_field_double(&o, "pnl", p & REC_HAS_PNL, rec->pnl);
        dl_field_double(&o, "fees", p & REC_HAS_FEES, rec->fees);
        dl_field_int(&o, "opened_at_ns", p & REC_HAS_OPENED_AT, rec->opened_at_ns);
        dl_key(&o, "trade_id");
        if (rec->trade_id_len)
            dl_string(&o, rec->trade_id, rec->trade_id_len);
        else
            dl_puts(&o, "null");
    } else {
        dl_field_string(&o, "name", rec->name, rec->name_len);
        dl_field_double(&o, "value", true, rec->value);
    }
    dl_puts(&o, "}\n");
    if (o.overflow)
        return -ENOSPC;
    return (int)o.len;
}

struct dead_letter *dead_letter_create(const char *path)
{
    struct dead_letter *dl = xcalloc(1, sizeof(*dl));
    dl->path = xstrdup(path);
    dl->fd = -1;
    pthread_mutex_init(&dl->lock, NULL);
    return dl;
}

const char *dead_letter_path(const struct dead_letter *dl)
{
    return dl->path;
}

/* dl_sync_parent fsyncs the folder holding path, so a new file's name survives a crash. */
static void dl_sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fsync(fd) < 0)
        LOG_WARN("dead-letter", "%s: fsync: %s", dir, strerror(errno));
    close(fd);
}

/* dl_open opens the file once, creating it when missing. Called with the lock held. */
static int dl_open(struct dead_letter *dl)
{
    if (dl->fd >= 0)
        return 0;
    int fd = open(dl->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    bool created = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(dl->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (created)
        dl_sync_parent(dl->path);
    dl->fd = fd;
    return 0;
}

/* dl_append writes line at the end of the file and syncs it; cuts a partial line off. */
static int dl_append(struct dead_letter *dl, const char *line, size_t len)
{
    struct stat sb;
    if (fstat(dl->fd, &sb) < 0)
        return -errno;
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t w = write(dl->fd, line + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0 && fsync(dl->fd) < 0)
        rc = -errno;
    if (rc < 0 && done > 0 && ftruncate(dl->fd, sb.st_size) < 0)
        LOG_ERROR("dead-letter", "%s: cannot cut a partial line off: %s", dl->path,
                  strerror(errno));
    return rc;
}

int dead_letter_write(struct dead_letter *dl, const struct record *rec, const char *sink,
                      const char *reason)
{
    char line[DEAD_LETTER_LINE_MAX];
    int len = dead_letter_format(rec, sink, reason, clock_wall_ns(), line, sizeof(line));
    if (len < 0)
        return len;
    pthread_mutex_lock(&dl->lock);
    int rc = dl_open(dl);
    if (rc == 0)
        rc = dl_append(dl, line, (size_t)len);
    pthread_mutex_unlock(&dl->lock);
    return rc;
}

void dead_letter_destroy(struct dead_letter *dl)
{
    if (!dl)
        return;
    if (dl->fd >= 0)
        close(dl->fd);
    pthread_mutex_destroy(&dl->lock);
    free(dl->path);
    free(dl);
}
