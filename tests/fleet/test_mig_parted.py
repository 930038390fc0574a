"""A cluster's mig-parted config: parsed from the GPU operator's ConfigMap text, the same layouts as
the bundled default where they are the same text, and a clear error naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fleet.mig import layout_for_gpu, layout_names
from fleet.mig_parted import (
    BUNDLED_SOURCE,
    MigPartedConfigError,
    bundled_mig_parted_config,
    parse_mig_parted_config,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "crds" / "mig"
OPERATOR_CONFIG_MAP = SHARED / "gpu-operator__state-mig-manager-0400_configmap.yaml"
A100_80 = "NVIDIA-A100-SXM4-80GB"
A100_40 = "NVIDIA-A100-SXM4-40GB"
H100 = "NVIDIA-H100-80GB-HBM3"
SOURCE = "gpu-operator/default-mig-parted-config"

CUSTOM = """
version: v1
mig-configs:
  all-disabled:
    - devices: all
      mig-enabled: false
  team-mix:
    - device-filter: ["0x20B210DE", "0x233010DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "3g.40gb": 1
        "1g.10gb": 4
  half-and-half:
    - devices: [0, 1, 2, 3]
      mig-enabled: true
      mig-devices: {"1g.10gb": 7}
    - devices: [4, 5, 6, 7]
      mig-enabled: false
"""


def test_the_operators_own_config_map_gives_the_bundled_layouts():
    if not OPERATOR_CONFIG_MAP.exists():
        pytest.skip(f"the GPU operator's ConfigMap is not at {OPERATOR_CONFIG_MAP} (../shared/data/ next to the repo)")
    text = yaml.safe_load(OPERATOR_CONFIG_MAP.read_text())["data"]["config.yaml"]
    config = parse_mig_parted_config(text, source=SOURCE)
    assert config.source == SOURCE and not config.bundled
    bundled = bundled_mig_parted_config()
    assert bundled.bundled and bundled.source == BUNDLED_SOURCE
    common = set(layout_names(config)) & set(layout_names(bundled))
    assert {"all-1g.10gb", "all-3g.40gb", "all-balanced", "all-disabled"} <= common
    for name in sorted(common):
        for product in (A100_80, A100_40, H100):
            assert layout_for_gpu(name, product, config) == layout_for_gpu(name, product, bundled), (name, product)


def test_a_custom_config_offers_only_its_own_layouts():
    config = parse_mig_parted_config(CUSTOM, source=SOURCE)
    assert layout_names(config) == ["all-disabled", "half-and-half", "team-mix"]
    assert layout_for_gpu("team-mix", A100_80, config) == {"1g.10gb": 4, "3g.40gb": 1}
    assert layout_for_gpu("team-mix", H100, config) == {"1g.10gb": 4, "3g.40gb": 1}
    assert layout_for_gpu("team-mix", A100_40, config) is None  # its filter leaves the 40 GB A100 out
    assert layout_for_gpu("all-disabled", A100_80, config) == {}
    assert layout_for_gpu("all-1g.10gb", A100_80, config) is None  # bundled, but not in this cluster
    assert layout_for_gpu("half-and-half", A100_80, config) is None  # GPUs of one node differ


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: v1\nmig-configs: [", "not valid YAML at line"),
        ("version: v1\n", "no mig-configs mapping"),
        ("version: v2\nmig-configs: {a: [{devices: all, mig-enabled: false}]}", "version v2 is not v1"),
        ("version: v1\nmig-configs: {a: []}", "mig-configs.a must be a non-empty list"),
        ("version: v1\nmig-configs: {a: [{devices: all}]}", "mig-configs.a[0].mig-enabled must be true or false"),
        ("version: v1\nmig-configs: {a: [{devices: some, mig-enabled: false}]}", 'a[0].devices must be "all"'),
        (
            "version: v1\nmig-configs: {a: [{devices: all, mig-enabled: true, mig-devices: {1g.10gb: x}}]}",
            "a[0].mig-devices: 1g.10gb must be a count from 0 to 7",
        ),
        (
            "version: v1\nmig-configs: {a: [{devices: all, mig-enabled: true, mig-devices: [1g.10gb]}]}",
            "a[0].mig-devices must map MIG profiles to counts",
        ),
        (
            "version: v1\nmig-configs: {a: [{device-filter: 7, devices: all, mig-enabled: false}]}",
            "a[0].device-filter must be a PCI device id",
        ),
    ],
)
def test_a_broken_config_says_where(text, message):
    with pytest.raises(MigPartedConfigError) as error:
        parse_mig_parted_config(text, source=SOURCE)
    assert message in str(error.value)
    assert str(error.value).startswith(SOURCE)
