/*
 * spool.c: the write-ahead log's writer side, its sync thread, recovery, cursors and segment
 * deletion (the folder layout, threads and tickets are described in spool.h; the locking and
 * positions in spool_internal.h; readers are in spool_reader.c).
 *
 * Appending. The writer thread encodes a frame header (and the batch tag) into one reusable
 * buffer and writes header, tag and payload with one pwritev(2) at the active segment's end;
 * a failed or short write is cut off again with ftruncate and reported, so nothing partial is
 * kept. It then publishes the new written position under the lock and, under
 * SPOOL_FSYNC_ALWAYS, signals the sync thread. Tickets count appended frames from 1 in each
 * process; a recovered producer entry carries ticket 0, which is durable from the start.
 *
 * Group commit. The sync thread takes the written position, fdatasyncs (rotated segments
 * first, then the directory when a segment was created, then the active segment) and
 * publishes the result as durable: readers may read up to it and spool_poll reports its
 * ticket, woken through the eventfd. Appends that arrive during an fdatasync are covered by the
 * next one. Under INTERVAL and NEVER the writer publishes every append as visible itself.
 *
 * fsync failure (ALWAYS). The sync thread marks the spool failed and stops. The writer's next
 * spool_poll reports the tickets that were not made durable, rolls the client-batch table back
 * to the durable ticket, and cuts everything after the durable position (deleting newer
 * segments, truncating and fdatasyncing the rest). Until the cut succeeds appends fail with
 * -EIO; sequence numbers are never reused.
 *
 * Rotation. When the active segment holds segment_bytes, the next append first creates
 * seg-<next_seq>.log, starting with a FRAME_PRODUCERS snapshot of the client-batch table so that
 * recovery needs only the newest segment. The old segment's descriptor goes to the sync thread,
 * which fdatasyncs and closes it before anything after it counts as durable.
 *
 * Cursors and deletion. spool_cursor_set only records the value; at most every 200 ms the sync
 * thread writes changed cursors (8-byte value + CRC-32C, through a temporary file, fdatasync,
 * rename and a directory fsync), then seq.hwm, then deletes every segment before the visible
 * one whose records all lie at or below the lowest registered cursor. With no cursor
 * registered, nothing is deleted.
 *
 * Age of the oldest unsent record (spool_stats.oldest_unsent_ns): approximate. The writer keeps
 * a ring of (seq, arrival time) samples, one per 250 ms of appends, and every segment keeps the
 * arrival time of its first frame (for a recovered segment: the file's birth or modification
 * time). The answer is the latest of the two lower bounds for the record after the lowest
 * cursor, so it is never later than the true arrival and usually within 250 ms of it.
 */
#include "spool/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/crc32c.h"
#include "core/log.h"
#include "spool/producers.h"
#include "spool/spool_internal.h"

int (*spool_fdatasync_fn)(int fd) = fdatasync;
ssize_t (*spool_pwritev_fn)(int fd, const struct iovec *iov, int iovcnt, off_t offset) = pwritev;

#define SEG_NAME_LEN      28 /* "seg-" + 20 digits + ".log" */
#define COUNTER_FILE_SIZE 12
#define NS_PER_SEC        1000000000ll

static uint64_t wall_seconds(void)
{
    int64_t ns = clock_wall_ns();
    return ns > 0 ? (uint64_t)(ns / NS_PER_SEC) : 0;
}

static void set_err(char *err, size_t errlen, const char *what, int rc)
{
    if (err && errlen)
        snprintf(err, errlen, "spool: %s: %s", what, strerror(-rc));
}

int spool_segment_path(const struct spool *sp, uint64_t first_seq, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/seg-%020" PRIu64 ".log", sp->dir, first_seq);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static void segment_name(uint64_t first_seq, char *buf, size_t cap)
{
    snprintf(buf, cap, "seg-%020" PRIu64 ".log", first_seq);
}

/* parse_segment_name returns 1 and *first when name is exactly seg-<20 digits>.log. */
static int parse_segment_name(const char *name, uint64_t *first)
{
    if (strlen(name) != SEG_NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
        strcmp(name + 24, ".log") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *first = v;
    return 1;
}

/* notify wakes the writer's event loop. */
static void notify(struct spool *sp)
{
    uint64_t one = 1;
    ssize_t r = write(sp->notify_fd, &one, sizeof(one));
    (void)r; /* EAGAIN only when the counter is saturated: it is readable anyway */
}

/* ---- small files: spool.id, seq.hwm, cursor.<name> ---- */

/*
 * file_replace writes data[0..len) to name in the spool folder through name.tmp, fdatasync and
 * rename. The caller fsyncs the folder. Returns 0 or -errno.
 */
static int file_replace(struct spool *sp, const char *name, const void *data, size_t len)
{
    char tmp[SPOOL_CURSOR_NAME_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    int fd = openat(sp->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = 0;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, (const uint8_t *)data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0 && fdatasync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(sp->dir_fd, tmp, sp->dir_fd, name) < 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(sp->dir_fd, tmp, 0);
    return rc;
}

/* file_read reads up to cap bytes of name. Returns the bytes read or -errno. */
static ssize_t file_read(struct spool *sp, const char *name, void *buf, size_t cap)
{
    int fd = openat(sp->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    while (done < cap) {
        ssize_t r = read(fd, (uint8_t *)buf + done, cap - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    close(fd);
    return (ssize_t)done;
}

/* counter_write stores value in name as 8 bytes little-endian and their CRC-32C. */
static int counter_write(struct spool *sp, const char *name, uint64_t value)
{
    uint8_t b[COUNTER_FILE_SIZE];
    spool_le64_put(b, value);
    uint32_t crc = crc32c(0, b, 8);
    for (int k = 0; k < 4; k++)
        b[8 + k] = (uint8_t)(crc >> (8 * k));
    return file_replace(sp, name, b, sizeof(b));
}

/* counter_read loads a counter file. Returns 0, -ENOENT, -EINVAL (damaged) or -errno. */
static int counter_read(struct spool *sp, const char *name, uint64_t *value)
{
    uint8_t b[COUNTER_FILE_SIZE + 1];
    ssize_t n = file_read(sp, name, b, sizeof(b));
    if (n < 0)
        return (int)n;
    if (n != COUNTER_FILE_SIZE)
        return -EINVAL;
    uint32_t crc =
        (uint32_t)b[8] | (uint32_t)b[9] << 8 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 24;
    if (crc32c(0, b, 8) != crc)
        return -EINVAL;
    *value = spool_le64_get(b);
    return 0;
}

static int load_or_make_id(struct spool *sp, char *err, size_t errlen)
{
    char what[4200];
    snprintf(what, sizeof(what), "%s/spool.id", sp->dir);
    uint8_t b[SPOOL_ID_SIZE + 1];
    ssize_t n = file_read(sp, "spool.id", b, sizeof(b));
    if (n == SPOOL_ID_SIZE) {
        memcpy(sp->id, b, SPOOL_ID_SIZE);
        return 0;
    }
    if (n >= 0) {
        if (err && errlen)
            snprintf(err, errlen, "spool: %s: holds %zd bytes, not %d", what, n, SPOOL_ID_SIZE);
        return -EINVAL;
    }
    if (n != -ENOENT) {
        set_err(err, errlen, what, (int)n);
        return (int)n;
    }
    size_t got = 0;
    while (got < SPOOL_ID_SIZE) {
        ssize_t r = getrandom(sp->id + got, SPOOL_ID_SIZE - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = -errno;
            set_err(err, errlen, "getrandom", rc);
            return rc;
        }
        got += (size_t)r;
    }
    int rc = file_replace(sp, "spool.id", sp->id, SPOOL_ID_SIZE);
    if (rc == 0 && fsync(sp->dir_fd) < 0)
        rc = -errno;
    if (rc < 0)
        set_err(err, errlen, what, rc);
    return rc;
}

/* ---- segments ---- */

static void segs_push(struct spool *sp, const struct spool_seg *seg)
{
    if (sp->nsegs == sp->segs_cap) {
        sp->segs_cap = sp->segs_cap ? 2 * sp->segs_cap : 16;
        sp->segs = xrealloc(sp->segs, sp->segs_cap * sizeof(*sp->segs));
    }
    sp->segs[sp->nsegs++] = *seg;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct spool_seg *x = a, *y = b;
    return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq;
}

static int64_t stat_birth_ns(int dir_fd, const char *name, uint64_t *size, int64_t *mtime_ns)
{
    struct statx stx;
    if (statx(dir_fd, name, AT_SYMLINK_NOFOLLOW, STATX_SIZE | STATX_MTIME | STATX_BTIME, &stx) < 0)
        return -errno;
    *size = stx.stx_size;
    *mtime_ns = (int64_t)stx.stx_mtime.tv_sec * NS_PER_SEC + stx.stx_mtime.tv_nsec;
    if (stx.stx_mask & STATX_BTIME)
        return (int64_t)stx.stx_btime.tv_sec * NS_PER_SEC + stx.stx_btime.tv_nsec;
    return *mtime_ns;
}

/* list_segments fills sp->segs from the folder, oldest first, and drops stale temp files. */
static int list_segments(struct spool *sp, char *err, size_t errlen)
{
    int fd = dup(sp->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        set_err(err, errlen, sp->dir, rc);
        return rc;
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        size_t nl = strlen(de->d_name);
        if (nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
            unlinkat(sp->dir_fd, de->d_name, 0);
            continue;
        }
        if (!parse_segment_name(de->d_name, &first))
            continue;
        struct spool_seg seg = {.first_seq = first};
        int64_t mtime_ns;
        int64_t birth = stat_birth_ns(sp->dir_fd, de->d_name, &seg.size, &mtime_ns);
        if (birth < 0) {
            closedir(d);
            set_err(err, errlen, de->d_name, (int)birth);
            return (int)birth;
        }
        seg.first_wall_ns = birth;
        segs_push(sp, &seg);
    }
    closedir(d);
    if (sp->nsegs > 1)
        qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), seg_cmp);
    for (size_t i = 0; i < sp->nsegs; i++)
        sp->total_bytes += sp->segs[i].size;
    return 0;
}

/*
 * write_all writes iov[0..cnt) at off in full, retrying short writes. On failure it cuts the
 * file back to off (so nothing partial stays) and returns -errno.
 */
static int write_all(struct spool *sp, int fd, struct iovec *iov, int cnt, uint64_t off)
{
    uint64_t at = off;
    while (cnt > 0) {
        ssize_t w = spool_pwritev_fn(fd, iov, cnt, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int rc = w < 0 ? -errno : -EIO;
            if (ftruncate(fd, (off_t)off) < 0)
                sp->tail_dirty = true;
            return rc;
        }
        at += (uint64_t)w;
        size_t left = (size_t)w;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/*
 * write_snapshot writes a FRAME_PRODUCERS frame of the client-batch table at offset off of fd.
 * Writer thread. Returns the frame's size or -errno.
 */
static int64_t write_snapshot(struct spool *sp, int fd, uint64_t off)
{
    producers_expire(sp->producers, wall_seconds());
    atomic_store(&sp->stat_producers, producers_count(sp->producers));
    size_t need = producers_snapshot_size(sp->producers);
    if (need > sp->snap_cap) {
        sp->snap_cap = need;
        sp->snap_buf = xrealloc(sp->snap_buf, need);
    }
    int len = producers_snapshot_encode(sp->producers, sp->snap_buf, sp->snap_cap);
    if (len < 0)
        return len;
    uint8_t head[FRAME_HEADER_SIZE];
    struct frame_header h = {
        .type = FRAME_PRODUCERS, .len = (uint32_t)len, .first_seq = sp->next_seq};
    frame_header_encode(&h, sp->snap_buf, head);
    struct iovec iov[2] = {{head, sizeof(head)}, {sp->snap_buf, (size_t)len}};
    int rc = write_all(sp, fd, iov, 2, off);
    if (rc < 0)
        return rc;
    return FRAME_HEADER_SIZE + len;
}

/*
 * segment_create starts seg-<next_seq>.log with a producer snapshot and makes it the active
 * segment; the previous active descriptor goes to the sync thread. Writer thread. Returns 0
 * or -errno (the previous segment stays active).
 */
static int segment_create(struct spool *sp)
{
    char name[SEG_NAME_LEN + 1];
    segment_name(sp->next_seq, name, sizeof(name));
    int fd = openat(sp->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        int rc = -errno;
        LOG_ERROR("spool", "%s/%s: %s", sp->dir, name, strerror(-rc));
        return rc;
    }
    int64_t n = write_snapshot(sp, fd, 0);
    if (n < 0) {
        LOG_ERROR("spool", "%s/%s: %s", sp->dir, name, strerror((int)-n));
        close(fd);
        unlinkat(sp->dir_fd, name, 0);
        return (int)n;
    }
    struct spool_seg seg = {
        .first_seq = sp->next_seq, .size = (uint64_t)n, .first_wall_ns = clock_wall_ns()};
    pthread_mutex_lock(&sp->lock);
    segs_push(sp, &seg);
    if (sp->active_fd >= 0) {
        if (sp->npending == sp->pending_cap) {
            sp->pending_cap = sp->pending_cap ? 2 * sp->pending_cap : 4;
            sp->pending_fds = xrealloc(sp->pending_fds, sp->pending_cap * sizeof(int));
        }
        sp->pending_fds[sp->npending++] = sp->active_fd;
    }
    sp->active_fd = fd;
    sp->written.seg = seg.first_seq;
    sp->written.off = seg.size;
    sp->dir_sync_needed = true;
    sp->total_bytes += seg.size;
    if (sp->opt.fsync != SPOOL_FSYNC_ALWAYS) {
        sp->visible = sp->written;
        pthread_cond_broadcast(&sp->readers_cv);
    }
    pthread_cond_signal(&sp->sync_cv);
    pthread_mutex_unlock(&sp->lock);
    sp->active_first = seg.first_seq;
    sp->active_size = seg.size;
    return 0;
}

/*
 * recover_newest scans the newest segment: cuts a torn tail, counts damaged frames, rebuilds
 * next_seq and the client-batch table, and opens it as the active segment. An empty newest
 * segment is removed in favour of the one before it. Returns 0 or -errno with err filled.
 */
static int recover_newest(struct spool *sp, char *err, size_t errlen)
{
    struct spool_scan sc;
    spool_scan_init(&sc);
    int rc = 0;
    while (sp->nsegs > 0) {
        struct spool_seg *seg = &sp->segs[sp->nsegs - 1];
        char name[SEG_NAME_LEN + 1];
        segment_name(seg->first_seq, name, sizeof(name));
        int fd = openat(sp->dir_fd, name, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            set_err(err, errlen, name, rc);
            break;
        }
        struct stat st;
        uint64_t mtime_s = fstat(fd, &st) == 0 ? (uint64_t)st.st_mtim.tv_sec : wall_seconds();
        uint64_t now_s = wall_seconds();
        producers_clear(sp->producers); /* forget what a previous attempt loaded */
        uint64_t end_seq = seg->first_seq;
        spool_scan_reset(&sc, fd, 0, seg->size);
        sc.corrupt = 0;
        struct frame_header h;
        uint64_t off;
        const uint8_t *payload;
        while ((rc = spool_scan_next(&sc, &h, &off, &payload)) == 1) {
            if (h.type == FRAME_PRODUCERS) {
                if (producers_snapshot_load(sp->producers, payload, h.len, now_s) < 0)
                    LOG_WARN("spool", "%s: producer snapshot at %llu does not decode", name,
                             (unsigned long long)off);
                continue;
            }
            if (h.first_seq + h.count > end_seq)
                end_seq = h.first_seq + h.count;
            struct batch_tag tag;
            if ((h.flags & FRAME_F_BATCH_TAG) && frame_tag_decode(payload, h.len, &tag) > 0)
                producers_record(sp->producers, &tag, mtime_s, 0, 0);
        }
        if (rc < 0) {
            close(fd);
            set_err(err, errlen, name, rc);
            break;
        }
        if (sc.corrupt) {
            LOG_WARN("spool", "%s: %llu damaged frames skipped", name,
                     (unsigned long long)sc.corrupt);
            sp->stat_corrupt += sc.corrupt;
        }
        if (sc.off < seg->size) {
            uint64_t torn = seg->size - sc.off;
            LOG_WARN("spool", "%s: cutting a torn tail of %llu bytes at offset %llu", name,
                     (unsigned long long)torn, (unsigned long long)sc.off);
            if (ftruncate(fd, (off_t)sc.off) < 0 || spool_fdatasync_fn(fd) < 0) {
                rc = -errno;
                close(fd);
                set_err(err, errlen, name, rc);
                break;
            }
            sp->stat_torn += torn;
            sp->total_bytes -= torn;
            seg->size = sc.off;
        } else if (spool_fdatasync_fn(fd) < 0) {
            /* What a crashed process left in the page cache must be on disk before readers. */
            rc = -errno;
            close(fd);
            set_err(err, errlen, name, rc);
            break;
        }
        if (seg->size == 0 && sp->nsegs > 1) {
            close(fd);
            if (unlinkat(sp->dir_fd, name, 0) < 0) {
                rc = -errno;
                set_err(err, errlen, name, rc);
                break;
            }
            sp->nsegs--;
            continue;
        }
        if (end_seq > sp->next_seq)
            sp->next_seq = end_seq;
        sp->active_fd = fd;
        sp->active_first = seg->first_seq;
        sp->active_size = seg->size;
        if (seg->size == 0) {
            int64_t n = write_snapshot(sp, fd, 0);
            if (n < 0) {
                rc = (int)n;
                set_err(err, errlen, name, rc);
                break;
            }
            seg->size = sp->active_size = (uint64_t)n;
            sp->total_bytes += (uint64_t)n;
            if (spool_fdatasync_fn(fd) < 0) {
                rc = -errno;
                set_err(err, errlen, name, rc);
                break;
            }
        }
        rc = 0;
        break;
    }
    spool_scan_free(&sc);
    return rc;
}

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0750) < 0 && errno != EEXIST)
            return -errno;
        path[i] = c;
    }
    return 0;
}

static void *sync_main(void *arg);

/* spool_free releases everything spool_open may have made. Threads must be stopped. */
static void spool_free(struct spool *sp)
{
    for (size_t i = 0; i < sp->npending; i++)
        close(sp->pending_fds[i]);
    if (sp->active_fd >= 0)
        close(sp->active_fd);
    if (sp->notify_fd >= 0)
        close(sp->notify_fd);
    if (sp->dir_fd >= 0)
        close(sp->dir_fd);
    producers_destroy(sp->producers);
    pthread_cond_destroy(&sp->readers_cv);
    pthread_cond_destroy(&sp->sync_cv);
    pthread_mutex_destroy(&sp->lock);
    free(sp->pending_fds);
    free(sp->segs);
    free(sp->cursors);
    free(sp->snap_buf);
    free(sp->dir);
    free(sp);
}

struct spool *spool_open(const struct spool_options *opt, char *err, size_t errlen)
{
    struct spool *sp = xcalloc(1, sizeof(*sp));
    sp->dir_fd = sp->notify_fd = sp->active_fd = -1;
    sp->opt = *opt;
    sp->cursors_complete = !opt->defer_deletion;
    sp->dir = xstrdup(opt->dir);
    sp->opt.dir = sp->dir;
    if (!sp->opt.segment_bytes)
        sp->opt.segment_bytes = SPOOL_DEFAULT_SEGMENT_BYTES;
    if (!sp->opt.producers_max)
        sp->opt.producers_max = SPOOL_DEFAULT_PRODUCERS_MAX;
    /* A snapshot of the whole table must fit in one frame. */
    if (sp->opt.producers_max > (FRAME_PAYLOAD_MAX - 4) / PRODUCERS_ENTRY_MAX)
        sp->opt.producers_max = (FRAME_PAYLOAD_MAX - 4) / PRODUCERS_ENTRY_MAX;
    if (!sp->opt.fsync_interval_ms)
        sp->opt.fsync_interval_ms = SPOOL_DEFAULT_INTERVAL_MS;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&sp->lock, NULL);
    pthread_cond_init(&sp->sync_cv, &ca);
    pthread_cond_init(&sp->readers_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&sp->sync_failed, false);
    atomic_init(&sp->durable_ticket, 0);
    atomic_init(&sp->stat_duplicates, 0);
    atomic_init(&sp->stat_producers, 0);
    sp->producers = producers_create(sp->opt.producers_max, sp->opt.producer_idle_s);

    int rc = mkdir_p(sp->dir);
    if (rc < 0) {
        set_err(err, errlen, sp->dir, rc);
        goto fail;
    }
    sp->dir_fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dir_fd < 0) {
        rc = -errno;
        set_err(err, errlen, sp->dir, rc);
        goto fail;
    }
    if (flock(sp->dir_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = -errno;
        if (rc == -EWOULDBLOCK && err && errlen)
            snprintf(err, errlen, "spool: %s: in use by another process", sp->dir);
        else
            set_err(err, errlen, sp->dir, rc);
        goto fail;
    }
    rc = load_or_make_id(sp, err, errlen);
    if (rc < 0)
        goto fail;
    uint64_t hwm = 0;
    rc = counter_read(sp, "seq.hwm", &hwm);
    if (rc == -EINVAL)
        LOG_WARN("spool", "%s/seq.hwm is damaged; relying on the segments", sp->dir);
    else if (rc < 0 && rc != -ENOENT) {
        set_err(err, errlen, "seq.hwm", rc);
        goto fail;
    }
    sp->hwm_persisted = hwm;
    sp->next_seq = hwm > 1 ? hwm : 1;
    rc = list_segments(sp, err, errlen);
    if (rc < 0)
        goto fail;
    if (sp->nsegs && sp->segs[sp->nsegs - 1].first_seq > sp->next_seq)
        sp->next_seq = sp->segs[sp->nsegs - 1].first_seq;
    rc = recover_newest(sp, err, errlen);
    if (rc < 0)
        goto fail;
    if (sp->nsegs == 0) {
        rc = segment_create(sp);
        if (rc < 0) {
            set_err(err, errlen, "creating the first segment", rc);
            goto fail;
        }
        if (spool_fdatasync_fn(sp->active_fd) < 0) {
            rc = -errno;
            set_err(err, errlen, sp->dir, rc);
            goto fail;
        }
    }
    if (fsync(sp->dir_fd) < 0) {
        rc = -errno;
        set_err(err, errlen, sp->dir, rc);
        goto fail;
    }
    sp->dir_sync_needed = false;
    sp->segs[sp->nsegs - 1].size = sp->active_size;
    sp->written = (struct spool_pos){
        .seg = sp->active_first, .off = sp->active_size, .next_seq = sp->next_seq};
    sp->visible = sp->written;
    atomic_store(&sp->stat_producers, producers_count(sp->producers));

    sp->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sp->notify_fd < 0) {
        rc = -errno;
        set_err(err, errlen, "eventfd", rc);
        goto fail;
    }
    rc = -pthread_create(&sp->sync_thread, NULL, sync_main, sp);
    if (rc < 0) {
        set_err(err, errlen, "starting the sync thread", rc);
        goto fail;
    }
    sp->sync_started = true;
    LOG_INFO("spool", "%s: %zu segments, %llu bytes, next seq %llu, %zu producers", sp->dir,
             sp->nsegs, (unsigned long long)sp->total_bytes, (unsigned long long)sp->next_seq,
             producers_count(sp->producers));
    return sp;

fail:
    spool_free(sp);
    return NULL;
}

const uint8_t *spool_id(const struct spool *sp)
{
    return sp->id;
}

int spool_notify_fd(const struct spool *sp)
{
    return sp->notify_fd;
}

/* ---- failure handling (writer thread) ---- */

/*
 * cut_to_visible removes everything after the visible (durable) position: newer segments are
 * deleted, the segment holding the position is truncated to it and fdatasynced, and it becomes
 * the active segment again. Clears sync_failed on success. Returns 0 or -errno.
 */
static int cut_to_visible(struct spool *sp)
{
    sp->last_cut_try_mono = clock_mono_ns();
    pthread_mutex_lock(&sp->lock);
    struct spool_pos d = sp->visible;
    size_t keep = sp->nsegs;
    while (keep > 0 && sp->segs[keep - 1].first_seq > d.seg)
        keep--;
    bool have_d = keep > 0 && sp->segs[keep - 1].first_seq == d.seg;
    size_t nsegs = sp->nsegs;
    uint64_t *firsts = xmalloc((nsegs + 1) * sizeof(*firsts));
    for (size_t i = 0; i < nsegs; i++)
        firsts[i] = sp->segs[i].first_seq;
    pthread_mutex_unlock(&sp->lock);

    int rc = 0;
    size_t removed_from = nsegs;
    for (size_t i = nsegs; i > keep; i--) {
        char name[SEG_NAME_LEN + 1];
        segment_name(firsts[i - 1], name, sizeof(name));
        if (unlinkat(sp->dir_fd, name, 0) < 0 && errno != ENOENT) {
            rc = -errno;
            break;
        }
        removed_from = i - 1;
    }
    free(firsts);
    if (removed_from < nsegs && fsync(sp->dir_fd) < 0 && rc == 0)
        rc = -errno;
    int fd = -1;
    if (rc == 0 && have_d) {
        if (d.seg == sp->active_first)
            fd = sp->active_fd;
        else {
            char name[SEG_NAME_LEN + 1];
            segment_name(d.seg, name, sizeof(name));
            fd = openat(sp->dir_fd, name, O_WRONLY | O_CLOEXEC);
            if (fd < 0)
                rc = -errno;
        }
        if (rc == 0 && (ftruncate(fd, (off_t)d.off) < 0 || spool_fdatasync_fn(fd) < 0))
            rc = -errno;
    }

    pthread_mutex_lock(&sp->lock);
    for (size_t i = removed_from; i < nsegs; i++)
        sp->total_bytes -= sp->segs[i].size;
    sp->nsegs = removed_from;
    if (rc == 0 && have_d) {
        struct spool_seg *seg = &sp->segs[sp->nsegs - 1];
        sp->total_bytes -= seg->size - d.off;
        seg->size = d.off;
        if (fd != sp->active_fd) {
            close(sp->active_fd);
            sp->active_fd = fd;
        }
        sp->written = d;
        sp->written.next_seq = sp->next_seq;
        sp->written.ticket = sp->ticket;
    }
    if (rc == 0) {
        sp->synced_ticket = sp->ticket;
        sp->visible.ticket = sp->ticket;
        atomic_store(&sp->durable_ticket, sp->ticket);
        atomic_store(&sp->sync_failed, false);
        pthread_cond_signal(&sp->sync_cv);
    }
    pthread_mutex_unlock(&sp->lock);

    if (rc < 0) {
        if (fd >= 0 && fd != sp->active_fd)
            close(fd);
        LOG_ERROR("spool",
                  "%s: cutting what was not made durable failed: %s; appends fail "
                  "until it succeeds",
                  sp->dir, strerror(-rc));
        return rc;
    }
    sp->failure_reported = false;
    sp->tail_dirty = false;
    if (have_d) {
        sp->active_first = d.seg;
        sp->active_size = d.off;
    } else {
        /* The durable segment was already deleted: start afresh. */
        sp->active_size = 0;
        rc = segment_create(sp);
        if (rc < 0) {
            atomic_store(&sp->sync_failed, true);
            sp->failure_reported = true;
            return rc;
        }
    }
    LOG_WARN("spool", "%s: cut back to segment %llu offset %llu after an fsync failure", sp->dir,
             (unsigned long long)d.seg, (unsigned long long)d.off);
    return 0;
}

/* writer_ready returns 0 when appends may go on, retrying a pending cut at most once a second. */
static int writer_ready(struct spool *sp)
{
    if (atomic_load(&sp->sync_failed)) {
        if (!sp->failure_reported)
            return -EIO; /* spool_poll reports the failure first */
        if (clock_mono_ns() - sp->last_cut_try_mono < NS_PER_SEC || cut_to_visible(sp) < 0)
            return -EIO;
    }
    if (sp->tail_dirty) {
        if (ftruncate(sp->active_fd, (off_t)sp->active_size) < 0)
            return -EIO;
        sp->tail_dirty = false;
    }
    return 0;
}

/* ---- appending (writer thread) ---- */

/* publish makes an append of n bytes and count records known to the other threads. */
static void publish(struct spool *sp, uint64_t n, uint64_t first_seq, uint32_t count)
{
    int64_t mono = clock_mono_ns();
    pthread_mutex_lock(&sp->lock);
    sp->segs[sp->nsegs - 1].size = sp->active_size;
    sp->written.off = sp->active_size;
    sp->written.next_seq = sp->next_seq;
    sp->written.ticket = sp->ticket;
    sp->total_bytes += n;
    sp->stat_frames++;
    sp->stat_records += count;
    if (count && (sp->narrivals == 0 || mono - sp->last_arrival_mono >= SPOOL_ARRIVAL_SPACING_NS)) {
        sp->arrivals[sp->arrival_head] =
            (struct spool_arrival){.seq = first_seq, .wall_ns = clock_wall_ns()};
        sp->arrival_head = (sp->arrival_head + 1) % SPOOL_ARRIVAL_SAMPLES;
        if (sp->narrivals < SPOOL_ARRIVAL_SAMPLES)
            sp->narrivals++;
        sp->last_arrival_mono = mono;
    }
    if (sp->opt.fsync == SPOOL_FSYNC_ALWAYS) {
        pthread_cond_signal(&sp->sync_cv);
    } else {
        sp->visible = sp->written;
        if (sp->opt.fsync == SPOOL_FSYNC_NEVER)
            sp->synced_ticket = sp->ticket;
        atomic_store(&sp->durable_ticket, sp->ticket);
        pthread_cond_broadcast(&sp->readers_cv);
        if (sp->opt.fsync == SPOOL_FSYNC_INTERVAL)
            pthread_cond_signal(&sp->sync_cv);
    }
    pthread_mutex_unlock(&sp->lock);
}

int spool_append(struct spool *sp, const void *payload, size_t len, uint32_t count,
                 const struct batch_tag *tag, uint64_t *first_seq, uint64_t *ticket)
{
    int rc = writer_ready(sp);
    if (rc < 0)
        return rc;
    uint64_t now_s = wall_seconds();
    if (tag && producers_check(sp->producers, tag, now_s, ticket)) {
        atomic_fetch_add(&sp->stat_duplicates, 1);
        *first_seq = 0;
        return -EALREADY;
    }
    uint8_t *head = sp->head_buf;
    size_t tag_len = 0;
    if (tag) {
        rc = frame_tag_encode(tag, head + FRAME_HEADER_SIZE,
                              sizeof(sp->head_buf) - FRAME_HEADER_SIZE);
        if (rc < 0)
            return -EINVAL;
        tag_len = (size_t)rc;
    }
    if (len > FRAME_PAYLOAD_MAX - tag_len)
        return -EMSGSIZE;
    if (count > len)
        return -EINVAL; /* every record takes more than one byte */
    if (sp->opt.max_bytes) {
        pthread_mutex_lock(&sp->lock);
        bool full = sp->total_bytes >= sp->opt.max_bytes;
        pthread_mutex_unlock(&sp->lock);
        if (full)
            return -ENOBUFS;
    }
    if (sp->active_size >= sp->opt.segment_bytes && sp->next_seq > sp->active_first) {
        rc = segment_create(sp);
        if (rc < 0)
            return rc;
    }
    struct frame_header h = {
        .type = FRAME_RECORDS,
        .flags = tag ? FRAME_F_BATCH_TAG : 0,
        .len = (uint32_t)(tag_len + len),
        .count = count,
        .first_seq = sp->next_seq,
    };
    frame_header_encode_split(&h, head + FRAME_HEADER_SIZE, tag_len, payload, head);
    struct iovec iov[2] = {{head, FRAME_HEADER_SIZE + tag_len}, {(void *)payload, len}};
    rc = write_all(sp, sp->active_fd, iov, len ? 2 : 1, sp->active_size);
    if (rc < 0) {
        pthread_mutex_lock(&sp->lock);
        sp->stat_fsync_errors++;
        pthread_mutex_unlock(&sp->lock);
        int64_t now = clock_mono_ns();
        if (now - sp->last_error_log_mono >= NS_PER_SEC) {
            LOG_ERROR("spool", "%s: append: %s", sp->dir, strerror(-rc));
            sp->last_error_log_mono = now;
        }
        return rc;
    }
    uint64_t n = FRAME_HEADER_SIZE + tag_len + len;
    *first_seq = sp->next_seq;
    sp->next_seq += count;
    *ticket = ++sp->ticket;
    sp->active_size += n;
    if (tag) {
        producers_record(sp->producers, tag, now_s, *ticket, atomic_load(&sp->durable_ticket));
        atomic_store(&sp->stat_producers, producers_count(sp->producers));
    }
    publish(sp, n, *first_seq, count);
    if (sp->opt.fsync != SPOOL_FSYNC_ALWAYS && !sp->notify_pending) {
        sp->notify_pending = true;
        notify(sp);
    }
    return 0;
}

void spool_poll(struct spool *sp, uint64_t *durable, uint64_t *failed)
{
    uint64_t v;
    while (read(sp->notify_fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    sp->notify_pending = false;
    *failed = 0;
    if (sp->opt.fsync != SPOOL_FSYNC_ALWAYS) {
        *durable = sp->ticket;
        return;
    }
    if (atomic_load(&sp->sync_failed)) {
        pthread_mutex_lock(&sp->lock);
        uint64_t d = sp->synced_ticket;
        pthread_mutex_unlock(&sp->lock);
        *durable = d;
        if (!sp->failure_reported) {
            *failed = sp->ticket;
            sp->failure_reported = true;
            producers_rollback(sp->producers, d);
            atomic_store(&sp->stat_producers, producers_count(sp->producers));
            LOG_ERROR("spool", "%s: fsync failed: tickets %llu..%llu were not made durable",
                      sp->dir, (unsigned long long)d + 1, (unsigned long long)sp->ticket);
            cut_to_visible(sp);
        } else if (clock_mono_ns() - sp->last_cut_try_mono >= NS_PER_SEC) {
            cut_to_visible(sp);
        }
        return;
    }
    *durable = atomic_load(&sp->durable_ticket);
}

/* ---- the sync thread ---- */

/*
 * sync_round fdatasyncs rotated segments, the folder and (when data) the active segment, and
 * publishes what became durable. Called and returns with the lock held; drops it meanwhile.
 */
static void sync_round(struct spool *sp, bool data)
{
    struct spool_pos snap = sp->written;
    int fd = sp->active_fd;
    int *fds = sp->pending_fds;
    size_t nfds = sp->npending;
    sp->pending_fds = NULL;
    sp->npending = sp->pending_cap = 0;
    bool dir = sp->dir_sync_needed;
    sp->dir_sync_needed = false;
    pthread_mutex_unlock(&sp->lock);

    int err = 0;
    uint64_t calls = 0;
    for (size_t i = 0; i < nfds; i++) {
        if (!err) {
            calls++;
            if (spool_fdatasync_fn(fds[i]) < 0)
                err = errno;
        }
        close(fds[i]);
    }
    free(fds);
    if (!err && dir && fsync(sp->dir_fd) < 0)
        err = errno;
    if (!err && data) {
        calls++;
        if (spool_fdatasync_fn(fd) < 0)
            err = errno;
    }
    int64_t now = clock_mono_ns();

    pthread_mutex_lock(&sp->lock);
    sp->stat_fsyncs += calls;
    bool always = sp->opt.fsync == SPOOL_FSYNC_ALWAYS;
    if (sp->opt.fsync == SPOOL_FSYNC_INTERVAL && data)
        sp->next_interval_mono = now + (int64_t)sp->opt.fsync_interval_ms * 1000000;
    if (err) {
        sp->stat_fsync_errors++;
        if (always)
            atomic_store(&sp->sync_failed, true);
    } else if (data) {
        if (snap.ticket > sp->synced_ticket)
            sp->synced_ticket = snap.ticket;
        if (always) {
            sp->visible = snap;
            atomic_store(&sp->durable_ticket, snap.ticket);
            pthread_cond_broadcast(&sp->readers_cv);
        }
    }
    pthread_mutex_unlock(&sp->lock);
    if (err)
        LOG_ERROR("spool", "%s: fdatasync: %s", sp->dir, strerror(err));
    if (always && (err || data))
        notify(sp);
    pthread_mutex_lock(&sp->lock);
}

/* delete_passed removes segments every persisted cursor has passed. Lock held; drops it. */
static void delete_passed(struct spool *sp)
{
    if (sp->ncursors == 0 || !sp->cursors_complete || atomic_load(&sp->sync_failed))
        return;
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < sp->ncursors; i++)
        if (sp->cursors[i].persisted < min)
            min = sp->cursors[i].persisted;
    size_t k = 0;
    while (k + 1 < sp->nsegs && sp->segs[k].first_seq < sp->visible.seg &&
           sp->segs[k + 1].first_seq - 1 <= min && sp->segs[k + 1].first_seq <= sp->hwm_persisted)
        k++;
    if (k == 0)
        return;
    uint64_t *gone = xmalloc(k * sizeof(*gone));
    for (size_t i = 0; i < k; i++) {
        gone[i] = sp->segs[i].first_seq;
        sp->total_bytes -= sp->segs[i].size;
    }
    memmove(sp->segs, sp->segs + k, (sp->nsegs - k) * sizeof(*sp->segs));
    sp->nsegs -= k;
    pthread_mutex_unlock(&sp->lock);
    for (size_t i = 0; i < k; i++) {
        char name[SEG_NAME_LEN + 1];
        segment_name(gone[i], name, sizeof(name));
        if (unlinkat(sp->dir_fd, name, 0) < 0 && errno != ENOENT)
            LOG_WARN("spool", "%s/%s: %s", sp->dir, name, strerror(errno));
    }
    free(gone);
    LOG_DEBUG("spool", "%s: deleted %zu segments below seq %llu", sp->dir, k,
              (unsigned long long)min + 1);
    pthread_mutex_lock(&sp->lock);
}

/*
 * cursor_round persists changed cursors and the high-water mark, then deletes passed segments.
 * Called and returns with the lock held; drops it meanwhile.
 */
static void cursor_round(struct spool *sp)
{
    size_t n = sp->ncursors;
    struct spool_cursor *work = n ? xmalloc(n * sizeof(*work)) : NULL;
    if (n)
        memcpy(work, sp->cursors, n * sizeof(*work));
    uint64_t hwm = sp->written.next_seq;
    sp->cursors_dirty = false;
    pthread_mutex_unlock(&sp->lock);

    bool renamed = false, failed = false;
    for (size_t i = 0; i < n; i++) {
        if (work[i].value == work[i].persisted)
            continue;
        char name[SPOOL_CURSOR_NAME_MAX + 16];
        snprintf(name, sizeof(name), "cursor.%s", work[i].name);
        int rc = counter_write(sp, name, work[i].value);
        if (rc < 0) {
            LOG_WARN("spool", "%s/%s: %s", sp->dir, name, strerror(-rc));
            work[i].value = work[i].persisted;
            failed = true;
        } else {
            renamed = true;
        }
    }
    bool hwm_ok = false;
    if (hwm != sp->hwm_persisted) {
        int rc = counter_write(sp, "seq.hwm", hwm);
        if (rc < 0) {
            LOG_WARN("spool", "%s/seq.hwm: %s", sp->dir, strerror(-rc));
            failed = true;
        } else {
            renamed = hwm_ok = true;
        }
    }
    if (renamed && fsync(sp->dir_fd) < 0) {
        LOG_WARN("spool", "%s: fsync: %s", sp->dir, strerror(errno));
        failed = true;
        hwm_ok = false;
        for (size_t i = 0; i < n; i++)
            work[i].value = work[i].persisted;
    }

    pthread_mutex_lock(&sp->lock);
    if (hwm_ok)
        sp->hwm_persisted = hwm;
    for (size_t i = 0; i < n; i++)
        sp->cursors[i].persisted = work[i].value;
    free(work);
    if (failed)
        sp->cursors_dirty = true;
    delete_passed(sp);
    sp->next_cursor_mono = clock_mono_ns() + SPOOL_CURSOR_PERSIST_NS;
}

static bool pos_equal(const struct spool_pos *a, const struct spool_pos *b)
{
    return a->seg == b->seg && a->off == b->off && a->ticket == b->ticket;
}

static void *sync_main(void *arg)
{
    struct spool *sp = arg;
    pthread_setname_np(pthread_self(), "spool-sync");
    pthread_mutex_lock(&sp->lock);
    while (!sp->stopping) {
        int64_t now = clock_mono_ns();
        bool failed = atomic_load(&sp->sync_failed);
        bool data = false;
        if (!failed && sp->opt.fsync == SPOOL_FSYNC_ALWAYS)
            data = !pos_equal(&sp->written, &sp->visible);
        else if (!failed && sp->opt.fsync == SPOOL_FSYNC_INTERVAL)
            data = sp->written.ticket > sp->synced_ticket && now >= sp->next_interval_mono;
        bool rotated = !failed && (sp->npending || sp->dir_sync_needed);
        if (data || rotated) {
            sync_round(sp, data || sp->opt.fsync == SPOOL_FSYNC_ALWAYS);
            continue;
        }
        if (sp->cursors_dirty && now >= sp->next_cursor_mono) {
            cursor_round(sp);
            continue;
        }
        int64_t deadline = now + NS_PER_SEC;
        if (sp->cursors_dirty && sp->next_cursor_mono < deadline)
            deadline = sp->next_cursor_mono;
        if (sp->opt.fsync == SPOOL_FSYNC_INTERVAL && sp->written.ticket > sp->synced_ticket &&
            sp->next_interval_mono < deadline)
            deadline = sp->next_interval_mono;
        struct timespec ts = {.tv_sec = deadline / NS_PER_SEC, .tv_nsec = deadline % NS_PER_SEC};
        pthread_cond_timedwait(&sp->sync_cv, &sp->lock, &ts);
    }
    pthread_mutex_unlock(&sp->lock);
    return NULL;
}

void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    if (sp->sync_started) {
        pthread_mutex_lock(&sp->lock);
        sp->stopping = true;
        pthread_cond_signal(&sp->sync_cv);
        pthread_mutex_unlock(&sp->lock);
        pthread_join(sp->sync_thread, NULL);
        sp->sync_started = false;
    }
    /*
     * Only this thread is left. Frames whose fsync failed were (or will be) answered 503: cut
     * them now so a restart does not replay them. Then make everything durable and persist
     * cursors and the high-water mark.
     */
    if (atomic_load(&sp->sync_failed)) {
        if (!sp->failure_reported)
            producers_rollback(sp->producers, sp->synced_ticket);
        sp->failure_reported = true;
        cut_to_visible(sp);
    }
    pthread_mutex_lock(&sp->lock);
    if (!atomic_load(&sp->sync_failed)) {
        sync_round(sp, true);
        if (!atomic_load(&sp->sync_failed) && sp->opt.fsync == SPOOL_FSYNC_ALWAYS)
            sp->visible = sp->written;
    }
    cursor_round(sp);
    pthread_mutex_unlock(&sp->lock);
    spool_free(sp);
}

/* ---- cursors and statistics ---- */

static bool cursor_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > SPOOL_CURSOR_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void spool_cursors_complete(struct spool *sp)
{
    pthread_mutex_lock(&sp->lock);
    sp->cursors_complete = true;
    pthread_mutex_unlock(&sp->lock);
}

int spool_cursor_open(struct spool *sp, const char *name, uint64_t *seq, int *id)
{
    if (!cursor_name_ok(name))
        return -EINVAL;
    char file[SPOOL_CURSOR_NAME_MAX + 16];
    snprintf(file, sizeof(file), "cursor.%s", name);
    pthread_mutex_lock(&sp->lock);
    for (size_t i = 0; i < sp->ncursors; i++) {
        if (strcmp(sp->cursors[i].name, name) == 0) {
            *seq = sp->cursors[i].value;
            *id = (int)i;
            pthread_mutex_unlock(&sp->lock);
            return 0;
        }
    }
    uint64_t value = 0;
    int rc = counter_read(sp, file, &value);
    if (rc < 0 && rc != -ENOENT) {
        LOG_WARN("spool", "%s/%s: %s; starting from 0", sp->dir, file,
                 rc == -EINVAL ? "damaged" : strerror(-rc));
        value = 0;
    }
    sp->cursors = xrealloc(sp->cursors, (sp->ncursors + 1) * sizeof(*sp->cursors));
    struct spool_cursor *c = &sp->cursors[sp->ncursors];
    memset(c, 0, sizeof(*c));
    memcpy(c->name, name, strlen(name) + 1);
    c->value = c->persisted = value;
    *seq = value;
    *id = (int)sp->ncursors++;
    pthread_mutex_unlock(&sp->lock);
    return 0;
}

void spool_cursor_set(struct spool *sp, int id, uint64_t seq)
{
    pthread_mutex_lock(&sp->lock);
    if (id >= 0 && (size_t)id < sp->ncursors && sp->cursors[id].value != seq) {
        sp->cursors[id].value = seq;
        if (!sp->cursors_dirty) {
            sp->cursors_dirty = true;
            pthread_cond_signal(&sp->sync_cv);
        }
    }
    pthread_mutex_unlock(&sp->lock);
}

/* arrival_of returns the approximate arrival time of record target, 0 when it is not on disk
 * or not yet written. Lock held. */
static int64_t arrival_of(const struct spool *sp, uint64_t target)
{
    if (sp->nsegs == 0 || target >= sp->written.next_seq)
        return 0;
    int64_t best = sp->segs[0].first_wall_ns;
    for (size_t i = sp->nsegs; i-- > 0;) {
        if (sp->segs[i].first_seq <= target) {
            best = sp->segs[i].first_wall_ns;
            break;
        }
    }
    /* The ring is in ascending seq order from its oldest sample: binary search. */
    size_t lo = 0, hi = sp->narrivals;
    size_t base =
        (sp->arrival_head + SPOOL_ARRIVAL_SAMPLES - sp->narrivals) % SPOOL_ARRIVAL_SAMPLES;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sp->arrivals[(base + mid) % SPOOL_ARRIVAL_SAMPLES].seq <= target)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0) {
        int64_t t = sp->arrivals[(base + lo - 1) % SPOOL_ARRIVAL_SAMPLES].wall_ns;
        if (t > best)
            best = t;
    }
    return best;
}

int64_t spool_arrival_ns(struct spool *sp, uint64_t seq)
{
    pthread_mutex_lock(&sp->lock);
    int64_t t = arrival_of(sp, seq);
    pthread_mutex_unlock(&sp->lock);
    return t;
}

void spool_get_stats(struct spool *sp, struct spool_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&sp->lock);
    st->bytes = sp->total_bytes;
    st->segments = sp->nsegs;
    st->oldest_seq = sp->nsegs ? sp->segs[0].first_seq : sp->written.next_seq;
    st->next_seq = sp->written.next_seq;
    st->durable_seq = sp->visible.next_seq ? sp->visible.next_seq - 1 : 0;
    st->frames = sp->stat_frames;
    st->records = sp->stat_records;
    st->fsyncs = sp->stat_fsyncs;
    st->fsync_errors = sp->stat_fsync_errors;
    st->corrupt_frames = sp->stat_corrupt;
    st->torn_bytes = sp->stat_torn;
    st->oldest_unsent_ns = 0;
    if (sp->ncursors > 0) {
        uint64_t min = UINT64_MAX;
        for (size_t i = 0; i < sp->ncursors; i++)
            if (sp->cursors[i].value < min)
                min = sp->cursors[i].value;
        st->oldest_unsent_ns = arrival_of(sp, min + 1);
    }
    pthread_mutex_unlock(&sp->lock);
    st->duplicates = atomic_load(&sp->stat_duplicates);
    st->producers = atomic_load(&sp->stat_producers);
}
