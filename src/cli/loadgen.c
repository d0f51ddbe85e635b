/*
 * loadgen.c: many simulated senders on one libevent loop (see loadgen.h).
 *
 * Each sender is a small state machine over a bufferevent: connect, write one request (head
 * plus a reference to its prebuilt body, so nothing is copied per request), read the reply,
 * then either move to the next batch (204), count a rejection (4xx), or wait and resend the same
 * batch with the same Telem-Batch header (503, a lost connection). Bodies are built once per
 * sender, and each new batch only rewrites its timestamps in place (fixed-width digits), so the
 * generator spends its CPU on sockets, not on formatting.
 */
#include "cli/loadgen.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"

enum lg_state {
    LG_IDLE,       /* connected (or not yet), no request in flight */
    LG_CONNECTING, /* waiting for the connection */
    LG_WAITING,    /* request written, reading the reply */
    LG_PAUSED,     /* timer armed: rate pacing or backoff */
    LG_DONE,       /* nothing more to send */
};

struct lg_sender {
    struct loadgen *lg;
    unsigned index;
    unsigned profile;
    enum lg_state state;
    struct bufferevent *bev;
    struct event *timer;
    char *body;
    size_t body_len;
    uint32_t *stamp_at;  /* per line: offset of its 19-digit timestamp in body */
    uint32_t *open_at;   /* per line: offset of opened_at's digits, 0 for metrics */
    uint32_t *tid_at;    /* per line: offset of the batch digits of its trade_id, 0 for none */
    uint64_t batch_n;    /* number of the current batch, from 1 */
    bool batch_open;     /* the current batch is taken and not yet answered for good */
    bool resend;         /* the current batch was sent before */
    bool ever_connected; /* for counting reconnects */
    unsigned attempt;    /* consecutive failures, for backoff */
    int64_t sent_ns;     /* when the current request was written */
    int64_t next_due_ns; /* rate pacing: earliest start of the next batch */
    /* Reply being parsed. */
    bool head_done;
    int status;
    size_t content_length;
    bool close_after;
    unsigned retry_after_s;
};

struct loadgen {
    const struct loadgen_options *opt;
    struct loadgen_summary *sum;
    struct event_base *base;
    struct lg_sender *senders;
    unsigned nsenders;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t run_id;
    int64_t epoch;
    int64_t start_ns;
    int64_t deadline_ns;
    int64_t give_up_ns;    /* past the deadline, retries of unanswered batches stop here */
    int64_t stop_grace_ns; /* after a signal: give in-flight batches until then */
    int64_t last_answer_ns;
    uint64_t reserved_records;
    unsigned active; /* senders not LG_DONE */
    bool stopping;
    struct event *tick;
    struct event *sigint;
    struct event *sigterm;
    uint64_t last_tick_acked;
    int64_t last_tick_ns;
    char auth_header[300];
};

static void lg_sender_start_batch(struct lg_sender *s);
static void lg_sender_connect(struct lg_sender *s);

void loadgen_profile_name(const char *prefix, unsigned i, char *dst, size_t cap)
{
    snprintf(dst, cap, "%sp%04u", prefix ? prefix : "", i);
}

#define LG_TS_DIGITS    19 /* nanoseconds since 1970 from 2001 to 2286 */
#define LG_BATCH_DIGITS 10 /* the batch number inside a trade_id */

/* lg_put_digits writes v as exactly width decimal digits at p. */
static void lg_put_digits(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/*
 * lg_stamp_body gives the lines of the sender's batch fresh times, 1 us apart from base_ns, in
 * place, so the store sees time move forward as a live script's records do (each batch is sent
 * again and again). A trade opened 60 s before it closed. With trade_ids, each trade's id
 * carries the batch number, so ids stay unique per profile ("s<script>-<batch>-<line>").
 */
static void lg_stamp_body(const struct loadgen *lg, struct lg_sender *s, int64_t base_ns)
{
    for (unsigned i = 0; i < lg->opt->batch; i++) {
        int64_t ts = base_ns + (int64_t)(i + 1) * 1000;
        lg_put_digits(s->body + s->stamp_at[i], ts, LG_TS_DIGITS);
        if (s->open_at[i])
            lg_put_digits(s->body + s->open_at[i], ts - 60000000000LL, LG_TS_DIGITS);
        if (s->tid_at[i])
            lg_put_digits(s->body + s->tid_at[i], (int64_t)s->batch_n, LG_BATCH_DIGITS);
    }
}

/* lg_build_body writes the sender's batch: canonical lines, one record each. */
static void lg_build_body(struct loadgen *lg, struct lg_sender *s)
{
    const struct loadgen_options *opt = lg->opt;
    char profile[80];
    loadgen_profile_name(opt->prefix, s->profile, profile, sizeof(profile));
    unsigned script = s->index % opt->scripts;
    size_t cap = (size_t)opt->batch * 200 + 64, len = 0;
    char *b = xmalloc(cap);
    double acc = 0;
    int64_t ts = lg->epoch;
    s->stamp_at = xcalloc(opt->batch, sizeof(*s->stamp_at));
    s->open_at = xcalloc(opt->batch, sizeof(*s->open_at));
    s->tid_at = xcalloc(opt->batch, sizeof(*s->tid_at));
    for (unsigned i = 0; i < opt->batch; i++) {
        ts += 1000;
        acc += opt->trade_share;
        int n;
        bool trade = acc >= 1.0;
        if (trade) {
            acc -= 1.0;
            double entry = 100.0 + (double)((i * 7919u + s->index) % 5000) / 100.0;
            double exitp = entry + (double)((int)((i * 104729u) % 200) - 100) / 100.0;
            char tid[48] = "";
            int tid_len = 0;
            if (opt->trade_ids)
                tid_len = snprintf(tid, sizeof(tid), ",trade_id=\"s%u-%0*d-%05u\"", script,
                                   LG_BATCH_DIGITS, 0, i);
            n = snprintf(b + len, cap - len,
                         "trade,profile=%s,script=s%u,symbol=SYM%u,side=%s qty=%u,"
                         "entry_price=%.2f,exit_price=%.2f,pnl=%.2f,fees=0.05,opened_at=%lldi%s "
                         "%lld\n",
                         profile, script, i % 50, i & 1 ? "sell" : "buy", 1 + i % 9, entry, exitp,
                         exitp - entry, (long long)(ts - 60000000000LL), tid, (long long)ts);
            /* The line ends with "opened_at=<ts>i<tid> <ts>\n". */
            uint32_t tid_start = (uint32_t)(len + (size_t)n - 2 - LG_TS_DIGITS - (size_t)tid_len);
            s->open_at[i] = tid_start - 1 - LG_TS_DIGITS;
            if (tid_len)
                s->tid_at[i] = tid_start + (uint32_t)(strchr(tid, '-') + 1 - tid);
        } else {
            n = snprintf(b + len, cap - len,
                         "metric,profile=%s,script=s%u strategy.equity=%.3f %lld\n", profile,
                         script, 10000.0 + (double)(i % 1000) * 1.25, (long long)ts);
        }
        s->stamp_at[i] = (uint32_t)(len + (size_t)n - 1 - LG_TS_DIGITS); /* " <ts>\n" */
        len += (size_t)n;
    }
    s->body = b;
    s->body_len = len;
}

static void lg_note_error(struct loadgen *lg, const char *fmt, const char *detail)
{
    if (lg->sum->first_error[0])
        return;
    snprintf(lg->sum->first_error, sizeof(lg->sum->first_error), fmt, detail);
}

static void lg_sender_done(struct lg_sender *s)
{
    if (s->state == LG_DONE)
        return;
    s->state = LG_DONE;
    s->lg->active--;
    if (s->lg->active == 0)
        event_base_loopbreak(s->lg->base);
}

static void lg_sender_drop_connection(struct lg_sender *s)
{
    if (s->bev) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
}

/* lg_sender_pause arms the timer; when it fires the sender starts or resends its batch. */
static void lg_sender_pause(struct lg_sender *s, int64_t delay_ns)
{
    struct timeval tv = {.tv_sec = delay_ns / 1000000000, .tv_usec = delay_ns % 1000000000 / 1000};
    s->state = LG_PAUSED;
    evtimer_add(s->timer, &tv);
}

static void lg_sender_fail(struct lg_sender *s, const char *why)
{
    struct loadgen *lg = s->lg;
    lg_note_error(lg, "connection: %s", why);
    lg_sender_drop_connection(s);
    s->attempt++;
    if (s->batch_open && (lg->stopping || clock_mono_ns() >= lg->give_up_ns)) {
        /* After a signal, or long past the end, a batch is not retried: it stays unanswered. */
        lg->sum->unfinished++;
        s->batch_open = false;
    }
    if (!s->batch_open && (lg->stopping || clock_mono_ns() >= lg->deadline_ns)) {
        lg_sender_done(s);
        return;
    }
    lg_sender_pause(s, (int64_t)clock_backoff_ms(s->attempt, 50, 2000) * 1000000);
}

static void lg_sender_write_request(struct lg_sender *s)
{
    struct loadgen *lg = s->lg;
    char head[600];
    int n = snprintf(head, sizeof(head),
                     "POST /write?db=telem&precision=ns HTTP/1.1\r\nHost: telemd\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "Telem-Batch: lg-%012llx-%u:%lld:%llu\r\n%s\r\n",
                     s->body_len, (unsigned long long)lg->run_id, s->index, (long long)lg->epoch,
                     (unsigned long long)s->batch_n, lg->auth_header);
    struct evbuffer *out = bufferevent_get_output(s->bev);
    evbuffer_add(out, head, (size_t)n);
    evbuffer_add_reference(out, s->body, s->body_len, NULL, NULL);
    s->head_done = false;
    s->status = 0;
    s->content_length = 0;
    s->close_after = false;
    s->retry_after_s = 0;
    s->sent_ns = clock_mono_ns();
    s->state = LG_WAITING;
    lg->sum->sent_requests++;
    if (s->resend)
        lg->sum->retries++;
    s->resend = true;
}

/* lg_sender_answered handles a complete reply to the current batch. */
static void lg_sender_answered(struct lg_sender *s)
{
    struct loadgen *lg = s->lg;
    int64_t now = clock_mono_ns();
    lg->last_answer_ns = now;
    uint64_t records = lg->opt->batch;
    if (s->status == 204) {
        latency_hist_add(&lg->sum->ack, (uint64_t)(now - s->sent_ns) / 1000);
        lg->sum->acked_records += records;
        lg->sum->acked_per_profile[s->profile] += records;
        s->batch_open = false;
        s->attempt = 0;
    } else if (s->status == 503 || s->status >= 500 || s->status == 429) {
        s->attempt++;
        if (lg->stopping) {
            lg->sum->unfinished++;
            s->batch_open = false;
        }
    } else {
        lg->sum->rejected_records += records;
        s->batch_open = false;
        char code[16];
        snprintf(code, sizeof(code), "%d", s->status);
        lg_note_error(lg, "telemd answered HTTP %s", code);
    }
    if (s->close_after)
        lg_sender_drop_connection(s);
    s->state = LG_IDLE;
    if (s->batch_open) {
        int64_t wait = s->retry_after_s ? (int64_t)s->retry_after_s * 1000000000
                                        : (int64_t)clock_backoff_ms(s->attempt, 20, 1000) * 1000000;
        lg_sender_pause(s, wait);
        return;
    }
    lg_sender_start_batch(s);
}

/* lg_parse_head reads the status line and the headers telemd may send. Returns -1 if bad. */
static int lg_parse_head(struct lg_sender *s, const char *head, size_t len)
{
    if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0)
        return -1;
    s->status = atoi(head + 9);
    const char *p = memchr(head, '\n', len);
    while (p && (size_t)(p - head) < len) {
        const char *line = p + 1;
        const char *end = memchr(line, '\n', len - (size_t)(line - head));
        if (!end)
            break;
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            s->content_length = strtoul(line + 15, NULL, 10);
        else if (strncasecmp(line, "Connection:", 11) == 0 && strstr(line, "close") &&
                 strstr(line, "close") < end)
            s->close_after = true;
        else if (strncasecmp(line, "Retry-After:", 12) == 0)
            s->retry_after_s = (unsigned)strtoul(line + 12, NULL, 10);
        p = end;
    }
    return 0;
}

static void lg_on_read(struct bufferevent *bev, void *arg)
{
    struct lg_sender *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (s->state == LG_WAITING) {
        if (!s->head_done) {
            struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (e.pos < 0)
                return;
            size_t hlen = (size_t)e.pos + 4;
            char *head = (char *)evbuffer_pullup(in, (ssize_t)hlen);
            if (lg_parse_head(s, head, hlen) < 0) {
                lg_sender_fail(s, "malformed HTTP reply");
                return;
            }
            evbuffer_drain(in, hlen);
            s->head_done = true;
        }
        if (evbuffer_get_length(in) < s->content_length)
            return;
        if (s->status >= 400 && s->status < 500 && s->content_length &&
            !s->lg->sum->first_error[0]) {
            char msg[200];
            size_t n = s->content_length < sizeof(msg) - 1 ? s->content_length : sizeof(msg) - 1;
            evbuffer_copyout(in, msg, n);
            msg[n] = '\0';
            lg_note_error(s->lg, "telemd rejected a batch: %s", msg);
        }
        evbuffer_drain(in, s->content_length);
        lg_sender_answered(s);
        return;
    }
}

static void lg_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct lg_sender *s = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (s->ever_connected)
            s->lg->sum->reconnects++;
        s->ever_connected = true;
        if (s->lg->addr.ss_family == AF_INET) {
            int one = 1;
            setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        s->state = LG_IDLE;
        if (s->batch_open)
            lg_sender_write_request(s);
        else
            lg_sender_start_batch(s);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        if (s->state == LG_CONNECTING)
            s->lg->sum->connect_failures++;
        lg_sender_fail(s, what & BEV_EVENT_EOF
                              ? "closed by telemd"
                              : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
}

static void lg_sender_connect(struct lg_sender *s)
{
    struct loadgen *lg = s->lg;
    s->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(s->bev, lg_on_read, NULL, lg_on_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    s->state = LG_CONNECTING;
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&lg->addr, (int)lg->addrlen) < 0) {
        lg->sum->connect_failures++;
        lg_sender_fail(s, "connect failed");
    }
}

/* lg_sender_start_batch takes the next batch if the run allows one, pacing to the rate. */
static void lg_sender_start_batch(struct lg_sender *s)
{
    struct loadgen *lg = s->lg;
    const struct loadgen_options *opt = lg->opt;
    if (!s->batch_open) {
        int64_t now = clock_mono_ns();
        bool over_records = opt->records && lg->reserved_records >= opt->records;
        if (lg->stopping || over_records || now >= lg->deadline_ns) {
            lg_sender_done(s);
            return;
        }
        if (s->next_due_ns > now) {
            lg_sender_pause(s, s->next_due_ns - now);
            return;
        }
        if (!s->body)
            lg_build_body(lg, s);
        s->batch_open = true;
        s->resend = false;
        s->batch_n++;
        lg_stamp_body(lg, s, clock_wall_ns());
        lg->reserved_records += opt->batch;
        lg->sum->sent_records += opt->batch;
        if (opt->rate > 0) {
            double per_sender = opt->rate / lg->nsenders;
            int64_t interval = (int64_t)(1e9 * opt->batch / per_sender);
            s->next_due_ns = (s->next_due_ns ? s->next_due_ns : now) + interval;
            if (s->next_due_ns < now - interval)
                s->next_due_ns = now; /* fell behind: do not burst to catch up */
        }
    }
    if (!s->bev) {
        lg_sender_connect(s);
        return;
    }
    lg_sender_write_request(s);
}

static void lg_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_sender *s = arg;
    (void)fd;
    (void)what;
    s->state = LG_IDLE;
    if (s->batch_open && s->lg->stopping) {
        s->lg->sum->unfinished++;
        s->batch_open = false;
    }
    lg_sender_start_batch(s);
}

static void lg_on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *lg = arg;
    (void)fd;
    (void)what;
    int64_t now = clock_mono_ns();
    if (lg->stopping && now >= lg->stop_grace_ns) {
        for (unsigned i = 0; i < lg->nsenders; i++) {
            if (lg->senders[i].batch_open)
                lg->sum->unfinished++;
        }
        event_base_loopbreak(lg->base);
        return;
    }
    if (lg->opt->quiet)
        return;
    double dt = (double)(now - lg->last_tick_ns) / 1e9;
    double rate = dt > 0 ? (double)(lg->sum->acked_records - lg->last_tick_acked) / dt : 0;
    double elapsed = (double)(now - lg->start_ns) / 1e9;
    lg->last_tick_acked = lg->sum->acked_records;
    lg->last_tick_ns = now;
    fprintf(stderr,
            "%s[%6.1fs] acked %llu records, %.0f rec/s now, %u senders active, p99 %.2f ms%s",
            lg->opt->progress_tty ? "\r" : "", elapsed, (unsigned long long)lg->sum->acked_records,
            rate, lg->active, (double)latency_hist_percentile(&lg->sum->ack, 0.99) / 1000.0,
            lg->opt->progress_tty ? "   " : "\n");
}

static void lg_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct loadgen *lg = arg;
    (void)what;
    if (lg->stopping) {
        event_base_loopbreak(lg->base);
        return;
    }
    fprintf(stderr, "\nloadgen: %s: finishing batches in flight (5 s at most)\n",
            sig == SIGINT ? "interrupted" : "terminated");
    lg->stopping = true;
    lg->sum->interrupted = true;
    lg->stop_grace_ns = clock_mono_ns() + 5000000000LL;
}

static int lg_resolve(struct loadgen *lg, char *err, size_t errlen)
{
    const struct loadgen_options *opt = lg->opt;
    memset(&lg->addr, 0, sizeof(lg->addr));
    if (opt->socket_path) {
        struct sockaddr_un *un = (struct sockaddr_un *)&lg->addr;
        if (strlen(opt->socket_path) >= sizeof(un->sun_path)) {
            snprintf(err, errlen, "socket path too long: %s", opt->socket_path);
            return -ENAMETOOLONG;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, opt->socket_path);
        lg->addrlen = sizeof(*un);
        return 0;
    }
    int len = (int)sizeof(lg->addr);
    if (!opt->http_addr ||
        evutil_parse_sockaddr_port(opt->http_addr, (struct sockaddr *)&lg->addr, &len) < 0) {
        snprintf(err, errlen, "bad address '%s': expected HOST:PORT",
                 opt->http_addr ? opt->http_addr : "");
        return -EINVAL;
    }
    lg->addrlen = (socklen_t)len;
    return 0;
}

int loadgen_run(const struct loadgen_options *opt, struct loadgen_summary *sum, char *err,
                size_t errlen)
{
    struct loadgen lg;
    memset(&lg, 0, sizeof(lg));
    memset(sum, 0, sizeof(*sum));
    lg.opt = opt;
    lg.sum = sum;
    int rc = lg_resolve(&lg, err, errlen);
    if (rc < 0)
        return rc;
    if (opt->profiles == 0 || opt->scripts == 0 || opt->batch == 0) {
        snprintf(err, errlen, "profiles, scripts and batch must be at least 1");
        return -EINVAL;
    }
    if (opt->token)
        snprintf(lg.auth_header, sizeof(lg.auth_header), "Authorization: Token %s\r\n", opt->token);
    lg.base = event_base_new();
    if (!lg.base) {
        snprintf(err, errlen, "cannot create an event loop");
        return -ENOMEM;
    }
    lg.nsenders = opt->profiles * opt->scripts;
    lg.senders = xcalloc(lg.nsenders, sizeof(*lg.senders));
    sum->acked_per_profile = xcalloc(opt->profiles, sizeof(uint64_t));
    lg.run_id = (uint64_t)clock_wall_ns() ^ ((uint64_t)getpid() << 32);
    lg.run_id &= 0xffffffffffffull;
    lg.epoch = clock_wall_ns();
    lg.start_ns = clock_mono_ns();
    lg.last_tick_ns = lg.start_ns;
    lg.deadline_ns =
        opt->duration_s > 0 ? lg.start_ns + (int64_t)(opt->duration_s * 1e9) : INT64_MAX;
    lg.give_up_ns = lg.deadline_ns == INT64_MAX ? INT64_MAX : lg.deadline_ns + 30000000000LL;
    lg.active = lg.nsenders;
    struct timeval second = {1, 0};
    lg.tick = event_new(lg.base, -1, EV_PERSIST, lg_on_tick, &lg);
    event_add(lg.tick, &second);
    lg.sigint = evsignal_new(lg.base, SIGINT, lg_on_signal, &lg);
    lg.sigterm = evsignal_new(lg.base, SIGTERM, lg_on_signal, &lg);
    event_add(lg.sigint, NULL);
    event_add(lg.sigterm, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (unsigned i = 0; i < lg.nsenders; i++) {
        struct lg_sender *s = &lg.senders[i];
        s->lg = &lg;
        s->index = i;
        s->profile = i / opt->scripts;
        s->timer = evtimer_new(lg.base, lg_on_timer, s);
        if (opt->rate > 0) {
            /* Spread the senders' first batches over one interval. */
            double per_sender = opt->rate / lg.nsenders;
            double interval = 1e9 * opt->batch / per_sender;
            s->next_due_ns = lg.start_ns + (int64_t)(interval * i / lg.nsenders);
        }
        lg_sender_start_batch(s);
    }
    if (lg.active > 0)
        event_base_dispatch(lg.base);

    int64_t end = lg.last_answer_ns ? lg.last_answer_ns : clock_mono_ns();
    sum->elapsed_s = (double)(end - lg.start_ns) / 1e9;
    if (!opt->quiet && opt->progress_tty)
        fputc('\n', stderr);
    for (unsigned i = 0; i < lg.nsenders; i++) {
        struct lg_sender *s = &lg.senders[i];
        if (s->batch_open && !lg.stopping)
            sum->unfinished++;
        lg_sender_drop_connection(s);
        event_free(s->timer);
        free(s->body);
        free(s->stamp_at);
        free(s->open_at);
        free(s->tid_at);
    }
    free(lg.senders);
    event_free(lg.tick);
    event_free(lg.sigint);
    event_free(lg.sigterm);
    event_base_free(lg.base);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    return 0;
}

void loadgen_summary_free(struct loadgen_summary *sum)
{
    free(sum->acked_per_profile);
    sum->acked_per_profile = NULL;
}
