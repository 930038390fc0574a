"""The what-if page's chart: TTFT p95 per candidate against the SLO, and ready replicas, on one time axis.

Built as plain Plotly JSON with core.charts (no plotly Python objects). The replay reports one
point per minute: a 24 h run is 1,440 points per line, twice the width of the chart, so longer
runs are bucketed down to at most core.charts.MAX_POINTS points per line, keeping the worst TTFT
and the most replicas of each bucket, and the time axis says which resolution is drawn.

A candidate is `(label, series)`: the policy as the user wrote it, and the replay's minutes as
parallel lists under "at" (aware datetimes), "ttft_p95_seconds" and "replicas_ready"
(scaling.whatif_runs gives them so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC

from core import charts

WHATIF_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
WHATIF_LOG_AXIS_ABOVE = 10  # x the SLO
SLO_COLOUR = "#d62728"
SERIES_STEP_MINUTES = 1  # the replay's resolution (simulator/whatif.py keeps one row per minute)


def _resolution(per_bucket: int) -> str:
    said = charts.resolution(per_bucket * SERIES_STEP_MINUTES * 60)
    return said if per_bucket <= 1 else f"{said}: the worst TTFT and the most replicas in each"


def whatif_figure(candidates: Sequence[tuple[str, Mapping[str, Sequence]]], slo_seconds: float) -> dict:
    """TTFT p95 per candidate against the SLO, and ready replicas per candidate, on one time axis."""
    layout = charts.stacked_panels(["TTFT p95 (s)", "Replicas ready"], vertical_spacing=0.08)
    data: list[dict] = []
    per_bucket = 1
    for (label, series), colour in zip(candidates, WHATIF_COLOURS, strict=False):
        at = charts.wall_clocks(series["at"], zone=UTC)
        x, ttft, per_bucket = charts.downsample(at, series["ttft_p95_seconds"])
        _, ready, _ = charts.downsample(at, series["replicas_ready"])
        data.append(charts.line(x=x, y=ttft, name=label, colour=colour, width=1.8, legendgroup=label, row=1))
        data.append(charts.line(x=x, y=ready, name=label, colour=colour, width=1.8, shape="hv", legendgroup=label,
                                showlegend=False, row=2))  # fmt: skip
    # A candidate that falls behind queues for minutes: on a linear axis its TTFT flattens the SLO
    # line (2 s under 300 s) into the floor. Past 10x the SLO, a log axis keeps both readable.
    worst = max((v for _, series in candidates for v in series["ttft_p95_seconds"] if v is not None), default=0.0)
    log_axis = worst > WHATIF_LOG_AXIS_ABOVE * slo_seconds > 0
    if log_axis:
        layout["yaxis"].update(title={"text": "seconds (log scale)"}, type="log")
    else:
        layout["yaxis"].update(title={"text": "seconds"}, rangemode="tozero")
    # Shapes take data values on a log axis, annotations its exponent (plotly's rule).
    layout["annotations"].append(charts.label(
        f"SLO p95 {slo_seconds:g} s", y=math.log10(slo_seconds) if log_axis else slo_seconds, colour=SLO_COLOUR,
    ))  # fmt: skip
    layout["yaxis2"].update(title={"text": "replicas"}, rangemode="tozero")
    layout["xaxis2"]["title"] = {"text": f"time (UTC), {_resolution(per_bucket)}"}
    layout.update(
        template=charts.PLOTLY,
        shapes=[charts.hline(slo_seconds, colour=SLO_COLOUR)],
        height=560,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.12},
    )
    return {"data": data, "layout": layout}
