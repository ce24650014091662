"""The accounts' documents: patients, staff users and the set-password links."""

from mongoengine import (
    BooleanField,
    ListField,
    DateField,
    DateTimeField,
    Document,
    IntField,
    ObjectIdField,
    ReferenceField,
    StringField,
)

from models.catalog.documents import Provider
from models.clock import utcnow

ROLES = ("admin", "reception", "provider")
# Callers added at the desk without an email get a unique address in this reserved domain (RFC
# 6761: nothing can be delivered there), so `Patient.email` stays unique and required.
NO_EMAIL_DOMAIN = "no-email.invalid"


def deliverable(address):
    """True for an email address worth sending to: none in RFC 6761's reserved `.invalid` domain."""
    # Every placeholder lives there (a desk caller's, a dependant's, a merged or an erased record's),
    # so one test keeps them all out of lists, forms and the outbox.
    domain = str(address or "").rpartition("@")[2].lower()
    return bool(address) and domain != "invalid" and not domain.endswith(".invalid")


def patient_channels(patient):
    """[(channel, address)] a patient's messages go to (issue 29): their `contact_by` choice, by
    email when they have a deliverable address, by text when they have a phone (E.164); a patient
    who chose nothing hears by email, or by text when they have no email (a caller booked at the
    desk); one who chose a channel they cannot use (no phone any more) gets the other one."""
    email = patient.email if deliverable(getattr(patient, "email", "")) else ""
    phone = getattr(patient, "phone", "") or ""
    phone = phone if phone.startswith("+") else ""  # only numbers stored in E.164 take texts
    chosen = list(getattr(patient, "contact_by", None) or [])
    if not chosen:
        chosen = ["email"] if email else ["sms"]
    out = [("email", email)] if "email" in chosen and email else []
    if "sms" in chosen and phone:
        out.append(("sms", phone))
    if not out:
        out = [("email", email)] if email else ([("sms", phone)] if phone else [])
    return out


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
    # Text messages (issue 29): how the patient wants to hear from the clinic; empty means "by
    # email, or by text when there is no email" (`patient_channels`).
    contact_by = ListField(StringField(choices=("email", "sms")), default=list)
    # Dependants (issue 28): a person an account holder books for (a child, a parent). They have
    # no sign-in of their own: an undeliverable address and a password hash nothing matches.
    guardian = ReferenceField("Patient")
    has_dependants = BooleanField(default=False)  # set once one is added: spares bookings a query
    # Issue 26 (merging duplicate records): a record merged into another keeps only this pointer to
    # the record that now holds its appointments, payments, waitlist entries and messages.
    merged_into = ObjectIdField()
    merged_at = DateTimeField()
    # --- Card on file (issue 27): the Stripe Customer (made on first need) and what the patient may
    # see of the saved card. Never a card number: Stripe keeps the card, we keep its id and label.
    stripe_customer = StringField(max_length=100)
    card_payment_method = StringField(max_length=100)
    card_brand = StringField(max_length=30, default="")
    card_last4 = StringField(max_length=4, default="")
    card_exp_month = IntField()
    card_exp_year = IntField()
    card_setup = StringField(max_length=100)  # a SetupIntent or setup Checkout Session under way
    meta = {"collection": "patients", "auto_create_index": False, "indexes": ["name", "guardian"]}

    @property
    def contact_channels(self):
        """The channels the patient's messages go by now: ["email"], ["sms"] or both (issue 29)."""
        return [channel for channel, _ in patient_channels(self)]

    def __str__(self):
        # A desk placeholder address is never shown (issue 26).
        return f"{self.name} <{self.email}>" if deliverable(self.email) else self.name


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


class PasswordReset(Document):
    """One emailed set-password link (its token only as a hash)."""

    token_hash = StringField(required=True, unique=True)
    patient = ObjectIdField(required=True)
    purpose = StringField(required=True, choices=("reset", "invitation"), default="reset")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(required=True)
    used_at = DateTimeField()
    meta = {"collection": "password_resets", "auto_create_index": False,
            "indexes": [("patient", "used_at")]}
