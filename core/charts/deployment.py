"""The deployment page's charts: one Plotly figure, panels stacked on one shared time axis.

Built as plain Plotly JSON with core.charts, shipped to the page as JSON (json_script) and drawn
there by one `Plotly.newPlot`. Every panel has units on its axis; the x axis spans
exactly the range asked for, so an empty stretch reads as "no data then", not as a shorter chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.utils import timezone

from core import charts
from core.charts import wall_clock

# (title, y-axis title) per panel, top to bottom; rows are numbered from 1 in this order.
PANELS = (
    ("TTFT (time to first token)", "seconds (s)"),
    ("Inter-token latency (ITL)", "seconds (s)"),
    ("End-to-end request latency", "seconds (s)"),
    ("Requests waiting and running", "requests (req)"),
    ("Requests finished, errors and preemptions", "per second (/s)"),
    ("Error rate (aborted or failed requests)", "% of finished"),
    ("Replicas", "replicas"),
    ("KV cache usage", "%"),
    ("GPU utilization", "%"),
    ("Tokens per second", "tokens/s"),
    ("Cost", "$/h"),
)
ROW = {title: row for row, (title, _) in enumerate(PANELS, start=1)}
PERCENT_ROWS = (ROW["KV cache usage"], ROW["GPU utilization"])
PANEL_HEIGHT = 175  # px per panel, with the gap above it for its title and time ticks
PANEL_GAP = 56  # px
COLOURS = {
    "p50": "#6c8ebf",
    "p95": "#1f4e9a",
    "p99": "#a23b72",
    "slo": "#c0392b",
    "queue": "#d35400",
    "running": "#2e86ab",
    "finished": "#2e86ab",
    "errors": "#c0392b",
    "preemptions": "#8e44ad",
    "desired": "#7f8c8d",
    "ready": "#27ae60",
    "serving": "#16a085",
    "kv": "#8e44ad",
    "gpu": "#16a085",
    "gen": "#2c3e50",
    "prompt": "#95a5a6",
    "cost": "#b7950b",
}


class Series(Protocol):
    """One metric over time as the metrics backends answer it (fleet.backends.base.Series): one
    value per timestamp, None where there was no sample."""

    @property
    def timestamps(self) -> tuple[datetime, ...]: ...

    @property
    def values(self) -> Sequence[float | None]: ...


def _scaled(series: Series, factor: float) -> list[float | None]:
    return [None if v is None else v * factor for v in series.values]


def _has_data(series: Series | None) -> bool:
    return series is not None and any(v is not None for v in series.values)


def _replicas(series: Mapping[str, Series]) -> tuple[Series | None, Series | None, Series | None]:
    """(desired, ready, serving). Desired and ready come from kube-state-metrics or ScaleDeck's
    records (the simulator reports both); serving is how many pods reported vLLM metrics, which
    Prometheus knows even for pods that are gone."""
    return series.get("replicas_desired"), series.get("replicas_ready"), series.get("replicas")


def deployment_figure(
    series: Mapping[str, Series],
    *,
    slo_seconds: float,
    start: datetime,
    end: datetime,
    cost_per_replica_hour: Decimal | None,
    step_seconds: int | None = None,
) -> dict:
    """The figure as a JSON-ready dict: data, layout (plain dicts, see core.charts)."""
    height = PANEL_HEIGHT * len(PANELS) + 80
    layout = charts.stacked_panels([title for title, _ in PANELS], vertical_spacing=PANEL_GAP / height, title_size=12)
    data: list[dict] = []
    shapes: list[dict] = []
    empty_panels: list[int] = []
    # The series of one range share their timestamps: format each distinct axis once.
    time_labels: dict[tuple, list[str]] = {}

    def times(s: Series) -> list[str]:
        if s.timestamps not in time_labels:
            time_labels[s.timestamps] = charts.wall_clocks(s.timestamps)
        return time_labels[s.timestamps]

    def line(
        row: int,
        key: str | Series | None,
        name: str,
        colour: str,
        *,
        factor: float = 1.0,
        first: bool = False,
        style: dict | None = None,
    ) -> bool:
        """Add one trace to panel `row`; True when it has at least one value."""
        s = series.get(key) if isinstance(key, str) else key
        if s is None:
            return False
        data.append(charts.line(
            x=times(s), y=_scaled(s, factor), name=name, colour=colour, row=row, legendgroup=str(row),
            group_title=PANELS[row - 1][0] if first else None, **(style or {}),
        ))  # fmt: skip
        return _has_data(s)

    def panel(title: str, *traces: bool) -> None:
        if not any(traces):
            empty_panels.append(ROW[title])

    # TTFT with the SLO as a dashed line.
    row = ROW["TTFT (time to first token)"]
    panel(
        "TTFT (time to first token)",
        line(row, "ttft_p50", "TTFT p50 (s)", COLOURS["p50"], first=True),
        line(row, "ttft_p95", "TTFT p95 (s)", COLOURS["p95"], style={"width": 2.2}),
        line(row, "ttft_p99", "TTFT p99 (s)", COLOURS["p99"]),
    )
    shapes.append(charts.hline(slo_seconds, colour=COLOURS["slo"], row=row))
    layout["annotations"].append(
        charts.label(f"SLO p95 {slo_seconds:g} s", y=slo_seconds, colour=COLOURS["slo"], row=row, size=12)
    )

    row = ROW["Inter-token latency (ITL)"]
    panel(
        "Inter-token latency (ITL)",
        line(row, "itl_p50", "ITL p50 (s)", COLOURS["p50"], first=True),
        line(row, "itl_p95", "ITL p95 (s)", COLOURS["p95"], style={"width": 2.2}),
    )
    row = ROW["End-to-end request latency"]
    panel(
        "End-to-end request latency",
        line(row, "e2e_p50", "E2E p50 (s)", COLOURS["p50"], first=True),
        line(row, "e2e_p95", "E2E p95 (s)", COLOURS["p95"], style={"width": 2.2}),
    )

    row = ROW["Requests waiting and running"]
    panel(
        "Requests waiting and running",
        line(row, "queue_depth", "waiting (req)", COLOURS["queue"], first=True, style={"width": 2.2}),
        line(row, "running", "running (req)", COLOURS["running"]),
    )
    row = ROW["Requests finished, errors and preemptions"]
    panel(
        "Requests finished, errors and preemptions",
        line(row, "requests_per_second", "finished (req/s)", COLOURS["finished"], first=True),
        line(row, "errors_per_second", "errors: aborted or failed (req/s)", COLOURS["errors"], style={"width": 2.2}),
        line(row, "preemptions_per_second", "preemptions (/s)", COLOURS["preemptions"], style={"dash": "dot"}),
    )
    row = ROW["Error rate (aborted or failed requests)"]
    panel(
        "Error rate (aborted or failed requests)",
        line(row, "error_rate", "error rate (%)", COLOURS["errors"], factor=100, first=True),
    )

    # Replicas desired vs ready, and the pods that reported vLLM metrics.
    desired, ready, serving = _replicas(series)
    row = ROW["Replicas"]
    panel(
        "Replicas",
        line(row, desired, "desired (replicas)", COLOURS["desired"], first=True, style={"dash": "dot", "shape": "hv"}),
        line(row, ready, "ready (replicas)", COLOURS["ready"], style={"shape": "hv"}),
        line(row, serving, "reporting metrics (pods)", COLOURS["serving"], style={"shape": "hv", "width": 1.2}),
    )

    # KV cache and GPU utilization, 0-1 fractions shown as %.
    panel("KV cache usage", line(ROW["KV cache usage"], "kv_cache_usage", "KV cache (%)", COLOURS["kv"],
                                 factor=100, first=True))  # fmt: skip
    panel("GPU utilization", line(ROW["GPU utilization"], "gpu_utilization", "GPU util (%)", COLOURS["gpu"],
                                  factor=100, first=True))  # fmt: skip

    row = ROW["Tokens per second"]
    panel(
        "Tokens per second",
        line(row, "generation_tokens_per_second", "generated (tokens/s)", COLOURS["gen"], first=True),
        line(row, "prompt_tokens_per_second", "prompt (tokens/s)", COLOURS["prompt"]),
    )

    # $/hour: what the ready replicas cost, at the deployment's current price per replica.
    row = ROW["Cost"]
    cost_series = series.get("cost_per_hour_usd")
    ready_or_serving = ready if _has_data(ready) else serving
    if cost_series is not None:
        got_cost = line(row, cost_series, "cost ($/h)", COLOURS["cost"], first=True, style={"shape": "hv"})
    elif ready_or_serving is not None and cost_per_replica_hour is not None:
        got_cost = line(
            row,
            ready_or_serving,
            "cost, estimated ($/h)",
            COLOURS["cost"],
            factor=float(cost_per_replica_hour),
            first=True,
            style={"shape": "hv"},
        )
    else:
        got_cost = False
    panel("Cost", got_cost)

    for row in empty_panels:
        layout["annotations"].append(charts.panel_note("no data from this metrics source for this range", row=row))

    x_range = [wall_clock(start), wall_clock(end)]
    for row, (_, y_title) in enumerate(PANELS, start=1):
        suffix = charts.axis_suffix(row)
        y_axis = layout["yaxis" + suffix]
        y_axis.update(title={"text": y_title, "font": {"size": 11}}, rangemode="tozero")
        if row in PERCENT_ROWS:
            y_axis["range"] = [0, 100]
        # Times on every panel (the eye should not travel to the bottom), the date only on the last.
        x_axis = layout["xaxis" + suffix]
        x_axis.update(range=x_range, type="date", showticklabels=True)
        if row != len(PANELS):
            x_axis["tickformat"] = "%H:%M"
    time_title = f"time ({timezone.get_current_timezone_name()})"
    if step_seconds:
        time_title += f", {charts.resolution(step_seconds)}"
    layout["xaxis" + charts.axis_suffix(len(PANELS))]["title"] = {"text": time_title}
    layout.update(
        template=charts.PLOTLY_WHITE,
        shapes=shapes,
        height=height,
        margin={"l": 64, "r": 16, "t": 36, "b": 48},
        hovermode="x unified",
        legend={"orientation": "v", "groupclick": "toggleitem", "font": {"size": 11}},
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    )
    return {"data": data, "layout": layout}
