"""HTMX conventions every app's views share: when to answer with a fragment, how to list bad filters."""

from __future__ import annotations

from django.http import HttpRequest


def wants_fragment(request: HttpRequest) -> bool:
    """An HTMX request that is not a boosted navigation: answer with the fragment, not the page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted


def filter_errors(filterset) -> list[str]:
    """A bound FilterSet's errors as "parameter: message" lines (empty when valid)."""
    if filterset.is_valid():
        return []
    return [f"{name}: {message}" for name, messages in filterset.errors.items() for message in messages]


def filtered_rows(filterset):
    """(rows, errors): the FilterSet's rows, or none at all with the error lines when a parameter is
    unknown or malformed (a page never shows "everything" for a filter it could not apply)."""
    errors = filter_errors(filterset)
    return (filterset.queryset.none() if errors else filterset.qs), errors
