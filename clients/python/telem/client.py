"""telem.Client: queue trades and metrics in memory, ship them to telemd from a background thread.

trade() and metric() check their arguments (raising telem.InvalidRecord, which names the
field), escape the strings (cached, since symbols and sides repeat) and append one tuple to a
bounded deque under a lock: no formatting and no I/O on the caller's thread. A background
thread takes up to batch_max records, formats them as line protocol with one join, and POSTs
them to telemd over a keep-alive http.client connection (unix socket or TCP) with a
``Telem-Batch: <producer>:<epoch>:<n>`` header. A batch whose answer is lost is sent again
with the same header and body, so telemd stores it once; batches go strictly one at a time.
While telemd is down or answers 503 the batch is retried (capped jittered backoff, or
Retry-After) and records wait in the deque; when it is full, on_full decides: "drop" (the
default: the call returns False and the record is counted in stats()["dropped"]) or "block"
(the call waits up to block_timeout seconds for room).

Nothing is printed; problems go to the ``telem`` logger (logging module).
"""

import atexit
import collections
import http.client
import logging
import os
import random
import secrets
import select
import socket
import threading
import time
import weakref

from . import lineproto
from .lineproto import InvalidRecord

__all__ = ["Client", "TelemError", "ClientClosed", "InvalidRecord", "DEFAULT_ENDPOINT"]

DEFAULT_ENDPOINT = "unix:./telem-data/telemd.sock"
_VERSION = "0.1.0"
_CACHE_MAX = 4096
_RETRY_AFTER_MAX = 30.0

log = logging.getLogger("telem")
log.addHandler(logging.NullHandler())  # a library logs only where the application says


class TelemError(Exception):
    """A failure of the client itself (not of a record): closed, timed out, refused."""


class ClientClosed(TelemError):
    """The client is closing or closed and takes no more records."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix stream socket."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._unix_path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def parse_endpoint(endpoint):
    """Return ("unix", path, None) or ("tcp", host, port) for an endpoint string.

    Accepts ``unix:PATH``, ``unix://PATH`` and ``http://HOST[:PORT][/]`` (port 8186 when
    absent). Raises ValueError otherwise.
    """
    if endpoint.startswith("unix:"):
        path = endpoint[5:]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError("endpoint: unix socket path is empty")
        return ("unix", path, None)
    if endpoint.startswith("http://"):
        rest = endpoint[7:].rstrip("/")
        if "/" in rest:
            raise ValueError("endpoint: no path allowed after host:port: %r" % endpoint)
        if rest.startswith("["):
            host, _, tail = rest[1:].partition("]")
            port = tail[1:] if tail.startswith(":") else ""
        else:
            host, _, port = rest.partition(":")
        if not host:
            raise ValueError("endpoint: host is empty")
        if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
            raise ValueError("endpoint: port must be 1..65535")
        return ("tcp", host, int(port) if port else 8186)
    raise ValueError("endpoint: expected unix:/path or http://host:port, got %r" % endpoint)


class Client:
    """A handle to telemd for one profile and script (each record may override them).

    Thread-safe: any number of threads may call trade() and metric() on one client.
    """

    def __init__(self, endpoint=None, profile=None, script=None, batch_max=5000,
                 flush_interval=1.0, max_buffered=100000, on_full="drop", token=None,
                 producer=None, block_timeout=None, connect_timeout=2.0, io_timeout=30.0,
                 backoff_max=2.0):
        """Check the settings and start the background thread (telemd need not be up).

        endpoint: "unix:/path/telemd.sock" or "http://127.0.0.1:8186"; None means
        $TELEM_ENDPOINT, else telemd's default socket ./telem-data/telemd.sock.
        profile, script: defaults of every record; with profile None each record must name
        one. A record's own profile or script replaces just that one.
        on_full: "drop" or "block". block_timeout: seconds a blocked call waits (None: no
        limit). producer: the Telem-Batch producer id (1..64 of [A-Za-z0-9._-]); random
        when None. Raises ValueError (InvalidRecord) on a bad setting.
        """
        if endpoint is None:
            endpoint = os.environ.get("TELEM_ENDPOINT") or DEFAULT_ENDPOINT
        self._kind, self._host, self._port = parse_endpoint(endpoint)
        self.endpoint = endpoint
        self._profile = lineproto.check_text("profile", profile, lineproto.PROFILE_MAX)
        self._script = lineproto.check_text("script", script, lineproto.SCRIPT_MAX)
        self._prefix = (lineproto.tag_prefix(self._profile, self._script)
                        if self._profile is not None else None)
        if on_full not in ("drop", "block"):
            raise ValueError("on_full: must be 'drop' or 'block'")
        for name, v in (("batch_max", batch_max), ("max_buffered", max_buffered)):
            if type(v) is not int or v < 1:
                raise ValueError("%s: must be a positive int" % name)
        if not flush_interval > 0:
            raise ValueError("flush_interval: must be > 0 seconds")
        if token is not None and (not isinstance(token, str) or not token.isprintable()
                                  or " " in token or not token):
            raise ValueError("token: must be printable text without spaces")
        self._producer = (lineproto.check_producer(producer) if producer is not None
                          else "py-" + secrets.token_hex(8))
        self._epoch = time.time_ns()
        self._batch_max = batch_max
        self._ready_at = max(1, min(batch_max, max_buffered // 2))
        self._flush_interval = float(flush_interval)
        self._max_buffered = max_buffered
        self._block = on_full == "block"
        self._block_timeout = block_timeout
        self._connect_timeout = connect_timeout
        self._io_timeout = io_timeout
        self._backoff_max = backoff_max
        self._headers = {"Content-Type": "text/plain; charset=utf-8",
                         "User-Agent": "telem-python/" + _VERSION}
        if token is not None:
            self._headers["Authorization"] = "Token " + token

        self._tag_cache = {}  # (kind, raw value) -> escaped ",kind=value"
        self._prefix_cache = {}  # (profile, script) -> escaped prefix

        self._lock = threading.Lock()
        self._ship_cv = threading.Condition(self._lock)
        self._room_cv = threading.Condition(self._lock)
        self._done_cv = threading.Condition(self._lock)
        self._q = collections.deque()
        self._accepted = 0  # records taken into the deque
        self._taken = 0  # records taken out by the shipper
        self._resolved = 0  # records acked or rejected, in order
        self._flush_target = 0
        self._ship_waiting = False
        self._blocked = 0
        self._closing = False
        self._stop = False
        self._conn = None
        self._stats = dict(accepted=0, sent=0, acked=0, dropped=0, rejected=0, invalid=0,
                           batches=0, retries=0, reconnects=0, last_error=None)
        self._rng = random.Random()
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="telem-shipper", daemon=True)
        self._thread.start()
        _live_clients.add(self)

    # -- records ------------------------------------------------------------------------------

    def trade(self, symbol, side, qty, entry_price, exit_price, pnl, fees=0.0, opened_at=None,
              closed_at=None, trade_id=None, profile=None, script=None):
        """Queue one closed trade. Returns True when queued, False when dropped (buffer full).

        symbol (<= 32 bytes), side (<= 16 bytes) and trade_id (<= 64 bytes) may be None.
        Numbers must be finite (None means absent). opened_at and closed_at are int
        nanoseconds since the epoch (time.time_ns()) or datetimes (naive = UTC); closed_at
        None means now. profile/script (None: the client's) are this record's. Raises
        InvalidRecord naming the field, or ClientClosed.
        """
        try:
            now = time.time_ns() if closed_at is None else 0
            ts = lineproto.time_ns("closed_at", closed_at, now)
            opened = (None if opened_at is None
                      else lineproto.time_ns("opened_at", opened_at, now))
            cache = self._tag_cache
            tags = cache.get(("s", symbol))
            if tags is None:
                tags = self._cache_tag("s", "symbol", symbol, lineproto.SYMBOL_MAX)
            side_tag = cache.get(("d", side))
            if side_tag is None:
                side_tag = self._cache_tag("d", "side", side, lineproto.SIDE_MAX)
            if type(qty) is float and type(entry_price) is float and \
                    type(exit_price) is float and type(pnl) is float and type(fees) is float and \
                    (qty + entry_price + exit_price + pnl + fees) * 0.0 == 0.0:
                pass  # all finite floats: the common case, checked in one expression
            else:
                qty = lineproto.check_number("qty", qty, True)
                entry_price = lineproto.check_number("entry_price", entry_price, True)
                exit_price = lineproto.check_number("exit_price", exit_price, True)
                pnl = lineproto.check_number("pnl", pnl, True)
                fees = lineproto.check_number("fees", fees, True)
            if trade_id is not None:
                trade_id = lineproto.check_text("trade_id", trade_id, lineproto.TRADE_ID_MAX)
                if trade_id is not None:
                    trade_id = lineproto.escape_string(trade_id)
            prefix = self._prefix if profile is None and script is None else \
                self._record_prefix(profile, script)
        except InvalidRecord:
            with self._lock:
                self._stats["invalid"] += 1
            raise
        return self._put((prefix, tags + side_tag, qty, entry_price, exit_price, pnl, fees,
                          opened, trade_id, ts))

    def metric(self, name, value, ts=None, profile=None, script=None):
        """Queue one sample name=value at ts (int ns or datetime; None: now).

        Returns True when queued, False when dropped. Raises InvalidRecord or ClientClosed.
        """
        try:
            key = ("n", name)
            esc = self._tag_cache.get(key)
            if esc is None:
                esc = lineproto.escape_tag(
                    lineproto.check_text("name", name, lineproto.NAME_MAX, required=True))
                if len(self._tag_cache) < _CACHE_MAX:
                    self._tag_cache[key] = esc
            if type(value) is not float or value - value != 0.0:
                value = lineproto.check_number("value", value)
            if type(ts) is not int or ts < 0 or ts > lineproto.TIME_MAX:
                ts = lineproto.time_ns("ts", ts, time.time_ns())
            prefix = self._prefix if profile is None and script is None else \
                self._record_prefix(profile, script)
        except InvalidRecord:
            with self._lock:
                self._stats["invalid"] += 1
            raise
        return self._put((prefix, esc, value, ts))

    def _cache_tag(self, kind, field, value, limit):
        v = lineproto.check_text(field, value, limit)
        esc = "" if v is None else ",%s=%s" % (field, lineproto.escape_tag(v))
        if len(self._tag_cache) < _CACHE_MAX and (value is None or type(value) is str):
            self._tag_cache[(kind, value)] = esc
        return esc

    def _record_prefix(self, profile, script):
        key = (profile, script)
        p = self._prefix_cache.get(key)
        if p is None:
            if profile is None:
                if self._profile is None:
                    raise InvalidRecord("profile", "required (the client has no default)")
                profile = self._profile
            if script is None:
                script = self._script
            prof = lineproto.check_text("profile", profile, lineproto.PROFILE_MAX, True)
            scr = lineproto.check_text("script", script, lineproto.SCRIPT_MAX)
            p = lineproto.tag_prefix(prof, scr)
            if len(self._prefix_cache) < _CACHE_MAX and type(key[0]) in (str, type(None)) \
                    and type(key[1]) in (str, type(None)):
                self._prefix_cache[key] = p
        return p

    def _put(self, item):
        if item[0] is None:
            with self._lock:
                self._stats["invalid"] += 1
            raise InvalidRecord("profile", "required (the client has no default)")
        with self._lock:
            if self._closing:
                raise ClientClosed("telem client is closed")
            if len(self._q) >= self._max_buffered:
                if not self._block or not self._wait_room():
                    self._stats["dropped"] += 1
                    return False
            q = self._q  # read after any wait: the shipper may have swapped in a new deque
            q.append(item)
            self._accepted += 1
            if self._ship_waiting and len(q) >= self._ready_at:
                self._ship_waiting = False
                self._ship_cv.notify()
        return True

    def _wait_room(self):
        """Wait for room (lock held). True when there is room, False on timeout."""
        deadline = None if self._block_timeout is None else \
            time.monotonic() + self._block_timeout
        self._blocked += 1
        try:
            while len(self._q) >= self._max_buffered and not self._closing:
                if deadline is None:
                    self._room_cv.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._room_cv.wait(left)
        finally:
            self._blocked -= 1
            if self._blocked == 0:
                self._done_cv.notify_all()
        if self._closing:
            raise ClientClosed("telem client is closed")
        return True

    # -- flush, close, stats -----------------------------------------------------------------

    def flush(self, timeout=None):
        """Send what is queued and wait until telemd acknowledged (or refused) all of it.

        Returns True when done, False when timeout (seconds; None: no limit) ran out.
        """
        with self._lock:
            return self._wait_resolved(self._accepted, timeout)

    def _wait_resolved(self, target, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._flush_target < target:
            self._flush_target = target
        self._ship_cv.notify()
        while self._resolved < target and not self._stop:
            if deadline is None:
                self._done_cv.wait()
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._done_cv.wait(left)
        return self._resolved >= target

    def close(self, timeout=10.0):
        """Refuse new records, deliver what is queued within timeout seconds, stop.

        Returns True when everything was delivered; records still unsent are lost. Safe to
        call twice.
        """
        with self._lock:
            if self._stop:
                return self._resolved >= self._accepted
            self._closing = True
            self._room_cv.notify_all()
            done = self._wait_resolved(self._accepted, timeout)
            self._stop = True
            self._ship_cv.notify_all()
            conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if threading.current_thread() is not self._thread:
            self._thread.join()
        _live_clients.discard(self)
        return done

    def stats(self):
        """A dict of counters: accepted, queued, sent, acked, dropped, rejected, invalid,
        batches, retries, reconnects, last_error (text of the latest delivery error)."""
        with self._lock:
            s = dict(self._stats)
            s["accepted"] = self._accepted
            s["queued"] = self._accepted - self._resolved
        return s

    @property
    def producer(self):
        return self._producer

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- background thread -------------------------------------------------------------------

    def _take(self, limit):
        """Take up to limit records from the deque and format them: (text, count)."""
        with self._lock:
            q = self._q
            if not q or limit <= 0:
                return "", 0
            if len(q) <= limit:
                items, self._q = q, collections.deque()
            else:
                pop = q.popleft
                items = [pop() for _ in range(limit)]
            n = len(items)
            self._taken += n
            if self._blocked:
                self._room_cv.notify_all()
        return _format(items), n

    def _wait_work(self, pending, behind):
        """Wait until a batch should go; False when the thread must stop."""
        with self._lock:
            deadline = time.monotonic() + self._flush_interval
            while True:
                if self._stop:
                    return False
                n = pending + len(self._q)
                hurry = self._flush_target > self._resolved or self._closing or behind
                now = time.monotonic()
                if n >= self._ready_at or (n > 0 and (hurry or now >= deadline)):
                    return True
                if n == 0 and now >= deadline:
                    deadline = now + self._flush_interval
                self._ship_waiting = True
                self._ship_cv.wait(max(0.0, deadline - now))
                self._ship_waiting = False

    def _sleep(self, seconds):
        with self._lock:
            deadline = time.monotonic() + seconds
            while not self._stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ship_cv.wait(left)
            return not self._stop

    def _backoff(self):
        d = min(self._backoff_max, 0.05 * (2 ** min(self._failures - 1, 20)))
        return d / 2 + self._rng.random() * d / 2

    def _connect(self):
        if self._kind == "unix":
            conn = _UnixHTTPConnection(self._host, self._connect_timeout)
        else:
            conn = http.client.HTTPConnection(self._host, self._port,
                                              timeout=self._connect_timeout)
        conn.connect()
        conn.sock.settimeout(self._io_timeout)
        if self._kind == "tcp":
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._conn = conn
            self._stats["reconnects"] += 1
            stop = self._stop
        if stop:
            self._drop_conn()
            raise ClientClosed("closing")
        return conn

    def _drop_conn(self):
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _note_error(self, msg, retrying):
        with self._lock:
            self._stats["last_error"] = msg
        if not retrying:
            log.error("%s", msg)
        elif self._failures <= 1:
            log.warning("%s; will retry", msg)
        else:
            log.debug("%s; will retry", msg)

    def _run(self):
        pending, pending_n = [], 0  # formatted lines for the next batch, and their count
        behind = False
        seq = 0
        while True:
            if not self._wait_work(pending_n, behind):
                break
            text, n = self._take(self._batch_max - pending_n)
            if n:
                pending.append(text)
                pending_n += n
            if pending_n == 0:
                continue
            body = "".join(pending).encode("utf-8")
            nrec = pending_n
            pending, pending_n = [], 0
            behind = nrec >= self._batch_max
            seq += 1
            headers = dict(self._headers)
            headers["Telem-Batch"] = "%s:%d:%d" % (self._producer, self._epoch, seq)
            first = True
            while True:
                outcome, extra = self._deliver(body, headers, nrec, first, pending_n)
                first = False
                if extra is not None:
                    pending.append(extra[0])
                    pending_n += extra[1]
                if outcome == "too_large" and nrec > 1:
                    # telemd stored nothing of it: resend the first half under the same
                    # number, put the rest in front of the next batch, send smaller batches.
                    keep = nrec // 2
                    parts = body.split(b"\n", keep)
                    body = b"\n".join(parts[:keep]) + b"\n"
                    pending.insert(0, parts[keep].decode("utf-8"))
                    pending_n += nrec - keep
                    with self._lock:
                        self._stats["sent"] -= nrec - keep
                    nrec = keep
                    self._batch_max = max(1, keep)
                    self._ready_at = min(self._ready_at, self._batch_max)
                    log.warning("telemd answered 413: sending batches of at most %d records",
                                keep)
                    continue
                if outcome != "retry":
                    break
                with self._lock:
                    if self._stop:
                        outcome = "stop"
                if outcome == "stop":
                    break
            if outcome == "stop":
                break
        self._drop_conn()

    def _deliver(self, body, headers, nrec, first, pending_n):
        """Send one batch once. Returns (outcome, extra): outcome "done" or "retry";
        extra is (text, count) of records formatted for the next batch meanwhile, or None."""
        extra = None
        with self._lock:
            if first:
                self._stats["sent"] += nrec
            else:
                self._stats["retries"] += 1
            conn = self._conn
        try:
            if conn is not None and conn.sock is not None and \
                    select.select([conn.sock], [], [], 0)[0]:
                self._drop_conn()  # telemd closed the idle connection
                conn = None
            if conn is None:
                conn = self._connect()
            conn.request("POST", "/write?precision=ns", body=body, headers=headers)
            if pending_n < self._batch_max:
                extra = self._take(self._batch_max - pending_n)  # format while telemd works
            resp = conn.getresponse()
            data = resp.read(4096)
            if not resp.isclosed():
                resp.read()
            status = resp.status
            retry_after = resp.getheader("Retry-After")
            if resp.will_close:
                self._drop_conn()
        except ClientClosed:
            return "stop", extra
        except (OSError, http.client.HTTPException) as e:
            self._drop_conn()
            self._failures += 1
            self._note_error("batch %s: %s: %s" % (headers["Telem-Batch"], type(e).__name__, e),
                             True)
            self._sleep(self._backoff())
            return "retry", extra
        if 200 <= status < 300:
            if self._failures:
                log.info("batch %s delivered after %d failed attempts",
                         headers["Telem-Batch"], self._failures)
            self._failures = 0
            with self._lock:
                self._stats["acked"] += nrec
                self._stats["batches"] += 1
                self._resolved += nrec
                self._done_cv.notify_all()
            return "done", extra
        text = data.decode("utf-8", "replace")[:200]
        if status in (503, 429) or status >= 500:
            self._failures += 1
            self._note_error("batch %s: telemd answered %d %s" % (headers["Telem-Batch"],
                                                                   status, text), True)
            delay = self._backoff()
            if status in (503, 429) and retry_after is not None:
                try:
                    delay = min(float(retry_after), _RETRY_AFTER_MAX) or delay
                except ValueError:
                    pass
            if status >= 500 and status != 503:
                self._drop_conn()
            self._sleep(delay)
            return "retry", extra
        if status == 413 and nrec > 1:
            return "too_large", extra
        # 400, 401 and other 4xx: telemd refused this batch and would refuse it again.
        self._failures = 0
        self._note_error("batch %s (%d records) refused by telemd with %d: %s"
                         % (headers["Telem-Batch"], nrec, status, text), False)
        with self._lock:
            self._stats["rejected"] += nrec
            self._resolved += nrec
            self._done_cv.notify_all()
        return "done", extra


def _format(items):
    """Line protocol for queued records (tuples made by Client.trade / Client.metric)."""
    out = []
    ap = out.append
    for r in items:
        if len(r) == 4:
            ap(f"metric{r[0]} {r[1]}={r[2]!r} {r[3]}\n")
            continue
        p, tags, q, e, x, pn, f, o, tid, ts = r
        if q is None or e is None or x is None or pn is None or f is None:
            ap(lineproto.trade_line(p, tags, (q, e, x, pn, f), o, tid, ts))
            continue
        if o is None and tid is None:
            ap(f"trade{p}{tags} qty={q!r},entry_price={e!r},exit_price={x!r},pnl={pn!r},"
               f"fees={f!r} {ts}\n")
        else:
            s = (f"trade{p}{tags} qty={q!r},entry_price={e!r},exit_price={x!r},pnl={pn!r},"
                 f"fees={f!r}")
            if o is not None:
                s += f",opened_at={o}i"
            if tid is not None:
                s += f',trade_id="{tid}"'
            ap(f"{s} {ts}\n")
    return "".join(out)


_live_clients = weakref.WeakSet()


@atexit.register
def _close_live_clients():
    """At interpreter exit, give every open client a few seconds to deliver its records."""
    for c in list(_live_clients):
        try:
            c.close(timeout=5.0)
        except Exception:  # never let telemetry break interpreter shutdown
            pass
