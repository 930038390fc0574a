"""DRF's JSON parser with ScaleDeck's limits: nesting depth checked before decoding.

NaN and Infinity are refused by DRF's strict JSON mode (`STRICT_JSON`, on by default), which
this parser keeps.
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
        return super().parse(io.BytesIO(body), media_type, parser_context)

