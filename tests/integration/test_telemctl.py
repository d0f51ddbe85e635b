"""test_telemctl.py: telemctl against a real telemd and its store: send (and where its error
messages point), query in each format, report figures, status, spool inspect, migrate, and a
few seconds of loadgen --verify (also across a kill -9 and restart of telemd).
"""

import csv
import io
import json
import os
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from harness import TelemdTestCase, telemctl_path

TS = 1_795_860_000_000_000_000  # 2026-11-28T10:00:00Z


def trade(profile, pnl, fees, minute, tid):
    return ('trade,profile=%s,script=exec,symbol=ETHUSD,side=short qty=2,entry_price=3000,'
            'exit_price=2990,pnl=%s,fees=%s,opened_at=%di,trade_id="%s" %d'
            % (profile, pnl, fees, TS + (minute - 1) * 60 * 10**9, tid,
               TS + minute * 60 * 10**9))


class TelemctlTest(TelemdTestCase):

    def setUp(self):
        super().setUp()
        self.exe = telemctl_path()
        if not self.exe:
            self.fail("telemctl not found: set TELEMCTL or build it beside TELEMD")

    def run_ctl(self, *args, stdin=None, env=None, cwd=None):
        e = dict(os.environ)
        e.pop("TELEM_TOKEN", None)
        e.update(env or {})
        return subprocess.run([self.exe] + list(args), input=stdin, capture_output=True,
                              text=True, env=e, cwd=cwd, timeout=120)

    def test_send_query_report(self):
        d = self.telemd()
        lines = [
            "# a comment, then a blank line",
            "",
            trade("alpha", "10", "1", 1, "a1"),    # net  9
            trade("alpha", "-5", "1", 2, "a2"),    # net -6
            trade("alpha", "-10", "0", 3, "a3"),   # net -10
            trade("alpha", "30", "2", 4, "a4"),    # net 28
            trade("beta", "1", "0", 1, "b1"),
            "eq,profile=alpha,script=risk value=1000.5 %d" % TS,
            "eq,profile=beta value=7i %d" % (TS + 1),
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".lp", delete=False) as f:
            f.write("\n".join(lines) + "\n")
            path = f.name
        self.addCleanup(os.unlink, path)
        p = self.run_ctl("send", "--http", "127.0.0.1:%d" % d.port, "--batch", "3", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("accepted 7 lines, rejected 0 lines", p.stdout)
        self.assertEqual(d.wait_rows(7), 7, d.logs())

        db = "sqlite:" + d.db_path
        p = self.run_ctl("query", "trades", "--db", db, "--profile", "alpha", "--format", "csv")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        self.assertEqual([r["trade_id"] for r in rows], ["a1", "a2", "a3", "a4"])
        self.assertEqual(rows[0]["closed_at"], "2026-11-28T10:01:00Z")
        self.assertEqual(rows[0]["opened_at"], "2026-11-28T10:00:00Z")
        self.assertEqual(rows[1]["pnl"], "-5")
        self.assertEqual(rows[0]["side"], "short")

        p = self.run_ctl("query", "trades", "--db", db, "--since", "2026-11-28T10:02:00Z",
                         "--until", "2026-11-28T10:04:00Z", "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["trade_id"] for r in json.loads(p.stdout)], ["a2", "a3"])
        p = self.run_ctl("query", "trades", "--db", db, "--limit", "2", "--format", "json")
        self.assertEqual([r["trade_id"] for r in json.loads(p.stdout)], ["a3", "a4"])

        p = self.run_ctl("query", "metrics", "--db", db, "--name", "eq.value", "--profile", "alpha",
                         "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), [{
            "seq": json.loads(p.stdout)[0]["seq"], "profile": "alpha", "script": "risk",
            "name": "eq.value", "value": 1000.5, "ts": "2026-11-28T10:00:00Z"}])
        p = self.run_ctl("query", "metrics", "--db", db)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.strip().splitlines()), 3)  # header and two rows

        p = self.run_ctl("report", "--db", db, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        rep = {r["profile"]: r for r in json.loads(p.stdout)}
        a = rep["alpha"]
        self.assertEqual((a["trades"], a["wins"], a["losses"]), (4, 2, 2))
        self.assertEqual(a["win_rate"], 0.5)
        self.assertEqual((a["gross_pnl"], a["fees"], a["net_pnl"]), (25, 4, 21))
        self.assertAlmostEqual(a["profit_factor"], 37 / 16)
        self.assertEqual(a["max_drawdown"], 16)
        self.assertEqual(a["first_trade"], "2026-11-28T10:01:00Z")
        self.assertEqual(a["last_trade"], "2026-11-28T10:04:00Z")
        self.assertIsNone(rep["beta"]["profit_factor"])  # no losses: infinite, null in JSON
        p = self.run_ctl("report", "--db", db)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("alpha", p.stdout)

    def test_send_maps_errors_to_input_lines(self):
        d = self.telemd()
        lines = ["ok,profile=a v%d=1i" % i for i in range(10)]
        lines[6] = "ok,profile=a v=NaN"        # input line 7, in the second body of 5
        p = self.run_ctl("send", "--socket", d.socket_path, "--batch", "5",
                         stdin="\n".join(lines) + "\n")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("accepted 5 lines, rejected 5 lines", p.stdout)
        self.assertRegex(p.stderr, r"<stdin>:7(:\d+)?: ")

    def test_send_errors(self):
        d = self.telemd(env={"TELEM_TOKEN": "tok-123"})
        p = self.run_ctl("send", "--http", "127.0.0.1:%d" % d.port, stdin="x,profile=a v=1i\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("TELEM_TOKEN", p.stderr)
        p = self.run_ctl("send", "--http", "127.0.0.1:%d" % d.port, stdin="x,profile=a v=1i\n",
                         env={"TELEM_TOKEN": "tok-123"})
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_ctl("send", "--precision", "weeks")
        self.assertEqual(p.returncode, 2)
        p = self.run_ctl("send", "--socket", "/nonexistent/telemd.sock", stdin="x,profile=a v=1\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("/nonexistent/telemd.sock", p.stderr)

    def test_status_and_spool_inspect(self):
        d = self.telemd()
        self.assertEqual(d.write("st,profile=a v=1i,w=2i").status, 204)
        self.assertEqual(d.wait_rows(2), 2)
        p = self.run_ctl("status", "--socket", d.socket_path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("healthy", p.stdout)
        self.assertIn("metrics:", p.stdout)
        p = self.run_ctl("status", "--http", "127.0.0.1:1")
        self.assertEqual(p.returncode, 1)

        spool = os.path.join(d.data_dir, "spool")
        p = self.run_ctl("spool", "inspect", spool, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        segs = json.loads(p.stdout)
        self.assertGreaterEqual(sum(s["records"] for s in segs), 2)
        self.assertEqual(sum(s["corrupt"] for s in segs), 0)
        p = self.run_ctl("spool", "inspect", "--frames", spool)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("records", p.stdout)
        self.assertIn("cursor", p.stdout)

    def test_spool_inspect_finds_corrupt_frame(self):
        d = self.telemd()
        for i in range(3):
            self.assertEqual(d.write("cf,profile=a v%d=1i,w%d=2i" % (i, i)).status, 204)
        self.assertEqual(d.stop(), 0)
        spool = os.path.join(d.data_dir, "spool")
        p = self.run_ctl("spool", "inspect", "--frames", "--format", "json", spool)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # --frames with json prints the frame list, then the segment list.
        dec = json.JSONDecoder()
        frames, end = dec.raw_decode(p.stdout)
        records = [f for f in frames if f["type"] == "records" and f["records"] == 2]
        self.assertGreaterEqual(len(records), 3, frames)
        victim = records[0]
        path = os.path.join(spool, victim["segment"])
        with open(path, "r+b") as f:
            f.seek(victim["offset"] + 32 + 3)  # a payload byte: the CRC no longer matches
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
        p = self.run_ctl("spool", "inspect", "--frames", spool)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("CORRUPT", p.stdout)
        self.assertIn("1 corrupt frame(s) skipped", p.stdout)

    def loadgen(self, d, *args):
        return self.run_ctl("loadgen", "--http", "127.0.0.1:%d" % d.port, "--scripts", "2",
                            "--batch", "100", "--quiet", "--json", "--verify",
                            "sqlite:" + d.db_path, *args)

    def test_loadgen_verify(self):
        """The smoke run: a few seconds of load, then every acknowledged record found."""
        d = self.telemd()
        p = self.loadgen(d, "--profiles", "3", "--duration", "2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + d.logs())
        s = json.loads(p.stdout)
        self.assertGreater(s["acked"], 0, s)
        self.assertEqual((s["sent"], s["rejected"], s["verified"]), (s["acked"], 0, True), s)
        self.assertEqual(s["stored"], s["acked"], s)
        self.assertEqual(d.count("trade_performance") + d.count("aggregated_metric"), s["acked"])

    def test_loadgen_survives_telemd_kill(self):
        """telemd is killed (-9) and restarted under load: the generator reconnects, counts the
        failures, resends unanswered batches under the same Telem-Batch header, and the store
        holds exactly the acknowledged records."""
        d = self.telemd()
        out = {}

        def run():
            out["p"] = self.loadgen(d, "--profiles", "4", "--duration", "6", "--rate", "20000")

        t = threading.Thread(target=run)
        t.start()
        time.sleep(2)
        d.kill()
        time.sleep(0.5)
        d.start()
        t.join(120)
        p = out["p"]
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + d.logs())
        s = json.loads(p.stdout)
        print("\nloadgen across kill -9: sent %d, acked %d, stored %d, reconnects %d, connect "
              "failures %d, retries %d" % (s["sent"], s["acked"], s["stored"], s["reconnects"],
                                           s["connect_failures"], s["retries"]))
        self.assertGreater(s["reconnects"] + s["connect_failures"], 0, s)
        self.assertEqual((s["rejected"], s["unfinished"], s["verified"]), (0, 0, True), s)
        self.assertEqual(s["stored"], s["acked"], s)
        self.assertEqual(s["acked"], s["sent"], s)

    def test_migrate_and_usage(self):
        tmp = tempfile.mkdtemp()
        db = os.path.join(tmp, "new.db")
        p = self.run_ctl("migrate", "--db", "sqlite:" + db)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("to 1", p.stdout)
        tables = {r[0] for r in sqlite3.connect(db).execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.assertTrue({"trade_performance", "aggregated_metric", "telem_cursor"} <= tables)
        p = self.run_ctl("migrate", "--db", "sqlite:" + db)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nothing to do", p.stdout)
        p = self.run_ctl("query", "trades", "--db", "sqlite:" + db)
        self.assertEqual(p.returncode, 0, p.stderr)

        p = self.run_ctl("query", "trades", "--db", "sqlite:" + os.path.join(tmp, "missing.db"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("missing.db", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(tmp, "missing.db")))
        for args in (["nonsense"], ["query"], ["query", "trades", "--since", "yesterday"],
                     ["query", "trades", "--format", "xml"], []):
            self.assertEqual(self.run_ctl(*args).returncode, 2, args)
        for cmd in ("send", "query", "report", "status", "spool", "migrate"):
            p = self.run_ctl(cmd, "--help")
            self.assertEqual(p.returncode, 0, cmd)
            self.assertIn("usage: telemctl", p.stdout)


if __name__ == "__main__":
    unittest.main()
