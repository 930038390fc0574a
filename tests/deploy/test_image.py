"""The container image recipe: the Dockerfile lints clean, the lock matches pyproject.toml, and
the Dockerfile's own install steps (deploy/image/install.sh), run in a clean virtualenv on a
copy of the build context, give a `scaledeck` that migrates, passes `check --deploy` and serves
the login page from outside the source tree, under production settings, behind gunicorn."""

from __future__ import annotations

import fnmatch
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT
from tests.services import free_port, missing_service

BIN = Path(sys.executable).parent
POD_HOST = "10.244.1.23:8000"


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        missing_service(f"{name} is not installed (pip install '.[test]')")
    return found


def test_it_lints_the_dockerfile_clean():
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_as_a_non_root_user_with_static_files_apart_from_the_data_dir():
    text = (ROOT / "Dockerfile").read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert "\nUSER 10001" in final_stage
    assert "SCALEDECK_STATIC_ROOT=/opt/scaledeck/static" in final_stage
    assert "SCALEDECK_DATA_DIR=/tmp/scaledeck" in final_stage
    assert "deploy/image/install.sh app" in text and "install.sh deps" in text


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ", 1)[0].split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_it_pins_every_dependency_of_pyproject_in_the_lock():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = locked()
    for spec in [*project["project"]["dependencies"], *project["build-system"]["requires"]]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is in pyproject.toml but not in requirements.lock: refresh the lock (README)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}: refresh the lock (README)"
        )
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    for line, following in zip(lines, lines[1:], strict=False):
        if "==" in line and not line.startswith((" ", "#")):
            assert following.strip().startswith("--hash=sha256:"), f"{line} has no hash"


def build_context(destination: Path) -> Path:
    """What `docker build .` would send: the checkout minus .dockerignore's patterns."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(relative: str) -> bool:
        for pattern in patterns:
            if pattern.startswith("**/"):
                if fnmatch.fnmatch(Path(relative).name, pattern[3:]):
                    return True
            elif fnmatch.fnmatch(relative, pattern) or relative.startswith(pattern.rstrip("/") + "/"):
                return True
        return False

    def ignore(folder: str, names: list[str]) -> list[str]:
        base = Path(folder).relative_to(ROOT)
        return [name for name in names if ignored(str(base / name).removeprefix("./"))]

    shutil.copytree(ROOT, destination, ignore=ignore, symlinks=True)
    return destination


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited {server.returncode}: {server.stdout.read()[-3000:]}")
        try:
            get(url, host=POD_HOST)
            return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"gunicorn did not answer at {url} within {seconds} s")


def get(url: str, *, host: str, https: bool = False) -> tuple[int, str, dict]:
    headers = {"Host": host}
    if https:
        headers["X-Forwarded-Proto"] = "https"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a local test server

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=20) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), dict(error.headers)


@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="builds and installs the package; it uses no test database, so it runs once, in the SQLite pass",
)
def test_the_image_recipe_installs_a_scaledeck_that_serves_from_outside_the_tree(tmp_path):
    uv = tool("uv")
    context = build_context(tmp_path / "context")
    assert not (context / "tests").exists() and (context / "templates").is_dir()
    venv = tmp_path / "venv"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCALEDECK_", "DJANGO_", "DATABASE_", "CELERY_", "PROMETHEUS_", "VIRTUAL_ENV"))
    }
    env.update(UV=uv, PYTHON=sys.executable)
    install = [str(context / "deploy" / "image" / "install.sh")]
    deps = subprocess.run(
        ["sh", *install, "deps", str(venv)], cwd=context, env=env, capture_output=True, text=True, timeout=600
    )
    if deps.returncode != 0 and "Failed to fetch" in deps.stderr:
        missing_service(f"the locked packages cannot be fetched: {deps.stderr.strip().splitlines()[-1]}")
    assert deps.returncode == 0, deps.stderr
    static = tmp_path / "static"
    app = subprocess.run(
        ["sh", *install, "app", str(venv), str(context), str(static)],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert app.returncode == 0, app.stdout + app.stderr
    assert (static / "staticfiles.json").is_file()

    # Outside the tree: nothing can be imported from the checkout or the build context.
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    data_dir = tmp_path / "data"
    port = free_port()
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        DJANGO_SETTINGS_MODULE="config.settings_production",
        SCALEDECK_SECRET_KEY=secrets.token_urlsafe(60),
        SCALEDECK_DATA_DIR=str(data_dir),
        SCALEDECK_STATIC_ROOT=str(static),
        SCALEDECK_HEARTBEAT_DIR=str(data_dir),
        SCALEDECK_ALLOWED_HOSTS="scaledeck.example.com",
        SCALEDECK_BIND=f"127.0.0.1:{port}",
        SCALEDECK_WEB_WORKERS="2",
        SCALEDECK_GUNICORN_TMP_DIR=str(tmp_path),
        SCALEDECK_LOG_FORMAT="json",
    )
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import fleet; print(fleet.__file__)"],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(venv))

    server = subprocess.Popen(
        [str(venv / "bin" / "gunicorn"), "config.wsgi", "--config", "python:ops.gunicorn"],
        cwd=run_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz", server)
        assert get(f"{base}/readyz", host=POD_HOST)[0] == 503  # not migrated yet: stays out of the Service

        def scaledeck(*args):
            return subprocess.run(
                [str(venv / "bin" / "scaledeck"), *args],
                cwd=run_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )

        migrated = scaledeck("migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        checked = scaledeck("check", "--deploy", "--fail-level", "WARNING")
        assert checked.returncode == 0, checked.stdout + checked.stderr

        assert get(f"{base}/healthz", host=POD_HOST)[0] == 200
        assert get(f"{base}/readyz", host=POD_HOST)[0] == 200
        assert get(f"{base}/", host="evil.example.com")[0] == 400
        assert get(f"{base}/accounts/login/", host=POD_HOST)[0] == 400
        status, _body, headers = get(f"{base}/accounts/login/", host="scaledeck.example.com")
        assert (status, headers["Location"]) == (301, "https://scaledeck.example.com/accounts/login/")
        status, body, headers = get(f"{base}/accounts/login/", host="scaledeck.example.com", https=True)
        assert status == 200
        assert 'name="password"' in body and "csrfmiddlewaretoken" in body
        stylesheet = body.split('href="/static/css/')[1].split('"')[0]
        assert stylesheet != "scaledeck.css"  # the hashed name from the manifest
        css_status, css, _ = get(f"{base}/static/css/{stylesheet}", host="scaledeck.example.com", https=True)
        assert css_status == 200 and css
        status, scraped, _ = get(f"{base}/metrics", host=POD_HOST)
        assert status == 200 and "scaledeck_scale_actions_total" in scraped
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line["message"] for line in lines if line["logger"] == "gunicorn.access"]
    logged_in_page = '"GET /accounts/login/ HTTP/1.1" 200'
    assert any(logged_in_page in line and "request_id=" in line for line in access), output[-3000:]
