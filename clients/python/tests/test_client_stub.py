"""Client mechanics against a scripted HTTP stub (no telemd needed): retries resend the same
Telem-Batch header and body after a 503 (honouring Retry-After), after a 500 and after a
connection cut with no answer; a 400 is counted rejected and the next batch goes on; batches
of one client are numbered 1, 2, 3... and never overlap; flush, close and the context manager.
"""

import http.server
import os
import socketserver
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import telem  # noqa: E402


class Stub:
    """A TCP HTTP server that answers each POST by the next action of a script."""

    def __init__(self, script=()):
        self.script = list(script)  # actions: 204, 400, 500, 503, "cut"
        self.requests = []  # (Telem-Batch, body, action)
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with stub.lock:
                    stub.active += 1
                    stub.max_active = max(stub.max_active, stub.active)
                    action = stub.script.pop(0) if stub.script else 204
                    stub.requests.append((self.headers["Telem-Batch"], body, action))
                time.sleep(0.005)
                with stub.lock:
                    stub.active -= 1
                if action == "cut":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(action)
                if action == 503:
                    self.send_header("Retry-After", "0")
                body = b'{"code":"invalid","error":"line 1, column 1: test"}' \
                    if action == 400 else b""
                if action != 204:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class StubTest(unittest.TestCase):
    def client(self, stub, **kw):
        kw.setdefault("flush_interval", 0.05)
        kw.setdefault("backoff_max", 0.05)
        return telem.Client(stub.endpoint, profile="p", script="s", **kw)

    def test_retries_resend_same_batch(self):
        stub = Stub([503, "cut", 500, 204])
        try:
            with self.client(stub) as c:
                for i in range(10):
                    c.metric("m", float(i), ts=i + 1)
                self.assertTrue(c.flush(10))
                s = c.stats()
            self.assertEqual(len(stub.requests), 4)
            headers = {r[0] for r in stub.requests}
            bodies = {r[1] for r in stub.requests}
            self.assertEqual(len(headers), 1, headers)
            self.assertEqual(len(bodies), 1)
            self.assertTrue(stub.requests[0][0].endswith(":1"))
            self.assertEqual(stub.requests[0][1].count(b"\n"), 10)
            self.assertEqual(s["acked"], 10)
            self.assertEqual(s["retries"], 3)
            self.assertEqual(s["batches"], 1)
        finally:
            stub.close()

    def test_rejected_batch_moves_on(self):
        stub = Stub([400])
        try:
            c = self.client(stub)
            c.metric("m", 1.0, ts=1)
            self.assertTrue(c.flush(10))
            c.metric("m", 2.0, ts=2)
            self.assertTrue(c.flush(10))
            s = c.stats()
            self.assertTrue(c.close())
            self.assertEqual(s["rejected"], 1)
            self.assertEqual(s["acked"], 1)
            self.assertIn("400", s["last_error"])
            self.assertEqual([r[0].rsplit(":", 1)[1] for r in stub.requests], ["1", "2"])
        finally:
            stub.close()

    def test_batches_in_order_one_at_a_time(self):
        stub = Stub()
        try:
            c = self.client(stub, batch_max=100, producer="prod-1")
            for i in range(2000):
                c.trade("X", "buy", 1.0, 2.0, 3.0, 1.0, 0.1, closed_at=i + 1)
            self.assertTrue(c.close(10))
            numbers = [int(r[0].split(":")[2]) for r in stub.requests]
            self.assertEqual(numbers, list(range(1, len(numbers) + 1)))
            self.assertTrue(all(r[0].startswith("prod-1:") for r in stub.requests))
            self.assertEqual(sum(r[1].count(b"\n") for r in stub.requests), 2000)
            self.assertEqual(stub.max_active, 1)
        finally:
            stub.close()

    def test_block_policy_waits_for_room(self):
        stub = Stub([503] * 3)
        try:
            c = self.client(stub, max_buffered=5, batch_max=5, on_full="block",
                            block_timeout=10)
            for i in range(40):
                self.assertTrue(c.metric("m", float(i), ts=i + 1))
            self.assertTrue(c.close(10))
            s = c.stats()
            self.assertEqual(s["acked"], 40)
            self.assertEqual(s["dropped"], 0)
        finally:
            stub.close()

    def test_block_timeout_drops_and_counts(self):
        c = telem.Client("unix:/nonexistent/telemd.sock", profile="p", max_buffered=2,
                         batch_max=100, flush_interval=60, on_full="block", block_timeout=0.05)
        try:
            results = [c.metric("m", 1.0, ts=1) for _ in range(10)]
            time.sleep(0.2)
            results += [c.metric("m", 1.0, ts=1) for _ in range(10)]
            s = c.stats()
            # The buffer holds max_buffered records beside the one batch being retried.
            self.assertLessEqual(s["accepted"], 2 + 100)
            self.assertEqual(results.count(False), s["dropped"])
            self.assertGreater(s["dropped"], 0)
            self.assertEqual(s["accepted"] + s["dropped"], 20)
        finally:
            self.assertFalse(c.close(timeout=0.1))


if __name__ == "__main__":
    unittest.main()
