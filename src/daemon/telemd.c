/*
 * telemd.c: start-up, the event loop and the drain of telemd (see telemd.h).
 *
 * Order matters at both ends. Start: lock the data folder (a second telemd on it would
 * corrupt the spool), open the spool, start the sink workers and give their stores a moment to
 * open (a store whose cursor is ahead of the spool stops us here), then listen, so that nothing
 * is accepted that could not be kept. Stop: close the listeners and stop reading UDP, answer
 * the requests still waiting for their fsync (bounded by drain_ms), close the connections, let
 * each sink write what the spool holds (drain_ms again), wake and close the spool.
 */
#include "daemon/telemd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/fdlimit.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "daemon/observe.h"
#include "ingest/ingest.h"
#include "spool/spool.h"

#define DRAIN_TICK_MS 20

struct telemd {
    const struct telemd_conf *conf;
    int lock_fd;
    struct spool *sp;
    struct sink_worker **sinks;
    size_t nsinks;
    struct event_base *base;
    struct http_ingest *hi;
    struct udp_ingest *ui;
    struct observe_sources obs;
    struct event *signals[4];
    struct event *drain_timer;
    bool draining;
    bool served; /* the ready line was printed */
    int64_t drain_deadline_ns;
};

/* ---- checks without I/O ---- */

/* sink_error_where prefixes a create() error with the file:line of the setting it names. */
static void sink_error_where(const struct telemd_sink *s, const char *err, char *dst, size_t cap)
{
    /* Sinks that name the file:line themselves (from struct sink_setting) are left as they are. */
    for (size_t i = 0; i < s->nsettings; i++) {
        const char *file = s->settings[i].file;
        size_t n = file ? strlen(file) : 0;
        if (n && strncmp(err, file, n) == 0 && err[n] == ':') {
            snprintf(dst, cap, "%s", err);
            return;
        }
    }
    for (size_t i = 0; i < s->nsettings; i++) {
        const struct sink_setting *st = &s->settings[i];
        size_t k = strlen(st->key);
        if (st->file && strncmp(err, st->key, k) == 0 && err[k] == ':') {
            snprintf(dst, cap, "%s:%d: [sink.%s] %s", st->file, st->line, s->name, err);
            return;
        }
    }
    if (s->file)
        snprintf(dst, cap, "%s:%d: [sink.%s]: %s", s->file, s->line, s->name, err);
    else
        snprintf(dst, cap, "sink %s: %s", s->name, err);
}

int telemd_check_config(struct telemd_conf *c)
{
    static const uint8_t no_id[SPOOL_ID_SIZE];
    size_t before = c->nerrors;
    for (size_t i = 0; i < c->nsinks; i++) {
        const struct telemd_sink *s = &c->sinks[i];
        const struct sink_ops *ops = s->url ? sink_ops_for_url(s->url) : NULL;
        if (!ops)
            continue; /* telemd_conf_finish reported it */
        struct sink_config cfg = {
            .name = s->name,
            .url = s->url,
            .settings = s->settings,
            .nsettings = s->nsettings,
            .spool_id = no_id,
            .data_dir = c->s.data_dir,
        };
        void *state = NULL;
        char err[256] = "";
        if (ops->create(&cfg, &state, err, sizeof(err)) < 0) {
            char msg[TELEMD_CONF_ERROR_LEN];
            sink_error_where(s, err, msg, sizeof(msg));
            if (c->nerrors < TELEMD_CONF_ERRORS_MAX)
                snprintf(c->errors[c->nerrors], TELEMD_CONF_ERROR_LEN, "%s", msg);
            c->nerrors++;
            continue;
        }
        ops->destroy(state);
    }
    return c->nerrors > before ? -EINVAL : 0;
}

/* ---- the data folder ---- */

static int mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            rc = -errno;
            goto done;
        }
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        rc = -errno;
done:
    free(p);
    return rc;
}

/* data_dir_lock takes <data_dir>/telemd.lock, so that two telemds never share a spool. */
static int data_dir_lock(const char *dir, int *fd_out)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/telemd.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "telemd: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = -errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        if (n > 0)
            pid[n] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (rc == -EWOULDBLOCK)
            fprintf(stderr,
                    "telemd: data folder %s is in use by another telemd%s%s%s (it holds %s); "
                    "stop it or give this one another --data-dir\n",
                    dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "", path);
        else
            fprintf(stderr, "telemd: %s: flock: %s\n", path, strerror(-rc));
        close(fd);
        return rc;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n)
        LOG_WARN("telemd", "%s: cannot write the pid", path);
    *fd_out = fd;
    return 0;
}

/* ---- signals and the drain ---- */

static void drain_finish(struct telemd *td)
{
    if (td->drain_timer)
        event_del(td->drain_timer);
    /* Give the last answers a moment to leave before the connections close. */
    struct timeval flush = {0, 50 * 1000};
    event_base_loopexit(td->base, &flush);
}

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct telemd *td = arg;
    size_t pending = td->hi ? http_ingest_pending(td->hi) : 0;
    if (pending == 0) {
        drain_finish(td);
        return;
    }
    if (clock_mono_ns() >= td->drain_deadline_ns) {
        LOG_WARN("telemd",
                 "drain_ms passed with %zu request(s) still waiting for durability; "
                 "answering them 503",
                 pending);
        http_ingest_abandon_pending(td->hi);
        drain_finish(td);
    }
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct telemd *td = arg;
    if (td->draining) {
        LOG_WARN("telemd", "second %s: stopping without waiting for pending requests",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (td->hi)
            http_ingest_abandon_pending(td->hi);
        drain_finish(td);
        return;
    }
    td->draining = true;
    LOG_INFO("telemd",
             "%s: draining (no new connections; waiting up to %lld ms for pending "
             "requests)",
             sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)td->conf->s.drain_ms);
    if (td->hi)
        http_ingest_drain(td->hi);
    udp_ingest_stop(td->ui);
    td->drain_deadline_ns = clock_mono_ns() + td->conf->s.drain_ms * 1000000LL;
    struct timeval tick = {0, DRAIN_TICK_MS * 1000};
    td->drain_timer = event_new(td->base, -1, EV_PERSIST, drain_tick, td);
    if (!td->drain_timer || event_add(td->drain_timer, &tick) < 0) {
        LOG_ERROR("telemd", "cannot start the drain timer; stopping now");
        drain_finish(td);
        return;
    }
    drain_tick(-1, 0, td);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    int rc = log_reopen();
    if (rc < 0)
        LOG_ERROR("telemd", "SIGHUP: reopening the log file: %s", strerror(-rc));
    else
        LOG_INFO("telemd", "SIGHUP: log file reopened");
}

static int install_signals(struct telemd *td)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        td->signals[i] =
            evsignal_new(td->base, sigs[i], sigs[i] == SIGHUP ? on_hup : on_stop_signal, td);
        if (!td->signals[i] || event_add(td->signals[i], NULL) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---- start and stop ---- */

static int start_sinks(struct telemd *td)
{
    const struct telemd_conf *c = td->conf;
    td->sinks = xcalloc(c->nsinks ? c->nsinks : 1, sizeof(*td->sinks));
    for (size_t i = 0; i < c->nsinks; i++) {
        const struct telemd_sink *s = &c->sinks[i];
        const struct sink_ops *ops = sink_ops_for_url(s->url);
        struct sink_config cfg = {
            .name = s->name,
            .url = s->url,
            .settings = s->settings,
            .nsettings = s->nsettings,
            .spool_id = spool_id(td->sp),
            .data_dir = c->s.data_dir,
        };
        char err[256] = "";
        td->sinks[i] = sink_worker_start(td->sp, ops, &cfg, &s->worker, err, sizeof(err));
        if (!td->sinks[i]) {
            fprintf(stderr, "telemd: sink %s: %s\n", s->name, err);
            LOG_ERROR("telemd", "sink %s: %s", s->name, err);
            return -EINVAL;
        }
        td->nsinks++;
    }
    /* Every sink's cursors are registered now: segments may go once all have passed them. */
    spool_cursors_complete(td->sp);
    int64_t deadline = clock_mono_ns() + c->s.sink_open_wait_ms * 1000000LL;
    for (size_t i = 0; i < td->nsinks; i++) {
        int64_t left_ms = (deadline - clock_mono_ns()) / 1000000;
        char err[256] = "";
        int rc = sink_worker_wait_open(td->sinks[i], left_ms > 0 ? (unsigned)left_ms : 0, err,
                                       sizeof(err));
        const char *name = sink_worker_name(td->sinks[i]);
        if (rc == -ERANGE) {
            fprintf(stderr, "telemd: sink %s: %s\n", name, err);
            LOG_ERROR("telemd", "sink %s: %s", name, err);
            return rc;
        }
        if (rc < 0)
            LOG_WARN("telemd",
                     "sink %s: store not ready yet (%s); records stay in the spool until it is",
                     name, err[0] ? err : strerror(-rc));
    }
    return 0;
}

static int start_listeners(struct telemd *td)
{
    /* Each connection is a descriptor; leave room for segments, stores and the log. */
    uint64_t want_fds = (uint64_t)td->conf->s.connections_max + 256;
    int64_t fds = fdlimit_raise(want_fds);
    if (fds >= 0 && (uint64_t)fds < want_fds)
        LOG_WARN("telemd", "open file limit is %lld, below connections_max + 256 = %llu",
                 (long long)fds, (unsigned long long)want_fds);
    const struct telemd_settings *s = &td->conf->s;
    struct body_encode_options enc = {
        .limits = {.line_max = (size_t)s->line_max,
                   .tags_max = (size_t)s->tags_max,
                   .fields_max = (size_t)s->fields_max},
        .profile_tag = s->profile_tag,
        .default_profile = s->default_profile,
        .payload_max = 0,
    };
    char err[256] = "";
    if (s->http || s->socket) {
        struct ingest_options opt = {
            .http = s->http,
            .socket_path = s->socket,
            .token = s->token,
            .encode = enc,
            .body_max = s->body_max,
            .headers_max = s->headers_max,
            .connections_max = (unsigned)s->connections_max,
            .inflight_bytes_max = s->inflight_bytes_max,
            .retry_after_s = (unsigned)s->retry_after_s,
            .idle_timeout_s = (unsigned)s->http_idle_timeout_s,
            .read_max = (size_t)s->http_read_bytes,
            .backlog = (int)s->listen_backlog,
        };
        td->hi = http_ingest_create(td->base, td->sp, &opt, err, sizeof(err));
        if (!td->hi)
            goto fail;
    }
    if (s->udp) {
        struct udp_options uopt = {
            .addr = s->udp, .encode = enc, .rcvbuf = (int)s->udp_buffer_bytes};
        td->ui = udp_ingest_create(td->base, td->sp, &uopt, err, sizeof(err));
        if (!td->ui)
            goto fail;
    }
    td->obs = (struct observe_sources){
        .sp = td->sp,
        .sinks = td->sinks,
        .nsinks = td->nsinks,
        .hi = td->hi,
        .ui = td->ui,
        .spool_max_bytes = s->spool_max_bytes,
        .health_lag_max = s->health_lag_max,
    };
    if (td->hi)
        observe_add_routes(td->hi, &td->obs);
    return 0;
fail:
    fprintf(stderr, "telemd: %s\n", err);
    LOG_ERROR("telemd", "%s", err);
    return -EINVAL;
}

static void print_ready(struct telemd *td)
{
    const struct telemd_conf *c = td->conf;
    char line[2048];
    size_t n = 0;
    n += (size_t)snprintf(line + n, sizeof(line) - n, "telemd: listening on");
    const char *sep = " ";
    char name[128];
    if (td->hi && http_ingest_tcp_name(td->hi, name, sizeof(name))) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%shttp://%s", sep, name);
        sep = " and ";
    }
    if (td->hi && c->s.socket) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%sunix:%s", sep, c->s.socket);
        sep = " and ";
    }
    if (td->ui) {
        udp_ingest_name(td->ui, name, sizeof(name));
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%sudp://%s", sep, name);
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "; data in %s; sinks:", c->s.data_dir);
    for (size_t i = 0; i < c->nsinks && n < sizeof(line); i++) {
        char url[512];
        telemd_url_redact(c->sinks[i].url, url, sizeof(url));
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s (%s)", i ? "," : "",
                              c->sinks[i].name, url);
    }
    printf("%s\n", line);
    fflush(stdout);
    LOG_INFO("telemd", "%s", line + strlen("telemd: "));
}

static void telemd_teardown(struct telemd *td)
{
    /* Connections close here; requests still queued are forgotten, never answered freed. */
    http_ingest_destroy(td->hi);
    td->hi = NULL;
    udp_ingest_destroy(td->ui);
    td->ui = NULL;
    /* After a failed start there is nothing worth waiting for. */
    unsigned drain_ms = td->served ? (unsigned)td->conf->s.drain_ms : 0;
    for (size_t i = 0; i < td->nsinks; i++)
        sink_worker_stop(td->sinks[i], drain_ms);
    free(td->sinks);
    td->sinks = NULL;
    if (td->sp) {
        spool_wake_readers(td->sp);
        spool_close(td->sp);
        td->sp = NULL;
    }
    if (td->drain_timer)
        event_free(td->drain_timer);
    for (size_t i = 0; i < sizeof(td->signals) / sizeof(td->signals[0]); i++) {
        if (td->signals[i])
            event_free(td->signals[i]);
    }
    if (td->base)
        event_base_free(td->base);
    if (td->lock_fd >= 0)
        close(td->lock_fd);
}

int telemd_run(const struct telemd_conf *c)
{
    struct telemd td;
    memset(&td, 0, sizeof(td));
    td.conf = c;
    td.lock_fd = -1;
    int status = TELEMD_EXIT_FAILURE;

    for (size_t i = 0; i < c->nwarnings; i++)
        LOG_WARN("telemd", "%s", c->warnings[i]);
    int rc = mkdir_p(c->s.data_dir, 0750);
    if (rc < 0) {
        fprintf(stderr, "telemd: data folder %s: %s\n", c->s.data_dir, strerror(-rc));
        goto done;
    }
    if (data_dir_lock(c->s.data_dir, &td.lock_fd) < 0)
        goto done;

    struct spool_options sopt = {
        .dir = c->s.spool_dir,
        .segment_bytes = c->s.spool_segment_bytes,
        .max_bytes = c->s.spool_max_bytes,
        .fsync = (enum spool_fsync)c->s.fsync,
        .fsync_interval_ms = (unsigned)c->s.fsync_interval_ms,
        .producers_max = (unsigned)c->s.producers_max,
        .producer_idle_s = (unsigned)c->s.producer_idle_s,
        .defer_deletion = true,
    };
    char err[256] = "";
    td.sp = spool_open(&sopt, err, sizeof(err));
    if (!td.sp) {
        fprintf(stderr, "telemd: %s\n", err);
        LOG_ERROR("telemd", "%s", err);
        goto done;
    }
    if (start_sinks(&td) < 0)
        goto done;

    td.base = event_base_new();
    if (!td.base || install_signals(&td) < 0) {
        fprintf(stderr, "telemd: cannot set up the event loop\n");
        goto done;
    }
    if (start_listeners(&td) < 0)
        goto done;
    print_ready(&td);
    td.served = true;

    if (event_base_dispatch(td.base) < 0) {
        LOG_ERROR("telemd", "event loop failed");
        goto done;
    }
    /* Let the 503s of an abandoned drain and the last 204s reach their clients. */
    event_base_loop(td.base, EVLOOP_NONBLOCK);
    status = TELEMD_EXIT_OK;
done:
    telemd_teardown(&td);
    if (status == TELEMD_EXIT_OK)
        LOG_INFO("telemd", "stopped");
    return status;
}
