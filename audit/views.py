"""The audit page: every change, newest first, filterable like the API."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.forms import AuditFilterForm
from audit.selectors import AuditFilter, audit_rows, page_row

AUDIT_PAGE_SIZE = 50


@require_GET
def audit(request):
    """Every change, newest first: ScaleDeck's own settings and the cluster writes (linked to their action)."""
    form = AuditFilterForm(request.GET)
    f = form.audit_filter() if form.is_valid() else AuditFilter()
    try:
        number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        number = 1
    total, rows = audit_rows(f=f, offset=(number - 1) * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE)
    pages = Paginator(range(total), AUDIT_PAGE_SIZE)
    page = pages.get_page(number)
    rows = [page_row(r) for r in rows]
    return render(
        request,
        "audit/list.html",
        {"form": form, "rows": rows, "page": page, "total": total},
        status=200 if form.is_valid() else 400,
    )
