"""The old telemetry library's shape (TelemetryStorage, TelemetryManager), sending to telemd.

Scripts written for the MySQL-backed library change one import:

    from telemetry import TelemetryManager        # before
    from telem.compat import TelemetryManager     # after

and keep every call: ``record_trade(profile, script, symbol, side, qty, entry, exit_, pnl,
fees, opened, closed)``, ``record_metric(profile, script, name, value, ts=None)``,
``flush()``, ``close()``, and the storage's ``store_trade_performance_bulk(rows)`` /
``store_aggregated_metric_bulk(rows)`` with the same row tuples (datetimes as before; naive
datetimes are UTC, as ``datetime.utcnow()`` gives). Single-row ``store_trade_performance(...)``
and ``store_aggregated_metric(...)`` exist too, and a trade row may carry a twelfth element,
its trade_id.

What changes underneath: instead of a MySQL pool of 50 and a Redis pool of 100 connections per
process, every TelemetryStorage of a process shares one telem.Client, i.e. one connection to
the local telemd, which puts records on disk before it acknowledges them and writes them to
the stores in bulk. A bulk store call returns once telemd has acknowledged its rows, as the
old one returned once MySQL had committed them; if telemd does not answer within the
storage's timeout it raises TelemError, but the rows stay queued and are retried (they are
not lost, unlike a failed MySQL insert).
"""

import datetime
import logging
import threading

from . import lineproto as lp
from .client import Client, TelemError

__all__ = ["TelemetryStorage", "TelemetryManager", "TelemError"]

log = logging.getLogger("telem")


def check_trade_row(row):
    """Raise ValueError (InvalidRecord naming the field) unless row is a valid trade row."""
    if len(row) not in (11, 12):
        raise ValueError("trade row: expected 11 values (profile_id, script, symbol, side, "
                         "qty, entry_price, exit_price, pnl, fees, opened_at, closed_at) "
                         "and an optional trade_id, got %d" % len(row))
    lp.check_text("profile_id", row[0], lp.PROFILE_MAX, required=True)
    lp.check_text("script", row[1], lp.SCRIPT_MAX)
    lp.check_text("symbol", row[2], lp.SYMBOL_MAX)
    lp.check_text("side", row[3], lp.SIDE_MAX)
    for name, v in zip(lp.TRADE_FIELDS, row[4:9]):
        lp.check_number(name, v, optional=True)
    lp.time_ns("opened_at", row[9], 0, optional=True)
    lp.time_ns("closed_at", row[10], 0)
    if len(row) == 12:
        lp.check_text("trade_id", row[11], lp.TRADE_ID_MAX)


def check_metric_row(row):
    """Raise ValueError (InvalidRecord naming the field) unless row is a valid metric row."""
    if len(row) != 5:
        raise ValueError("metric row: expected 5 values (profile_id, script, name, value, "
                         "ts), got %d" % len(row))
    lp.check_text("profile_id", row[0], lp.PROFILE_MAX, required=True)
    lp.check_text("script", row[1], lp.SCRIPT_MAX)
    lp.check_text("name", row[2], lp.NAME_MAX, required=True)
    lp.check_number("value", row[3])
    lp.time_ns("ts", row[4], 0)


class TelemetryStorage:
    """Writes trade and metric rows to telemd; all instances of a process share one client.

    endpoint and token apply when the first instance creates the shared client (None:
    $TELEM_ENDPOINT or telemd's default socket). timeout is how long a store call waits for
    telemd's acknowledgement (None: no limit).
    """

    _client = None
    _init_lock = threading.Lock()

    def __init__(self, endpoint=None, token=None, timeout=30.0, max_buffered=1000000):
        self.timeout = timeout
        with TelemetryStorage._init_lock:
            if TelemetryStorage._client is None:
                # block: the old library never dropped a row; neither does this one.
                TelemetryStorage._client = Client(endpoint=endpoint, token=token,
                                                  on_full="block", max_buffered=max_buffered,
                                                  flush_interval=0.2)
        self.client = TelemetryStorage._client

    @classmethod
    def close_shared(cls, timeout=10.0):
        """Deliver what is queued and close the shared client (a later instance reopens it)."""
        with cls._init_lock:
            c, cls._client = cls._client, None
        return c.close(timeout) if c is not None else True

    def _queue_trade(self, row):
        (profile, script, symbol, side, qty, entry, exit_, pnl, fees, opened,
         closed) = row[:11]
        trade_id = row[11] if len(row) == 12 else None
        self.client.trade(symbol, side, qty, entry, exit_, pnl, fees, opened_at=opened,
                          closed_at=closed, trade_id=trade_id, profile=profile,
                          script=script)

    def _queue_metric(self, row):
        profile, script, name, value, ts = row
        self.client.metric(name, value, ts, profile=profile, script=script)

    def _wait(self, what, n):
        if n and not self.client.flush(self.timeout):
            raise TelemError("%s: telemd did not acknowledge %d rows within %s s; they stay "
                             "queued and are being retried" % (what, n, self.timeout))

    def store_trade_performance(self, profile_id, script, symbol, side, qty, entry_price,
                                exit_price, pnl, fees, opened_at, closed_at, trade_id=None):
        """Store one trade; returns once telemd has it on disk."""
        self._queue_trade((profile_id, script, symbol, side, qty, entry_price, exit_price, pnl,
                           fees, opened_at, closed_at, trade_id))
        self._wait("store_trade_performance", 1)

    def store_trade_performance_bulk(self, trades):
        """Store trade rows (tuples as store_trade_performance's arguments). All rows are
        checked before any is sent: one bad row raises and stores nothing."""
        rows = list(trades)
        for row in rows:
            check_trade_row(row)
        for row in rows:
            self._queue_trade(row)
        n = len(rows)
        self._wait("store_trade_performance_bulk", n)

    def store_aggregated_metric(self, profile_id, script, name, value, ts=None):
        """Store one metric sample (ts None: now); returns once telemd has it on disk."""
        self._queue_metric((profile_id, script, name, value, ts))
        self._wait("store_aggregated_metric", 1)

    def store_aggregated_metric_bulk(self, metrics):
        """Store metric rows: (profile_id, script, name, value, ts) tuples. All rows are
        checked before any is sent: one bad row raises and stores nothing."""
        rows = list(metrics)
        for row in rows:
            check_metric_row(row)
        for row in rows:
            self._queue_metric(row)
        n = len(rows)
        self._wait("store_aggregated_metric_bulk", n)


class TelemetryManager:
    """Queues records and flushes them in bulk: batch_size items or flush_interval_seconds.

    The same behaviour and methods as the old manager; its storage is a TelemetryStorage
    (shared telemd client) unless one is given. A flush that fails is logged and its rows
    stay with telemd's client, which keeps retrying them.
    """

    def __init__(self, storage=None, batch_size=50, flush_interval_seconds=10.0):
        self.storage = storage or TelemetryStorage()
        self.batch_size, self.flush_interval = batch_size, flush_interval_seconds
        self._items, self._lock = [], threading.Lock()
        self._wake, self._stop = threading.Event(), False
        self._thread = threading.Thread(target=self._run, name="telem-manager", daemon=True)
        self._thread.start()

    def record_trade(self, profile, script, symbol, side, qty, entry, exit_, pnl, fees, opened,
                     closed, trade_id=None):
        row = (profile, script, symbol, side, qty, entry, exit_, pnl, fees, opened, closed)
        if trade_id is not None:
            row += (trade_id,)
        check_trade_row(row)  # a bad record raises here, at the call, not in the flush
        self._add(("trade", row))

    def record_metric(self, profile, script, name, value, ts=None):
        row = (profile, script, name, value, ts or datetime.datetime.now(datetime.timezone.utc))
        check_metric_row(row)
        self._add(("metric", row))

    def _add(self, item):
        with self._lock:
            self._items.append(item)
            full = len(self._items) >= self.batch_size
        if full:
            self._wake.set()

    def _run(self):
        while not self._stop:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception as e:  # keep flushing later; the old thread died here
                log.error("TelemetryManager flush failed: %s", e)

    def flush(self):
        with self._lock:
            items, self._items = self._items, []
        trades = [row for kind, row in items if kind == "trade"]
        metrics = [row for kind, row in items if kind == "metric"]
        if trades:
            self.storage.store_trade_performance_bulk(trades)
        if metrics:
            self.storage.store_aggregated_metric_bulk(metrics)

    def close(self):
        self._stop = True
        self._wake.set()
        self._thread.join()
        self.flush()
