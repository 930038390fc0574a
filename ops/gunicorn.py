"""gunicorn's settings for the web pods: `gunicorn config.wsgi --config python:ops.gunicorn`.

Access log on, through ScaleDeck's formatters (text, or JSON with SCALEDECK_LOG_FORMAT=json),
each line ending with the request id that the application's own lines carry.
Environment: SCALEDECK_BIND (default 0.0.0.0:8000), SCALEDECK_WEB_WORKERS (default 3),
SCALEDECK_WEB_TIMEOUT (seconds, default 60).
"""

import os

from ops.logs import logging_config

bind = os.environ.get("SCALEDECK_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("SCALEDECK_WEB_WORKERS", "3"))
timeout = int(os.environ.get("SCALEDECK_WEB_TIMEOUT", "60"))
graceful_timeout = 20
# The proxy in front ends TLS; X-Forwarded-Proto from it tells Django the request was https.
forwarded_allow_ips = os.environ.get("SCALEDECK_FORWARDED_ALLOW_IPS", "*")
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" request_id=%({x-request-id}o)s'
logconfig_dict = logging_config(
    fmt=os.environ.get("SCALEDECK_LOG_FORMAT", "text"), level=os.environ.get("SCALEDECK_LOG_LEVEL", "INFO")
)
# Heartbeat files of gunicorn's workers: on /tmp, the one writable place in the container.
worker_tmp_dir = os.environ.get("SCALEDECK_GUNICORN_TMP_DIR", "/tmp")  # noqa: S108
