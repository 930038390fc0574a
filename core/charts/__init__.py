"""Chart building for every page: Plotly figure JSON as plain dicts and lists.

This package is where every chart ScaleDeck draws is built; views fetch the data, call one
builder and put the figure in the page:
- `core.charts.deployment`: the deployment page's metrics panels;
- `core.charts.whatif`: the what-if page's TTFT and replicas per candidate policy;
- `core.charts.costs`: the costs page's spend over time.
This module holds what they share: traces, stacked panels, lines and labels, the plotly looks,
times as plotly.js reads them, and downsampling. Nothing here imports an app: the builders take
plain values (times, numbers, labels), so any app can draw with them.

The pages ship a figure as JSON (`json_script`) and static/js/scaledeck.js draws it with one
`Plotly.newPlot`. The figures used to be built with plotly's Python `graph_objects`, which
validates every property of every trace and serializes a whole template: ~1.5-3 s of a loaded
core for the deployment page's eleven panels, most of the charts fragment's time on the server.
Plain dicts cost milliseconds, and plotly.js validates what it draws anyway.

What this module keeps equal to what `make_subplots` and the named templates produced:
- stacked panels on one shared time axis (`stacked_panels`): domains, subplot titles and
  `matches` computed the way plotly's `make_subplots(rows=n, cols=1, shared_xaxes=True)` does;
- the "plotly" and "plotly_white" looks (`PLOTLY`, `PLOTLY_WHITE`): the cartesian part of those
  templates only, sent as `layout.template`, which plotly.js understands;
- gaps: every line has `connectgaps: false` and a missing value is `None` (JSON null), so a
  stretch without data is drawn as a break, not as a straight line across it.

One change on purpose: the templates' `automargin` is off and the figures give their margins.
With automargin on, plotly.js measures every axis's labels after drawing and redraws the figure
until the margins settle: with 22 axes that redrawing was a large part of the browser's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

# Points per series a chart is worth drawing: about one per two pixels of a wide chart. A longer
# series is bucketed down to this by `downsample`.
MAX_POINTS = 720

_TEMPLATE_AXIS = {"ticks": "", "title": {"standoff": 15}, "automargin": False, "zerolinewidth": 2}
_TEMPLATE_LAYOUT = {
    "font": {"color": "#2a3f5f"},
    "hoverlabel": {"align": "left"},
    "paper_bgcolor": "white",
    "colorway": [
        "#636efa",
        "#EF553B",
        "#00cc96",
        "#ab63fa",
        "#FFA15A",
        "#19d3f3",
        "#FF6692",
        "#B6E880",
        "#FF97FF",
        "#FECB52",
    ],  # fmt: skip
    "hovermode": "closest",
    "title": {"x": 0.05},
    "annotationdefaults": {"arrowcolor": "#2a3f5f", "arrowhead": 0, "arrowwidth": 1},
    "shapedefaults": {"line": {"color": "#2a3f5f"}},
    "autotypenumbers": "strict",
}


def _template(*, background: str, grid: str) -> dict:
    axis = {**_TEMPLATE_AXIS, "gridcolor": grid, "linecolor": grid, "zerolinecolor": grid}
    return {"layout": {**_TEMPLATE_LAYOUT, "plot_bgcolor": background, "xaxis": axis, "yaxis": axis}}


PLOTLY = _template(background="#E5ECF6", grid="white")  # plotly's default look: blue-grey plot area
PLOTLY_WHITE = _template(background="white", grid="#EBF0F8")


def wall_clock(moment: datetime, *, zone=None, seconds: bool = True) -> str:
    """A time as plotly.js reads it. plotly.js ignores UTC offsets in date strings, so the times are
    sent as wall-clock times in one zone (the server's TIME_ZONE unless `zone` is given), and the
    axis title names that zone."""
    local = timezone.localtime(moment, zone) if timezone.is_aware(moment) else moment
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def wall_clocks(moments: Sequence[datetime], *, zone=None, seconds: bool = True) -> list[str]:
    """`wall_clock` for a whole series. The zone is looked up once: Django's current time zone sits
    in an asgiref Local, and asking it per point was most of the deployment figure's build time
    (5,000 points: ~0.5 s on a loaded core)."""
    zone = zone or timezone.get_current_timezone()
    form = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return [(m.astimezone(zone) if timezone.is_aware(m) else m).strftime(form) for m in moments]


def axis_suffix(row: int) -> str:
    """Panel 1's axes are `x`/`y`, panel n's `x<n>`/`y<n>` (plotly's naming)."""
    return "" if row == 1 else str(row)


def line(
    *,
    x: Sequence,
    y: Sequence,
    name: str,
    colour: str,
    row: int = 1,
    width: float = 1.6,
    dash: str | None = None,
    shape: str | None = None,
    legendgroup: str | None = None,
    group_title: str | None = None,
    showlegend: bool = True,
) -> dict:
    """One line trace in panel `row`. Gaps stay gaps: a None in `y` breaks the line."""
    style = {"color": colour, "width": width}
    if dash:
        style["dash"] = dash
    if shape:
        style["shape"] = shape
    trace = {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": list(x),
        "y": list(y),
        "line": style,
        "connectgaps": False,
        "xaxis": "x" + axis_suffix(row),
        "yaxis": "y" + axis_suffix(row),
    }
    if legendgroup is not None:
        trace["legendgroup"] = legendgroup
    if group_title:
        trace["legendgrouptitle"] = {"text": group_title}
    if not showlegend:
        trace["showlegend"] = False
    return trace


def bar(*, x: Sequence, y: Sequence, name: str, hovertemplate: str | None = None) -> dict:
    """One bar trace; a None in `y` is a bucket with no bar."""
    trace = {"type": "bar", "name": name, "x": list(x), "y": list(y)}
    if hovertemplate:
        trace["hovertemplate"] = hovertemplate
    return trace


def stacked_panels(titles: Sequence[str], *, vertical_spacing: float, title_size: int = 16) -> dict:
    """Layout axes and titles for panels stacked top to bottom on one shared time axis.

    The same geometry as `make_subplots(rows=len(titles), cols=1, shared_xaxes=True,
    vertical_spacing=..., subplot_titles=titles)`: equal heights, the spacing between panels as a
    fraction of the figure, each panel's title centred on its top edge, and every x axis matching
    the bottom one so zooming one panel zooms all.
    """
    rows = len(titles)
    height = (1 - vertical_spacing * (rows - 1)) / rows
    layout: dict = {"annotations": []}
    for row, title in enumerate(titles, start=1):
        top = 1 - (row - 1) * (height + vertical_spacing)
        suffix = axis_suffix(row)
        x_axis = {"anchor": "y" + suffix, "domain": [0.0, 1.0]}
        if row != rows:
            x_axis["matches"] = "x" + axis_suffix(rows)
            x_axis["showticklabels"] = False
        layout["xaxis" + suffix] = x_axis
        layout["yaxis" + suffix] = {"anchor": "x" + suffix, "domain": [max(0.0, top - height), top]}
        if title:
            layout["annotations"].append({
                "text": title, "showarrow": False, "font": {"size": title_size},
                "x": 0.5, "xanchor": "center", "xref": "paper", "y": top, "yanchor": "bottom", "yref": "paper",
            })  # fmt: skip
    return layout


def hline(y: float, *, colour: str, row: int = 1, dash: str = "dash") -> dict:
    """A horizontal line across panel `row` at `y` (a layout shape), e.g. an SLO."""
    suffix = axis_suffix(row)
    return {"type": "line", "line": {"color": colour, "dash": dash}, "x0": 0, "x1": 1, "xref": f"x{suffix} domain",
            "y0": y, "y1": y, "yref": "y" + suffix}  # fmt: skip


def label(text: str, *, y: float, colour: str, row: int = 1, size: int | None = None) -> dict:
    """A label at the left edge of panel `row`, sitting on `y` (pass log10(y) on a log axis)."""
    suffix = axis_suffix(row)
    font: dict = {"color": colour}
    if size:
        font["size"] = size
    return {"text": text, "showarrow": False, "font": font, "x": 0, "xanchor": "left", "xref": f"x{suffix} domain",
            "y": y, "yanchor": "bottom", "yref": "y" + suffix}  # fmt: skip


def panel_note(text: str, *, row: int, size: int = 12) -> dict:
    """A grey note in the middle of panel `row` (e.g. no data for this range)."""
    suffix = axis_suffix(row)
    return {"text": text, "showarrow": False, "font": {"color": "#6b7280", "size": size}, "x": 0.5,
            "xref": f"x{suffix} domain", "y": 0.5, "yref": f"y{suffix} domain"}  # fmt: skip


def resolution(step_seconds: int) -> str:
    """`one point every 15 s` / `... every 5 min` / `... every 1 h`: said on a time axis."""
    if step_seconds % 3600 == 0:
        return f"one point every {step_seconds // 3600} h"
    if step_seconds % 60 == 0:
        return f"one point every {step_seconds // 60} min"
    return f"one point every {step_seconds} s"


def downsample(times: Sequence, values: Sequence, *, max_points: int = MAX_POINTS) -> tuple[list, list, int]:
    """At most `max_points` points: `(times, values, points per bucket)`.

    A series longer than a chart is wide is cut into equal buckets of consecutive points; each
    bucket is drawn at its first time with its largest value, so a spike in TTFT or queue never
    disappears between two pixels (an average would hide it). A bucket with no value at all stays
    None: a gap stays a gap. A series that fits is returned as it is, with 1 point per bucket.
    """
    count = len(values)
    if count <= max_points:
        return list(times), list(values), 1
    per_bucket = -(-count // max_points)
    out_times, out_values = [], []
    for begin in range(0, count, per_bucket):
        present = [v for v in values[begin : begin + per_bucket] if v is not None]
        out_times.append(times[begin])
        out_values.append(max(present) if present else None)
    return out_times, out_values, per_bucket
