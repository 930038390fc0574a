"""Cost math: pure, Decimal in and out, exact in between."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costing import pricing
from costing.pricing import PriceBook, PricePoint

A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instance_usd", "gpus", "per_gpu"),
    [
        ("32.7726", 8, "4.09657500"),  # p4d before June 2025
        ("27.44705", 8, "3.43088125"),  # p4de
        ("55.04", 8, "6.88000000"),  # p5
        ("1.006", 1, "1.00600000"),  # g5.xlarge
        ("10.49264", 4, "2.62316000"),  # g6e.12xlarge
    ],
)
def test_it_divides_the_instance_price_by_its_gpus(instance_usd, gpus, per_gpu):
    assert pricing.usd_per_gpu_hour(Decimal(instance_usd), gpus) == Decimal(per_gpu)


@pytest.mark.parametrize(
    ("requests", "product", "share"),
    [
        ({"nvidia.com/gpu": 1}, A100, Fraction(1)),
        ({"nvidia.com/gpu": 4}, A100, Fraction(4)),
        ({"nvidia.com/mig-1g.10gb": 1}, A100, Fraction(1, 7)),
        ({"nvidia.com/mig-3g.40gb": 1}, A100, Fraction(3, 7)),
        ({"nvidia.com/mig-3g.40gb": 2}, H100, Fraction(6, 7)),
        ({"nvidia.com/mig-1g.10gb": 2, "nvidia.com/mig-2g.20gb": 1}, H100, Fraction(4, 7)),
        ({"nvidia.com/mig-7g.80gb": 1}, A100, Fraction(1)),
        ({"cpu": 4, "memory": 10}, A100, Fraction(0)),
        ({"nvidia.com/gpu": 0}, A100, Fraction(0)),
        ({"nvidia.com/mig-bogus": 1}, A100, Fraction(0)),
    ],
)
def test_it_counts_whole_gpus_and_mig_slices_at_their_share(requests, product, share):
    assert pricing.gpu_share(requests, product) == share


@pytest.mark.parametrize(
    ("instance_usd", "gpus", "requests", "product", "hourly"),
    [
        ("27.44705", 8, {"nvidia.com/gpu": 4}, A100, "13.72352500"),
        # 27.44705 / 8 / 7 = 0.490125892857...
        ("27.44705", 8, {"nvidia.com/mig-1g.10gb": 1}, A100, "0.49012589"),
        # x 3/7 = 1.470377678571...
        ("27.44705", 8, {"nvidia.com/mig-3g.40gb": 1}, A100, "1.47037768"),
        ("55.04", 8, {"nvidia.com/mig-1g.10gb": 1}, H100, "0.98285714"),
        ("55.04", 8, {}, H100, "0.00000000"),
    ],
)
def test_it_prices_a_pod_by_its_gpu_requests(instance_usd, gpus, requests, product, hourly):
    assert pricing.pod_usd_per_hour(
        instance_usd_per_hour=Decimal(instance_usd),
        instance_gpu_count=gpus,
        gpu_requests=requests,
        gpu_product=product,
    ) == Decimal(hourly)


def test_it_keeps_seven_one_g_slices_worth_exactly_one_gpu():
    slice_rate = pricing.hourly_rate(Decimal("55.04"), 8, pricing.gpu_share({"nvidia.com/mig-1g.10gb": 1}, H100))
    assert slice_rate * 7 == pricing.per_gpu_rate(Decimal("55.04"), 8)


@pytest.mark.parametrize(
    ("rate", "minutes", "usd"),
    [
        ("6.88", 60, "6.88000000"),
        ("6.88", 15, "1.72000000"),
        ("6.88", 0, "0.00000000"),
        ("0.49012589", 24 * 60, "11.76302136"),
    ],
)
def test_it_costs_an_interval_as_hourly_times_hours(rate, minutes, usd):
    assert pricing.quantize(pricing.cost_over(Decimal(rate), T0, T0 + timedelta(minutes=minutes))) == Decimal(usd)


def test_it_refuses_floats_for_money():
    with pytest.raises(TypeError):
        pricing.exact(1.5)


@pytest.mark.parametrize(
    ("on_demand", "spot", "savings"),
    [("55.04", "31.037", "24.00300000"), ("1.006", "0.4886", "0.51740000"), (None, "1", None), ("1", None, None)],
)
def test_it_computes_spot_savings_against_on_demand(on_demand, spot, savings):
    result = pricing.spot_savings(Decimal(on_demand) if on_demand else None, Decimal(spot) if spot else None)
    assert result == (Decimal(savings) if savings else None)


def test_it_splits_an_interval_at_hour_boundaries_and_price_changes():
    start = datetime(2026, 3, 1, 9, 40, tzinfo=UTC)
    end = datetime(2026, 3, 1, 11, 10, tzinfo=UTC)
    cut = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    outside = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    parts = pricing.split_interval(start, end, [cut, outside, start])
    assert [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in parts] == [
        ("09:40", "10:00"),
        ("10:00", "10:30"),
        ("10:30", "11:00"),
        ("11:00", "11:10"),
    ]
    assert pricing.split_interval(end, start) == []


@pytest.mark.parametrize(
    ("utilization", "prompt", "generation", "idle"),
    [
        (0.05, 10.0, 10.0, True),  # under the threshold
        (0.5, 10.0, 10.0, False),
        (0.5, 0.0, 0.0, True),  # served nothing, though the GPU looks busy (warm-up, leak)
        (None, 0.0, 0.0, True),  # no utilization, but known to have served nothing
        (None, 10.0, 0.0, False),  # an embedding model: prompts, no generation
        (None, None, None, False),  # metrics unavailable: never idle
        (0.0999, None, None, True),
        (0.1, None, None, False),
    ],
)
def test_it_calls_gpus_idle_when_they_served_nothing_or_ran_under_the_threshold(utilization, prompt, generation, idle):
    assert (
        pricing.is_idle(
            utilization=utilization,
            prompt_tokens_per_second=prompt,
            generation_tokens_per_second=generation,
            threshold=0.10,
        )
        is idle
    )


@pytest.mark.parametrize(
    ("usd", "tokens", "expected"),
    [("6.88", 1_000_000, "6.8800"), ("6.88", 3_600_000, "1.9111"), ("6.88", 0, None), (None, 10, None)],
)
def test_it_prices_a_million_tokens(usd, tokens, expected):
    assert pricing.per_million(Decimal(usd) if usd else None, tokens) == (Decimal(expected) if expected else None)


def test_it_prorates_an_amount_spread_over_a_span():
    row_start, row_end = T0, T0 + timedelta(minutes=40)
    assert pricing.prorate(Decimal("4"), row_start, row_end, T0 + timedelta(minutes=10), T0 + timedelta(hours=5)) == 3
    assert pricing.prorate(Decimal("4"), row_start, row_end, T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == 0


# --------------------------------------------------------------------------- the price book


def point(usd, *, capacity="on-demand", since=date(2020, 1, 1), cluster_id=None, itype="p5.48xlarge", id_=None):
    return PricePoint(id_, itype, "us-east-1", capacity, Decimal(usd), 8, since, cluster_id)


def test_it_uses_the_price_in_effect_at_each_moment():
    book = PriceBook([point("98.32", since=date(2023, 7, 26)), point("55.04", since=date(2025, 6, 1))])
    kw = {"instance_type": "p5.48xlarge", "region": "us-east-1", "capacity_type": "on-demand"}
    assert book.quote(at=datetime(2025, 5, 31, 23, 59, tzinfo=UTC), **kw).price.usd_per_hour == Decimal("98.32")
    assert book.quote(at=datetime(2025, 6, 1, 0, 0, tzinfo=UTC), **kw).price.usd_per_hour == Decimal("55.04")
    assert book.quote(at=datetime(2023, 1, 1, tzinfo=UTC), **kw) is None  # before any price


def test_it_prefers_a_clusters_negotiated_price_once_in_effect():
    book = PriceBook(
        [
            point("55.04"),
            point("40.00", cluster_id=7, since=date(2026, 2, 1)),
            point("1.00", cluster_id=8),
        ]
    )
    kw = {"instance_type": "p5.48xlarge", "region": "us-east-1", "capacity_type": "on-demand"}
    assert book.quote(at=T0, cluster_id=7, **kw).price.usd_per_hour == Decimal("40.00")
    assert book.quote(at=datetime(2026, 1, 15, tzinfo=UTC), cluster_id=7, **kw).price.usd_per_hour == Decimal("55.04")
    assert book.quote(at=T0, cluster_id=9, **kw).price.usd_per_hour == Decimal("55.04")
    assert book.quote(at=T0, **kw).price.usd_per_hour == Decimal("55.04")


def test_it_prices_a_spot_node_with_no_spot_price_at_on_demand_and_says_so():
    book = PriceBook([point("55.04")])
    quote = book.quote(instance_type="p5.48xlarge", region="us-east-1", capacity_type="spot", at=T0)
    assert quote.priced_as == "on-demand"
    assert quote.price.usd_per_hour == Decimal("55.04")


def test_it_quotes_spot_with_the_on_demand_price_to_compare():
    book = PriceBook([point("55.04"), point("31.037", capacity="spot")])
    quote = book.quote(instance_type="p5.48xlarge", region="us-east-1", capacity_type="spot", at=T0)
    assert quote.priced_as == "spot"
    assert quote.on_demand.usd_per_hour == Decimal("55.04")
    assert pricing.spot_savings(quote.on_demand.usd_per_hour, quote.price.usd_per_hour) == Decimal("24.003")


@pytest.mark.parametrize(
    ("itype", "region"), [("p9.mega", "us-east-1"), ("p5.48xlarge", "eu-west-1"), ("", "us-east-1")]
)
def test_it_has_no_price_rather_than_zero_for_an_unknown_instance_or_region(itype, region):
    book = PriceBook([point("55.04")])
    assert book.quote(instance_type=itype, region=region, capacity_type="on-demand", at=T0) is None


def test_it_lists_the_moments_a_price_changes_inside_a_window():
    book = PriceBook(
        [
            point("98.32", since=date(2023, 7, 26)),
            point("55.04", since=date(2025, 6, 1)),
            point("1", itype="g5.xlarge", since=date(2025, 5, 20)),
        ]
    )
    cuts = book.changes_between(
        instance_type="p5.48xlarge",
        region="us-east-1",
        start=datetime(2025, 5, 1, tzinfo=UTC),
        end=datetime(2025, 7, 1, tzinfo=UTC),
    )
    assert cuts == {datetime(2025, 6, 1, tzinfo=UTC)}


# --------------------------------------------------------------------------- properties


@given(
    cents=st.integers(min_value=1, max_value=20_000_000),
    gpus=st.sampled_from([1, 2, 4, 8]),
    share=st.fractions(min_value=0, max_value=8, max_denominator=7),
    cuts=st.lists(st.integers(min_value=1, max_value=86_399), max_size=12),
)
def test_it_costs_the_same_however_an_interval_is_cut(cents, gpus, share, cuts):
    rate = pricing.hourly_rate(Decimal(cents) / 100, gpus, share)
    end = T0 + timedelta(days=1)
    parts = pricing.split_interval(T0, end, [T0 + timedelta(seconds=s) for s in cuts])
    assert sum(pricing.cost_over(rate, a, b) for a, b in parts) == pricing.cost_over(rate, T0, end)
    assert parts[0][0] == T0 and parts[-1][1] == end
    assert all(a < b for a, b in parts)
    assert all(pricing.hour_floor(a) == pricing.hour_floor(b - timedelta(microseconds=1)) for a, b in parts)


@given(st.fractions(min_value=-(10**6), max_value=10**6))
def test_it_rounds_money_half_even_to_eight_places(value):
    rounded = pricing.quantize(value)
    assert abs(Fraction(rounded) - value) <= Fraction(1, 2 * 10**8)
