"""The patient portal's server-rendered pages (they work without JavaScript)."""

from flask import Blueprint, current_app, flash, g, make_response, redirect, render_template, request, url_for
from flask_jwt_extended import get_jwt, unset_jwt_cookies
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, PasswordField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from web.audit import audit
from web.errors import headers_of, status_of
from models.booking.cancellation import cancel, cancellation_blocker, cancellation_terms
from models.booking.create import ics_for
from models.booking.rules import effective_status, get_patient_appointment, require_clinic
from models.accounts import change_patient_password
from models.messages.outbox import just_confirmed
from models.messages.rendering import calendar_links
from models.documents import utcnow
from models.errors import DomainError, Throttled
from models.payments.desk import refund_preview, refund_preview_total
from portal.auth import (issue_tokens, password_throttled, patient_page, register_patient_counted,
                         registration_allowed, revoke, revoke_cookies, sign_in)
from portal.payment import payment_context, payment_page
from models.booking.reschedule import reschedule_blocker
from models.booking import series  # recurring series (issue 28)
from models.booking.series_place import series_positions

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
    # Issue 26: optional; helps the clinic tell patients with the same name apart.
    date_of_birth = DateField("Date of birth (optional)", validators=[Optional()])
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
            return render_template("portal/login.html", form=form), status_of(exc), headers_of(exc)
        except DomainError as exc:
            flash(exc.message, "error")
            status = status_of(exc)
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
            registration_allowed()
            patient = register_patient_counted(form.email.data, form.password.data, form.name.data, form.phone.data,
                                               date_of_birth=form.date_of_birth.data)
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = status_of(exc)
        else:
            flash("Welcome! Your account is ready.", "info")
            return issue_tokens(redirect(safe_next(request.args.get("next"))), patient)
    elif form.errors:
        status = 400
    return render_template("portal/register.html", form=form), status


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
            # The action audits itself, done or refused (the throttle's refusal included).
            change_patient_password(g.patient, form.current_password.data, form.new_password.data,
                                    audit_as=f"patient:{g.patient.id}",
                                    guard=password_throttled(g.patient, "current_password"))
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = status_of(exc)
        else:
            revoke(get_jwt())
            flash("Your password is changed. Other devices have been signed out.", "info")
            return issue_tokens(redirect(url_for("portal.dashboard")), g.patient)
    elif form.errors:
        status = 400
    return render_template("portal/password.html", form=form), status


@bp.get("/appointments/<appointment_id>")
@patient_page
@payment_page
def appointment(appointment_id):
    """The appointment's page: status, time, provider, price, payment, and cancel within policy."""
    appt = get_patient_appointment(g.patient, appointment_id)
    clinic = require_clinic()
    now = utcnow()
    audit(f"patient:{g.patient.id}", "appointment.read", record=f"Appointment:{appt.id}")
    # Re-fetched from Stripe while a payment is under way: the page never trusts a redirect.
    pay = payment_context(appt, now, f"patient:{g.patient.id}")
    blocker = cancellation_blocker(appt, now, clinic)
    # Cancelling takes two steps: the page first says what the patient gets back.
    confirm_cancel = request.args.get("cancel") == "1" and not blocker
    # Issue 28: "this and the later visits" is offered only when there are later visits, with what
    # cancelling them all gives back (each visit's own refund, summed).
    following = series.this_and_following(appt) if confirm_cancel else []
    status = effective_status(appt, now)
    # Issue 28: a visit of a series says where it stands ("Visit 2 of 4"); a course paid up front
    # is confirmed as a whole ("Your 4 visits are confirmed").
    position = series_positions([appt]).get(appt.id) if appt.series else None
    siblings = series.series_visits(appt) if appt.series else []
    course_visits = len(siblings) if status == "confirmed" and pay and pay.get("paid_in_course") else 0
    # Where the confirmation went (email, text or both: what was queued, not what the account
    # holds), right after the booking or payment, not on every later view.
    sent_to = just_confirmed([appt.id] + [v.id for v in siblings], now) if status == "confirmed" else {}
    return render_template(
        "portal/appointment.html", appt=appt, clinic=clinic, status=status, position=position,
        course_visits=course_visits,
        blocker=blocker, pay=pay,
        move_blocker=reschedule_blocker(appt, now, clinic), confirm_cancel=confirm_cancel,
        refund=refund_preview(appt, now) if confirm_cancel else None,
        # Issue 25: where the confirmation went, the map and calendar links.
        sent_to=sent_to,
        links=calendar_links(appt, clinic, current_app.config.get("PUBLIC_URL") or ""),
        # No-show protection: what cancelling now costs (the agreed late-cancellation fee), said first.
        late_fee=cancellation_terms(appt, now).fee,
        later=max(len(following) - 1, 0),
        refund_following=refund_preview_total(following, now) if len(following) > 1 else None)


@bp.post("/appointments/<appointment_id>/cancel")
@patient_page
def cancel_appointment(appointment_id):
    """Cancel from the appointment page, once the patient has seen what they get back."""
    appt = get_patient_appointment(g.patient, appointment_id)
    if request.form.get("confirm") != "yes":
        return redirect(url_for("portal.appointment", appointment_id=appt.id, cancel="1") + "#cancel")
    actor = f"patient:{g.patient.id}"
    following = request.form.get("scope") == "following" and appt.series  # recurring series (issue 28)
    try:
        if following:
            done = series.cancel_following(appt, utcnow(), reason="cancelled by patient", actor=actor, audit_as=actor)
        else:
            cancel(appt, utcnow(), reason="cancelled by patient", actor=actor, audit_as=actor)  # audits itself
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"{len(done)} visits are cancelled: this one and the later ones." if following
              else "Your appointment is cancelled.", "info")
    return redirect(url_for("portal.appointment", appointment_id=appt.id))


@bp.get("/appointments/<appointment_id>.ics")
@patient_page
def appointment_ics(appointment_id):
    """A calendar file for a confirmed appointment."""
    appt = get_patient_appointment(g.patient, appointment_id)
    if appt.status not in ("confirmed", "checked_in"):
        raise DomainError("Only confirmed appointments can be added to a calendar.", code="not_confirmed")
    clinic = require_clinic()
    body = ics_for(appt, clinic)
    response = make_response(body)
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="appointment-{appt.id}.ics"'
    return response
