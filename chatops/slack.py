"""Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack).

The slash-command endpoint is open to the internet without a login or a CSRF token, so this check
is its only door: HMAC-SHA256 over `v0:<timestamp>:<raw body>` with the signing secret, compared in
constant time; a timestamp more than 5 minutes away is refused (a captured request cannot be
replayed later), and a signature seen before is refused (nor replayed within those 5 minutes).
"""

from __future__ import annotations

import hashlib
import hmac

from django.core.cache import cache

MAX_AGE_SECONDS = 5 * 60


def expected_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signature_problem(*, secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> str:
    """Why this request is not from Slack, or "" when it is. Pure: no cache, no clock."""
    if not secret:
        return "Slack commands are not configured here (no signing secret)."
    if not timestamp or not signature:
        return "The request is not signed."
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return "The request timestamp is not a number."
    if age > MAX_AGE_SECONDS:
        return "The request is more than 5 minutes old."
    if not hmac.compare_digest(expected_signature(secret=secret, timestamp=timestamp, body=body), signature):
        return "The request signature does not match."
    return ""


def first_use(signature: str) -> bool:
    """True the first time a (valid) signature is seen within its 5 minutes; False for a replay.

    `cache.add` is atomic on Redis and the database cache, so two copies racing get one True."""
    return cache.add(f"chatops:slack-sig:{signature}", 1, timeout=MAX_AGE_SECONDS + 60)
