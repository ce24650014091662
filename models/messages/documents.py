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
         # (Texts, issue 29, say "fee_due" too.)
         "fee_charged", "fee_due")
# Clinic profile and closures (issue 25): a closure's notice to a patient booked in it.
KINDS += ("closure_notice",)
# No-show protection: an undone no-show's fee was refunded, or is no longer due (issue 27).
KINDS += ("fee_returned",)


APPOINTMENT_KINDS = ("confirmed", "receipt", "cancelled", "rescheduled", "reminder")
TOKEN_KINDS = ("password_reset", "invitation")  # carry a set-password link


STATUSES = ("queued", "sending", "sent", "failed", "dropped")

# Text messages (issue 29): the kinds that also go by text, and the channels.
SMS_KINDS = ("confirmed", "reminder", "cancelled", "rescheduled", "waitlist_offer", "fee_due",
             "closure_notice")  # a closure over the visit (issue 25), for patients who chose texts
CHANNELS = ("email", "sms")
SENT_BODY_MAX = 4000  # characters of a sent message's wording kept (an email's plain text runs 0.5–2 k)
SMS_VARIANT = "sms"  # a text's variant ends with "/sms", so it is a message of its own under the unique key


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
    # Text messages (issue 29): "sms" for a text (`to` is then an E.164 number); email otherwise
    # (messages written before it have no channel, and are email). `provider_id`: the SMS provider's sid.
    channel = StringField(choices=CHANNELS, default="email")
    provider_id = StringField(max_length=64)
    # The wording as it left (issue 29, review B3): a text's body, an email's subject and plain text,
    # written with `status="sent"` by the sender (`delivery.as_sent`: secrets hidden, at most
    # SENT_BODY_MAX characters), so the Outbox shows what the patient got even after the visit
    # changed. Erasure removes both (models/privacy.py).
    sent_subject = StringField(max_length=200)
    sent_body = StringField(max_length=SENT_BODY_MAX)
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


class SmsOptOut(Document):
    """A number that replied STOP (issue 29): no text goes to it until it replies START."""

    phone = StringField(required=True, unique=True, max_length=20)  # E.164
    at = DateTimeField(default=utcnow)
    keyword = StringField(max_length=20, default="STOP")
    meta = {"collection": "sms_opt_outs", "auto_create_index": False}
