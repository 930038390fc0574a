"""Plain Plotly JSON: the same panels, gaps and geometry plotly's Python API produced, without it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from core import charts

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_it_keeps_a_gap_as_a_break_in_the_line():
    trace = charts.line(x=["a", "b", "c"], y=[1.0, None, 3.0], name="TTFT p95 (s)", colour="#123456", row=3)

    assert trace["y"] == [1.0, None, 3.0] and trace["connectgaps"] is False
    assert (trace["xaxis"], trace["yaxis"]) == ("x3", "y3")
    assert json.loads(json.dumps(trace))["y"][1] is None  # null in the JSON the page draws


def test_it_names_panel_one_without_a_number():
    trace = charts.line(x=[], y=[], name="n", colour="#000", row=1)

    assert (trace["xaxis"], trace["yaxis"]) == ("x", "y")
    assert charts.hline(2.0, colour="#f00", row=1)["yref"] == "y"
    assert charts.panel_note("no data", row=4)["xref"] == "x4 domain"


def test_it_lays_out_stacked_panels_like_make_subplots():
    plotly = pytest.importorskip("plotly.subplots", reason="plotly's Python package is the reference geometry")
    titles = ["TTFT", "Queue", "Replicas", "Cost"]
    reference = plotly.make_subplots(
        rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.05, subplot_titles=titles
    ).to_plotly_json()["layout"]

    layout = charts.stacked_panels(titles, vertical_spacing=0.05)

    for row in range(1, 5):
        suffix = charts.axis_suffix(row)
        assert layout["yaxis" + suffix]["domain"] == pytest.approx(reference["yaxis" + suffix]["domain"])
        assert layout["xaxis" + suffix].get("matches") == reference["xaxis" + suffix].get("matches")
        assert layout["xaxis" + suffix]["anchor"] == "y" + suffix
    assert [a["text"] for a in layout["annotations"]] == titles
    assert [a["y"] for a in layout["annotations"]] == pytest.approx([a["y"] for a in reference["annotations"]])


def test_it_leaves_a_series_that_fits_the_chart_as_it_is():
    times, values = list(range(10)), [1, None, 3, 4, 5, 6, 7, 8, 9, 10]

    assert charts.downsample(times, values, max_points=10) == (times, values, 1)


def test_it_keeps_the_worst_value_of_each_bucket_when_downsampling():
    times = [T0 + timedelta(minutes=i) for i in range(1440)]
    values = [0.5] * 1440
    values[701] = 42.0  # a one-minute spike must survive

    out_times, out_values, per_bucket = charts.downsample(times, values)

    assert per_bucket == 2 and len(out_values) == 720 <= charts.MAX_POINTS
    assert out_times[350] == times[700] and out_values[350] == 42.0
    assert max(out_values) == 42.0


def test_it_keeps_a_bucket_without_values_as_a_gap():
    _, values, per_bucket = charts.downsample(list(range(9)), [1, 2, 3, None, None, None, 7, None, 9], max_points=3)

    assert per_bucket == 3 and values == [3, None, 9]


@override_settings(TIME_ZONE="Europe/Paris")
def test_it_sends_wall_clock_times_in_the_servers_zone():
    # plotly.js ignores offsets: 12:00 UTC must arrive as Paris wall-clock time.
    assert charts.wall_clock(T0) == "2026-11-27 13:00:00"
    assert charts.wall_clock(T0, seconds=False) == "2026-11-27 13:00"
    assert charts.wall_clocks([T0, T0 + timedelta(hours=1)]) == ["2026-11-27 13:00:00", "2026-11-27 14:00:00"]
    assert charts.wall_clocks([T0], zone=UTC, seconds=False) == ["2026-11-27 12:00"]


def test_its_looks_turn_off_automargin_so_the_browser_draws_once():
    for template in (charts.PLOTLY, charts.PLOTLY_WHITE):
        assert template["layout"]["xaxis"]["automargin"] is False
        assert template["layout"]["yaxis"]["automargin"] is False
    assert charts.PLOTLY_WHITE["layout"]["plot_bgcolor"] == "white"


@pytest.mark.parametrize(
    ("step", "said"),
    [
        (15, "one point every 15 s"),
        (300, "one point every 5 min"),
        (3600, "one point every 1 h"),
        (90, "one point every 90 s"),
    ],
)
def test_it_says_a_resolution_in_the_unit_a_reader_expects(step, said):
    assert charts.resolution(step) == said
