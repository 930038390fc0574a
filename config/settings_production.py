"""Production settings: `DJANGO_SETTINGS_MODULE=config.settings_production`.

`manage.py check --deploy` is clean with these. The secret key must come from
`SCALEDECK_SECRET_KEY` or `SCALEDECK_SECRET_KEY_FILE`; TLS is assumed at the ingress.
"""

import os

os.environ.setdefault("SCALEDECK_DEBUG", "0")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from config.settings import *  # noqa: E402,F403
from config.settings import DEBUG, SECRET_KEY  # noqa: E402
from core.env import env, env_bool, env_int  # noqa: E402

if DEBUG:
    raise ImproperlyConfigured("SCALEDECK_DEBUG must be off in production settings")
if not SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SCALEDECK_SECRET_KEY (or SCALEDECK_SECRET_KEY_FILE) must be set to at least 50 random characters"
    )

SECURE_SSL_REDIRECT = env_bool("SCALEDECK_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SCALEDECK_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SCALEDECK_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
WHITENOISE_USE_FINDERS = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if env("REDIS_CACHE_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env("REDIS_CACHE_URL")}}
