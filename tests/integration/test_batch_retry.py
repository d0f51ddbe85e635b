"""test_batch_retry.py: a batch sent again with the same Telem-Batch header is stored once,
also across a restart (SIGTERM or SIGKILL); a new epoch or another producer is a new batch.

Every check that something was NOT stored again first waits for a later batch to be stored, so
the sink has passed the point where the repeat would be.
"""

import unittest

from harness import TelemdTestCase

TS = 1_795_860_000_000_000_000


def body(tag, n=50):
    return "".join("rb,profile=p%d,script=s %s_%d=%di %d\n" % (i % 3, tag, i, i, TS + i)
                   for i in range(n))


class BatchRetryTest(TelemdTestCase):

    def post(self, d, text, header, unix=False):
        r = d.write(text, headers={"Telem-Batch": header}, unix=unix)
        self.assertEqual(r.status, 204, r)

    def stored(self, d, tag):
        return d.count("aggregated_metric", "name GLOB ?", ("rb.%s_*" % tag,))

    def settle_after(self, d, tag):
        """Sends a fresh untagged batch and waits for it: the sink has passed what came before."""
        self.assertEqual(d.write(body(tag, 5)).status, 204)
        self.assertEqual(d.wait_rows(5, where_trades="0",
                                     where_metrics="name GLOB 'rb.%s_*'" % tag), 5, d.logs())

    def test_repeat_is_stored_once_across_restarts(self):
        d = self.telemd()
        b1 = body("one")
        self.post(d, b1, "prod-A:1000:1")
        self.post(d, b1, "prod-A:1000:1")            # the same batch again, at once
        self.post(d, b1, "prod-A:1000:1", unix=True)  # and over the other listener
        self.settle_after(d, "mark1")
        self.assertEqual(self.stored(d, "one"), 50)

        d.restart()                                   # SIGTERM, start again
        self.post(d, b1, "prod-A:1000:1")
        self.post(d, body("two"), "prod-A:1000:2")
        self.post(d, body("two"), "prod-A:1000:2")
        self.settle_after(d, "mark2")
        self.assertEqual(self.stored(d, "one"), 50)
        self.assertEqual(self.stored(d, "two"), 50)

        d.kill()                                      # SIGKILL: nothing flushed
        d.start()
        self.post(d, b1, "prod-A:1000:1")
        self.post(d, body("two"), "prod-A:1000:2")
        self.settle_after(d, "mark3")
        self.assertEqual(self.stored(d, "one"), 50)
        self.assertEqual(self.stored(d, "two"), 50)

        # An older n than the last one is a repeat too (the producer's counter only grows).
        self.post(d, b1, "prod-A:1000:1")
        # A new epoch is a new series of batches: stored again.
        self.post(d, b1, "prod-A:2000:1")
        # Another producer with the same numbers is its own batch.
        self.post(d, body("three"), "prod-B:1000:1")
        self.settle_after(d, "mark4")
        self.assertEqual(self.stored(d, "one"), 100)
        self.assertEqual(self.stored(d, "three"), 50)
        self.assertEqual(d.stop(), 0)

    def test_repeat_right_after_sigkill(self):
        # The first copy was appended just before the crash; its 204 may never have been seen.
        d = self.telemd()
        self.post(d, body("k"), "prod-K:7:1")
        d.kill()
        d.start()
        self.post(d, body("k"), "prod-K:7:1")
        self.settle_after(d, "markk")
        self.assertEqual(self.stored(d, "k"), 50)

    def test_malformed_header_is_refused(self):
        d = self.telemd()
        for bad in ("prod", "prod:1", "prod:x:1", "prod:1:0", "pr od:1:1", "p:1:1:1",
                    "%s:1:1" % ("p" * 65)):
            with self.subTest(header=bad):
                r = d.write(body("bad", 2), headers={"Telem-Batch": bad})
                self.assertEqual(r.status, 400, r)
                self.assertIn("Telem-Batch", r.json()["error"])
        self.settle_after(d, "markbad")
        self.assertEqual(self.stored(d, "bad"), 0)


if __name__ == "__main__":
    unittest.main()
