"""The price catalog, the accrued cost samples, and each cluster's accrual watermark.

Money is USD in `DecimalField`s, never floats. Cost samples keep denormalised names next to
their foreign keys (which are SET_NULL) so that history survives pods, nodes, deployments and
even clusters being deleted.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class CapacityType(models.TextChoices):
    ON_DEMAND = "on-demand", "on-demand"
    SPOT = "spot", "spot"
    RESERVED = "reserved", "reserved"


class InstancePrice(models.Model):
    """What one instance type costs per hour in one region, from `effective_from` on.

    History is kept: a new price is a new row with a later `effective_from`; the cost at time t
    uses the row in effect at t (midnight UTC of `effective_from` onwards).

    A row with `cluster` set is that cluster's negotiated price (EDP, private pricing, a
    reservation): while one is in effect it wins over the public price for that cluster only.
    """

    instance_type = models.CharField(max_length=100)
    region = models.CharField(max_length=50)
    capacity_type = models.CharField(max_length=10, choices=CapacityType.choices, default=CapacityType.ON_DEMAND)
    usd_per_hour = models.DecimalField(max_digits=14, decimal_places=6, help_text="whole instance, USD per hour")
    gpu_count = models.PositiveSmallIntegerField(help_text="GPUs in one instance")
    gpu_model = models.CharField(max_length=100, blank=True, help_text='e.g. "A100 40GB"')
    source = models.CharField(max_length=300, help_text="where the figure comes from")
    source_url = models.URLField(max_length=500, blank=True)
    effective_from = models.DateField(help_text="the date the price was published or checked; in effect from then on")
    cluster = models.ForeignKey(
        "fleet.Cluster",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="negotiated_prices",
        help_text="set for a negotiated price that overrides the public one for this cluster",
    )
    notes = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["instance_type", "region", "capacity_type", "cluster_id", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance_type", "region", "capacity_type", "effective_from"],
                condition=Q(cluster__isnull=True),
                name="instanceprice_unique_public",
            ),
            models.UniqueConstraint(
                fields=["cluster", "instance_type", "region", "capacity_type", "effective_from"],
                condition=Q(cluster__isnull=False),
                name="instanceprice_unique_negotiated",
            ),
            models.CheckConstraint(condition=Q(gpu_count__gt=0), name="instanceprice_gpu_count_positive"),
            models.CheckConstraint(condition=Q(usd_per_hour__gte=0), name="instanceprice_usd_not_negative"),
        ]
        indexes = [models.Index(fields=["instance_type", "region"], name="instanceprice_type_region")]

    def __str__(self) -> str:
        scope = f" for {self.cluster}" if self.cluster_id else ""
        return f"{self.instance_type} {self.region} {self.capacity_type} ${self.usd_per_hour}/h{scope}"

    @property
    def usd_per_gpu_hour(self):
        from costing.pricing import usd_per_gpu_hour

        return usd_per_gpu_hour(self.usd_per_hour, self.gpu_count)


class CostWatermark(models.Model):
    """Up to when a cluster's cost has been accrued. Claimed with one conditional UPDATE."""

    cluster = models.OneToOneField("fleet.Cluster", on_delete=models.CASCADE, related_name="cost_watermark")
    accrued_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"cost of {self.cluster_id} accrued until {self.accrued_until}"


class CostSample(models.Model):
    """The cost of one pod's GPUs (or one node's unallocated GPUs) over a span inside one UTC hour.

    A sample covers a contiguous [start, end) at a constant rate: `usd` is spread evenly over it,
    so a window boundary falling inside a sample is prorated exactly. Consecutive accruals at the
    same rate extend the open sample instead of adding rows, so a steady pod costs one row per
    hour. Idle GPU-hours, utilization and token counts are accumulated per accrual and are
    prorated evenly (an approximation inside one sample).
    """

    class Kind(models.TextChoices):
        POD = "pod", "pod"
        UNALLOCATED = "unallocated", "unallocated GPUs of a node"

    cluster = models.ForeignKey("fleet.Cluster", on_delete=models.SET_NULL, null=True, related_name="+")
    cluster_name = models.CharField(max_length=63)
    node = models.ForeignKey("fleet.GpuNode", on_delete=models.SET_NULL, null=True, related_name="+")
    node_name = models.CharField(max_length=253)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.POD)
    pod = models.ForeignKey("fleet.Pod", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    pod_name = models.CharField(max_length=253, blank=True)
    deployment = models.ForeignKey(
        "fleet.ModelDeployment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deployment_name = models.CharField(max_length=253, blank=True)
    namespace = models.CharField(max_length=63, blank=True)
    instance_type = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=50, blank=True)
    capacity_type = models.CharField(max_length=10, blank=True, help_text="the node's capacity type")
    price = models.ForeignKey(InstancePrice, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The capacity type of the price used: a spot node with no spot price is priced on-demand.
    priced_as = models.CharField(max_length=10, blank=True)

    hour = models.DateTimeField(help_text="start of the UTC hour bucket")
    start = models.DateTimeField()
    end = models.DateTimeField()
    gpus = models.DecimalField(
        max_digits=14, decimal_places=8, help_text="GPUs held (a 1g MIG slice of an A100 is 1/7)"
    )
    usd_per_hour = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    on_demand_usd_per_hour = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    gpu_hours = models.DecimalField(max_digits=20, decimal_places=8)
    # NULL when no price is known: never billed at zero.
    usd = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    on_demand_usd = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    idle = models.BooleanField(default=False)
    idle_gpu_hours = models.DecimalField(max_digits=20, decimal_places=8, default=0)
    # GPU-hours whose utilization was known, and the sum of gpu_hours x utilization over them.
    metered_gpu_hours = models.DecimalField(max_digits=20, decimal_places=8, default=0)
    busy_gpu_hours = models.DecimalField(max_digits=20, decimal_places=8, default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    generation_tokens = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["start", "cluster_name", "node_name", "pod_name"]
        indexes = [
            models.Index(fields=["start"], name="costsample_start"),
            models.Index(fields=["hour"], name="costsample_hour"),
            models.Index(fields=["cluster", "end"], name="costsample_cluster_end"),
            models.Index(fields=["deployment", "start"], name="costsample_deployment_start"),
        ]

    def __str__(self) -> str:
        who = self.pod_name or "unallocated"
        return f"{self.cluster_name}/{self.node_name}/{who} {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M}"
