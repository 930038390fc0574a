"""plotly.js from the installed `plotly` Python package, served by ScaleDeck itself (no CDN).

The staticfiles finder `PlotlyFinder` (in STATICFILES_FINDERS) makes the package's copy a static
file at `vendor/plotly/plotly.min.js`, so collectstatic and WhiteNoise serve it compressed and
cache-busted like any other.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage
from django.templatetags.static import static

PREFIX = "vendor/plotly"
FILENAME = "plotly.min.js"


@cache
def plotly_dir() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data"


def plotly_version() -> str:
    import plotly

    return plotly.__version__


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(plotly_dir()))
        self.storage.prefix = PREFIX

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        find_all = find_all or kwargs.get("all", False)  # the argument's name before Django 5.2
        if path == f"{PREFIX}/{FILENAME}":
            found = str(plotly_dir() / FILENAME)
            return [found] if find_all else found
        return [] if find_all else None

    def list(self, ignore_patterns):
        yield FILENAME, self.storage


def plotly_url() -> str:
    return static(f"{PREFIX}/{FILENAME}")
