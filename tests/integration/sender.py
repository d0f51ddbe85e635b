"""sender.py: the project's own small concurrent sender, for the integration tests.

Each Sender is a thread with one keep-alive http.client connection to telemd (TCP or unix
socket). It sends bodies of canonical line-protocol lines, each line carrying an id unique
across the whole run, so a test can check the store line by line:
  - a metric line `ct,profile=P,script=S <id>=<n>i <ts>` is stored as metric `ct.<id>`;
  - a trade line `trade,profile=P,... trade_id="<id>" <ts>` is stored with that trade_id.
Every batch's fate is recorded: "acked" (204), "rejected" (4xx), or "unknown" (the connection
broke or telemd answered 503 before the sender saw a 204: the batch may or may not be stored).

With a Telem-Batch header (the default) a sender retries the same batch, same header, until it
gets an answer, as the real clients do; telemd must store it once. Without one, a broken batch
is left "unknown" and the sender moves on.
"""

import http.client
import threading
import time

from harness import UnixHTTPConnection


class Sender(threading.Thread):
    def __init__(self, daemon, index, lines=100, batches=None, stop=None, batch_header=True,
                 unix=False, trade_every=2, profiles=4, producer=None, epoch=None,
                 give_up_after=120.0):
        super().__init__(name="sender-%d" % index, daemon=True)
        self.daemon_ = daemon
        self.index = index
        self.lines = lines
        self.max_batches = batches
        self.stop_event = stop or threading.Event()
        self.batch_header = batch_header
        self.unix = unix
        self.trade_every = trade_every  # every Nth line is a trade (0: metrics only)
        self.profiles = profiles
        self.producer = producer or "sender-%d" % index
        self.epoch = epoch if epoch is not None else time.time_ns()
        self.give_up_after = give_up_after
        self.conn = None
        # batch number -> {"ids": [...], "status": ..., "attempts": n}
        self.batches = {}
        self.errors = []  # unexpected answers, for the test to report
        self.requests = 0
        self.reconnects = 0

    # The lines.

    def line_id(self, batch, i):
        return "s%d_%d_%d" % (self.index, batch, i)

    def make_batch(self, batch):
        ts0 = 1_795_860_000_000_000_000 + (self.index * 1_000_000 + batch) * 1_000_000
        lines, ids = [], []
        for i in range(self.lines):
            uid = self.line_id(batch, i)
            profile = "p%d" % ((self.index + i) % self.profiles)
            ts = ts0 + i
            if self.trade_every and i % self.trade_every == 0:
                lines.append('trade,profile=%s,script=s%d,symbol=BTCUSD,side=buy qty=1,'
                             'entry_price=100.5,exit_price=101.25,pnl=0.75,fees=0.01,'
                             'trade_id="%s" %d' % (profile, self.index, uid, ts))
            else:
                lines.append("ct,profile=%s,script=s%d %s=%di %d"
                             % (profile, self.index, uid, batch * 100000 + i, ts))
            ids.append(uid)
        return ("\n".join(lines) + "\n").encode(), ids

    # The connection.

    def connect(self):
        if self.conn is None:
            self.conn = self.daemon_.connection(unix=self.unix, timeout=30)
            self.reconnects += 1
        return self.conn

    def drop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def post(self, body, headers):
        """Sends one request; returns (status, retry_after, body), "refused" when no connection
        could be made (nothing was sent), or None when it broke after sending began."""
        try:
            conn = self.connect()
            if conn.sock is None:
                conn.connect()
        except OSError:
            self.drop()
            return "refused"
        try:
            self.requests += 1
            conn.request("POST", "/write", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self.drop()
            return resp.status, resp.getheader("Retry-After"), data
        except (OSError, http.client.HTTPException):
            self.drop()
            return None

    # The run.

    def run(self):
        batch = 0
        try:
            while not self.stop_event.is_set():
                if self.max_batches is not None and batch >= self.max_batches:
                    break
                batch += 1
                self.send_batch(batch)
        finally:
            self.drop()

    def send_batch(self, batch):
        body, ids = self.make_batch(batch)
        entry = {"ids": ids, "status": "unknown", "attempts": 0}
        self.batches[batch] = entry
        headers = {"Content-Type": "text/plain"}
        if self.batch_header:
            headers["Telem-Batch"] = "%s:%d:%d" % (self.producer, self.epoch, batch)
        deadline = time.monotonic() + self.give_up_after
        delay = 0.05
        while True:
            answer = self.post(body, headers)
            if answer == "refused":
                # telemd is restarting: nothing was sent, so even an untagged batch is safe to
                # send again.
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
                continue
            entry["attempts"] += 1
            if answer is not None and answer[0] == 204:
                entry["status"] = "acked"
                return
            if answer is not None and answer[0] != 503:
                entry["status"] = "rejected"
                self.errors.append("batch %d: HTTP %d %r" % (batch, answer[0], answer[2][:200]))
                return
            # A broken connection or a 503: the batch may or may not be stored.
            if not self.batch_header or time.monotonic() > deadline:
                return
            if answer is not None and answer[1]:
                delay = min(float(answer[1]), 2.0)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    # Results.

    # The sender thread may add batches while another thread reads the results mid-run:
    # list(dict.values()) copies in one step (no Python code runs while it does), iterating the
    # view directly can fail with "dictionary changed size during iteration".

    def ids_with(self, status):
        return [i for b in list(self.batches.values()) if b["status"] == status for i in b["ids"]]

    def sent_ids(self):
        return [i for b in list(self.batches.values()) for i in b["ids"]]


def run_senders(daemon, count, **kwargs):
    """Starts count senders (indexes 0..count-1) and returns them with their stop event."""
    stop = threading.Event()
    senders = [Sender(daemon, i, stop=stop, **kwargs) for i in range(count)]
    for s in senders:
        s.start()
    return senders, stop


def stored_ids(daemon):
    """Returns {id: times stored} over both tables of daemon's SQLite store."""
    counts = {}
    for (name,) in daemon.sql("SELECT name FROM aggregated_metric WHERE name LIKE 'ct.%'"):
        uid = name[3:]
        counts[uid] = counts.get(uid, 0) + 1
    for (tid,) in daemon.sql("SELECT trade_id FROM trade_performance WHERE trade_id IS NOT NULL"):
        counts[tid] = counts.get(tid, 0) + 1
    return counts
