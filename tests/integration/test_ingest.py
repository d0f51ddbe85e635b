"""test_ingest.py: telemd's front door, end to end: what is accepted is stored exactly, what is
bad is refused with a clear answer and stores nothing, and the daemon stays up.

Each test that needs "nothing was stored" first sends a sentinel line after the refused body
and waits until the sentinel is in the store: the sink has then passed the point where the
refused lines would be, so their absence means something.
"""

import gzip
import json
import os
import shutil
import socket
import stat
import subprocess
import time
import unittest

from harness import TelemdTestCase

TS = 1_795_860_000_123_456_789  # 2026-11-28T10:00:00.123456789Z in ns


class IngestTest(TelemdTestCase):

    def sentinel(self, d, tag, unix=False):
        """Stores one metric `sentinel.<tag>` and waits until the store has it."""
        r = d.write("sentinel,profile=zz %s=1i" % tag, unix=unix)
        self.assertEqual(r.status, 204, r)
        n = d.wait_rows(1, timeout=30, where_trades="0",
                        where_metrics="name = 'sentinel.%s'" % tag)
        self.assertEqual(n, 1, "the sentinel never reached the store:\n" + d.logs())

    def metric_rows(self, d, where="1", params=()):
        return d.sql("SELECT profile_id, script, name, value, ts FROM aggregated_metric WHERE "
                     + where + " ORDER BY seq", params)

    # Accepted data is stored exactly.

    def test_trade_and_metrics_stored_exactly(self):
        d = self.telemd()
        body = (
            "trade,profile=alpha,script=exec,symbol=BTCUSD,side=long qty=0.5,"
            "entry_price=42000.25,exit_price=42100.75,pnl=50.25,fees=1.5,"
            "opened_at=1795859940000000000i,trade_id=\"t-1\" %d\n"
            "equity,profile=alpha,script=risk value=1000.5,exposure=0.25,open=true,"
            "note=\"text is ignored\" %d\n"
            "metric,profile=alpha latency_ms=12i,queue=3u\n" % (TS, TS))
        before = time.time_ns()
        r = d.write(body)
        after = time.time_ns()
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(d.wait_rows(6), 6, d.logs())

        trades = d.sql("SELECT profile_id, script, symbol, side, qty, entry_price, exit_price, "
                       "pnl, fees, opened_at, closed_at, trade_id FROM trade_performance")
        self.assertEqual(trades, [("alpha", "exec", "BTCUSD", "long", 0.5, 42000.25, 42100.75,
                                   50.25, 1.5, 1795859940000000, 1795860000123456, "t-1")])
        metrics = self.metric_rows(d)
        self.assertEqual(metrics[:3], [
            ("alpha", "risk", "equity.value", 1000.5, 1795860000123456),
            ("alpha", "risk", "equity.exposure", 0.25, 1795860000123456),
            ("alpha", "risk", "equity.open", 1.0, 1795860000123456),
        ])
        # `metric` lines are named by the field alone and, without a timestamp, stamped on
        # arrival.
        self.assertEqual([m[2:4] for m in metrics[3:]], [("latency_ms", 12.0), ("queue", 3.0)])
        for m in metrics[3:]:
            self.assertEqual(m[1], "")
            self.assertGreaterEqual(m[4], before // 1000 - 1)
            self.assertLessEqual(m[4], after // 1000 + 1)
        # One sequence number per stored row.
        seqs = [s for (s,) in d.sql("SELECT seq FROM trade_performance UNION ALL "
                                    "SELECT seq FROM aggregated_metric")]
        self.assertEqual(len(set(seqs)), 6)

    def test_precisions_and_v2_endpoint(self):
        d = self.telemd()
        cases = [("s", "1795860000", 1795860000000000), ("ms", "1795860000123", 1795860000123000),
                 ("us", "1795860000123456", 1795860000123456),
                 ("ns", "1795860000123456789", 1795860000123456), ("h", "498850", 1795860000000000)]
        for prec, stamp, want_us in cases:
            r = d.write("p,profile=a %s=1 %s" % (prec, stamp), precision=prec)
            self.assertEqual(r.status, 204, (prec, r))
        r = d.write("p,profile=a v2=2 1795860000", path="/api/v2/write?org=o&bucket=b",
                    precision="s")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(d.wait_rows(len(cases) + 1), len(cases) + 1, d.logs())
        got = dict(d.sql("SELECT name, ts FROM aggregated_metric"))
        for prec, _, want_us in cases:
            self.assertEqual(got["p." + prec], want_us, prec)
        self.assertEqual(got["p.v2"], 1795860000000000)
        r = d.write("p,profile=a x=1", precision="fortnights")
        self.assertEqual(r.status, 400, r)

    def test_unix_socket_mode_and_write(self):
        d = self.telemd()
        mode = stat.S_IMODE(os.stat(d.socket_path).st_mode)
        self.assertTrue(stat.S_ISSOCK(os.stat(d.socket_path).st_mode))
        self.assertEqual(mode, 0o660, "socket mode %o" % mode)
        r = d.write("u,profile=a,script=s x=7i %d" % TS, unix=True)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(d.wait_rows(1), 1)
        self.assertEqual(self.metric_rows(d), [("a", "s", "u.x", 7.0, 1795860000123456)])
        self.assertEqual(d.request("GET", "/ping", unix=True).status, 204)

    def test_gzip_body(self):
        d = self.telemd()
        lines = "".join("gz,profile=g v%d=%d %d\n" % (i, i, TS + i) for i in range(500))
        r = d.write(lines, compress=True)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(d.wait_rows(500), 500, d.logs())
        self.assertEqual(d.sql("SELECT sum(value) FROM aggregated_metric")[0][0],
                         sum(range(500)))
        r = d.write(b"not gzip at all", headers={"Content-Encoding": "gzip"})
        self.assertEqual(r.status, 400, r)

    # Bad input: a clear answer, nothing stored, the daemon stays up.

    def assert_rejected(self, d, body, line, words, status=400):
        r = d.write(body)
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        err = r.json()
        self.assertEqual(err.get("code"), "invalid", err)
        if line is not None:
            self.assertIn("line %d" % line, err["error"], err)
        for w in words:
            self.assertIn(w.lower(), err["error"].lower(), err)
        return err

    def test_bad_line_rejects_whole_body(self):
        d = self.telemd()
        body = ("bad,profile=a good1=1i %d\n"
                "bad,profile=a good2=2i %d\n"
                "this line has no fields\n"
                "bad,profile=a good4=4i %d\n" % (TS, TS, TS))
        err = self.assert_rejected(d, body, 3, [])
        self.assertRegex(err["error"], r"^line 3(, column \d+)?: ")
        self.sentinel(d, "after_bad")
        self.assertEqual(self.metric_rows(d, "name LIKE 'bad.%'"), [])

    def test_each_kind_of_bad_line(self):
        d = self.telemd()
        long_profile = "p" * 65
        cases = [
            ("m,script=x v=1i", 1, ["profile"]),                     # no profile tag
            ("ok,profile=a v=1i\nm,profile=a v=NaN", 2, []),          # NaN is no number
            ("m,profile=a v=1e999", 1, []),                          # infinity
            ("m,profile=%s v=1i" % long_profile, 1, ["profile"]),    # over the column length
            ("trade,profile=a,symbol=X qty=1,pnll=2", 1, ["pnll"]),  # unknown trade field
            ("trade,profile=a qty=\"one\"", 1, ["qty"]),              # wrong type
            ("m,profile=a v=1i notatime", 1, []),                    # bad timestamp
            ("m,profile=a v=\"unterminated", 1, []),                 # open quote
        ]
        for body, line, words in cases:
            with self.subTest(body=body[:40]):
                self.assert_rejected(d, body, line, words)
        # Invalid UTF-8 in a tag value.
        r = d.write(b"m,profile=a\xff\xfe v=1i\n")
        self.assertEqual(r.status, 400, r)
        self.assertIn("line 1", r.json()["error"])
        self.sentinel(d, "after_cases")
        self.assertEqual(d.rows(), 1, self.metric_rows(d))
        self.assertEqual(d.request("GET", "/ping").status, 204)

    def test_limits(self):
        d = self.telemd(config="[telemd]\nbody_max = 65536\nline_max = 1024\n")
        r = d.write("m,profile=a v=1i,pad=\"%s\"\n" % ("x" * 1100))
        self.assertEqual(r.status, 400, r)
        self.assertIn("line 1", r.json()["error"])
        big = "".join("big,profile=a v%d=1i\n" % i for i in range(5000))
        self.assertGreater(len(big), 65536)
        r = d.write(big)
        self.assertEqual(r.status, 413, r)
        # A gzip body that inflates past the limit is refused the same way.
        r = d.write(big, compress=True)
        self.assertLess(len(gzip.compress(big.encode())), 65536)
        self.assertEqual(r.status, 413, r)
        self.sentinel(d, "after_limits")
        self.assertEqual(d.count("aggregated_metric", "name LIKE 'big.%'"), 0)
        self.assertEqual(d.request("GET", "/ping").status, 204)

    def test_client_disconnects_mid_body(self):
        d = self.telemd()
        partial = b"cut,profile=a v=1i\ncut,profile=a w=2i\n"
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + partial)
            s.close()
        # A truncated request line and headers, then gone.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(b"POST /wri")
        s.close()
        self.sentinel(d, "after_cut")
        self.assertEqual(d.count("aggregated_metric", "name LIKE 'cut.%'"), 0)
        self.assertTrue(d.running())

    def test_token(self):
        d = self.telemd(env={"TELEM_TOKEN": "s3cret-token"})
        line = "tok,profile=a v=1i"
        self.assertEqual(d.write(line).status, 401)
        self.assertEqual(d.write(line, headers={"Authorization": "Token wrong"}).status, 401)
        self.assertEqual(d.write(line, headers={"Authorization": "Token s3cret-token"}).status,
                         204)
        self.assertEqual(d.write("tok,profile=a w=2i",
                                 headers={"Authorization": "Bearer s3cret-token"}).status, 204)
        self.assertEqual(d.request("GET", "/ping").status, 204)
        self.assertIn(d.request("GET", "/health").status, (200, 503))
        self.assertEqual(d.request("GET", "/metrics").status, 401)
        self.assertEqual(d.request("GET", "/metrics",
                                   headers={"Authorization": "Token s3cret-token"}).status, 200)
        self.assertEqual(d.wait_rows(2), 2)
        self.assertNotIn("s3cret-token", d.all_stderr())

    # Endpoints for InfluxDB clients and for operators.

    def test_ping(self):
        d = self.telemd()
        for method in ("GET", "HEAD"):
            r = d.request(method, "/ping")
            self.assertEqual(r.status, 204, (method, r))
            self.assertEqual(r.body, b"")

    def test_health(self):
        d = self.telemd()
        r = d.health()
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertIsInstance(doc, dict)
        self.assertIn("sqlite", json.dumps(doc))

    def test_metrics_parse_and_move(self):
        d = self.telemd()
        m0 = d.metrics()
        accepted0 = self.accepted(m0)
        r = d.write("".join("mm,profile=a v%d=1i\n" % i for i in range(250)))
        self.assertEqual(r.status, 204)
        self.assertEqual(d.write("mm,profile=a v=bad").status, 400)
        self.assertEqual(d.wait_rows(250), 250)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m1 = d.metrics()
            if self.rows_written(m1) >= 250:
                break
            time.sleep(0.1)
        self.assertEqual(self.accepted(m1) - accepted0, 250, m1[""])
        self.assertGreaterEqual(self.rejected(m1), 1, m1[""])
        self.assertGreaterEqual(self.rows_written(m1), 250, m1[""])
        promtool = shutil.which("promtool")
        if promtool:
            p = subprocess.run([promtool, "check", "metrics"], input=m1[""].encode(),
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())

    def sample(self, m, key):
        self.assertIn(key, m, "no sample %s in /metrics:\n%s" % (key, m[""]))
        return m[key]

    def accepted(self, m):
        return self.sample(m, 'telem_ingest_records_total{result="accepted"}')

    def rejected(self, m):
        return self.sample(m, 'telem_ingest_records_total{result="rejected"}')

    def rows_written(self, m):
        return self.sample(m, 'telem_sink_rows_total{sink="sqlite"}')

    # Settings.

    def test_default_profile_and_profile_tag(self):
        d = self.telemd(args=["--default-profile", "agents"])
        r = d.write("cpu,host=h1 usage=0.5 %d" % TS)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(d.wait_rows(1), 1)
        self.assertEqual(self.metric_rows(d), [("agents", "", "cpu.usage", 0.5, 1795860000123456)])

        e = self.telemd(config="[telemd]\nprofile_tag = account\n")
        self.assertEqual(e.write("cpu,account=acc7 usage=1 %d" % TS).status, 204)
        self.assertEqual(e.write("cpu,profile=p usage=1").status, 400)
        self.assertEqual(e.wait_rows(1), 1)
        self.assertEqual(e.sql("SELECT profile_id FROM aggregated_metric"), [("acc7",)])

    def test_udp(self):
        d = self.telemd(udp=True)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for i in range(20):
                s.sendto(b"udp,profile=u v%d=%di %d\n" % (i, i, TS), ("127.0.0.1", d.udp_port))
            s.sendto(b"udp,profile=u broken=\n", ("127.0.0.1", d.udp_port))
        finally:
            s.close()
        n = d.wait_rows(20, timeout=30)
        self.assertEqual(n, 20, d.logs())
        self.assertEqual(d.count("aggregated_metric", "name = 'udp.broken'"), 0)
        m = d.metrics()
        self.assertEqual(m.get('telem_udp_datagrams_total{result="accepted"}'), 20, m[""])
        self.assertEqual(m.get('telem_udp_datagrams_total{result="invalid"}'), 1, m[""])

    # Shutdown.

    def test_sigterm_drains_and_exits_zero(self):
        d = self.telemd()
        total = 0
        for b in range(40):
            body = "".join("drain,profile=p%d v%d_%d=%di %d\n" % (i % 3, b, i, i, TS + i)
                           for i in range(250))
            r = d.write(body)
            self.assertEqual(r.status, 204, r)
            total += 250
        rc = d.stop()
        self.assertEqual(rc, 0, d.logs())
        self.assertFalse(os.path.exists(d.socket_path), "the socket file was left behind")
        # Everything acknowledged is in the store, without a restart.
        self.assertEqual(d.count("aggregated_metric", "name LIKE 'drain.%'"), total, d.logs())


if __name__ == "__main__":
    unittest.main()
