"""The people a patient books for (issue 28): `GET/POST/DELETE /api/me/dependants` and the page
/portal/family that does the same with forms (no JavaScript needed).

Thin: parse, authorise (only the signed-in patient's own dependants; anyone else's is 404), call
the action in models/, answer. Adding and removing audit themselves.
"""

from datetime import date

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_jwt_extended import jwt_required

from web.audit import audit
from web.errors import status_of
from models.accounts.dependants import add_dependant, dependants_of, get_dependant
from models.documents import utcnow
from models.errors import DomainError
from models.privacy import remove_dependant
from portal import openapi
from portal.auth import current_patient, patient_page
from portal.schemas import DependantBody, DependantSchema

api_bp = openapi.Blueprint("dependants_api", __name__, url_prefix="/api", description="People the patient books for")
page_bp = Blueprint("family", __name__, url_prefix="/portal")


def _actor(patient):
    return f"patient:{patient.id}"


@api_bp.route("/me/dependants")
@api_bp.errors(401, 503)
@jwt_required()
@api_bp.response(200, DependantSchema(many=True))
def list_api():
    """The people the signed-in patient books for."""
    patient = current_patient()
    audit(_actor(patient), "dependant.list", record=f"Patient:{patient.id}")
    return dependants_of(patient)


@api_bp.route("/me/dependants", methods=["POST"])
@api_bp.errors(400, 401, 403, 409, 413, 415, 503)
@jwt_required()
@api_bp.arguments(DependantBody)
@api_bp.response(201, DependantSchema)
def add_api(body):
    """Add a person the patient books for (201)."""
    patient = current_patient()
    return add_dependant(patient, body["name"], body["date_of_birth"], utcnow().date(), audit_as=_actor(patient))


@api_bp.route("/me/dependants/<dependant_id>", methods=["DELETE"])
@api_bp.errors(401, 403, 404, 409, 503)
@jwt_required()
@api_bp.response(200, DependantSchema)
def remove_api(dependant_id):
    """Take a person off the account (their details are erased; 409 while a visit of theirs is ahead)."""
    patient = current_patient()
    dependant = get_dependant(patient, dependant_id)
    shown = {"id": dependant.id, "name": dependant.name, "date_of_birth": dependant.date_of_birth}
    remove_dependant(patient, dependant, utcnow(), audit_as=_actor(patient))
    return shown


@page_bp.route("/family", methods=["GET", "POST"])
@patient_page
def family():
    """The people you book for: the list, a form to add one, and a remove button each."""
    patient = g.patient
    errors, values, status = {}, {"name": "", "date_of_birth": ""}, 200
    if request.method == "POST":
        values = {k: request.form.get(k, "").strip() for k in values}
        try:
            dob = date.fromisoformat(values["date_of_birth"]) if values["date_of_birth"] else None
        except ValueError:
            dob = None
        try:
            person = add_dependant(patient, values["name"], dob, utcnow().date(), audit_as=_actor(patient))
        except DomainError as exc:
            errors = dict(exc.fields or {}) or {"form": exc.message}
            flash(exc.message, "error")
            status = status_of(exc)
        else:
            flash(f"{person.name} is added. You can now book for them.", "info")
            return redirect(url_for("family.family"))
    audit(_actor(patient), "dependant.list", record=f"Patient:{patient.id}")
    return render_template("portal/family.html", patient=patient, people=dependants_of(patient),
                           errors=errors, values=values, today=utcnow().date()), status


@page_bp.post("/family/<dependant_id>/remove")
@patient_page
def family_remove(dependant_id):
    """Take a person off your account."""
    patient = g.patient
    try:
        dependant = get_dependant(patient, dependant_id)
        name = dependant.name
        remove_dependant(patient, dependant, utcnow(), audit_as=_actor(patient))
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"{name} is removed from your account.", "info")
    return redirect(url_for("family.family"))
