"""The patient JSON API under /api (thin: parse, authorise, call a rule in models/, answer)."""

from flask import Blueprint, jsonify, make_response, request
from flask_jwt_extended import get_jwt, jwt_required, unset_jwt_cookies

from clinic.audit import audit
from models.accounts import change_patient_password, register_patient
from models.documents import Provider, Service
from models.errors import DomainError, ValidationFailed
from portal.auth import current_patient, issue_tokens, revoke, revoke_cookies, sign_in

bp = Blueprint("api", __name__, url_prefix="/api")


def json_body(required=(), optional=()):
    """The request's JSON object with only the named keys; 400 when it is not a JSON object."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise DomainError("The request body must be a JSON object.", code="malformed_json")
    missing = [name for name in required if data.get(name) in (None, "")]
    if missing:
        raise ValidationFailed(f"Missing field(s): {', '.join(missing)}.",
                               fields={name: "required" for name in missing})
    return {name: data.get(name) for name in (*required, *optional)}


def object_id_arg(name, required=False):
    """Read an ObjectId-shaped query argument, refusing anything else."""
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"The '{name}' parameter is required.", fields={name: "required"})
        return None
    if len(value) != 24 or any(c not in "0123456789abcdef" for c in value.lower()):
        raise ValidationFailed(f"'{name}' is not a valid id.", fields={name: "invalid id"})
    return value


def patient_json(patient):
    """The patient's own profile."""
    return {"id": str(patient.id), "email": patient.email, "name": patient.name, "phone": patient.phone}


def service_json(service):
    """The public shape of a service."""
    return {"id": str(service.id), "name": service.name, "duration_minutes": service.duration_minutes,
            "price": service.price, "currency": service.currency}


@bp.post("/auth/register")
def register():
    """Create a patient account (201)."""
    body = json_body(required=("email", "password", "name"), optional=("phone",))
    patient = register_patient(body["email"], body["password"], body["name"], body["phone"])
    audit(f"patient:{patient.id}", "patient.register", record=f"Patient:{patient.id}")
    return jsonify(patient_json(patient)), 201


@bp.post("/auth/login")
def login():
    """Sign in: set the access, refresh and CSRF cookies."""
    body = json_body(required=("email", "password"))
    patient = sign_in(body["email"], body["password"])
    response = make_response(jsonify(patient_json(patient)))
    return issue_tokens(response, patient)


@bp.post("/auth/refresh")
@jwt_required(refresh=True)
def refresh():
    """Issue a new access token inside the session's absolute limit."""
    patient = current_patient()
    response = make_response(jsonify(refreshed=True))
    return issue_tokens(response, patient, sid=get_jwt()["sid"], refresh=False)


@bp.post("/auth/logout")
@jwt_required()
def logout():
    """Revoke this session's tokens on the server and clear the cookies."""
    patient = current_patient()
    revoke(get_jwt())
    revoke_cookies()
    audit(f"patient:{patient.id}", "patient.logout", record=f"Patient:{patient.id}")
    response = make_response(jsonify(signed_out=True))
    unset_jwt_cookies(response)
    return response


@bp.post("/auth/password")
@jwt_required()
def change_password():
    """Change the password; every other session's tokens stop working."""
    body = json_body(required=("current_password", "new_password"))
    patient = current_patient()
    try:
        change_patient_password(patient, body["current_password"], body["new_password"])
    except DomainError:
        audit(f"patient:{patient.id}", "patient.password_change", record=f"Patient:{patient.id}",
              outcome="failure")
        raise
    revoke(get_jwt())
    audit(f"patient:{patient.id}", "patient.password_change", record=f"Patient:{patient.id}")
    # This browser stays signed in with tokens of the new generation.
    return issue_tokens(make_response(jsonify(changed=True)), patient)


@bp.get("/me")
@jwt_required()
def me():
    """The signed-in patient."""
    return jsonify(patient_json(current_patient()))


@bp.get("/services")
def list_services():
    """List the bookable services."""
    return jsonify([service_json(s) for s in Service.objects(active=True).order_by("name")])


@bp.get("/providers")
def list_providers():
    """List providers, optionally only those offering one service."""
    service_id = object_id_arg("service")
    query = Provider.objects(active=True)
    if service_id:
        query = query.filter(services=service_id)
    providers = query.order_by("name").no_dereference()
    return jsonify([{"id": str(p.id), "name": p.name, "services": [str(s.id) for s in p.services]}
                    for p in providers])
