"""Cost and price API. Reads need the viewer role (the default permission class)."""

from __future__ import annotations

import django_filters
from rest_framework import viewsets
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scope import request_token
from costing import selectors
from costing.models import CapacityType, InstancePrice
from costing.serializers import CostQuerySerializer, CostRowSerializer, InstancePriceSerializer


class CostView(APIView):
    """`GET /api/v1/costs/?group_by=deployment|namespace|node|cluster&start=&end=&cluster=`

    Cost per group integrated over exactly [start, end) (ISO 8601, default the last 24 h, at most
    90 days), most expensive first, paginated like every list. `key` is `namespace/name` for a
    deployment, the name otherwise; `cluster` tells same-named deployments and nodes apart.
    """

    def get(self, request: Request) -> Response:
        params = CostQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        rows = selectors.cost_by_group(
            group_by=query["group_by"], start=query["start"], end=query["end"], cluster=query.get("cluster"),
            token=request_token(request),  # a scoped token sees its own clusters and namespaces (accounts/scope.py)
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        response = paginator.get_paginated_response(CostRowSerializer(page, many=True).data)
        response.data.update(
            group_by=query["group_by"],
            start=query["start"].isoformat(),
            end=query["end"].isoformat(),
            currency="USD",
        )
        return response


class PriceFilter(django_filters.FilterSet):
    instance_type = django_filters.CharFilter()
    region = django_filters.CharFilter()
    capacity_type = django_filters.ChoiceFilter(choices=CapacityType.choices)
    cluster = django_filters.CharFilter(field_name="cluster__name", help_text="negotiated prices of this cluster")

    class Meta:
        model = InstancePrice
        fields = ["instance_type", "region", "capacity_type", "cluster"]


class PriceViewSet(viewsets.ReadOnlyModelViewSet):
    """`GET /api/v1/prices/`: the price catalog with its history, filterable by instance_type,
    region, capacity_type and cluster. Edited in the admin."""

    serializer_class = InstancePriceSerializer
    filterset_class = PriceFilter

    def get_queryset(self):
        return selectors.price_list()
