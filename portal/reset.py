"""Forgotten passwords: the pages `/portal/forgot`, `/portal/reset/<token>` and their API twins.

The pages sit on the portal's blueprint (imported once by `portal.pages`), the API twins on this
module's `api_bp` (registered by `portal.openapi`); the rules live in `models.accounts.reset`. The forgot
answer is the same whatever the email. A browser that set a new password with an emailed link is
the account owner's: it gets the device cookie a sign-in gives, so it can sign in while spread
guessing keeps the account locked for unfamiliar clients.

The emailed link's token leaves the address bar on first load: `/portal/reset/<token>` puts it in a
short-lived HttpOnly cookie and redirects (303) to `/portal/reset`, which shows the form and takes
the new password. So the token is in no later request line, in no history entry the page makes,
and never in a Referer (the pages also answer `Referrer-Policy: no-referrer`, set in
`web/security.py`); the one request that carries it is redacted from the access logs there too.
"""

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from web.errors import headers_of, status_of
from web.signin import remember_device
from models.accounts import reset
from models.documents import utcnow
from models.errors import DomainError, Throttled
from portal import openapi
from portal.pages import apply_domain_error
from portal.pages import bp as pages_bp
from portal.schemas import ForgotBody, PasswordResetSchema, ResetBody, ResetSentSchema

api_bp = openapi.Blueprint("reset_api", __name__, url_prefix="/api", description="Forgotten passwords")

SENT = ("If an account exists for that email, we have sent it a link to choose a new password. "
        f"The link works once, for {reset.RESET_MINUTES} minutes.")


class ForgotForm(FlaskForm):
    """Ask for a reset link."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])


class ResetForm(FlaskForm):
    """Choose a new password with a link."""

    password = PasswordField("New password (at least 8 characters)",
                             validators=[DataRequired(), Length(max=256)])


def _request(email):
    # The action audits itself: it names the account only when one exists; the answer never does.
    reset.request_reset(email, request.remote_addr, utcnow(), audit_as="anonymous")


def reset_cookie_name():
    """The cookie holding a reset link's token: `__Host-` (path /, Secure) when cookies are Secure."""
    return ("__Host-" if _secure() else "") + "clinic_reset"


def _secure():
    return current_app.config.get("COOKIE_SECURE", True)


def _forget_token(response):
    """Clear the token cookie (a used or dead link has nothing left to keep)."""
    response.delete_cookie(reset_cookie_name(), path="/" if _secure() else "/portal/reset",
                           secure=_secure(), httponly=True, samesite="Lax")
    return response


@pages_bp.route("/forgot", methods=["GET", "POST"])
def forgot():
    """Ask for a password reset link by email."""
    form = ForgotForm()
    status = 200
    if form.validate_on_submit():
        try:
            _request(form.email.data)
        except Throttled as exc:
            flash(exc.message, "error")
            return render_template("portal/forgot.html", form=form), status_of(exc), headers_of(exc)
        return render_template("portal/forgot.html", form=None, sent=SENT)
    elif form.errors:
        status = 400
    return render_template("portal/forgot.html", form=form), status


@pages_bp.get("/reset/<token>")
def reset_link(token):
    """The emailed link: keep its token in a short-lived HttpOnly cookie, then show the form without it."""
    response = redirect(url_for("portal.reset_page"), 303)
    if 0 < len(token) <= 200:
        # Lax: the link is opened from a mail client, a cross-site top-level GET. `__Host-` cookies
        # must have path /; without the prefix the cookie goes only to the reset page.
        response.set_cookie(reset_cookie_name(), token, max_age=reset.RESET_MINUTES * 60,
                            path="/" if _secure() else "/portal/reset", secure=_secure(), httponly=True,
                            samesite="Lax")
    return response


@pages_bp.route("/reset", methods=["GET", "POST"])
def reset_page():
    """Choose a new password with an emailed link (once, within 30 minutes)."""
    now = utcnow()
    token = request.cookies.get(reset_cookie_name(), "")
    form = ResetForm()
    if not reset.link_is_valid(token, now, audit_invalid=True):
        return _forget_token(make_response(render_template(
            "portal/reset.html", form=None, invalid=reset.INVALID_LINK), 410 if request.method == "POST" else 200))
    status = 200
    if form.validate_on_submit():
        try:
            patient = reset.reset_password(token, form.password.data, now)
        except DomainError as exc:
            if exc.code == "invalid_token":
                return _forget_token(make_response(render_template(
                    "portal/reset.html", form=None, invalid=reset.INVALID_LINK), 410))
            apply_domain_error(form, exc)
            status = status_of(exc)
        else:
            remember_device("patient", patient.email)
            flash("Your password is changed and you are signed out everywhere. "
                  "Sign in with your new password.", "info")
            return _forget_token(redirect(url_for("portal.login")))
    elif form.errors:
        status = 400
    return make_response(render_template("portal/reset.html", form=form), status)


@api_bp.route("/auth/password/forgot", methods=["POST"])
@api_bp.errors(400, 413, 415, 429, 503)
@api_bp.arguments(ForgotBody)
@api_bp.response(202, ResetSentSchema)
def api_forgot(body):
    """202 whatever the email; when the account exists, a reset link is emailed."""
    _request(body["email"])
    return {"message": SENT}


@api_bp.route("/auth/password/reset", methods=["POST"])
@api_bp.errors(400, 413, 415, 429, 503)
@api_bp.arguments(ResetBody)
@api_bp.response(200, PasswordResetSchema)
def api_reset(body):
    """Set a new password with a link's token (once); every session of the patient ends."""
    patient = reset.reset_password(body["token"], body["password"], utcnow())
    remember_device("patient", patient.email)
    return {"reset": True}
