"""The sign-in guard both doors use (patients at /portal and /api, staff at /admin): the throttle and device cookies.

`guarded_password_check` counts the attempt with the sign-in throttle before the password is
checked (its lockout rules are domain code: `models.accounts.throttle`) and records the outcome. A
device cookie (OWASP "account lockout" with device cookies), signed, per sign-in scope ("patient",
"staff"), is given to a browser after a successful sign-in: it keeps its way through a lock that
spread guessing put on the account. It lives in the web layer, below both doors, so neither imports the other.
"""

import secrets

from flask import after_this_request, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from web.extensions import get_redis, rkey_tagged
from models.accounts.throttle import LoginThrottle

DEVICE_COOKIE_DAYS = 90


def throttle():
    """The sign-in throttle over the app's Redis (its keys in one cluster hash slot: it uses them in transactions)."""
    return LoginThrottle(get_redis(), rkey_tagged)


def device_cookie_name(scope):
    """The device cookie of a sign-in scope ("patient", "staff"); `__Host-` when cookies are Secure."""
    prefix = "__Host-" if current_app.config.get("COOKIE_SECURE", True) else ""
    return f"{prefix}clinic_device_{scope}"


def _device_serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="clinic-device-cookie")


def device_for(scope, email):
    """The device id of this browser's device cookie when it was issued to this account, else None."""
    raw = request.cookies.get(device_cookie_name(scope))
    if not raw:
        return None
    try:
        data = _device_serializer().loads(raw, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("a") != LoginThrottle.account_id(email):
        return None
    return str(data.get("d", ""))[:32] or None


def remember_device(scope, email):
    """After a successful sign-in: give this browser a device cookie for the account (OWASP)."""
    value = _device_serializer().dumps({"a": LoginThrottle.account_id(email), "d": secrets.token_hex(8)})

    @after_this_request
    def set_cookie(response):
        response.set_cookie(device_cookie_name(scope), value, max_age=DEVICE_COOKIE_DAYS * 86400, path="/",
                            secure=current_app.config.get("COOKIE_SECURE", True), httponly=True,
                            samesite="Lax")
        return response


def guarded_password_check(scope, email, check):
    """Count the attempt, run `check()` (True when the password is right), record the outcome.

    Raises Throttled (429) before any hashing when this client may not try now.
    """
    guard = throttle()
    attempt = guard.begin(scope, email, request.remote_addr, device=device_for(scope, email))
    ok = check()
    if ok:
        guard.success(attempt)
    else:
        guard.failure(attempt)
    return ok
