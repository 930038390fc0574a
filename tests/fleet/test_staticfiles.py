"""Static files: 404 for what does not exist (on the demo server too), and the plotly.js bundle
served once, compressed and cacheable for a year once collected."""

from __future__ import annotations

import re
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.test import RequestFactory
from django.test.utils import override_settings
from django.urls import reverse
from plotly.offline import get_plotlyjs_version
from whitenoise.middleware import WhiteNoiseMiddleware

from core.staticfiles import PLOTLY_BUNDLE, plotly_url, vendored_plotly_version
from tests.factories import ModelDeploymentFactory

YEAR = 365 * 24 * 3600


def demo_server_get(path_info: str) -> tuple[str, bytes]:
    """GET through the WSGI handler `manage.py runserver` (what `make demo` starts) serves.

    PATH_INFO is what the server puts there: already percent-decoded, so `..%2f` arrives as `../`.
    """
    command = load_command_class(get_commands()["runserver"], "runserver")
    options = command.create_parser("manage.py", "runserver").parse_args([])  # the demo passes no static options
    handler = command.get_handler(**vars(options))
    environ = {"PATH_INFO": path_info, "REQUEST_METHOD": "GET", "SERVER_NAME": "127.0.0.1", "HTTP_HOST": "127.0.0.1"}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    body = b"".join(handler(environ, start_response))
    return answer["status"], body


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path_info",
    [
        "/static/css/nope.css",
        "/static/vendor/plotly/plotly.min.js",  # the full bundle is no longer served
        "/static/../../manage.py",  # /static/..%2f..%2fmanage.py
        "/static/css/../../config/settings.py",
        "/static/../static/../../manage.py",
    ],
)
def test_it_answers_404_on_the_demo_server_for_a_missing_static_file_or_a_path_outside(settings, path_info):
    settings.DEBUG = True  # as `make demo` runs

    status, body = demo_server_get(path_info)

    assert status.startswith("404"), status
    assert b"SECRET_KEY" not in body and b"DJANGO_SETTINGS_MODULE" not in body


@pytest.mark.django_db
def test_it_still_serves_the_static_files_that_exist_on_the_demo_server(settings):
    settings.DEBUG = True

    status, body = demo_server_get("/static/css/scaledeck.css")

    assert status.startswith("200") and body


def test_it_vendors_the_plotly_js_version_the_python_package_builds_figures_for():
    assert vendored_plotly_version() == get_plotlyjs_version()


@pytest.mark.django_db
def test_it_loads_the_chart_library_once_on_the_deployment_page(viewer_client):
    deployment = ModelDeploymentFactory()

    page = viewer_client.get(reverse("fleet:deployment", args=[deployment.id])).content.decode()
    fragment = viewer_client.get(reverse("deployment:charts", args=[deployment.id])).content.decode()

    assert page.count('<script src="/static/vendor/plotly/') == 1
    assert "plotly-basic.min.js" in page
    assert "vendor/plotly" not in fragment  # the HTMX fragment relies on the page's copy


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """collectstatic into a scratch folder with the storage `make demo` and production use."""
    root = tmp_path_factory.mktemp("static")
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "core.staticfiles.HashedStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=root, STORAGES=storages):
        # The admin's and DRF's files are Django's business: collecting them only costs time here.
        call_command("collectstatic", "--noinput", "--verbosity", "0", "-i", "admin", "-i", "rest_framework")
        yield root


@pytest.mark.parametrize("debug", [False, True])
def test_it_names_collected_files_by_their_content_even_in_debug(collected, settings, debug):
    settings.DEBUG = debug  # the demo runs with DEBUG on

    url = plotly_url()

    assert re.fullmatch(r"/static/vendor/plotly/plotly-basic\.min\.[0-9a-f]{12}\.js", url), url


def test_it_serves_the_collected_bundle_compressed_and_cached_for_a_year(collected):
    whitenoise = WhiteNoiseMiddleware(get_response=lambda request: pytest.fail(f"not served: {request.path}"))
    request = RequestFactory().get(plotly_url(), HTTP_ACCEPT_ENCODING="gzip, deflate, br")

    response = whitenoise(request)

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert int(response["Content-Length"]) < 600_000  # 1.5 MB before compression, 4.8 MB for the full bundle
    cache_control = dict((part.strip().split("=") + [""])[:2] for part in response["Cache-Control"].split(","))
    assert int(cache_control["max-age"]) >= YEAR and "immutable" in cache_control
    assert (collected / PLOTLY_BUNDLE).exists()
