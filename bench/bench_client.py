#!/usr/bin/python3
"""bench_client.py: records per second from one Python process into telemd, through telem.Client.

    bench_client.py ENDPOINT [RECORDS]

Makes RECORDS (default 500,000) trades as fast as one thread can, on_full="block", then
flushes; prints the rate of the calls alone and the rate until telemd acknowledged the last
record (204: durable in its spool). Then the same with metrics. Standard library only.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                "python"))

import telem  # noqa: E402


def run(endpoint, n, kind):
    c = telem.Client(endpoint, profile="bench-py", script="bench", on_full="block",
                     max_buffered=200000)
    base = 1700000000000000000
    t0 = time.perf_counter()
    if kind == "trade":
        trade = c.trade
        for i in range(n):
            trade("BTC-USD", "buy", 1.0, 100.25, 100.75, 0.5, 0.01, closed_at=base + i)
    else:
        metric = c.metric
        for i in range(n):
            metric("equity", 10000.0 + i, base + i)
    t1 = time.perf_counter()
    ok = c.flush(300)
    t2 = time.perf_counter()
    s = c.stats()
    c.close()
    print("one Python process, %s: %d in %.2f s = %.0f records/s acked by telemd "
          "(calls alone %.0f/s; acked %d, batches %d, retries %d, flush %s)"
          % (kind + "s", n, t2 - t0, s["acked"] / (t2 - t0), n / (t1 - t0), s["acked"],
             s["batches"], s["retries"], "ok" if ok else "timed out"))
    return ok


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500000
    ok = run(sys.argv[1], n, "trade") and run(sys.argv[1], n, "metric")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
