"""Watch-based sync (`manage.py cluster_watch`): informers list once, then follow the API
server's watches, and small batches write only what changed.

    informer.py  one thread per kind: list, watch from the list's resourceVersion, resume, re-list on 410
    state.py     the cached objects and the facts read from them; which facts a batch changed (pure)
    apply.py     a batch into the database, through the full sync's own upserts (fleet.sync, fleet.rows)
    watcher.py   a cluster's informers, the debounce, the first full apply; the lease-holding loop
    lease.py     one watcher per cluster: a lease on the Cluster row, which the beat's sync respects
"""
