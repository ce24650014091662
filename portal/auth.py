"""Patient sessions: JWTs in HttpOnly cookies, revocation in Redis, sign-in throttling, the patient's rate limits.

A session starts at sign-in (`sid` claim, epoch seconds). Access tokens live
`ACCESS_TOKEN_MINUTES`; the refresh token lives until `sid + SESSION_MAX_HOURS` and is never
extended, so a session ends at that absolute limit however often it refreshes. Tokens carry the
patient's `gen`: a password change bumps it and every older token stops working. Logout puts the
token ids on a Redis blocklist with a TTL equal to their remaining life; when Redis cannot answer
that check the request fails closed with 503.
"""

import logging
import time
from contextlib import contextmanager
from datetime import timedelta
from functools import wraps

import jwt as pyjwt
import redis
from flask import current_app, g, redirect, request, url_for
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    decode_token,
    get_jwt,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException

from web.audit import audit, audit_event
from web.errors import error_response
from models.stores import Lease
from web.extensions import get_redis, jwt, rkey
from web.signin import device_for, guarded_password_check, remember_device, throttle
from models import ratelimits
from models.accounts import authenticate
from models.accounts.throttle import LoginThrottle
from models.documents import Patient
from models.errors import InvalidCredentials
from models.ratelimits import Limit

log = logging.getLogger(__name__)

INVALID_LOGIN = "Email or password is not correct."


@jwt.user_lookup_loader
def load_patient(_header, payload):
    """The signed-in patient, or None when deactivated or the token's generation is old."""
    patient = Patient.objects(id=payload["sub"], active=True).first()
    if patient is None or payload.get("gen") != patient.token_generation:
        return None
    return patient


@jwt.token_in_blocklist_loader
def token_revoked(_header, payload):
    """True when the token id was revoked; Redis errors propagate (503, fail closed)."""
    return bool(get_redis().exists(rkey("revoked", payload["jti"])))


def _unauthorized(message="Please sign in.", code="unauthorized"):
    response = error_response(401, message, code)
    if request.path.startswith("/portal") and response.mimetype == "text/html":
        response = redirect(url_for("portal.login", next=request.path))
    return response


@jwt.unauthorized_loader
def jwt_missing(reason):
    return _unauthorized("Please sign in.")


@jwt.invalid_token_loader
def jwt_invalid(reason):
    return _unauthorized("Your session is not valid; please sign in again.", "invalid_token")


@jwt.expired_token_loader
def jwt_expired(_header, _payload):
    return _unauthorized("Your session has expired; please sign in again.", "token_expired")


@jwt.revoked_token_loader
def jwt_revoked(_header, _payload):
    return _unauthorized("Your session has ended; please sign in again.", "token_revoked")


@jwt.user_lookup_error_loader
def jwt_user_gone(_header, _payload):
    return _unauthorized("Your session has ended; please sign in again.", "token_revoked")


REGISTRATIONS_PER_HOUR = 10


REGISTRATION_LIMIT_MESSAGE = "Too many attempts from your network. Please wait and try again."
REGISTRATIONS_PER_EMAIL_HOUR = 3

# Registrations an hour per client address and per email (README "Configuration" says why these numbers).
REGISTRATIONS_PER_ADDRESS = Limit("register", REGISTRATIONS_PER_HOUR, 3600, REGISTRATION_LIMIT_MESSAGE,
                                  setting="REGISTRATIONS_PER_HOUR")
REGISTRATIONS_PER_EMAIL = Limit("register", REGISTRATIONS_PER_EMAIL_HOUR, 3600, REGISTRATION_LIMIT_MESSAGE,
                                setting="REGISTRATIONS_PER_EMAIL_HOUR")


def _registration_limits(email=None):
    """The limits a registration counts against: (limit, identifiers) per address, and per email when known."""
    limits = [(REGISTRATIONS_PER_ADDRESS, ("address", request.remote_addr or "unknown"))]
    if email is not None:
        limits.append((REGISTRATIONS_PER_EMAIL, ("email", LoginThrottle.account_id(email))))
    return limits


def registration_allowed():
    """Refuse early (nothing counted) when this address has used up its registrations this hour."""
    for limit, identifiers in _registration_limits():
        ratelimits.check(limit, *identifiers)


def count_registration(email):
    """Count one registration for this address and this email before the account is written; 429 past either.

    Called by the rule after the input passed its checks (a mistyped form or a refused password
    never counts, so a waiting-room tablet is not locked out by typos) and before the insert, so
    the count and the refusal are one atomic step each (`models.ratelimits`). A count is not given
    back when the insert then fails: a duplicate email is a probe and counts.
    """
    for limit, identifiers in _registration_limits(email):
        ratelimits.hit(limit, *identifiers)


BOOKING_LIMIT_MESSAGE = "Too many booking attempts. Please wait a few minutes and try again."
RESCHEDULE_LIMIT_MESSAGE = "Too many changes of time. Please wait a few minutes and try again."

# Booking attempts per account and per address, and changes of time per account, in any 10 minutes.
BOOKINGS_PER_ACCOUNT = Limit("book-acct", 20, 600, BOOKING_LIMIT_MESSAGE, setting="BOOKINGS_PER_ACCOUNT_10MIN")
BOOKINGS_PER_ADDRESS = Limit("book-ip", 60, 600, BOOKING_LIMIT_MESSAGE, setting="BOOKINGS_PER_ADDRESS_10MIN")
RESCHEDULES_PER_ACCOUNT = Limit("move-acct", 10, 600, RESCHEDULE_LIMIT_MESSAGE,
                                setting="RESCHEDULES_PER_ACCOUNT_10MIN")


# Issue 31: what may fail open while Redis does not answer (docs/crash-consistency.md). The booking and
# reschedule throttles and the per-patient booking lock guard against floods and races that the
# database's own rules still bound (the claims' unique index, the counted hold and upcoming limits),
# so for FAIL_OPEN_SECONDS after Redis first fails (per process) they let the action through,
# logged; past that they fail closed (503). The sign-out blocklist, the sign-in throttle and the
# registration limits never fail open: they are the only guard against a stolen session and
# password guessing.
FAIL_OPEN_SECONDS = 60
_redis_failing_since = [None]


def may_fail_open(what, exc):
    """True (and logged) while Redis has been failing for under FAIL_OPEN_SECONDS in this process."""
    now = time.time()
    since = _redis_failing_since[0]
    if since is None:
        _redis_failing_since[0] = since = now
    if now - since > FAIL_OPEN_SECONDS:
        return False
    log.warning("Redis not answering (%s): the %s fails open for at most %d s", exc, what, FAIL_OPEN_SECONDS)
    return True


def _redis_answered():
    _redis_failing_since[0] = None


def booking_attempt_allowed(patient):
    """Count a booking attempt per account and per address (10-minute windows); 429 past either limit.

    Fails open for a short while when Redis does not answer (`may_fail_open`).
    """
    try:
        ratelimits.hit(BOOKINGS_PER_ACCOUNT, patient.id)
        ratelimits.hit(BOOKINGS_PER_ADDRESS, request.remote_addr or "unknown")
    except redis.RedisError as exc:
        if not may_fail_open("booking throttle", exc):
            raise
        return
    _redis_answered()


def reschedule_attempt_allowed(patient):
    """Count a reschedule attempt per account (10-minute window); 429 past the limit.

    The booking throttle's sibling with its own budget: each reschedule queues a notice and new
    reminders, so moving back and forth must not flood the outbox.
    """
    try:
        ratelimits.hit(RESCHEDULES_PER_ACCOUNT, patient.id)
    except redis.RedisError as exc:
        if not may_fail_open("reschedule throttle", exc):
            raise
        return
    _redis_answered()


# The booking lock is a lease: short, and renewed while its holder works. A worker killed mid-booking
# stops renewing, so the patient's next attempt gets in after BOOK_LOCK_SECONDS at most (a 30 s lock
# made it wait 10 s and then refused it as "still being made").
# Issue 31: a lock left behind (a killed worker, or one Valkey kept over a restart through its AOF)
# costs the patient at most BOOK_LOCK_SECONDS: the wait outlasts the lease, so it ends in the lock.
BOOK_LOCK_SECONDS = 3
BOOK_LOCK_WAIT_SECONDS = 3.5


@contextmanager
def one_booking_at_a_time(patient):
    """Serialise one patient's bookings (a Redis lease), so parallel requests cannot outrun the hold limits."""
    from models.errors import Conflict

    lease = Lease(rkey("book-lock", patient.id), BOOK_LOCK_SECONDS, wait=BOOK_LOCK_WAIT_SECONDS)
    try:
        acquired = lease.acquire()
    except redis.RedisError as exc:
        if not may_fail_open("booking lock", exc):
            raise
        yield  # unlocked for a short while: the database's rules still hold (docs/crash-consistency.md)
        return
    if not acquired:
        raise Conflict("Another booking of yours is still being made. Please try again.",
                       code="booking_in_progress")
    with lease.held():
        yield


def register_patient_counted(email, password, name, phone=None, date_of_birth=None):
    """Register through the rule, counting the attempt per address and per email just before the insert."""
    from models.accounts import register_patient

    # The rule writes the "patient.register" event with the new account (its actor: the new patient).
    return register_patient(email, password, name, phone, admit=count_registration, date_of_birth=date_of_birth,
                            audit=audit_event("", "patient.register"))


@contextmanager
def password_throttled(patient, field):
    """Hold an action that checks the patient's current password under the sign-in throttle.

    Pass it as the action's `guard=` (the action then audits the throttle's refusal too). A
    ValidationFailed on `field` (a wrong current password) counts as a failed attempt; the
    throttle's 429 comes before any password is checked.
    """
    from models.errors import ValidationFailed

    guard = throttle()
    # The device cookie of the patient's sign-ins: a familiar browser keeps its way through a lock
    # that spread guessing put on the account; any other client waits it out (as at sign-in).
    attempt = guard.begin("password", patient.email, request.remote_addr,
                          device=device_for("patient", patient.email))
    try:
        yield
    except ValidationFailed as exc:
        if field in exc.fields:
            guard.failure(attempt)
        else:
            guard.success(attempt)
        raise
    except Exception:
        guard.success(attempt)  # refused for another reason: the password was right
        raise
    guard.success(attempt)


def sign_in(email, password):
    """Check the throttle and the password; return the patient or raise DomainError (401/429)."""
    found = []
    guarded_password_check("patient", email,
                           lambda: bool(found.append(authenticate(Patient, email, password)) or found[0]))
    patient = found[0]
    if patient is None:
        audit("anonymous", "patient.login", outcome="failure")
        raise InvalidCredentials(INVALID_LOGIN)
    remember_device("patient", patient.email)
    audit(f"patient:{patient.id}", "patient.login", record=f"Patient:{patient.id}")
    return patient


def _session_left(sid):
    return timedelta(seconds=sid + current_app.config["SESSION_MAX_HOURS"] * 3600 - time.time())


def issue_tokens(response, patient, sid=None, refresh=True):
    """Set the access (and refresh) cookies for a session that started at `sid`."""
    sid = int(sid or time.time())
    left = _session_left(sid)
    claims = {"gen": patient.token_generation, "sid": sid}
    access_life = min(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"], left)
    set_access_cookies(response, create_access_token(
        identity=str(patient.id), additional_claims=claims, expires_delta=access_life))
    if refresh:
        set_refresh_cookies(response, create_refresh_token(
            identity=str(patient.id), additional_claims=claims, expires_delta=left))
    return response


def revoke(payload):
    """Put a token id on the blocklist for the rest of its life."""
    ttl = int(payload["exp"] - time.time()) + 1
    if ttl > 0:
        get_redis().set(rkey("revoked", payload["jti"]), 1, ex=ttl)


def revoke_cookies():
    """Revoke whichever of the request's access and refresh tokens are still valid."""
    for cookie in (current_app.config["JWT_ACCESS_COOKIE_NAME"], current_app.config["JWT_REFRESH_COOKIE_NAME"]):
        token = request.cookies.get(cookie)
        if not token:
            continue
        try:
            revoke(decode_token(token, allow_expired=True))
        except (pyjwt.PyJWTError, JWTExtendedException):
            continue


def logout_identity():
    """The patient and token payload a sign-out ends, even when the access token has expired.

    An expired access token still proves the CSRF double-submit (its `csrf` claim), so sign-out
    can revoke the refresh token that would otherwise live on for the rest of the session.
    """
    import hmac

    from flask_jwt_extended.exceptions import CSRFError

    try:
        verify_jwt_in_request()
        return current_patient(), get_jwt()
    except pyjwt.ExpiredSignatureError:
        payload = decode_token(request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"], ""),
                               allow_expired=True)
        sent = request.headers.get("X-CSRF-TOKEN") or request.form.get("jwt_csrf") or ""
        if not sent or not hmac.compare_digest(sent, str(payload.get("csrf", ""))):
            raise CSRFError("CSRF double submit tokens do not match") from None
        return Patient.objects(id=payload["sub"]).first(), payload


def current_patient():
    """The patient of the verified token in this request."""
    from flask_jwt_extended import current_user

    return current_user


def patient_page(view):
    """Require a signed-in patient on a portal page; refresh silently on GET, else go to login."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            verify_jwt_in_request()
            if current_patient() is None:
                raise JWTExtendedException("unknown patient")
        except (pyjwt.PyJWTError, JWTExtendedException) as exc:
            from flask_jwt_extended.exceptions import CSRFError

            if isinstance(exc, CSRFError):
                raise
            if request.method == "GET":
                try:
                    verify_jwt_in_request(refresh=True)
                    patient = current_patient()
                    if patient is not None:
                        response = redirect(request.full_path)
                        return issue_tokens(response, patient, sid=get_jwt()["sid"], refresh=False)
                except (pyjwt.PyJWTError, JWTExtendedException):
                    pass
            # The cookies are cleared: their tokens are revoked too, so no copy outlives them.
            revoke_cookies()
            response = redirect(url_for("portal.login", next=request.path))
            unset_jwt_cookies(response)
            return response
        g.patient = current_patient()
        return view(*args, **kwargs)

    return wrapper
