"""The costs page's chart: spend per hour (per day over 30 days), stacked by team or deployment.

Built as plain Plotly JSON with core.charts from what costing.spend.spend_over_time answers:
the bucket starts, and per group one amount (USD) per bucket, None where nothing is known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from core import charts


def spend_unit(bucket: str) -> str:
    """What one bar measures: `USD per hour` or `USD per day` (`bucket` is "hour" or "day")."""
    return "USD per day" if bucket == "day" else "USD per hour"


def spend_figure(buckets: Sequence[datetime], series: Mapping[str, Sequence[Decimal | None]], *, bucket: str) -> dict:
    """Stacked bars of spend, one per hour or day bucket and group.

    A bucket with nothing accrued has no bar (a gap). A stacked area cannot show one: plotly fills
    a missing value of a stack group with 0 (or interpolates), so it drew the hours before accrual
    began as $0 and a ramp up.
    """
    x = charts.wall_clocks(buckets, seconds=False)
    return {
        "data": [
            charts.bar(
                x=x,
                y=[None if v is None else float(v) for v in values],
                name=name,
                hovertemplate="%{y:$,.2f}<extra>%{fullData.name}</extra>",
            )
            for name, values in series.items()
        ],
        "layout": {
            "height": 340,
            "margin": {"t": 40, "r": 10, "b": 50, "l": 70},
            "yaxis": {"title": {"text": spend_unit(bucket)}, "tickprefix": "$", "rangemode": "tozero"},
            "xaxis": {"title": {"text": f"time ({timezone.get_current_timezone_name()})"}},
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "hovermode": "x unified",
            "barmode": "stack",
            "bargap": 0.1,
        },
    }
