"""The what-if chart keeps the SLO line readable when a candidate's TTFT runs away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from scaling.views import _whatif_figure

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


def summary(label: str, ttfts: list[float | None]):
    at = [T0 + timedelta(minutes=i) for i in range(len(ttfts))]
    return SimpleNamespace(policy=SimpleNamespace(label=label),
                           series={"at": at, "ttft_p95_seconds": ttfts, "replicas_ready": [2] * len(ttfts)})


def test_it_draws_ttft_on_a_log_axis_when_a_candidate_falls_far_behind_the_slo():
    figure = _whatif_figure([summary("keda min=1", [0.5, 30.0, 340.0]), summary("none min=8", [0.4, 0.6, None])],
                            slo_seconds=2.0)

    axis = figure["layout"]["yaxis"]
    assert axis["type"] == "log" and "log scale" in axis["title"]["text"]


def test_it_keeps_a_linear_axis_from_zero_when_every_candidate_stays_near_the_slo():
    figure = _whatif_figure([summary("keda min=2", [0.5, 1.8, 3.1])], slo_seconds=2.0)

    axis = figure["layout"]["yaxis"]
    assert axis.get("type") != "log" and axis["rangemode"] == "tozero"


def test_the_slo_line_and_its_label_sit_at_the_slo_on_a_log_axis():
    figure = _whatif_figure([summary("keda min=1", [0.5, 30.0, 340.0])], slo_seconds=2.0)

    [line] = [s for s in figure["layout"]["shapes"] if s.get("yref") == "y"]
    [label] = [a for a in figure["layout"]["annotations"] if a["text"].startswith("SLO")]
    assert line["y0"] == line["y1"] == 2.0
    assert abs(label["y"] - 0.30103) < 1e-4  # log10(2): annotations take the exponent on a log axis
