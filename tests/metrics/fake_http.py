"""A tiny threading HTTP server with canned answers, standing in for a Prometheus that misbehaves."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHTTP:
    """A threading HTTP server answering every request with respond(path, headers)."""

    def __init__(self, respond: Callable[[str, dict[str, str]], tuple[int, bytes]], delay: float = 0.0):
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.abandoned = 0  # answers the client no longer waited for (it timed out: what a slow Prometheus tests)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append((self.path, dict(self.headers)))
                if delay:
                    time.sleep(delay)
                status, body = respond(self.path, dict(self.headers))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up before the answer: counted, not an error of the fake
                    fake.abandoned += 1

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


EMPTY_VECTOR = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()


def counting_proxy(upstream: str) -> FakeHTTP:
    """Forwards to `upstream`, recording every request path (for counting queries)."""

    def forward(path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(upstream + path, timeout=5) as resp:  # noqa: S310
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    return FakeHTTP(forward)
