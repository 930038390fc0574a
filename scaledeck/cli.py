"""`scaledeck`: what `manage.py` does, from any directory, for an installed ScaleDeck.

Settings come from the environment (`DJANGO_SETTINGS_MODULE`, default `config.settings`; in a
container `config.settings_production`), so `scaledeck migrate`, `scaledeck createsuperuser`,
`scaledeck cluster_add ...` behave exactly like `python manage.py ...` in a checkout.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else argv)
    args[0] = "scaledeck"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
