"""Actions worded for people: before/after lines and requests without the stored JSON's field names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scaling.templatetags.scaling_pages import change_lines, quota_entry_label, request_summary


def action(**fields):
    return SimpleNamespace(**{"before": {}, "after": {}, "request": {}} | fields)


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("requests.nvidia.com/gpu", "GPU quota"),
        ("requests.nvidia.com/mig-3g.40gb", "MIG 3g.40gb quota"),
    ],
)
def test_it_names_quota_entries_in_words(key, label):
    assert quota_entry_label(key) == label


def test_it_lists_a_quota_change_entry_by_entry():
    lines = change_lines(
        action(
            before={"hard": {"requests.nvidia.com/gpu": 40}},
            after={"hard": {"requests.nvidia.com/gpu": 48, "requests.nvidia.com/mig-1g.10gb": 7}},
        )
    )

    assert [(x.label, x.before, x.after) for x in lines] == [
        ("GPU quota", 40, 48),
        ("MIG 1g.10gb quota", None, 7),
    ]


def test_it_labels_autoscaler_values():
    lines = change_lines(
        action(before={"min_replicas": 2, "max_replicas": 8}, after={"min_replicas": 9, "max_replicas": 9})
    )

    assert [(x.label, x.before, x.after) for x in lines] == [("Floor (min replicas)", 2, 9), ("Max replicas", 8, 9)]


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        (
            {"replicas": 6, "mode": "floor", "ttl_minutes": 120, "raise_max": True, "dry_run": False},
            "floor 6 for 2 h, raising the max too",
        ),
        (
            {"replicas": 3, "mode": "pin", "ttl_minutes": None, "raise_max": False, "dry_run": False},
            "pin 3 until changed",
        ),
        ({"hard": {"requests.nvidia.com/gpu": 48}, "force": True}, "GPU quota 48; lower below current usage anyway"),
        ({"restores": 7}, "restore what action #7 replaced"),
    ],
)
def test_it_says_what_was_asked_in_a_sentence(request_, text):
    assert request_summary(action(request=request_)) == text
