/*
 * http_ingest.c: the HTTP server of telemd (see ingest.h): routing, the token, the write
 * endpoints and the FIFO of requests waiting for their batch to become durable.
 *
 * A write is handled in one go on the event thread: the body, already read by evhttp (which
 * answers 413 itself past body_max), is inflated when gzip, validated and encoded as a whole
 * (body_encode.c), appended to the spool as one frame, and its request queued with the
 * spool's ticket. When the spool's eventfd fires, spool_poll says which tickets are durable or
 * failed, and the queue is answered in order. A client that leaves while waiting only clears
 * its entry's request pointer (http_conn.c tells us), so no freed request is ever answered.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "ingest/batch_header.h"
#include "ingest/body_gzip.h"
#include "ingest/http_auth.h"
#include "ingest/http_conn.h"
#include "ingest/http_params.h"
#include "ingest/ingest.h"
#include "ingest/json_text.h"
#include "ingest/listen_socket.h"
#include "spool/spool.h"

#define HTTP_ROUTES_MAX      16
#define DISK_LOG_INTERVAL_NS (5 * 1000000000LL)
/* What /ping reports, so that InfluxDB 1.x clients accept the server. */
#define INFLUX_COMPAT_VERSION "1.8.10"

/* A request whose batch was appended and is not durable yet. */
struct pending_reply {
    struct evhttp_request *req; /* NULL once its client has gone */
    struct http_conn *conn;
    struct pending_reply *next;      /* FIFO order */
    struct pending_reply *conn_next; /* the connection's own list */
    uint64_t ticket;
    uint64_t bytes;
};

struct http_ingest {
    struct event_base *base;
    struct spool *sp;
    struct ingest_options opt;
    struct evhttp *http;
    struct evhttp_bound_socket *tcp_sock;
    struct evhttp_bound_socket *unix_sock;
    char tcp_name[96];
    char *unix_path; /* removed on drain/destroy */
    struct http_conns *conns;
    struct event *notify_ev;
    struct body_gzip *gz;
    struct body_encoder *enc;
    char retry_after[24];

    struct pending_reply *head, *tail, *spare;
    size_t npending;
    uint64_t inflight;
    uint64_t durable; /* highest ticket spool_poll has reported durable */
    bool draining;

    struct http_route routes[HTTP_ROUTES_MAX];
    size_t nroutes;

    struct http_ingest_stats st;
    int64_t disk_logged_ns;
};

static const char *http_reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* http_send answers req: counts the code and, while draining, asks the client to go. */
static void http_send(struct http_ingest *hi, struct evhttp_request *req, int code,
                      struct evbuffer *body)
{
    if (code >= 100 && code < 600)
        hi->st.requests[code]++;
    if (hi->draining)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evhttp_send_reply(req, code, http_reason(code), body);
    http_conns_reply_sent(hi->conns, evcon);
}

/*
 * http_send_error answers with InfluxDB's JSON error shape: 1.x clients read "error", 2.x
 * clients read "message"; "code" is the 2.x error class.
 */
static void http_send_error(struct http_ingest *hi, struct evhttp_request *req, int code,
                            const char *klass, const char *message)
{
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        http_send(hi, req, 500, NULL);
        return;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "application/json; charset=utf-8");
    if (code == 503 || code == 429)
        evhttp_add_header(out, "Retry-After", hi->retry_after);
    evbuffer_add_printf(body, "{\"code\":\"%s\",\"error\":", klass);
    json_add_cstring(body, message);
    evbuffer_add(body, ",\"message\":", 11);
    json_add_cstring(body, message);
    evbuffer_add(body, "}\n", 2);
    http_send(hi, req, code, body);
    evbuffer_free(body);
}

/* ---- the FIFO of requests awaiting durability ---- */

static struct pending_reply *pending_get(struct http_ingest *hi)
{
    struct pending_reply *p = hi->spare;
    if (p)
        hi->spare = p->next;
    else
        p = xmalloc(sizeof(*p));
    memset(p, 0, sizeof(*p));
    return p;
}

static void pending_unlink_conn(struct pending_reply *p)
{
    if (!p->conn)
        return;
    struct pending_reply **pp = &p->conn->pending;
    while (*pp && *pp != p)
        pp = &(*pp)->conn_next;
    if (*pp)
        *pp = p->conn_next;
    p->conn = NULL;
}

/* pending_finish answers (when the client is still there) and recycles p. */
static void pending_finish(struct http_ingest *hi, struct pending_reply *p, int code,
                           const char *message)
{
    if (p->req) {
        if (code == 204)
            http_send(hi, p->req, 204, NULL);
        else
            http_send_error(hi, p->req, code, "unavailable", message);
    } else {
        hi->st.abandoned_replies++;
    }
    pending_unlink_conn(p);
    hi->inflight -= p->bytes;
    hi->npending--;
    p->next = hi->spare;
    hi->spare = p;
}

static void pending_answer_durable(struct http_ingest *hi)
{
    while (hi->head && hi->head->ticket <= hi->durable) {
        struct pending_reply *p = hi->head;
        hi->head = p->next;
        if (!hi->head)
            hi->tail = NULL;
        pending_finish(hi, p, 204, NULL);
    }
}

/* pending_answer_failed answers 503 to every request whose ticket is in (durable, failed]. */
static void pending_answer_failed(struct http_ingest *hi, uint64_t durable, uint64_t failed)
{
    struct pending_reply **pp = &hi->head;
    struct pending_reply *last = NULL;
    while (*pp) {
        struct pending_reply *p = *pp;
        if (p->ticket > durable && p->ticket <= failed) {
            *pp = p->next;
            pending_finish(hi, p, 503, "the spool could not make the batch durable (fsync failed)");
            continue;
        }
        last = p;
        pp = &p->next;
    }
    hi->tail = last;
}

static void spool_notified(evutil_socket_t fd, short what, void *arg)
{
    struct http_ingest *hi = arg;
    uint64_t durable = 0, failed = 0;
    spool_poll(hi->sp, &durable, &failed);
    if (failed) {
        LOG_ERROR("http", "spool fsync failed: answering 503 to batches %" PRIu64 "..%" PRIu64,
                  durable + 1, failed);
        pending_answer_failed(hi, durable, failed);
    }
    if (durable > hi->durable)
        hi->durable = durable;
    pending_answer_durable(hi);
}

static void conn_went_away(struct http_conn *conn, void *arg)
{
    (void)arg;
    for (struct pending_reply *p = conn->pending; p; p = p->conn_next) {
        p->req = NULL;
        p->conn = NULL;
    }
    conn->pending = NULL;
}

static void pending_push(struct http_ingest *hi, struct evhttp_request *req, struct http_conn *conn,
                         uint64_t ticket, uint64_t bytes)
{
    struct pending_reply *p = pending_get(hi);
    p->req = req;
    p->conn = conn;
    p->ticket = ticket;
    p->bytes = bytes;
    p->conn_next = conn->pending;
    conn->pending = p;
    hi->inflight += bytes;
    hi->npending++;
    if (hi->tail)
        hi->tail->next = p;
    else
        hi->head = p;
    hi->tail = p;
    /* A repeated batch may be durable already; answer it now rather than at the next sync. */
    if (ticket <= hi->durable)
        pending_answer_durable(hi);
}

/* ---- the write endpoints ---- */

static void log_disk_error(struct http_ingest *hi, int rc)
{
    int64_t now = clock_mono_ns();
    if (hi->disk_logged_ns && now - hi->disk_logged_ns < DISK_LOG_INTERVAL_NS)
        return;
    hi->disk_logged_ns = now;
    LOG_ERROR("http", "spool append failed: %s; answering 503", strerror(-rc));
}

static void write_refuse_lines(struct http_ingest *hi, const char *body, size_t len, size_t raw_len)
{
    hi->st.records_rejected += body ? body_count_lines(body, len) : 0;
    hi->st.bytes_rejected += raw_len;
}

static void handle_write(struct http_ingest *hi, struct evhttp_request *req, const char *query)
{
    char msg[320];
    if (hi->draining) {
        http_send_error(hi, req, 503, "unavailable", "telemd is shutting down");
        return;
    }

    enum lp_precision precision = LP_PREC_NS;
    char prec_text[16];
    int n = http_query_get(query, "precision", prec_text, sizeof(prec_text));
    if (n != -ENOENT && (n < 0 || lp_parse_precision(prec_text, &precision) < 0)) {
        snprintf(msg, sizeof(msg), "precision: expected ns, us, ms or s, got '%s'",
                 n < 0 ? "?" : prec_text);
        http_send_error(hi, req, 400, "invalid", msg);
        return;
    }

    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t raw_len = evbuffer_get_length(in);
    const char *clen = evhttp_find_header(headers, "Content-Length");
    if (raw_len > hi->opt.body_max || (clen && strtoull(clen, NULL, 10) > hi->opt.body_max)) {
        snprintf(msg, sizeof(msg), "body over %" PRIu64 " bytes (body_max)", hi->opt.body_max);
        hi->st.bytes_rejected += raw_len;
        http_send_error(hi, req, 413, "request too large", msg);
        return;
    }
    if (raw_len == 0) {
        http_send(hi, req, 204, NULL);
        return;
    }
    if (hi->inflight + raw_len > hi->opt.inflight_bytes_max) {
        snprintf(msg, sizeof(msg),
                 "too many bytes awaiting durability (inflight_bytes_max %" PRIu64 "); retry",
                 hi->opt.inflight_bytes_max);
        hi->st.bytes_refused += raw_len;
        http_send_error(hi, req, 503, "unavailable", msg);
        return;
    }

    struct batch_tag tag;
    const struct batch_tag *tagp = NULL;
    const char *tag_text = evhttp_find_header(headers, "Telem-Batch");
    if (tag_text) {
        if (batch_header_parse(tag_text, strlen(tag_text), &tag, msg, sizeof(msg)) < 0) {
            hi->st.bytes_rejected += raw_len;
            http_send_error(hi, req, 400, "invalid", msg);
            return;
        }
        tagp = &tag;
    }

    struct http_conn *conn = http_conns_lookup(hi->conns, evhttp_request_get_connection(req));
    if (!conn) {
        http_send_error(hi, req, 503, "unavailable",
                        "connection not tracked by telemd; reconnect and retry");
        return;
    }

    const char *body = (const char *)evbuffer_pullup(in, -1);
    size_t len = raw_len;
    const char *encoding = evhttp_find_header(headers, "Content-Encoding");
    if (encoding && strcasecmp(encoding, "gzip") == 0) {
        int rc = body_gzip_inflate(hi->gz, body, raw_len, hi->opt.body_max, &body, &len, msg,
                                   sizeof(msg));
        if (rc == -EFBIG) {
            hi->st.bytes_rejected += raw_len;
            http_send_error(hi, req, 413, "request too large", msg);
            return;
        }
        if (rc < 0) {
            hi->st.bytes_rejected += raw_len;
            http_send_error(hi, req, 400, "invalid", msg);
            return;
        }
    } else if (encoding && strcasecmp(encoding, "identity") != 0) {
        snprintf(msg, sizeof(msg), "Content-Encoding %.64s is not supported (use gzip)", encoding);
        hi->st.bytes_rejected += raw_len;
        http_send_error(hi, req, 415, "invalid", msg);
        return;
    }

    struct body_result res;
    body_encoder_reset(hi->enc);
    int rc = body_encoder_add(hi->enc, body, len, precision, clock_wall_ns(), &res);
    if (rc == -EINVAL) {
        char what[256];
        body_error_format(&res.err, what, sizeof(what));
        write_refuse_lines(hi, body, len, len);
        http_send_error(hi, req, 400, "invalid", what);
        goto done;
    }
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "body gives more than %u bytes of records; send smaller batches",
                 (unsigned)FRAME_PAYLOAD_MAX);
        write_refuse_lines(hi, body, len, len);
        http_send_error(hi, req, 413, "request too large", msg);
        goto done;
    }
    hi->st.records_ignored += res.ignored;
    if (res.records == 0) {
        hi->st.bytes_accepted += len;
        http_send(hi, req, 204, NULL);
        goto done;
    }

    size_t plen;
    uint32_t count;
    const uint8_t *payload = body_encoder_payload(hi->enc, &plen, &count);
    uint64_t first_seq = 0, ticket = 0;
    rc = spool_append(hi->sp, payload, plen, count, tagp, &first_seq, &ticket);
    if (rc == 0 || rc == -EALREADY) {
        if (rc == 0)
            hi->st.records_accepted += count;
        else
            hi->st.records_duplicate += count;
        hi->st.bytes_accepted += len;
        /* The body is in the spool now: release its memory while the fsync runs. */
        evbuffer_drain(in, raw_len);
        pending_push(hi, req, conn, ticket, raw_len);
        goto done;
    }
    if (rc == -EMSGSIZE) {
        write_refuse_lines(hi, body, len, len);
        http_send_error(hi, req, 413, "request too large",
                        "body gives more records than one spool frame holds; send smaller batches");
        goto done;
    }
    hi->st.bytes_refused += len;
    if (rc == -ENOBUFS) {
        http_send_error(hi, req, 503, "unavailable",
                        "the spool is full (spool_max_bytes): a sink is behind; retry later");
    } else {
        log_disk_error(hi, rc);
        snprintf(msg, sizeof(msg), "the spool could not store the batch: %s", strerror(-rc));
        http_send_error(hi, req, 503, "unavailable", msg);
    }
done:
    body_gzip_trim(hi->gz);
}

/* handle_query answers just enough of /query for clients that create their database first. */
static void handle_query(struct http_ingest *hi, struct evhttp_request *req, const char *query)
{
    char q[256];
    int n = http_query_get(query, "q", q, sizeof(q));
    const char *p = q;
    while (n >= 0 && (*p == ' ' || *p == '\t'))
        p++;
    if (n >= 0 && strncasecmp(p, "CREATE DATABASE", 15) == 0) {
        struct evbuffer *body = evbuffer_new();
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evbuffer_add_printf(body, "{\"results\":[{\"statement_id\":0}]}\n");
        http_send(hi, req, 200, body);
        evbuffer_free(body);
        return;
    }
    http_send_error(hi, req, 400, "invalid",
                    "telemd takes writes only; query the stores (telemctl query)");
}

static void handle_ping(struct http_ingest *hi, struct evhttp_request *req)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "X-Influxdb-Version", INFLUX_COMPAT_VERSION);
    evhttp_add_header(out, "X-Influxdb-Build", "OSS");
    http_send(hi, req, 204, NULL);
}

static bool http_authorized(struct http_ingest *hi, struct evhttp_request *req, const char *query)
{
    if (!hi->opt.token || !hi->opt.token[0])
        return true;
    const char *authz = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    char p[256];
    int n = http_query_get(query, "p", p, sizeof(p));
    return http_auth_allows(hi->opt.token, authz, n >= 0 ? p : NULL);
}

static void http_method_not_allowed(struct http_ingest *hi, struct evhttp_request *req,
                                    const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    http_send_error(hi, req, 405, "method not allowed", "method not allowed");
}

static void http_unauthorized(struct http_ingest *hi, struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Token");
    http_send_error(hi, req, 401, "unauthorized", "missing or wrong token");
}

static void handle_route(struct http_ingest *hi, struct evhttp_request *req,
                         const struct http_route *r, enum evhttp_cmd_type method, const char *query)
{
    if (!(r->methods & (unsigned)method)) {
        http_method_not_allowed(hi, req,
                                r->methods & EVHTTP_REQ_POST ? "GET, HEAD, POST" : "GET, HEAD");
        return;
    }
    if (!r->open && !http_authorized(hi, req, query)) {
        http_unauthorized(hi, req);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        http_send(hi, req, 500, NULL);
        return;
    }
    int code = r->handle(req, body, r->arg);
    http_send(hi, req, code, body);
    evbuffer_free(body);
}

static void http_dispatch(struct evhttp_request *req, void *arg)
{
    struct http_ingest *hi = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if (!path || !path[0])
        path = "/";

    bool v1 = strcmp(path, "/write") == 0;
    if (v1 || strcmp(path, "/api/v2/write") == 0) {
        if (method != EVHTTP_REQ_POST) {
            http_method_not_allowed(hi, req, "POST");
            return;
        }
        if (!http_authorized(hi, req, v1 ? query : NULL)) {
            http_unauthorized(hi, req);
            return;
        }
        handle_write(hi, req, query);
        return;
    }
    if (strcmp(path, "/ping") == 0) {
        if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
            http_method_not_allowed(hi, req, "GET, HEAD");
            return;
        }
        handle_ping(hi, req);
        return;
    }
    if (strcmp(path, "/query") == 0) {
        if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_POST) {
            http_method_not_allowed(hi, req, "GET, POST");
            return;
        }
        if (!http_authorized(hi, req, query)) {
            http_unauthorized(hi, req);
            return;
        }
        handle_query(hi, req, query);
        return;
    }
    for (size_t i = 0; i < hi->nroutes; i++) {
        if (strcmp(path, hi->routes[i].path) == 0) {
            handle_route(hi, req, &hi->routes[i], method, query);
            return;
        }
    }
    http_send_error(hi, req, 404, "not found", "not found");
}

/* ---- life cycle ---- */

static int http_listen(struct http_ingest *hi, char *err, size_t errlen)
{
    if (hi->opt.http) {
        struct listen_address a;
        if (listen_address_parse(hi->opt.http, &a, err, errlen) < 0)
            return -EINVAL;
        int fd = listen_socket_tcp(&a, hi->opt.backlog, err, errlen);
        if (fd < 0)
            return fd;
        if (listen_socket_name(fd, hi->tcp_name, sizeof(hi->tcp_name)) < 0)
            snprintf(hi->tcp_name, sizeof(hi->tcp_name), "%s", hi->opt.http);
        hi->tcp_sock = evhttp_accept_socket_with_handle(hi->http, fd);
        if (!hi->tcp_sock) {
            close(fd);
            snprintf(err, errlen, "http %s: cannot listen", hi->opt.http);
            return -EIO;
        }
    }
    if (hi->opt.socket_path) {
        int fd = listen_socket_unix(hi->opt.socket_path, 0660, hi->opt.backlog, err, errlen);
        if (fd < 0)
            return fd;
        hi->unix_path = xstrdup(hi->opt.socket_path);
        hi->unix_sock = evhttp_accept_socket_with_handle(hi->http, fd);
        if (!hi->unix_sock) {
            close(fd);
            snprintf(err, errlen, "socket %s: cannot listen", hi->opt.socket_path);
            return -EIO;
        }
    }
    return 0;
}

struct http_ingest *http_ingest_create(struct event_base *base, struct spool *sp,
                                       const struct ingest_options *opt, char *err, size_t errlen)
{
    struct http_ingest *hi = xcalloc(1, sizeof(*hi));
    hi->base = base;
    hi->sp = sp;
    hi->opt = *opt;
    snprintf(hi->retry_after, sizeof(hi->retry_after), "%u", opt->retry_after_s);
    hi->http = evhttp_new(base);
    if (!hi->http) {
        snprintf(err, errlen, "http: evhttp_new failed");
        goto fail;
    }
    evhttp_set_max_body_size(hi->http, (ev_ssize_t)opt->body_max);
    if (opt->headers_max)
        evhttp_set_max_headers_size(hi->http, (ev_ssize_t)opt->headers_max);
    if (opt->idle_timeout_s)
        evhttp_set_timeout(hi->http, (int)opt->idle_timeout_s);
    evhttp_set_allowed_methods(hi->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(hi->http, "text/plain; charset=utf-8");
    evhttp_set_gencb(hi->http, http_dispatch, hi);
    hi->conns =
        http_conns_create(base, hi->http, opt->connections_max, opt->read_max, conn_went_away, hi);
    hi->gz = body_gzip_create();
    hi->enc = body_encoder_create(&opt->encode);

    hi->notify_ev = event_new(base, spool_notify_fd(sp), EV_READ | EV_PERSIST, spool_notified, hi);
    if (!hi->notify_ev || event_add(hi->notify_ev, NULL) < 0) {
        snprintf(err, errlen, "http: cannot watch the spool's notify fd");
        goto fail;
    }
    if (http_listen(hi, err, errlen) < 0)
        goto fail;
    return hi;
fail:
    http_ingest_destroy(hi);
    return NULL;
}

int http_ingest_add_route(struct http_ingest *hi, const struct http_route *route)
{
    if (hi->nroutes >= HTTP_ROUTES_MAX)
        return -ENOSPC;
    hi->routes[hi->nroutes++] = *route;
    return 0;
}

bool http_ingest_tcp_name(const struct http_ingest *hi, char *dst, size_t cap)
{
    if (!hi->tcp_sock)
        return false;
    snprintf(dst, cap, "%s", hi->tcp_name);
    return true;
}

static void http_close_listeners(struct http_ingest *hi)
{
    if (hi->tcp_sock) {
        evhttp_del_accept_socket(hi->http, hi->tcp_sock);
        hi->tcp_sock = NULL;
    }
    if (hi->unix_sock) {
        evhttp_del_accept_socket(hi->http, hi->unix_sock);
        hi->unix_sock = NULL;
    }
    if (hi->unix_path) {
        unlink(hi->unix_path);
        free(hi->unix_path);
        hi->unix_path = NULL;
    }
}

void http_ingest_drain(struct http_ingest *hi)
{
    hi->draining = true;
    http_close_listeners(hi);
}

size_t http_ingest_pending(const struct http_ingest *hi)
{
    return hi->npending;
}

void http_ingest_abandon_pending(struct http_ingest *hi)
{
    while (hi->head) {
        struct pending_reply *p = hi->head;
        hi->head = p->next;
        pending_finish(hi, p, 503, "telemd stopped before the batch was durable; retry");
    }
    hi->tail = NULL;
}

void http_ingest_get_stats(const struct http_ingest *hi, struct http_ingest_stats *st)
{
    *st = hi->st;
    st->connections_open = http_conns_open(hi->conns);
    st->connections_accepted = http_conns_accepted(hi->conns);
    st->connections_rejected = http_conns_rejected(hi->conns);
    st->inflight_bytes = hi->inflight;
    st->pending_requests = hi->npending;
}

void http_ingest_destroy(struct http_ingest *hi)
{
    if (!hi)
        return;
    if (hi->notify_ev)
        event_free(hi->notify_ev);
    if (hi->http) {
        http_close_listeners(hi);
        /* Closes every connection: conn_went_away clears the requests still queued. */
        evhttp_free(hi->http);
    }
    http_conns_destroy(hi->conns);
    while (hi->head) {
        struct pending_reply *p = hi->head;
        hi->head = p->next;
        free(p);
    }
    while (hi->spare) {
        struct pending_reply *p = hi->spare;
        hi->spare = p->next;
        free(p);
    }
    body_gzip_destroy(hi->gz);
    body_encoder_destroy(hi->enc);
    free(hi);
}
