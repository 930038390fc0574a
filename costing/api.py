"""Cost and price API. Reads need the viewer role (the default permission class)."""

from __future__ import annotations

import django_filters
from rest_framework import viewsets
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scope import request_token
from core.filters import RangeCheckedFilterSet, refuse_unknown_parameters
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
        refuse_unknown_parameters(request, CostQuerySerializer().fields)  # `?clustr=` must not answer all
        params = CostQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        rows = selectors.cost_by_group(
            group_by=query["group_by"],
            start=query["start"],
            end=query["end"],
            cluster=query.get("cluster"),
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


class PriceFilter(RangeCheckedFilterSet):
    """The shared filters (core/filters.py): repeatable values, `__ic`, `q`, `ordering`, and a 400
    naming any parameter it does not know."""

    instance_type = django_filters.CharFilter(label="Instance type")
    region = django_filters.CharFilter(label="Region")
    capacity_type = django_filters.ChoiceFilter(choices=CapacityType.choices, label="Capacity type")
    cluster = django_filters.CharFilter(field_name="cluster__name", label="Cluster",
                                        help_text="negotiated prices of this cluster")  # fmt: skip
    gpu_model = django_filters.CharFilter(label="GPU model")

    search_fields = ("instance_type", "region", "gpu_model", "source", "cluster__name")
    ordering_fields = {
        "instance_type": "instance_type", "region": "region", "usd_per_hour": "usd_per_hour",
        "effective_from": "effective_from", "gpu_count": "gpu_count",
    }  # fmt: skip

    class Meta:
        model = InstancePrice
        fields: list[str] = []  # the declared filters above, nothing implicit


class PriceViewSet(viewsets.ReadOnlyModelViewSet):
    """`GET /api/v1/prices/`: the price catalog with its history, filterable by instance_type,
    region, capacity_type, cluster and gpu_model (each repeatable, each with `__ic`), `q` and
    `ordering`. Edited in the admin."""

    serializer_class = InstancePriceSerializer
    filterset_class = PriceFilter

    def get_queryset(self):
        return selectors.price_list()
