"""test_mariadb_e2e.py: telemd with a MariaDB sink, end to end against real servers.

The checks of issue 3's "Done when": an exact round trip of trades and metrics through HTTP;
telemd killed with SIGKILL under load and restarted, then an exact count with no duplicates;
MariaDB stopped for 30 s under load and restarted, telemd acknowledging from its spool all the
while and catching up afterwards; a client retrying a batch with trade_ids creating no second
trade; and 300 concurrent HTTP senders using no more server connections than the sink's pool.

The round-trip, crash and retry tests use the shared throwaway server that scripts/test.sh
starts (TELEM_TEST_MARIADB_SOCKET, _USER, _PASSWORD: they must be set). The stop/restart and
connection-count tests start their own mariadbd (OwnMariadb), so stopping it or resetting its
status counters disturbs nobody else. Every test works in a fresh database telem_e2e_<random>,
dropped afterwards. Lines carry ids unique over the run (sender.py), and the store is read
back with pymysql (python3-pymysql). TELEM_CRASH_SEED replays the crash test's kill times.
"""

import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import pymysql

from harness import TelemdTestCase, free_port, telemctl_path
from sender import Sender, run_senders

POOL_SIZE = 4  # the MariaDB sink's default pool_size
EPOCH = datetime.datetime(1970, 1, 1)


# The servers.

def shared_server():
    """Returns (socket, user, password) of the shared test server; fails loudly when unset."""
    names = ("TELEM_TEST_MARIADB_SOCKET", "TELEM_TEST_MARIADB_USER", "TELEM_TEST_MARIADB_PASSWORD")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise AssertionError(
            "%s not set: start a throwaway server with scripts/test-services.sh start DIR and "
            "source what it prints (scripts/test.sh does this)" % ", ".join(missing))
    return tuple(os.environ[n] for n in names)


def connect(sock, user, password, db=None):
    return pymysql.connect(unix_socket=sock, user=user, password=password, database=db,
                           autocommit=True, connect_timeout=10)


class OwnMariadb:
    """A private mariadbd (the start logic of scripts/test-services.sh) that a test may stop
    and restart on the same data folder and socket. Stopped by the pid this class started."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="telem-e2e-mariadb-")
        self.datadir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.port = free_port()
        self.proc = None
        log = os.path.join(self.dir, "install.log")
        with open(log, "wb") as out:
            rc = subprocess.call(["mariadb-install-db", "--no-defaults", "--datadir=" + self.datadir,
                                  "--user=root", "--auth-root-authentication-method=socket",
                                  "--skip-test-db"], stdout=out, stderr=subprocess.STDOUT)
        if rc != 0:
            with open(log) as f:
                raise AssertionError("mariadb-install-db failed:\n" + f.read()[-3000:])
        self.start()
        root = pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)
        try:
            with root.cursor() as c:
                c.execute("CREATE USER IF NOT EXISTS 'telem'@'localhost' IDENTIFIED BY 'telem'")
                c.execute("GRANT ALL ON *.* TO 'telem'@'localhost'")
        finally:
            root.close()

    def start(self, timeout=60):
        assert self.proc is None or self.proc.poll() is not None, "mariadbd already running"
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=root", "--datadir=" + self.datadir,
             "--socket=" + self.socket, "--port=%d" % self.port, "--bind-address=127.0.0.1",
             "--pid-file=" + os.path.join(self.dir, "mysqld.pid"),
             "--log-error=" + os.path.join(self.dir, "error.log"),
             "--innodb-flush-log-at-trx-commit=1", "--innodb-buffer-pool-size=256M",
             "--max-connections=1000", "--skip-name-resolve", "--max-allowed-packet=256M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("mariadbd exited with %d:\n%s"
                                     % (self.proc.returncode, self.error_log()))
            try:
                pymysql.connect(unix_socket=self.socket, user="root").close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("mariadbd did not start:\n" + self.error_log())

    def stop(self, timeout=60):
        """SIGTERM to the server's pid, then waits (SIGKILL after timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return "(no error log)"

    def credentials(self):
        return self.socket, "telem", "telem"


# The store.

class Store:
    """A fresh database on a server, with the test's one connection to it."""

    def __init__(self, sock, user, password):
        self.sock, self.user, self.password = sock, user, password
        self.db = "telem_e2e_" + uuid.uuid4().hex[:12]
        conn = connect(sock, user, password)
        with conn.cursor() as c:
            c.execute("CREATE DATABASE `%s`" % self.db)
        conn.select_db(self.db)
        self.conn = conn

    def url(self):
        return "mariadb://%s@localhost/%s?socket=%s" % (self.user, self.db, self.sock)

    def telemd_kwargs(self):
        return {"args": ["--sink", self.url()], "env": {"TELEM_MARIADB_PASSWORD": self.password}}

    def query(self, sql, params=None, retry_for=30.0):
        """Runs sql and returns every row; reconnects (for up to retry_for s) if the server
        went away, and treats absent tables (the sink has not migrated yet) as no rows."""
        deadline = time.monotonic() + retry_for
        while True:
            try:
                if not self.conn.open:
                    self.conn = connect(self.sock, self.user, self.password, self.db)
                with self.conn.cursor() as c:
                    c.execute(sql, params)
                    return c.fetchall()
            except pymysql.err.ProgrammingError as e:
                if e.args and e.args[0] == 1146:  # no such table
                    return ()
                raise
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
                try:
                    self.conn.close()
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def count(self, table, where="1", params=None):
        rows = self.query("SELECT COUNT(*) FROM %s WHERE %s" % (table, where), params, 30)
        return rows[0][0] if rows else 0

    def sender_rows(self):
        return (self.count("aggregated_metric", "name LIKE 'ct.%%'") +
                self.count("trade_performance", "trade_id IS NOT NULL"))

    def wait_count(self, counter, expected, timeout=120, quiet=2.0):
        """Waits until counter() reaches expected and then stays put for quiet seconds."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = counter()
            if n != last:
                last, since = n, time.monotonic()
            elif n >= expected and time.monotonic() - since >= quiet:
                return n
            time.sleep(0.2)
        return last

    def stored_ids(self):
        """Returns {id: times stored} over the sender.py lines of both tables."""
        counts = {}
        for (name,) in self.query("SELECT name FROM aggregated_metric WHERE name LIKE 'ct.%%'"):
            uid = name[3:]
            counts[uid] = counts.get(uid, 0) + 1
        for (tid,) in self.query("SELECT trade_id FROM trade_performance "
                                 "WHERE trade_id IS NOT NULL"):
            counts[tid] = counts.get(tid, 0) + 1
        return counts

    def duplicates(self):
        """Rows stored more than once, by the sender's unique id (SQL GROUP BY)."""
        return (self.query("SELECT name, COUNT(*) FROM aggregated_metric WHERE name LIKE 'ct.%%' "
                           "GROUP BY name HAVING COUNT(*) > 1 LIMIT 20") +
                self.query("SELECT profile_id, trade_id, COUNT(*) FROM trade_performance "
                           "WHERE trade_id IS NOT NULL GROUP BY profile_id, trade_id "
                           "HAVING COUNT(*) > 1 LIMIT 20"))

    def close(self, drop=True):
        try:
            if drop:
                self.query("DROP DATABASE IF EXISTS `%s`" % self.db, retry_for=10)
        finally:
            try:
                self.conn.close()
            except Exception:
                pass


def dt(ns):
    """The DATETIME(6) a nanosecond time is stored as: UTC, floored to microseconds."""
    return EPOCH + datetime.timedelta(microseconds=ns // 1000)


def wait_sink_up(d, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = d.health()
        if r.status == 200 and r.json()["sinks"]["mariadb"]["up"]:
            return
        time.sleep(0.1)
    raise AssertionError("the MariaDB sink never came up: %r\n%s" % (d.health(), d.logs()))


class PacedSender(Sender):
    """A Sender that pauses between batches, so a long run stays a bounded amount of data."""

    pause = 0.05

    def send_batch(self, batch):
        super().send_batch(batch)
        self.stop_event.wait(self.pause)


def collect(senders):
    acked, unknown, sent, errors = set(), set(), set(), []
    for s in senders:
        acked.update(s.ids_with("acked"))
        unknown.update(s.ids_with("unknown"))
        sent.update(s.sent_ids())
        errors += s.errors
    return acked, unknown, sent, errors


class MariadbTestCase(TelemdTestCase):
    """Each test gets a fresh database on the shared server (or on self.server)."""

    server = None  # an OwnMariadb, set by classes that need their own

    def setUp(self):
        super().setUp()
        creds = self.server.credentials() if self.server else shared_server()
        self.store = Store(*creds)

    def tearDown(self):
        super().tearDown()  # stops the telemds first
        self.store.close()

    def mariadb_telemd(self, **kwargs):
        kw = self.store.telemd_kwargs()
        kw.update(kwargs)
        return self.telemd(**kw)

    def check_exactly_once(self, acked, unknown, sent, label):
        """Every acknowledged id stored, every stored id sent, none twice; returns the count."""
        stored = self.store.stored_ids()
        missing = acked - stored.keys()
        unsent = stored.keys() - sent
        twice = {i: n for i, n in stored.items() if n > 1}
        total = sum(stored.values())
        print("\n%s: %d lines sent, %d acknowledged, %d unanswered, %d rows stored "
              "(%d distinct)" % (label, len(sent), len(acked), len(unknown), total, len(stored)))
        self.assertEqual(sorted(missing)[:20], [], "%d acknowledged lines are not stored"
                         % len(missing))
        self.assertEqual(sorted(unsent)[:20], [], "stored lines that were never sent")
        self.assertEqual(dict(list(twice.items())[:20]), {}, "%d lines stored twice" % len(twice))
        self.assertEqual(list(self.store.duplicates()), [], "GROUP BY finds duplicates")
        self.assertGreaterEqual(total, len(acked))
        self.assertLessEqual(total, len(acked) + len(unknown))
        return total


class RoundTripTest(MariadbTestCase):

    def test_trades_and_metrics_exact(self):
        d = self.mariadb_telemd()
        t0 = 1_795_860_000_123_456_789
        trades = [  # (profile, script, symbol, side, qty, entry, exit, pnl, fees, opened, closed, id)
            ("p-a", "s1", "BTCUSD", "buy", 1.5, 100.25, 101.125, 0.9375, 0.01,
             t0 - 60_000_000_000, t0, "t-1"),
            ("p-a", "s2", "ETHUSD", "sell", 0.1, 0.3, 1e-300, -123456.789012345, 2.5e-7,
             t0 - 999, t0 + 1_999, "t-2"),
            ("p-b", "s1", "EURUSD", "buy", 123456789.0, 1.0850000000000002, 1.0849999999999999,
             -3.14159265358979, 0.0, -1, t0 + 2_000_001, "t-\u00e9\"3"),
        ]
        lines = []
        for p, s, sym, side, qty, en, ex, pnl, fees, opened, closed, tid in trades:
            lines.append('trade,profile=%s,script=%s,symbol=%s,side=%s qty=%r,entry_price=%r,'
                         'exit_price=%r,pnl=%r,fees=%r,opened_at=%di,trade_id="%s" %d'
                         % (p, s, sym, side, qty, en, ex, pnl, fees, opened,
                            tid.replace('"', '\\"'), closed))
        metrics = {  # name -> (profile, script, value, ts)
            "strategy.equity": ("p-a", "s1", 10000.125, t0 + 5),
            "strategy.drawdown": ("p-a", "s1", -0.1, t0 + 5),
            "strategy.trades": ("p-a", "s1", 42.0, t0 + 5),
            "risk.var": ("p-b", "s3", 1.7976931348623157e308, t0 + 3_000_999),
            "risk.tiny": ("p-b", "s3", 5e-324, t0 + 3_000_999),
        }
        lines.append("strategy,profile=p-a,script=s1 equity=10000.125,drawdown=-0.1,trades=42i %d"
                     % (t0 + 5))
        lines.append("risk,profile=p-b,script=s3 var=1.7976931348623157e308,tiny=5e-324 %d"
                     % (t0 + 3_000_999))
        r = d.write("\n".join(lines) + "\n")
        self.assertEqual(r.status, 204, r)

        n = self.store.wait_count(lambda: self.store.count("trade_performance") +
                                  self.store.count("aggregated_metric"), 8, timeout=60, quiet=1.0)
        self.assertEqual(n, 8, d.logs())
        got = {row[-1]: row for row in self.store.query(
            "SELECT profile_id, script, symbol, side, qty, entry_price, exit_price, pnl, fees, "
            "opened_at, closed_at, trade_id FROM trade_performance")}
        self.assertEqual(len(got), len(trades))
        for p, s, sym, side, qty, en, ex, pnl, fees, opened, closed, tid in trades:
            self.assertEqual(got[tid], (p, s, sym, side, qty, en, ex, pnl, fees, dt(opened),
                                        dt(closed), tid))
        # DATETIME(6) keeps microseconds and floors: 1 us below t0's, and before 1970.
        self.assertEqual(got["t-2"][9].microsecond, 123455)
        self.assertEqual(got["t-\u00e9\"3"][9], datetime.datetime(1969, 12, 31, 23, 59, 59, 999999))

        got_m = {row[2]: row for row in self.store.query(
            "SELECT profile_id, script, name, value, ts FROM aggregated_metric")}
        self.assertEqual(len(got_m), len(metrics))
        for name, (p, s, value, ts) in metrics.items():
            self.assertEqual(got_m[name], (p, s, name, value, dt(ts)))
        # One spool sequence number per record, keyed with the spool id.
        keys = self.store.query("SELECT spool_id, seq FROM trade_performance UNION ALL "
                                "SELECT spool_id, seq FROM aggregated_metric")
        self.assertEqual(len(set(keys)), 8)
        print("\nround trip: %d trades and %d metrics read back exactly"
              % (len(got), len(got_m)))
        self.assertEqual(d.stop(), 0, d.logs())


class KillUnderLoadTest(MariadbTestCase):

    KILLS = 3
    SENDERS = 6
    UNTAGGED = 1  # senders without Telem-Batch (index 0): unanswered batches may or may not land

    def test_sigkill_during_mariadb_load(self):
        seed = int(os.environ.get("TELEM_CRASH_SEED", str(time.time_ns() % 1_000_000)))
        print("\nmariadb crash test seed %d (TELEM_CRASH_SEED=%d replays it)" % (seed, seed))
        rng = random.Random(seed)
        d = self.mariadb_telemd()
        wait_sink_up(d)

        stop = threading.Event()
        senders = [PacedSender(d, i, stop=stop, lines=200, trade_every=3)
                   for i in range(self.SENDERS)]
        for s in senders:
            s.pause = 0.02
            s.batch_header = s.index >= self.UNTAGGED
            s.start()
        try:
            for _ in range(self.KILLS):
                time.sleep(rng.uniform(2.0, 4.0))
                d.kill()
                time.sleep(rng.uniform(0.0, 0.5))
                d.start()
            time.sleep(rng.uniform(1.0, 2.0))
        finally:
            stop.set()
            for s in senders:
                s.join(180)
        self.assertFalse(any(s.is_alive() for s in senders), "a sender did not finish")
        acked, unknown, sent, errors = collect(senders)
        self.assertEqual(errors, [], "senders got unexpected answers")
        self.assertGreater(len(acked), 5000, "too little was acknowledged to mean anything")

        n = self.store.wait_count(self.store.sender_rows, len(acked), timeout=120)
        self.assertGreaterEqual(n, len(acked), d.logs())
        total = self.check_exactly_once(acked, unknown, sent, "mariadb kill -9 x%d" % self.KILLS)
        self.assertGreater(total, 0)
        for s in senders[self.UNTAGGED:]:
            open_batches = [b for b, e in s.batches.items() if e["status"] != "acked"]
            self.assertEqual(open_batches, [], "sender %d: batches never acknowledged" % s.index)
        retried = sum(1 for s in senders for e in s.batches.values() if e["attempts"] > 1)
        broken = sum(1 for s in senders[:self.UNTAGGED] for e in s.batches.values()
                     if e["status"] == "unknown")
        print("mariadb kill -9: %d batches retried, %d untagged batches unanswered"
              % (retried, broken))
        self.assertGreater(retried + broken, 0, "no kill interrupted a request")
        self.assertEqual(d.stop(), 0, d.logs())


class ServerStoppedTest(MariadbTestCase):

    STOPPED_S = 30

    @classmethod
    def setUpClass(cls):
        cls.server = OwnMariadb()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_mariadb_stopped_30s_under_load(self):
        d = self.mariadb_telemd()
        wait_sink_up(d)
        stop = threading.Event()
        senders = [PacedSender(d, i, stop=stop, lines=100, trade_every=2) for i in range(4)]
        for s in senders:
            s.pause = 0.1
            s.start()
        health = []  # (status, up) seen while the server was stopped
        try:
            time.sleep(3)
            self.server.stop()
            acked_at_stop = len(collect(senders)[0])
            t_end = time.monotonic() + self.STOPPED_S
            while time.monotonic() < t_end:
                r = d.health()
                health.append((r.status, r.json()["sinks"]["mariadb"]["up"]))
                time.sleep(0.5)
            acked_while_down = len(collect(senders)[0]) - acked_at_stop
            self.server.start()
            time.sleep(3)
        finally:
            stop.set()
            for s in senders:
                s.join(180)
        acked, unknown, sent, errors = collect(senders)
        self.assertEqual(errors, [], "senders got unexpected answers")
        down = sum(1 for status, up in health if status == 503 or not up)
        print("\nmariadb stopped %ds: %d lines acknowledged while it was down; /health said "
              "the sink was down in %d of %d polls"
              % (self.STOPPED_S, acked_while_down, down, len(health)))
        self.assertGreater(acked_while_down, 1000, "telemd stopped acknowledging")
        self.assertGreater(down, len(health) // 2, "/health did not show the sink down: %r"
                           % health[:10])

        n = self.store.wait_count(self.store.sender_rows, len(acked), timeout=120)
        self.assertGreaterEqual(n, len(acked), d.logs())
        self.assertEqual(unknown, set(), "tagged senders left batches unanswered")
        total = self.check_exactly_once(acked, unknown, sent, "mariadb stopped and restarted")
        self.assertEqual(total, len(acked))
        r = d.health()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["sinks"]["mariadb"]["up"])
        self.assertEqual(d.stop(), 0, d.logs())


class TradeRetryTest(MariadbTestCase):

    TS = 1_795_860_000_000_000_000

    def settle(self, d, tag):
        """Sends a marker and waits for it: the sink has passed everything sent before."""
        self.assertEqual(d.write("mark,profile=px,script=s %s=1i %d\n" % (tag, self.TS)).status,
                         204)
        n = self.store.wait_count(lambda: self.store.count(
            "aggregated_metric", "name = %s", ("mark." + tag,)), 1, timeout=60, quiet=0.5)
        self.assertEqual(n, 1, d.logs())

    def test_retried_batch_with_trade_ids_stored_once(self):
        d = self.mariadb_telemd()
        trades = "".join('trade,profile=p%d,script=s,symbol=BTCUSD,side=buy qty=1,'
                         'entry_price=100,exit_price=101,pnl=1,fees=0.01,trade_id="rt-%d" %d\n'
                         % (i % 3, i, self.TS + i) for i in range(30))
        extra = "".join("rm,profile=p%d,script=s v%d=%di %d\n" % (i % 3, i, i, self.TS + i)
                        for i in range(20))
        body = trades + extra
        for unix in (False, False, True):  # the same batch three times, same header
            r = d.write(body, headers={"Telem-Batch": "e2e-retry:1000:1"}, unix=unix)
            self.assertEqual(r.status, 204, r)
        self.settle(d, "one")
        self.assertEqual(self.store.count("trade_performance"), 30)
        self.assertEqual(self.store.count("aggregated_metric", "name LIKE 'rm.%%'"), 20)

        # A new batch number (the header check lets it through), same trade_ids, other times.
        later = trades.replace(" %d\n" % self.TS, " %d\n" % (self.TS + 10**9))
        r = d.write(later, headers={"Telem-Batch": "e2e-retry:1000:2"})
        self.assertEqual(r.status, 204, r)
        # And after a restart, with no header at all.
        self.assertEqual(d.stop(), 0, d.logs())
        d.start()
        self.assertEqual(d.write(trades).status, 204)
        self.settle(d, "two")

        self.assertEqual(self.store.count("trade_performance"), 30)
        per_id = self.store.query("SELECT profile_id, trade_id, COUNT(*) FROM trade_performance "
                                  "GROUP BY profile_id, trade_id")
        self.assertEqual(len(per_id), 30)
        self.assertTrue(all(n == 1 for _, _, n in per_id), per_id)
        self.assertEqual(list(self.store.duplicates()), [])
        # The first copy is the one kept.
        first = self.store.query("SELECT closed_at FROM trade_performance WHERE trade_id = 'rt-0'")
        self.assertEqual(first, ((dt(self.TS),),))
        self.assertEqual(self.store.count("aggregated_metric", "name LIKE 'rm.%%'"), 20)
        print("\ntrade retry: 30 trades sent 5 times (3 same header, 1 new header, 1 untagged "
              "after restart): %d rows" % self.store.count("trade_performance"))
        self.assertEqual(d.stop(), 0, d.logs())


class ConnectionCountTest(MariadbTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = OwnMariadb()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def global_status(self, name):
        rows = self.store.query("SHOW GLOBAL STATUS LIKE %s", (name,))
        return int(rows[0][1])

    def test_300_senders_within_pool_size(self):
        telemctl = telemctl_path()
        self.assertIsNotNone(telemctl, "telemctl not found: set TELEMCTL")
        d = self.mariadb_telemd()
        wait_sink_up(d)
        self.store.query("FLUSH STATUS")
        threads_before = self.global_status("Threads_connected")
        out = subprocess.run(
            [telemctl, "loadgen", "--http", "127.0.0.1:%d" % d.port, "--profiles", "100",
             "--scripts", "3", "--batch", "200", "--duration", "10", "--rate", "40000",
             "--json", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr.decode(errors="replace"))
        summary = json.loads(out.stdout)
        acked, prefix = summary["acked"], summary["prefix"]
        self.assertGreater(acked, 0, summary)
        self.assertEqual(summary["rejected"], 0, summary)
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "p%"

        def stored():
            return (self.store.count("trade_performance", "profile_id LIKE %s", (like,)) +
                    self.store.count("aggregated_metric", "profile_id LIKE %s", (like,)))
        n = self.store.wait_count(stored, acked, timeout=120)
        profiles = self.store.query(
            "SELECT COUNT(DISTINCT profile_id) FROM aggregated_metric WHERE profile_id LIKE %s",
            (like,))[0][0]
        max_used = self.global_status("Max_used_connections")
        print("\n300 senders: loadgen acked %d records (%.0f/s, %d requests), %d stored for "
              "%d profiles; Max_used_connections %d (pool_size %d + 1), Threads_connected "
              "before %d" % (acked, summary["records_per_s"], summary["requests"], n, profiles,
                             max_used, POOL_SIZE, threads_before))
        self.assertEqual(n, acked, d.logs())
        self.assertEqual(profiles, 100)
        self.assertLessEqual(max_used, POOL_SIZE + 1)
        self.assertEqual(d.stop(), 0, d.logs())


if __name__ == "__main__":
    unittest.main()
