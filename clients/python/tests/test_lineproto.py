"""Unit tests of telem.lineproto and of the client's checks: escaping, validation, formatting.

No telemd needed. Run: /usr/bin/python3 -m unittest discover -s clients/python/tests
"""

import datetime
import decimal
import math
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import telem  # noqa: E402
from telem import lineproto as lp  # noqa: E402
from telem.client import _format, parse_endpoint  # noqa: E402

# (input, as a tag value or field key, inside a string field): the same table as libtelem's
# tests/unit/test_client_encode.c.
ESCAPES = [
    ("plain", "plain", "plain"),
    ("a b", "a\\ b", "a b"),
    ("a,b", "a\\,b", "a,b"),
    ("a=b", "a\\=b", "a=b"),
    ('a"b', 'a"b', 'a\\"b'),
    ("a\\b", "a\\\\b", "a\\\\b"),
    ("end\\", "end\\\\", "end\\\\"),
    (" ,=", "\\ \\,\\=", " ,="),
    ("café", "café", "café"),
    ("€ 5", "€\\ 5", "€ 5"),
]


class EscapeTest(unittest.TestCase):
    def test_table(self):
        for raw, tag, string in ESCAPES:
            with self.subTest(raw=raw):
                self.assertEqual(lp.escape_tag(raw), tag)
                self.assertEqual(lp.escape_string(raw), string)

    def test_prefix(self):
        self.assertEqual(lp.tag_prefix("p 1", "s,x"), ",profile=p\\ 1,script=s\\,x")
        self.assertEqual(lp.tag_prefix("p", None), ",profile=p")


class CheckTest(unittest.TestCase):
    def assertRefused(self, fn, field, part):
        with self.assertRaises(lp.InvalidRecord) as cm:
            fn()
        self.assertEqual(cm.exception.field, field)
        self.assertIn(part, str(cm.exception))
        self.assertIsInstance(cm.exception, ValueError)

    def test_text(self):
        self.assertEqual(lp.check_text("symbol", "BTC", 32), "BTC")
        self.assertIsNone(lp.check_text("symbol", None, 32))
        self.assertIsNone(lp.check_text("symbol", "", 32))
        self.assertRefused(lambda: lp.check_text("profile", "", 64, True), "profile", "required")
        self.assertRefused(lambda: lp.check_text("symbol", "a\nb", 32), "symbol", "line break")
        self.assertRefused(lambda: lp.check_text("symbol", "a\rb", 32), "symbol", "line break")
        self.assertRefused(lambda: lp.check_text("side", "b\tuy", 16), "side",
                           "control character 0x09")
        self.assertRefused(lambda: lp.check_text("symbol", "x" * 33, 32), "symbol",
                           "longer than 32 bytes")
        self.assertEqual(lp.check_text("symbol", "x" * 32, 32), "x" * 32)
        # The limit counts UTF-8 bytes: 11 euro signs are 33 bytes.
        self.assertRefused(lambda: lp.check_text("symbol", "€" * 11, 32), "symbol", "longer")
        self.assertEqual(lp.check_text("symbol", "€" * 10, 32), "€" * 10)
        self.assertRefused(lambda: lp.check_text("symbol", "\ud800", 32), "symbol", "Unicode")
        self.assertRefused(lambda: lp.check_text("symbol", 5, 32), "symbol", "expected a str")

    def test_numbers(self):
        self.assertEqual(lp.check_number("qty", 1), 1.0)
        self.assertEqual(lp.check_number("qty", decimal.Decimal("1.25")), 1.25)
        self.assertIsNone(lp.check_number("qty", None, optional=True))
        self.assertRefused(lambda: lp.check_number("pnl", math.nan), "pnl", "finite")
        self.assertRefused(lambda: lp.check_number("pnl", math.inf), "pnl", "finite")
        self.assertRefused(lambda: lp.check_number("pnl", "1"), "pnl", "expected a number")
        self.assertRefused(lambda: lp.check_number("pnl", True), "pnl", "expected a number")
        self.assertRefused(lambda: lp.check_number("pnl", 10 ** 400), "pnl", "finite")
        self.assertRefused(lambda: lp.check_number("value", None), "value", "required")

    def test_times(self):
        self.assertEqual(lp.time_ns("ts", None, 7), 7)
        self.assertEqual(lp.time_ns("ts", 5, 7), 5)
        naive = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)
        aware = naive.replace(tzinfo=datetime.timezone.utc)
        want = 1704164645123456000
        self.assertEqual(lp.time_ns("ts", naive, 0), want)
        self.assertEqual(lp.time_ns("ts", aware, 0), want)
        plus2 = aware.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
        self.assertEqual(lp.time_ns("ts", plus2, 0), want)
        self.assertRefused(lambda: lp.time_ns("ts", -1, 0), "ts", "negative")
        self.assertRefused(lambda: lp.time_ns("ts", 2 ** 63, 0), "ts", "2262")
        self.assertRefused(lambda: lp.time_ns("ts", 1.5, 0), "ts", "nanoseconds as an int")
        self.assertRefused(lambda: lp.time_ns("ts", datetime.datetime(1960, 1, 1), 0), "ts",
                           "negative")

    def test_producer(self):
        self.assertEqual(lp.check_producer("py-1.a_B"), "py-1.a_B")
        for bad in ("", "a b", "x" * 65, "a:b", None):
            self.assertRaises(lp.InvalidRecord, lp.check_producer, bad)


class FormatTest(unittest.TestCase):
    def test_lines(self):
        prefix = lp.tag_prefix("p1", "exec")
        self.assertEqual(
            lp.trade_line(prefix, ",symbol=BTC-USD,side=buy", (1.0, 100.5, 101.0, 0.5, 0.01),
                          1699999999000000000, "abc", 1700000000000000001),
            "trade,profile=p1,script=exec,symbol=BTC-USD,side=buy qty=1.0,entry_price=100.5,"
            "exit_price=101.0,pnl=0.5,fees=0.01,opened_at=1699999999000000000i,"
            'trade_id="abc" 1700000000000000001\n')
        self.assertEqual(lp.trade_line(prefix, "", (None, None, 2.0, None, None), None, None, 5),
                         "trade,profile=p1,script=exec exit_price=2.0 5\n")
        self.assertEqual(lp.trade_line(prefix, "", (None,) * 5, None, None, 5),
                         'trade,profile=p1,script=exec trade_id="" 5\n')
        self.assertEqual(lp.metric_line(prefix, "eq\\=ity", 1e-05, 9),
                         "metric,profile=p1,script=exec eq\\=ity=1e-05 9\n")

    def test_fast_formatter_matches_reference(self):
        rnd = random.Random(5)
        prefix = lp.tag_prefix("p", "s")
        for _ in range(2000):
            nums = tuple(rnd.choice([None, rnd.uniform(-1e6, 1e6), float(rnd.randint(-9, 9)),
                                     rnd.random() * 1e-300]) for _ in range(5))
            opened = rnd.choice([None, rnd.randint(0, 2 ** 62)])
            tid = rnd.choice([None, "t\\\"1", "x"])
            ts = rnd.randint(0, 2 ** 62)
            item = (prefix, ",symbol=X", *nums, opened, tid, ts)
            self.assertEqual(_format([item]),
                             lp.trade_line(prefix, ",symbol=X", nums, opened, tid, ts))
            v = rnd.uniform(-1e9, 1e9)
            self.assertEqual(_format([(prefix, "n", v, ts)]), lp.metric_line(prefix, "n", v, ts))

    def test_floats_round_trip(self):
        rnd = random.Random(7)
        for _ in range(10000):
            v = rnd.uniform(-1e12, 1e12) * 10 ** rnd.randint(-300, 290)
            self.assertEqual(float(lp.fmt_float(v)), v)


class EndpointTest(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(parse_endpoint("unix:/a/b.sock"), ("unix", "/a/b.sock", None))
        self.assertEqual(parse_endpoint("unix:///a/b.sock"), ("unix", "/a/b.sock", None))
        self.assertEqual(parse_endpoint("http://127.0.0.1:9000"), ("tcp", "127.0.0.1", 9000))
        self.assertEqual(parse_endpoint("http://localhost/"), ("tcp", "localhost", 8186))
        self.assertEqual(parse_endpoint("http://[::1]:7"), ("tcp", "::1", 7))
        for bad in ("ftp://x", "unix:", "http://:5", "http://h:0", "http://h:5/write"):
            self.assertRaises(ValueError, parse_endpoint, bad)


class ClientCheckTest(unittest.TestCase):
    """Records refused at the call, before anything is queued (telemd not needed)."""

    def setUp(self):
        self.c = telem.Client("unix:/nonexistent/telemd.sock", profile="p", script="s",
                              flush_interval=60)

    def tearDown(self):
        self.c.close(timeout=0.1)

    def test_refusals_name_the_field(self):
        c = self.c
        cases = [
            (lambda: c.trade("A\nB", "buy", 1, 2, 3, 4), "symbol"),
            (lambda: c.trade("AB", "b uy\n", 1, 2, 3, 4), "side"),
            (lambda: c.trade("AB", "buy", 1, 2, 3, math.nan), "pnl"),
            (lambda: c.trade("AB", "buy", math.inf, 2, 3, 4), "qty"),
            (lambda: c.trade("AB", "buy", 1, 2, 3, 4, trade_id="x" * 65), "trade_id"),
            (lambda: c.trade("AB", "buy", 1, 2, 3, 4, profile=""), "profile"),
            (lambda: c.trade("AB", "buy", 1, 2, 3, 4, closed_at=-5), "closed_at"),
            (lambda: c.trade("AB", "buy", 1, 2, 3, 4, opened_at="yesterday"), "opened_at"),
            (lambda: c.metric("", 1.0), "name"),
            (lambda: c.metric("n\n", 1.0), "name"),
            (lambda: c.metric("n", math.nan), "value"),
            (lambda: c.metric("n", 1.0, ts=-1), "ts"),
            (lambda: c.metric("n", 1.0, profile="p\n"), "profile"),
        ]
        for fn, field in cases:
            with self.subTest(field=field):
                with self.assertRaises(telem.InvalidRecord) as cm:
                    fn()
                self.assertEqual(cm.exception.field, field)
        s = c.stats()
        self.assertEqual(s["invalid"], len(cases))
        self.assertEqual(s["accepted"], 0)

    def test_bad_settings(self):
        self.assertRaises(ValueError, telem.Client, "unix:/x", profile="p", on_full="maybe")
        self.assertRaises(ValueError, telem.Client, "ftp://x", profile="p")
        self.assertRaises(ValueError, telem.Client, "unix:/x", profile="p", producer="a b")
        self.assertRaises(ValueError, telem.Client, "unix:/x", profile="p" * 65)
        self.assertRaises(ValueError, telem.Client, "unix:/x", profile="p", batch_max=0)

    def test_no_default_profile(self):
        c = telem.Client("unix:/nonexistent/telemd.sock", flush_interval=60)
        try:
            with self.assertRaises(telem.InvalidRecord) as cm:
                c.metric("x", 1.0)
            self.assertEqual(cm.exception.field, "profile")
            self.assertTrue(c.metric("x", 1.0, profile="given"))
        finally:
            c.close(timeout=0.1)

    def test_drop_policy_counts(self):
        c = telem.Client("unix:/nonexistent/telemd.sock", profile="p", max_buffered=10,
                         batch_max=1000, flush_interval=60)
        try:
            results = [c.metric("x", float(i), ts=i + 1) for i in range(50)]
            s = c.stats()
            self.assertEqual(results.count(True), s["accepted"])
            self.assertEqual(results.count(False), s["dropped"])
            self.assertEqual(s["accepted"] + s["dropped"], 50)
        finally:
            c.close(timeout=0.1)

    def test_closed(self):
        self.c.close(timeout=0.1)
        self.assertRaises(telem.ClientClosed, self.c.metric, "x", 1.0)


if __name__ == "__main__":
    unittest.main()
