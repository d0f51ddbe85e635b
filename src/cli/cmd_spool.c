/*
 * cmd_spool.c: `telemctl spool inspect DIR`: what a spool folder holds, read without telemd.
 *
 * It prints the spool's identity, sequence high-water mark and sink cursors, then walks every
 * segment frame by frame with the same decoder telemd uses (spool/frame.h): frames, records
 * (trades and metrics), sequence ranges, client-batch tags, and the frames it had to skip. A
 * frame whose header or CRC is bad is skipped by scanning for the next frame that decodes and
 * checks, as recovery does; bad bytes with no good frame after them are a torn tail (a write
 * cut short, never acknowledged). It only reads, so it is safe on a running telemd's spool;
 * the last segment may then end in a frame still being written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/output_format.h"
#include "core/alloc.h"
#include "core/crc32c.h"
#include "spool/frame.h"

struct spool_seg_summary {
    uint64_t bytes;
    uint64_t frames;
    uint64_t producer_frames;
    uint64_t records;
    uint64_t trades;
    uint64_t metrics;
    uint64_t batches; /* frames with a Telem-Batch tag */
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t corrupt;       /* frames skipped in the middle */
    uint64_t corrupt_bytes; /* bytes skipped with them */
    uint64_t undecodable;   /* frames whose CRC holds but whose records do not decode */
    uint64_t torn_bytes;    /* bytes after the last good frame that form no frame */
};

static void spool_usage(FILE *out)
{
    fputs("usage: telemctl spool inspect [options] DIR\n"
          "Lists a spool folder (telemd's --data-dir/spool): identity, sequence high-water\n"
          "mark, sink cursors, and per segment: frames, records, sequence range, batch tags,\n"
          "corrupt frames skipped and torn-tail bytes.\n"
          "  --frames            also list every frame (offset, type, records, seq, batch tag)\n"
          "  --format F          table (default), csv or json; with --frames, the frame list\n"
          "                      comes first, then the segment list\n"
          "Exit status: 0 no corrupt frame, 1 corrupt frames found or DIR unreadable, 2 usage.\n",
          out);
}

/* spool_read_small reads a small file whole into buf. Returns its length or -errno. */
static ssize_t spool_read_small(const char *dir, const char *name, uint8_t *buf, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap);
    int e = errno;
    close(fd);
    return n < 0 ? -e : n;
}

/*
 * spool_describe_u64 renders a counter file (seq.hwm, cursor.<name>): 8 bytes little-endian
 * followed by their CRC-32C, as the spool writes them.
 */
static void spool_describe_u64(const uint8_t *buf, ssize_t n, char *dst, size_t cap)
{
    if (n != 12) {
        snprintf(dst, cap, "(damaged: %zd bytes, expected 12)", n);
        return;
    }
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | buf[i];
    uint32_t crc = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
                   (uint32_t)buf[11] << 24;
    snprintf(dst, cap, "%" PRIu64 "%s", v, crc32c(0, buf, 8) == crc ? "" : " (damaged: bad CRC)");
}

static int spool_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* spool_list collects the names in dir that start with prefix, sorted. Caller frees each. */
static int spool_list(const char *dir, const char *prefix, const char *suffix, char ***out,
                      size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    size_t plen = strlen(prefix), slen = strlen(suffix);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < plen + slen || strncmp(de->d_name, prefix, plen) != 0 ||
            strcmp(de->d_name + len - slen, suffix) != 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[count++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof(*names), spool_name_cmp);
    *out = names;
    *n = count;
    return 0;
}

/* spool_frame_at tells whether a whole frame that decodes and passes its CRC starts at off. */
static bool spool_frame_at(const uint8_t *p, size_t size, size_t off, struct frame_header *h)
{
    if (size - off < FRAME_HEADER_SIZE)
        return false;
    if (frame_header_decode(p + off, size - off, h) != 0)
        return false;
    if (h->len > size - off - FRAME_HEADER_SIZE)
        return false;
    return frame_check(h, p + off, p + off + FRAME_HEADER_SIZE) == 0;
}

/* spool_resync returns the offset of the next good frame after off, or size when none. */
static size_t spool_resync(const uint8_t *p, size_t size, size_t off)
{
    const uint8_t magic[4] = {FRAME_MAGIC & 0xff, (FRAME_MAGIC >> 8) & 0xff,
                              (FRAME_MAGIC >> 16) & 0xff, (FRAME_MAGIC >> 24) & 0xff};
    struct frame_header h;
    for (size_t o = off + 1; o + FRAME_HEADER_SIZE <= size; o++) {
        const uint8_t *m = memchr(p + o, magic[0], size - o);
        if (!m)
            break;
        o = (size_t)(m - p);
        if (o + 4 <= size && memcmp(p + o, magic, 4) == 0 && spool_frame_at(p, size, o, &h))
            return o;
    }
    return size;
}

/*
 * spool_decode_payload counts the records of a good frame; returns false when they do not
 * decode as the header says.
 */
static bool spool_decode_payload(const struct frame_header *h, const uint8_t *payload,
                                 struct spool_seg_summary *s, struct batch_tag *tag, bool *tagged)
{
    size_t off = 0;
    *tagged = false;
    if (h->flags & FRAME_F_BATCH_TAG) {
        int n = frame_tag_decode(payload, h->len, tag);
        if (n < 0)
            return false;
        off = (size_t)n;
        *tagged = true;
    }
    uint64_t trades = 0, metrics = 0;
    struct record rec;
    for (uint32_t i = 0; i < h->count; i++) {
        int n = frame_record_decode(payload + off, h->len - off, &rec);
        if (n <= 0)
            return false;
        off += (size_t)n;
        if (rec.kind == RECORD_TRADE)
            trades++;
        else
            metrics++;
    }
    s->trades += trades;
    s->metrics += metrics;
    return true;
}

static void spool_frame_row(struct out_writer *w, const char *seg, size_t off,
                            const struct frame_header *h, const char *state,
                            const struct batch_tag *tag, bool tagged)
{
    char batch[128] = "";
    if (tagged)
        snprintf(batch, sizeof(batch), "%s:%" PRIu64 ":%" PRIu64, tag->producer, tag->epoch,
                 tag->n);
    bool records = h && h->type == FRAME_RECORDS && h->count > 0;
    struct out_value v[] = {
        {.s = seg},
        {.i = (int64_t)off},
        {.s = !h                         ? "-"
              : h->type == FRAME_RECORDS ? "records"
                                         : "producers"},
        {.null = !h, .i = h ? (int64_t)h->len : 0},
        {.null = !h, .i = h ? (int64_t)h->count : 0},
        {.null = !records, .i = h ? (int64_t)h->first_seq : 0},
        {.null = !records, .i = h ? (int64_t)(h->first_seq + h->count - 1) : 0},
        {.null = !tagged, .s = batch},
        {.s = state},
    };
    out_writer_row(w, v);
}

static int spool_walk_segment(const char *dir, const char *name, struct spool_seg_summary *s,
                              struct out_writer *frames)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    size_t size = (size_t)st.st_size;
    s->bytes = size;
    if (size == 0) {
        close(fd);
        return 0;
    }
    const uint8_t *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -errno;

    size_t off = 0;
    struct frame_header h;
    while (off < size) {
        if (!spool_frame_at(p, size, off, &h)) {
            size_t next = spool_resync(p, size, off);
            if (next >= size) {
                s->torn_bytes = size - off;
                if (frames)
                    spool_frame_row(frames, name, off, NULL, "torn tail", NULL, false);
                break;
            }
            s->corrupt++;
            s->corrupt_bytes += next - off;
            if (frames)
                spool_frame_row(frames, name, off, NULL, "CORRUPT (skipped)", NULL, false);
            off = next;
            continue;
        }
        const uint8_t *payload = p + off + FRAME_HEADER_SIZE;
        struct batch_tag tag;
        bool tagged = false;
        const char *state = "ok";
        s->frames++;
        if (h.type == FRAME_PRODUCERS) {
            s->producer_frames++;
        } else if (!spool_decode_payload(&h, payload, s, &tag, &tagged)) {
            s->undecodable++;
            state = "UNDECODABLE";
        } else {
            if (h.count > 0) {
                if (s->records == 0)
                    s->first_seq = h.first_seq;
                s->last_seq = h.first_seq + h.count - 1;
            }
            s->records += h.count;
            s->batches += tagged;
        }
        if (frames)
            spool_frame_row(frames, name, off, &h, state, &tag, tagged);
        off += FRAME_HEADER_SIZE + h.len;
    }
    munmap((void *)p, size);
    return 0;
}

static const struct out_column spool_seg_cols[] = {
    {"segment", OUT_STR}, {"bytes", OUT_INT},   {"frames", OUT_INT},     {"records", OUT_INT},
    {"trades", OUT_INT},  {"metrics", OUT_INT}, {"first_seq", OUT_INT},  {"last_seq", OUT_INT},
    {"batches", OUT_INT}, {"corrupt", OUT_INT}, {"torn_bytes", OUT_INT},
};

static const struct out_column spool_frame_cols[] = {
    {"segment", OUT_STR},  {"offset", OUT_INT},  {"type", OUT_STR},
    {"len", OUT_INT},      {"records", OUT_INT}, {"first_seq", OUT_INT},
    {"last_seq", OUT_INT}, {"batch", OUT_STR},   {"state", OUT_STR},
};

static void spool_seg_row(struct out_writer *w, const char *name, const struct spool_seg_summary *s)
{
    bool any = s->records > 0;
    struct out_value v[] = {
        {.s = name},
        {.i = (int64_t)s->bytes},
        {.i = (int64_t)s->frames},
        {.i = (int64_t)s->records},
        {.i = (int64_t)s->trades},
        {.i = (int64_t)s->metrics},
        {.null = !any, .i = (int64_t)s->first_seq},
        {.null = !any, .i = (int64_t)s->last_seq},
        {.i = (int64_t)s->batches},
        {.i = (int64_t)(s->corrupt + s->undecodable)},
        {.i = (int64_t)s->torn_bytes},
    };
    out_writer_row(w, v);
}

static void spool_print_header(const char *dir)
{
    uint8_t buf[256];
    char text[128];
    printf("spool %s\n", dir);
    ssize_t n = spool_read_small(dir, "spool.id", buf, sizeof(buf));
    printf("  id            ");
    if (n < 0)
        printf("(none: %s)\n", strerror((int)-n));
    else {
        for (ssize_t i = 0; i < n && i < 64; i++)
            printf("%02x", buf[i]);
        printf("\n");
    }
    n = spool_read_small(dir, "seq.hwm", buf, sizeof(buf) - 1);
    spool_describe_u64(buf, n, text, sizeof(text));
    printf("  seq.hwm       %s\n", n < 0 ? "(none)" : text);

    char **names = NULL;
    size_t count = 0;
    if (spool_list(dir, "cursor.", "", &names, &count) == 0) {
        size_t shown = 0;
        for (size_t i = 0; i < count; i++) {
            size_t len = strlen(names[i]);
            if (len > 4 && strcmp(names[i] + len - 4, ".tmp") == 0) {
                free(names[i]); /* a cursor being replaced right now */
                continue;
            }
            shown++;
            n = spool_read_small(dir, names[i], buf, sizeof(buf) - 1);
            spool_describe_u64(buf, n, text, sizeof(text));
            printf("  cursor %-24s %s\n", names[i] + 7, n < 0 ? strerror((int)-n) : text);
            free(names[i]);
        }
        if (shown == 0)
            printf("  cursors       (none)\n");
        free(names);
    }
}

int cmd_spool(int argc, char **argv)
{
    static const struct option opts[] = {
        {"frames", no_argument, NULL, 'F'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool list_frames = false;
    enum out_format fmt = OUT_TABLE;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'F':
            list_frames = true;
            break;
        case 'f':
            if (out_format_parse(optarg, &fmt) < 0) {
                fprintf(stderr, "telemctl spool: --format: expected table, csv or json\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            spool_usage(stdout);
            return CLI_EXIT_OK;
        default:
            spool_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 2 || strcmp(argv[optind], "inspect") != 0) {
        spool_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *dir = argv[optind + 1];

    char **segs = NULL;
    size_t nsegs = 0;
    int rc = spool_list(dir, "seg-", ".log", &segs, &nsegs);
    if (rc < 0) {
        fprintf(stderr, "telemctl spool: %s: %s\n", dir, strerror(-rc));
        return CLI_EXIT_FAIL;
    }
    if (fmt == OUT_TABLE)
        spool_print_header(dir);

    struct out_writer *frames =
        list_frames
            ? out_writer_create(fmt, spool_frame_cols,
                                sizeof(spool_frame_cols) / sizeof(spool_frame_cols[0]), stdout)
            : NULL;
    /* Segment rows wait until the frame list (if any) is complete, so the two never mix. */
    struct spool_seg_summary *sums = xcalloc(nsegs ? nsegs : 1, sizeof(*sums));
    bool *ok = xcalloc(nsegs ? nsegs : 1, sizeof(*ok));
    struct spool_seg_summary total = {0};
    int status = CLI_EXIT_OK;
    for (size_t i = 0; i < nsegs; i++) {
        struct spool_seg_summary *s = &sums[i];
        rc = spool_walk_segment(dir, segs[i], s, frames);
        if (rc < 0) {
            fprintf(stderr, "telemctl spool: %s/%s: %s\n", dir, segs[i], strerror(-rc));
            status = CLI_EXIT_FAIL;
            continue;
        }
        ok[i] = true;
        if (s->records) {
            if (total.records == 0)
                total.first_seq = s->first_seq;
            total.last_seq = s->last_seq;
        }
        total.bytes += s->bytes;
        total.frames += s->frames;
        total.records += s->records;
        total.trades += s->trades;
        total.metrics += s->metrics;
        total.batches += s->batches;
        total.corrupt += s->corrupt;
        total.undecodable += s->undecodable;
        total.torn_bytes += s->torn_bytes;
    }
    if (frames) {
        out_writer_finish(frames);
        if (fmt == OUT_TABLE)
            printf("\n");
    }
    struct out_writer *w = out_writer_create(
        fmt, spool_seg_cols, sizeof(spool_seg_cols) / sizeof(spool_seg_cols[0]), stdout);
    for (size_t i = 0; i < nsegs; i++)
        if (ok[i])
            spool_seg_row(w, segs[i], &sums[i]);
    if (fmt == OUT_TABLE)
        spool_seg_row(w, "total", &total);
    out_writer_finish(w);
    if (fmt == OUT_TABLE && total.corrupt + total.undecodable > 0)
        printf("%" PRIu64 " corrupt frame(s) skipped; their records are lost to the sinks\n",
               total.corrupt + total.undecodable);
    if (total.corrupt + total.undecodable > 0)
        status = CLI_EXIT_FAIL;

    out_writer_destroy(frames);
    out_writer_destroy(w);
    free(sums);
    free(ok);
    for (size_t i = 0; i < nsegs; i++)
        free(segs[i]);
    free(segs);
    return status;
}
