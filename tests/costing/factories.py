"""Costing factories. Fleet and account rows come from tests/factories.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory

from costing.models import InstancePrice


class InstancePriceFactory(factory.django.DjangoModelFactory):
    """The public on-demand price of a p4de.24xlarge in us-east-1 (8 x A100 80GB), in effect since 2020."""

    class Meta:
        model = InstancePrice

    instance_type = "p4de.24xlarge"
    region = "us-east-1"
    capacity_type = "on-demand"
    usd_per_hour = Decimal("27.44705")
    gpu_count = 8
    gpu_model = "A100 80GB"
    source = "test price"
    source_url = "https://aws.amazon.com/ec2/pricing/on-demand/"
    effective_from = date(2020, 1, 1)
    cluster = None
