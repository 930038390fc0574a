"""Login page, locally served scripts, and the fleet admin."""

import pytest
from django.urls import reverse

from core.staticfiles import plotly_url
from fleet.models import Autoscaler, Cluster, Gpu, GpuNode, MigDevice, ModelDeployment, NamespaceQuota, NodePool, Pod
from tests.factories import (
    AutoscalerFactory,
    GpuFactory,
    MigDeviceFactory,
    NamespaceQuotaFactory,
    PodFactory,
    UserFactory,
)


@pytest.mark.django_db
def test_it_shows_a_styled_login_page_with_the_product_name(client):
    html = client.get(reverse("login")).content.decode()

    assert '<h1 class="brand-large">ScaleDeck</h1>' in html
    assert "css/scaledeck.css" in html
    assert 'class="topbar"' not in html  # no navigation before logging in


@pytest.mark.django_db
def test_it_logs_in_and_lands_on_the_overview(client):
    UserFactory(username="sre", role="operator")

    response = client.post(reverse("login"), {"username": "sre", "password": "pw"})

    assert response.status_code == 302 and response["Location"] == reverse("fleet:overview")


@pytest.mark.django_db
def test_it_logs_out_with_a_post(viewer_client):
    response = viewer_client.post(reverse("logout"))

    assert response.status_code == 302
    assert viewer_client.get(reverse("fleet:overview")).status_code == 302


@pytest.mark.django_db
def test_it_serves_the_vendored_plotly_bundle_as_a_static_file(viewer_client):
    url = plotly_url()

    response = viewer_client.get(url)

    assert url == "/static/vendor/plotly/plotly-basic.min.js"
    assert response.status_code == 200
    assert b"plotly.js (basic" in b"".join(response.streaming_content)[:2000]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model", [Cluster, NodePool, GpuNode, Gpu, MigDevice, ModelDeployment, Autoscaler, Pod, NamespaceQuota]
)
def test_it_lists_every_fleet_model_in_the_admin(client, model):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    AutoscalerFactory()
    MigDeviceFactory(pod=PodFactory())
    GpuFactory()
    NamespaceQuotaFactory()
    row = model.objects.first()
    meta = model._meta

    listing = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    detail = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[row.pk]))

    assert listing.status_code == 200 and detail.status_code == 200
