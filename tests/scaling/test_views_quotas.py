"""The quota pages: a namespace outside the cluster's allow-list says so up front."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from tests.factories import NamespaceQuotaFactory


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_offers_no_edit_for_a_namespace_outside_the_allow_list(world, admin):
    allowed = world.quota(namespace="llm", hard=16, used=4)
    outside = NamespaceQuotaFactory(
        cluster=world.cluster, namespace="kube-system", name="gpu", hard={"requests.nvidia.com/gpu": 8}, used={}
    )

    html = login(admin).get(reverse("scaling:quotas")).content.decode()

    assert reverse("scaling:quota-edit", args=[allowed.id]) in html
    assert reverse("scaling:quota-edit", args=[outside.id]) not in html
    assert "read only: not in the cluster's allow-list" in html


def test_its_edit_page_says_so_instead_of_showing_a_form(world, admin):
    outside = NamespaceQuotaFactory(
        cluster=world.cluster, namespace="kube-system", name="gpu", hard={"requests.nvidia.com/gpu": 8}, used={}
    )

    html = login(admin).get(reverse("scaling:quota-edit", args=[outside.id])).content.decode()

    assert "kube-system is not in the allow-list of cluster prod" in html
    assert 'name="reason"' not in html
