"""The payments' documents: one Payment per appointment (and kind) with its refunds, and Stripe's events as received."""

from mongoengine import (
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
from models.booking.documents import Appointment
from models.clock import utcnow

PAYMENT_STATUSES = ("pending", "processing", "succeeded", "failed", "canceled", "refunded")

# --- No-show protection (issue 27): a Payment's kind. "visit" is the price (online, or at the desk:
# the rest after a deposit), "deposit" the part paid online at booking, and the fees are charged to
# the card on file. One Payment per appointment and kind (a unique index). A document written
# before kinds existed has none: it is the visit's.
PAYMENT_KINDS = ("visit", "deposit", "late_cancel_fee", "no_show_fee")
FEE_KINDS = ("late_cancel_fee", "no_show_fee")
# The appointment's payment taken when booking (online: the price or its deposit).
UPFRONT_KINDS = ("visit", "deposit", None)


class Refund(EmbeddedDocument):
    """One refund against a payment."""

    stripe_refund = StringField()
    amount = IntField(required=True, min_value=1)
    status = StringField(default="pending")
    created_at = DateTimeField(default=utcnow)
    reason = StringField(default="")


class Dispute(EmbeddedDocument):
    """A chargeback the patient's bank opened on a payment (Stripe's `charge.dispute.created`)."""

    stripe_dispute = StringField(required=True)
    amount = IntField(required=True, min_value=0)
    reason = StringField(default="", max_length=60)
    opened_at = DateTimeField(required=True)
    # `charge.dispute.closed`: the bank's decision, "won" (the clinic keeps the money), "lost" (the
    # bank gave it back to the patient) or "warning_closed" (an inquiry that became no chargeback).
    outcome = StringField(default="", max_length=30)
    closed_at = DateTimeField()


class Payment(Document):
    """The money side of an appointment, mirrored from Stripe."""

    appointment = ReferenceField(Appointment, required=True)
    patient = ReferenceField(Patient, required=True)
    amount = IntField(required=True, min_value=0)
    currency = StringField(required=True)
    status = StringField(required=True, choices=PAYMENT_STATUSES, default="pending")
    flow = StringField(choices=("elements", "checkout"), default="elements")
    stripe_payment_intent = StringField()
    stripe_checkout_session = StringField()
    # How the money came: online through Stripe, or taken at the front desk (models/desk_payments).
    method = StringField(choices=("online", "cash", "card_terminal"), default="online")
    paid_at = DateTimeField()  # set for desk payments
    amount_refunded = IntField(default=0, min_value=0)
    refunds = EmbeddedDocumentListField(Refund)
    # Set when Stripe's money did not match what the Payment asks for (refunded; staff should look).
    flag = StringField(default="", max_length=300)
    # --- No-show protection (issue 27): the kind (see PAYMENT_KINDS); a fee's state beyond Stripe's.
    kind = StringField(choices=PAYMENT_KINDS, default="visit")
    # "" while charging; "authentication_required" (the patient was emailed a pay link), "no_card",
    # "declined", "waived" (staff, with `waived_reason`): what staff see on a fee that is due.
    fee_state = StringField(default="", max_length=40)
    waived_reason = StringField(default="", max_length=300)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    # Issue 31 (faster reconciliation): set when a card confirmation was sent to Stripe but its
    # answer (or the re-fetch after it) did not arrive; the next sweep or worker pass re-syncs the
    # payment at once, not after STUCK_AFTER, and clears it.
    resync_due = DateTimeField()
    # Issue 28 (a course paid up front): the series id when this Payment is one visit's share of a
    # course paid with one PaymentIntent (or Checkout Session) that every share follows.
    course = ObjectIdField()
    # Set by the ledger alone (`_mark_disputed`) when the patient's bank disputes the charge: staff
    # see "Disputed" on the home page, the Payments list and the patient's page, and answer it in Stripe.
    dispute = EmbeddedDocumentField(Dispute)
    # Issue 24: audit events carried with a guarded status change until copied (models/audit.py).
    audit_pending = ListField(DictField())
    meta = {
        "collection": "payments",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["appointment", "kind"], "unique": True, "name": "appointment_kind"},
            {"fields": ["stripe_payment_intent"], "sparse": True},
            {"fields": ["stripe_checkout_session"], "sparse": True},
            ("status", "updated_at"),
            {"fields": ["resync_due"], "sparse": True},  # issue 31
            {"fields": ["course"], "sparse": True},  # issue 28
            {"fields": ["dispute.opened_at"], "sparse": True},  # the home page's open disputes
            {"fields": ["audit_pending._id"], "sparse": True},  # issue 24: audit events not yet copied
        ],
    }


class StripeEvent(Document):
    """A Stripe webhook event, stored once by its id."""

    event_id = StringField(required=True, unique=True)
    type = StringField(required=True)
    object_id = StringField()
    created = DateTimeField()
    received_at = DateTimeField(default=utcnow)
    processed_at = DateTimeField()
    outcome = StringField(default="received")
    meta = {"collection": "stripe_events", "auto_create_index": False,
            "indexes": ["-received_at", "object_id"]}
