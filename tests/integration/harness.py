"""harness.py: run a real telemd for the integration tests, talk to it, and read its store.

Telemd is the program named by the environment variable TELEMD (scripts/test.sh and meson set
it to the freshly built one). Each Telemd instance gets a temporary data folder, its own unix
socket and a free loopback port; start() waits for the "telemd: listening" line on stdout,
stop() sends SIGTERM and kill() SIGKILL, always to the pid this harness started. The HTTP
helpers speak to it over TCP or over the unix socket with http.client, and the store helpers
read the SQLite file the embedded default sink writes (DATA_DIR/telem.db).

Standard library only: these tests run under /usr/bin/python3 on a bare Debian 12.
"""

import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

READY_PREFIX = "telemd: listening"


def telemd_path():
    """Returns the telemd to test, or fails the calling test with a clear message."""
    path = os.environ.get("TELEMD")
    if not path:
        raise AssertionError(
            "TELEMD is not set: point it at a built telemd, e.g. "
            "TELEMD=$PWD/build-test/src/daemon/telemd (scripts/test.sh does this)")
    if not os.access(path, os.X_OK):
        raise AssertionError("TELEMD=%s is not an executable file" % path)
    return path


def telemctl_path():
    """Returns telemctl: TELEMCTL, or the one beside TELEMD's build, or None."""
    path = os.environ.get("TELEMCTL")
    if path and os.access(path, os.X_OK):
        return path
    guess = os.path.join(os.path.dirname(os.path.dirname(telemd_path())), "cli", "telemctl")
    return guess if os.access(guess, os.X_OK) else None


def free_port(kind=socket.SOCK_STREAM):
    """Returns a loopback port that was free a moment ago."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix stream socket."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Reply:
    """One HTTP answer: status, headers (lower-case names), body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.body[:300])


class Telemd:
    """One telemd process on a temporary data folder (kept across restarts)."""

    def __init__(self, args=(), config=None, env=None, data_dir=None, udp=False):
        self.exe = telemd_path()
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="telemd-test-")
        self.socket_path = os.path.join(self.data_dir, "telemd.sock")
        self.port = free_port()
        self.udp_port = free_port(socket.SOCK_DGRAM) if udp else None
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.pop("TELEM_TOKEN", None)
        self.env.update(env or {})
        self.config_path = None
        if config is not None:
            self.config_path = os.path.join(self.data_dir, "telemd.ini")
            with open(self.config_path, "w") as f:
                f.write(config)
        self.proc = None
        self.starts = 0
        self.ready_line = None

    # Process control.

    def command(self):
        cmd = [self.exe, "--data-dir", self.data_dir, "--socket", self.socket_path,
               "--http", "127.0.0.1:%d" % self.port]
        if self.udp_port:
            cmd += ["--udp", "127.0.0.1:%d" % self.udp_port]
        if self.config_path:
            cmd += ["--config", self.config_path]
        return cmd + self.args

    def start(self, timeout=30):
        """Starts telemd and waits for its ready line. Raises with its log when it fails."""
        assert self.proc is None or self.proc.poll() is not None, "telemd already running"
        self.starts += 1
        self.stdout_path = os.path.join(self.data_dir, "stdout.%d.log" % self.starts)
        self.stderr_path = os.path.join(self.data_dir, "stderr.%d.log" % self.starts)
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         cwd=self.data_dir, start_new_session=True)
        finally:
            out.close()
            err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.stdout_path, "rb") as f:
                for line in f.read().decode("utf-8", "replace").splitlines():
                    if line.startswith(READY_PREFIX):
                        self.ready_line = line
                        return self
            if self.proc.poll() is not None:
                raise AssertionError("telemd exited with %d before it was ready:\n%s"
                                     % (self.proc.returncode, self.logs()))
            time.sleep(0.02)
        self.kill()
        raise AssertionError("telemd was not ready within %ds:\n%s" % (timeout, self.logs()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        """Sends SIGTERM (drain) and returns the exit status; SIGKILL after timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("telemd did not exit within %ds of SIGTERM:\n%s"
                                     % (timeout, self.logs()))
        return self.proc.returncode

    def kill(self):
        """SIGKILL, as a crash: nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout=30):
        if self.running():
            self.stop()
        return self.start(timeout)

    def close(self):
        """Kills the process if still running and removes the data folder."""
        self.kill()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def logs(self, tail=4000):
        text = ""
        for name in ("stdout_path", "stderr_path"):
            path = getattr(self, name, None)
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    data = f.read().decode("utf-8", "replace")
                text += "--- %s\n%s\n" % (os.path.basename(path), data[-tail:])
        return text

    def all_stderr(self):
        text = ""
        for i in range(1, self.starts + 1):
            path = os.path.join(self.data_dir, "stderr.%d.log" % i)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
        return text

    # HTTP.

    def connection(self, unix=False, timeout=30):
        if unix:
            return UnixHTTPConnection(self.socket_path, timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, unix=False, timeout=30):
        conn = self.connection(unix, timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def write(self, body, precision=None, headers=None, unix=False, compress=False,
              path="/write"):
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = {"Content-Type": "text/plain; charset=utf-8"}
        hdrs.update(headers or {})
        if compress:
            body = gzip.compress(body)
            hdrs["Content-Encoding"] = "gzip"
        if precision:
            path += ("&" if "?" in path else "?") + "precision=" + precision
        return self.request("POST", path, body=body, headers=hdrs, unix=unix)

    def metrics(self, headers=None):
        """Returns /metrics as {"name{labels}": value} plus the raw text under "" ."""
        reply = self.request("GET", "/metrics", headers=headers)
        assert reply.status == 200, reply
        return parse_prometheus(reply.text())

    def health(self):
        return self.request("GET", "/health")

    # The SQLite store of the embedded default sink.

    @property
    def db_path(self):
        return os.path.join(self.data_dir, "telem.db")

    def sql(self, query, params=()):
        """Runs one query on the store and returns every row. An absent store has no rows."""
        if not os.path.exists(self.db_path):
            return []
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            return conn.execute(query, params).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return []
            raise
        finally:
            conn.close()

    def count(self, table, where="1", params=()):
        """Counts rows of table matching where; 0 while the table does not exist."""
        rows = self.sql("SELECT count(*) FROM %s WHERE %s" % (table, where), params)
        return rows[0][0] if rows else 0

    def rows(self):
        return self.count("trade_performance") + self.count("aggregated_metric")

    def wait_rows(self, expected, timeout=60, where_trades="1", where_metrics="1"):
        """Waits until the store holds at least expected rows (trades plus metrics) matching
        the conditions; returns the last count seen."""
        deadline = time.monotonic() + timeout
        n = -1
        while time.monotonic() < deadline:
            n = self.count("trade_performance", where_trades) + \
                self.count("aggregated_metric", where_metrics)
            if n >= expected:
                return n
            time.sleep(0.05)
        return n

    def wait_settled(self, timeout=60, quiet=1.0):
        """Waits until the store's row count stops changing for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = self.rows()
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return n
            time.sleep(0.1)
        return last


def parse_prometheus(text):
    """Parses Prometheus text into {"name{labels}": float}; the raw text is under ""."""
    out = {"": text}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)(?:\s+\d+)?$', line)
        if not m:
            raise AssertionError("not Prometheus text: %r" % line)
        out[m.group(1)] = float(m.group(2))
    return out


def metric_sum(metrics, name):
    """Sums every sample of the metric family `name` (all label sets)."""
    total = 0.0
    for key, value in metrics.items():
        if key == name or key.startswith(name + "{"):
            total += value
    return total


class TelemdTestCase(unittest.TestCase):
    """A test case that starts telemds through self.telemd() and always cleans them up."""

    def setUp(self):
        telemd_path()
        self._daemons = []

    def tearDown(self):
        for d in self._daemons:
            if self._outcome_failed():
                print("\n--- telemd logs for %s ---\n%s" % (self.id(), d.logs()))
            d.close()

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        result = getattr(outcome, "result", None)
        errors = getattr(result, "errors", []) + getattr(result, "failures", [])
        return any(test is self for test, _ in errors) or not getattr(outcome, "success", True)

    def telemd(self, *args, start=True, **kwargs):
        d = Telemd(*args, **kwargs)
        self._daemons.append(d)
        if start:
            d.start()
        return d
