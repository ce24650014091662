"""Forgotten passwords: the pages `/portal/forgot`, `/portal/reset/<token>` and their API twins.

The routes sit on the portal's and the API's blueprints (imported once by `portal.pages`); the
rules live in `models.accounts.reset`. The forgot answer is the same whatever the email.
"""

from flask import flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from clinic.audit import audit
from clinic.extensions import get_redis, rkey
from models.accounts import reset
from models.documents import utcnow
from models.errors import DomainError, Throttled
from portal.api import bp as api_bp
from portal.api import json_body
from portal.pages import apply_domain_error
from portal.pages import bp as pages_bp

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
    patient = reset.request_reset(email, request.remote_addr, utcnow(), get_redis(), rkey)
    # The audit names the account only when one exists; the answer never does.
    audit("anonymous", "patient.password_reset_request",
          record=f"Patient:{patient.id}" if patient else "", outcome="sent" if patient else "no_email")


def _private(response):
    """A page whose URL carries a secret: never sent on as a referrer."""
    response.headers["Referrer-Policy"] = "no-referrer"
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
            response = make_response(render_template("portal/forgot.html", form=form), 429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        return render_template("portal/forgot.html", form=None, sent=SENT)
    elif form.errors:
        status = 400
    return render_template("portal/forgot.html", form=form), status


@pages_bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_page(token):
    """Choose a new password with an emailed link (once, within 30 minutes)."""
    now = utcnow()
    form = ResetForm()
    if not reset.link_is_valid(token, now):
        audit("anonymous", "patient.password_reset", outcome="invalid_link")
        return _private(make_response(render_template(
            "portal/reset.html", form=None, invalid=reset.INVALID_LINK), 410 if request.method == "POST" else 200))
    status = 200
    if form.validate_on_submit():
        try:
            patient = reset.reset_password(token, form.password.data, now)
        except DomainError as exc:
            if exc.code == "invalid_token":
                return _private(make_response(render_template(
                    "portal/reset.html", form=None, invalid=reset.INVALID_LINK), 410))
            apply_domain_error(form, exc)
            status = exc.status
        else:
            audit(f"patient:{patient.id}", "patient.password_reset", record=f"Patient:{patient.id}")
            flash("Your password is changed and you are signed out everywhere. "
                  "Sign in with your new password.", "info")
            return redirect(url_for("portal.login"))
    elif form.errors:
        status = 400
    return _private(make_response(render_template("portal/reset.html", form=form), status))


@api_bp.post("/auth/password/forgot")
def api_forgot():
    """202 whatever the email; when the account exists, a reset link is emailed."""
    body = json_body(required=("email",))
    if not isinstance(body["email"], str):
        raise DomainError("'email' must be a string.", code="malformed_json")
    _request(body["email"])
    return jsonify(message=SENT), 202


@api_bp.post("/auth/password/reset")
def api_reset():
    """Set a new password with a link's token (once); every session of the patient ends."""
    body = json_body(required=("token", "password"))
    patient = reset.reset_password(body["token"], body["password"], utcnow())
    audit(f"patient:{patient.id}", "patient.password_reset", record=f"Patient:{patient.id}")
    return jsonify(reset=True)


# The API document (/api/openapi.json) describes these two endpoints too.
from portal.openapi import SPEC, _errors, _json_body, _ok  # noqa: E402

SPEC["paths"].update({
    "/api/auth/password/forgot": {"post": {
        "summary": "Email a password reset link when the account exists (the same answer either way)",
        "requestBody": _json_body({"type": "object", "required": ["email"],
                                   "properties": {"email": {"type": "string"}}}),
        "responses": {**_ok("Accepted", {"type": "object", "properties": {"message": {"type": "string"}}},
                            "202"),
                      **_errors(400, 413, 415, 422, 429, 503)}}},
    "/api/auth/password/reset": {"post": {
        "summary": "Set a new password with a link's token (once, within 30 minutes); every session ends",
        "requestBody": _json_body({"type": "object", "required": ["token", "password"],
                                   "properties": {"token": {"type": "string"}, "password": {"type": "string"}}}),
        "responses": {**_ok("Changed", {"type": "object", "properties": {"reset": {"type": "boolean"}}}),
                      **_errors(400, 413, 415, 422, 429, 503)}}},
})
