"""Validators shared by forms and serializers (DRF runs Django validators as its own)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# C0 and C1 control characters, except tab, newline and carriage return, which people type.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def no_control_characters(value: str) -> None:
    """Free text (a reason, a name) goes into the audit log, pages and terminals: no escape codes."""
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValidationError("must not contain control characters", code="control_characters")


def reason_problem(reason: str, *, max_length: int = 2000) -> str | None:
    """Why an audit reason cannot be stored as given, in words; None when it can. For services,
    whose callers (pages, API, commands) may not have run a form's validators."""
    if len(reason) > max_length:
        return f"a reason is at most {max_length} characters, not {len(reason):,}"
    if _CONTROL.search(reason):
        return "a reason must not contain control characters"
    return None
