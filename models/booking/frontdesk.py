"""Front-desk rules staff use on the day: check-in and no-show (each with undo), finding a caller,
creating a new caller inline, and what a cancellation would refund.

Every transition is a guarded single-document update, so a double click or two desks at once
move an appointment once.
"""

import re
import secrets
from datetime import date, datetime, timedelta

from bson import ObjectId

from models.accounts.documents import NO_EMAIL_DOMAIN, Patient, deliverable
from models.accounts.reset import queue_invitation
from models.accounts.users import _clean_text, hash_password, normalise_email
from models.audit import appointment_record, audited
from models.booking import status
from models.booking.claims import claim_time
from models.clock import _utc, local
from models.errors import Conflict, ValidationFailed

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


def parse_birth_date(raw):
    """A date of birth typed as YYYY-MM-DD or DD/MM/YYYY (UK order), or None."""
    raw = (raw or "").strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
    return None


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
    return list(found.order_by("name").limit(limit))


def create_caller(name, phone, email="", date_of_birth=None, invite=True):
    """Create a patient at the desk from a phone call: name and phone are enough.

    The password is unusable until the patient sets one (an invitation, when they gave an email).
    A known email is refused with a hint to pick that patient instead.
    """
    name = _clean_text(name, "name", True, 200)
    phone = _clean_text(phone, "phone", True, 50)
    if sum(ch.isdigit() for ch in phone) < 6:
        raise ValidationFailed("Enter a phone number we can call back.", fields={"phone": "too short"})
    if email and email.strip():
        email = normalise_email(email)
        if Patient.objects(email=email).first() is not None:
            raise Conflict("A patient with that email already exists: find them by name or phone and "
                           "choose them.", code="email_taken")
    else:
        email = f"patient-{ObjectId()}@{NO_EMAIL_DOMAIN}"
    if isinstance(date_of_birth, str):
        raw = date_of_birth
        date_of_birth = parse_birth_date(raw) if raw.strip() else None
        if raw.strip() and date_of_birth is None:
            raise ValidationFailed("Give the date of birth as DD/MM/YYYY.",
                                   fields={"date_of_birth": "invalid"})
    if date_of_birth is not None and not date(1900, 1, 1) <= date_of_birth <= date.today():
        raise ValidationFailed("That date of birth is not possible.", fields={"date_of_birth": "invalid"})
    patient = Patient(email=email, name=name, phone=phone, date_of_birth=date_of_birth,
                      password_hash=hash_password(secrets.token_urlsafe(32)))
    patient.save(force_insert=True)
    if invite:
        invite_caller(patient)
    return patient


def invite_caller(patient):
    """A caller who gave an email is invited to choose a password (models/accounts/reset.py, 7 days)."""
    if has_email(patient):
        queue_invitation(patient)


def book_new_caller(name, phone, email, date_of_birth, book):
    """Add a new caller and book them in one step: `book(patient)` makes the appointment.

    A refused booking leaves no patient behind (nor an invitation), so retrying with another time
    never piles up duplicate records. Returns (patient, appointment).
    """
    patient = create_caller(name, phone, email, date_of_birth, invite=False)
    try:
        appointment = book(patient)
    except Exception:
        Patient.objects(id=patient.id).delete()
        raise
    invite_caller(patient)
    return patient, appointment


def minutes_left(until, now):
    """Whole minutes from now until an instant (0 when past)."""
    return max(0, int((_utc(until) - now) / timedelta(minutes=1)))
