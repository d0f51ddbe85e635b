"""test_crash.py: telemd killed with SIGKILL at random moments under load loses nothing it
acknowledged, stores nothing that was not sent, and stores nothing twice.

Many concurrent senders post bodies of lines with unique ids while telemd is killed (SIGKILL,
nothing flushed) several times and restarted on the same data folder. Most senders number
their batches with Telem-Batch and resend a batch until it is answered, as the real clients do:
every one of their batches must end up stored exactly once. The others send without the header
and move on after a broken connection: their unanswered batches may be stored or not, but never
twice. The random seed is printed, and TELEM_CRASH_SEED replays a run.
"""

import os
import random
import time
import unittest

from harness import TelemdTestCase
from sender import run_senders, stored_ids

KILLS = int(os.environ.get("TELEM_CRASH_KILLS", "5"))
SENDERS = 8
UNTAGGED = 2  # senders without Telem-Batch (indexes 0 and 1)


class CrashTest(TelemdTestCase):

    def test_sigkill_under_load(self):
        seed = int(os.environ.get("TELEM_CRASH_SEED", str(time.time_ns() % 1_000_000)))
        print("\ncrash test seed %d (TELEM_CRASH_SEED=%d replays it)" % (seed, seed))
        rng = random.Random(seed)
        d = self.telemd()

        senders, stop = run_senders(d, SENDERS, lines=200, trade_every=3)
        for s in senders[:UNTAGGED]:
            s.batch_header = False
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(2.0, 6.0))
                d.kill()
                time.sleep(rng.uniform(0.0, 0.5))
                d.start()
            time.sleep(rng.uniform(1.0, 2.0))
        finally:
            stop.set()
            for s in senders:
                s.join(180)
        self.assertFalse(any(s.is_alive() for s in senders), "a sender did not finish")

        acked, unknown, sent = set(), set(), set()
        errors = []
        for s in senders:
            acked.update(s.ids_with("acked"))
            unknown.update(s.ids_with("unknown"))
            sent.update(s.sent_ids())
            errors += s.errors
        self.assertEqual(errors, [], "senders got unexpected answers")
        self.assertGreater(len(acked), 10000, "too little was acknowledged to mean anything")

        # The sink catches up after the last restart.
        d.wait_rows(len(acked), timeout=180, where_trades="trade_id LIKE 's%'",
                    where_metrics="name LIKE 'ct.%'")
        d.wait_settled(timeout=60, quiet=2.0)
        stored = stored_ids(d)

        missing = acked - stored.keys()
        unsent = stored.keys() - sent
        twice = {i: n for i, n in stored.items() if n > 1}
        print("crash test: %d kills, %d lines sent, %d acknowledged, %d unanswered, "
              "%d stored, %d retried requests"
              % (KILLS, len(sent), len(acked), len(unknown), len(stored),
                 sum(s.requests for s in senders) - sum(len(s.batches) for s in senders)))
        self.assertEqual(sorted(missing)[:20], [], "%d acknowledged lines are not stored"
                         % len(missing))
        self.assertEqual(sorted(unsent)[:20], [], "stored lines that were never sent")
        self.assertEqual(dict(list(twice.items())[:20]), {}, "%d lines stored twice" % len(twice))

        # Tagged senders resend until answered: all of their batches are acknowledged.
        for s in senders[UNTAGGED:]:
            open_batches = [b for b, e in s.batches.items() if e["status"] != "acked"]
            self.assertEqual(open_batches, [], "sender %d: batches never acknowledged" % s.index)
        # The kills really hit traffic: some requests broke and were sent again.
        retried = sum(1 for s in senders for e in s.batches.values() if e["attempts"] > 1)
        broken = sum(1 for s in senders[:UNTAGGED] for e in s.batches.values()
                     if e["status"] == "unknown")
        self.assertGreater(retried + broken, 0, "no kill interrupted a request")

        # Stored values are the ones sent.
        checked = 0
        for name, value, profile in d.sql("SELECT name, value, profile_id FROM aggregated_metric "
                                          "WHERE name GLOB 'ct.s2_1_*' ORDER BY seq"):
            i = int(name.rsplit("_", 1)[1])
            self.assertEqual(value, 1 * 100000 + i)
            self.assertEqual(profile, "p%d" % ((2 + i) % 4))
            checked += 1
        self.assertGreater(checked, 0)

        self.assertEqual(d.stop(), 0, d.logs())


if __name__ == "__main__":
    unittest.main()
