"""Reading the project's own Python source for the tests that check its structure (the import graph,
which modules import a client library)."""

from __future__ import annotations

import ast
import gc

# Not the project's source: pip's copy of the apps (`make` installs the project, so a CI checkout
# has build/lib/), virtualenvs, caches.
NOT_SOURCE = {".venv", ".git", "build", "dist", "node_modules", "__pycache__"}


def parse_source(source: str, filename: str = "<source>") -> ast.Module:
    """`ast.parse`, safe beside other threads that parse (pytest's assertion rewriting, live servers).

    CPython 3.11 keeps the AST builder's recursion depth per interpreter, not per thread
    (python/cpython#106905): a parse interleaved with another one fails with "AST constructor
    recursion depth mismatch", seen here under two test processes. Python code (and so a thread
    switch) runs mid-parse only from the garbage collector's finalizers, so it is held off; a
    parse that still met another one is tried again, once it has finished."""
    for attempt in range(3):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return ast.parse(source, filename=filename)
        except SystemError:
            if attempt == 2:
                raise
        finally:
            if enabled:
                gc.enable()
    raise AssertionError("unreachable")
