"""What a GPU quota entry may be called and hold: pure rules shared by the API, pages and admin.

A ResourceQuota's `spec.hard` key is a Kubernetes resource name: `requests.` followed by a
qualified name (an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters),
at most 253 characters in all. ScaleDeck changes only GPU entries: `requests.nvidia.com/gpu`
and `requests.nvidia.com/mig-<profile>`. A value is a whole count of devices, bounded so a
typo (or an attack) cannot ask the API server to store an absurd number.
"""

from __future__ import annotations

import re

RESOURCE_NAME_MAX = 253
NAME_MAX = 63
MAX_QUOTA_DEVICES = 100_000  # devices per namespace; the largest clusters hold a few tens of thousands
GPU_ENTRY = "requests.nvidia.com/gpu"
MIG_ENTRY_PREFIX = "requests.nvidia.com/mig-"

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_QUALIFIED = re.compile(
    rf"(?:(?P<prefix>{_DNS_LABEL}(?:\.{_DNS_LABEL})*)/)?(?P<name>[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _shown(key: str) -> str:
    return key if len(key) <= 80 else key[:80] + "…"


def quota_key_error(key: object) -> str | None:
    """Why `key` cannot be a GPU quota entry, in words; None when it can."""
    hint = "use requests.nvidia.com/gpu or requests.nvidia.com/mig-<profile>"
    if not isinstance(key, str) or not key:
        return f"a quota entry needs a name: {hint}"
    if _CONTROL.search(key):
        return "a quota entry name cannot contain control characters (such as a newline or tab)"
    if len(key) > RESOURCE_NAME_MAX:
        return f"a quota entry name is at most {RESOURCE_NAME_MAX} characters, not {len(key)}"
    match = _QUALIFIED.fullmatch(key.removeprefix("requests."))
    if not key.startswith("requests.") or match is None or len(match["name"]) > NAME_MAX:
        return f"“{_shown(key)}” is not a Kubernetes resource name: {hint}"
    if key != GPU_ENTRY and not (key.startswith(MIG_ENTRY_PREFIX) and len(key) > len(MIG_ENTRY_PREFIX)):
        return f"“{_shown(key)}” is not a GPU quota entry: {hint}"
    return None


def quota_value_error(key: str, value: object) -> str | None:
    """Why `value` cannot be the hard limit of `key`; None when it can (None itself removes the entry)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{key} must be a whole number of devices"
    if not 0 <= value <= MAX_QUOTA_DEVICES:
        return f"{key} must be between 0 and {MAX_QUOTA_DEVICES:,} devices"
    return None
