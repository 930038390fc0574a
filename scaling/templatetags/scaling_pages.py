"""How the scaling pages word an action: readable before/after lines and requests, not the stored JSON.

An action stores values by the names the services and the API use (`min_replicas`, `hard`,
`raise_max`); a person reads "Floor (min replicas): 2 -> 6" and "GPU quota: 40 -> 48".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django import template

from scaling import decisions

register = template.Library()

VALUE_LABELS = {
    "replicas": "Replicas",
    "min_replicas": "Floor (min replicas)",
    "max_replicas": "Max replicas",
    "paused_replicas": "Pinned at (KEDA paused replicas)",
}
MIG_PREFIX = "mig-"


@dataclass(frozen=True)
class ChangeLine:
    label: str
    before: object
    after: object

    @property
    def changed(self) -> bool:
        return self.before != self.after


def quota_entry_label(key: str) -> str:
    """`requests.nvidia.com/gpu` -> "GPU quota"; `requests.nvidia.com/mig-3g.40gb` -> "MIG 3g.40gb quota"."""
    entry = key.removeprefix("requests.").removeprefix(decisions.GPU_QUOTA_PREFIX.removeprefix("requests."))
    if entry == "gpu":
        return "GPU quota"
    if entry.startswith(MIG_PREFIX):
        return f"MIG {entry.removeprefix(MIG_PREFIX)} quota"
    return f"{key} quota"


def _dict(value) -> Mapping:
    return value if isinstance(value, Mapping) else {}


@register.filter
def change_lines(action) -> list[ChangeLine]:
    """One line per value an action set (or would set): quota entries one by one, labels in words."""
    before, after = _dict(action.before), _dict(action.after)
    lines = []
    for name, value in after.items():
        if name == "hard":
            old = _dict(before.get("hard"))
            lines += [ChangeLine(quota_entry_label(k), old.get(k), v) for k, v in sorted(_dict(value).items())]
        else:
            lines.append(ChangeLine(VALUE_LABELS.get(name, name.replace("_", " ")), before.get(name), value))
    return lines


def _minutes(minutes: int) -> str:
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


@register.filter
def request_summary(action) -> str:
    """What was asked, in a sentence: "floor 6 for 2 h, raising the max if needed"."""
    asked = _dict(action.request)
    if "restores" in asked:
        return f"restore what action #{asked['restores']} replaced"
    if "hard" in asked:
        parts = [
            f"{quota_entry_label(k)} {'removed' if v is None else v}" for k, v in sorted(_dict(asked["hard"]).items())
        ]
        text = ", ".join(parts) or "no entries"
        return text + ("; lower below current usage anyway" if asked.get("force") else "")
    if "replicas" not in asked:
        return "—"
    text = f"{asked.get('mode') or 'floor'} {asked['replicas']}"
    if asked.get("ttl_minutes"):
        text += f" for {_minutes(asked['ttl_minutes'])}"
    elif asked.get("until"):
        text += f" until {asked['until']}"
    else:
        text += " until changed"
    if asked.get("raise_max"):
        text += ", raising the max too"
    if asked.get("dry_run"):
        text += " (dry run: nothing written)"
    return text
