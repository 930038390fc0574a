import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fleet.conftest import api, fake_metrics, operator, viewer  # noqa: F401 - shared fixtures
from tests.scaling.conftest import run_on_commit, world  # noqa: F401 - the fake Kubernetes cluster

SECRET = "test-signing-secret"


@pytest.fixture
def slack_hooks(settings):
    """A local stand-in for hooks.slack.com: records each JSON message posted to it."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    settings.SCALEDECK_SLACK_SIGNING_SECRET = SECRET
    settings.SCALEDECK_SLACK_RESPONSE_URL_PREFIX = base
    yield base, received
    server.shutdown()
