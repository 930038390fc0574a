"""Packaging beyond what pyproject.toml can say: the site-wide templates/ and static/ folders.

They sit at the top of the checkout (where `manage.py` and `make demo` use them) but are not
Python packages; the wheel carries them inside the `scaledeck` package, where
`config.settings` looks when it does not run from a checkout.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SITE_FOLDERS = ("templates", "static")


class BuildWithSiteFolders(build_py):
    def run(self):
        super().run()
        here = Path(__file__).resolve().parent
        for name in SITE_FOLDERS:
            target = Path(self.build_lib) / "scaledeck" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(here / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithSiteFolders})
