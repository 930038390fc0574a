"""GPU quota entries: Kubernetes resource names, bounded counts; one rule for the API, pages and admin."""

from __future__ import annotations

import pytest

from core.errors import ApplicationError
from scaling.decisions import plan_quota_change
from scaling.quota_keys import MAX_QUOTA_DEVICES, quota_key_error, quota_value_error


@pytest.mark.parametrize(
    "key", ["requests.nvidia.com/gpu", "requests.nvidia.com/mig-3g.40gb", "requests.nvidia.com/mig-1g.10gb"]
)
def test_it_accepts_gpu_entries(key):
    assert quota_key_error(key) is None


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "a quota entry needs a name"),
        (42, "a quota entry needs a name"),
        ("requests.nvidia.com/gpu\n", "cannot contain control characters"),
        ("requests.nvidia.com/mig-\x00", "cannot contain control characters"),
        ("requests.nvidia.com/mig-" + "a" * 300, "at most 253 characters, not 324"),
        ("requests.nvidia.com/mig-" + "a" * 60, "is not a Kubernetes resource name"),  # name part over 63
        ("nvidia.com/gpu", "is not a Kubernetes resource name"),
        ("requests.nvidia.com/", "is not a Kubernetes resource name"),
        ("requests.NVIDIA.com/gpu", "is not a Kubernetes resource name"),
        ("requests.nvidia.com/gpu/x", "is not a Kubernetes resource name"),
        ("requests.cpu", "is not a GPU quota entry"),
        ("requests.nvidia.com/mig-", "is not a Kubernetes resource name"),
        ("requests.nvidia.com/mig", "is not a GPU quota entry"),
        ("requests.amd.com/gpu", "is not a GPU quota entry"),
    ],
)
def test_it_refuses_names_kubernetes_or_scaledeck_would_not_take(key, message):
    assert message in quota_key_error(key)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0, True),
        (MAX_QUOTA_DEVICES, True),
        (MAX_QUOTA_DEVICES + 1, False),
        (-1, False),
        (True, False),
        (1.5, False),
        ("3", False),
        (2**64, False),
    ],
)
def test_it_bounds_a_hard_limit(value, ok):
    assert (quota_value_error("requests.nvidia.com/gpu", value) is None) is ok


def test_a_quota_change_is_refused_with_the_rule_and_the_field():
    with pytest.raises(ApplicationError) as exc:
        plan_quota_change(current_hard={}, used={}, requested={"requests.nvidia.com/gpu": 10**12}, force=True)

    assert exc.value.field == "hard"
    assert exc.value.message == "requests.nvidia.com/gpu must be between 0 and 100,000 devices"
