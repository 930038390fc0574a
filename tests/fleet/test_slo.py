import pytest

from fleet.slo import bucket_note, validate_slo


@pytest.mark.parametrize(
    ("seconds", "note"),
    [
        (2.5, None),
        (1.0, None),
        (0.25, None),
        (2.0, "between vLLM's 1 s and 2.5 s buckets: p95 there is interpolated, not exact"),
        (0.3, "between vLLM's 0.25 s and 0.5 s buckets: p95 there is interpolated, not exact"),
        (0.0005, "below vLLM's smallest TTFT bucket (0.001 s): not measurable"),
        (3000, "above vLLM's largest TTFT bucket (2560 s): p95 is only known to be over it"),
    ],
)
def test_it_says_whether_an_objective_is_on_a_bucket_boundary(seconds, note):
    assert bucket_note(seconds) == note


@pytest.mark.parametrize(
    ("seconds", "ok"),
    [
        (0, False),
        (-1, False),
        (0.0009, False),
        (0.001, True),
        (0.5, True),
        (600, True),
        (601, False),
        (float("nan"), False),
        (float("inf"), False),
    ],
)
def test_it_accepts_objectives_between_one_millisecond_and_ten_minutes(seconds, ok):
    assert (validate_slo(seconds) is None) is ok


def test_it_says_the_range_in_units():
    assert validate_slo(0.0001) == "a TTFT objective must be between 1 ms and 600 s"
