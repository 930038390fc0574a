"""Request traces in the Azure LLM inference format, read as a stream into a replay `Load`.

A trace is CSV with the header `TIMESTAMP,ContextTokens,GeneratedTokens` and one row per
request (Azure/AzurePublicDataset's 2023 traces: `2023-11-16 18:15:46.6805900,374,44`; a
timestamp may also be plain seconds). The file is read line by line into per-second request
counts and per-minute token sums, so a 100 MB trace never sits in memory whole.

Rows that cannot be read are skipped and counted, each with its line number and why; past
1 % of the rows the trace is refused, naming the first bad line. The trace's time can be
stretched (`time_scale` 2 plays an hour over two), its rate multiplied, and a synthetic spike
laid on top. A run longer than the trace loops it.
"""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .replay import Load

HEADER = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MAX_BAD_SHARE = 0.01
MAX_TRACE_SECONDS = 7 * 86400
MAX_TOKENS = 10_000_000  # per request: more is a corrupt row, not a prompt
KEPT_PROBLEMS = 20


class TraceError(ValueError):
    """The trace is refused; `line` is the 1-based line that shows why (None: the whole file)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.reason = message


@dataclass(frozen=True)
class Spike:
    """A synthetic spike: the rate rises to `multiplier` times over `ramp_seconds` from
    `start_seconds` into the run, holds for `duration_seconds`, and falls back over the ramp."""

    multiplier: float
    start_seconds: int = 3600
    ramp_seconds: int = 600
    duration_seconds: int = 1800

    def __post_init__(self):
        if not 0 < self.multiplier <= 100:
            raise TraceError(f"the spike multiplier must be above 0 and at most 100, not {self.multiplier:g}")
        if min(self.start_seconds, self.ramp_seconds, self.duration_seconds) < 0:
            raise TraceError("the spike's start, ramp and duration must not be negative")

    def factor(self, second: int) -> float:
        into = second - self.start_seconds
        ramp, hold = self.ramp_seconds, self.duration_seconds
        if into <= 0 or into >= 2 * ramp + hold:
            return 1.0
        if into < ramp:
            level = into / ramp
        elif into < ramp + hold:
            level = 1.0
        else:
            level = 1.0 - (into - ramp - hold) / ramp if ramp else 0.0
        return 1.0 + (self.multiplier - 1.0) * level


@dataclass
class Trace:
    """Requests per second of the trace (from its first request) and token sums per minute."""

    start: int  # epoch second of the first request (0 for plain-seconds timestamps)
    counts: array  # 'd' per second
    prompt_sums: array  # 'd' per minute
    output_sums: array  # 'd' per minute
    requests: int
    bad_rows: int
    problems: list[tuple[int, str]] = field(default_factory=list)  # the first few (line, reason)

    @property
    def seconds(self) -> int:
        return len(self.counts)

    def to_load(
        self, *, seconds: int, rate_multiplier: float = 1.0, spike: Spike | None = None, warmup_seconds: int = 0
    ) -> Load:
        """A replay load of `warmup_seconds + seconds`, the trace looped; the spike's start
        counts from the end of the warm-up, as scoring does."""
        if not 0 < rate_multiplier <= 1000:
            raise TraceError(f"the rate multiplier must be above 0 and at most 1000, not {rate_multiplier:g}")
        total = warmup_seconds + seconds
        n = self.seconds
        arrivals = array("d", bytes(8 * total))
        counts = self.counts
        for i in range(total):
            arrivals[i] = counts[i % n] * rate_multiplier
        if spike is not None:
            end = min(total, warmup_seconds + spike.start_seconds + 2 * spike.ramp_seconds + spike.duration_seconds)
            for i in range(warmup_seconds + spike.start_seconds, end):
                arrivals[i] *= spike.factor(i - warmup_seconds)
        minutes = math.ceil(total / 60)
        per_minute = [0.0] * math.ceil(n / 60)
        for i in range(n):
            per_minute[i // 60] += counts[i]
        prompts, outputs = array("d", bytes(8 * minutes)), array("d", bytes(8 * minutes))
        for m in range(minutes):
            k = (m * 60 % n) // 60  # the trace is whole minutes long, so a loop restarts on a minute
            if per_minute[k]:
                prompts[m] = self.prompt_sums[k] / per_minute[k]
                outputs[m] = self.output_sums[k] / per_minute[k]
        return Load(self.start - warmup_seconds, arrivals, prompts, outputs)


def _timestamp(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    at = datetime.fromisoformat(text[:26] if "." in text else text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _tokens(text: str, what: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{what} {text.strip()!r} is not a whole number") from None
    if not 0 <= value <= MAX_TOKENS:
        raise ValueError(f"{what} {value} is outside 0-{MAX_TOKENS:,}")
    return value


def read_trace(lines: Iterable[str], *, time_scale: float = 1.0) -> Trace:
    """Stream a trace's lines (a text file, or any iterable of lines) into a `Trace`."""
    if not 0 < time_scale <= 100:
        raise TraceError(f"the time scale must be above 0 and at most 100, not {time_scale:g}")
    it = iter(lines)
    header = next(it, "")
    names = tuple(h.strip().lstrip("\ufeff") for h in header.strip().split(","))
    if names != HEADER:
        raise TraceError(f"the header must be {','.join(HEADER)}, not {header.strip()[:80]!r}", 1)
    counts = array("d")
    prompt_sums, output_sums = array("d"), array("d")
    first: float | None = None
    requests = bad = 0
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(it, start=2):
        if not line.strip():
            continue
        try:
            parts = line.rstrip("\r\n").split(",")
            if len(parts) != 3:
                raise ValueError(f"expected 3 fields, found {len(parts)}")
            try:
                at = _timestamp(parts[0])
            except ValueError:
                raise ValueError(f"timestamp {parts[0].strip()[:40]!r} is neither a date-time nor seconds") from None
            prompt, output = _tokens(parts[1], "ContextTokens"), _tokens(parts[2], "GeneratedTokens")
            first = at if first is None else first
            offset = (at - first) * time_scale
            if offset < 0:
                raise ValueError("timestamp before the trace's first request (rows must be in time order)")
            second = int(offset)
            if second >= MAX_TRACE_SECONDS:
                raise TraceError(
                    f"the trace runs past {MAX_TRACE_SECONDS // 86400} days (after the time scale)", number
                )
        except TraceError:
            raise
        except ValueError as exc:
            bad += 1
            if len(problems) < KEPT_PROBLEMS:
                problems.append((number, str(exc)))
            continue
        while len(counts) <= second:
            counts.extend(bytes(8 * 3600))  # grows an hour at a time
        minute = second // 60
        while len(prompt_sums) <= minute:
            prompt_sums.extend(bytes(8 * 60))
            output_sums.extend(bytes(8 * 60))
        counts[second] += 1
        prompt_sums[minute] += prompt
        output_sums[minute] += output
        requests += 1
    total = requests + bad
    if bad and bad > MAX_BAD_SHARE * total:
        line, reason = problems[0]
        raise TraceError(f"{reason} ({bad:,} of {total:,} rows cannot be read, more than {MAX_BAD_SHARE:.0%})", line)
    if not requests:
        raise TraceError("the trace has no requests")
    last = len(counts) - 1
    while last > 0 and not counts[last]:
        last -= 1
    span = max(60, math.ceil((last + 1) / 60) * 60)
    del counts[span:]
    while len(counts) < span:
        counts.append(0.0)
    return Trace(int(first or 0), counts, prompt_sums[: span // 60], output_sums[: span // 60], requests, bad, problems)


def read_trace_file(path, *, time_scale: float = 1.0) -> Trace:
    """`read_trace` over a file on disk, decoded as UTF-8 line by line."""
    with open(path, encoding="utf-8", newline="") as f:
        try:
            return read_trace(f, time_scale=time_scale)
        except UnicodeDecodeError as exc:
            raise TraceError(f"the file is not UTF-8 text ({exc.reason})") from None


def read_trace_bytes(stream, *, time_scale: float = 1.0) -> Trace:
    """`read_trace` over a binary stream (an upload), without reading it whole."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        return read_trace(text, time_scale=time_scale)
    except UnicodeDecodeError as exc:
        raise TraceError(f"the file is not UTF-8 text ({exc.reason})") from None
