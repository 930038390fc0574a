"""HTMX conventions every app's views share: when to answer with a fragment, how to list bad filters."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# On a 400 that carries it, HTMX swaps the answer in anyway (static/js/scaledeck.js): it is the
# page's own rows replaced by the notice naming the refused parameter, not an error to drop.
FILTER_ERRORS_HEADER = "X-ScaleDeck-Filter-Errors"


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


def render_filtered(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    """Render a filtered list page or fragment: 400 when a filter parameter was refused (the page
    names it in place of the rows), as the API answers; `status` otherwise."""
    errors = context.get("filter_errors") or []
    response = render(request, template, context, status=400 if errors else status)
    if errors:
        response[FILTER_ERRORS_HEADER] = str(len(errors))
    return response
