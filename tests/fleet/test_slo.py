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


@pytest.mark.parametrize(("seconds", "ok"), [(0, False), (-1, False), (0.5, True), (600, True), (601, False)])
def test_it_accepts_objectives_between_zero_and_ten_minutes(seconds, ok):
    assert (validate_slo(seconds) is None) is ok
