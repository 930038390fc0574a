"""Production settings pass `manage.py check --deploy` with no warning, and refuse unsafe config."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEDECK_SECRET")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_it_is_clean_under_check_deploy_with_production_settings(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings_production",
        SCALEDECK_SECRET_KEY=secrets.token_urlsafe(60),
        SCALEDECK_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_reads_the_secret_key_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(secrets.token_urlsafe(60) + "\n")
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings_production",
        SCALEDECK_SECRET_KEY_FILE=str(key_file),
        SCALEDECK_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_refuses_to_start_in_production_without_a_secret_key(tmp_path):
    result = run_manage("check", DJANGO_SETTINGS_MODULE="config.settings_production", SCALEDECK_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SCALEDECK_SECRET_KEY" in result.stderr
