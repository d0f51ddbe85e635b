/*
 * test_client_c.c: libtelem against a real telemd (found through the TELEMD environment
 * variable), each test on its own temporary data folder, port and socket, reading what was
 * stored back from telemd's SQLite file.
 *
 *  - 8 threads x 250,000 trades through one handle arrive exactly (count per profile);
 *  - telemd killed (SIGKILL) and restarted mid-stream under the block policy: no metric lost,
 *    none doubled;
 *  - the drop policy with a tiny buffer while telemd is down: the dropped count equals the
 *    missing count;
 *  - a connection cut after telemd stored a batch but before the client read the 204 (a proxy
 *    in this file swallows the reply): the retried metrics-only batch is stored once, also
 *    when telemd is killed and restarted between the cut and the retry;
 *  - telemd answering 400 (a batch it refuses) counts the batch rejected and moves on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "telem.h"

struct telemd {
    pid_t pid;
    char dir[256];
    char sock[320];
    char endpoint_unix[340];
    char endpoint_http[64];
    int port;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static const char *telemd_path(void)
{
    const char *p = getenv("TELEMD");
    if (p == NULL || access(p, X_OK) != 0)
        fail_msg("set TELEMD to the telemd binary (e.g. TELEMD=build/src/daemon/telemd); "
                 "got %s",
                 p ? p : "nothing");
    return p;
}

/* telemd_start runs telemd on d (a new folder when d->dir is empty) and waits until it listens. */
static void telemd_start(struct telemd *d)
{
    const char *bin = telemd_path();
    if (d->dir[0] == '\0') {
        snprintf(d->dir, sizeof(d->dir), "/tmp/telem-client-c.XXXXXX");
        assert_non_null(mkdtemp(d->dir));
        d->port = free_port();
        snprintf(d->sock, sizeof(d->sock), "%s/s.sock", d->dir);
        snprintf(d->endpoint_unix, sizeof(d->endpoint_unix), "unix:%s", d->sock);
        snprintf(d->endpoint_http, sizeof(d->endpoint_http), "http://127.0.0.1:%d", d->port);
    }
    char out[300], err[300], http[32];
    snprintf(out, sizeof(out), "%s/stdout.log", d->dir);
    snprintf(err, sizeof(err), "%s/stderr.log", d->dir);
    snprintf(http, sizeof(http), "127.0.0.1:%d", d->port);
    unlink(out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execl(bin, bin, "--data-dir", d->dir, "--http", http, "--socket", d->sock, (char *)NULL);
        _exit(127);
    }
    d->pid = pid;
    double until = now_s() + 30;
    while (now_s() < until) {
        FILE *f = fopen(out, "r");
        char line[512];
        bool up = false;
        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            up = up || strncmp(line, "telemd: listening", 17) == 0;
        if (f != NULL)
            fclose(f);
        if (up)
            return;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            fail_msg("telemd exited at start; see %s", err);
        usleep(20000);
    }
    fail_msg("telemd did not say it listens within 30 s; see %s", err);
}

static void telemd_stop(struct telemd *d, int sig)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, sig);
    int st;
    waitpid(d->pid, &st, 0);
    d->pid = 0;
}

static void telemd_cleanup(struct telemd *d)
{
    telemd_stop(d, SIGTERM);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", d->dir);
}

/* db_count runs one COUNT query on telemd's SQLite file; -1 when the table is not there yet. */
static long long db_count(const struct telemd *d, const char *sql)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/telem.db", d->dir);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

/* wait_count polls sql until it gives want (returns it) or timeout_s passes (returns the last). */
static long long wait_count(const struct telemd *d, const char *sql, long long want,
                            double timeout_s)
{
    double until = now_s() + timeout_s;
    long long n = -1;
    while (now_s() < until) {
        n = db_count(d, sql);
        if (n == want)
            return n;
        usleep(100000);
    }
    return n;
}

static struct telem *open_client(const char *endpoint, const char *profile,
                                 enum telem_full_policy policy, unsigned max_buffered)
{
    struct telem_options opt = {.endpoint = endpoint,
                                .profile = profile,
                                .script = "it",
                                .full_policy = policy,
                                .max_buffered = max_buffered,
                                .flush_interval_ms = 50,
                                .backoff_max_ms = 200,
                                .io_timeout_ms = 10000};
    struct telem_open_error err;
    struct telem *t = telem_open(&opt, &err);
    if (t == NULL)
        fail_msg("telem_open: %s", err.msg);
    return t;
}

/* ---- 8 threads x 250,000 ------------------------------------------------------------------ */

#define THREADS     8
#define PER_THREAD  250000
#define PROFILE_FMT "thr-%d"

struct thread_arg {
    struct telem *t;
    int id;
    int failures;
};

static void *trade_thread(void *p)
{
    struct thread_arg *a = p;
    char profile[32];
    snprintf(profile, sizeof(profile), PROFILE_FMT, a->id);
    struct telem_trade tr = {.symbol = "BTC-USD", .side = "buy", .profile = profile};
    for (int i = 0; i < PER_THREAD; i++) {
        tr.qty = 1 + i % 5;
        tr.entry_price = 100 + i * 0.01;
        tr.exit_price = tr.entry_price + 0.5;
        tr.pnl = 0.5 * tr.qty;
        tr.fees = 0.01;
        tr.closed_at_ns = 1700000000000000000LL + (int64_t)i * 1000 + a->id;
        if (telem_trade(a->t, &tr) != TELEM_OK)
            a->failures++;
    }
    return NULL;
}

static void test_threads_exact(void **state)
{
    (void)state;
    struct telemd d = {0};
    telemd_start(&d);
    struct telem *t = open_client(d.endpoint_unix, "unused", TELEM_FULL_BLOCK, 50000);
    pthread_t th[THREADS];
    struct thread_arg args[THREADS];
    double t0 = now_s();
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct thread_arg){.t = t, .id = i};
        pthread_create(&th[i], NULL, trade_thread, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(telem_flush(t, 300000), TELEM_OK);
    double t1 = now_s();
    struct telem_stats st;
    telem_stats(t, &st);
    assert_int_equal(st.acked, (uint64_t)THREADS * PER_THREAD);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.queued, 0);
    assert_int_equal(telem_close(t, 10000), TELEM_OK);
    printf("# 8 x 250000 trades acked in %.2f s (%.0f/s), %llu batches, %llu retries\n", t1 - t0,
           THREADS * PER_THREAD / (t1 - t0), (unsigned long long)st.batches,
           (unsigned long long)st.retries);
    for (int i = 0; i < THREADS; i++) {
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM trade_performance WHERE profile_id = '" PROFILE_FMT "'", i);
        assert_int_equal(wait_count(&d, sql, PER_THREAD, 300), PER_THREAD);
    }
    /* No duplicates of any kind: every (profile, close time) pair is there once. */
    assert_int_equal(db_count(&d, "SELECT count(*) FROM (SELECT DISTINCT profile_id, closed_at "
                                  "FROM trade_performance)"),
                     THREADS * PER_THREAD);
    telemd_cleanup(&d);
}

/* ---- telemd killed and restarted under the block policy ----------------------------------- */

#define KILL_RECORDS 300000

struct metric_feed {
    struct telem *t;
    int n;
    int failures;
    atomic_int sent;
};

static void *metric_thread(void *p)
{
    struct metric_feed *f = p;
    for (int i = 0; i < f->n; i++) {
        if (telem_metric(f->t, "seq", (double)i, 1700000000000000000LL + i) != TELEM_OK)
            f->failures++;
        atomic_store(&f->sent, i + 1);
        if (i % 1000 == 999)
            usleep(2000); /* about 300,000/s at most: the stream spans the restart */
    }
    return NULL;
}

static void test_kill_restart_block(void **state)
{
    (void)state;
    struct telemd d = {0};
    telemd_start(&d);
    struct telem *t = open_client(d.endpoint_http, "killed", TELEM_FULL_BLOCK, 20000);
    struct metric_feed f = {.t = t, .n = KILL_RECORDS};
    pthread_t th;
    pthread_create(&th, NULL, metric_thread, &f);
    while (atomic_load(&f.sent) < KILL_RECORDS / 3)
        usleep(1000);
    telemd_stop(&d, SIGKILL);
    usleep(500000);
    telemd_start(&d);
    while (atomic_load(&f.sent) < 2 * KILL_RECORDS / 3)
        usleep(1000);
    telemd_stop(&d, SIGKILL);
    usleep(300000);
    telemd_start(&d);
    pthread_join(th, NULL);
    assert_int_equal(f.failures, 0);
    assert_int_equal(telem_flush(t, 120000), TELEM_OK);
    struct telem_stats st;
    telem_stats(t, &st);
    printf("# kill/restart: acked %llu, retries %llu, reconnects %llu, last error: %s\n",
           (unsigned long long)st.acked, (unsigned long long)st.retries,
           (unsigned long long)st.reconnects, st.last_error_msg);
    assert_int_equal(st.acked, KILL_RECORDS);
    assert_int_equal(st.dropped, 0);
    assert_true(st.retries > 0 || st.reconnects > 1);
    assert_int_equal(telem_close(t, 10000), TELEM_OK);
    assert_int_equal(wait_count(&d,
                                "SELECT count(*) FROM aggregated_metric WHERE profile_id = "
                                "'killed' AND name = 'seq'",
                                KILL_RECORDS, 120),
                     KILL_RECORDS);
    assert_int_equal(db_count(&d, "SELECT count(DISTINCT value) FROM aggregated_metric WHERE "
                                  "profile_id = 'killed'"),
                     KILL_RECORDS);
    telemd_cleanup(&d);
}

/* ---- the drop policy while telemd is down -------------------------------------------------- */

static void test_drop_counts(void **state)
{
    (void)state;
    struct telemd d = {0};
    telemd_start(&d);
    telemd_stop(&d, SIGTERM);
    struct telem *t = open_client(d.endpoint_unix, "dropper", TELEM_FULL_DROP, 100);
    const int attempts = 5000;
    int efull = 0;
    for (int i = 0; i < attempts; i++) {
        int rc = telem_metric(t, "x", (double)i, 1700000000000000000LL + i);
        if (rc == TELEM_EFULL)
            efull++;
        else
            assert_int_equal(rc, TELEM_OK);
    }
    struct telem_stats st;
    telem_stats(t, &st);
    assert_int_equal(st.dropped, (uint64_t)efull);
    assert_true(efull > 0);
    assert_int_equal(st.accepted + st.dropped, (uint64_t)attempts);
    double until = now_s() + 10;
    while (st.last_error == TELEM_OK && now_s() < until) {
        usleep(10000);
        telem_stats(t, &st);
    }
    assert_int_equal(st.last_error, TELEM_ECONNECT);
    telemd_start(&d);
    assert_int_equal(telem_flush(t, 60000), TELEM_OK);
    assert_int_equal(telem_close(t, 10000), TELEM_OK);
    long long want = attempts - efull;
    long long got = wait_count(&d,
                               "SELECT count(*) FROM aggregated_metric WHERE profile_id = "
                               "'dropper'",
                               want, 60);
    printf("# drop policy: %d attempts, %d dropped, %lld stored\n", attempts, efull, got);
    assert_int_equal(got, want);
    assert_int_equal(attempts - got, (long long)st.dropped);
    telemd_cleanup(&d);
}

/* ---- a proxy that swallows one 204 -------------------------------------------------------- */

struct proxy {
    int listen_fd;
    int upstream_port;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool cut_armed; /* swallow the next reply and cut the client's connection */
    atomic_int cuts;       /* replies swallowed */
    atomic_int requests;   /* connections accepted */
};

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool forward(int from, int to)
{
    char buf[65536];
    ssize_t n = recv(from, buf, sizeof(buf), 0);
    if (n <= 0)
        return false;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

/* proxy_conn relays one client connection; when armed, a reply from telemd ends it instead. */
static void proxy_conn(struct proxy *p, int cfd)
{
    int ufd = connect_port(p->upstream_port);
    if (ufd < 0) {
        close(cfd);
        return;
    }
    struct pollfd pf[2] = {{.fd = cfd, .events = POLLIN}, {.fd = ufd, .events = POLLIN}};
    while (!atomic_load(&p->stop)) {
        if (poll(pf, 2, 100) <= 0)
            continue;
        if (pf[0].revents && !forward(cfd, ufd))
            break;
        if (pf[1].revents) {
            if (atomic_load(&p->cut_armed)) {
                char peek[16] = {0};
                recv(ufd, peek, sizeof(peek) - 1, MSG_PEEK);
                if (strncmp(peek + 8, " 204", 4) == 0) {
                    atomic_store(&p->cut_armed, false);
                    atomic_fetch_add(&p->cuts, 1);
                    break; /* telemd stored the batch; the client never hears of it */
                }
            }
            if (!forward(ufd, cfd))
                break;
        }
    }
    close(ufd);
    close(cfd);
}

static void *proxy_main(void *arg)
{
    struct proxy *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf = {.fd = p->listen_fd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        int cfd = accept(p->listen_fd, NULL, NULL);
        if (cfd < 0)
            continue;
        atomic_fetch_add(&p->requests, 1);
        proxy_conn(p, cfd);
    }
    return NULL;
}

static int proxy_start(struct proxy *p, int upstream_port)
{
    memset(p, 0, sizeof(*p));
    p->upstream_port = upstream_port;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(p->listen_fd, (struct sockaddr *)&sa, &len);
    listen(p->listen_fd, 16);
    pthread_create(&p->thread, NULL, proxy_main, p);
    return ntohs(sa.sin_port);
}

static void proxy_stop(struct proxy *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
}

/* cut_once sends n metrics through the proxy with one reply swallowed; restart in between. */
static void cut_once(bool restart)
{
    struct telemd d = {0};
    telemd_start(&d);
    struct proxy p;
    int port = proxy_start(&p, d.port);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
    const char *profile = restart ? "cut-restart" : "cut";
    struct telem *t = open_client(endpoint, profile, TELEM_FULL_BLOCK, 10000);

    /* A first batch, delivered normally, so the cut batch is not the producer's first. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(telem_metric(t, "m", i, 1700000000000000000LL + i), TELEM_OK);
    assert_int_equal(telem_flush(t, 20000), TELEM_OK);

    atomic_store(&p.cut_armed, true);
    for (int i = 100; i < 1100; i++)
        assert_int_equal(telem_metric(t, "m", i, 1700000000000000000LL + i), TELEM_OK);
    if (restart) {
        /* Wait for the cut, then kill telemd before the retry can reach it, and restart. */
        double until = now_s() + 20;
        while (atomic_load(&p.cuts) == 0 && now_s() < until)
            usleep(1000);
        assert_int_equal(atomic_load(&p.cuts), 1);
        telemd_stop(&d, SIGKILL);
        telemd_start(&d);
    }
    assert_int_equal(telem_flush(t, 60000), TELEM_OK);
    assert_int_equal(atomic_load(&p.cuts), 1);
    struct telem_stats st;
    telem_stats(t, &st);
    printf("# cut%s: acked %llu, retries %llu, reconnects %llu\n", restart ? " + restart" : "",
           (unsigned long long)st.acked, (unsigned long long)st.retries,
           (unsigned long long)st.reconnects);
    assert_true(st.retries >= 1);
    assert_int_equal(st.acked, 1100);
    assert_int_equal(telem_close(t, 10000), TELEM_OK);
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM aggregated_metric WHERE profile_id = '%s'",
             profile);
    assert_int_equal(wait_count(&d, sql, 1100, 60), 1100);
    usleep(500000); /* a doubled batch would land by now */
    assert_int_equal(db_count(&d, sql), 1100);
    proxy_stop(&p);
    telemd_cleanup(&d);
}

static void test_cut_after_store(void **state)
{
    (void)state;
    cut_once(false);
}

static void test_cut_after_store_restart(void **state)
{
    (void)state;
    cut_once(true);
}

/* ---- a batch telemd refuses ---------------------------------------------------------------- */

static void test_rejected_batch(void **state)
{
    (void)state;
    struct telemd d = {0};
    telemd_start(&d);
    /*
     * libtelem checks every record, so the batch telemd refuses here is one with a wrong token
     * (401): it must be counted rejected, logged, and not block the batches after it.
     */
    telemd_stop(&d, SIGTERM);
    setenv("TELEM_TOKEN", "right-token", 1);
    telemd_start(&d);
    unsetenv("TELEM_TOKEN");
    struct telem_options opt = {.endpoint = d.endpoint_unix,
                                .profile = "auth",
                                .token = "wrong-token",
                                .flush_interval_ms = 20};
    struct telem *t = telem_open(&opt, NULL);
    assert_non_null(t);
    assert_int_equal(telem_metric(t, "x", 1, 0), TELEM_OK);
    assert_int_equal(telem_flush(t, 20000), TELEM_OK);
    struct telem_stats st;
    telem_stats(t, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.acked, 0);
    assert_int_equal(st.last_error, TELEM_EAUTH);
    telem_close(t, 1000);

    opt.token = "right-token";
    t = telem_open(&opt, NULL);
    assert_non_null(t);
    assert_int_equal(telem_metric(t, "x", 2, 0), TELEM_OK);
    assert_int_equal(telem_flush(t, 20000), TELEM_OK);
    telem_stats(t, &st);
    assert_int_equal(st.acked, 1);
    telem_close(t, 1000);
    telemd_cleanup(&d);
}

/* ---- bad records never leave the caller ---------------------------------------------------- */

static void test_invalid_at_call(void **state)
{
    (void)state;
    struct telem_open_error err;
    struct telem_options bad = {.endpoint = "unix:/nonexistent/s.sock", .profile = ""};
    assert_null(telem_open(&bad, &err));
    assert_int_equal(err.code, TELEM_EINVAL);
    assert_non_null(strstr(err.msg, "profile"));
    bad.profile = "p";
    bad.endpoint = "ftp://x";
    assert_null(telem_open(&bad, &err));
    assert_non_null(strstr(err.msg, "endpoint"));
    bad.endpoint = "unix:/nonexistent/s.sock";
    bad.producer = "bad producer";
    assert_null(telem_open(&bad, &err));
    assert_non_null(strstr(err.msg, "producer"));

    bad.producer = NULL;
    struct telem *t = telem_open(&bad, &err);
    assert_non_null(t);
    struct telem_trade tr = {.symbol = "A\nB"};
    assert_int_equal(telem_trade(t, &tr), TELEM_EINVAL);
    assert_non_null(strstr(telem_errmsg(), "symbol"));
    tr.symbol = "AB";
    tr.pnl = 0.0 / 0.0;
    assert_int_equal(telem_trade(t, &tr), TELEM_EINVAL);
    assert_non_null(strstr(telem_errmsg(), "pnl"));
    struct telem_stats st;
    telem_stats(t, &st);
    assert_int_equal(st.invalid, 2);
    assert_int_equal(st.accepted, 0);
    assert_int_equal(telem_close(t, 100), TELEM_OK);
}

int main(void)
{
    /* SIGPIPE keeps its default action: libtelem must never raise it (MSG_NOSIGNAL). */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_at_call),         cmocka_unit_test(test_cut_after_store),
        cmocka_unit_test(test_cut_after_store_restart), cmocka_unit_test(test_drop_counts),
        cmocka_unit_test(test_rejected_batch),          cmocka_unit_test(test_kill_restart_block),
        cmocka_unit_test(test_threads_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
