"""Per-minute history of every deployment and node pool, for the last 24 hours.

Each minute is stored as fixed-point integers (seconds as milliseconds, fractions as
thousandths) in one list per series, so a day of a demo world serializes to compact JSON.
Token counters are stored as per-minute increments of the integer counter, plus the counter's
value before the oldest kept minute: cumulative values are then exact at every minute.
A minute is stamped with its end: the record at 12:01 covers 12:00:00-12:00:59.

Serialized, the series are one zlib-compressed JSON blob (base64): a day of the demo world is
~450 KB of plain JSON lists but ~150 KB this way, and the store rewrites it on every sync.
"""

from __future__ import annotations

import base64
import json
import zlib

from .objects import copied

HISTORY_MINUTES = 24 * 60

# name -> fixed-point scale. Averages over the steps of the minute unless listed below.
SERIES: dict[str, int] = {
    "arrivals_per_second": 100,
    "queue_depth": 10,
    "running": 10,
    "ttft_p50_seconds": 1000,
    "ttft_p95_seconds": 1000,
    "ttft_p99_seconds": 1000,
    "itl_p50_seconds": 10000,
    "itl_p95_seconds": 10000,
    "e2e_p50_seconds": 100,
    "e2e_p95_seconds": 100,
    "requests_per_second": 100,  # finished (served or aborted)
    "errors_per_second": 1000,  # finished as "abort": gave up waiting or cancelled
    "kv_cache_usage": 1000,
    "gpu_utilization": 1000,
    "preemptions_per_second": 1000,
    "replicas_desired": 1,
    "replicas_ready": 1,
    "gpus_allocated": 1000,  # GPU-equivalents held by scheduled pods (a 1g slice = 1/7)
    "cost_per_hour_usd": 100,
    "prompt_tokens": 1,  # increment of the integer counter during the minute
    "generation_tokens": 1,
}
LAST_VALUE = {"replicas_desired", "replicas_ready"}
# Latencies are averaged over the steps that served requests, weighted by what they served.
SERVED_WEIGHTED = {
    "ttft_p50_seconds", "ttft_p95_seconds", "ttft_p99_seconds",
    "itl_p50_seconds", "itl_p95_seconds", "e2e_p50_seconds", "e2e_p95_seconds",
}  # fmt: skip
COUNTERS = ("prompt_tokens", "generation_tokens")


class History:
    def __init__(self) -> None:
        self.end_minute: int | None = None  # epoch minute of the newest record's end
        self.length = 0
        self.deployments: dict[str, dict[str, list[int | None]]] = {}
        self.pools: dict[str, dict[str, list[int]]] = {}
        self.counter_base: dict[str, list[int]] = {}  # counters before the oldest kept minute
        self.counter_last: dict[str, list[int]] = {}  # integer counters at the newest minute
        self._acc: dict[str, dict[str, list[float]]] = {}  # key -> name -> [sum, weight]

    # ------------------------------------------------------------------ recording

    def accumulate(self, key: str, values: dict[str, float | None], served: float) -> None:
        """Add one step of a deployment to the minute being built."""
        acc = self._acc.setdefault(key, {})
        for name, value in values.items():
            if value is None:
                continue
            slot = acc.setdefault(name, [0.0, 0.0])
            if name in LAST_VALUE:
                slot[0], slot[1] = value, 1.0
            elif name in SERVED_WEIGHTED:
                if served > 0:
                    slot[0] += value * served
                    slot[1] += served
            else:
                slot[0] += value
                slot[1] += 1.0

    def close_minute(
        self, minute_end: int, counters: dict[str, tuple[float, float]], pool_nodes: dict[str, tuple[int, int]]
    ) -> None:
        """Turn the accumulated steps into one stored minute; keep the last 24 hours."""
        if self.end_minute is not None and minute_end != self.end_minute + 1:
            self.clear()
        self.end_minute = minute_end
        for key, (prompt, generation) in counters.items():
            now = [int(prompt), int(generation)]
            last = self.counter_last.get(key, now)
            if key not in self.deployments:
                self.counter_base[key] = list(last)
                self.deployments[key] = {name: [None] * self.length for name in SERIES}
            acc = self._acc.get(key, {})
            series = self.deployments[key]
            for name, scale in SERIES.items():
                if name in COUNTERS:
                    i = COUNTERS.index(name)
                    series[name].append(now[i] - last[i])
                    continue
                total, weight = acc.get(name, (0.0, 0.0))
                series[name].append(round(total / weight * scale) if weight else None)
            self.counter_last[key] = now
        for name, (nodes, ready) in pool_nodes.items():
            pool = self.pools.setdefault(name, {"nodes": [0] * self.length, "nodes_ready": [0] * self.length})
            pool["nodes"].append(nodes)
            pool["nodes_ready"].append(ready)
        self._acc = {}
        self.length += 1
        if self.length > HISTORY_MINUTES:
            self._drop_oldest(self.length - HISTORY_MINUTES)

    def _drop_oldest(self, n: int) -> None:
        for key, series in self.deployments.items():
            for i, name in enumerate(COUNTERS):
                self.counter_base[key][i] += sum(v or 0 for v in series[name][:n])
            for name in series:
                del series[name][:n]
        for pool in self.pools.values():
            for name in pool:
                del pool[name][:n]
        self.length -= n

    def clear(self) -> None:
        """Forget every minute (after a jump over a long gap); counters carry on."""
        self.end_minute = None
        self.length = 0
        self.deployments = {}
        self.pools = {}
        self.counter_base = {}
        self._acc = {}

    # ------------------------------------------------------------------ reading

    def minute_ends(self) -> list[int]:
        """Epoch seconds of each stored minute's end, oldest first."""
        if self.end_minute is None:
            return []
        first = self.end_minute - self.length + 1
        return [(first + i) * 60 for i in range(self.length)]

    def rows(self, key: str, *, last: int | None = None) -> list[dict]:
        """One dict per minute (the `last` n only, if given): each series in its unit, plus
        cumulative token counters."""
        series = self.deployments.get(key)
        if series is None:
            return []
        first = 0 if last is None else max(0, self.length - last)
        base = list(self.counter_base.get(key, [0, 0]))
        for name, i in (("prompt_tokens", 0), ("generation_tokens", 1)):
            base[i] += sum(v or 0 for v in series[name][:first])
        rows = []
        for i, at in enumerate(self.minute_ends()[first:], start=first):
            row: dict = {"at": at}
            for name, scale in SERIES.items():
                value = series[name][i]
                if name in COUNTERS:
                    row[f"{name}_per_second"] = (value or 0) / 60.0
                    continue
                row[name] = None if value is None else (value if scale == 1 else value / scale)
            base[0] += series["prompt_tokens"][i] or 0
            base[1] += series["generation_tokens"][i] or 0
            row["prompt_tokens_total"], row["generation_tokens_total"] = base[0], base[1]
            rows.append(row)
        return rows

    def pool_rows(self, name: str) -> list[dict]:
        pool = self.pools.get(name)
        if pool is None:
            return []
        return [
            {"at": at, "nodes": pool["nodes"][i], "nodes_ready": pool["nodes_ready"][i]}
            for i, at in enumerate(self.minute_ends())
        ]

    # ------------------------------------------------------------------ serialization

    def to_dict(self) -> dict:
        return {
            "end_minute": self.end_minute,
            "length": self.length,
            "series_zlib_b64": _pack({"deployments": self.deployments, "pools": self.pools}),
            "counter_base": copied(self.counter_base),
            "counter_last": copied(self.counter_last),
            "acc": copied(self._acc),
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        history = cls()
        history.end_minute = d["end_minute"]
        history.length = d["length"]
        series = _unpack(d["series_zlib_b64"])
        history.deployments = series["deployments"]
        for kept in history.deployments.values():  # a world saved before a series was added
            for name in SERIES:
                kept.setdefault(name, [None] * history.length)
        history.pools = series["pools"]
        history.counter_base = copied(d["counter_base"])
        history.counter_last = copied(d["counter_last"])
        history._acc = copied(d["acc"])
        return history


def _pack(value) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def _unpack(text: str):
    return json.loads(zlib.decompress(base64.b64decode(text)))
