"""Template filters for MIG pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def gib(mib: int | float | None) -> str:
    """MiB as GiB with one decimal and the unit: 20531 -> "20.0 GiB"."""
    if mib is None:
        return "—"
    return f"{mib / 1024:,.1f} GiB"
