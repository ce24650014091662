"""The catalog's documents: the clinic, its services, providers, weekly schedules and time off.

Schedules are local wall-clock times ("HH:MM") in the clinic's IANA zone; money is an integer in
minor units plus an ISO currency code.
"""

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mongoengine import (
    BinaryField,
    BooleanField,
    DateField,
    DateTimeField,
    Document,
    EmailField,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    IntField,
    ListField,
    ReferenceField,
    StringField,
    ValidationError,
)

from models.catalog.policy import policy_of
from models.formatting import DEFAULT_LOCALE, LOCALE_NAMES
from models.catalog.questions import stamp_questions

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
REFUND_RULES = ("full", "none")


def _validate_zone(name):
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not an IANA timezone") from None


def _validate_locale(code):
    if code not in LOCALE_NAMES:
        raise ValidationError(f"{code!r} is not a locale the clinic can use; use one of {', '.join(LOCALE_NAMES)}")


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
    # Clinicians' calendar feeds (issue 29): patients' full names in feed events, or initials only.
    feed_shows_names = BooleanField(default=False)
    # --- Clinic profile and closures (issue 25): who the clinic is, shown on every page and email.
    address = StringField(max_length=500, default="")
    email = EmailField(max_length=254)
    website = StringField(max_length=300, default="", regex=r"^(https?://\S+)?$")
    brand_colour = StringField(max_length=7, default="#0b6e4f", regex=r"^#[0-9a-fA-F]{6}$")
    logo_sha = StringField(max_length=64, default="")  # the ClinicLogo's hash: the logo URL's version
    holiday_region = StringField(max_length=20, default="")  # e.g. "GB-ENG"; empty: no public holidays
    reopened_holidays = ListField(DateField())  # public holidays the clinic opens on after all
    # How dates, times and money are written for people (models/formatting.py); a clinic saved before
    # the setting existed reads as en_GB, as it always was written.
    locale = StringField(max_length=10, default=DEFAULT_LOCALE, validation=_validate_locale)
    meta = {"collection": "clinics", "auto_create_index": False}

    @classmethod
    def get(cls):
        """The installation's clinic (the first one)."""
        return cls.objects.order_by("id").first()

    def __str__(self):
        return self.name


# --- Intake questions (issue 28) -----------------------------------------------------------------
QUESTION_KINDS = ("text", "long_text", "choice", "yes_no", "date")
# The kinds in words, as (value, label) choices: the back office's question builder shows these
# (Flask-Admin builds an embedded form's select from the field's own choices, not form_choices).
QUESTION_KIND_CHOICES = (("text", "Short text"), ("long_text", "Long text"), ("choice", "Choice"),
                         ("yes_no", "Yes / no"), ("date", "Date"))


class Question(EmbeddedDocument):
    """One intake question a service asks when it is booked (ordered by `position`).

    `version` goes up whenever the wording, kind or choices change (`Service.clean`), so an answer
    stored with an older version still reads with the label it was given under.
    """

    qid = StringField(max_length=24, default="")  # stable id, kept across edits
    label = StringField(required=True, max_length=200)
    kind = StringField(required=True, choices=QUESTION_KIND_CHOICES, default="text")
    required = BooleanField(default=False)
    help_text = StringField(max_length=300, default="")
    choices = ListField(StringField(max_length=100), default=list)
    position = IntField(min_value=0, max_value=999)  # none given: after the last (`stamp_questions`)
    version = IntField(default=1, min_value=1)
    fingerprint = StringField(max_length=64, default="")

    def clean(self):
        """A choice question offers at least two choices; only a choice question has choices."""
        self.choices = [c.strip() for c in (self.choices or []) if c and c.strip()]
        if self.kind == "choice" and len(self.choices) < 2:
            raise ValidationError("a choice question needs at least two choices", field_name="choices")
        if self.kind != "choice":
            self.choices = []


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
    # Recurring series (issue 28): patients and staff may book this service as a series of visits.
    repeat_allowed = BooleanField(default=False)
    # --- No-show protection (issue 27): the policy a patient agrees to when booking. Money in minor
    # units; 0 means none. The deposit is an amount, or a percentage of the price (never both).
    deposit_amount = IntField(default=0, min_value=0)
    deposit_percent = IntField(default=0, min_value=0, max_value=100)
    # Charged when the patient cancels inside `cancellation_window_hours` (which, with a fee set,
    # no longer stops them cancelling online: they may, and the fee applies).
    late_cancel_fee = IntField(default=0, min_value=0)
    no_show_fee = IntField(default=0, min_value=0)
    # Nothing taken online at booking: the visit is paid at the clinic, a card on file is required.
    pay_at_clinic = BooleanField(default=False)
    # Intake questions (issue 28): asked when booked, answered once per appointment.
    # A plain ListField of embedded documents: Flask-Admin's form builder handles only that type name.
    questions = ListField(EmbeddedDocumentField(Question), default=list)
    meta = {"collection": "services", "auto_create_index": False, "indexes": ["active"]}

    def clean(self):
        """Durations and buffers sit on the 5-minute grid that time claims use; questions get ids and versions."""
        for field in ("duration_minutes", "buffer_before_minutes", "buffer_after_minutes"):
            if (getattr(self, field) or 0) % 5:
                raise ValidationError(f"{field} must be a multiple of 5", field_name=field)
        # No-show protection: one way to state a deposit, and no fee above the price.
        if (self.deposit_amount or 0) and (self.deposit_percent or 0):
            raise ValidationError("give the deposit as an amount or as a percentage, not both",
                                  field_name="deposit_amount")
        for field in ("deposit_amount", "late_cancel_fee", "no_show_fee"):
            if (getattr(self, field) or 0) > (self.price or 0):
                raise ValidationError(f"{field.replace('_', ' ')} cannot be above the price",
                                      field_name=field)
        stamp_questions(self.questions)
        self.questions = self.ordered_questions()  # stored in the order patients see them

    @property
    def policy(self):
        """No-show protection: this service's deposit and fees (`models.catalog.policy.Policy`)."""
        return policy_of(self)

    def ordered_questions(self):
        """The intake questions in the order patients see them."""
        return sorted(self.questions or [], key=lambda q: (q.position or 0))

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


# --- Clinic profile and closures (issue 25) ---------------------------------------------------


class ClinicLogo(Document):
    """The clinic's logo image, checked on upload (PNG, JPEG or SVG, at most 512 KB)."""

    sha256 = StringField(required=True, max_length=64, unique=True)
    content_type = StringField(required=True, choices=("image/png", "image/jpeg", "image/svg+xml"))
    data = BinaryField(required=True, max_bytes=512 * 1024)
    uploaded_at = DateTimeField()
    meta = {"collection": "clinic_logos", "auto_create_index": False}


class Closure(Document):
    """A time the whole clinic is closed (a whole or part day), entered by staff with a reason; UTC."""

    start = DateTimeField(required=True)
    end = DateTimeField(required=True)
    reason = StringField(required=True, max_length=200)
    created_by = StringField(max_length=254, default="")
    meta = {"collection": "closures", "auto_create_index": False, "indexes": [("start", "end")]}

    def clean(self):
        """A closure ends after it starts."""
        if self.start and self.end and self.end <= self.start:
            raise ValidationError("a closure must end after it starts")

    def __str__(self):
        return self.reason
