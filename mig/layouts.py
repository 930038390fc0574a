"""The MIG layouts a cluster can apply: its GPU operator's mig-parted ConfigMap, read by a worker
and kept (`ClusterMigConfig`), and the per-GPU devices of each named layout for one GPU model."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from fleet.backends.base import BackendError
from fleet.mig import layout_for_gpu, layout_names
from fleet.mig_parted import MigPartedConfig, MigPartedConfigError
from fleet.models import Cluster
from mig.models import ClusterMigConfig


def named_layouts(gpu_product: str, config: MigPartedConfig) -> dict[str, dict[str, int]]:
    """The layouts the cluster's mig-parted config names, as per-GPU devices for this GPU model.
    A layout that does not apply to this GPU (all-1g.5gb on an 80 GB A100) is left out."""
    layouts = {name: layout_for_gpu(name, gpu_product, config) for name in layout_names(config)}
    return {name: devices for name, devices in layouts.items() if devices is not None}


def mig_config_refresh(*, cluster: Cluster, backend, now: datetime | None = None) -> ClusterMigConfig:
    """Read the cluster's mig-parted ConfigMap and keep it (a worker's periodic task). A failed
    read keeps the last good copy and says why in `problem`: planning goes on with what was known."""
    now = now or timezone.now()
    record, _ = ClusterMigConfig.objects.get_or_create(cluster=cluster)
    try:
        config = backend.mig_parted_config(record.config_map)
    except (BackendError, MigPartedConfigError) as exc:
        record.problem = str(exc)[:300]
    else:
        if config is None:
            record.problem = f"{record.config_map} was not found"
        else:
            record.problem = ""
            record.read_at = now
            record.config_text = config.text  # parsed again when planning
    record.checked_at = now
    record.save()
    return record
