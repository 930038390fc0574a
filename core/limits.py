"""Request limits, checked before anything parses or recurses.

A request body is capped in size (`SCALEDECK_API_MAX_BODY_BYTES` under /api/, 1 MB by default;
`SCALEDECK_PAGE_MAX_BODY_BYTES` for pages and the admin) and a JSON body in nesting depth
(`SCALEDECK_JSON_MAX_DEPTH`, 32). Python's JSON decoder recurses once per level, so ~1,000
nested brackets raised RecursionError (a 500) inside DRF's parser, and anything walking the
decoded value afterwards would too. The depth is therefore counted on the raw bytes, without
recursion and without decoding, by `json_depth_exceeds`; the middleware applies it to every
JSON request, and `core.parsers.BoundedJSONParser` applies the same check for DRF wherever the
middleware is not in the way (APIRequestFactory, a view called directly).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpResponse, JsonResponse

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_JSON_MAX_DEPTH = 32

# A JSON string, escapes included; possessive so an unterminated one cannot backtrack.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPEN = frozenset(b"[{")


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """True when JSON text nests arrays/objects deeper than `max_depth`. Linear, no recursion.

    Brackets inside strings do not count. Malformed text is not judged here: the parser
    that runs next refuses it with its own message.
    """
    depth = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub(b'""', body)):
        if match.group()[0] in _OPEN:
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


# Trace uploads (advice/services.py refuses a file over 100 MB itself; the margin is the multipart framing).
TRACE_UPLOAD_PATHS = re.compile(r"^/(api/v1/traces/|advice/deployments/\d+/)$")
TRACE_UPLOAD_MAX_BODY_BYTES = 101 * 1024 * 1024


def max_body_bytes(path: str) -> int:
    if TRACE_UPLOAD_PATHS.match(path):
        return TRACE_UPLOAD_MAX_BODY_BYTES
    if path.startswith("/api/"):
        return settings.SCALEDECK_API_MAX_BODY_BYTES
    return settings.SCALEDECK_PAGE_MAX_BODY_BYTES


def json_max_depth() -> int:
    return settings.SCALEDECK_JSON_MAX_DEPTH


def too_deep_message() -> str:
    return f"JSON nested deeper than {json_max_depth()} levels is not accepted."


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class RequestLimits:
    """Middleware: 413 for a body over the limit, 400 for JSON nested too deep; before CSRF,
    authentication or any view, so no role can reach a recursion or a huge allocation."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refusal = self.refusal(request)
        if refusal is not None:
            status, message = refusal
            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": message}, status=status)
            return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    def refusal(self, request) -> tuple[int, str] | None:
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return 400, "The Content-Length header is not a number."
        if length < 0:
            return 400, "The Content-Length header is not a number."
        limit = max_body_bytes(request.path_info)
        if length > limit:
            return 413, f"The request body is {_size(length)}; at most {_size(limit)} is accepted."
        json_body = length and _is_json(request.META.get("CONTENT_TYPE", ""))
        if json_body and json_depth_exceeds(request.body, json_max_depth()):
            return 400, too_deep_message()
        return None
