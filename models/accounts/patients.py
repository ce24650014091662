"""Patients created by staff: the front desk's new caller and the back office's "create patient"
pass the same checks here (name and phone rules, email normalised and unique, date of birth), and
get the same unusable password and set-password invitation.

Imported by name (`from models.accounts.patients import create_by_staff`): it queues email through
`reset`, which `models.accounts` itself does not load.
"""

import secrets


from bson import ObjectId
from mongoengine import NotUniqueError

from models.accounts.documents import NO_EMAIL_DOMAIN, Patient, deliverable
from models.audit import audited, insert_with_audit, patient_record
from models.accounts.phones import normalise_phone
from models.accounts.reset import queue_invitation
from models.accounts.users import _clean_text, clean_birth_date, hash_password, normalise_email
from models.accounts.users import parse_birth_date  # noqa: F401  (its home before issue 26)
from models.errors import Conflict, ValidationFailed

EMAIL_TAKEN = "A patient with that email already exists: find them by name or phone and choose them."
TAKEN_FIELD = {"email": "a patient with this email exists"}


def create_by_staff(name, phone="", email="", date_of_birth=None, invite=True, require_phone=True, active=True,
                    audit=None):
    """Create a patient for staff (desk or back office): checked, unusable password, invited when emailed.

    `require_phone=False` where the form asks for an email instead (the back office); a phone given
    is checked either way. Without an email the patient gets a placeholder address nothing can be
    delivered to. A known email is refused (409 `email_taken`, on the email field).
    `audit`, the unsaved "patient.create" event of the staff member's request, is written with the
    patient in one command (its record is the new patient).
    """
    name = _clean_text(name, "name", True, 200)
    phone = normalise_phone(phone, required=require_phone)  # E.164, or 422 on the phone field
    if email and email.strip():
        email = normalise_email(email)
        if Patient.objects(email=email).first() is not None:
            raise Conflict(EMAIL_TAKEN, code="email_taken", fields=TAKEN_FIELD)
    else:
        email = f"patient-{ObjectId()}@{NO_EMAIL_DOMAIN}"
    date_of_birth = clean_birth_date(date_of_birth)
    patient = Patient(email=email, name=name, phone=phone, date_of_birth=date_of_birth, active=bool(active),
                      password_hash=hash_password(secrets.token_urlsafe(32)), id=ObjectId())
    if audit is not None:
        audit.record = audit.record or f"Patient:{patient.id}"
    try:
        insert_with_audit(patient, audit)
    except NotUniqueError:  # registered meanwhile: the unique index is the guard, the read above the hint
        raise Conflict(EMAIL_TAKEN, code="email_taken", fields=TAKEN_FIELD) from None
    if invite:
        invite_patient(patient)
    return patient


@audited("patient.deactivate", patient_record)
def deactivate(patient):
    """Staff deactivate a patient: they can no longer sign in and every session of theirs ends."""
    Patient.objects(id=patient.id).update_one(set__active=False, inc__token_generation=1)
    return patient


def invite_patient(patient):
    """A staff-created patient with a real email is invited to choose a password (7-day link)."""
    if deliverable(patient.email):
        queue_invitation(patient)
