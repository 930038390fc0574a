"""The import graph, drawn from the code: `fleet` (what exists) imports neither `costing` (what it
costs) nor `scaling` (what we change), at any depth of a module, function-level imports and
`import_module("...")` strings included. The pages and API that combine them live above fleet
(scaling.api_deployments, scaling.chart_views, costing.api_nodes, costing's template tags, demo/)."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

from tests.source_files import parse_source

FLEET = Path(settings.BASE_DIR) / "fleet"
FORBIDDEN = {"costing", "scaling"}
DYNAMIC_IMPORTS = {"import_module", "import_string", "__import__"}


def imported_apps(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in `source`, wherever it sits."""
    found = []
    for node in ast.walk(parse_source(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in DYNAMIC_IMPORTS and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value.split(".")[0]))
    return sorted(found)


def test_it_sees_imports_at_any_depth():
    source = (
        "import costing.selectors\n"
        "def f():\n    from scaling.services import why\n"
        "def g():\n    importlib.import_module('accounts.models')\n"
        "from . import sync\nfrom fleet import models\n"
    )
    assert imported_apps(source) == [(1, "costing"), (3, "scaling"), (5, "accounts"), (7, "fleet")]


def test_fleet_imports_neither_costing_nor_scaling():
    modules = sorted(FLEET.rglob("*.py"))
    assert len(modules) > 50  # the whole app, not an empty folder
    offending = [
        f"{path.relative_to(FLEET.parent)}:{line}: {app}"
        for path in modules
        for line, app in imported_apps(path.read_text())
        if app in FORBIDDEN
    ]
    assert offending == []
