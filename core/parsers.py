"""DRF's JSON parser with ScaleDeck's limits: nesting depth checked before decoding.

NaN and Infinity are refused by DRF's strict JSON mode (`STRICT_JSON`, on by default), which
this parser keeps. A lone surrogate escape (`"\\ud800"`) is valid JSON but not text: echoed in an
error message it made the response unencodable (a 500), so it is refused here.
"""

from __future__ import annotations

import io

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.limits import json_depth_exceeds, json_max_depth, too_deep_message


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        if json_depth_exceeds(body, json_max_depth()):
            raise ParseError(too_deep_message())
        data = super().parse(io.BytesIO(body), media_type, parser_context)
        if not _all_text_encodable(data):
            raise ParseError("JSON strings must be valid Unicode (a lone surrogate escape such as \\ud800 is not).")
        return data


def _all_text_encodable(data) -> bool:
    """Every key and string value encodes as UTF-8. Iterative: the depth is already bounded, but
    nothing here needs recursion."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True
