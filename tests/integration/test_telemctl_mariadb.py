"""test_telemctl_mariadb.py: telemctl reading the MariaDB store that telemd writes.

A telemd with `--sink mariadb://...` is sent a few trades and metrics with exact values over
HTTP; once they are stored, `telemctl query trades|metrics` (JSON and CSV) and `telemctl report`
against `--db mariadb://...` must print exactly those values. `telemctl migrate` must create the
tables in an empty database, and `telemctl loadgen --verify mariadb://...` must find the store
exact after a short run.

The MariaDB server is the one scripts/test-services.sh starts; its socket, user and password come
from TELEM_TEST_MARIADB_SOCKET, _USER and _PASSWORD, which must be set (the test fails, it does not
skip). Every test works in a database of its own, dropped afterwards. The password reaches
telemd and telemctl through TELEM_MARIADB_PASSWORD, never through argv. Standard library plus
python3-pymysql.
"""

import csv
import io
import json
import os
import re
import subprocess
import time
import unittest
import uuid

import pymysql

from harness import TelemdTestCase, telemd_path

TS = 1_795_860_000_000_000_000  # 2026-11-28T10:00:00Z
MINUTE = 60 * 10**9


def trade(profile, pnl, fees, minute, tid, qty="2", entry="3000.25", exit_="2990.5"):
    return ('trade,profile=%s,script=exec,symbol=ETHUSD,side=short qty=%s,entry_price=%s,'
            'exit_price=%s,pnl=%s,fees=%s,opened_at=%di,trade_id="%s" %d'
            % (profile, qty, entry, exit_, pnl, fees, TS + (minute - 1) * MINUTE, tid,
               TS + minute * MINUTE))


def mariadb_env():
    names = ("TELEM_TEST_MARIADB_SOCKET", "TELEM_TEST_MARIADB_USER",
             "TELEM_TEST_MARIADB_PASSWORD")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise AssertionError(
            "%s not set: start the servers with `scripts/test-services.sh start DIR > DIR/env` "
            "and source DIR/env" % ", ".join(missing))
    return [os.environ[n] for n in names]


def telemctl_exe():
    path = os.environ.get("TELEMCTL")
    if not path:
        build = os.path.dirname(os.path.dirname(os.path.dirname(telemd_path())))
        path = os.path.join(build, "src", "cli", "telemctl")
    if not os.access(path, os.X_OK):
        raise AssertionError("telemctl not found at %s: set TELEMCTL" % path)
    return path


class TelemctlMariadbTest(TelemdTestCase):

    def setUp(self):
        super().setUp()
        self.socket, self.user, self.password = mariadb_env()
        self.exe = telemctl_exe()
        self.db = "telemctl_" + uuid.uuid4().hex[:12]
        with self.admin() as c:
            c.cursor().execute("CREATE DATABASE `%s`" % self.db)
        self.addCleanup(self.drop_db)
        self.url = "mariadb://%s@localhost/%s?socket=%s" % (self.user, self.db, self.socket)

    def admin(self, db=None):
        return pymysql.connect(unix_socket=self.socket, user=self.user, password=self.password,
                               database=db, autocommit=True)

    def drop_db(self):
        with self.admin() as c:
            c.cursor().execute("DROP DATABASE IF EXISTS `%s`" % self.db)

    def count(self, table):
        """Rows in table; 0 while the sink has not created it."""
        with self.admin(self.db) as c:
            cur = c.cursor()
            try:
                cur.execute("SELECT COUNT(*) FROM `%s`" % table)
            except pymysql.err.ProgrammingError:
                return 0
            return cur.fetchone()[0]

    def wait_stored(self, trades, metrics, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = (self.count("trade_performance"), self.count("aggregated_metric"))
            if got == (trades, metrics):
                return
            time.sleep(0.1)
        self.fail("store holds %r, expected %r" % (got, (trades, metrics)))

    def run_ctl(self, *args, password=True):
        env = dict(os.environ)
        env.pop("TELEM_TOKEN", None)
        env.pop("TELEM_MARIADB_PASSWORD", None)
        if password:
            env["TELEM_MARIADB_PASSWORD"] = self.password
        p = subprocess.run([self.exe] + list(args), capture_output=True, text=True, env=env,
                           timeout=180)
        self.assertNotIn(":" + self.password + "@", " ".join(args))
        return p

    def start_telemd(self):
        return self.telemd(args=["--sink", self.url],
                           env={"TELEM_MARIADB_PASSWORD": self.password})

    def test_query_and_report(self):
        d = self.start_telemd()
        body = "\n".join([
            trade("alpha", "10", "1", 1, "a1"),   # net  9
            trade("alpha", "-5", "1", 2, "a2"),   # net -6
            trade("alpha", "-10", "0", 3, "a3"),  # net -10
            trade("alpha", "30", "2", 4, "a4"),   # net 28
            trade("beta", "1", "0", 1, "b1"),
            "eq,profile=alpha,script=risk value=1000.5 %d" % TS,
            "eq,profile=alpha,script=risk value=1001.25 %d" % (TS + MINUTE + 123456000),
            "eq,profile=beta value=7i %d" % (TS + 1000),
        ]) + "\n"
        r = d.write(body)
        self.assertIn(r.status, (200, 204), r)
        self.wait_stored(5, 3)

        p = self.run_ctl("query", "trades", "--db", self.url, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = json.loads(p.stdout)
        self.assertEqual([r["trade_id"] for r in rows], ["a1", "b1", "a2", "a3", "a4"])
        a1 = rows[0]
        self.assertEqual((a1["profile"], a1["script"], a1["symbol"], a1["side"]),
                         ("alpha", "exec", "ETHUSD", "short"))
        self.assertEqual((a1["qty"], a1["entry_price"], a1["exit_price"], a1["pnl"], a1["fees"]),
                         (2, 3000.25, 2990.5, 10, 1))
        self.assertEqual(a1["opened_at"], "2026-11-28T10:00:00Z")
        self.assertEqual(a1["closed_at"], "2026-11-28T10:01:00Z")
        self.assertEqual([r["pnl"] for r in rows], [10, 1, -5, -10, 30])

        # Filters and the limit (latest N, printed in time order).
        p = self.run_ctl("query", "trades", "--db", self.url, "--profile", "alpha", "--since",
                         "2026-11-28T10:02:00Z", "--until", "2026-11-28T10:04:00Z",
                         "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["trade_id"] for r in json.loads(p.stdout)], ["a2", "a3"])
        p = self.run_ctl("query", "trades", "--db", self.url, "--limit", "2", "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["trade_id"] for r in json.loads(p.stdout)], ["a3", "a4"])
        # A value that would break string-built SQL is only ever a bound parameter.
        p = self.run_ctl("query", "trades", "--db", self.url, "--profile", "x' OR '1'='1",
                         "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), [])

        p = self.run_ctl("query", "metrics", "--db", self.url, "--format", "csv")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        self.assertEqual([(r["profile"], r["script"], r["name"], r["value"]) for r in rows], [
            ("alpha", "risk", "eq.value", "1000.5"),
            ("beta", "", "eq.value", "7"),
            ("alpha", "risk", "eq.value", "1001.25"),
        ])
        self.assertEqual(rows[0]["ts"], "2026-11-28T10:00:00Z")
        self.assertTrue(rows[2]["ts"].startswith("2026-11-28T10:01:00.123"), rows[2])
        p = self.run_ctl("query", "metrics", "--db", self.url, "--name", "eq.value",
                         "--profile", "alpha", "--limit", "1", "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([(m["profile"], m["value"]) for m in json.loads(p.stdout)],
                         [("alpha", 1001.25)])

        p = self.run_ctl("report", "--db", self.url, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        rep = {r["profile"]: r for r in json.loads(p.stdout)}
        a = rep["alpha"]
        self.assertEqual((a["trades"], a["wins"], a["losses"]), (4, 2, 2))
        self.assertEqual((a["gross_pnl"], a["fees"], a["net_pnl"]), (25, 4, 21))
        self.assertEqual(a["max_drawdown"], 16)
        self.assertEqual(a["first_trade"], "2026-11-28T10:01:00Z")
        self.assertEqual(a["last_trade"], "2026-11-28T10:04:00Z")
        self.assertEqual(rep["beta"]["trades"], 1)
        p = self.run_ctl("report", "--db", self.url)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("alpha", p.stdout)
        self.assertIn("beta", p.stdout)

        # A wrong password fails with the server's word, never echoing the password.
        env_pw = self.password
        self.password = "definitely-wrong"
        try:
            p = self.run_ctl("query", "trades", "--db", self.url)
        finally:
            self.password = env_pw
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Access denied", p.stderr)
        self.assertNotIn("definitely-wrong", p.stderr)
        self.assertEqual(d.stop(), 0)

    def test_migrate_empty_database(self):
        p = self.run_ctl("query", "trades", "--db", self.url)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("telemctl migrate", p.stderr)
        p = self.run_ctl("migrate", "--db", self.url)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("from version 0 to 2", p.stdout)
        with self.admin(self.db) as c:
            cur = c.cursor()
            cur.execute("SHOW TABLES")
            tables = {row[0] for row in cur.fetchall()}
        self.assertTrue({"trade_performance", "aggregated_metric", "telem_cursor",
                         "telem_schema"} <= tables, tables)
        p = self.run_ctl("migrate", "--db", self.url)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nothing to do", p.stdout)
        p = self.run_ctl("query", "trades", "--db", self.url, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), [])

    def test_migrate_from_version_1(self):
        """A database telem 0.x made (schema version 1: PRIMARY KEY (spool_id, seq), a unique
        (profile_id, trade_id) key and secondary indexes) is rebuilt with the version 2 key,
        keeps its rows, and its trade_ids keep deduplicating through telem_trade_id."""
        spool = "00112233445566778899aabbccddeeff"
        with self.admin(self.db) as c:
            cur = c.cursor()
            opts = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            cur.execute(
                "CREATE TABLE trade_performance (spool_id BINARY(16) NOT NULL, seq BIGINT "
                "UNSIGNED NOT NULL, profile_id VARCHAR(64) NOT NULL, script VARCHAR(64) NOT NULL "
                "DEFAULT '', symbol VARCHAR(32) NOT NULL DEFAULT '', side VARCHAR(16) NOT NULL "
                "DEFAULT '', qty DOUBLE NULL, entry_price DOUBLE NULL, exit_price DOUBLE NULL, "
                "pnl DOUBLE NULL, fees DOUBLE NULL, opened_at DATETIME(6) NULL, closed_at "
                "DATETIME(6) NOT NULL, trade_id VARCHAR(64) NULL, PRIMARY KEY (spool_id, seq), "
                "UNIQUE KEY trade_id_per_profile (profile_id, trade_id), KEY profile_time "
                "(profile_id, closed_at))" + opts)
            cur.execute(
                "CREATE TABLE aggregated_metric (spool_id BINARY(16) NOT NULL, seq BIGINT "
                "UNSIGNED NOT NULL, profile_id VARCHAR(64) NOT NULL, script VARCHAR(64) NOT NULL "
                "DEFAULT '', name VARCHAR(128) NOT NULL, value DOUBLE NOT NULL, ts DATETIME(6) "
                "NOT NULL, PRIMARY KEY (spool_id, seq), KEY profile_name_time (profile_id, name, "
                "ts))" + opts)
            cur.execute(
                "CREATE TABLE telem_cursor (spool_id BINARY(16) NOT NULL, sink VARCHAR(80) NOT "
                "NULL, seq BIGINT UNSIGNED NOT NULL, updated_at DATETIME(6) NOT NULL, PRIMARY "
                "KEY (spool_id, sink))" + opts)
            cur.execute(
                "CREATE TABLE telem_schema (version INT NOT NULL PRIMARY KEY, applied_at "
                "DATETIME(6) NOT NULL, note VARCHAR(200) NOT NULL DEFAULT '')" + opts)
            cur.execute("INSERT INTO telem_schema VALUES (1, UTC_TIMESTAMP(6), 'created')")
            cur.execute(
                "INSERT INTO trade_performance (spool_id, seq, profile_id, script, pnl, fees, "
                "closed_at, trade_id) VALUES (UNHEX(%s), 1, 'alpha', 'exec', 10, 1, "
                "'2026-11-28 10:01:00', 'a1'), (UNHEX(%s), 2, 'alpha', 'exec', -5, 1, "
                "'2026-11-28 10:02:00', NULL)", (spool, spool))
            cur.execute(
                "INSERT INTO aggregated_metric VALUES (UNHEX(%s), 3, 'alpha', 'risk', 'eq', 1000.5, "
                "'2026-11-28 10:00:00')", (spool,))
            cur.execute("INSERT INTO telem_cursor VALUES (UNHEX(%s), 'mariadb', 3, "
                        "UTC_TIMESTAMP(6))", (spool,))

        p = self.run_ctl("migrate", "--db", self.url)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("from version 1 to 2", p.stdout)
        with self.admin(self.db) as c:
            cur = c.cursor()
            keys = {}
            for table in ("trade_performance", "aggregated_metric"):
                cur.execute("SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) "
                            "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND "
                            "TABLE_NAME = %s GROUP BY INDEX_NAME", (self.db, table))
                keys[table] = dict(cur.fetchall())
            self.assertEqual(keys, {
                "trade_performance": {"PRIMARY": "profile_id,closed_at,spool_id,seq"},
                "aggregated_metric": {"PRIMARY": "profile_id,name,ts,spool_id,seq"}})
            cur.execute("SELECT profile_id, trade_id, seq FROM telem_trade_id")
            self.assertEqual(cur.fetchall(), (("alpha", "a1", 1),))
            cur.execute("SELECT MAX(version) FROM telem_schema")
            self.assertEqual(cur.fetchone()[0], 2)

        # The old rows read back, and the old trade_id a1 still refuses a repeat.
        d = self.start_telemd()
        r = d.write("\n".join([trade("alpha", "99", "0", 5, "a1"),
                               trade("alpha", "7", "0", 6, "a9")]) + "\n")
        self.assertIn(r.status, (200, 204), r)
        self.wait_stored(3, 1)
        p = self.run_ctl("query", "trades", "--db", self.url, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([(r["trade_id"], r["pnl"]) for r in json.loads(p.stdout)],
                         [("a1", 10), (None, -5), ("a9", 7)])
        p = self.run_ctl("migrate", "--db", self.url)
        self.assertIn("nothing to do", p.stdout)
        self.assertEqual(d.stop(), 0)

    def test_loadgen_verify(self):
        d = self.start_telemd()
        p = self.run_ctl("loadgen", "--http", "127.0.0.1:%d" % d.port, "--profiles", "3",
                         "--scripts", "2", "--duration", "2", "--batch", "100", "--quiet",
                         "--verify", self.url)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + d.logs())
        self.assertIn("exact", p.stdout)
        self.assertNotIn("MISMATCH", p.stdout)
        m = re.search(r"verify +exact: (\d+) rows stored, (\d+) acknowledged", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        self.assertGreater(int(m.group(1)), 0, p.stdout)
        self.assertEqual(m.group(1), m.group(2))
        # The rows are in MariaDB, three profiles' worth.
        with self.admin(self.db) as c:
            cur = c.cursor()
            cur.execute("SELECT (SELECT COUNT(DISTINCT profile_id) FROM trade_performance), "
                        "(SELECT COUNT(*) FROM trade_performance) + "
                        "(SELECT COUNT(*) FROM aggregated_metric)")
            profiles, rows = cur.fetchone()
        self.assertEqual((profiles, rows), (3, int(m.group(1))))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
