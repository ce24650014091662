"""Dependants (issue 28): people an account holder books for — a child, an elderly parent.

A dependant is a Patient with a `guardian` (the account holder), so staff see them as a patient
(search, the day grid, the appointment pages) with their guardian named. They never get a sign-in
of their own here: their address is an undeliverable placeholder (RFC 6761 `.invalid`, like a desk
caller without email) and their password hash matches nothing; `authenticate` refuses them anyway.
Email about their visits goes to the account holder and names the person the visit is for.

The patient-overlap rule applies per person (a parent and a child may be seen at the same time by
two clinicians); the hold and upcoming caps count the whole household, so adding dependants does not
multiply what one account can hold.
"""

from datetime import date

from bson import ObjectId

from models.accounts.documents import NO_EMAIL_DOMAIN, Patient
from models.audit import audited
from models.errors import Conflict, NotFound, ValidationFailed

MAX_DEPENDANTS = 10
NO_SIGN_IN = "!dependant"  # not an argon2 hash: check_password can never match it


def _holder_record(holder, *args, **kwargs):
    return f"Patient:{holder.id}"


def dependants_of(holder):
    """The holder's dependants still on record, by name."""
    return list(Patient.objects(guardian=holder.id, active=True).order_by("name"))


def household_ids(patient):
    """The ids of everyone on the patient's account: the holder and their dependants (the caps count them all)."""
    if getattr(patient, "guardian", None) is None and not getattr(patient, "has_dependants", False):
        return [patient.id]  # most accounts: no query
    holder_id = getattr(patient.guardian, "id", patient.guardian) if getattr(patient, "guardian", None) else patient.id
    return [holder_id] + [p.id for p in Patient.objects(guardian=holder_id).only("id")]


def get_dependant(holder, dependant_id):
    """One of the holder's own dependants, or NotFound (also for anyone else's)."""
    found = (Patient.objects(id=dependant_id, guardian=holder.id, active=True).first()
             if ObjectId.is_valid(str(dependant_id)) else None)
    if found is None:
        raise NotFound("That person is not on your account.", code="dependant_not_found")
    return found


def person_for(holder, dependant_id):
    """Who a booking is for: the holder themselves (no id, or their own id) or one of their dependants."""
    if dependant_id in (None, "", str(holder.id)):
        return holder
    return get_dependant(holder, dependant_id)


def _check(name, date_of_birth, today):
    if not isinstance(name, str) or not " ".join(name.split()):
        raise ValidationFailed("Enter the person's name.", fields={"name": "is required"})
    name = " ".join(name.split())
    if len(name) > 200:
        raise ValidationFailed("The name is too long (at most 200 characters).", fields={"name": "too long"})
    if isinstance(date_of_birth, str):
        try:
            date_of_birth = date.fromisoformat(date_of_birth)
        except ValueError:
            date_of_birth = None
    if not isinstance(date_of_birth, date):
        raise ValidationFailed("Enter the date of birth like 2019-05-31.", fields={"date_of_birth": "invalid date"})
    if date_of_birth > today or date_of_birth.year < today.year - 130:
        raise ValidationFailed("The date of birth is not possible.", fields={"date_of_birth": "out of range"})
    return name, date_of_birth


@audited("dependant.add", _holder_record)
def add_dependant(holder, name, date_of_birth, today):
    """Add a person the holder books for (422 on a bad name or date; 409 past MAX_DEPENDANTS)."""
    if getattr(holder, "guardian", None) is not None:
        raise Conflict("A dependant cannot have dependants.", code="not_allowed")
    name, date_of_birth = _check(name, date_of_birth, today)
    if Patient.objects(guardian=holder.id, active=True).count() >= MAX_DEPENDANTS:
        raise Conflict(f"An account can book for at most {MAX_DEPENDANTS} people. Please call the clinic.",
                       code="too_many_dependants")
    ident = ObjectId()
    if not holder.has_dependants:
        holder.modify(set__has_dependants=True)
    return Patient(id=ident, email=f"dependant-{ident}@{NO_EMAIL_DOMAIN}", name=name, date_of_birth=date_of_birth,
                   password_hash=NO_SIGN_IN, guardian=holder).save(force_insert=True)
