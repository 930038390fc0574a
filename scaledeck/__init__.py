"""The installed ScaleDeck: the `scaledeck` command, and (in a wheel) the site-wide templates and static files."""
