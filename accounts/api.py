"""Tokens under /api/v1/.

tokens/: everyone lists their own tokens, admins every token; POST (admin) issues one and answers
the secret once (201, `token`); POST tokens/{id}/revoke/ {"reason"} (admin) revokes it.
"""

from __future__ import annotations

from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts import serializers
from accounts.filters import ApiTokenFilterSet
from accounts.models import ApiToken, Role
from accounts.permissions import request_role
from accounts.scope import request_token
from accounts.services import api_token_create, api_token_revoke


def _actor(request):
    token = request_token(request)
    return token if token is not None else request.user


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = serializers.ApiTokenSerializer
    filterset_class = ApiTokenFilterSet  # the tokens page's filters
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
