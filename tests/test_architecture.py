"""The import graph, drawn from the code with `ast`: layers, no circle across apps, `config` as wiring only.

Every `import` and `from ... import` counts, at module level or inside a function (a lazy import is
still a dependency). An app is a top-level package of the checkout; tests/, bench/ and scripts/
are not apps: they may import anything.

The layers, bottom to top (DESIGN.md, Architecture); an app imports only apps of lower layers:

    core, simulator          what every app shares; the pure-Python simulator
    accounts                 users, roles, tokens, the audit writer
    fleet                    what exists
    costing                  what it costs
    scaling                  what we change
    mig, advice, chatops, ops, audit, demo    the apps that read across the others
    config, scaledeck        wiring: settings, URLs, the Celery app, the command line
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.source_files import NOT_SOURCE, parse_source

ROOT = Path(__file__).resolve().parent.parent
NOT_APPS = {"tests", "bench", "scripts"}
LAYERS = [
    {"core", "simulator"},
    {"accounts"},
    {"fleet"},
    {"costing"},
    {"scaling"},
    {"mig", "advice", "chatops", "ops", "audit", "demo"},
    {"config", "scaledeck"},
]
WIRING = {"config", "scaledeck"}
# Harnesses that start worker processes import the Celery app, as `celery -A config` does.
CONFIG_FOR_HARNESSES = {"config.celery"}
MAX_LINES = 500


# Modules over MAX_LINES today (counted after `ruff format`), with their line count: each is being
# split (issue 11). None may grow, none may join, and one that has shrunk to MAX_LINES must leave the list.
OVER_MAX_TODAY: dict[str, int] = {}


def python_files(root: Path = ROOT) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*.py")
        # build/: pip's copy of the apps when `make` installs the project (CI does, in the checkout).
        if not {"migrations", *NOT_SOURCE} & set(path.relative_to(root).parts)
    )


def apps(root: Path = ROOT) -> set[str]:
    return {p.name for p in root.iterdir() if (p / "__init__.py").exists() and not p.name.startswith(".")} - NOT_APPS


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in the file; relative imports resolved against its package."""
    rel = path.relative_to(root)
    package = list(rel.parent.parts)
    found = []
    for node in ast.walk(parse_source(path.read_text(encoding="utf-8"), str(rel))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from fleet import models` imports the module fleet.models
            found += [
                (node.lineno, f"{module}.{alias.name}" if node.module or node.level else module) for alias in node.names
            ]
    return found


def import_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(importing top-level package, imported app) -> ["path:line imports module", ...]."""
    known = apps(root) | NOT_APPS
    edges = defaultdict(list)
    for path in python_files(root):
        rel = path.relative_to(root)
        source = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for line, module in imported_modules(path, root):
            target = module.split(".")[0]
            if target in known and target != source:
                edges[(source, target)].append(f"{rel}:{line} imports {module}")
    return edges


def app_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    all_apps = apps(root)
    return {(a, b): where for (a, b), where in import_edges(root).items() if a in all_apps and b in all_apps}


def cycles(edges) -> list[list[str]]:
    """The strongly connected groups of more than one app (Tarjan)."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_graph_sees_lazy_relative_and_from_imports_and_finds_a_circle(tmp_path):
    for package in ("low", "low/sub", "high", "tests"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "low" / "sub" / "deep.py").write_text("from .. import models\nfrom ..models import Row\n")
    (tmp_path / "low" / "models.py").write_text("def later():\n    from high.views import page\n")
    (tmp_path / "high" / "views.py").write_text("import low.models\n")
    (tmp_path / "tests" / "test_x.py").write_text("from high import views\n")

    assert imported_modules(tmp_path / "low" / "sub" / "deep.py", tmp_path) == [
        (1, "low.models"),
        (2, "low.models.Row"),
    ]
    edges = app_edges(tmp_path)
    assert edges == {
        ("low", "high"): ["low/models.py:2 imports high.views.page"],
        ("high", "low"): ["high/views.py:1 imports low.models"],
    }
    assert cycles(edges) == [["high", "low"]]
    assert ("tests", "high") in import_edges(tmp_path)
    assert cycles({("low", "high"): []}) == []


def test_no_circle_across_apps():
    edges = app_edges()
    found = cycles(edges)
    assert not found, "\n".join(
        f"circle {' <-> '.join(group)}:\n  "
        + "\n  ".join(w for (a, b), ws in edges.items() if a in group and b in group for w in ws)
        for group in found
    )


def test_every_app_imports_only_lower_layers():
    layer_of = {app: n for n, layer in enumerate(LAYERS) for app in layer}
    unplaced = apps() - set(layer_of)
    assert not unplaced, f"place these apps in a layer of LAYERS: {sorted(unplaced)}"
    upward = [w for (a, b), ws in app_edges().items() if layer_of[b] >= layer_of[a] for w in ws]
    assert not upward, "imports of an app of the same or a higher layer:\n" + "\n".join(upward)


def test_fleet_imports_neither_costing_nor_scaling():
    """What exists does not depend on what it costs or on what we change (issue 11 item 3)."""
    wrong = [w for (a, b), ws in app_edges().items() if a == "fleet" and b in {"costing", "scaling"} for w in ws]
    assert wrong == []


def test_nothing_imports_config_but_wiring():
    wrong = []
    for (source, target), where in import_edges().items():
        if target != "config" or source in WIRING:
            continue
        for w in where:
            module = w.rsplit(" imports ", 1)[1]
            harness = source in {"tests", "bench"} and any(
                module == m or module.startswith(m + ".") for m in CONFIG_FOR_HARNESSES
            )
            if not harness:
                wrong.append(w)
    assert not wrong, "only settings, URLs, the Celery app and the command line import config:\n" + "\n".join(wrong)


def test_no_module_over_the_limit():
    lines = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in python_files()}
    over = {path: n for path, n in lines.items() if n > MAX_LINES}
    joined = sorted(set(over) - set(OVER_MAX_TODAY))
    grown = sorted(
        f"{p}: {over[p]} lines (was {OVER_MAX_TODAY[p]})"
        for p in over.keys() & OVER_MAX_TODAY.keys()
        if over[p] > OVER_MAX_TODAY[p]
    )
    done = sorted(p for p in OVER_MAX_TODAY if p not in over)
    assert not joined, f"over {MAX_LINES} lines: " + ", ".join(f"{p} ({over[p]})" for p in joined)
    assert not grown, "grew: " + ", ".join(grown)
    assert not done, f"at most {MAX_LINES} lines now (or gone), take them out of OVER_MAX_TODAY: {done}"
