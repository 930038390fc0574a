"""Static files: the vendored plotly.js bundle, and how collected files are stored and named.

The charts are drawn by plotly.js's basic partial bundle (scatter, bar, pie: every chart ScaleDeck
draws), vendored under `static/vendor/plotly/` (see the README there): a quarter of the size of
the full bundle that the `plotly` Python package ships, which took seconds to parse before a chart
appeared, and about half the parse and run time of the cartesian bundle used before it.

Collected static files (`collectstatic`: production and `make demo`) get content-hashed names and
gzip-compressed copies, so WhiteNoise serves them compressed and cacheable for a year.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.contrib.staticfiles import finders
from django.templatetags.static import static
from whitenoise.storage import CompressedManifestStaticFilesStorage

PLOTLY_BUNDLE = "vendor/plotly/plotly-basic.min.js"


def plotly_url() -> str:
    return static(PLOTLY_BUNDLE)


def vendored_plotly_version() -> str:
    """The plotly.js version in the vendored bundle's banner (`plotly.js (basic - minified) v4.1.1`)."""
    path = Path(finders.find(PLOTLY_BUNDLE))
    with path.open(encoding="utf-8") as bundle:
        banner = bundle.read(300)
    match = re.search(r"plotly\.js \(basic[^)]*\) v(\d+\.\d+\.\d+)", banner)
    if not match:
        raise ValueError(f"{path} does not start with a plotly.js basic banner")
    return match.group(1)


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed manifest storage, with hashed URLs even when DEBUG is on.

    Django's manifest storage hands out the plain names under DEBUG, which WhiteNoise can only
    serve uncached; the demo runs with DEBUG on and should load as fast as production.
    """

    def url(self, name, force=False):
        return super().url(name, force=True)
