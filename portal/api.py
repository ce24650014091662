"""The patient JSON API under /api (thin: parse, authorise, call a rule in models/, answer)."""

from datetime import date, datetime, timedelta, timezone

from flask import Blueprint, current_app, jsonify, make_response, request
from flask_jwt_extended import get_jwt, jwt_required, unset_jwt_cookies

from clinic.audit import audit, audit_event
from models import booking
from models.booking import freetimes
from models.catalog import current_catalog
from models.documents import Appointment, Provider, Service, utcnow
from models.errors import Conflict, DomainError, ValidationFailed
from portal.auth import (booking_attempt_allowed, change_password_guarded, current_patient, issue_tokens,
                         logout_identity, one_booking_at_a_time, register_patient_counted,
                         registration_allowed, revoke, revoke_cookies, sign_in)

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
    registration_allowed()
    patient = register_patient_counted(body["email"], body["password"], body["name"], body["phone"])
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
def logout():
    """Revoke this session's tokens on the server (even once the access token expired) and clear the cookies."""
    _patient, payload = logout_identity()
    revoke(payload)
    revoke_cookies()
    audit(f"patient:{payload['sub']}", "patient.logout", record=f"Patient:{payload['sub']}")
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
        change_password_guarded(patient, body["current_password"], body["new_password"])
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
    providers = sorted(current_catalog().providers.values(), key=lambda p: p.name)
    if service_id:
        providers = [p for p in providers if service_id in {str(getattr(s, "id", s)) for s in p.services}]
    return jsonify([{"id": str(p.id), "name": p.name, "services": [str(s.id) for s in p.services]}
                    for p in providers])


# --- Availability and booking -------------------------------------------------------------

def string_field(body, name):
    """A required string field of a JSON body (422 when it is another type)."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"'{name}' must be a non-empty string.", fields={name: "must be a string"})
    return value


def parse_instant(value, name="start"):
    """An ISO 8601 instant with an offset, or 422."""
    try:
        parsed = datetime.fromisoformat(value)
        # Years at the ends of the calendar overflow once converted to UTC.
        parsed.astimezone(timezone.utc) + timedelta(days=800)
    except (TypeError, ValueError, OverflowError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationFailed(f"'{name}' must be an ISO 8601 time with an offset, e.g. "
                               "2026-11-30T09:00:00+00:00.", fields={name: "invalid time"})
    return parsed


def appointment_json(appt, clinic, services=None, providers=None, now=None):
    """The patient's view of an appointment, times in the clinic's zone."""
    tz = clinic.timezone
    service = (services or {}).get(appt.service.id) if services else appt.service
    provider = (providers or {}).get(appt.provider.id) if providers else appt.provider
    return {
        "id": str(appt.id),
        "status": booking.effective_status(appt, now or utcnow()),
        "start": booking.local_iso(appt.start, tz),
        "end": booking.local_iso(appt.end, tz),
        "timezone": tz,
        "hold_expires_at": booking.local_iso(appt.hold_expires_at, tz),
        "amount": appt.amount,
        "currency": appt.currency,
        "service": {"id": str(service.id), "name": service.name} if service else None,
        "provider": {"id": str(provider.id), "name": provider.name} if provider else None,
    }


@bp.get("/slots")
def list_slots():
    """Free times of a service, for one provider or all who offer it, sorted by start."""
    now = utcnow()
    catalog = current_catalog()
    service = catalog.service(object_id_arg("service", required=True))
    clinic = catalog.require_clinic()
    provider_id = object_id_arg("provider")
    if provider_id:
        providers = [catalog.provider_for(service, provider_id)]
    else:
        providers = catalog.providers_offering(service)
    raw_from = request.args.get("from")
    try:
        first = date.fromisoformat(raw_from) if raw_from else booking.local_today(clinic.timezone, now)
        if abs((first - now.date()).days) > 3660:
            raise ValueError("too far")
    except ValueError:
        raise ValidationFailed("'from' must be a date like 2026-11-30, within ten years of today.",
                               fields={"from": "invalid date"}) from None
    raw_days = request.args.get("days", "7")
    # isascii: "³" passes isdigit() but not int().
    if not (raw_days.isascii() and raw_days.isdigit()) or not 1 <= int(raw_days) <= 31:
        raise ValidationFailed("'days' must be a whole number from 1 to 31.", fields={"days": "1 to 31"})
    body = freetimes.slots_json(service, providers, clinic, first, int(raw_days), now,
                                current_app.extensions["caches"])
    return current_app.response_class(body, mimetype="application/json")


@bp.post("/appointments")
@jwt_required()
def create_appointment():
    """Book a time for the signed-in patient (201; 409 when taken; 422 when not bookable)."""
    body = json_body(required=("service", "provider", "start"))
    service_id, provider_id = string_field(body, "service"), string_field(body, "provider")
    start = parse_instant(string_field(body, "start"))
    patient = current_patient()
    appt = book_for_patient(patient, service_id, provider_id, start)
    return jsonify(appointment_json(appt, booking.require_clinic())), 201


def book_for_patient(patient, service_id, provider_id, start):
    """Book through the shared rule and audit the outcome (pages and API both call this)."""
    booking_attempt_allowed(patient)
    try:
        # One booking at a time per patient (the hold limits cannot be raced); the audit event is
        # written in the booking's own database command.
        with one_booking_at_a_time(patient):
            appt = booking.book(patient, service_id, provider_id, start, utcnow(),
                                audit=audit_event(f"patient:{patient.id}", "appointment.book"))
    except Conflict as exc:
        audit(f"patient:{patient.id}", "appointment.book", record=f"Provider:{provider_id}",
              outcome=f"refused:{exc.code}")
        raise
    return appt


@bp.get("/appointments")
@jwt_required()
def list_appointments():
    """The signed-in patient's appointments, soonest first."""
    patient = current_patient()
    clinic = booking.require_clinic()
    # A waitlist offer (models/booking/waitlist.py) becomes the patient's appointment only once accepted.
    appts = list(Appointment.objects(patient=patient.id, booked_by__ne="waitlist-offer").order_by("start").no_dereference())
    services = {s.id: s for s in Service.objects(id__in={a.service.id for a in appts})}
    providers = {p.id: p for p in Provider.objects(id__in={a.provider.id for a in appts})}
    audit(f"patient:{patient.id}", "appointment.list", record=f"Patient:{patient.id}")
    now = utcnow()
    return jsonify([appointment_json(a, clinic, services, providers, now) for a in appts])


@bp.get("/appointments/<appointment_id>")
@jwt_required()
def show_appointment(appointment_id):
    """One of the patient's own appointments (404 for anyone else's)."""
    patient = current_patient()
    appt = booking.get_patient_appointment(patient, appointment_id)
    audit(f"patient:{patient.id}", "appointment.read", record=f"Appointment:{appt.id}")
    return jsonify(appointment_json(appt, booking.require_clinic()))


@bp.post("/appointments/<appointment_id>/cancel")
@jwt_required()
def cancel_appointment(appointment_id):
    """Cancel within the service's policy (409 inside the cancellation window)."""
    patient = current_patient()
    appt = booking.get_patient_appointment(patient, appointment_id)
    try:
        booking.cancel(appt, utcnow(), reason="cancelled by patient", actor=f"patient:{patient.id}")
    except Conflict as exc:
        audit(f"patient:{patient.id}", "appointment.cancel", record=f"Appointment:{appt.id}",
              outcome=f"refused:{exc.code}")
        raise
    audit(f"patient:{patient.id}", "appointment.cancel", record=f"Appointment:{appt.id}")
    return jsonify(appointment_json(appt, booking.require_clinic()))
