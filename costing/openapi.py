"""Schemas of the cost API's views drf-spectacular cannot read (plain APIViews building their own bodies).

Loaded by costing/api_urls.py; when a view gains a `serializer_class`, its entry here can go.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from core.openapi import page_of, schema_replaced
from costing.serializers import CostQuerySerializer, CostRowSerializer


class CostViewSchema(OpenApiViewExtension):
    target_class = "costing.api.CostView"

    def view_replacement(self):
        return schema_replaced(
            self.target_class,
            get=extend_schema(
                parameters=[CostQuerySerializer, OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
                responses=page_of(
                    "CostPage",
                    CostRowSerializer(many=True),
                    group_by=serializers.CharField(),
                    start=serializers.DateTimeField(),
                    end=serializers.DateTimeField(),
                    currency=serializers.CharField(),
                ),
            ),
        )
