"""Patient self-service in the JSON API: reschedule and the waitlist (routes on the `/api` blueprint).

Imported once by `portal.init_app`, which registers `portal.api.bp` with these routes on it.
"""

from flask import current_app, request
from flask_jwt_extended import jwt_required

from web.audit import audit, audit_event
from models.booking.rules import get_patient_appointment, require_clinic
from models import clock
from models.booking import waitlist
from models.documents import utcnow
from portal.api import bp
from portal.auth import current_patient
from portal.door import (accept_offer_for_patient, join_waitlist_for_patient, reschedule_following_for_patient,
                         reschedule_for_patient)
from portal.schemas import (AppointmentSchema, RescheduleBody, WaitlistBody, WaitlistEntrySchema, agree_policy_of,
                            appointment_view)


def entry_status(entry, now):
    """The status a patient should see: an offer that lapsed reads as expired before the sweep runs."""
    if entry.status == "offered" and not waitlist.offer_is_open(entry, now):
        return "expired"
    return entry.status


def entry_view(entry, clinic, now):
    """What WaitlistEntrySchema dumps: the patient's view of an entry, with the offer while it holds its time."""
    status = entry_status(entry, now)
    offer = None
    if status == "offered":
        appt = entry.offer
        offer = {"start": clock.local_iso(appt.start, clinic.timezone),
                 "end": clock.local_iso(appt.end, clinic.timezone),
                 "provider": appt.provider,
                 "expires_at": clock.local_iso(entry.offer_expires_at, clinic.timezone)}
    return {"id": entry.id, "service": entry.service, "provider": entry.provider or None,
            "from": entry.date_from.isoformat()[:10], "to": entry.date_to.isoformat()[:10],
            "timezone": clinic.timezone, "status": status, "offer": offer,
            "note": entry.note or "", "for": entry.patient}


@bp.route("/appointments/<appointment_id>/reschedule", methods=["POST"])
@bp.errors(400, 401, 403, 404, 409, 413, 415, 429, 503)
@jwt_required()
@bp.arguments(RescheduleBody)
@bp.response(200, AppointmentSchema)
def reschedule_appointment(body, appointment_id):
    """Move the patient's appointment to another free time (same service; payment carries over).

    With `scope: "following"` this visit and the later ones of its series move by the same
    wall-clock change, all or nothing (409 `series_unavailable` with the dates and their nearest
    free times); the answer is this visit at its new time.
    """
    start, provider = body["start"], body.get("provider")
    patient = current_patient()
    appt = get_patient_appointment(patient, appointment_id)
    if body.get("scope") == "following":  # issue 28; audits itself once
        reschedule_following_for_patient(patient, appt, start, provider, body.get("instead"))
        appt.reload()
        return appointment_view(appt, require_clinic())
    appt = reschedule_for_patient(patient, appt, start, [provider] if provider else [])  # audits itself
    return appointment_view(appt, require_clinic())


@bp.route("/waitlist", methods=["POST"])
@bp.errors(400, 401, 403, 404, 409, 413, 415, 503)
@jwt_required()
@bp.arguments(WaitlistBody)
@bp.response(201, WaitlistEntrySchema)
def join_waitlist(body):
    """Join the waitlist for a service (optionally one provider) between two local dates (201).

    `for`: one of the patient's dependants (issue 28), as for a booking: the entry and its offer
    are theirs (404 for anyone not on the account)."""
    patient = current_patient()
    # The action audits itself and offers a time that is free already at once (first in line permitting).
    entry = join_waitlist_for_patient(patient, body["service"], body.get("provider") or None, body["from_"],
                                      body["to"], for_=body.get("for_"))
    return entry_view(entry, require_clinic(), utcnow())


@bp.route("/waitlist")
@bp.errors(401, 503)
@jwt_required()
@bp.response(200, WaitlistEntrySchema(many=True))
def list_waitlist():
    """The waitlist entries of the signed-in patient and of the people they book for, newest first."""
    patient = current_patient()
    now = utcnow()
    clinic = require_clinic()
    audit(f"patient:{patient.id}", "waitlist.list", record=f"Patient:{patient.id}")
    return [entry_view(e, clinic, now) for e in waitlist.entries_of(patient)]


@bp.route("/waitlist/<entry_id>", methods=["DELETE"])
@bp.errors(400, 401, 403, 404, 503)
@jwt_required()
@bp.response(204)
def leave_waitlist(entry_id):
    """Leave the waitlist (204); an open offer goes to the next patient in line."""
    patient = current_patient()
    entry = waitlist.get_entry(patient, entry_id)
    waitlist.leave(entry, utcnow(), audit=audit_event(f"patient:{patient.id}", "waitlist.leave"))
    return current_app.response_class(status=204)


@bp.route("/waitlist/<entry_id>/accept", methods=["POST"])
@bp.errors(400, 401, 403, 404, 409, 429, 503)
@jwt_required()
@bp.response(201, AppointmentSchema)
def accept_offer(entry_id):
    """Book the offered time while the offer holds it (201 with the appointment).

    Optional body `{agree_policy: true}`: required, as for a booking, when the service has a
    deposit or fees (422 `policy_not_agreed`; 409 `card_required` without a card on file)."""
    patient = current_patient()
    entry = waitlist.get_entry(patient, entry_id)
    appt = accept_offer_for_patient(patient, entry, agree_policy=agree_policy_of(request.get_json(silent=True)))
    return appointment_view(appt, require_clinic())
