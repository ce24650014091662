"""The patient's account: /portal/account (how we contact you, password, export, delete) and the
data-rights API.

`GET /api/me/export` and `POST /api/me/delete` {password}; the page offers the same through forms.
Both are audited (`patient.export`, `patient.erase`); erasure checks the password under the
sign-in throttle, ends every session and clears the cookies. The contact form (mobile phone, email
or text or both) calls `update_contact`, the action behind `PATCH /api/me`.
"""

import json

from flask import Blueprint, after_this_request, flash, g, make_response, redirect, render_template, request, url_for
from flask_jwt_extended import jwt_required, unset_jwt_cookies
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import DataRequired, Length

from web.audit import audit
from web.errors import status_of
from models.accounts.contact import CHOICES, channels_of, contact_choice, update_contact
from models.accounts.phones import display_phone
from models.payments.cards import card_on_file
from models.documents import utcnow
from models.errors import DomainError
from models.privacy import erase_patient, export_patient
from portal import openapi
from portal.auth import current_patient, password_throttled, patient_page, revoke_cookies
from portal.schemas import DeleteBody, ErasedSchema, ExportSchema

api_bp = openapi.Blueprint("account_api", __name__, url_prefix="/api", description="The patient's data rights")
page_bp = Blueprint("account", __name__, url_prefix="/portal")


class DeleteForm(FlaskForm):
    """Delete the account (the password confirms it)."""

    password = PasswordField("Your password", validators=[DataRequired(), Length(max=256)])


def _card(patient):
    """No-show protection: the card on file for the account page (None when none or unreadable)."""
    try:
        return card_on_file(patient)
    except DomainError:
        return None


def _export(patient):
    data = export_patient(patient, utcnow())
    audit(f"patient:{patient.id}", "patient.export", record=f"Patient:{patient.id}")
    return data


def _erase(patient, password):
    # The action audits itself, done or refused (the throttle's refusal included).
    erase_patient(patient, password, utcnow(), audit_as=f"patient:{patient.id}",
                  guard=password_throttled(patient, "password"))
    revoke_cookies()


@api_bp.route("/me/export")
@api_bp.errors(401, 503)
@jwt_required()
@api_bp.response(200, ExportSchema)
def export_api():
    """Everything stored about the signed-in patient, as JSON."""
    return _export(current_patient())


@api_bp.route("/me/delete", methods=["POST"])
@api_bp.errors(400, 401, 403, 409, 413, 415, 429, 503)
@jwt_required()
@api_bp.arguments(DeleteBody)
@api_bp.response(200, ErasedSchema)
def delete_api(body):
    """Erase the signed-in patient's personal data (password required); sign-in ends."""
    _erase(current_patient(), body["password"])
    after_this_request(lambda response: unset_jwt_cookies(response) or response)
    return {"erased": True}


def _page(form=None, contact=None, contact_errors=None, status=200):
    """The account page as shown, with the contact form as typed (`contact`) and its errors, if any."""
    patient = g.patient
    contact = contact or {"phone": display_phone(patient.phone), "choice": contact_choice(patient)}
    return render_template("portal/account.html", patient=patient, form=form or DeleteForm(), card=_card(patient),
                           contact=contact, contact_errors=contact_errors or {}, choices=CHOICES), status


@page_bp.get("/account")
@patient_page
def account():
    """The account page: how we contact you, change password, download your data, delete your account."""
    return _page()


def _saved_words(patient):
    """What the patient will now get, in words, for the flash after saving."""
    choice, phone = contact_choice(patient), display_phone(patient.phone)
    return {"email": f"we will email you at {patient.email}.", "sms": f"we will text you at {phone}.",
            "both": f"we will email you at {patient.email} and text you at {phone}."}.get(choice, "")


@page_bp.post("/account/contact")
@patient_page
def contact_page():
    """Save the mobile phone and how messages are sent (email, text or both); nothing changes on a refusal."""
    typed = {"phone": request.form.get("phone", "")[:60], "choice": request.form.get("contact_by", "")[:10]}
    try:
        # The same action as PATCH /api/me: it parses the number (E.164) and refuses texts without one.
        patient = update_contact(g.patient, phone=typed["phone"], contact_by=channels_of(typed["choice"]),
                                 audit_as=f"patient:{g.patient.id}")
    except DomainError as exc:
        # The refusal is said on the field it names: the phone, or the choice.
        field = "phone" if "phone" in exc.fields else "contact_by"
        return _page(contact=typed, contact_errors={field: exc.message}, status=status_of(exc))
    flash("Saved: " + _saved_words(patient), "info")
    return redirect(url_for("account.account") + "#contact-heading")


@page_bp.get("/account/export")
@patient_page
def export_page():
    """Download everything stored about you as a JSON file."""
    response = make_response(json.dumps(_export(g.patient), indent=2))
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = "attachment; filename=my-clinic-data.json"
    return response


@page_bp.post("/account/delete")
@patient_page
def delete_page():
    """Erase the account after the password is confirmed."""
    form = DeleteForm()
    if form.validate_on_submit():
        try:
            _erase(g.patient, form.password.data)
        except DomainError as exc:
            target = form.password if "password" in exc.fields else None
            if target is not None:
                target.errors = list(target.errors) + [exc.message]
            else:
                flash(exc.message, "error")
            return _page(form, status=status_of(exc))
        response = redirect(url_for("portal.login"))
        unset_jwt_cookies(response)
        flash("Your account is deleted. Your personal details have been erased.", "info")
        return response
    return _page(form, status=400)
