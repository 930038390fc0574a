"""The intent recorded before a write to a cluster, and what a re-read says became of it.

Pure: values in, values out; no ORM, no clock, no I/O. `scaling.services.execution` records an
`Intent` on the action before every write and, when a later run of the action finds one (its worker
died, or the answer to the write never came), reads the object and asks `judge` what happened.

Why a re-read can tell: every write carries the resourceVersion it was computed from, so it either
lands on exactly that version or is refused with 409. If the object still has that version, the
write did not land. If the version moved on and every field holds the value we meant to write, the
write landed (the other reading, someone else wrote the very same values meanwhile, leaves the
cluster where we wanted it and the audit's `before` still true). If the version moved on and a
field holds something else, nobody can tell whether our write landed and was overwritten, or never
landed: the action is carried out again from what the cluster holds now, and the audit says it is
unknown instead of "nothing was written".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    LANDED = "landed"
    NOT_LANDED = "not landed"
    UNKNOWN = "unknown"  # the object changed since, and does not hold what we meant to write


@dataclass(frozen=True)
class Intent:
    """What one claim of an action is about to write, and what it read first.

    `write`: the fields and values sent (for a quota, {"hard": every GPU entry}); `read`: the
    values the object held, at `resource_version`; `before`, `after`, `baseline`, `notes`,
    `superseded`: the outcome the action records once the write is known to have landed.
    """

    claim: int
    resource_version: str
    read: dict
    write: dict
    before: dict
    after: dict
    baseline: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    superseded: tuple[int, ...] = ()

    def as_json(self) -> dict:
        return {
            "claim": self.claim,
            "resource_version": self.resource_version,
            "read": self.read,
            "write": self.write,
            "before": self.before,
            "after": self.after,
            "baseline": self.baseline,
            "notes": list(self.notes),
            "superseded": list(self.superseded),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Intent | None:
        """The intent stored on an action, or None when there is none (or it is not one we wrote)."""
        if not data or not isinstance(data.get("write"), dict) or not data.get("resource_version"):
            return None
        return cls(
            claim=int(data.get("claim") or 0),
            resource_version=str(data["resource_version"]),
            read=dict(data.get("read") or {}),
            write=dict(data["write"]),
            before=dict(data.get("before") or {}),
            after=dict(data.get("after") or {}),
            baseline=dict(data.get("baseline") or {}),
            notes=tuple(data.get("notes") or ()),
            superseded=tuple(int(i) for i in data.get("superseded") or ()),
        )

    def intended(self) -> dict:
        """Field -> value the object holds once the write landed. A quota write sends every GPU entry
        but only the requested ones are the action's to check (`after`)."""
        if "hard" in self.write:
            return {"hard": dict(self.after.get("hard") or self.write["hard"])}
        return dict(self.write)


def holds(current: Mapping, intended: Mapping) -> bool:
    for name, value in intended.items():
        if name == "hard":
            hard = current.get("hard") or {}
            if any(hard.get(key) != want for key, want in (value or {}).items()):
                return False
        elif current.get(name) != value:
            return False
    return True


def judge(intent: Intent, *, current: Mapping, resource_version: str) -> Verdict:
    """What became of the write `intent` describes, from the object as read now."""
    if resource_version == intent.resource_version:
        return Verdict.NOT_LANDED  # a write on that version would have moved it
    if holds(current, intent.intended()):
        return Verdict.LANDED
    return Verdict.UNKNOWN


def describe(intent: Intent) -> str:
    """ "min_replicas 2", "replicas 5", "requests.nvidia.com/gpu 24": the write, in the audit's words."""
    parts = []
    for name, value in intent.intended().items():
        if name == "hard":
            parts.extend(f"{key} {want}" for key, want in sorted((value or {}).items()))
        else:
            parts.append(f"{name} {'(removed)' if value is None else value}")
    return ", ".join(parts)
