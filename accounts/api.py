"""Tokens and the audit under /api/v1/.

tokens/: everyone lists their own tokens, admins every token; POST (admin) issues one and answers
the secret once (201, `token`); POST tokens/{id}/revoke/ {"reason"} (admin) revokes it.
audit/: the one audit list (accounts/audit.py), filterable ?kind=&actor=&object=&since=&until=.
"""

from __future__ import annotations

from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import serializers
from accounts.audit import audit_rows
from accounts.forms import AuditFilterForm
from accounts.models import ApiToken, Role
from accounts.permissions import request_role
from accounts.scope import request_token
from accounts.services import api_token_create, api_token_revoke
from core.pagination import StrictLimitOffsetPagination


def _actor(request):
    token = request_token(request)
    return token if token is not None else request.user


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = serializers.ApiTokenSerializer
    write_role = Role.ADMIN

    def get_queryset(self):
        qs = ApiToken.objects.select_related("user").order_by("-created_at", "-id")
        if request_role(self.request) != Role.ADMIN:
            qs = qs.filter(user=self.request.user)
        return qs

    def create(self, request):
        body = serializers.ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, raw = api_token_create(**body.validated_data, actor=_actor(request))
        return Response({**serializers.ApiTokenSerializer(token).data, "token": raw}, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = self.get_object()
        body = serializers.RevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        api_token_revoke(token=token, actor=_actor(request), reason=body.validated_data["reason"])
        token.refresh_from_db()
        return Response(serializers.ApiTokenSerializer(token).data)


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
        rows = paginator.paginate_queryset(_AuditPage(form.audit_filter(token=request_token(request))), request,
                                           view=self)
        return paginator.get_paginated_response(serializers.AuditRowSerializer(rows, many=True).data)

