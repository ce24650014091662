"""Front-desk rules staff use on the day: check-in and no-show (each with undo), finding a caller,
creating a new caller inline, and what a cancellation would refund.

Every transition is a guarded single-document update, so a double click or two desks at once
move an appointment once.
"""

import re
from datetime import datetime, timedelta

from models.accounts.documents import Patient, deliverable
from models.accounts.patients import create_by_staff, invite_patient, parse_birth_date  # noqa: F401
from models.audit import appointment_record, audited
from models.booking import status
from models.booking.claims import claim_time
from models.clock import _utc, local
from models.errors import Conflict

# Staff-created patients without an email get an address in the reserved `.invalid` domain
# (RFC 2606): Patient.email stays unique and required, and no message can ever be delivered to it.


def _local_date(dt, tz):
    return local(dt, tz).date()


@audited("appointment.check_in", appointment_record)
def check_in(appointment, now, tz):
    """Mark a confirmed appointment of today as arrived."""
    if _local_date(appointment.start, tz) != _local_date(now, tz):
        raise Conflict("Only today's appointments can be checked in.", code="not_today")
    moved = status.move(appointment.id, "checked_in", now, only_from=("confirmed",))
    if not moved:
        raise Conflict(f"This appointment is {appointment.status.replace('_', ' ')}; only confirmed "
                       "appointments can be checked in.", code="bad_transition")
    return status.adopt(appointment, moved)


@audited("appointment.undo_check_in", appointment_record)
def undo_check_in(appointment, now, tz):
    """Take back a check-in made by mistake (today only): the appointment is confirmed again."""
    if _local_date(appointment.start, tz) != _local_date(now, tz):
        raise Conflict("Only today's check-ins can be undone.", code="not_today")
    # Not a new version: the reminders queued for it still fit.
    moved = status.move(appointment.id, "confirmed", now, only_from=("checked_in",), bump=False)
    if not moved:
        raise Conflict("This appointment is not checked in, so there is nothing to undo.",
                       code="bad_transition")
    return status.adopt(appointment, moved)


@audited("appointment.no_show", appointment_record)
def mark_no_show(appointment, now):
    """Mark a confirmed appointment whose start has passed as a no-show."""
    if _utc(appointment.start) > now:
        raise Conflict("An appointment can be marked as a no-show only after it was due to start.",
                       code="not_started")
    moved = status.move(appointment.id, "no_show", now, only_from=("confirmed",))
    if not moved:
        raise Conflict(f"This appointment is {appointment.status.replace('_', ' ')}; only confirmed "
                       "appointments can be marked as no-shows.", code="bad_transition")
    return status.adopt(appointment, moved)


@audited("appointment.undo_no_show", appointment_record)
def undo_no_show(appointment, now):
    """Take back a no-show (the patient turned up late after all): confirmed again, time re-claimed.

    The time is claimed again as a partial claim: units someone else booked since stay theirs.
    """
    moved = status.move(appointment.id, "confirmed", now, only_from=("no_show",), bump=False)
    if not moved:
        raise Conflict("This appointment is not marked as a no-show, so there is nothing to undo.",
                       code="bad_transition")
    status.adopt(appointment, moved)
    claim_time(appointment.provider.id, appointment.id, _utc(appointment.block_start),
               _utc(appointment.block_end), None, now, partial=True)
    return appointment


# --- callers -------------------------------------------------------------------------------------

def has_email(patient):
    """False for a patient created at the desk without an email."""
    return deliverable(patient.email)


def _phone_pattern(digits):
    """A regex finding these digits in a stored phone whatever spaces or dashes it has.

    The UK trunk '0' and country code '44' are dropped, so 07700 900123 and +44 7700 900123 find
    each other.
    """
    if digits.startswith("44") and len(digits) > 10:
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = digits[1:]
    return r"\D*".join(re.escape(d) for d in digits)


def find_patients(query, limit=10):
    """Active patients matching a name, a phone number (5+ digits) or a date of birth."""
    query = (query or "").strip()[:100]
    if not query:
        return []
    base = Patient.objects(active=True)
    born = parse_birth_date(query)
    if born is not None:
        found = base.filter(date_of_birth=born)
    elif sum(ch.isdigit() for ch in query) >= 5 and not any(ch.isalpha() for ch in query):
        found = base.filter(__raw__={"phone": {"$regex": _phone_pattern(re.sub(r"\D", "", query))}})
    elif "@" in query:
        found = base.filter(email=query.lower())
    else:
        # $regex with options, built here from the escaped text (SecantusDB does not match the BSON
        # regex literals that MongoEngine's icontains sends; MongoDB accepts both).
        found = base.filter(__raw__={"name": {"$regex": re.escape(query), "$options": "i"}})
    found = list(found.order_by("name").limit(limit))
    # Issue 28: a parent calls about their child: the people they book for come with them.
    holders = [p.id for p in found if getattr(p, "has_dependants", False)]
    if holders:
        seen = {p.id for p in found}
        found += [d for d in base.filter(guardian__in=holders).order_by("name") if d.id not in seen][:limit]
    return found


# --- Issue 26: telling patients apart -------------------------------------------------------------

def shown_email(patient):
    """The email staff may read for a patient: "" for a desk placeholder, never the placeholder itself."""
    return patient.email if deliverable(patient.email) else ""


def patient_cards(patients, now):
    """Search results staff can tell apart: each patient with email shown, last and next visit.

    Returns [{"patient", "email", "last", "next"}] in the given order; `last` is the latest visit
    that took place (arrived or completed), `next` the earliest upcoming held or confirmed one.
    """
    from models.booking.documents import Appointment  # booking's own documents

    ids = [p.id for p in patients]
    last, upcoming = {}, {}
    for appt in Appointment.objects(patient__in=ids, status__in=("checked_in", "completed", "held", "confirmed"))\
            .only("patient", "start", "status").no_dereference():
        pid = appt.patient.id if hasattr(appt.patient, "id") else appt.patient
        start = _utc(appt.start)
        if appt.status in ("checked_in", "completed") and start <= now:
            if pid not in last or start > last[pid]:
                last[pid] = start
        elif appt.status in ("held", "confirmed") and start >= now:
            if pid not in upcoming or start < upcoming[pid]:
                upcoming[pid] = start
    return [{"patient": p, "email": shown_email(p), "last": last.get(p.id), "next": upcoming.get(p.id)}
            for p in patients]


def _phone_key(phone):
    digits = re.sub(r"\D", "", phone or "")
    return _phone_pattern(digits) if len(digits) >= 6 else None


def possible_duplicates(name, phone="", email="", date_of_birth=None, limit=5):
    """Active patients a new record would duplicate: same name and date of birth, same phone or same email."""
    born = date_of_birth
    if isinstance(born, str):
        born = parse_birth_date(born)
    clauses = []
    name = (name or "").strip()
    if name and born is not None:
        clauses.append({"name": {"$regex": f"^{re.escape(name)}$", "$options": "i"},
                        "date_of_birth": datetime.combine(born, datetime.min.time())})
    pattern = _phone_key(phone)
    if pattern:
        clauses.append({"phone": {"$regex": pattern}})
    if email and "@" in email:
        clauses.append({"email": email.strip().lower()})
    found = []
    for clause in clauses:  # one query each: SecantusDB and MongoDB agree on simple filters
        for patient in Patient.objects(active=True, __raw__=clause).limit(limit):
            if all(patient.id != p.id for p in found):
                found.append(patient)
    return found[:limit]


def create_caller(name, phone, email="", date_of_birth=None, invite=True):
    """Create a patient at the desk from a phone call: name and phone are enough (accounts' staff rule)."""
    # The back office's "create patient" calls the same rule: one set of checks for staff-made patients.
    return create_by_staff(name, phone, email, date_of_birth, invite=invite)


def book_new_caller(name, phone, email, date_of_birth, book, audit=None):
    """Add a new caller and book them in one step: `book(patient, also)` makes the appointment.

    A refused booking leaves no patient behind (nor an invitation), so retrying with another time
    never piles up duplicate records. `audit`, the unsaved "patient.create" event, is handed to
    `book` as `also` and written with the booking (a refused booking leaves no such event either).
    Returns (patient, appointment).
    """
    patient = create_caller(name, phone, email, date_of_birth, invite=False)
    also = []
    if audit is not None:
        audit.record = f"Patient:{patient.id}"
        also.append(audit)
    try:
        appointment = book(patient, also)
    except Exception:
        Patient.objects(id=patient.id).delete()
        raise
    invite_patient(patient)
    return patient, appointment


def minutes_left(until, now):
    """Whole minutes from now until an instant (0 when past)."""
    return max(0, int((_utc(until) - now) / timedelta(minutes=1)))
