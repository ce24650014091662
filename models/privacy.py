"""Patient data rights (UK/EU GDPR): export everything stored about a patient, and erasure.

Export: the profile, every appointment and payment, every document of any collection that
references the patient (waitlist entries, queued email, … whatever other modules store), and the
audit trail about the patient; the password hash is never exported.

Erasure keeps the clinic's records and replaces the person: name, email and phone become a
pseudonym ("Erased patient", `erased-<id>@erased.invalid`), the password can no longer match,
the account is deactivated and every token stops working. Appointments, payments and the audit
trail keep their records under the patient's id. Unpaid holds are cancelled; an upcoming
confirmed appointment must be cancelled first (or by the clinic), so nobody is expected at a
visit the clinic can no longer link to a person.
"""

from datetime import datetime

from bson import DBRef, ObjectId
from mongoengine import ReferenceField
from mongoengine.base import get_document
from mongoengine.base.common import _document_registry

from models.accounts.documents import Patient
from models.accounts.users import check_password
from models.audit import AuditEvent, audited, patient_record
from models.booking.cancellation import cancel
from models.booking.documents import Appointment
from models.booking.rules import is_blocking
from models.errors import Conflict, ValidationFailed
from models.payments.documents import Payment

ERASED_NAME = "Erased patient"
# Never exported: secrets, or bookkeeping that says nothing about the person.
HIDDEN_FIELDS = {"password_hash", "token_generation"}


def _plain(value):
    """A stored value as JSON-ready data (ids and references as strings, instants as ISO 8601)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in HIDDEN_FIELDS}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, DBRef):
        return str(value.id)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _doc(document):
    data = _plain(document.to_mongo().to_dict())
    data["id"] = data.pop("_id", None)
    data.pop("_cls", None)
    return data


def _referencing_collections():
    """Every document class (outside the core ones) with a `patient` reference to Patient."""
    found = []
    for name in list(_document_registry):
        cls = get_document(name)
        field = getattr(cls, "_fields", {}).get("patient")
        if (isinstance(field, ReferenceField) and field.document_type is Patient
                and cls not in (Appointment, Payment) and not getattr(cls, "_meta", {}).get("abstract")):
            found.append(cls)
    return found


def export_patient(patient, now):
    """Everything stored about the patient, as one JSON-ready dict."""
    appointments = list(Appointment.objects(patient=patient.id).order_by("start").no_dereference())
    payments = list(Payment.objects(patient=patient.id).order_by("created_at").no_dereference())
    records = [f"Patient:{patient.id}"] + [f"Appointment:{a.id}" for a in appointments] + \
              [f"Payment:{p.id}" for p in payments]
    audit = AuditEvent.objects(__raw__={"$or": [{"actor": f"patient:{patient.id}"},
                                                {"record": {"$in": records}}]}).order_by("at")
    other = {}
    for cls in _referencing_collections():
        rows = [_doc(d) for d in cls.objects(patient=patient.id).no_dereference()]
        if rows:
            other[cls._get_collection_name()] = rows
    return {
        "exported_at": now.isoformat(),
        "patient": _doc(patient),
        "appointments": [_doc(a) for a in appointments],
        "payments": [_doc(p) for p in payments],
        "other_records": other,
        "audit_events": [_doc(e) for e in audit],
        "not_included": "Your password is stored only as an argon2id hash, which is not exported.",
    }


@audited("patient.erase", patient_record)
def erase_patient(patient, password, now):
    """Erase the patient's personal data after checking their password; the records stay.

    Raises ValidationFailed (wrong password, on the `password` field) or Conflict
    (`upcoming_appointments`). Returns the erased patient.
    """
    if not check_password(patient.password_hash, password if isinstance(password, str) else ""):
        raise ValidationFailed("The password is not correct.", fields={"password": "incorrect"})
    live = [a for a in Appointment.objects(patient=patient.id, status__in=("held", "confirmed", "checked_in"),
                                           end__gt=now) if is_blocking(a, now)]
    if any(a.status != "held" for a in live):
        raise Conflict("You have upcoming appointments. Cancel them first (or call the clinic), then "
                       "delete your account.", code="upcoming_appointments")
    for appointment in live:
        cancel(appointment, now, reason="account erased", actor=f"patient:{patient.id}")
    patient.modify(set__email=f"erased-{patient.id}@erased.invalid", set__name=ERASED_NAME, set__phone="",
                   set__password_hash="!erased", set__active=False, inc__token_generation=1)
    return patient
