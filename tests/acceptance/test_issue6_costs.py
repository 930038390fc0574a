"""Issue 6, as it will be checked: GPU cost of a cluster served by a (fake) Kubernetes API with known
instance types and MIG layouts, priced from the seeded public catalog, and cost per 1M generated
tokens from vLLM token counters in a real Prometheus.

Expected figures come from the catalog as `/api/v1/prices/` publishes it (the row in effect now)
and from the token rates the scrape targets below are given; nothing here reuses the cost code.
Accrual is driven by calling `cost_accrue(cluster=..., now=...)` at chosen moments, inside the
span Prometheus has scraped.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from costing import selectors
from costing.catalog import price_catalog_seed
from costing.services import cost_accrue
from fleet.models import Cluster, ModelDeployment
from fleet.sync import cluster_sync
from tests.factories import ApiTokenFactory, UserFactory
from tests.fakekube import objects as k
from tests.metrics.pod_targets import VllmPodTarget

pytestmark = pytest.mark.django_db

TEAM_A, TEAM_B = "acc6-team-a", "acc6-team-b"
P4DE, G5_SPOT, A100_MIG, MYSTERY = "acc6-p4de-od", "acc6-g5-spot", "acc6-a100-mig", "acc6-mystery"
UNKNOWN_TYPE = "x9.gpu-mystery"

NODES = [
    k.gpu_node(P4DE, product="NVIDIA-A100-SXM4-80GB", memory_mib=81920, instance_type="p4de.24xlarge",
               pool="a100", capacity_type="on-demand"),
    k.gpu_node(G5_SPOT, product="NVIDIA-A10G", gpus=4, memory_mib=23028, instance_type="g5.12xlarge",
               pool="gpu-a10g", capacity_type="spot"),
    k.gpu_node(A100_MIG, product="NVIDIA-A100-SXM4-80GB", memory_mib=81920, instance_type="p4de.24xlarge",
               provider="eks", pool="a100-mig", mig_config="all-1g.10gb", mig_devices={"1g.10gb": 56}),
    k.gpu_node(MYSTERY, instance_type=UNKNOWN_TYPE, pool="lab"),
]  # fmt: skip


def _pods(objs):
    return [o["metadata"]["name"] for o in objs if o["kind"] == "Pod"]


MIG_1G = "nvidia.com/mig-1g.10gb"
LLAMA = k.vllm_deployment_with_pods(TEAM_A, "llama-70b", [P4DE], gpus=4)
CHAT = k.vllm_deployment_with_pods(TEAM_A, "chat", [P4DE, G5_SPOT])  # one pod on-demand, one on spot
SMALL = k.vllm_deployment_with_pods(TEAM_B, "mig-small", [A100_MIG] * 3, resource=MIG_1G)
EMBED = k.vllm_deployment_with_pods(TEAM_B, "embed", [A100_MIG], resource=MIG_1G)
EXPERIMENT = k.vllm_deployment_with_pods(TEAM_B, "exp", [MYSTERY])
WORLD = [*NODES, *LLAMA, *CHAT, *SMALL, *EMBED, *EXPERIMENT]
OBJECTS = {"llama-70b": LLAMA, "chat": CHAT, "mig-small": SMALL, "embed": EMBED, "exp": EXPERIMENT}

# Generated tokens per second of each pod (the embedding model generates none).
GENERATION = {
    **dict.fromkeys(_pods(LLAMA), 1200.0),
    **dict(zip(_pods(CHAT), (300.0, 200.0), strict=True)),
    **dict.fromkeys(_pods(SMALL), 60.0),
    **dict.fromkeys(_pods(EMBED), 0.0),
    **dict.fromkeys(_pods(EXPERIMENT), 100.0),
}
TOKENS_PER_SECOND = {"llama-70b": 1200.0, "chat": 500.0, "mig-small": 180.0, "embed": 0.0, "exp": 100.0}
KEYS = {"llama-70b": f"{TEAM_A}/llama-70b", "chat": f"{TEAM_A}/chat", "mig-small": f"{TEAM_B}/mig-small",
        "embed": f"{TEAM_B}/embed", "exp": f"{TEAM_B}/exp"}  # fmt: skip


def namespace_of(pod: str) -> str:
    return TEAM_A if any(pod in _pods(d) for d in (LLAMA, CHAT)) else TEAM_B


@pytest.fixture(scope="module")
def scraped(pod_targets, prometheus_server):
    """The pods' vLLM endpoints scraped by the session's Prometheus; returns the moment every one
    has been scraped, after waiting for 11 s of data from then on."""
    pod_targets.add_pods(*[
        VllmPodTarget(namespace_of(pod), pod, requests_per_second=2.0, generation_tokens_per_second=rate,
                      prompt_tokens_per_second=500.0)
        for pod, rate in GENERATION.items()
    ])  # fmt: skip
    ready = prometheus_server.scrape_more(pod_targets.scrape_configs("acc6", pods=list(GENERATION)))
    time.sleep(max(0.0, ready + 11 - time.time()))
    return ready


@pytest.fixture
def cluster(fake_kube, fake_kubeconfig, db) -> Cluster:
    """The fake cluster, synced, with the public price catalog seeded; no Prometheus yet."""
    price_catalog_seed()
    fake_kube.load(WORLD)
    cluster = Cluster.objects.create(name="acc6", backend=Cluster.Backend.KUBERNETES, region="us-east-1",
                                     kubeconfig_path=str(fake_kubeconfig), kube_context="fake")  # fmt: skip
    result = cluster_sync(cluster=cluster)
    assert result.ok, result.error
    return cluster


@pytest.fixture
def api():
    token = ApiTokenFactory(role=Role.VIEWER, user__username="finance-bot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


def price_in_effect(api, instance_type: str, capacity_type: str) -> dict:
    """The catalog row for us-east-1 in effect today, as /api/v1/prices/ publishes it."""
    rows = api.get("/api/v1/prices/", {"instance_type": instance_type, "region": "us-east-1",
                                       "capacity_type": capacity_type}).json()["results"]  # fmt: skip
    today = timezone.now().date().isoformat()
    current = [r for r in rows if r["effective_from"] <= today and r["cluster"] is None]
    assert current, f"no {capacity_type} price for {instance_type}"
    return max(current, key=lambda r: r["effective_from"])


def exact(value: str) -> Fraction:
    return Fraction(Decimal(value))


def per_gpu(api, instance_type: str, capacity_type: str) -> Fraction:
    row = price_in_effect(api, instance_type, capacity_type)
    return exact(row["usd_per_hour"]) / row["gpu_count"]


def expected_cost_per_hour(api) -> dict[str, Fraction | None]:
    a100 = per_gpu(api, "p4de.24xlarge", "on-demand")
    a10g_spot = per_gpu(api, "g5.12xlarge", "spot")
    return {
        "llama-70b": 4 * a100,
        "chat": a100 + a10g_spot,
        "mig-small": 3 * a100 / 7,  # three 1g.10gb slices, 1/7 of an A100 each
        "embed": a100 / 7,
        "exp": None,  # its node's instance type has no price
    }


def close(api_value: str | None, expected: Fraction, places: int = 6) -> bool:
    return api_value is not None and abs(exact(api_value) - expected) <= Fraction(1, 2 * 10**places)


# --------------------------------------------------------------------------- prices and rates now


def test_it_prices_nodes_at_the_catalog_instance_price(cluster, api):
    nodes = {n["name"]: n for n in api.get("/api/v1/nodes/", {"cluster": "acc6"}).json()["results"]}
    p4de = price_in_effect(api, "p4de.24xlarge", "on-demand")
    g5_spot = price_in_effect(api, "g5.12xlarge", "spot")
    assert exact(p4de["usd_per_hour"]) == Fraction("27.44705")  # the June 2025 price, not the 2022 one
    assert exact(g5_spot["usd_per_hour"]) != exact(price_in_effect(api, "g5.12xlarge", "on-demand")["usd_per_hour"])

    assert exact(nodes[P4DE]["hourly_cost_usd"]) == exact(p4de["usd_per_hour"])
    assert exact(nodes[A100_MIG]["hourly_cost_usd"]) == exact(p4de["usd_per_hour"])  # MIG changes nothing
    assert exact(nodes[G5_SPOT]["hourly_cost_usd"]) == exact(g5_spot["usd_per_hour"])  # the spot price
    assert nodes[MYSTERY]["hourly_cost_usd"] is None  # unknown: null, never 0
    assert nodes[A100_MIG]["gpu_count"] == 8 and nodes[A100_MIG]["mig"]["devices"] == {"1g.10gb": 56}

    # Per-GPU price = instance price / GPU count.
    for row in (p4de, g5_spot):
        assert close(row["usd_per_gpu_hour"], exact(row["usd_per_hour"]) / row["gpu_count"])


def test_it_prices_deployments_as_the_sum_of_their_pods_gpu_shares(cluster, api):
    expected = expected_cost_per_hour(api)
    rows = api.get("/api/v1/deployments/", {"cluster": "acc6"}).json()["results"]
    got = {d["name"]: d["cost_per_hour_usd"] for d in rows}
    assert set(got) == set(expected)
    for name, value in expected.items():
        if value is None:
            assert got[name] is None, name
        else:
            assert close(got[name], value), (name, got[name], float(value))
    # A 1g.10gb slice is 1/7 of the per-GPU price.
    assert close(got["embed"], per_gpu(api, "p4de.24xlarge", "on-demand") / 7)


def test_it_flags_the_unknown_instance_type_on_the_nodes_and_costs_pages(cluster, client):
    client.force_login(UserFactory(username="finance", role=Role.VIEWER))
    nodes_page = client.get("/nodes/").content.decode()
    row = nodes_page[nodes_page.index(f">{MYSTERY}<") :]
    row = row[: row.index("</tr>")]
    assert "no price" in row and UNKNOWN_TYPE in row and "$0" not in row
    assert UNKNOWN_TYPE in client.get("/costs/").content.decode()


# --------------------------------------------------------------------------- accrued cost and tokens


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _costs(api, start: datetime, end: datetime, group_by: str = "deployment") -> dict[str, dict]:
    response = api.get("/api/v1/costs/", {"group_by": group_by, "start": start.isoformat(),
                                          "end": end.isoformat(), "cluster": "acc6"})  # fmt: skip
    assert response.status_code == 200, response.content
    return {row["key"]: row for row in response.json()["results"]}


def counted_by_prometheus(prometheus_server, name: str, start: datetime, end: datetime) -> float:
    """The generated tokens Prometheus itself counts for a deployment's pods over [start, end].

    What the exporter served is rate x seconds, but Prometheus counts `increase()` from its 1 s
    scrapes, extrapolated to the window's edges, and a scrape that a busy machine delays or skips
    near an edge makes it extrapolate less (a 4 s window can come out 5 % short). The cost must
    match the tokens Prometheus counted, so the expectation is read from Prometheus, at the same
    edges, by a query of this test's own.
    """
    namespace, deployment = KEYS[name].split("/")
    pods = "|".join(_pods(OBJECTS[deployment]))
    milliseconds = round((end - start).total_seconds() * 1000)
    promql = f'sum(increase(vllm:generation_tokens_total{{namespace="{namespace}",pod=~"{pods}"}}[{milliseconds}ms]))'
    query = urllib.parse.urlencode({"query": promql, "time": f"{end.timestamp():.3f}"})
    with urllib.request.urlopen(f"{prometheus_server.url}/api/v1/query?{query}", timeout=5) as response:
        (result,) = json.load(response)["data"]["result"]
    return float(result["value"][1])


@pytest.mark.prometheus
def test_it_costs_a_million_generated_tokens_as_the_formula_says(cluster, api, scraped, prometheus_server, settings):
    settings.SCALEDECK_COST_MIN_INTERVAL_SECONDS = 1
    cluster.prometheus_url = prometheus_server.url
    cluster.save()
    t0, t1, t2 = (_at(scraped + s) for s in (1.5, 5.5, 9.5))  # inside what Prometheus has scraped
    for moment in (t0, t1, t2):
        cost_accrue(cluster=cluster, now=moment)
    windows = ((t0, t1), (t1, t2))

    cost_per_hour = expected_cost_per_hour(api)
    rows = _costs(api, t0, t2)
    counted = {}
    for name in ("llama-70b", "chat", "mig-small"):
        row = rows[KEYS[name]]
        per_window = [counted_by_prometheus(prometheus_server, name, a, b) for a, b in windows]
        counted[name] = per_window
        tokens = sum(per_window)
        # Each window's count is shared among the pods and rounded to whole tokens.
        assert row["tokens_generated"] == pytest.approx(tokens, abs=2 * len(_pods(OBJECTS[name]))), name
        usd = cost_per_hour[name] * Fraction(8, 3600)  # 8 s at the catalog price
        assert close(row["usd"], usd, places=4), (name, row["usd"], float(usd))
        formula = usd / Fraction(tokens) * 1_000_000
        assert float(exact(row["usd_per_million_tokens"])) == pytest.approx(float(formula), rel=1e-3), name
        # The exporter's rates came through (loosely: Prometheus's extrapolation is not the point here).
        assert tokens == pytest.approx(TOKENS_PER_SECOND[name] * 8, rel=0.25), name
    assert rows[f"{TEAM_B}/embed"]["usd_per_million_tokens"] is None  # generates no tokens
    assert rows[f"{TEAM_B}/embed"]["tokens_generated"] == 0
    assert rows[f"{TEAM_B}/exp"]["usd"] is None and rows[f"{TEAM_B}/exp"]["usd_per_million_tokens"] is None

    # The deployment page's "per 1M generated tokens" says the same.
    chat = ModelDeployment.objects.get(cluster=cluster, namespace=TEAM_A, name="chat")
    shown = selectors.deployment_cost_per_million_tokens(chat)
    formula = cost_per_hour["chat"] * Fraction(8, 3600) / Fraction(sum(counted["chat"])) * 1_000_000
    assert float(shown["usd_per_million_generated"]) == pytest.approx(float(formula), rel=1e-3)

    # Tokens are counted over the window asked for, like the money: each accrued span's count,
    # prorated to the part of it inside the window (2.75 s of the first 4 s, 3.25 s of the second).
    inner = _costs(api, t0 + timedelta(seconds=1.25), t2 - timedelta(seconds=0.75))
    first, second = counted["llama-70b"]
    assert inner[f"{TEAM_A}/llama-70b"]["tokens_generated"] == pytest.approx(
        first * 2.75 / 4 + second * 3.25 / 4, abs=4
    )


def test_it_integrates_cost_over_exactly_the_window(cluster, api):
    now = timezone.now().replace(microsecond=0)
    t0, t1, t2 = now - timedelta(hours=3), now - timedelta(hours=2), now - timedelta(hours=1)
    for moment in (t0, t1, t2):
        cost_accrue(cluster=cluster, now=moment)
    cost_per_hour = expected_cost_per_hour(api)

    start, end = t0 + timedelta(minutes=20), t2 - timedelta(minutes=10, seconds=30)  # 1 h 29 min 30 s
    hours = Fraction(int((end - start).total_seconds()), 3600)
    rows = _costs(api, start, end)
    for name in ("llama-70b", "chat", "mig-small", "embed"):
        assert close(rows[KEYS[name]]["usd"], cost_per_hour[name] * hours, places=4), (name, rows[KEYS[name]])
    assert close(rows[KEYS["llama-70b"]]["gpu_hours"], 4 * hours, places=4)
    assert rows[f"{TEAM_B}/exp"]["usd"] is None  # GPU-hours without a price
    assert Decimal(rows[f"{TEAM_B}/exp"]["gpu_hours"]) > 0

    # Outside the accrued span nothing is invented.
    assert _costs(api, t2, t2 + timedelta(minutes=30)) == {}
    # Per team: the sum of its deployments.
    teams = _costs(api, start, end, group_by="namespace")
    assert close(teams[TEAM_A]["usd"], (cost_per_hour["llama-70b"] + cost_per_hour["chat"]) * hours, places=4)
