"""Costing fragments other pages include: what 1M tokens cost."""

from decimal import Decimal

import pytest
from django.template.loader import render_to_string

from costing.templatetags.cost_panels import CostsNow

PER_MILLION = "costing/_cost_per_million.html"


def figures(**overrides) -> dict:
    values = {
        "usd_per_million_generated": None,
        "usd_per_million_prompt": None,
        "window_hours": Decimal("24.00"),
        "usd": Decimal("82.34"),
        "tokens_generated": 0,
        "tokens_prompt": 0,
    }
    return {**values, **overrides}


@pytest.mark.parametrize(
    ("cost_per_million", "text"),
    [
        (
            figures(
                usd_per_million_generated=Decimal("3.1768"),
                usd_per_million_prompt=Decimal("0.9"),
                tokens_generated=10**8,
                tokens_prompt=10**8,
            ),
            "$3.18 per 1M generated tokens (last 24 h)",
        ),
        # An embedding model (bge-embed: ~6,300 prompt tokens/s) generates nothing.
        (
            figures(usd_per_million_prompt=Decimal("0.1452"), tokens_prompt=544_320_000),
            "$0.1452 per 1M prompt tokens (last 24 h)",
        ),
        (figures(), "cost per 1M tokens: no tokens served in the last 24 h"),
        (figures(usd=None, tokens_prompt=5), "cost per 1M tokens: no price for its nodes"),
        (None, "cost per 1M tokens: not known yet"),
    ],
)
def test_it_prices_a_million_generated_tokens_or_else_prompt_tokens(cost_per_million, text):
    assert render_to_string(PER_MILLION, {"cost_per_million": cost_per_million}).strip() == text


def test_a_pages_costs_add_up_the_priced_rows_and_count_the_unpriced():
    costs = CostsNow({1: Decimal("12.5"), 2: None, 3: Decimal("1.25")})

    assert (costs.total, costs.unknown) == (Decimal("13.75"), 1)
    assert CostsNow({4: None}).total is None  # unknown, never $0
    assert CostsNow({}).total is None
