"""Each request gets an id, and its log lines say who made it.

The id comes from the proxy's `X-Request-ID` when it sends a sane one, else a new one; it is
sent back in the response header, which gunicorn's access log prints, so one id ties the
access line to the application's lines.
"""

from __future__ import annotations

import re
import uuid

from ops.logs import start_request

REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


class RequestLogContext:
    """Middleware, after AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = request.headers.get("X-Request-ID", "")
        request_id = sent if REQUEST_ID.match(sent) else uuid.uuid4().hex
        request.request_id = request_id
        # Kept until request_finished (ops.apps), not reset when the response leaves here: Django
        # logs a 4xx/5xx ("Not Found: ...") after the middleware has returned, and that line
        # belongs to this request too.
        start_request(request_id=request_id, request=request)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
