"""Every failure answers in the contract's shape: JSON `{"error": {code, message}}` or an HTML page.

The HTTP status and headers of each domain error are decided here (`STATUS_OF_ERROR`, `headers_of`),
not in the domain.
"""

import logging

import mongoengine.errors
import pymongo.errors
import redis
from flask_jwt_extended.exceptions import CSRFError
from flask_wtf.csrf import CSRFError as WTFCSRFError
from flask import jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from models.errors import (
    Conflict,
    DependencyDown,
    DomainError,
    Forbidden,
    InvalidCredentials,
    NotFound,
    Throttled,
    ValidationFailed,
)
from models.payments.gateway import PaymentDeclined, PaymentProviderError
from models.payments.inbox import EventFailed
from models.payments.refunds import RefundFailed

log = logging.getLogger(__name__)

# Slugs for the statuses the contract names.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
HTML_PREFIXES = ("/portal", "/admin")

# The HTTP status of each domain error: the nearest class in an error's MRO that is listed here wins
# (PaymentUnavailable is a DependencyDown, so 503). The domain knows nothing of HTTP.
STATUS_OF_ERROR = {
    DomainError: 400,
    InvalidCredentials: 401,
    PaymentDeclined: 402,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    ValidationFailed: 422,
    Throttled: 429,
    PaymentProviderError: 502,
    RefundFailed: 502,
    DependencyDown: 503,
    EventFailed: 500,  # a Stripe event that could not be processed: Stripe delivers it again
}


def status_of(exc):
    """The HTTP status a domain error answers with."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF_ERROR:
            return STATUS_OF_ERROR[cls]
    return 400


def headers_of(exc):
    """The HTTP headers a domain error answers with: Retry-After when it says when to try again."""
    retry_after = getattr(exc, "retry_after", None)
    return {"Retry-After": str(retry_after)} if retry_after else {}


def wants_html():
    """Pages get HTML errors; the API, webhooks and anything else get JSON."""
    if not request.path.startswith(HTML_PREFIXES):
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best != "application/json"


def _error_template():
    """The back office's pages answer errors in its own frame; everything else in the portal's."""
    return "admin_clinic/error.html" if request.path.startswith("/admin") else "errors/error.html"


def error_response(status, message, code=None, fields=None, headers=None, details=None):
    """Build the error answer for the current request (`details`: more members of the JSON error)."""
    code = code or CODES.get(status, "error")
    if wants_html():
        resp = make_response(
            render_template(_error_template(), status=status, code=code, message=message))
    else:
        payload = {"error": {"code": code, "message": message}}
        if fields:
            payload["error"]["fields"] = fields
        payload["error"].update(details or {})
        resp = jsonify(payload)
    resp.status_code = status
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def register_error_handlers(app):
    """Attach the handlers that turn exceptions into contract-shaped answers."""

    @app.errorhandler(DomainError)
    def handle_domain_error(exc):
        return error_response(status_of(exc), exc.message, exc.code, exc.fields, headers_of(exc),
                              getattr(exc, "details", None))

    @app.errorhandler(HTTPException)
    def handle_http_error(exc):
        headers = {}
        if exc.code == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        retry_after = getattr(exc, "retry_after", None) or (
            exc.response.headers.get("Retry-After") if getattr(exc, "response", None) else None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        message = exc.description or exc.name
        return error_response(exc.code or 500, message, headers=headers)

    @app.errorhandler(CSRFError)
    def handle_jwt_csrf_error(exc):
        return error_response(403, "The request is missing its CSRF token; reload the page and "
                                   "try again.", "csrf_failed")

    @app.errorhandler(WTFCSRFError)
    def handle_form_csrf_error(exc):
        return error_response(400, "The form expired or is missing its security token; reload "
                                   "the page and try again.", "csrf_failed")

    @app.errorhandler(redis.RedisError)
    def handle_redis_down(exc):
        log.warning("Redis unavailable: %s", exc)
        return error_response(503, "A service the clinic depends on is not answering; "
                                   "please try again in a moment.", headers={"Retry-After": "5"})

    @app.errorhandler(pymongo.errors.ConnectionFailure)  # server selection and network timeouts too
    def handle_mongo_down(exc):
        log.warning("MongoDB unavailable: %s", exc)
        return error_response(503, "The clinic's database is not answering; please try again "
                                   "in a moment.", headers={"Retry-After": "5"})

    @app.errorhandler(mongoengine.errors.NotUniqueError)
    def handle_not_unique(exc):
        return error_response(409, "That record already exists.", "conflict")

    @app.errorhandler(mongoengine.errors.OperationError)
    @app.errorhandler(pymongo.errors.PyMongoError)
    def handle_mongo_error(exc):
        # A command the database refused or could not finish: nothing was half-written (every rule
        # cleans up or is a single-document update), so the client may simply try again.
        log.exception("MongoDB command failed on %s %s", request.method, request.path)
        return error_response(503, "The clinic's database could not complete the request; nothing "
                                   "was changed. Please try again.", headers={"Retry-After": "2"})

    @app.errorhandler(mongoengine.errors.ValidationError)
    def handle_model_validation(exc):
        fields = {k: str(v) for k, v in (exc.to_dict() or {}).items()} if exc.errors else None
        return error_response(422, exc.message or "Invalid data.", fields=fields)

    @app.errorhandler(Exception)
    def handle_unexpected(exc):
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Something went wrong on our side; nothing was changed. "
                                   "Please try again.")
