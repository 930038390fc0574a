"""GET /api/v1/audit/: the one audit list (audit/selectors.py), filterable ?kind=&actor=&object=&since=&until=."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView

from accounts.scope import request_token
from audit.forms import AuditFilterForm
from audit.selectors import audit_rows
from audit.serializers import AuditRowSerializer
from core.pagination import StrictLimitOffsetPagination


class _AuditPage:
    """A lazy sequence the paginator can count and slice: only the page asked for is read."""

    def __init__(self, f):
        self.f = f
        self._total = None

    def count(self) -> int:
        if self._total is None:
            self._total, _ = audit_rows(f=self.f, offset=0, limit=0)
        return self._total

    def __getitem__(self, s: slice) -> list[dict]:
        total, rows = audit_rows(f=self.f, offset=s.start or 0, limit=(s.stop or 0) - (s.start or 0))
        self._total = total
        return rows


class AuditView(APIView):
    """GET audit/: every change, newest first, as {id, at, actor, kind, object, before, after, reason, action_url}."""

    def get(self, request):
        form = AuditFilterForm(request.query_params)
        if not form.is_valid():
            raise ValidationError({k if k != "__all__" else "detail": v for k, v in form.errors.items()})
        paginator = StrictLimitOffsetPagination()
        rows = paginator.paginate_queryset(
            _AuditPage(form.audit_filter(token=request_token(request))), request, view=self
        )
        return paginator.get_paginated_response(AuditRowSerializer(rows, many=True).data)
