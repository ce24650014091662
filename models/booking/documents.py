"""The booking's documents: appointments and the 5-minute time claims that keep them from overlapping."""

from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    IntField,
    ListField,
    ObjectIdField,
    ReferenceField,
    StringField,
)

from models.accounts.documents import Patient
from models.catalog.documents import Provider, Service
from models.clock import as_utc, utcnow

APPOINTMENT_STATUSES = ("held", "offered", "confirmed", "checked_in", "completed", "no_show", "cancelled", "expired")

# A waitlist offer (models/booking/waitlist.py) is an Appointment of the waiting patient in status
# `offered` (issue 24; before, a `held` one, which the start-up migration
# `models.booking.status.offers_become_a_status` converts). It is a hold in every rule a hold meets:
# its time claims lapse with it, it counts toward the patient's hold cap and overlap, the sweep
# expires it and free times ignore it once lapsed. Accepted, it becomes `held` (payment due) or
# `confirmed`; lapsed, declined or withdrawn, `expired`.
OFFERED = "offered"
# Statuses whose time is held only until `hold_expires_at`: an unpaid hold and an open offer.
HOLDING_STATUSES = ("held", OFFERED)
# An offer is not the patient's own until accepted: their lists, pages and the API leave it out, and
# they cannot move, pay or cancel it. The status tells an open offer; an ended one (`expired`) must
# stay out too, so the offer's origin is also kept in `booked_by`: WAITLIST_OFFER from the offer
# until it is accepted (then "waitlist"). The one spelling of the mark: readers use this constant,
# `is_waitlist_offer` or `NOT_AN_OFFER`.
WAITLIST_OFFER = "waitlist-offer"
NOT_AN_OFFER = {"booked_by__ne": WAITLIST_OFFER}  # query filter: the patient's own appointments only


def is_waitlist_offer(appointment):
    """True when the appointment is a waitlist offer never accepted (open, or ended)."""
    return getattr(appointment, "booked_by", None) == WAITLIST_OFFER
# Statuses whose time is claimed (a holding one only until its hold expires).
ACTIVE_STATUSES = ("held", OFFERED, "confirmed", "checked_in")


def is_lapsed_hold(appointment, now):
    """True when a holding appointment's hold has lapsed (before the sweep has expired it)."""
    expires = getattr(appointment, "hold_expires_at", None)
    if appointment.status not in HOLDING_STATUSES or expires is None:
        return False
    return as_utc(expires) <= now


class AgreedPolicy(EmbeddedDocument):
    """No-show protection (issue 27): the policy the patient agreed to when booking, as it was then.
    A fee is never charged above these amounts, whatever the service says later."""

    deposit = IntField(default=0, min_value=0)
    late_cancel_fee = IntField(default=0, min_value=0)
    no_show_fee = IntField(default=0, min_value=0)
    cancellation_hours = IntField(default=0, min_value=0)
    pay_at_clinic = BooleanField(default=False)
    text = StringField(max_length=500, default="")  # the sentence the patient agreed to
    agreed_at = DateTimeField()
class Answer(EmbeddedDocument):
    """An intake answer as given: the question's id, label and version then, and the plain-text value."""

    question = StringField(required=True, max_length=24)
    label = StringField(required=True, max_length=200)
    version = IntField(default=1)
    kind = StringField(max_length=20, default="text")
    value = StringField(max_length=2000, default="")


class Appointment(Document):
    """A booking of one service with one provider for one patient."""

    patient = ReferenceField(Patient, required=True)
    provider = ReferenceField(Provider, required=True)
    service = ReferenceField(Service, required=True)
    start = DateTimeField(required=True)
    end = DateTimeField(required=True)
    # The provider time this appointment blocks: start/end widened by the service's buffers.
    block_start = DateTimeField(required=True)
    block_end = DateTimeField(required=True)
    status = StringField(required=True, choices=APPOINTMENT_STATUSES, default="held")
    hold_expires_at = DateTimeField()
    amount = IntField(default=0, min_value=0)
    currency = StringField(default="gbp")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    booked_by = StringField(default="patient")  # "patient", "staff:<id>", "waitlist" (an accepted offer) or WAITLIST_OFFER
    override = BooleanField(default=False)  # staff booked over a conflict, audited
    cancel_reason = StringField(max_length=500, default="")
    notes = StringField(max_length=2000, default="")
    # Bumped by every change of status or time; queued email for an older version is dropped.
    version = IntField(default=0)
    # Issue 31 (crash consistency): the action whose later writes are not all done yet ("cancel",
    # "reschedule"), written before or with its first change and cleared by its last step. A
    # repeated request, or the sweep once `pending_since` is RECOVER_AFTER old, finishes the steps
    # (each one idempotent) from `pending_args`.
    pending = StringField()
    pending_since = DateTimeField()
    pending_args = DictField()
    # Issue 24: the audit events a guarded update carried with its change (models/audit.py), until
    # they are copied into the trail a moment later (or by the sweep, after a crash in between).
    audit_pending = ListField(DictField())
    # Recurring series (issue 28): the visits booked together share this id (None: a single visit).
    series = ObjectIdField()
    # Issue 28: the patient chose to pay for the whole course at once (one PaymentIntent for every
    # held visit of the series; models/payments/ledger.py explains the ledger's side). False: per visit.
    pay_course = BooleanField(default=False)
    # --- No-show protection (issue 27): the agreed policy; the online payment is its deposit when set.
    policy = EmbeddedDocumentField(AgreedPolicy)
    # Intake answers (issue 28): given once, when booked; kept with the wording they answered.
    answers = EmbeddedDocumentListField(Answer)
    # Issue 26 (staff cancellation with refund choices): what staff chose when cancelling
    # ("full", "amount", "none"; "" = the service's rule), stated in the patient's email.
    refund_decision = StringField(max_length=20, default="")
    meta = {
        "collection": "appointments",
        "auto_create_index": False,
        "indexes": [
            ("provider", "block_start"),
            ("patient", "start"),
            ("status", "hold_expires_at"),
            "start",
            {"fields": ["pending"], "sparse": True},  # issue 31: the sweep's unfinished actions
            {"fields": ["audit_pending._id"], "sparse": True},  # issue 24: audit events not yet copied
            {"fields": ("series", "start"), "sparse": True},
        ],
    }


def online_amount(appointment):
    """What is paid online at booking: the agreed deposit when there is one, else the price."""
    policy = appointment.policy
    return policy.deposit if policy is not None and policy.deposit else appointment.amount


class TimeClaim(Document):
    """One claimed 5-minute unit of a provider's time; the unique index forbids double booking."""

    provider = ReferenceField(Provider, required=True)
    unit = DateTimeField(required=True)  # UTC, on the 5-minute grid
    appointment = ReferenceField(Appointment, required=True)
    # Claims of an unpaid hold lapse at this instant; a later booking may take them over.
    expires_at = DateTimeField()
    meta = {
        "collection": "time_claims",
        "auto_create_index": False,
        "indexes": [
            {"fields": ("provider", "unit"), "unique": True},
            "appointment",
        ],
    }
