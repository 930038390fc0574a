"""Reading values out of Kubernetes JSON: the small, careful readers every parser shares.

Everything a cluster returns is untrusted. These readers never raise on a wrong type (a field
that is not a dict reads as an empty one); the ones that must refuse a value raise `OddObject`,
which `parse_all` turns into a warning that skips that one object. No `kubernetes` import: plain
dicts in, plain values out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from fleet.backends.base import one_line

NVIDIA_PREFIX = "nvidia.com/"
MAX_COUNT = 1_000_000  # more GPUs, replicas or slices than this in one place is garbage, not a cluster
MAX_WARNINGS = 200


class OddObject(Exception):
    """An object (or a field of it) that a real API server would not have produced."""


# --------------------------------------------------------------------------- small readers


def as_dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str:
    return value if isinstance(value, str) else ""


def str_dict(value: object) -> dict[str, str]:
    return {k: v for k, v in as_dict(value).items() if isinstance(k, str) and isinstance(v, str)}


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([numkMGTPE])|[eE]([+-]?\d{1,3}))?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes resource quantity ("8", "1k", "500m", "1Gi", "1e3") as a Decimal."""
    if isinstance(value, bool):
        raise ValueError("not a quantity")
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        raise ValueError("not a quantity")
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError("not a quantity")
    number, binary, decimal, exponent = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError("not a quantity") from None
    if binary:
        return amount * _BINARY[binary]
    if decimal:
        return amount * _DECIMAL[decimal]
    if exponent:
        return amount.scaleb(int(exponent))
    return amount


def whole_count(value: object, what: str) -> int:
    """A whole, non-negative, sane count (GPUs, slices) from a quantity."""
    try:
        amount = parse_quantity(value)
    except ValueError:
        raise OddObject(f"{what} is not a quantity ({one_line(value, 40)!r})") from None
    if amount < 0 or amount > MAX_COUNT or amount != amount.to_integral_value():
        raise OddObject(f"{what} is not a sane whole count ({one_line(value, 40)!r})")
    return int(amount)


def json_int(value: object, what: str, *, default: int | None = None, minimum: int = 0) -> int:
    """An integer field (replicas, seconds) as the API serves it: a JSON number, nothing else."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 2**31 - 1:
        raise OddObject(f"{what} is not a valid number ({one_line(value, 40)!r})")
    return value


def label_int(labels: dict[str, str], key: str, where: str, warnings: Warnings) -> int | None:
    value = labels.get(key)
    if value is None:
        return None
    if value.isdigit() and int(value) <= MAX_COUNT * 1000:
        return int(value)
    warnings.add(f"{where}: label {key} is not a number ({one_line(value, 40)!r}); read as 0")
    return 0


def is_gpu_key(key: str) -> bool:
    return key.startswith(NVIDIA_PREFIX)


def gpu_resources(resources: object, what: str) -> dict[str, int]:
    """The nvidia.com/* entries of a capacity / requests map, as ints (zero counts kept)."""
    return {
        key: whole_count(value, f"{what}[{key}]")
        for key, value in as_dict(resources).items()
        if isinstance(key, str) and is_gpu_key(key)
    }


class Warnings:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.items) < MAX_WARNINGS:
            self.items.append(one_line(message, 300))
        else:
            self.dropped += 1

    def result(self) -> list[str]:
        return self.items + ([f"... and {self.dropped} more warnings"] if self.dropped else [])


def identity(obj: object, namespaced: bool = True) -> tuple[str, str]:
    if not isinstance(obj, dict):
        raise OddObject("not an object")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise OddObject("no metadata")
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name or len(name) > 253:
        raise OddObject("no valid name")
    if namespaced and (not isinstance(namespace, str) or not namespace or len(namespace) > 63):
        raise OddObject("no valid namespace")
    return (namespace if namespaced else ""), name


def parse_all(kind: str, items: Iterable, parse: Callable, warnings: Warnings, namespaced: bool = True) -> list:
    """Parse each object; one that cannot be understood is skipped with a warning."""
    out = []
    for obj in items:
        try:
            namespace, name = identity(obj, namespaced)
        except OddObject as exc:
            warnings.add(f"skipped a {kind} without a usable identity: {exc}")
            continue
        label = f"{namespace}/{name}" if namespace else name
        try:
            facts = parse(obj, namespace, name)
        except OddObject as exc:
            warnings.add(f"skipped {kind} {label}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - a malformed object must never fail the snapshot
            warnings.add(f"skipped {kind} {label}: cannot be read ({type(exc).__name__})")
            continue
        if facts is not None:
            out.append(facts)
    return out
