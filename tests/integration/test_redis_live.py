"""test_redis_live.py: Redis live state end to end through telemd, checked against SQL.

telemd runs with two sinks, SQLite and Redis, on a redis-server this test starts itself (a free
loopback port, its own folder, appendonly with fsync always; stopped by pid), so it can be
stopped and restarted at will. Several threads send a randomized load of trades and metrics
over many profiles. Afterwards every live total in Redis must equal, bit for bit, the total
computed here from the SQLite rows in sequence order with the same floating-point operations
as the sink's script (the `Model` below), whatever happened in between:
  - plain load;
  - telemd killed with SIGKILL mid-load and restarted;
  - Redis stopped for TELEM_REDIS_OUTAGE_S (default 30) seconds under load, then restarted;
  - Redis flushed (FLUSHALL) under load: the sink rebuilds from SQLite by itself.

Standard library only (a small RESP client is below), like the other integration tests. The
random seed is printed; TELEM_REDIS_LIVE_SEED replays it.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import TelemdTestCase, free_port

OUTAGE_S = float(os.environ.get("TELEM_REDIS_OUTAGE_S", "30"))
PREFIX = "live:"
STARTING_EQUITY = 1000.0
PROFILES = 40


class RespError(Exception):
    pass


class Resp:
    """A minimal blocking Redis client: enough for GET, HGETALL, SMEMBERS, FLUSHALL, PING."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError("bad reply %r" % line)

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def hgetall(self, key):
        flat = self.command("HGETALL", key)
        return dict(zip(flat[0::2], flat[1::2]))


class RedisServer:
    """A redis-server of this test's own, on a free port and in its own folder."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="telem-redis-live-")
        self.port = free_port()
        self.proc = None

    def start(self, timeout=30):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                c = Resp(self.port, timeout=1)
                try:
                    if c.command("PING") == "PONG":
                        return
                finally:
                    c.close()
            except (OSError, RespError, ConnectionError):
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server did not start; see %s/redis.log" % self.dir)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self):
        return Resp(self.port)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Model:
    """The live state computed from SQL rows, with apply.lua's operations in its order."""

    def __init__(self, starting_equity):
        self.start = starting_equity
        self.totals = {}
        self.metrics = {}

    def trade(self, profile, pnl, fees, closed_at):
        t = self.totals.get(profile)
        if t is None:
            t = self.totals[profile] = dict(
                trades=0.0, wins=0.0, losses=0.0, gross_pnl=0.0, fees=0.0, gross_win=0.0,
                gross_loss=0.0, peak_equity=self.start, max_drawdown=0.0, last_trade_at=0.0)
        pnl = 0.0 if pnl is None else pnl
        fees = 0.0 if fees is None else fees
        t["trades"] += 1
        if pnl > 0:
            t["wins"] += 1
            t["gross_win"] += pnl
        elif pnl < 0:
            t["losses"] += 1
            t["gross_loss"] -= pnl
        t["gross_pnl"] += pnl
        t["fees"] += fees
        equity = self.start + (t["gross_pnl"] - t["fees"])
        if equity > t["peak_equity"]:
            t["peak_equity"] = equity
        if t["peak_equity"] - equity > t["max_drawdown"]:
            t["max_drawdown"] = t["peak_equity"] - equity
        if closed_at > t["last_trade_at"]:
            t["last_trade_at"] = float(closed_at)

    def metric(self, profile, name, value, ts):
        m = self.metrics.setdefault(profile, {})
        if name not in m or ts >= m[name][1]:
            m[name] = (value, ts)

    def expected_hash(self, profile):
        t = self.totals[profile]
        out = dict(t)
        out["net_pnl"] = t["gross_pnl"] - t["fees"]
        out["equity"] = self.start + out["net_pnl"]
        out["win_rate"] = t["wins"] / t["trades"]
        out["profit_factor"] = t["gross_win"] / t["gross_loss"] if t["gross_loss"] > 0 else None
        return out


class Load:
    """Sender threads posting random trades and metrics until stopped; errors are retried."""

    def __init__(self, daemon, rng, threads=4, lines=150):
        self.daemon = daemon
        self.stop_flag = threading.Event()
        self.sent = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(random.Random(rng.random()),
                                                                  lines), daemon=True)
                        for _ in range(threads)]

    def body(self, rng, lines):
        out = []
        now = time.time_ns()
        for _ in range(lines):
            profile = "lp%d" % rng.randrange(PROFILES)
            ts = now + rng.randrange(-3_000_000_000, 3_000_000_000)
            if rng.random() < 0.6:
                qty = rng.randrange(1, 50)
                entry = rng.uniform(50, 150)
                exit_ = entry * rng.uniform(0.98, 1.02)
                pnl = (exit_ - entry) * qty
                fields = "qty=%d,entry_price=%r,exit_price=%r,pnl=%r,fees=%r" % (
                    qty, entry, exit_, pnl, rng.uniform(0, 0.3))
                out.append("trade,profile=%s,script=s%d,symbol=SYM%d,side=%s %s %d" % (
                    profile, rng.randrange(3), rng.randrange(5), rng.choice(("buy", "sell")),
                    fields, ts))
            else:
                out.append("risk,profile=%s,script=s%d exposure=%r,var=%r %d" % (
                    profile, rng.randrange(3), rng.uniform(-1e4, 1e4), rng.uniform(0, 100), ts))
        return "\n".join(out)

    def run(self, rng, lines):
        while not self.stop_flag.is_set():
            try:
                reply = self.daemon.write(self.body(rng, lines))
                if reply.status == 204:
                    with self.lock:
                        self.sent += lines
                else:
                    time.sleep(0.05)
            except OSError:
                time.sleep(0.1)  # telemd restarting

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(60)


class RedisLiveTest(TelemdTestCase):

    def setUp(self):
        super().setUp()
        if not shutil.which("redis-server"):
            raise AssertionError("redis-server is not installed (scripts/install-deps.sh)")
        seed = int(os.environ.get("TELEM_REDIS_LIVE_SEED", str(time.time_ns() % 1_000_000)))
        print("\nredis live seed %d (TELEM_REDIS_LIVE_SEED=%d replays it)" % (seed, seed))
        self.rng = random.Random(seed)
        self.redis = RedisServer()
        self.redis.start()

    def tearDown(self):
        super().tearDown()
        self.redis.close()

    def daemon(self):
        config = (
            "[sink.main]\nurl = sqlite:telem.db\n\n"
            "[sink.live]\nurl = redis://127.0.0.1:%d/0\nprefix = %s\nstarting_equity = %r\n"
            "stream_maxlen = 100\nretry_max_ms = 1000\n" % (self.redis.port, PREFIX,
                                                            STARTING_EQUITY))
        return self.telemd(config=config)

    def model_from_sql(self, d):
        m = Model(STARTING_EQUITY)
        trades = d.sql("SELECT seq, profile_id, pnl, fees, closed_at FROM trade_performance")
        metrics = d.sql("SELECT seq, profile_id, name, value, ts FROM aggregated_metric")
        rows = [(r[0], "T", r) for r in trades] + [(r[0], "M", r) for r in metrics]
        rows.sort(key=lambda x: x[0])
        for _, kind, r in rows:
            if kind == "T":
                m.trade(r[1], r[2], r[3], r[4])
            else:
                m.metric(r[1], r[2], r[3], r[4])
        return m, len(rows)

    def wait_caught_up(self, d, timeout=180):
        """Waits until both sinks have written everything the spool holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mx = d.metrics()
            lag = sum(v for k, v in mx.items()
                      if k.startswith("telem_sink_lag_records{"))
            if lag == 0:
                return
            time.sleep(0.2)
        raise AssertionError("sinks did not catch up: %s" % {
            k: v for k, v in d.metrics().items() if k.startswith("telem_sink_lag")})

    def mismatches(self, d):
        model, nrows = self.model_from_sql(d)
        r = self.redis.client()
        bad = []
        try:
            for profile in sorted(model.totals):
                live = r.hgetall(PREFIX + "profile:" + profile)
                for field, want in model.expected_hash(profile).items():
                    got = live.get(field)
                    if want is None:
                        if got not in ("", None):
                            bad.append("%s.%s: live %r, want empty" % (profile, field, got))
                    elif got is None or float(got) != want:
                        bad.append("%s.%s: live %r != sql %r" % (profile, field, got, want))
            for profile, names in model.metrics.items():
                live = r.hgetall(PREFIX + "metrics:" + profile)
                for name, (value, ts) in names.items():
                    got = live.get(name)
                    if got is None or float(got) != value or float(live.get(name + "@ts")) != ts:
                        bad.append("%s metric %s: live %r@%r != sql %r@%r" % (
                            profile, name, got, live.get(name + "@ts"), value, ts))
            members = set(r.command("SMEMBERS", PREFIX + "profiles"))
            want = set(model.totals) | set(model.metrics)
            if members != want:
                bad.append("profiles set: %d live, %d in sql" % (len(members), len(want)))
        finally:
            r.close()
        return bad, nrows

    def assert_exact(self, d, min_rows=1000):
        self.wait_caught_up(d)
        bad, nrows = self.mismatches(d)
        self.assertGreaterEqual(nrows, min_rows, "too few rows to mean anything")
        self.assertEqual(bad[:20], [], "%d mismatches over %d rows" % (len(bad), nrows))
        return nrows

    def test_live_totals_equal_sql(self):
        d = self.daemon()
        load = Load(d, self.rng).start()
        time.sleep(4)
        load.stop()
        nrows = self.assert_exact(d)
        # The stream of one profile holds its most recent trades, capped near stream_maxlen.
        r = self.redis.client()
        try:
            n = r.command("XLEN", PREFIX + "trades:lp1")
            self.assertTrue(0 < n < 400, n)
        finally:
            r.close()
        print("live state exact over %d rows" % nrows)

    def test_sigkill_mid_load(self):
        d = self.daemon()
        load = Load(d, self.rng).start()
        for _ in range(2):
            time.sleep(self.rng.uniform(1.5, 3.0))
            d.kill()
            time.sleep(self.rng.uniform(0.0, 0.5))
            d.start()
        time.sleep(1.5)
        load.stop()
        self.assert_exact(d)

    def test_redis_outage_under_load(self):
        d = self.daemon()
        load = Load(d, self.rng).start()
        time.sleep(2)
        self.redis.stop()
        outage_start = time.monotonic()
        before = d.rows()
        time.sleep(min(5.0, OUTAGE_S))
        mx = d.metrics()
        self.assertEqual(mx.get('telem_sink_up{sink="live"}'), 0.0, "redis sink still up")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_start)))
        self.assertGreater(d.rows(), before, "the SQL sink stalled while Redis was down")
        self.redis.start()
        time.sleep(2)
        load.stop()
        self.assert_exact(d)

    def test_flushall_rebuilds(self):
        d = self.daemon()
        load = Load(d, self.rng).start()
        time.sleep(2)
        r = self.redis.client()
        try:
            r.command("FLUSHALL")
        finally:
            r.close()
        time.sleep(2)
        load.stop()
        self.assert_exact(d)
        mx = d.metrics()
        self.assertGreaterEqual(mx.get('telem_redis_rebuilds_total{sink="live"}', 0), 1)


if __name__ == "__main__":
    unittest.main()
