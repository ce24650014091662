"""Security headers (flask-talisman), request ids, `no-store` on pages with patient data, and
reset-link tokens kept out of the access logs."""

import logging
import re

from flask import request
from flask_talisman import Talisman

from web.audit import request_id

talisman = Talisman()

# Default CSP: our own origin only. The payment page widens it to Stripe's origins alone.
BASE_CSP = {
    "default-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "img-src": "'self' data:",
    # Flask-Admin's bundled pages use inline styles and scripts.
    "style-src": "'self' 'unsafe-inline'",
}
# Paths whose answers may carry patient data: never cached by browsers or proxies.
NO_STORE_PREFIXES = ("/api/", "/portal", "/admin")
# Pages whose address carried a secret (a reset link's token): never named to another site.
NO_REFERRER_PREFIXES = ("/portal/reset",)
# The one request line that carries a reset link's token (the page then redirects without it).
RESET_TOKEN_IN_PATH = re.compile(r"(/portal/reset/)[^\s?#\"']+")
# Loggers that write request lines: Flask's dev server and gunicorn's access (and error) logs.
REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


class RedactResetTokens(logging.Filter):
    """Rewrite a log line that holds `/portal/reset/<token>` to `/portal/reset/[redacted]`."""

    def filter(self, record):
        """Redact the token in the formatted line; never drops a line."""
        try:
            line = record.getMessage()
        except (TypeError, ValueError, KeyError):
            return True  # a line that cannot be formatted is left to logging's own report
        redacted = RESET_TOKEN_IN_PATH.sub(r"\1[redacted]", line)
        if redacted != line:
            record.msg, record.args = redacted, None
        return True


REDACT_RESET_TOKENS = RedactResetTokens()


def redact_request_logs():
    """Attach the token filter to every logger that writes request lines (once per process)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if REDACT_RESET_TOKENS not in logger.filters:
            logger.addFilter(REDACT_RESET_TOKENS)


def stripe_csp(api_base):
    """The CSP for the payment page: our origin plus the configured Stripe origins."""
    origins = [api_base.rstrip("/")] if api_base else ["https://js.stripe.com", "https://api.stripe.com"]
    if not api_base:
        origins.append("https://hooks.stripe.com")
    joined = " ".join(origins)
    # The Checkout form answers with a redirect to Stripe's page, which form-action must allow.
    checkout = api_base.rstrip("/") if api_base else "https://checkout.stripe.com"
    return dict(BASE_CSP, **{
        "form-action": f"'self' {checkout}",
        "script-src": f"'self' {joined}",
        "frame-src": f"'self' {joined}",
        "connect-src": f"'self' {joined}",
    })


# The back office: its templates (templates/admin/, overriding Flask-Admin's) carry no inline
# event handlers (static/admin_clinic.js wires them), so scripts are same-origin files, plus the
# per-request nonce on Flask-Admin's few inline <script> blocks. No 'unsafe-inline' script.
ADMIN_CSP = ("default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
             "frame-ancestors 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
             "script-src 'self' 'nonce-{nonce}'")


def init_app(app):
    """Attach the security headers and per-request bookkeeping to the app."""

    # Registered before Talisman's hook, so it runs after it and has the last word on /admin.
    @app.after_request
    def admin_csp(response):
        if request.path.startswith("/admin"):
            response.headers["Content-Security-Policy"] = ADMIN_CSP.format(nonce=getattr(request, "csp_nonce", ""))
        return response

    # Also before Talisman's hook: Talisman sets one Referrer-Policy for every answer, and would
    # overwrite a view's own.
    @app.after_request
    def no_referrer(response):
        if request.path.startswith(NO_REFERRER_PREFIXES):
            response.headers["Referrer-Policy"] = "no-referrer"
        return response

    redact_request_logs()

    talisman.init_app(
        app,
        # TLS ends at the proxy in front of gunicorn; redirects are its job.
        force_https=False,
        frame_options="DENY",
        strict_transport_security=True,
        content_security_policy=BASE_CSP,
        # Flask-Admin's inline scripts carry this nonce (Admin(csp_nonce_generator=...)).
        content_security_policy_nonce_in=["script-src"],
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
    )

    from models.accounts import set_hash_concurrency, set_hash_profile

    set_hash_concurrency(app.config.get("ARGON2_MAX_CONCURRENT", 4))
    set_hash_profile(app.config.get("ARGON2_PROFILE") or "RFC_9106_LOW_MEMORY")

    @app.before_request
    def assign_request_id():
        request_id()

    @app.after_request
    def no_store_patient_pages(response):
        if request.path.startswith(NO_STORE_PREFIXES):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        response.headers["X-Request-ID"] = request_id()
        return response
