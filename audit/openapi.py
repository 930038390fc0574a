"""Schemas of the audit API's view drf-spectacular cannot read (plain APIViews building their own bodies).

Loaded by audit/api_urls.py; when a view gains a `serializer_class`, its entry here can go.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from audit.serializers import AuditRowSerializer
from core.openapi import page_of, schema_replaced


class AuditViewSchema(OpenApiViewExtension):
    target_class = "audit.api.AuditView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class,
            get=extend_schema(
                parameters=[
                    OpenApiParameter("kind", str, many=True),
                    OpenApiParameter("actor", str, many=True),
                    OpenApiParameter("object", str),
                    OpenApiParameter("since", OpenApiTypes.DATETIME),
                    OpenApiParameter("until", OpenApiTypes.DATETIME),
                    OpenApiParameter("limit", int),
                    OpenApiParameter("offset", int),
                ],
                responses=page_of("AuditPage", AuditRowSerializer(many=True)),
            ),
        )
