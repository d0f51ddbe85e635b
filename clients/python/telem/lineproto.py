"""InfluxDB line protocol as telemd reads it: checking values, escaping them, writing lines.

Pure functions and constants, no I/O. The client checks every value when a record is handed
to it (so a bad record raises at the call, naming the field, and telemd never sees a bad
line) and escapes it once; the background thread then only joins pre-escaped pieces.

Escaping rules (the same as libtelem and telemd's parser): in tag values and field keys a
backslash goes before ``,`` ``=`` space and ``\\``; in string field values before ``"`` and
``\\``. Control characters, newlines included, cannot be written in line protocol and are
refused. Lengths are the published column limits, counted in UTF-8 bytes.
"""

import datetime
import decimal
import math
import numbers
import re

PROFILE_MAX = 64
SCRIPT_MAX = 64
SYMBOL_MAX = 32
SIDE_MAX = 16
NAME_MAX = 128
TRADE_ID_MAX = 64
PRODUCER_MAX = 64
TIME_MAX = 2 ** 63 - 1  # nanoseconds: telemd keeps times in a signed 64-bit integer

TRADE_FIELDS = ("qty", "entry_price", "exit_price", "pnl", "fees")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TAG_SPECIAL = re.compile(r"[ ,=\\]")
_STRING_SPECIAL = re.compile(r'["\\]')
_PRODUCER = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)


class InvalidRecord(ValueError):
    """A value that telemd would refuse. ``field`` names it; the message says why."""

    def __init__(self, field, reason):
        super().__init__("%s: %s" % (field, reason))
        self.field = field
        self.reason = reason


def check_text(field, value, limit, required=False):
    """Return value (a str) after checking it; None or "" is allowed unless required.

    Raises InvalidRecord naming field when value is not a str, is empty but required, holds a
    control character (a newline, say), or is longer than limit bytes of UTF-8.
    """
    if value is None or value == "":
        if required:
            raise InvalidRecord(field, "required")
        return None
    if type(value) is not str:
        raise InvalidRecord(field, "expected a str, got %s" % type(value).__name__)
    m = _CONTROL.search(value)
    if m is not None:
        c = m.group()
        if c in "\r\n":
            raise InvalidRecord(field, "contains a line break (character %d)" % (m.start() + 1))
        raise InvalidRecord(field, "contains control character 0x%02x (character %d)"
                            % (ord(c), m.start() + 1))
    if len(value) > limit or (not value.isascii() and len(_utf8(field, value)) > limit):
        raise InvalidRecord(field, "longer than %d bytes" % limit)
    return value


def _utf8(field, value):
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRecord(field, "is not valid Unicode (lone surrogate)") from None


def escape_tag(value):
    """Escape a checked tag value or field key."""
    if _TAG_SPECIAL.search(value) is None:
        return value
    return (value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
            .replace(" ", "\\ "))


def escape_string(value):
    """Escape a checked string field value (without the surrounding quotes)."""
    if _STRING_SPECIAL.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace('"', '\\"')


def check_number(field, value, optional=False):
    """Return value as a finite float. None is allowed (and returned) when optional.

    Accepts int, float, Decimal and other real numbers; refuses bool, str, NaN and infinity.
    """
    if type(value) is float:
        if value - value == 0.0:
            return value
        raise InvalidRecord(field, "not a finite number (NaN or infinity)")
    if value is None:
        if optional:
            return None
        raise InvalidRecord(field, "required")
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, decimal.Decimal)):
        raise InvalidRecord(field, "expected a number, got %s" % type(value).__name__)
    try:
        f = float(value)
    except (OverflowError, ValueError):
        raise InvalidRecord(field, "not a finite number") from None
    if not math.isfinite(f):
        raise InvalidRecord(field, "not a finite number (NaN or infinity)")
    return f


def time_ns(field, value, now_ns, optional=False):
    """Return value as integer nanoseconds since the epoch, UTC.

    value is an int (nanoseconds), a datetime (naive means UTC, as datetime.utcnow() gives),
    or None, which means now_ns (or None when optional). Negative times are refused.
    """
    if value is None:
        return None if optional else now_ns
    if type(value) is int:
        if value < 0:
            raise InvalidRecord(field, "negative time")
        if value > TIME_MAX:
            raise InvalidRecord(field, "time beyond 2262 (nanoseconds overflow 64 bits)")
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            d = value - _EPOCH_NAIVE
        else:
            d = value - _EPOCH
        ns = ((d.days * 86400 + d.seconds) * 1000000 + d.microseconds) * 1000
        if ns < 0:
            raise InvalidRecord(field, "negative time (before 1970)")
        if ns > TIME_MAX:
            raise InvalidRecord(field, "time beyond 2262 (nanoseconds overflow 64 bits)")
        return ns
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidRecord(field, "expected nanoseconds as an int (time.time_ns()) or a "
                            "datetime, got %s" % type(value).__name__)
    return time_ns(field, int(value), now_ns, optional)


def check_producer(producer):
    """Raise InvalidRecord unless producer is 1..64 of [A-Za-z0-9._-]."""
    if type(producer) is not str or _PRODUCER.match(producer) is None:
        raise InvalidRecord("producer", "must be 1..64 of A-Z a-z 0-9 . _ -")
    return producer


def tag_prefix(profile, script):
    """The escaped ``,profile=P[,script=S]`` part of a line, from checked values."""
    s = ",profile=" + escape_tag(profile)
    if script:
        s += ",script=" + escape_tag(script)
    return s


def fmt_float(value):
    """The shortest text that reads back as the same float (repr), for a finite float."""
    return repr(value)


def trade_line(prefix, tags, numbers, opened_ns, trade_id, ts_ns):
    """One trade line from escaped pieces.

    prefix is tag_prefix(); tags the escaped ``,symbol=X,side=Y`` part ("" when absent);
    numbers the five floats (qty, entry_price, exit_price, pnl, fees), None where absent;
    opened_ns int or None; trade_id the escaped id or None; ts_ns the close time.
    """
    fields = []
    for name, v in zip(TRADE_FIELDS, numbers):
        if v is not None:
            fields.append("%s=%r" % (name, v))
    if opened_ns is not None:
        fields.append("opened_at=%di" % opened_ns)
    if trade_id is not None:
        fields.append('trade_id="%s"' % trade_id)
    if not fields:
        fields.append('trade_id=""')
    return "trade%s%s %s %d\n" % (prefix, tags, ",".join(fields), ts_ns)


def metric_line(prefix, name, value, ts_ns):
    """One metric line from escaped pieces: name is the escaped field key."""
    return "metric%s %s=%r %d\n" % (prefix, name, value, ts_ns)
