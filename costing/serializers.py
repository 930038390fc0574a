"""API shapes for costs and prices.

Money is always a JSON string of a decimal number of USD (never a float): computed amounts with
4 decimals ("12.3456"), catalog prices as stored (6 decimals). GPU-hours are strings with 4
decimals too; token counts are integers. `null` means unknown (no price, no tokens), never zero.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from costing import pricing
from costing.models import InstancePrice
from costing.selectors import GROUPS
from fleet.models import Cluster

MAX_SPAN = timedelta(days=90)
DEFAULT_SPAN = timedelta(hours=24)
PLACES = 4


def decimal_string(value, places: int = PLACES) -> str | None:
    return None if value is None else str(pricing.quantize(value, places))


class CostQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=GROUPS, default="deployment")
    start = serializers.DateTimeField(required=False, help_text="ISO 8601; default: 24 h before end")
    end = serializers.DateTimeField(required=False, help_text="ISO 8601; default: now")
    cluster = serializers.SlugRelatedField(
        slug_field="name", queryset=Cluster.objects.all(), required=False, help_text="only this cluster"
    )

    def validate(self, attrs):
        end = attrs.get("end") or timezone.now()
        start = attrs.get("start") or end - DEFAULT_SPAN
        if start >= end:
            raise serializers.ValidationError({"start": ["start must be before end"]})
        if end - start > MAX_SPAN:
            raise serializers.ValidationError({"start": [f"the window may span at most {MAX_SPAN.days} days"]})
        return {**attrs, "start": start, "end": end}


class CostRowSerializer(serializers.Serializer):
    """One group's cost over exactly [start, end). Reads a `selectors.CostTotals`."""

    key = serializers.CharField()
    cluster = serializers.CharField(allow_null=True)
    usd = serializers.SerializerMethodField()
    gpu_hours = serializers.SerializerMethodField()
    idle_gpu_hours = serializers.SerializerMethodField()
    idle_usd = serializers.SerializerMethodField()
    unpriced_gpu_hours = serializers.SerializerMethodField()
    tokens_generated = serializers.IntegerField()
    usd_per_million_tokens = serializers.SerializerMethodField()
    tokens_prompt = serializers.IntegerField()
    usd_per_million_prompt_tokens = serializers.SerializerMethodField()

    def get_usd(self, totals) -> str | None:
        # Nothing of it could be priced: unknown, not zero.
        return decimal_string(totals.usd) if totals.priced_gpu_hours or not totals.unpriced_gpu_hours else None

    def get_gpu_hours(self, totals) -> str:
        return decimal_string(totals.gpu_hours)

    def get_idle_gpu_hours(self, totals) -> str:
        return decimal_string(totals.idle_gpu_hours)

    def get_idle_usd(self, totals) -> str:
        return decimal_string(totals.idle_usd)

    def get_unpriced_gpu_hours(self, totals) -> str:
        return decimal_string(totals.unpriced_gpu_hours)

    def get_usd_per_million_tokens(self, totals) -> str | None:
        """Per 1M generated tokens (the figure for chat and completion models)."""
        return decimal_string(totals.usd_per_million_generated)

    def get_usd_per_million_prompt_tokens(self, totals) -> str | None:
        """Per 1M prompt tokens: the figure for embedding and prompt-heavy models; null when none."""
        return decimal_string(totals.usd_per_million_prompt)


class InstancePriceSerializer(serializers.ModelSerializer):
    usd_per_hour = serializers.DecimalField(max_digits=14, decimal_places=6, coerce_to_string=True)
    usd_per_gpu_hour = serializers.SerializerMethodField()
    cluster = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = InstancePrice
        fields = [
            "id",
            "instance_type",
            "region",
            "capacity_type",
            "usd_per_hour",
            "gpu_count",
            "usd_per_gpu_hour",
            "gpu_model",
            "source",
            "source_url",
            "effective_from",
            "cluster",
            "notes",
        ]

    def get_usd_per_gpu_hour(self, price) -> str:
        # 8 places: a price with 6 divided by up to 8 GPUs stays exact (27.44705 / 8 = 3.43088125).
        return decimal_string(pricing.per_gpu_rate(price.usd_per_hour, price.gpu_count), 8)
