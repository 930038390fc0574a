"""Template helpers shared by every ScaleDeck page: `{% load scaledeck %}`.

Numbers always carry their unit, and unknown is shown as "—" (with a title), never as 0.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()

UNKNOWN = "—"


@register.filter
def ago(value: datetime | None) -> str:
    """A past moment as "12 s ago", "4 min ago", "3 h ago", "2 d ago"; "never" for None."""
    if value is None:
        return "never"
    seconds = int((timezone.now() - value).total_seconds())
    if seconds < 0:
        return "just now"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _fmt(value: float, digits: int) -> str:
    text = f"{value:,.{digits}f}"
    # A value that rounds to zero from below would print as "-0": zero is zero.
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0 else text


@register.filter
def secs(value: float | None) -> str:
    """Seconds with the unit: "0.42 s", "12.5 s"."""
    if value is None:
        return UNKNOWN
    return f"{_fmt(value, 2 if abs(value) < 10 else 1)} s"


@register.filter
def duration(value: float | None) -> str:
    """A span of seconds in words a person reads at a glance: "45 s", "12 min 35 s", "1 h 5 min"."""
    if value is None:
        return UNKNOWN
    seconds = round(value)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@register.filter
def latency(value: float | None) -> str:
    """A latency in seconds, in milliseconds under one second: 0.0234 -> "23 ms", 4.9 -> "4.90 s"."""
    if value is None:
        return UNKNOWN
    if abs(value) < 1:
        return f"{_fmt(value * 1000, 1 if abs(value) < 0.01 else 0)} ms"
    return secs(value)


@register.filter
def pct(value: float | None, style: str = "") -> str:
    """A 0-1 fraction as a percentage: 0.734 -> "73 %"; `|pct:"tight"` -> "73%" for cramped places;
    `|pct:"fine"` keeps a decimal under 10 % (error rates): 0.0042 -> "0.4 %"."""
    if value is None:
        return UNKNOWN
    digits = 1 if style == "fine" and abs(value) < 0.1 else 0
    return f"{_fmt(value * 100, digits)}{'' if style == 'tight' else ' '}%"


@register.filter
def qty(value: float | int | None, unit: str = "") -> str:
    """A count with its unit: `{{ queue|qty:"req" }}` -> "12 req"; fractions get one decimal."""
    if value is None:
        return UNKNOWN
    text = _fmt(value, 0) if float(value).is_integer() else _fmt(value, 1)
    return f"{text} {unit}".strip()


@register.filter
def usd(value: Decimal | float | None, per: str = "") -> str:
    """Dollars: `{{ cost|usd:"h" }}` -> "$12.30/h"; small amounts keep 4 decimals ("$0.0312/h")."""
    if value is None:
        return UNKNOWN
    amount = Decimal(str(value))
    digits = 2 if abs(amount) >= 1 or amount == 0 else 4
    text = f"${amount:,.{digits}f}"
    return f"{text}/{per}" if per else text


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.simple_tag
def plotly_script() -> str:
    """The vendored plotly.js cartesian bundle, served locally (see core/staticfiles.py); once per page."""
    from core.staticfiles import plotly_url

    return format_html('<script src="{}" async data-plotly></script>', plotly_url())


@register.simple_tag
def autoscaler_badge(owner) -> str:
    """Who owns the replicas (a fleet.autoscalers.ReplicaOwner), as a badge: "KEDA 2–8", "conflict", "none".

    A tag rather than an include: the overview draws one per deployment, hundreds per poll.
    """
    if owner.conflicts:
        owners = format_html_join(" and ", "{} {}", ((label, a.name) for label, a in owner.labelled_conflicts))
        return format_html('<span class="badge breach" title="{} all scale this Deployment">conflict</span>', owners)
    if not owner.autoscaled:
        return mark_safe('<span class="muted">none</span>')  # noqa: S308 - a constant
    a = owner.autoscaler
    paused = ""
    if owner.paused:
        pinned = f" at {a.paused_replicas} replicas" if a.paused_replicas is not None else ""
        paused = format_html(' <span class="badge near" title="autoscaling paused{}">paused</span>', pinned)
    return format_html(
        '<span class="badge {}" title="{}: {}">{}</span> <span class="range">{}–{}</span>{}',
        owner.kind,
        a.name,
        a.metric,
        owner.badge,
        a.min_replicas,
        a.max_replicas,
        paused,
    )
