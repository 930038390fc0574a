"""The what-if chart keeps the SLO line readable when a candidate's TTFT runs away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.charts.whatif import whatif_figure

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


def candidate(label: str, ttfts: list[float | None]):
    at = [T0 + timedelta(minutes=i) for i in range(len(ttfts))]
    return label, {"at": at, "ttft_p95_seconds": ttfts, "replicas_ready": [2] * len(ttfts)}


def test_it_draws_ttft_on_a_log_axis_when_a_candidate_falls_far_behind_the_slo():
    figure = whatif_figure(
        [candidate("keda min=1", [0.5, 30.0, 340.0]), candidate("none min=8", [0.4, 0.6, None])], slo_seconds=2.0
    )

    axis = figure["layout"]["yaxis"]
    assert axis["type"] == "log" and "log scale" in axis["title"]["text"]


def test_it_keeps_a_linear_axis_from_zero_when_every_candidate_stays_near_the_slo():
    figure = whatif_figure([candidate("keda min=2", [0.5, 1.8, 3.1])], slo_seconds=2.0)

    axis = figure["layout"]["yaxis"]
    assert axis.get("type") != "log" and axis["rangemode"] == "tozero"


def test_the_slo_line_and_its_label_sit_at_the_slo_on_a_log_axis():
    figure = whatif_figure([candidate("keda min=1", [0.5, 30.0, 340.0])], slo_seconds=2.0)

    [line] = [s for s in figure["layout"]["shapes"] if s.get("yref") == "y"]
    [label] = [a for a in figure["layout"]["annotations"] if a["text"].startswith("SLO")]
    assert line["y0"] == line["y1"] == 2.0
    assert abs(label["y"] - 0.30103) < 1e-4  # log10(2): annotations take the exponent on a log axis


def test_it_draws_a_day_at_two_minutes_a_point_keeping_the_worst_ttft_and_says_so():
    ttfts = [0.5] * 1440
    ttfts[901] = 12.0  # one bad minute
    ttfts[1000:1010] = [None] * 10  # no requests: a gap, not a line across

    figure = whatif_figure([candidate("keda min=1", ttfts)], slo_seconds=2.0)

    ttft, replicas = figure["data"]
    assert len(ttft["x"]) == len(ttft["y"]) == len(replicas["y"]) == 720
    assert max(v for v in ttft["y"] if v is not None) == 12.0
    assert ttft["y"][500:505] == [None] * 5 and ttft["connectgaps"] is False
    assert ttft["x"][0] == "2025-06-02 08:00:00" and ttft["x"][1] == "2025-06-02 08:02:00"
    assert figure["layout"]["xaxis2"]["title"]["text"].startswith("time (UTC), one point every 2 min: the worst TTFT")


def test_it_draws_a_short_run_at_its_own_resolution():
    figure = whatif_figure([candidate("keda min=2", [0.5, 1.8, 3.1])], slo_seconds=2.0)

    assert figure["data"][0]["y"] == [0.5, 1.8, 3.1]
    assert figure["layout"]["xaxis2"]["title"]["text"] == "time (UTC), one point every 1 min"
    assert figure["data"][1]["line"]["shape"] == "hv" and figure["data"][1]["showlegend"] is False
