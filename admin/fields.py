"""Form fields and column formatters that make the back office read like a clinic's: money as
"£60.00" (the one `models.formatting.money` the portal and the emails use too), local times with their zone named, statuses
and stored codes as words (`CODE_WORDS`), yes/no settings as "Yes"/"No", names instead of ids."""

from datetime import datetime

from markupsafe import Markup, escape
from wtforms import StringField, ValidationError
from wtforms.fields import DateTimeLocalField, EmailField

from models.accounts import normalise_email
from models.accounts.phones import display_phone
from models.accounts.users import clean_name
from models.booking.documents import WAITLIST_OFFER
from models.errors import DomainError

from models import clock
from models.formatting import human_time, money, parse_money, plain_amount
from models.status_words import status_words

# Formats accepted for a local date-time: the browser's picker sends the first one; the others are
# what people type when the picker is missing (and what older tests and scripts send).
LOCAL_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


def money_formatter(field, currency_field="currency"):
    """A column formatter for an amount in minor units, with its record's currency."""

    def formatter(view, context, model, name):
        value = getattr(model, field, None)
        return money(value, getattr(model, currency_field, None)) if value is not None else ""

    return formatter


# Stored codes as staff read them, one table for every back-office view (statuses of appointments,
# payments and the waitlist have theirs in models/status_words.py). A code not listed reads as its
# own words ("some_code" -> "Some code"), so a code another feature adds never shows raw.
CODE_WORDS = {
    "role": {"admin": "Admin", "reception": "Reception", "provider": "Clinician"},
    "booked_by": {"patient": "Patient", "waitlist": "Patient (accepted a waitlist offer)",
                  WAITLIST_OFFER: "Waitlist offer (not accepted yet)"},
    "payment_kind": {"visit": "Visit", "deposit": "Deposit", "late_cancel_fee": "Late-cancellation fee",
                     "no_show_fee": "No-show fee"},
    "fee_state": {"authentication_required": "Patient asked to approve the charge", "no_card": "No card on file",
                  "declined": "Card declined", "waived": "Waived"},
    "refund_rule": {"full": "Full refund", "none": "No refund"},
    "outbox_status": {"queued": "Queued", "sending": "Sending", "sent": "Sent", "failed": "Failed",
                      "dropped": "Dropped"},
    "refund_status": {"succeeded": "refunded", "pending": "refund pending", "failed": "refund failed"},
    "flow": {"elements": "Card form", "checkout": "Stripe Checkout"},
    "channel": {"email": "Email", "sms": "Text"},
    "payment_state": {"free": "Free", "at_desk": "To pay at the desk", "none": "Not paid"},
}


def code_words(table, value):
    """A stored code as staff read it, from `CODE_WORDS[table]`: ("payment_kind", "visit") -> "Visit"."""
    if value is None or value == "":
        return ""
    return CODE_WORDS.get(table, {}).get(value) or str(value).replace("_", " ").capitalize()


def words(table, field=None):
    """A column formatter: the column's (or `field`'s) stored code in words, by `code_words`."""

    def formatter(view, context, model, name):
        return code_words(table, getattr(model, field or name, None))

    return formatter


def phone_formatter(view, context, model, name):
    """A column formatter: a phone number as people say it ("07700 900123"), as every page shows it."""
    return display_phone(getattr(model, name, None))


def yes_no(value):
    """A yes/no setting in words: True -> "Yes", False (or None) -> "No"."""
    return "Yes" if value else "No"


def words_formatter(view, context, model, name):
    """A status as staff read it, from the one mapping (models/status_words.py): "Awaiting payment",
    "Cancelled by the patient"; other slugs as words ("checked_in" -> "Checked in")."""
    value = getattr(model, name, None)
    if not value:
        return ""
    kind = {"Payment": "payment", "WaitlistEntry": "waitlist"}.get(type(model).__name__, "appointment")
    if name != "status" or type(model).__name__ not in ("Appointment", "Payment", "WaitlistEntry"):
        return code_words(name, value)
    patient = getattr(getattr(model, "patient", None), "name", "") if kind == "appointment" else ""
    return status_words(value, getattr(model, "cancel_reason", ""), audience="staff", kind=kind, patient=patient)


def names_formatter(view, context, model, name):
    """A list of referenced documents as their names, comma separated."""
    return ", ".join(str(item) for item in (getattr(model, name, None) or []))


class MoneyField(StringField):
    """Money typed as "55.00" (or "55"), stored in minor units (5500)."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("description", "An amount like 55.00")
        kwargs.setdefault("render_kw", {"inputmode": "decimal", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)

    def process_formdata(self, valuelist):
        """Parse "55.00" into 5500; a bad amount is an error on this field."""
        if not valuelist:
            return
        try:
            self.data = parse_money(valuelist[0])
        except ValueError:
            self.data = None
            raise ValueError("Enter an amount like 55.00 (zero or more, at most two decimals).") from None
        if self.data is not None and self.data < 0:
            self.data = None
            raise ValueError("Enter an amount like 55.00 (zero or more, at most two decimals).")

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        if self.data is None or self.data == "":
            return ""
        return plain_amount(self.data)


class HoursListField(StringField):
    """A list of whole hours typed as "24, 2" (reminder lead times), stored as [24, 2].

    One labelled text input, instead of Flask-Admin's add/remove rows (unlabelled inputs and
    inline handlers, which the back office's CSP and axe both refuse). Empty means no reminders.
    """

    def __init__(self, label=None, validators=None, max_hours=24 * 14, **kwargs):
        self.max_hours = max_hours
        kwargs.setdefault("description", "Hours before the appointment, separated by commas, e.g. 24, 2.")
        kwargs.setdefault("render_kw", {"inputmode": "numeric", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)

    def process_formdata(self, valuelist):
        """Parse "24, 2" into [24, 2]; anything else is an error on this field."""
        if not valuelist:
            return
        parts = [p.strip() for p in (valuelist[0] or "").replace(";", ",").split(",") if p.strip()]
        if not all(p.isascii() and p.isdigit() and 1 <= int(p) <= self.max_hours for p in parts):
            self.data = None
            raise ValueError(f"Enter whole hours from 1 to {self.max_hours}, separated by commas, e.g. 24, 2.")
        self.data = sorted({int(p) for p in parts}, reverse=True)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return ", ".join(str(h) for h in (self.data or []))


class ClinicEmailField(EmailField):
    """An email input checked by the same rule as sign-up (`normalise_email`), stored normalised.

    WTForms' own Email validator (email_validator) refuses the reserved `.test` domains that demo
    and test data use; the clinic's rule is the one every door already applies.
    """

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, list(validators or []) + [self._check], **kwargs)

    @staticmethod
    def _check(form, field):
        if not field.data:
            return
        try:
            field.data = normalise_email(field.data)
        except DomainError as exc:
            raise ValidationError(exc.message) from None


class NameField(StringField):
    """A name typed by staff, checked and stored by the rule every door uses (`clean_name`): trimmed,
    one line. A line break in a name would start a new line (a "Bcc:" look-alike) in an email."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, list(validators or []) + [self._check], **kwargs)

    @staticmethod
    def _check(form, field):
        if field.data is None:
            return
        try:
            field.data = clean_name(field.data, field.short_name, required=bool(field.flags.required))
        except DomainError as exc:
            raise ValidationError(exc.message) from None


class LocalDateTimeField(DateTimeLocalField):
    """A date and time picker (`<input type="datetime-local">`) in the clinic's zone."""

    def __init__(self, label=None, validators=None, format=None, **kwargs):
        super().__init__(label, validators, format=format or LOCAL_DATETIME_FORMATS, **kwargs)
        self.format = format or LOCAL_DATETIME_FORMATS

    def _value(self):
        if self.raw_data:
            return " ".join(self.raw_data)
        return self.data.strftime("%Y-%m-%dT%H:%M") if isinstance(self.data, datetime) else ""

    def process_formdata(self, valuelist):
        """Accept the picker's value or a typed one; the error says what to type."""
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Enter a date and time like 2027-07-01 09:00.") from None


def to_local_naive(value, zone):
    """A stored UTC instant as a naive local date-time, for a form field."""
    return clock.local(value, zone).replace(tzinfo=None) if isinstance(value, datetime) else value


def appointment_text(appointment, zone):
    """An appointment as reception names it: "General consultation with Dr Shah, <local time>"."""
    if appointment is None:
        return ""
    return (f"{getattr(appointment.service, 'name', '?')} with {getattr(appointment.provider, 'name', '?')}, "
            f"{human_time(appointment.start, zone)}")


def link(url, text):
    """An escaped link for a list cell."""
    return Markup('<a href="{}">{}</a>').format(url, escape(text))
