/*
 * udp_ingest.c: fire-and-forget line protocol over UDP (see ingest.h).
 *
 * Datagrams are read in bursts with recvmmsg. Each datagram is one body, validated on its own
 * (an invalid one is counted, logged at most every few seconds with its line:column reason, and
 * dropped alone); the valid datagrams of a burst go to the spool as one frame, so a flood of
 * small datagrams costs one append per burst rather than one per datagram. Nothing is
 * acknowledged, so nothing waits for the fsync.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "ingest/ingest.h"
#include "ingest/listen_socket.h"
#include "spool/spool.h"

#define UDP_BURST           32
#define UDP_DATAGRAM_MAX    65536
#define UDP_BURSTS_PER_CB   8 /* then let HTTP run */
#define UDP_LOG_INTERVAL_NS (5 * 1000000000LL)

struct udp_ingest {
    struct spool *sp;
    struct event *ev;
    int fd;
    char name[96];
    struct body_encoder *enc;
    char *bufs;
    struct mmsghdr msgs[UDP_BURST];
    struct iovec iov[UDP_BURST];
    struct udp_ingest_stats st;
    int64_t invalid_logged_ns;
    uint64_t invalid_unlogged;
    int64_t drop_logged_ns;
};

static void udp_log_invalid(struct udp_ingest *ui, const char *why)
{
    ui->invalid_unlogged++;
    int64_t now = clock_mono_ns();
    if (ui->invalid_logged_ns && now - ui->invalid_logged_ns < UDP_LOG_INTERVAL_NS)
        return;
    LOG_WARN("udp", "dropped %llu invalid datagram(s); last: %s",
             (unsigned long long)ui->invalid_unlogged, why);
    ui->invalid_logged_ns = now;
    ui->invalid_unlogged = 0;
}

static void udp_log_drop(struct udp_ingest *ui, int rc)
{
    int64_t now = clock_mono_ns();
    if (ui->drop_logged_ns && now - ui->drop_logged_ns < UDP_LOG_INTERVAL_NS)
        return;
    ui->drop_logged_ns = now;
    if (rc == -ENOBUFS)
        LOG_WARN("udp", "spool full (spool_max_bytes): dropping datagrams");
    else
        LOG_ERROR("udp", "spool append failed: %s; dropping datagrams", strerror(-rc));
}

/* udp_burst handles one recvmmsg burst of n datagrams. */
static void udp_burst(struct udp_ingest *ui, int n)
{
    int64_t now = clock_wall_ns();
    body_encoder_reset(ui->enc);
    unsigned valid = 0;
    uint64_t valid_bytes = 0;
    for (int i = 0; i < n; i++) {
        const char *data = ui->iov[i].iov_base;
        size_t len = ui->msgs[i].msg_len;
        if (ui->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            ui->st.datagrams_invalid++;
            udp_log_invalid(ui, "datagram larger than 65536 bytes");
            continue;
        }
        struct body_result res;
        int rc = body_encoder_add(ui->enc, data, len, LP_PREC_NS, now, &res);
        if (rc < 0) {
            char why[256];
            if (rc == -EINVAL)
                body_error_format(&res.err, why, sizeof(why));
            else
                snprintf(why, sizeof(why), "datagram gives too many records");
            ui->st.datagrams_invalid++;
            udp_log_invalid(ui, why);
            continue;
        }
        valid++;
        valid_bytes += len;
    }
    size_t plen;
    uint32_t count;
    const uint8_t *payload = body_encoder_payload(ui->enc, &plen, &count);
    if (count == 0) {
        ui->st.datagrams_accepted += valid;
        ui->st.bytes_accepted += valid_bytes;
        return;
    }
    uint64_t first_seq, ticket;
    int rc = spool_append(ui->sp, payload, plen, count, NULL, &first_seq, &ticket);
    if (rc < 0) {
        ui->st.datagrams_dropped += valid;
        udp_log_drop(ui, rc);
        return;
    }
    ui->st.datagrams_accepted += valid;
    ui->st.bytes_accepted += valid_bytes;
    ui->st.records_accepted += count;
}

static void udp_readable(evutil_socket_t fd, short what, void *arg)
{
    struct udp_ingest *ui = arg;
    for (int round = 0; round < UDP_BURSTS_PER_CB; round++) {
        for (int i = 0; i < UDP_BURST; i++) {
            ui->iov[i].iov_base = ui->bufs + (size_t)i * UDP_DATAGRAM_MAX;
            ui->iov[i].iov_len = UDP_DATAGRAM_MAX;
            memset(&ui->msgs[i].msg_hdr, 0, sizeof(ui->msgs[i].msg_hdr));
            ui->msgs[i].msg_hdr.msg_iov = &ui->iov[i];
            ui->msgs[i].msg_hdr.msg_iovlen = 1;
            ui->msgs[i].msg_len = 0;
        }
        int n = recvmmsg(fd, ui->msgs, UDP_BURST, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_WARN("udp", "recvmmsg: %s", strerror(errno));
            return;
        }
        udp_burst(ui, n);
        if (n < UDP_BURST)
            return;
    }
}

struct udp_ingest *udp_ingest_create(struct event_base *base, struct spool *sp,
                                     const struct udp_options *opt, char *err, size_t errlen)
{
    struct udp_ingest *ui = xcalloc(1, sizeof(*ui));
    ui->sp = sp;
    ui->fd = -1;
    struct listen_address a;
    if (listen_address_parse(opt->addr, &a, err, errlen) < 0)
        goto fail;
    int granted = 0;
    ui->fd = listen_socket_udp(&a, opt->rcvbuf, &granted, err, errlen);
    if (ui->fd < 0)
        goto fail;
    if (opt->rcvbuf > 0 && granted < opt->rcvbuf)
        LOG_WARN("udp",
                 "receive buffer is %d bytes, not the %d asked for (raise "
                 "net.core.rmem_max)",
                 granted, opt->rcvbuf);
    if (listen_socket_name(ui->fd, ui->name, sizeof(ui->name)) < 0)
        snprintf(ui->name, sizeof(ui->name), "%s", opt->addr);
    ui->enc = body_encoder_create(&opt->encode);
    ui->bufs = xmalloc((size_t)UDP_BURST * UDP_DATAGRAM_MAX);
    ui->ev = event_new(base, ui->fd, EV_READ | EV_PERSIST, udp_readable, ui);
    if (!ui->ev || event_add(ui->ev, NULL) < 0) {
        snprintf(err, errlen, "udp %s: cannot watch the socket", opt->addr);
        goto fail;
    }
    return ui;
fail:
    udp_ingest_destroy(ui);
    return NULL;
}

void udp_ingest_name(const struct udp_ingest *ui, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s", ui->name);
}

void udp_ingest_stop(struct udp_ingest *ui)
{
    if (ui && ui->ev)
        event_del(ui->ev);
}

void udp_ingest_get_stats(const struct udp_ingest *ui, struct udp_ingest_stats *st)
{
    *st = ui->st;
}

void udp_ingest_destroy(struct udp_ingest *ui)
{
    if (!ui)
        return;
    if (ui->ev)
        event_free(ui->ev);
    if (ui->fd >= 0)
        close(ui->fd);
    body_encoder_destroy(ui->enc);
    free(ui->bufs);
    free(ui);
}
