"""Merging two records of one patient (issue 26): reception made a duplicate (a phone booking under
a new record, a portal registration beside a desk record) and an admin folds it into the record
to keep.

One action, `merge_patients`, does all of it and audits itself: the duplicate's appointments,
payments, waitlist entries and messages move to the kept record; the kept record takes the
duplicate's phone, date of birth and real email where it has none; the duplicate is deactivated,
its sessions end, and it is kept as a pointer (`merged_into`, `merged_at`) so an old link or an
audit row naming it still leads to the patient. The pointer is written first: a merge interrupted
half-way is finished by running it again (the same two records), and nothing is ever left owned by
a record that looks active.
"""

from models.accounts.documents import NO_EMAIL_DOMAIN, Patient, PasswordReset, deliverable
from models.audit import audited
from models.booking.documents import Appointment
from models.booking.waitlist import WaitlistEntry
from models.errors import Conflict, NotFound, ValidationFailed
from models.messages.documents import OutboxMessage
from models.payments.documents import Payment


def _merge_record(keep, duplicate, *args, **kwargs):
    return f"Patient:{keep.id}"


@audited("patient.merge", _merge_record)
def merge_patients(keep, duplicate, now):
    """Fold `duplicate` into `keep` (both Patients); returns the kept patient, reloaded.

    Refused when they are the same record, when `keep` is itself merged or inactive, or when the
    duplicate was merged into another record.
    """
    if keep is None or duplicate is None:
        raise NotFound("That patient does not exist.", code="patient_not_found")
    if keep.id == duplicate.id:
        raise ValidationFailed("Choose two different records to merge.", fields={"duplicate": "same"})
    keep.reload()
    duplicate.reload()
    if keep.merged_into is not None or not keep.active:
        raise Conflict("The record to keep is inactive or merged into another; keep an active record.",
                       code="not_mergeable")
    if duplicate.merged_into is not None and duplicate.merged_into != keep.id:
        raise Conflict("That duplicate was already merged into another record.", code="already_merged")
    # 1. The pointer first: from here on the duplicate cannot sign in and is never offered for booking.
    Patient.objects(id=duplicate.id).update_one(set__merged_into=keep.id, set__merged_at=now, set__active=False,
                                                inc__token_generation=1)
    # 2. Everything the duplicate owned moves (each update is idempotent: a re-run finds nothing left).
    Appointment.objects(patient=duplicate.id).update(set__patient=keep.id)
    Payment.objects(patient=duplicate.id).update(set__patient=keep.id)
    WaitlistEntry.objects(patient=duplicate.id).update(set__patient=keep.id)
    OutboxMessage.objects(patient=duplicate.id).update(set__patient=keep.id)
    PasswordReset.objects(patient=duplicate.id, used_at=None).update(set__used_at=now)
    # 3. What the kept record lacks, it takes from the duplicate.
    changes = {}
    if not keep.phone and duplicate.phone:
        changes["set__phone"] = duplicate.phone
    if keep.date_of_birth is None and duplicate.date_of_birth is not None:
        changes["set__date_of_birth"] = duplicate.date_of_birth
    if not deliverable(keep.email) and deliverable(duplicate.email):
        # The address is unique: the duplicate gives it up before the kept record takes it.
        real = duplicate.email
        Patient.objects(id=duplicate.id).update_one(set__email=f"merged-{duplicate.id}@{NO_EMAIL_DOMAIN}")
        changes["set__email"] = real
    if changes:
        Patient.objects(id=keep.id).update_one(**changes)
    keep.reload()
    return keep
