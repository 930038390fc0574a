"""Where the deployment page's charts fragment spends its time on the server, per range.

    .venv/bin/python bench/charts_fragment.py [-n 5]

Seeds the demo (`demo_seed`: a simulated cluster with 24 h of history) in a throwaway database,
then asks for the charts fragment of one deployment N times per range (1h, 6h, 24h) through
Django's test client, and prints per range the first request's time (the first one in the
process pays for imports) and the median time of the whole request, of its three
parts (reading the series from the metrics backend, building the figure, rendering the
template), the SQL statements it ran, the traces and points in the figure and the bytes of
figure JSON sent. Not a test; prints figures only.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._django import setup_django, throwaway_database  # noqa: E402


@contextmanager
def timed(bucket: list[float], function_owner, name: str):
    """Wrap `function_owner.name` so each call adds its duration to `bucket`."""
    original = getattr(function_owner, name)

    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - began)

    setattr(function_owner, name, wrapper)
    try:
        yield
    finally:
        setattr(function_owner, name, original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help="requests per range")
    parser.add_argument("--profile", action="store_true", help="also print where one 1h request spends its time")
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    import scaling.chart_views as views
    from fleet.models import ModelDeployment

    with throwaway_database():
        began = time.perf_counter()
        call_command("demo_seed", verbosity=0)
        print(f"demo seeded in {time.perf_counter() - began:.1f} s", flush=True)
        deployment = ModelDeployment.objects.filter(gone_at__isnull=True).order_by("id").first()
        client = Client()
        client.force_login(get_user_model().objects.get(username="viewer"))
        url = reverse("deployment:charts", args=[deployment.id])
        for range_key in ("1h", "6h", "24h"):
            total, series, figure, render, queries = [], [], [], [], []
            with (
                timed(series, views, "deployment_series"),
                timed(figure, views, "deployment_panels"),
                timed(render, views, "render"),
            ):
                for _ in range(args.runs):
                    with CaptureQueriesContext(connection) as captured:
                        began = time.perf_counter()
                        response = client.get(url, {"range": range_key})
                        total.append(time.perf_counter() - began)
                    queries.append(len(captured.captured_queries))
            assert response.status_code == 200, response.status_code
            html = response.content.decode()
            payload = html.split('<script id="deployment-figure" type="application/json">', 1)[1].split("</script>")[0]
            data = json.loads(payload)["data"]
            points = max((len(t.get("x") or ()) for t in data), default=0)
            print(
                f"{range_key:>3}: request median {statistics.median(total) * 1000:7.1f} ms"
                f" (series {statistics.median(series) * 1000:6.1f} ms,"
                f" figure {statistics.median(figure) * 1000:6.1f} ms,"
                f" render {statistics.median(render) * 1000:6.1f} ms) | {statistics.median(queries):.0f} SQL"
                f" | {len(data)} traces, up to {points} points each | figure JSON {len(payload) / 1000:.0f} kB"
                f" | first request {total[0] * 1000:.0f} ms",
                flush=True,
            )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(client.get, url, {"range": "1h"})
            ours = r"scaledeck|fleet|costing|core|django/template"
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(ours, 25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
