"""The patient portal's server-rendered pages (they work without JavaScript)."""

from flask import Blueprint, flash, g, make_response, redirect, render_template, request, url_for
from flask_jwt_extended import get_jwt, unset_jwt_cookies
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from clinic.audit import audit
from models.accounts import change_patient_password, register_patient
from models.documents import Clinic
from models.errors import DomainError, Throttled
from portal.auth import issue_tokens, patient_page, revoke, revoke_cookies, sign_in

bp = Blueprint("portal", __name__, url_prefix="/portal")


class LoginForm(FlaskForm):
    """Patient sign-in."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class RegisterForm(FlaskForm):
    """Patient registration."""

    name = StringField("Full name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    phone = TelField("Phone (optional)", validators=[Optional(), Length(max=50)])
    password = PasswordField("Password (at least 8 characters)", validators=[DataRequired(), Length(max=256)])


class PasswordForm(FlaskForm):
    """Change password."""

    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    new_password = PasswordField("New password (at least 8 characters)",
                                 validators=[DataRequired(), Length(max=256)])


def safe_next(target):
    """Only follow a `next` inside the portal."""
    if target and target.startswith("/portal") and not target.startswith("//"):
        return target
    return url_for("portal.dashboard")


def apply_domain_error(form, exc):
    """Show a rule's refusal on the form fields it names (or on the form)."""
    placed = False
    for name in exc.fields or {}:
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(field.errors) + [exc.message]
            placed = True
    if not placed:
        flash(exc.message, "error")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show and handle the patient sign-in form."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            patient = sign_in(form.email.data, form.password.data)
        except Throttled as exc:
            flash(exc.message, "error")
            response = make_response(render_template("portal/login.html", form=form), 429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except DomainError as exc:
            flash(exc.message, "error")
            status = exc.status
        else:
            return issue_tokens(redirect(safe_next(request.args.get("next"))), patient)
    elif form.errors:
        status = 400
    return render_template("portal/login.html", form=form), status


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Show and handle the registration form; a new patient is signed in at once."""
    form = RegisterForm()
    status = 200
    if form.validate_on_submit():
        try:
            patient = register_patient(form.email.data, form.password.data, form.name.data, form.phone.data)
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = exc.status
        else:
            audit(f"patient:{patient.id}", "patient.register", record=f"Patient:{patient.id}")
            flash("Welcome! Your account is ready.", "info")
            return issue_tokens(redirect(url_for("portal.dashboard")), patient)
    elif form.errors:
        status = 400
    return render_template("portal/register.html", form=form), status


@bp.get("/")
@patient_page
def dashboard():
    """The signed-in patient's home page."""
    return render_template("portal/dashboard.html", clinic=Clinic.get(), patient=g.patient)


@bp.post("/logout")
@patient_page
def logout():
    """Revoke the session's tokens and go back to sign-in."""
    revoke(get_jwt())
    revoke_cookies()
    audit(f"patient:{g.patient.id}", "patient.logout", record=f"Patient:{g.patient.id}")
    response = redirect(url_for("portal.login"))
    unset_jwt_cookies(response)
    flash("You are signed out.", "info")
    return response


@bp.route("/password", methods=["GET", "POST"])
@patient_page
def change_password():
    """Change the password; other sessions end."""
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            change_patient_password(g.patient, form.current_password.data, form.new_password.data)
        except DomainError as exc:
            audit(f"patient:{g.patient.id}", "patient.password_change",
                  record=f"Patient:{g.patient.id}", outcome="failure")
            apply_domain_error(form, exc)
            status = exc.status
        else:
            revoke(get_jwt())
            audit(f"patient:{g.patient.id}", "patient.password_change", record=f"Patient:{g.patient.id}")
            flash("Your password is changed. Other devices have been signed out.", "info")
            return issue_tokens(redirect(url_for("portal.dashboard")), g.patient)
    elif form.errors:
        status = 400
    return render_template("portal/password.html", form=form), status
