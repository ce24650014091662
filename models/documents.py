"""The domain documents and their indexes.

Instants are stored in UTC; schedules are local wall-clock times ("HH:MM") in the clinic's IANA
zone. Money is an integer in minor units plus an ISO currency code.
"""

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mongoengine import (
    BooleanField,
    DateField,
    DateTimeField,
    Document,
    EmailField,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    IntField,
    ListField,
    ReferenceField,
    StringField,
    ValidationError,
)

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
ROLES = ("admin", "reception", "provider")
REFUND_RULES = ("full", "none")
APPOINTMENT_STATUSES = ("held", "confirmed", "checked_in", "completed", "no_show", "cancelled", "expired")
# Statuses whose time is claimed (a held one only until its hold expires).
ACTIVE_STATUSES = ("held", "confirmed", "checked_in")
PAYMENT_STATUSES = ("pending", "processing", "succeeded", "failed", "canceled", "refunded")


def utcnow():
    """The current instant in UTC (only the doors and the CLI call this; rules take `now`)."""
    return datetime.now(timezone.utc)


# Callers added at the desk without an email get a unique address in this reserved domain (RFC
# 6761: nothing can be delivered there), so `Patient.email` stays unique and required.
NO_EMAIL_DOMAIN = "no-email.invalid"


def deliverable(address):
    """True for an email address worth sending to (not a desk placeholder)."""
    return bool(address) and not str(address).lower().endswith("@" + NO_EMAIL_DOMAIN)


def _validate_zone(name):
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not an IANA timezone") from None


def _validate_currency(code):
    if not re.fullmatch(r"[a-z]{3}", code or ""):
        raise ValidationError("currency must be a three-letter ISO code in lower case")


class Clinic(Document):
    """The clinic: its timezone, currency and default policies (one per installation)."""

    name = StringField(required=True, max_length=200)
    timezone = StringField(required=True, default="Europe/London", validation=_validate_zone)
    currency = StringField(required=True, default="gbp", validation=_validate_currency)
    hold_minutes = IntField(default=15, min_value=1, max_value=24 * 60)
    slot_step_minutes = IntField(default=15, min_value=5, max_value=240)
    default_cancellation_hours = IntField(default=24, min_value=0)
    phone = StringField(max_length=50, default="")
    # Per patient, booking online (every door but staff): unpaid holds at once, upcoming appointments.
    max_held = IntField(default=2, min_value=1, max_value=100)
    max_upcoming = IntField(default=6, min_value=1, max_value=1000)
    meta = {"collection": "clinics", "auto_create_index": False}

    @classmethod
    def get(cls):
        """The installation's clinic (the first one)."""
        return cls.objects.order_by("id").first()

    def __str__(self):
        return self.name


class Service(Document):
    """A bookable service with its booking policy."""

    name = StringField(required=True, max_length=200, unique=True)
    description = StringField(max_length=1000, default="")  # shown to patients on the booking page
    duration_minutes = IntField(required=True, min_value=5, max_value=8 * 60)
    price = IntField(required=True, min_value=0)  # minor units
    currency = StringField(required=True, default="gbp", validation=_validate_currency)
    buffer_before_minutes = IntField(default=0, min_value=0, max_value=240)
    buffer_after_minutes = IntField(default=0, min_value=0, max_value=240)
    min_notice_minutes = IntField(default=60, min_value=0)
    horizon_days = IntField(default=60, min_value=1, max_value=730)
    cancellation_window_hours = IntField(default=24, min_value=0)
    refund_rule = StringField(default="full", choices=REFUND_RULES)
    active = BooleanField(default=True)
    # Hours before the start at which a reminder email goes out (none if booked inside one).
    reminder_hours = ListField(IntField(min_value=1, max_value=24 * 14), default=lambda: [24, 2])
    meta = {"collection": "services", "auto_create_index": False, "indexes": ["active"]}

    def clean(self):
        """Durations and buffers sit on the 5-minute grid that time claims use."""
        for field in ("duration_minutes", "buffer_before_minutes", "buffer_after_minutes"):
            if (getattr(self, field) or 0) % 5:
                raise ValidationError(f"{field} must be a multiple of 5", field_name=field)

    def __str__(self):
        return self.name


class Provider(Document):
    """A clinician who delivers services."""

    name = StringField(required=True, max_length=200)
    email = EmailField(max_length=254)
    services = ListField(ReferenceField(Service))
    active = BooleanField(default=True)
    meta = {"collection": "providers", "auto_create_index": False, "indexes": ["services", "active"]}

    def __str__(self):
        return self.name


class Break(EmbeddedDocument):
    """A break inside one day's working hours."""

    start = StringField(required=True, regex=HHMM.pattern)
    end = StringField(required=True, regex=HHMM.pattern)

    def clean(self):
        """A break ends after it starts."""
        if self.start and self.end and self.end <= self.start:
            raise ValidationError("a break must end after it starts")


class DayHours(EmbeddedDocument):
    """Working hours for one weekday, local wall-clock time."""

    weekday = IntField(required=True, min_value=0, max_value=6)  # 0 = Monday
    start = StringField(required=True, regex=HHMM.pattern)
    end = StringField(required=True, regex=HHMM.pattern)
    breaks = EmbeddedDocumentListField(Break)

    def clean(self):
        """Hours end after they start and breaks sit inside them."""
        if self.start and self.end and self.end <= self.start:
            raise ValidationError("working hours must end after they start")
        for brk in self.breaks or []:
            if brk.start < self.start or brk.end > self.end:
                raise ValidationError("a break must lie inside the working hours")


class DateOverride(EmbeddedDocument):
    """Replaces the weekly hours on one local date (no intervals means closed)."""

    date = DateField(required=True)
    intervals = ListField(ListField(StringField(regex=HHMM.pattern), max_length=2))


class Schedule(Document):
    """A provider's weekly schedule with breaks and date overrides."""

    provider = ReferenceField(Provider, required=True, unique=True)
    days = EmbeddedDocumentListField(DayHours)
    overrides = EmbeddedDocumentListField(DateOverride)
    meta = {"collection": "schedules", "auto_create_index": False}


class TimeOff(Document):
    """A provider's absence, as UTC instants."""

    provider = ReferenceField(Provider, required=True)
    start = DateTimeField(required=True)
    end = DateTimeField(required=True)
    reason = StringField(max_length=200, default="")
    meta = {"collection": "time_off", "auto_create_index": False,
            "indexes": [("provider", "start", "end")]}

    def clean(self):
        """Time off ends after it starts."""
        if self.start and self.end and self.end <= self.start:
            raise ValidationError("time off must end after it starts")


class Patient(Document):
    """A patient who books through the portal."""

    email = StringField(required=True, max_length=254, unique=True)  # normalised lower case
    name = StringField(required=True, max_length=200)
    phone = StringField(max_length=50, default="")
    date_of_birth = DateField()  # optional; reception finds callers by it
    password_hash = StringField(required=True)
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    # Tokens carry the generation they were issued in; bumping it (password change) revokes them all.
    token_generation = IntField(default=0)
    meta = {"collection": "patients", "auto_create_index": False, "indexes": ["name"]}

    def __str__(self):
        return f"{self.name} <{self.email}>"


class StaffUser(Document):
    """A member of clinic staff who signs in to the back office."""

    email = StringField(required=True, max_length=254, unique=True)
    name = StringField(max_length=200, default="")
    password_hash = StringField(required=True)
    role = StringField(required=True, choices=ROLES)
    provider = ReferenceField(Provider)  # for role "provider": whose schedule they manage
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    session_version = IntField(default=0)  # bumped to end every session of this user
    meta = {"collection": "staff_users", "auto_create_index": False}

    # Flask-Login's user protocol.
    @property
    def is_authenticated(self):
        return True

    @property
    def is_active(self):
        return bool(self.active)

    @property
    def is_anonymous(self):
        return False

    def get_id(self):
        """The id Flask-Login keeps in the session, tied to the session version."""
        return f"{self.id}:{self.session_version}"

    def __str__(self):
        return f"{self.name or self.email} ({self.role})"


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
    booked_by = StringField(default="patient")  # "patient" or "staff:<id>"
    override = BooleanField(default=False)  # staff booked over a conflict, audited
    cancel_reason = StringField(max_length=500, default="")
    notes = StringField(max_length=2000, default="")
    # Bumped by every change of status or time; queued email for an older version is dropped.
    version = IntField(default=0)
    meta = {
        "collection": "appointments",
        "auto_create_index": False,
        "indexes": [
            ("provider", "block_start"),
            ("patient", "start"),
            ("status", "hold_expires_at"),
            "start",
        ],
    }


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


class Refund(EmbeddedDocument):
    """One refund against a payment."""

    stripe_refund = StringField()
    amount = IntField(required=True, min_value=1)
    status = StringField(default="pending")
    created_at = DateTimeField(default=utcnow)
    reason = StringField(default="")


class Payment(Document):
    """The money side of an appointment, mirrored from Stripe."""

    appointment = ReferenceField(Appointment, required=True, unique=True)
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
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    meta = {
        "collection": "payments",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["stripe_payment_intent"], "sparse": True},
            {"fields": ["stripe_checkout_session"], "sparse": True},
            ("status", "updated_at"),
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


class AuditEvent(Document):
    """An append-only record of who read or changed what (never the data itself)."""

    at = DateTimeField(default=utcnow, required=True)
    actor = StringField(required=True)  # "patient:<id>", "staff:<id>", "stripe", "system", "anonymous"
    action = StringField(required=True)
    record = StringField(default="")  # "Appointment:<id>"
    outcome = StringField(default="ok")
    request_id = StringField(default="")
    ip = StringField(default="")
    meta = {"collection": "audit_events", "auto_create_index": False,
            "indexes": ["-at", ("actor", "-at"), ("record", "-at")]}


ALL_DOCUMENTS = (Clinic, Service, Provider, Schedule, TimeOff, Patient, StaffUser, Appointment,
                 TimeClaim, Payment, StripeEvent, AuditEvent)


def ensure_indexes():
    """Create every document's indexes now (MongoEngine would build them lazily otherwise)."""
    for document in ALL_DOCUMENTS:
        document.ensure_indexes()
    from models.outbox import ensure_outbox_indexes  # the email outbox and reset links

    ensure_outbox_indexes()
