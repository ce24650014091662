"""The messages' document: every email is an `OutboxMessage` in MongoDB before the sweep sends it."""

from mongoengine import (
    DateTimeField,
    DictField,
    Document,
    IntField,
    ObjectIdField,
    StringField,
)

from models.clock import utcnow

KINDS = ("confirmed", "receipt", "cancelled", "rescheduled", "reminder", "password_reset",
         "invitation", "waitlist_offer",
         # No-show protection (issue 27): a fee was charged; a fee needs the patient to pay it on-line.
         "fee_charged", "fee_due")


APPOINTMENT_KINDS = ("confirmed", "receipt", "cancelled", "rescheduled", "reminder")
TOKEN_KINDS = ("password_reset", "invitation")  # carry a set-password link


STATUSES = ("queued", "sending", "sent", "failed", "dropped")


class OutboxMessage(Document):
    """One email: what it is about, who gets it, where it is in its delivery."""

    kind = StringField(required=True, choices=KINDS)
    subject = StringField(required=True, max_length=100)  # "Appointment:<id>", "PasswordReset:<id>"
    version = IntField(required=True, default=0)
    variant = StringField(default="", max_length=20)
    to = StringField(required=True, max_length=254)
    appointment = ObjectIdField()
    patient = ObjectIdField()
    context = DictField()
    status = StringField(required=True, choices=STATUSES, default="queued")
    due_at = DateTimeField(required=True)
    expires_at = DateTimeField()
    attempts = IntField(default=0)
    last_error = StringField(default="", max_length=500)
    drop_reason = StringField(default="", max_length=200)
    claimed_by = StringField()
    lease_until = DateTimeField()
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField()
    meta = {
        "collection": "outbox",
        "auto_create_index": False,
        "indexes": [
            {"fields": ("kind", "subject", "version", "variant"), "unique": True},
            ("status", "due_at"),
            ("status", "lease_until"),
            "-created_at",
            "appointment",
        ],
    }

    def __str__(self):
        return f"{self.kind} to {self.to}"
