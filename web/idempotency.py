"""`Idempotency-Key` for the actions a patient may repeat after a lost answer (issue 31).

Stripe's semantics: a request that carries a key (the `Idempotency-Key` header, or the hidden
`idempotency_key` field every portal form of these actions sends) is done once. Its answer (status,
body, `Location`) is kept for 24 hours in the MongoDB collection `idempotency_keys` (a TTL index
deletes it after that); the same key with the same body answers that first answer again, the same
key with another body (or on another endpoint) answers 422 `idempotency_key_reused`, and a duplicate
that arrives while the first is still running waits for it (up to `WAIT_SECONDS`) and answers its
answer, else 409 `request_in_progress`; so two at once do one thing.

Keys are per signed-in patient (another patient's key is another key). An answer of 5xx is not kept
(the action did not happen, or it is unknown: the retry runs it again, and every action is
recoverable); a request that died without an answer leaves a "running" record that a retry takes
over after `STALE_AFTER`. Requests without a key are untouched.
"""

import hashlib
import json
import logging
import time
from datetime import datetime, timedelta, timezone

import pymongo.errors
from flask import current_app, g, request
from flask_jwt_extended import decode_token

from web.errors import error_response

log = logging.getLogger(__name__)

COLLECTION = "idempotency_keys"
KEEP = timedelta(hours=24)
STALE_AFTER = timedelta(seconds=60)  # a request still "running" this long died (every wait is bounded)
WAIT_SECONDS = 5.0
MAX_KEY = 255
MAX_BODY = 256 * 1024
FORM_FIELD = "idempotency_key"
# The endpoints whose POST is done once per key: booking, payment start and confirm, cancel,
# reschedule, in the JSON API and on the portal's pages.
ENDPOINTS = {
    "api.create_appointment", "api.cancel_appointment", "api.reschedule_appointment", "api.accept_offer",
    "payment_api.start", "payment_api.confirm",
    "portal.book_post", "portal.cancel_appointment", "portal.reschedule_post", "portal.waitlist_accept",
    "payment_pages.checkout",
}
IGNORED_FORM_FIELDS = {FORM_FIELD, "csrf_token", "jwt_csrf"}


def collection():
    """The `idempotency_keys` collection."""
    return current_app.extensions["mongo"].database()[COLLECTION]


def ensure_index(app):
    """The TTL index that forgets answers after 24 hours."""
    with app.app_context():
        collection().create_index("created_at", expireAfterSeconds=int(KEEP.total_seconds()))


def _now():
    return datetime.now(timezone.utc)


def _key():
    """The request's idempotency key, or None."""
    key = request.headers.get("Idempotency-Key")
    if key is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        key = request.form.get(FORM_FIELD) or None
    return key


def _identity():
    """The signed-in patient's id from the access token (its signature and expiry checked), or None."""
    token = request.cookies.get(current_app.config.get("JWT_ACCESS_COOKIE_NAME", "access_token_cookie"))
    auth = request.headers.get("Authorization", "")
    if not token and auth.startswith("Bearer "):
        token = auth[7:]
    if not token:
        return None
    try:
        return str(decode_token(token)["sub"])
    except Exception:  # an invalid token: the view answers 401 itself, nothing is kept
        return None


def _fingerprint():
    """What "the same request" means: method, path and body (JSON compared as data, forms as fields)."""
    if request.mimetype == "application/json":
        raw = request.get_data(cache=True)
        try:
            body = json.dumps(json.loads(raw or b"null"), sort_keys=True, separators=(",", ":"))
        except ValueError:
            body = raw.decode("utf-8", "replace")
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        body = json.dumps(sorted((k, v) for k, v in request.form.items(multi=True)
                                 if k not in IGNORED_FORM_FIELDS))
    else:
        body = request.get_data(cache=True).decode("utf-8", "replace")
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record):
    """The first answer again."""
    response = current_app.response_class(record.get("body") or b"", status=record["status"],
                                          mimetype=record.get("mimetype") or "application/json")
    if record.get("location"):
        response.headers["Location"] = record["location"]
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _start(records, record_id, fingerprint, now):
    """Claim `record_id` for this request (state running); False when another request holds it."""
    try:
        records.insert_one({"_id": record_id, "fingerprint": fingerprint, "state": "running",
                            "created_at": now, "started_at": now})
    except pymongo.errors.DuplicateKeyError:
        return False
    g.idempotency = record_id
    return True


def before_request():
    """Answer a repeated request with its first answer, refuse a reused key, or mark this one running."""
    if request.method != "POST" or request.endpoint not in ENDPOINTS:
        return None
    key = _key()
    if key is None:
        return None
    if not (0 < len(key) <= MAX_KEY) or not key.isprintable():
        return error_response(422, f"Idempotency-Key must be 1 to {MAX_KEY} printable characters.",
                              code="invalid")
    who = _identity()
    if who is None:
        return None  # the view refuses the request (401); nothing to keep
    record_id = f"{who}:{key}"
    fingerprint = _fingerprint()
    records = collection()
    now = _now()
    if _start(records, record_id, fingerprint, now):
        return None
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        record = records.find_one({"_id": record_id})
        if record is None:  # deleted meanwhile (its request failed): run this one
            if _start(records, record_id, fingerprint, now):
                return None
            continue
        if record["fingerprint"] != fingerprint:
            return error_response(422, "This Idempotency-Key was already used for a different request.",
                                  code="idempotency_key_reused")
        if record["state"] == "done":
            return _replay(record)
        started = record["started_at"]
        started = started.replace(tzinfo=timezone.utc) if started.tzinfo is None else started
        if _now() - started > STALE_AFTER:
            # Its request died without an answer (the action itself is recoverable): take it over.
            if records.find_one_and_update({"_id": record_id, "state": "running", "started_at": record["started_at"]},
                                           {"$set": {"started_at": _now()}}):
                g.idempotency = record_id
                return None
            continue
        if time.monotonic() >= deadline:
            return error_response(409, "The same request is still being processed; try again in a moment.",
                                  code="request_in_progress")
        time.sleep(0.05)  # the first request is running: wait for its answer


def after_request(response):
    """Keep the answer with the key (not a 5xx: the retry runs again); never fails the answer."""
    record_id = g.pop("idempotency", None)
    if record_id is None:
        return response
    try:
        if response.status_code >= 500:
            collection().delete_one({"_id": record_id, "state": "running"})
        else:
            body = response.get_data() if not response.direct_passthrough else b""
            collection().update_one({"_id": record_id}, {"$set": {
                "state": "done", "status": response.status_code, "body": body[:MAX_BODY],
                "mimetype": response.mimetype, "location": response.headers.get("Location")}})
    except Exception as exc:  # after the commit: the answer stands (issue 31); a retry re-runs safely
        log.warning("idempotency record %s not stored: %s", record_id, exc)
    return response


def teardown_request(exc):
    """A request that raised past the error handlers: forget its running record (best effort)."""
    record_id = g.pop("idempotency", None)
    if record_id is not None and exc is not None:
        try:
            collection().delete_one({"_id": record_id, "state": "running"})
        except Exception:
            pass


def init_app(app):
    """Register the hooks (after CSRF's) and the TTL index."""
    ensure_index(app)
    app.before_request(before_request)
    app.after_request(after_request)
    app.teardown_request(teardown_request)
    # A helper for the portal's forms: one fresh key per rendered form.
    app.jinja_env.globals["idempotency_key"] = _new_key


def _new_key():
    import secrets

    return secrets.token_urlsafe(18)
