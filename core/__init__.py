"""What every app shares: the application error type and its handlers, pagination, HTMX helpers,
template tags, static files, chart building, request limits, range-checked filters, input rules.

Imports no other ScaleDeck app (tests/test_architecture.py).
"""
