"""Patient data rights (UK/EU GDPR): export everything stored about a patient, and erasure.

Export: the profile, every appointment and payment, the documents of every other collection that
holds the patient's data (`PATIENT_DATA`: waitlist entries, email in the outbox, a text opt-out, set-password
links), and the audit trail about the patient — what was done, when, and by which role (never a
staff member's id or anybody's address); the password hash and link tokens are never exported.

Erasure keeps the clinic's records and replaces the person: name, email and phone become a
pseudonym ("Erased patient", `erased-<id>@erased.invalid`), the password can no longer match,
the account is deactivated and every token stops working. Appointments, payments and the audit
trail keep their records under the patient's id. Unpaid holds are cancelled; an upcoming
confirmed appointment must be cancelled first (or by the clinic), so nobody is expected at a
visit the clinic can no longer link to a person. The patient leaves the waitlist, their open
set-password links are spent, and the outbox forgets their address: its messages are re-addressed
to the pseudonym, those not yet sent are dropped, and the wording kept of those sent (to them, or to
their account holder about them) is removed.

`PATIENT_DATA` is the one list of collections holding a patient's data besides `patients` and the
audit trail; tests/test_security_review_privacy.py fails when a document that references Patient
(or stores a `patient` id) is missing from it.
"""

from datetime import datetime

from bson import DBRef, ObjectId
from mongoengine.queryset.visitor import Q

from models.accounts.documents import PasswordReset, Patient, StaffUser
from models.accounts.users import check_password
from models.audit import AuditEvent, audited, patient_record
from models.booking import waitlist
from models.booking.cancellation import cancel
from models.booking.documents import ACTIVE_STATUSES, HOLDING_STATUSES, Appointment
from models.booking.rules import is_blocking
from models.booking.waitlist import WaitlistEntry
from models.errors import Conflict, ValidationFailed
from models.messages.documents import TOKEN_KINDS, OutboxMessage, SmsOptOut
from models.payments.documents import Payment

ERASED_NAME = "Erased patient"
# Never exported: secrets (a link's token or its hash), or bookkeeping that says nothing about the person.
HIDDEN_FIELDS = {"password_hash", "token_generation", "token_hash", "token"}
# Messages that have not left yet: erasure drops them, nobody is left to send them to.
UNSENT = ("queued", "failed")


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


def _by_patient(document):
    """A finder of the patient's documents in a collection whose `patient` field names them."""
    return lambda patient: document.objects(patient=patient.id)


def _outbox_of(patient):
    """The patient's email: by patient id, and by address (a message may name only its recipient)."""
    return OutboxMessage.objects(Q(patient=patient.id) | Q(to=patient.email))


def _leave_waitlist(patient, now, email):
    """Waiting and offered entries end as if the patient left (an open offer goes to the next in line)."""
    for entry in WaitlistEntry.objects(patient=patient.id, status__in=("waiting", "offered")):
        waitlist.leave(entry, now)


def _forget_address(patient, now, email):
    """Re-address the patient's messages to the pseudonym; drop those not sent yet; forget the wording
    of every message sent to them or about them (a dependant's visit or offer is written to the holder)."""
    pseudonym = erased_email(patient)
    mine = Q(patient=patient.id) | Q(to=email)
    visits = Appointment.objects(patient=patient.id).distinct("id")
    OutboxMessage.objects(mine | Q(appointment__in=visits) | Q(**{"context__for": str(patient.id)})).update(
        unset__sent_subject=True, unset__sent_body=True)
    OutboxMessage.objects(mine & Q(status__in=UNSENT)).update(
        set__status="dropped", set__drop_reason="patient erased", set__lease_until=None)
    OutboxMessage.objects(mine & Q(kind__in=TOKEN_KINDS)).update(set__context={})
    for message in OutboxMessage.objects(mine).only("id", "last_error"):
        # A refused delivery's error often quotes the recipient.
        OutboxMessage.objects(id=message.id).update_one(
            set__to=pseudonym, set__last_error=(message.last_error or "").replace(email, pseudonym))


def _spend_links(patient, now, email):
    """Open set-password links stop working (the records stay, pseudonymous)."""
    PasswordReset.objects(patient=patient.id, used_at=None).update(set__used_at=now)


def _cancel_holds(patient, now, email):
    """Unpaid holds are given back (the appointments stay, cancelled, as records)."""
    for appointment in Appointment.objects(patient=patient.id, status="held", end__gt=now):
        if is_blocking(appointment, now):
            cancel(appointment, now, reason="account erased", actor=f"patient:{patient.id}")


def _appointments(patient, now, email):
    """Holds given back, and the intake answers (issue 28: health details in the person's words) cleared."""
    _cancel_holds(patient, now, email)
    Appointment.objects(patient=patient.id, answers__0__exists=True).update(set__answers=[])


def _opt_outs_of(patient):
    """The text-message opt-out of the patient's phone number (stored in E.164, as patients' are)."""
    return SmsOptOut.objects(phone=patient.phone) if patient.phone else SmsOptOut.objects.none()


# Every collection besides `patients` and the audit trail that holds a patient's data: how the
# export finds the patient's documents, and what erasure does with them (None: the record stays as
# it is, pseudonymous once the patient document is erased). Erasure runs them in this order:
# the waitlist before the holds (its offers are holds, given back by leaving, not re-offered to
# the patient), the outbox after both (they may queue notices to the old address).
PATIENT_DATA = {
    WaitlistEntry: (_by_patient(WaitlistEntry), _leave_waitlist),
    Appointment: (_by_patient(Appointment), _appointments),
    Payment: (_by_patient(Payment), None),
    OutboxMessage: (_outbox_of, _forget_address),
    PasswordReset: (_by_patient(PasswordReset), _spend_links),
    # The patient's number replied STOP (issue 29). Erasure keeps it: it is that number's own
    # instruction, and the clinic must go on honouring it whoever holds the number.
    SmsOptOut: (_opt_outs_of, None),
}


ERASED_DOMAIN = "erased.invalid"


def erased_email(patient):
    """The pseudonymous address an erased patient keeps (unique, undeliverable: RFC 6761 `.invalid`)."""
    return f"erased-{patient.id}@{ERASED_DOMAIN}"


def is_erased(patient):
    """True for a patient whose personal data was erased (only the pseudonym is left)."""
    return str(getattr(patient, "email", "") or "").lower().endswith("@" + ERASED_DOMAIN)


def _by_role(actors):
    """Each audit actor as the patient may see it: "you", a staff role, or the system's name."""
    staff_ids = [a.partition(":")[2] for a in actors if a.startswith("staff:")]
    roles = {str(s.id): s.role for s in StaffUser.objects(
        id__in=[i for i in staff_ids if ObjectId.is_valid(i)]).only("id", "role")}
    shown = {}
    for actor in actors:
        kind, _, ident = actor.partition(":")
        if kind == "staff":
            shown[actor] = f"staff ({roles.get(ident, 'former staff')})"
        elif kind == "patient":
            shown[actor] = "patient"
        else:
            shown[actor] = kind or "system"
    return shown


def _audit_view(events, patient):
    """The audit trail as the patient sees it: what, when, about which record, outcome, by which role.

    Staff ids, client addresses and request ids stay with the clinic: they identify other people
    (and the clinic's systems), not what was done with the patient's data.
    """
    events = list(events)
    roles = _by_role({e.actor or "" for e in events})
    mine = f"patient:{patient.id}"
    return [{"id": str(e.id), "at": _plain(e.at), "action": e.action, "record": e.record,
             "outcome": e.outcome, "by": "you" if e.actor == mine else roles[e.actor or ""]}
            for e in events]


def export_patient(patient, now):
    """Everything stored about the patient, as one JSON-ready dict.

    The people the patient books for (issue 28) come with it: their records under `dependants`,
    their appointments (intake answers included) among the patient's, and their other documents
    (waitlist entries) in `other_records`, each naming its `patient`.
    """
    dependants = list(Patient.objects(guardian=patient.id).order_by("name"))
    people = [patient.id] + [d.id for d in dependants]
    appointments = list(Appointment.objects(patient__in=people).order_by("start").no_dereference())
    payments = list(Payment.objects(patient__in=people).order_by("created_at").no_dereference())
    records = [f"Patient:{p}" for p in people] + [f"Appointment:{a.id}" for a in appointments] + \
              [f"Payment:{p.id}" for p in payments]
    audit = AuditEvent.objects(__raw__={"$or": [{"actor": f"patient:{patient.id}"},
                                                {"record": {"$in": records}}]}).order_by("at")
    other = {}
    for document, (find, _) in PATIENT_DATA.items():
        if document in (Appointment, Payment):
            continue  # exported above, under their own keys
        # The dependants' documents too (their waitlist entries, issue 28), each naming its `patient`.
        found = {}
        for person in [patient] + dependants:
            for d in find(person).no_dereference():
                found.setdefault(d.id, d)
        rows = [_doc(d) for d in found.values()]
        if rows:
            other[document._get_collection_name()] = rows
    return {
        "exported_at": now.isoformat(),
        "patient": _doc(patient),
        "dependants": [_doc(d) for d in dependants],
        "appointments": [_doc(a) for a in appointments],
        "payments": [_doc(p) for p in payments],
        "other_records": other,
        "audit_events": _audit_view(audit, patient),
        "not_included": "Your password is stored only as an argon2id hash, which is not exported; "
                        "nor are the tokens of emailed links. The audit trail says which role acted, "
                        "not which member of staff, nor any network address.",
    }


@audited("patient.erase", patient_record)
def erase_patient(patient, password, now):
    """Erase the patient's personal data after checking their password; the records stay.

    Raises ValidationFailed (wrong password, on the `password` field) or Conflict
    (`upcoming_appointments`). Returns the erased patient.
    """
    if not check_password(patient.password_hash, password if isinstance(password, str) else ""):
        raise ValidationFailed("The password is not correct.", fields={"password": "incorrect"})
    dependants = list(Patient.objects(guardian=patient.id, active=True))
    _refuse_upcoming([patient.id] + [d.id for d in dependants], now)
    for dependant in dependants:  # the people on the account go with it (issue 28)
        _erase_person(dependant, now)
    return _erase_person(patient, now)


def _refuse_upcoming(people, now):
    """Conflict (`upcoming_appointments`) while any of these people has a confirmed visit ahead."""
    live = [a for a in Appointment.objects(patient__in=people, status__in=ACTIVE_STATUSES,
                                           end__gt=now) if is_blocking(a, now)]
    if any(a.status not in HOLDING_STATUSES for a in live):
        raise Conflict("There are upcoming appointments. Cancel them first (or call the clinic), then "
                       "delete.", code="upcoming_appointments")


def _erase_person(patient, now):
    """Run every collection's erasure step for the person, then replace their personal data."""
    email = patient.email
    for _, erase in PATIENT_DATA.values():
        if erase is not None:
            erase(patient, now, email)
    patient.modify(set__email=erased_email(patient), set__name=ERASED_NAME, set__phone="",
                   set__date_of_birth=None, set__password_hash="!erased", set__active=False,
                   inc__token_generation=1,
                   # No-show protection: the card on file is forgotten (nothing can be charged any more).
                   set__card_payment_method=None, set__card_brand="", set__card_last4="",
                   set__card_exp_month=None, set__card_exp_year=None, set__card_setup=None)
    return patient


def _dependant_record(holder, dependant, *args, **kwargs):
    return f"Patient:{dependant.id}"


@audited("dependant.remove", _dependant_record)
def remove_dependant(holder, dependant, now):
    """Take a person off the holder's account: their personal data is erased like an account's.

    Refused (409 `upcoming_appointments`) while they have a confirmed visit ahead; unpaid holds are
    given back. Their past appointments stay as pseudonymous records.
    """
    if getattr(dependant.guardian, "id", dependant.guardian) != holder.id:
        raise Conflict("That person is not on your account.", code="not_allowed")
    _refuse_upcoming([dependant.id], now)
    return _erase_person(dependant, now)
