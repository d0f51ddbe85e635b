"""The Python client against a real telemd (the binary named by $TELEMD), reading back what
telemd's embedded SQLite sink stored (DATA_DIR/telem.db):

  - 8 threads through one client arrive exactly (count per profile, no duplicates);
  - telemd killed (SIGKILL) and restarted twice mid-stream under on_full="block": none lost,
    none doubled;
  - on_full="drop" with a tiny buffer while telemd is down: dropped equals missing;
  - a connection cut after telemd stored a batch but before the client read the 204 (a proxy
    here swallows the reply): the retried metrics-only batch is stored once, also when telemd
    is killed and restarted between the cut and the retry;
  - the compatibility layer (TelemetryStorage, TelemetryManager) stores rows that a query
    returns unchanged.

Run: TELEMD=build/src/daemon/telemd /usr/bin/python3 -m unittest discover -s clients/python/tests
"""

import datetime
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import telem  # noqa: E402
from telem.compat import TelemetryManager, TelemetryStorage  # noqa: E402


def telemd_path():
    path = os.environ.get("TELEMD")
    if not path:
        raise AssertionError("TELEMD is not set: point it at a built telemd, e.g. "
                             "TELEMD=$PWD/build/src/daemon/telemd")
    if not os.access(path, os.X_OK):
        raise AssertionError("TELEMD=%s is not an executable file" % path)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Telemd:
    """One telemd on a temporary data folder, socket and port; stopped by its pid only."""

    def __init__(self, env=None):
        self.dir = tempfile.mkdtemp(prefix="telem-py-it.")
        self.port = free_port()
        self.sock = os.path.join(self.dir, "s.sock")
        self.unix = "unix:" + self.sock
        self.http = "http://127.0.0.1:%d" % self.port
        self.env = env
        self.proc = None

    def start(self):
        out = open(os.path.join(self.dir, "stdout.log"), "w")
        err = open(os.path.join(self.dir, "stderr.log"), "a")
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(
            [telemd_path(), "--data-dir", self.dir, "--http", "127.0.0.1:%d" % self.port,
             "--socket", self.sock], stdout=out, stderr=err, env=env)
        out.close()
        err.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(os.path.join(self.dir, "stdout.log")) as f:
                if any(line.startswith("telemd: listening") for line in f):
                    return self
            if self.proc.poll() is not None:
                raise AssertionError("telemd exited at start; see %s/stderr.log" % self.dir)
            time.sleep(0.02)
        raise AssertionError("telemd did not say it listens within 30 s")

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(60)
        self.proc = None

    def cleanup(self):
        self.stop()
        subprocess.run(["rm", "-rf", self.dir], check=False)

    def query(self, sql, args=()):
        path = os.path.join(self.dir, "telem.db")
        if not os.path.exists(path):
            return None
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return None
        finally:
            db.close()

    def count(self, sql, args=()):
        rows = self.query(sql, args)
        return rows[0][0] if rows else -1

    def wait_count(self, sql, args, want, timeout=120):
        deadline = time.monotonic() + timeout
        n = -1
        while time.monotonic() < deadline:
            n = self.count(sql, args)
            if n == want:
                return n
            time.sleep(0.1)
        return n


class Proxy:
    """TCP relay to telemd that, when armed, swallows the next 204 and cuts the client off."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.endpoint = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.armed = False
        self.cuts = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            r, _, _ = select.select([self.listener], [], [], 0.1)
            if r:
                c, _ = self.listener.accept()
                self._relay(c)

    def _relay(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            c.close()
            return
        try:
            while not self.stop:
                r, _, _ = select.select([c, u], [], [], 0.1)
                if c in r:
                    data = c.recv(65536)
                    if not data:
                        break
                    u.sendall(data)
                if u in r:
                    data = u.recv(65536)
                    if not data:
                        break
                    if self.armed and data[8:12] == b" 204":
                        self.armed = False
                        self.cuts += 1
                        break  # telemd stored the batch; the client never hears of it
                    c.sendall(data)
        except OSError:
            pass
        finally:
            u.close()
            c.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.listener.close()


class IntegrationTest(unittest.TestCase):
    def setUp(self):
        self.d = Telemd().start()

    def tearDown(self):
        self.d.cleanup()

    def test_threads_exact(self):
        threads, per = 8, 25000
        c = telem.Client(self.d.unix, script="it", on_full="block", max_buffered=20000,
                         flush_interval=0.05)

        def feed(k):
            prof = "py-thr-%d" % k
            for i in range(per):
                c.trade("BTC-USD", "buy", 1.0 + i % 5, 100.0 + i * 0.01, 100.5 + i * 0.01,
                        0.5, 0.01, closed_at=1700000000000000000 + i * 1000 + k, profile=prof)

        ts = [threading.Thread(target=feed, args=(k,)) for k in range(threads)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertTrue(c.flush(300))
        elapsed = time.monotonic() - t0
        s = c.stats()
        self.assertTrue(c.close())
        print("\n# python: %d x %d trades acked in %.2f s (%.0f/s)"
              % (threads, per, elapsed, threads * per / elapsed), file=sys.stderr)
        self.assertEqual(s["acked"], threads * per)
        self.assertEqual(s["dropped"], 0)
        for k in range(threads):
            self.assertEqual(self.d.wait_count(
                "SELECT count(*) FROM trade_performance WHERE profile_id = ?",
                ("py-thr-%d" % k,), per), per)
        self.assertEqual(self.d.count("SELECT count(*) FROM (SELECT DISTINCT profile_id, "
                                      "closed_at FROM trade_performance)"), threads * per)

    def test_kill_restart_block(self):
        n = 60000
        c = telem.Client(self.d.http, profile="py-killed", on_full="block",
                         max_buffered=5000, flush_interval=0.05, backoff_max=0.2)
        sent = [0]

        def feed():
            for i in range(n):
                c.metric("seq", float(i), ts=1700000000000000000 + i)
                sent[0] = i + 1
                if i % 500 == 499:
                    time.sleep(0.005)

        t = threading.Thread(target=feed)
        t.start()
        for fraction in (3, 1.5):
            while sent[0] < n / fraction:
                time.sleep(0.001)
            self.d.stop(signal.SIGKILL)
            time.sleep(0.3)
            self.d.start()
        t.join()
        self.assertTrue(c.flush(120))
        s = c.stats()
        self.assertTrue(c.close())
        self.assertEqual(s["acked"], n)
        self.assertEqual(s["dropped"], 0)
        self.assertGreater(s["reconnects"], 1)
        self.assertEqual(self.d.wait_count(
            "SELECT count(*) FROM aggregated_metric WHERE profile_id = 'py-killed'", (), n), n)
        self.assertEqual(self.d.count("SELECT count(DISTINCT value) FROM aggregated_metric "
                                      "WHERE profile_id = 'py-killed'"), n)

    def test_drop_counts(self):
        self.d.stop()
        c = telem.Client(self.d.unix, profile="py-drop", max_buffered=100, batch_max=100,
                         flush_interval=0.05, backoff_max=0.2)
        attempts = 5000
        results = []
        for i in range(attempts):
            results.append(c.metric("x", float(i), ts=1700000000000000000 + i))
            if i == 2000:
                time.sleep(0.2)  # the background thread has tried telemd and keeps a batch
        s = c.stats()
        self.assertEqual(results.count(False), s["dropped"])
        self.assertGreater(s["dropped"], 0)
        self.assertIsNotNone(s["last_error"])
        self.d.start()
        self.assertTrue(c.flush(60))
        self.assertTrue(c.close())
        stored = self.d.wait_count("SELECT count(*) FROM aggregated_metric WHERE profile_id = "
                                   "'py-drop'", (), attempts - s["dropped"], 60)
        self.assertEqual(attempts - stored, s["dropped"])

    def _cut(self, restart):
        proxy = Proxy(self.d.port)
        profile = "py-cut-restart" if restart else "py-cut"
        try:
            c = telem.Client(proxy.endpoint, profile=profile, on_full="block",
                             flush_interval=0.05, backoff_max=0.2)
            for i in range(100):
                c.metric("m", float(i), ts=1700000000000000000 + i)
            self.assertTrue(c.flush(20))
            proxy.armed = True
            for i in range(100, 1100):
                c.metric("m", float(i), ts=1700000000000000000 + i)
            if restart:
                deadline = time.monotonic() + 20
                while proxy.cuts == 0 and time.monotonic() < deadline:
                    time.sleep(0.001)
                self.assertEqual(proxy.cuts, 1)
                self.d.stop(signal.SIGKILL)
                self.d.start()
            self.assertTrue(c.flush(60))
            s = c.stats()
            self.assertTrue(c.close())
            self.assertEqual(proxy.cuts, 1)
            self.assertGreaterEqual(s["retries"], 1)
            self.assertEqual(s["acked"], 1100)
            sql = "SELECT count(*) FROM aggregated_metric WHERE profile_id = ?"
            self.assertEqual(self.d.wait_count(sql, (profile,), 1100, 60), 1100)
            time.sleep(0.5)  # a doubled batch would have landed by now
            self.assertEqual(self.d.count(sql, (profile,)), 1100)
        finally:
            proxy.close()

    def test_cut_after_store(self):
        self._cut(restart=False)

    def test_cut_after_store_restart(self):
        self._cut(restart=True)

    def test_compat_rows_unchanged(self):
        TelemetryStorage.close_shared()
        try:
            storage = TelemetryStorage(endpoint=self.d.unix)
            t0 = datetime.datetime(2024, 3, 1, 12, 0, 0, 123456)
            trades = [("py-compat", "execution", "ETH-USD", "sell" if i % 2 else "buy",
                       0.5 + i, 3000.25 + i / 7, 3010.125 - i / 3, (i - 5) * 1.1, 0.0123 * i,
                       t0 + datetime.timedelta(seconds=i),
                       t0 + datetime.timedelta(seconds=i, microseconds=999))
                      for i in range(10)]
            metrics = [("py-compat", "risk", "exposure.net", -1234.5678 * i,
                        t0 + datetime.timedelta(milliseconds=i)) for i in range(10)]
            storage.store_trade_performance_bulk(trades)
            storage.store_aggregated_metric_bulk(metrics)
            storage.store_trade_performance("py-compat", "execution", "SOL", "buy", 1, 2, 3, 4,
                                            5, t0, t0, trade_id="one-off")
            storage.store_aggregated_metric("py-compat", "risk", "single", 42.0, t0)

            def us(dt):
                return int((dt - datetime.datetime(1970, 1, 1)).total_seconds()) * 1000000 \
                    + dt.microsecond

            self.assertEqual(self.d.wait_count(
                "SELECT count(*) FROM trade_performance WHERE profile_id = 'py-compat'", (),
                11), 11)
            rows = self.d.query(
                "SELECT profile_id, script, symbol, side, qty, entry_price, exit_price, pnl, "
                "fees, opened_at, closed_at FROM trade_performance WHERE profile_id = "
                "'py-compat' AND trade_id IS NULL ORDER BY closed_at")
            want = [r[:9] + (us(r[9]), us(r[10])) for r in trades]
            self.assertEqual([tuple(r) for r in rows], want)
            self.assertEqual(self.d.query(
                "SELECT symbol, trade_id FROM trade_performance WHERE trade_id IS NOT NULL"),
                [("SOL", "one-off")])
            self.assertEqual(self.d.wait_count(
                "SELECT count(*) FROM aggregated_metric WHERE profile_id = 'py-compat'", (),
                11), 11)
            rows = self.d.query(
                "SELECT profile_id, script, name, value, ts FROM aggregated_metric WHERE "
                "profile_id = 'py-compat' AND name = 'exposure.net' ORDER BY ts")
            self.assertEqual([tuple(r) for r in rows],
                             [m[:4] + (us(m[4]),) for m in metrics])

            # The manager: same calls as before; close() delivers everything.
            m = TelemetryManager(storage, batch_size=50, flush_interval_seconds=10.0)
            for i in range(120):
                m.record_trade("py-mgr", "signals", "BTC", "buy", 1.0, 2.0, 3.0, 1.0, 0.1,
                               t0, t0 + datetime.timedelta(microseconds=i))
                m.record_metric("py-mgr", "signals", "win_rate", i / 120, t0)
            with self.assertRaises(telem.InvalidRecord) as cm:
                m.record_metric("py-mgr", "signals", "bad\nname", 1.0)
            self.assertEqual(cm.exception.field, "name")
            m.close()
            self.assertEqual(self.d.wait_count(
                "SELECT count(*) FROM trade_performance WHERE profile_id = 'py-mgr'", (), 120),
                120)
            self.assertEqual(self.d.wait_count(
                "SELECT count(*) FROM aggregated_metric WHERE profile_id = 'py-mgr'", (), 120),
                120)
        finally:
            TelemetryStorage.close_shared()


if __name__ == "__main__":
    unittest.main()
