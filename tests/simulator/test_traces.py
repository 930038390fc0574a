"""Azure-format traces: streamed, bad rows refused with their line numbers, scaled and spiked."""

import tracemalloc
from pathlib import Path

import pytest

from simulator.traces import Spike, TraceError, read_trace, read_trace_file

from .conftest import AZURE_TRACE_SAMPLE

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
FULL_TRACE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "traces" / "AzureLLMInferenceTrace_conv.csv"
)


def rows(n: int, every: float = 0.5, start: float = 0.0):
    for i in range(n):
        yield f"{start + i * every:.3f},100,20\n"


def test_it_reads_the_azure_sample_into_requests_per_second_and_token_means():
    trace = read_trace_file(AZURE_TRACE_SAMPLE)
    assert trace.bad_rows == 0 and trace.requests > 1000
    assert sum(trace.counts) == trace.requests
    assert trace.start == 1700158546  # 2023-11-16 18:15:46 UTC
    load = trace.to_load(seconds=600)
    assert 200 < load.prompt_tokens[0] < 3000 and 10 < load.output_tokens[0] < 1000


@pytest.mark.skipif(not FULL_TRACE.exists(), reason="../shared/data/traces is not beside the repository")
def test_it_reads_the_whole_azure_conversation_trace():
    trace = read_trace_file(FULL_TRACE)
    assert (trace.requests, trace.bad_rows) == (19366, 0) and 3500 <= trace.seconds <= 3600


def test_it_stretches_time_multiplies_the_rate_and_loops_the_trace():
    trace = read_trace([HEADER, *rows(240)], time_scale=2.0)  # 2 requests/s for 120 s -> 1/s for 240 s
    assert trace.seconds == 240 and sum(trace.counts) == 240
    load = trace.to_load(seconds=960, rate_multiplier=3.0, warmup_seconds=60)
    assert load.seconds == 1020 and sum(load.arrivals) == pytest.approx(3.0 * 1020)
    assert load.start == trace.start - 60 and load.prompt_tokens[16] == 100.0


def test_it_lays_a_spike_on_the_scored_time():
    trace = read_trace([HEADER, *rows(7200, every=1.0)])
    load = trace.to_load(
        seconds=7200, spike=Spike(10, start_seconds=1200, ramp_seconds=600, duration_seconds=600), warmup_seconds=300
    )
    assert load.arrivals[300 + 1199] == 1.0
    assert load.arrivals[300 + 1500] == pytest.approx(5.5)  # half way up the ramp
    assert load.arrivals[300 + 2000] == 10.0 and load.arrivals[300 + 3100] == 1.0


@pytest.mark.parametrize(
    "bad_line,reason",
    [
        ("2023-11-16 18:15:47,12\n", "expected 3 fields, found 2"),
        ("yesterday,12,3\n", "'yesterday' is neither a date-time nor seconds"),
        ("2023-11-16 18:15:47,-4,3\n", "ContextTokens -4 is outside"),
        ("2023-11-16 18:15:47,12,three\n", "GeneratedTokens 'three' is not a whole number"),
        ("2023-11-16 18:15:40,12,3\n", "before the trace's first request"),
    ],
)
def test_it_refuses_a_trace_with_more_than_one_percent_bad_rows_naming_the_first(bad_line, reason):
    good = [f"2023-11-16 18:15:{45 + i // 10}.{i % 10}00,100,20\n" for i in range(50)]
    with pytest.raises(TraceError) as refused:
        read_trace([HEADER, *good[:10], bad_line, *good[10:]])
    assert refused.value.line == 12 and reason in str(refused.value)
    assert "1 of 51 rows cannot be read" in str(refused.value)


def test_it_skips_and_reports_bad_rows_up_to_one_percent():
    lines = [HEADER, *rows(150), "not,a,row\n", *rows(50, start=75.0)]
    trace = read_trace(lines)
    assert trace.requests == 200 and trace.bad_rows == 1 and trace.problems[0][0] == 152


@pytest.mark.parametrize(
    "lines,message",
    [
        (["TIMESTAMP,Tokens\n", "1,2\n"], "line 1: the header must be"),
        ([HEADER], "no requests"),
        ([HEADER, "0,1,1\n", f"{8 * 86400},1,1\n"], "line 3: the trace runs past 7 days"),
    ],
)
def test_it_refuses_a_file_that_is_not_a_trace(lines, message):
    with pytest.raises(TraceError, match=message):
        read_trace(lines)


def test_it_streams_a_large_trace_without_holding_its_lines():
    tracemalloc.start()
    lines = (HEADER if i == 0 else f"{i * 0.02:.2f},800,200\n" for i in range(60_001))  # 3 MB as str objects
    trace = read_trace(lines)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert trace.requests == 60_000
    assert peak < 1_000_000  # per-second counts and per-minute sums (~40 KB here), never the text
