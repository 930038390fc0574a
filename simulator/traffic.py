"""Arrival shapes: how many requests a deployment receives, second by second.

Noise is counter-based: every random draw is a hash of (seed, deployment, what, when), not a
draw from a stateful generator. The same seed therefore gives the same traffic whatever the
cluster does meanwhile (a what-if compares policies against identical arrivals), and traffic
needs no saved state to continue exactly after a save and load.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def unit(seed: int, *parts: object) -> float:
    """A uniform draw in [0, 1) fixed by its arguments."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 18446744073709551616.0


def gauss(seed: int, *parts: object) -> float:
    """A standard normal draw fixed by its arguments (Box-Muller)."""
    u1 = unit(seed, "g1", *parts) or 1e-12
    u2 = unit(seed, "g2", *parts)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@dataclass(frozen=True)
class Constant:
    """A flat rate: for tests and for what-if questions about one load level."""

    rps: float
    kind: str = field(default="constant", init=False)

    def rate(self, seed: int, key: str, t: int) -> float:
        return self.rps

    def tokens(self, t: int) -> tuple[float | None, float | None]:
        return None, None


@dataclass(frozen=True)
class Diurnal:
    """A business-day curve peaking in the afternoon local time, with smooth noise and bursts.

    `peak_rps` is the rate at the daily peak on a weekday; the night falls to
    `trough_fraction` of it. Bursts (a post going around, a batch job) come on at random,
    `bursts_per_hour` on average, each 10-25 minutes long.
    """

    peak_rps: float
    trough_fraction: float = 0.3
    peak_hour: float = 14.0
    utc_offset_hours: float = 0.0
    weekend_fraction: float = 0.7
    noise: float = 0.08  # relative size of the slow wander, sampled every 10 minutes
    bursts_per_hour: float = 0.0
    burst_multiplier: float = 1.8
    kind: str = field(default="diurnal", init=False)

    def rate(self, seed: int, key: str, t: int) -> float:
        local = t + self.utc_offset_hours * 3600.0
        hour = (local / 3600.0) % 24.0
        day_curve = ((1.0 + math.cos(2.0 * math.pi * (hour - self.peak_hour) / 24.0)) / 2.0) ** 2
        rate = self.peak_rps * (self.trough_fraction + (1.0 - self.trough_fraction) * day_curve)
        if (int(local // 86400) + 3) % 7 >= 5:  # 1970-01-01 was a Thursday
            rate *= self.weekend_fraction
        if self.noise:
            knot, frac = divmod(t / 600.0, 1.0)
            a, b = gauss(seed, key, "wander", int(knot)), gauss(seed, key, "wander", int(knot) + 1)
            mix = (1.0 - math.cos(math.pi * frac)) / 2.0
            rate *= math.exp(self.noise * (a + (b - a) * mix) - self.noise**2 / 2.0)
        if self.bursts_per_hour:
            rate *= self._burst_factor(seed, key, t)
        return rate

    def _burst_factor(self, seed: int, key: str, t: int) -> float:
        factor = 1.0
        hour = t // 3600
        for h in (hour - 1, hour):
            if unit(seed, key, "burst", h) >= self.bursts_per_hour:
                continue
            start = h * 3600 + unit(seed, key, "burst-at", h) * 3600
            length = 600 + unit(seed, key, "burst-len", h) * 900
            if start <= t < start + length:
                height = (self.burst_multiplier - 1.0) * (0.6 + 0.8 * unit(seed, key, "burst-height", h))
                factor *= 1.0 + height * math.sin(math.pi * (t - start) / length) ** 2
        return factor

    def tokens(self, t: int) -> tuple[float | None, float | None]:
        return None, None


@dataclass(frozen=True)
class TraceReplay:
    """A recorded trace, bucketed and looped: request counts and mean token sizes per bucket."""

    counts: tuple[int, ...]
    prompt_means: tuple[float, ...]
    output_means: tuple[float, ...]
    bucket_seconds: int = 60
    scale: float = 1.0
    kind: str = field(default="trace", init=False)

    @classmethod
    def from_csv(cls, path: str | Path, *, bucket_seconds: int = 60, scale: float = 1.0) -> TraceReplay:
        """Read `TIMESTAMP,ContextTokens,GeneratedTokens` rows (the Azure LLM inference trace)."""
        buckets: dict[int, list[tuple[int, int]]] = {}
        first: float | None = None
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                at = datetime.fromisoformat(row["TIMESTAMP"][:26]).replace(tzinfo=UTC).timestamp()
                first = at if first is None else first
                index = int((at - first) // bucket_seconds)
                buckets.setdefault(index, []).append((int(row["ContextTokens"]), int(row["GeneratedTokens"])))
        if not buckets:
            raise ValueError(f"{path}: no requests in the trace")
        size = max(buckets) + 1
        counts, prompts, outputs = [], [], []
        for index in range(size):
            rows = buckets.get(index, [])
            counts.append(len(rows))
            prompts.append(round(sum(r[0] for r in rows) / len(rows), 1) if rows else 0.0)
            outputs.append(round(sum(r[1] for r in rows) / len(rows), 1) if rows else 0.0)
        return cls(tuple(counts), tuple(prompts), tuple(outputs), bucket_seconds, scale)

    def _bucket(self, t: int) -> int:
        return (t // self.bucket_seconds) % len(self.counts)

    def rate(self, seed: int, key: str, t: int) -> float:
        return self.counts[self._bucket(t)] / self.bucket_seconds * self.scale

    def tokens(self, t: int) -> tuple[float | None, float | None]:
        i = self._bucket(t)
        if not self.counts[i]:
            return None, None
        return self.prompt_means[i], self.output_means[i]


@dataclass(frozen=True)
class Spike:
    """A viral spike: ramps up to `multiplier` times the usual rate, holds, then decays."""

    start: int  # epoch seconds
    multiplier: float
    ramp_seconds: int = 300
    hold_seconds: int = 1800
    decay_seconds: int = 900

    def factor(self, t: int) -> float:
        into = t - self.start
        if into <= 0 or into >= self.ramp_seconds + self.hold_seconds + self.decay_seconds:
            return 1.0
        if into < self.ramp_seconds:
            level = into / self.ramp_seconds
        elif into < self.ramp_seconds + self.hold_seconds:
            level = 1.0
        else:
            level = 1.0 - (into - self.ramp_seconds - self.hold_seconds) / self.decay_seconds
        return 1.0 + (self.multiplier - 1.0) * level


Shape = Constant | Diurnal | TraceReplay
_SHAPES = {"constant": Constant, "diurnal": Diurnal, "trace": TraceReplay}


@dataclass(frozen=True)
class Traffic:
    """One deployment's arrivals: a shape, times any spike events."""

    shape: Shape
    spikes: tuple[Spike, ...] = ()

    def rate(self, seed: int, key: str, t: int) -> float:
        rate = self.shape.rate(seed, key, t)
        for spike in self.spikes:
            rate *= spike.factor(t)
        return rate

    def arrivals(self, seed: int, key: str, t: int, dt: int) -> float:
        """Requests arriving in (t - dt, t]: the rate plus Poisson-sized sampling noise."""
        mean = self.rate(seed, key, t) * dt
        return max(0.0, mean + math.sqrt(mean) * gauss(seed, key, "arrivals", t))

    def tokens(self, t: int) -> tuple[float | None, float | None]:
        return self.shape.tokens(t)

    def with_spike(self, spike: Spike) -> Traffic:
        return Traffic(self.shape, (*self.spikes, spike))

    def to_dict(self) -> dict:
        shape = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.shape).items()}
        return {"shape": shape, "spikes": [asdict(s) for s in self.spikes]}

    @classmethod
    def from_dict(cls, d: dict) -> Traffic:
        fields = dict(d["shape"])
        shape_cls = _SHAPES[fields.pop("kind")]
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        return cls(shape_cls(**fields), tuple(Spike(**s) for s in d["spikes"]))
