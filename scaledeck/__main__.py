"""`python -m scaledeck ...` is the `scaledeck` command."""

from scaledeck.cli import main

main()
