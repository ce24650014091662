"""Patient self-service in the JSON API: reschedule and the waitlist (routes on the `/api` blueprint).

Imported once by the app factory, which registers `portal.api.bp` with these routes on it.
"""

from datetime import date

from flask import jsonify

from clinic.audit import audit
from models import booking
from models.booking import waitlist
from models.documents import utcnow
from models.errors import DomainError, ValidationFailed
from models.booking.reschedule import reschedule
from portal.api import appointment_json, bp, json_body, parse_instant, string_field
from portal.auth import current_patient
from flask_jwt_extended import jwt_required


def entry_status(entry, now):
    """The status a patient should see: an offer that lapsed reads as expired before the sweep runs."""
    if entry.status == "offered" and not waitlist.offer_is_open(entry, now):
        return "expired"
    return entry.status


def entry_json(entry, clinic, now):
    """The patient's view of a waitlist entry; the offer while it holds its time."""
    status = entry_status(entry, now)
    offer = None
    if status == "offered":
        appt = entry.offer
        offer = {"start": booking.local_iso(appt.start, clinic.timezone),
                 "end": booking.local_iso(appt.end, clinic.timezone),
                 "provider": {"id": str(appt.provider.id), "name": appt.provider.name},
                 "expires_at": booking.local_iso(entry.offer_expires_at, clinic.timezone)}
    return {"id": str(entry.id),
            "service": {"id": str(entry.service.id), "name": entry.service.name},
            "provider": {"id": str(entry.provider.id), "name": entry.provider.name} if entry.provider else None,
            "from": entry.date_from.isoformat()[:10], "to": entry.date_to.isoformat()[:10],
            "timezone": clinic.timezone, "status": status, "offer": offer,
            "note": entry.note or ""}


def parse_day(value, name):
    """A local date like 2026-12-01, or 422."""
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"'{name}' must be a date like 2026-12-01.", fields={name: "invalid date"}) from None


@bp.post("/appointments/<appointment_id>/reschedule")
@jwt_required()
def reschedule_appointment(appointment_id):
    """Move the patient's appointment to another free time (same service; payment carries over)."""
    body = json_body(required=("start",), optional=("provider",))
    start = parse_instant(string_field(body, "start"))
    provider = body["provider"]
    if provider is not None and not isinstance(provider, str):
        raise ValidationFailed("'provider' must be a string.", fields={"provider": "must be a string"})
    patient = current_patient()
    appt = booking.get_patient_appointment(patient, appointment_id)
    try:
        appt = reschedule(appt, start, utcnow(), provider_id=provider or None, actor=f"patient:{patient.id}")
    except DomainError as exc:
        audit(f"patient:{patient.id}", "appointment.reschedule", record=f"Appointment:{appt.id}",
              outcome=f"refused:{exc.code}")
        raise
    audit(f"patient:{patient.id}", "appointment.reschedule", record=f"Appointment:{appt.id}")
    return jsonify(appointment_json(appt, booking.require_clinic()))


@bp.post("/waitlist")
@jwt_required()
def join_waitlist():
    """Join the waitlist for a service (optionally one provider) between two local dates (201)."""
    body = json_body(required=("service", "from", "to"), optional=("provider",))
    provider = body["provider"]
    if provider is not None and not isinstance(provider, str):
        raise ValidationFailed("'provider' must be a string.", fields={"provider": "must be a string"})
    patient = current_patient()
    now = utcnow()
    entry = waitlist.join(patient, string_field(body, "service"), provider or None,
                          parse_day(body["from"], "from"), parse_day(body["to"], "to"), now)
    audit(f"patient:{patient.id}", "waitlist.join", record=f"WaitlistEntry:{entry.id}")
    # A time that is free already is offered at once (first in line permitting).
    waitlist.time_freed(None, now)
    entry.reload()
    return jsonify(entry_json(entry, booking.require_clinic(), now)), 201


@bp.get("/waitlist")
@jwt_required()
def list_waitlist():
    """The signed-in patient's waitlist entries, newest first."""
    patient = current_patient()
    now = utcnow()
    clinic = booking.require_clinic()
    audit(f"patient:{patient.id}", "waitlist.list", record=f"Patient:{patient.id}")
    return jsonify([entry_json(e, clinic, now) for e in waitlist.entries_of(patient)])


@bp.delete("/waitlist/<entry_id>")
@jwt_required()
def leave_waitlist(entry_id):
    """Leave the waitlist (204); an open offer goes to the next patient in line."""
    patient = current_patient()
    entry = waitlist.get_entry(patient, entry_id)
    waitlist.leave(entry, utcnow())
    audit(f"patient:{patient.id}", "waitlist.leave", record=f"WaitlistEntry:{entry_id}")
    return "", 204


@bp.post("/waitlist/<entry_id>/accept")
@jwt_required()
def accept_offer(entry_id):
    """Book the offered time while the offer holds it (201 with the appointment)."""
    patient = current_patient()
    entry = waitlist.get_entry(patient, entry_id)
    try:
        appt = waitlist.accept(entry, utcnow())
    except DomainError as exc:
        audit(f"patient:{patient.id}", "waitlist.accept", record=f"WaitlistEntry:{entry.id}",
              outcome=f"refused:{exc.code}")
        raise
    audit(f"patient:{patient.id}", "waitlist.accept", record=f"Appointment:{appt.id}")
    return jsonify(appointment_json(appt, booking.require_clinic())), 201
