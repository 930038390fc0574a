"""A local webhook receiver for tests: a real HTTP server on 127.0.0.1 recording every POST.

`answer` sets the status code of the next answers; `delay` makes it slow (a receiver that
times out). `bodies()` returns the JSON bodies received, in order.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: list[dict] = []
        self.answer = 200
        self.delay = 0.0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def bodies(self) -> list[dict]:
        with self._lock:
            return list(self._bodies)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver._bodies.append(body)
                self.send_response(receiver.answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
