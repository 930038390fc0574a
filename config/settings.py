"""ScaleDeck settings. Everything comes from the environment (see README, "Configuration").

These defaults run the demo on a fresh machine with no services: SQLite, and a Celery broker
that lives in a folder on disk so that the web server, worker and beat started side by side on
one machine share it. Production: `config.settings_production`.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from core.env import env, env_bool, env_int, env_list
from ops.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
# A checkout (manage.py beside the apps) keeps templates/, static/ and var/ at its top; an
# installed wheel carries templates/ and static/ inside the `scaledeck` package, and keeps its
# data in the user's data folder unless SCALEDECK_DATA_DIR says where.
CHECKOUT = (BASE_DIR / "manage.py").is_file()
SITE_DIR = BASE_DIR if CHECKOUT else BASE_DIR / "scaledeck"
_DEFAULT_DATA_DIR = (
    BASE_DIR / "var"
    if CHECKOUT
    else Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "scaledeck"
)
DATA_DIR = Path(env("SCALEDECK_DATA_DIR", str(_DEFAULT_DATA_DIR)))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("SCALEDECK_DEBUG", True)
SECRET_KEY = env("SCALEDECK_SECRET_KEY") or (
    "django-insecure-scaledeck-demo-only-never-in-production" if DEBUG else None
)
ALLOWED_HOSTS = env_list("SCALEDECK_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("SCALEDECK_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "accounts.admin_apps.ScaleDeckAdminConfig",  # django.contrib.admin, open only to the admin role
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # WhiteNoise serves static files under runserver too (Django's own handler there answered
    # 500 to a missing file or a `..%2f` path); it must come before staticfiles.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files, not a CDN
    "core",  # what every app shares: errors, pagination, HTMX helpers, template tags, static files
    "accounts",
    "fleet",
    "scaling",
    "scaling.alerts.apps.AlertsConfig",
    "costing",
    "ops",
    "mig",
    "advice",
    "chatops",
    "demo",
    "audit",
]

MIDDLEWARE = [
    # /healthz, /readyz, /metrics for the kubelet and Prometheus (pod IP, plain http): answered
    # before any Host or https check, which still apply to every other path (ops/endpoints.py).
    "ops.endpoints.OpsEndpoints",
    "ops.request_context.RequestLogContext",
    "django.middleware.security.SecurityMiddleware",
    "core.limits.RequestLimits",  # body size and JSON depth, before anything parses
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Every page needs a sign-in, except the views marked `login_not_required`: the login page,
    # the API (DRF's views answer 401 themselves), the admin (its own login) and Slack's signed
    # endpoints. /healthz, /readyz, /metrics and static files are answered before any view.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SITE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.role",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'scaledeck.sqlite3'}"),
        conn_max_age=env_int("SCALEDECK_DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat write to one file: wait for the lock instead of
    # failing, take it up front (no upgrade deadlocks), and let readers run during writes.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so a real worker process started by a test sees the test's rows;
    # one per test run, so two runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "fleet:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("SCALEDECK_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# A container image collects them at build time into a read-only folder of its own.
STATIC_ROOT = Path(env("SCALEDECK_STATIC_ROOT", str(DATA_DIR / "static")))
if not STATIC_ROOT.exists():
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [SITE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
WHITENOISE_USE_FINDERS = True  # without collectstatic, serve the sources (tests, a bare runserver)
# Collected files (`make demo` sets this after collectstatic; production always) get hashed names,
# gzip copies and a year of browser caching; see core/staticfiles.py.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "core.staticfiles.HashedStaticFilesStorage"
        if env_bool("SCALEDECK_STATIC_MANIFEST", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.RoleRequired"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 100,
    # The token scope first: every list and detail goes through it (accounts/scope.py).
    "DEFAULT_FILTER_BACKENDS": [
        "core.filters.UnknownParametersRefused",
        "accounts.scope.TokenScopeFilter",
        "django_filters.rest_framework.DjangoFilterBackend",
    ],
    # Rates from SCALEDECK_THROTTLE_* below, read on every check (accounts/throttles.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttles.TokenWriteThrottle",
        "accounts.throttles.UserWriteThrottle",
        "accounts.throttles.ScaleThrottle",
        "accounts.throttles.ReadThrottle",
    ],
    # The browsable API for people signed in (anonymous browsers get 401 like any client).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.openapi.ScaleDeckAutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# OpenAPI 3 at /api/schema/ (YAML; `?format=json` for JSON), Swagger UI at /api/docs/, Redoc at
# /api/redoc/. The schema describes shapes, never data, so it is readable without signing in
# (a bot author's first call); every endpoint it describes still needs a token or a session.
SPECTACULAR_SETTINGS = {
    "TITLE": "ScaleDeck API",
    "DESCRIPTION": (
        "vLLM serving on Kubernetes GPU clusters: fleet, scaling, costs, MIG and advice. "
        "Authenticate with `Authorization: Bearer <token>` (manage.py apitoken_create). "
        "Errors: 400 `{field: [messages]}` or `{detail, ...}`; 401/403/404/413/429 `{detail}`; "
        "409 `{detail, ...}` when the cluster or another request got there first."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.bound_integer_path_parameters",
    ],
}

# Slack slash commands (POST /chatops/slack/): the app's signing secret; unset, every request is refused.
SCALEDECK_SLACK_SIGNING_SECRET = env("SCALEDECK_SLACK_SIGNING_SECRET", "") or ""
# Where the worker may post a confirmed scale's result (Slack's response_url): Slack's hooks only.
SCALEDECK_SLACK_RESPONSE_URL_PREFIX = env("SCALEDECK_SLACK_RESPONSE_URL_PREFIX", "https://hooks.slack.com/")

# ---------------------------------------------------------------- Celery
# "localhost" only names the machine whose folder it is (kombu warns on every task without one).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://localhost/")
_BROKER_DIR = DATA_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker that needs no server: messages are files in one folder, shared by every
    # process started from this checkout (web server, worker, beat).
    for sub in ("queue", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# One queue name per deployment of ScaleDeck sharing a broker (tests give each run its own).
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers and beat log through LOGGING (text or JSON, with task context), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SOFT_TIME_LIMIT = env_int("SCALEDECK_TASK_SOFT_TIME_LIMIT", 120)
CELERY_TASK_TIME_LIMIT = env_int("SCALEDECK_TASK_TIME_LIMIT", 180)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
SCALEDECK_SYNC_INTERVAL_SECONDS = env_int("SCALEDECK_SYNC_INTERVAL_SECONDS", 15)
CELERY_BEAT_SCHEDULE = {
    "sync-all-clusters": {
        "task": "fleet.tasks.sync_all_clusters",
        "schedule": float(SCALEDECK_SYNC_INTERVAL_SECONDS),
        "options": {"expires": float(SCALEDECK_SYNC_INTERVAL_SECONDS)},
    },
    # Cost of what ran, billed per cluster up to its last good sync (costing/tasks.py); at most
    # once per SCALEDECK_COST_MIN_INTERVAL_SECONDS per cluster, so every 30 s keeps bills under a
    # minute and a half behind.
    "accrue-cluster-costs": {
        "task": "costing.tasks.accrue_all_clusters",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    # Scaling events older than SCALEDECK_EVENT_RETENTION_DAYS (fleet/events.py).
    "prune-scaling-events": {
        "task": "fleet.tasks.prune_scaling_events",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    # Due pre-scale firings, ended windows, expired overrides, stuck actions (scaling/services/tick.py).
    "scaling-tick": {
        "task": "scaling.tasks.scaling_tick",
        "schedule": 15.0,
        "options": {"expires": 15.0},
    },
    # Node repartitionings whose worker message was lost (mig/services).
    "recover-mig-applications": {
        "task": "mig.tasks.recover_mig_applications",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Timeline rows from Prometheus: first token served, queue over / under target (scaling/timeline_signals.py).
    "timeline-signals": {
        "task": "scaling.tasks.timeline_signals_tick",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # The layouts each cluster's GPU operator can apply, for MIG plans (mig/layouts.py).
    "refresh-mig-configs": {
        "task": "mig.tasks.refresh_mig_configs",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    # SLO burn and threshold alerts, then their notifications (scaling/alerts/).
    "alerts-tick": {
        "task": "scaling.alerts.tasks.alerts_tick",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}

# ---------------------------------------------------------------- ScaleDeck
# A cluster whose last good sync is older than this is shown as stale.
SCALEDECK_STALE_AFTER_SECONDS = env_int("SCALEDECK_STALE_AFTER_SECONDS", 120)
# Kubernetes Events, pod conditions and NodeClaims kept for the timeline and cold starts.
SCALEDECK_EVENT_RETENTION_DAYS = env_int("SCALEDECK_EVENT_RETENTION_DAYS", 14)
SCALEDECK_METRICS_CACHE_SECONDS = env_int("SCALEDECK_METRICS_CACHE_SECONDS", 10)
SCALEDECK_DEFAULT_TTFT_SLO_SECONDS = float(env("SCALEDECK_DEFAULT_TTFT_SLO_SECONDS", "2.0"))
# Alert notifications: how long a receiver may take to answer, and the address links point to.
SCALEDECK_WEBHOOK_TIMEOUT_SECONDS = float(env("SCALEDECK_WEBHOOK_TIMEOUT_SECONDS", "5"))
SCALEDECK_BASE_URL = env("SCALEDECK_BASE_URL", "")
# Input limits (core/limits.py): request body sizes in bytes, and how deep JSON may nest.
SCALEDECK_API_MAX_BODY_BYTES = env_int("SCALEDECK_API_MAX_BODY_BYTES", 1024 * 1024)
SCALEDECK_PAGE_MAX_BODY_BYTES = env_int("SCALEDECK_PAGE_MAX_BODY_BYTES", 1024 * 1024)
SCALEDECK_JSON_MAX_DEPTH = env_int("SCALEDECK_JSON_MAX_DEPTH", 32)
# API tokens (accounts/): days a new token lasts unless told otherwise; "never" (or 0) for no expiry.
_token_days = env("SCALEDECK_TOKEN_DEFAULT_DAYS", "90").strip().lower()
SCALEDECK_TOKEN_DEFAULT_DAYS = None if _token_days in ("never", "0", "") else int(_token_days)
# API rate limits ("N/s|min|hour|day"): scale requests, any write, any read; per token and per user.
SCALEDECK_THROTTLE_SCALE = env("SCALEDECK_THROTTLE_SCALE", "30/min")
SCALEDECK_THROTTLE_WRITE = env("SCALEDECK_THROTTLE_WRITE", "120/min")
SCALEDECK_THROTTLE_READ = env("SCALEDECK_THROTTLE_READ", "1200/min")
# Sign-in: this many failures for one user from one address locks that pair for the window.
SCALEDECK_LOGIN_MAX_FAILURES = env_int("SCALEDECK_LOGIN_MAX_FAILURES", 5)
SCALEDECK_LOGIN_LOCKOUT_SECONDS = env_int("SCALEDECK_LOGIN_LOCKOUT_SECONDS", 15 * 60)
# Folders a cluster's kubeconfig and Prometheus secret files may be read from (fleet/secret_files.py);
# SCALEDECK_SECRET_DIRS adds more (comma-separated) to the data folder and /run/secrets.
SCALEDECK_SECRET_DIRS = [str(DATA_DIR), "/run/secrets", *env_list("SCALEDECK_SECRET_DIRS")]
# Where an in-cluster watcher keeps its coordination.k8s.io Lease when it cannot read its pod's own
# namespace from the ServiceAccount mount (fleet/watch/lease.py).
SCALEDECK_WATCH_LEASE_NAMESPACE = env("SCALEDECK_WATCH_LEASE_NAMESPACE", "scaledeck")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "scaledeck",
    }
}

# Time, level, logger, message and context on every line; `json` for one object per line.
LOGGING = logging_config(fmt=env("SCALEDECK_LOG_FORMAT", "text"), level=env("SCALEDECK_LOG_LEVEL", "INFO"))

# ScaleDeck's own metrics (core/metrics.py, exposed by ops/metrics.py): each process (web workers,
# Celery pool processes) writes its counters to a file in this folder and /metrics adds them up.
# prometheus-client reads the variable when first imported, which is after settings.
SCALEDECK_METRICS_DIR = Path(env("SCALEDECK_METRICS_DIR", str(DATA_DIR / "metrics")))
SCALEDECK_METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(SCALEDECK_METRICS_DIR))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # HTMX reads it to send X-CSRFToken
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Password of the demo users that `manage.py demo_seed` creates (admin, operator, viewer).
SCALEDECK_DEMO_PASSWORD = env("SCALEDECK_DEMO_PASSWORD", "scaledeck-demo")

# Costing: a GPU-hour with utilization under this fraction counts as idle.
SCALEDECK_IDLE_UTILIZATION_THRESHOLD = float(env("SCALEDECK_IDLE_UTILIZATION_THRESHOLD", "0.10"))
# A gap between two accruals longer than this (workers down) bills only its last stretch.
SCALEDECK_COST_MAX_GAP_SECONDS = env_int("SCALEDECK_COST_MAX_GAP_SECONDS", 3600)
# Accrue at most this often, however often the cluster syncs.
SCALEDECK_COST_MIN_INTERVAL_SECONDS = env_int("SCALEDECK_COST_MIN_INTERVAL_SECONDS", 60)
