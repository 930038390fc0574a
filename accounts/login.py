"""Sign-in attempts limited per user and address (a small django-axes).

After SCALEDECK_LOGIN_MAX_FAILURES failed attempts for one username from one address within
SCALEDECK_LOGIN_LOCKOUT_SECONDS, that pair is refused until the window passes; one address is
refused after four times as many failures across usernames (password spraying). Locking on the
pair rather than on the username alone means nobody can lock a colleague out by typing their
name wrong from elsewhere. A success clears the pair's count. Counters are in Django's cache.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache

from accounts.authentication import client_address

logger = logging.getLogger("scaledeck.auth")


def _key(*parts: str) -> str:
    return "login-fail:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    limit = settings.SCALEDECK_LOGIN_MAX_FAILURES
    return [(_key("pair", username.lower(), address), limit), (_key("address", address), limit * 4)]


def login_locked_for(username: str, address: str, now: float | None = None) -> int:
    """Seconds until this username may try again from this address (0: it may now)."""
    now = time.time() if now is None else now
    wait = 0
    for key, limit in _keys(username, address):
        failures = [t for t in cache.get(key, []) if t > now - settings.SCALEDECK_LOGIN_LOCKOUT_SECONDS]
        if len(failures) >= limit:
            wait = max(wait, math.ceil(failures[-limit] + settings.SCALEDECK_LOGIN_LOCKOUT_SECONDS - now))
    return wait


def login_failed(username: str, address: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    window = settings.SCALEDECK_LOGIN_LOCKOUT_SECONDS
    for key, limit in _keys(username, address):
        recent = [t for t in cache.get(key, []) if t > now - window][-(limit * 4) :]
        cache.set(key, [*recent, now], timeout=window)


def login_succeeded(username: str, address: str) -> None:
    cache.delete(_keys(username, address)[0][0])


def locked_message(username: str, wait: int) -> str:
    minutes = max(1, math.ceil(wait / 60))
    return (
        f"Too many failed sign-in attempts for {username or 'this user'} from your address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def limited_login(request, sign_in, refuse):
    """The one limit around any sign-in form (ScaleDeck's and Django admin's): a locked pair gets
    `refuse(username, wait)` (its password is not checked), otherwise `sign_in()` runs and its
    outcome is counted (a redirect is a success)."""
    username = request.POST.get("username", "")[:150]
    address = client_address(request) or "unknown"
    wait = login_locked_for(username, address)
    if wait:
        logger.warning("sign-in refused: too many failures for %s from %s", username, address)
        response = refuse(username, wait)
        response.status_code = 429
        response["Retry-After"] = str(wait)
        return response
    response = sign_in()
    if response.status_code == 302:
        login_succeeded(username, address)
    else:
        login_failed(username, address)
    return response


class LimitedLoginView(auth_views.LoginView):
    """Django's login page, refusing a locked username/address pair with how long to wait (429)."""

    def post(self, request, *args, **kwargs):
        def refuse(username: str, wait: int):
            form = self.get_form_class()(request, initial={"username": username})  # unbound: no password check
            return self.render_to_response(
                self.get_context_data(form=form, locked_message=locked_message(username, wait))
            )

        return limited_login(request, lambda: super(LimitedLoginView, self).post(request, *args, **kwargs), refuse)
