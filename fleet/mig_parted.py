"""A mig-parted config: the named MIG layouts a cluster's GPU operator can apply.

The GPU operator's mig-manager reads them from a ConfigMap (by default
`gpu-operator/default-mig-parted-config`, key `config.yaml`) and applies the one a node's
`nvidia.com/mig.config` label names. A layout that is not in that ConfigMap cannot be applied:
the mig-manager marks the node `failed`. So the planner offers the cluster's own layouts, and the
bundled copy of mig-parted's default config (`fleet/data/`) stands in only when the cluster's
cannot be read (the simulator, or a ConfigMap that is missing).

Pure: text in, `MigPartedConfig` out, no I/O beyond reading the bundled file.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CONFIG_MAP = "gpu-operator/default-mig-parted-config"
CONFIG_KEY = "config.yaml"
BUNDLED_SOURCE = "mig-parted's default config (bundled with ScaleDeck)"


class MigPartedConfigError(ValueError):
    """The config text is not a mig-parted config; the message says where and what."""


@dataclass(frozen=True)
class LayoutEntry:
    """One entry of a named layout: which GPUs it applies to and what each of them holds."""

    device_filter: frozenset[str]  # lower-case PCI device ids ("0x20b210de"); empty = any GPU
    devices: tuple[int, ...] | None  # GPU indexes; None = all GPUs
    mig_enabled: bool
    mig_devices: tuple[tuple[str, int], ...]  # (profile, count per GPU), sorted


@dataclass(frozen=True)
class MigPartedConfig:
    source: str  # where it came from: "gpu-operator/default-mig-parted-config", or BUNDLED_SOURCE
    layouts: Mapping[str, tuple[LayoutEntry, ...]]
    text: str = ""  # the config.yaml it was parsed from ("" for the bundled one)

    @property
    def bundled(self) -> bool:
        return self.source == BUNDLED_SOURCE


def _filter_ids(value, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise MigPartedConfigError(f"{where}.device-filter must be a PCI device id or a list of them")
    return frozenset(part.lower() for item in items for part in item.split())


def _devices(value, where: str) -> tuple[int, ...] | None:
    if value == "all":
        return None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 64 for i in value)
    ):
        return tuple(value)
    raise MigPartedConfigError(f'{where}.devices must be "all" or a list of GPU indexes (0-63)')


def _mig_devices(value, where: str) -> tuple[tuple[str, int], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise MigPartedConfigError(f"{where}.mig-devices must map MIG profiles to counts")
    out = []
    for profile, count in value.items():
        if not isinstance(profile, str) or not profile:
            raise MigPartedConfigError(f"{where}.mig-devices has a profile that is not a name")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 7:
            raise MigPartedConfigError(f"{where}.mig-devices: {profile} must be a count from 0 to 7")
        out.append((profile, count))
    return tuple(sorted(out))


def _entry(value, where: str) -> LayoutEntry:
    if not isinstance(value, dict):
        raise MigPartedConfigError(f"{where} must be a mapping with devices and mig-enabled")
    enabled = value.get("mig-enabled")
    if not isinstance(enabled, bool):
        raise MigPartedConfigError(f"{where}.mig-enabled must be true or false")
    return LayoutEntry(
        device_filter=_filter_ids(value.get("device-filter"), where),
        devices=_devices(value.get("devices"), where),
        mig_enabled=enabled,
        mig_devices=_mig_devices(value.get("mig-devices"), where) if enabled else (),
    )


def parse_mig_parted_config(text: str, *, source: str) -> MigPartedConfig:
    """Parse a mig-parted config (`version: v1`, `mig-configs: {name: [entries]}`).
    Raises MigPartedConfigError naming the first thing that is wrong."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise MigPartedConfigError(f"{source}: not valid YAML{at}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("mig-configs"), dict):
        raise MigPartedConfigError(f"{source}: no mig-configs mapping")
    if document.get("version") != "v1":
        raise MigPartedConfigError(f"{source}: version {document.get('version')!s} is not v1")
    layouts = {}
    for name, entries in document["mig-configs"].items():
        where = f"{source}: mig-configs.{name}"
        if not isinstance(name, str) or not isinstance(entries, list) or not entries:
            raise MigPartedConfigError(f"{where} must be a non-empty list of entries")
        layouts[name] = tuple(_entry(e, f"{where}[{i}]") for i, e in enumerate(entries))
    return MigPartedConfig(source=source, layouts=layouts, text=text)


@cache
def bundled_mig_parted_config() -> MigPartedConfig:
    """mig-parted's default config, as the GPU operator ships it (flattened in fleet/data/)."""
    grouped: dict[tuple[str, str], dict] = {}
    with open(DATA_DIR / "mig-parted_config-default_flattened.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            entry = grouped.setdefault(
                (row["mig_config_name"], row["entry_index"]),
                {
                    "device_filter": frozenset(row["device_filter"].lower().split()),
                    "devices": None if row["devices"] == "all" else tuple(int(i) for i in row["devices"].split()),
                    "mig_enabled": row["mig_enabled"] == "True",
                    "mig_devices": [],
                },
            )
            if row["mig_profile"]:
                entry["mig_devices"].append((row["mig_profile"], int(row["count"])))
    layouts: dict[str, list[LayoutEntry]] = {}
    for (name, _), e in grouped.items():
        layouts.setdefault(name, []).append(
            LayoutEntry(e["device_filter"], e["devices"], e["mig_enabled"], tuple(sorted(e["mig_devices"])))
        )
    return MigPartedConfig(source=BUNDLED_SOURCE, layouts={n: tuple(es) for n, es in layouts.items()})
