"""The patient API's schemas (marshmallow): they check what comes in, shape what goes out, and are
the OpenAPI document at /api/openapi.json (flask-smorest turns them into it).

Inputs ignore keys they do not name, as the API always has. An empty required string counts as
missing. Outputs name every field they send, so the schemathesis run catches drift.
"""

from datetime import date, datetime, timedelta, timezone

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_dump, validate

from models.booking.rules import effective_status
from models import clock
from models.documents import utcnow
from models.booking.documents import APPOINTMENT_STATUSES, online_amount
from models.booking.waitlist import WAITLIST_STATUSES
from models.errors import ValidationFailed

OBJECT_ID = r"^[0-9a-fA-F]{24}$"
INSTANT_HELP = "must be an ISO 8601 time with an offset, e.g. 2026-11-30T09:00:00+00:00"
DATE_TIME = {"format": "date-time"}


# --- Fields ----------------------------------------------------------------------------------

class Text(fields.String):
    """A string; a required one may not be empty (the API always treated "" as missing)."""

    default_error_messages = {"required": "is required", "null": "is required", "invalid": "must be a string"}

    def __init__(self, **kwargs):
        if kwargs.get("required"):
            kwargs.setdefault("validate", validate.Length(min=1, error="is required"))
        else:
            kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)


class Id(fields.String):
    """A document id: a stored ObjectId (or a reference) out, a 24-hex-digit string in."""

    default_error_messages = {"required": "is required", "null": "is required", "invalid": "is not a valid id"}

    def __init__(self, **kwargs):
        kwargs.setdefault("validate", validate.Regexp(OBJECT_ID, error="is not a valid id"))
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(getattr(value, "id", value))


def _instant(value):
    """An aware datetime from ISO 8601 text with an offset, or None."""
    try:
        parsed = datetime.fromisoformat(value)
        # Years at the ends of the calendar overflow once converted to UTC.
        parsed.astimezone(timezone.utc) + timedelta(days=800)
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_instant(value, name="start"):
    """An ISO 8601 instant with an offset, or ValidationFailed (422); the pages' forms use it too."""
    parsed = _instant(value)
    if parsed is None:
        raise ValidationFailed(f"'{name}' {INSTANT_HELP}.", fields={name: "invalid time"})
    return parsed


def parse_instead(form):
    """A series page's picked alternatives, `instead:<regular start>` → chosen start; 422 on an unreadable one."""
    return {parse_instant(key[len("instead:"):]): parse_instant(value)
            for key, value in form.items() if key.startswith("instead:") and value}


class Instant(fields.String):
    """An instant with an offset (documented as an OpenAPI date-time)."""

    default_error_messages = {"required": "is required", "null": "is required", "invalid": INSTANT_HELP}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", DATE_TIME)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if value == "":
            raise self.make_error("required")
        parsed = _instant(value) if isinstance(value, str) else None
        if parsed is None:
            raise self.make_error("invalid")
        return parsed


class Day(fields.Date):
    """A calendar date like 2026-11-30 (read as Python's `date.fromisoformat` reads it)."""

    default_error_messages = {"required": "is required", "null": "is required",
                              "invalid": "must be a date like 2026-11-30"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None


class WholeNumber(fields.Integer):
    """An integer written in ASCII digits only ("³" and "７" pass int(), not this)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


# --- Inputs ------------------------------------------------------------------------------------

class Body(Schema):
    """A JSON body: keys it does not name are ignored."""

    class Meta:
        unknown = EXCLUDE


class Query(Body):
    """Query arguments: an empty value is a value like any other, so `?service=` is 422 naming the field.

    Dropping empty values made `?provider=` mean "any provider" while the document said an id must
    be 24 hex digits: the fuzzer's empty ids were accepted against the document. Leave a filter out
    to mean "none".
    """


class RegisterBody(Body):
    """Create a patient."""

    email = Text(required=True)
    password = Text(required=True)
    name = Text(required=True)
    phone = Text()
    date_of_birth = Text()  # issue 26: optional, YYYY-MM-DD


class LoginBody(Body):
    """Sign in."""

    email = Text(required=True)
    password = Text(required=True)


class PasswordChangeBody(Body):
    """Change the password."""

    current_password = Text(required=True)
    new_password = Text(required=True)


class ForgotBody(Body):
    """Ask for a password reset link."""

    email = Text(required=True)


class ResetBody(Body):
    """Set a new password with a link's token."""

    # Any JSON value: the rule answers a token that is not one with its own code (invalid_token).
    token = fields.Raw(required=True, metadata={"type": "string"},
                       error_messages={"required": "is required", "null": "is required"})
    password = Text(required=True)


class DeleteBody(Body):
    """Erase the account; the password confirms it."""

    password = Text(required=True)


class ProvidersQuery(Query):
    """Which providers to list."""

    service = Id()


def _within_ten_years(value):
    if abs((value - utcnow().date()).days) > 3660:
        raise ValidationError("must be a date like 2026-11-30, within ten years of today")


class SlotsQuery(Query):
    """Which free times to list."""

    service = Id(required=True)
    provider = Id()
    from_ = Day(data_key="from", validate=_within_ten_years,
                error_messages={"invalid": "must be a date like 2026-11-30, within ten years of today"})
    days = WholeNumber(load_default=7, validate=validate.Range(min=1, max=31, error="must be a whole number "
                                                                                   "from 1 to 31"),
                       error_messages={"invalid": "must be a whole number from 1 to 31"})


class RepeatBody(Body):
    """A recurring series (issue 28): every 1–4 weeks, 2–12 visits, at the first visit's local time."""

    every_weeks = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=4))
    count = fields.Integer(required=True, strict=True, validate=validate.Range(min=2, max=12))
    instead = fields.Dict(keys=Instant(), values=Instant(), metadata={
        "description": "A regular visit's start mapped to the free time accepted in its place"})
    pay = fields.String(load_default="visit", validate=validate.OneOf(("visit", "course"), error='must be "visit" or "course"'),
                        metadata={"description": 'How a paid series is paid: "visit" (each visit on its own, the default) '
                                                 'or "course" (every visit now, one payment for the sum of their prices, '
                                                 'or of their deposits; start it with POST /api/appointments/ID/payment '
                                                 'of any visit)'})


class BookingBody(Body):
    """Book a time."""

    service = Text(required=True)
    provider = Text(required=True)
    start = Instant(required=True)
    repeat = fields.Nested(RepeatBody)  # recurring series (issue 28)
    # No-show protection: the patient agrees to the service's deposit and fees (422 otherwise).
    agree_policy = fields.Boolean(load_default=False)
    # Issue 28: intake answers `{question_id: value}` (checked by the booking action) and who it is for.
    answers = fields.Dict(keys=fields.String(validate=validate.Length(max=64)),
                          values=fields.Raw(allow_none=True, metadata={"type": ["string", "boolean", "null"]}),
                          allow_none=True, validate=validate.Length(max=100),
                          error_messages={"invalid": "must be an object of question ids and answers"})
    for_ = Id(data_key="for", allow_none=True)


class DependantBody(Body):
    """A person the patient books for (issue 28)."""

    name = Text(required=True, validate=validate.Length(min=1, max=200, error="is required (at most 200 characters)"))
    date_of_birth = Day(required=True)


class RescheduleBody(Body):
    """Move an appointment, or this visit and the later ones of its series (issue 28)."""

    start = Instant(required=True)
    provider = Text()
    scope = fields.String(load_default="one", validate=validate.OneOf(("one", "following")), metadata={
        "description": "\"one\": this appointment only. \"following\": this visit and every later visit of its "
                       "series, each moved by the same change of wall-clock time (same local time across clock "
                       "changes), all or nothing; when some dates are not free the answer is 409 "
                       "series_unavailable with `unavailable` and `alternatives`, and nothing moves"})
    instead = fields.Dict(keys=Instant(), values=Instant(), metadata={
        "description": "With scope \"following\": a later visit's regular new start mapped to the free time "
                       "accepted in its place (one of the `alternatives` of a series_unavailable answer)"})


class WaitlistBody(Body):
    """Join the waitlist between two dates in the clinic's zone."""

    service = Text(required=True)
    provider = Text()
    from_ = Day(data_key="from", required=True)
    to = Day(required=True)
    # Issue 28: a dependant's id, as for a booking (someone not on the account: 404).
    for_ = Id(data_key="for", allow_none=True, metadata={"description": "Who waits: one of the patient's "
                                                                         "dependants (GET /api/me/dependants); "
                                                                         "absent: the patient"})


class CardTokenBody(Body):
    """A card tokenised by Stripe.js."""

    token = Text(required=True)


# --- Outputs -------------------------------------------------------------------------------------

class ErrorDetail(Schema):
    """What went wrong."""

    code = fields.String(required=True, metadata={"description": "A stable slug, e.g. slot_taken"})
    message = fields.String(required=True, metadata={"description": "For people"})
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.String(),
                          metadata={"description": "The input fields at fault"})
    # series_unavailable (issue 28): the dates not free, and the nearest free times for each.
    unavailable = fields.List(fields.String(metadata=DATE_TIME))
    alternatives = fields.Dict(keys=fields.String(), values=fields.List(fields.String(metadata=DATE_TIME)))


class ErrorSchema(Schema):
    """Every error answer: `{"error": {"code", "message"}}`."""

    error = fields.Nested(ErrorDetail, required=True)


class PatientSchema(Schema):
    """The signed-in patient's profile."""

    id = Id(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True, metadata={"description": "E.164, e.g. +447700900123"})
    # Text messages (issue 29): how messages reach the patient now.
    contact_by = fields.List(fields.String(validate=validate.OneOf(("email", "sms"))),
                             attribute="contact_channels", dump_only=True)
    date_of_birth = fields.Date(allow_none=True)  # issue 26


class ContactBody(Body):
    """Change how the patient is reached (issue 29): phone (any format; stored E.164), contact_by."""

    phone = fields.String(allow_none=True, validate=validate.Length(max=50))
    contact_by = fields.List(fields.String(validate=validate.OneOf(("email", "sms"))),
                             validate=validate.Length(min=1, max=2))


class MeChangeBody(ContactBody):
    """Change the signed-in patient's profile: phone and contact_by (issue 29), date of birth (issue 26; null or "" clears it)."""

    date_of_birth = Text(allow_none=True)


class PolicySchema(Schema):
    """No-show protection: a service's deposit and fees (minor units; 0 = none) and the window
    inside which cancelling costs the late-cancellation fee."""

    deposit = fields.Integer(required=True)
    late_cancel_fee = fields.Integer(required=True)
    no_show_fee = fields.Integer(required=True)
    cancellation_hours = fields.Integer(required=True)


class PolicyField(fields.Nested):
    """The service's `Policy` value, dumped in the contract's shape."""

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(value.public() if value is not None else None, attr, obj, **kwargs)


class QuestionSchema(Schema):
    """An intake question the service asks when booked (issue 28)."""

    id = fields.String(required=True, attribute="qid")
    label = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("text", "long_text", "choice", "yes_no", "date")))
    required = fields.Boolean(required=True)
    choices = fields.List(fields.String(), required=True)
    help_text = fields.String()


class ServiceSchema(Schema):
    """A bookable service; money in minor units."""

    id = Id(required=True)
    name = fields.String(required=True)
    duration_minutes = fields.Integer(required=True)
    price = fields.Integer(required=True)
    currency = fields.String(required=True)
    repeat_allowed = fields.Boolean(required=True)  # recurring series (issue 28)
    policy = PolicyField(PolicySchema, required=True)
    questions = fields.List(fields.Nested(QuestionSchema), required=True)  # stored in their order


class DependantSchema(Schema):
    """A person the patient books for (issue 28)."""

    id = Id(required=True)
    name = fields.String(required=True)
    date_of_birth = fields.Date(required=True)


class AnswerSchema(Schema):
    """An intake answer as given, with the question's wording then."""

    question = fields.String(required=True)
    label = fields.String(required=True)
    value = fields.String(required=True)


class ProviderSchema(Schema):
    """A provider and the services they offer."""

    id = Id(required=True)
    name = fields.String(required=True)
    services = fields.List(Id(), required=True)


class SlotSchema(Schema):
    """A free time."""

    provider = Id(required=True)
    provider_name = fields.String(required=True)
    start = fields.String(required=True, metadata=DATE_TIME)
    end = fields.String(required=True, metadata=DATE_TIME)


class NamedRef(Schema):
    """Another record, by id and name."""

    id = Id(required=True)
    name = fields.String(required=True)


class AppointmentSchema(Schema):
    """The patient's view of an appointment, times in the clinic's zone."""

    id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(APPOINTMENT_STATUSES))
    start = fields.String(required=True, metadata=DATE_TIME)
    end = fields.String(required=True, metadata=DATE_TIME)
    timezone = fields.String()
    hold_expires_at = fields.String(required=True, allow_none=True, metadata=DATE_TIME)
    amount = fields.Integer(required=True, validate=validate.Range(min=0))
    currency = fields.String(required=True)
    service = fields.Nested(NamedRef, allow_none=True)
    provider = fields.Nested(NamedRef, allow_none=True)
    # Issue 28: who the visit is for (the patient, or one of their dependants) and the intake answers.
    for_ = fields.Nested(NamedRef, data_key="for", attribute="for", allow_none=True)
    answers = fields.List(fields.Nested(AnswerSchema))
    series = Id(allow_none=True)  # the recurring series it belongs to (issue 28), or null
    pay = fields.String(validate=validate.OneOf(("visit", "course")), metadata={
        "description": '"course" when paid (or to be paid) as part of a course paid up front, else "visit"'})


class SeriesInfo(Schema):
    """A recurring series: its id and its shape."""

    id = Id(required=True)
    every_weeks = fields.Integer(required=True)
    count = fields.Integer(required=True)
    pay = fields.String(validate=validate.OneOf(("visit", "course")))
    amount_due = fields.Integer(metadata={"description": "A course paid up front: what its one payment takes "
                                                         "(minor units; 0 when nothing is due online)"})
    currency = fields.String()


class SeriesBookedSchema(Schema):
    """A booked series: every visit, soonest first."""

    series = fields.Nested(SeriesInfo, required=True)
    appointments = fields.List(fields.Nested(AppointmentSchema), required=True)


def cancel_scope(body):
    """The optional `{scope: "one"|"following"}` of a cancellation (no body: "one"), or 422."""
    scope = (body or {}).get("scope", "one") if isinstance(body, dict) or body is None else None
    if scope not in ("one", "following"):
        raise ValidationFailed("'scope' must be \"one\" or \"following\".", fields={"scope": "one or following"})
    return scope


def agree_policy_of(body):
    """The optional `{agree_policy: true|false}` of accepting a waitlist offer (no body: false), or 422."""
    agree = (body or {}).get("agree_policy", False) if isinstance(body, dict) or body is None else None
    if not isinstance(agree, bool):
        raise ValidationFailed("'agree_policy' must be true or false.", fields={"agree_policy": "boolean"})
    return agree


def series_view(series_id, every_weeks, appts, clinic):
    """What SeriesBookedSchema dumps."""
    course = [a for a in appts if getattr(a, "pay_course", False)]
    info = {"id": series_id, "every_weeks": every_weeks, "count": len(appts), "pay": "course" if course else "visit",
            "currency": appts[0].currency if appts else "gbp"}
    if course:
        info["amount_due"] = sum(online_amount(a) for a in course)
    return {"series": info, "appointments": [appointment_view(a, clinic) for a in appts]}


class CardSchema(Schema):
    """No-show protection: the card on file as the patient sees it (never its number)."""

    brand = fields.String(required=True)
    last4 = fields.String(required=True)
    exp_month = fields.Integer(required=True, allow_none=True)
    exp_year = fields.Integer(required=True, allow_none=True)


class CardSetupSchema(Schema):
    """Saving a card: a SetupIntent's secret for Stripe.js, or (Checkout flow) the page to go to."""

    flow = fields.String(required=True, validate=validate.OneOf(("elements", "checkout")))
    client_secret = fields.String(allow_none=True)
    publishable_key = fields.String(allow_none=True)
    setup_intent = fields.String()
    url = fields.String()
    session = fields.String()


class CardRemovedSchema(Schema):
    """The card on file is forgotten."""

    removed = fields.Boolean(required=True)


class MoneyStateSchema(Schema):
    """A refund or a fee of a cancellation: how much, and where it is."""

    kind = fields.String()
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True)


class CancelledSchema(AppointmentSchema):
    """A cancelled appointment, with what was refunded and any late-cancellation fee."""

    refund = fields.Nested(MoneyStateSchema, required=True, allow_none=True)
    fee = fields.Nested(MoneyStateSchema, required=True, allow_none=True)


class FeePaymentSchema(Schema):
    """A fee the patient pays on-line from the emailed link (3-D Secure completed by Stripe.js)."""

    kind = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True)
    client_secret = fields.String(required=True, allow_none=True)
    publishable_key = fields.String(allow_none=True)


def appointment_view(appt, clinic, services=None, providers=None, now=None, people=None):
    """What AppointmentSchema dumps: an appointment with its times in the clinic's zone."""
    tz = clinic.timezone
    service = services.get(appt.service.id) if services else appt.service
    provider = providers.get(appt.provider.id) if providers else appt.provider
    return {"id": appt.id, "status": effective_status(appt, now or utcnow()),
            "start": clock.local_iso(appt.start, tz), "end": clock.local_iso(appt.end, tz),
            "timezone": tz, "hold_expires_at": clock.local_iso(appt.hold_expires_at, tz),
            "amount": appt.amount, "currency": appt.currency, "service": service, "provider": provider,
            "series": getattr(appt, "series", None), "pay": "course" if getattr(appt, "pay_course", False) else "visit",
            "for": people.get(getattr(appt.patient, "id", None)) if people else appt.patient, "answers": list(appt.answers or [])}


class PaymentStartSchema(Schema):
    """How to pay: the PaymentIntent's client secret (elements) or the Checkout Session's URL."""

    flow = fields.String(required=True, validate=validate.OneOf(("elements", "checkout")))
    client_secret = fields.String()
    publishable_key = fields.String(allow_none=True)
    payment_intent = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    url = fields.String()
    session = fields.String()


class PaymentConfirmSchema(Schema):
    """The payment after the card was confirmed; a 3-D Secure step answers requires_action."""

    status = fields.String(required=True)
    intent_status = fields.String(required=True, metadata={"description": "The PaymentIntent's status at Stripe"})
    appointment_status = fields.String(required=True)
    requires_action = fields.Boolean(required=True)
    client_secret = fields.String(metadata={"description": "Only when requires_action"})


class RefundSchema(Schema):
    """A refund of (part of) the payment."""

    amount = fields.Integer(required=True)
    status = fields.String(required=True, allow_none=True)


class PaymentStateSchema(Schema):
    """An appointment's payment as Stripe has it now."""

    appointment = Id(required=True)
    appointment_status = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "The payment's status, or none"})
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    amount_refunded = fields.Integer(required=True)
    refunds = fields.List(fields.Nested(RefundSchema), required=True)


def payment_view(payment, appt, now):
    """What PaymentStateSchema dumps for an appointment's payment (status none when there is none)."""
    return {"appointment": appt.id, "appointment_status": effective_status(appt, now),
            "status": payment.status if payment else "none", "amount": appt.amount, "currency": appt.currency,
            "amount_refunded": payment.amount_refunded if payment else 0,
            "refunds": payment.refunds if payment else []}


class OfferSchema(Schema):
    """A time held for the patient while the offer lasts."""

    start = fields.String(required=True, metadata=DATE_TIME)
    end = fields.String(required=True, metadata=DATE_TIME)
    provider = fields.Nested(NamedRef, required=True)
    expires_at = fields.String(required=True, metadata=DATE_TIME)


class WaitlistEntrySchema(Schema):
    """A waitlist entry, with its offer while it holds a time."""

    id = Id(required=True)
    service = fields.Nested(NamedRef, required=True)
    provider = fields.Nested(NamedRef, required=True, allow_none=True)
    from_ = fields.String(data_key="from", attribute="from", required=True, metadata={"format": "date"})
    to = fields.String(required=True, metadata={"format": "date"})
    timezone = fields.String()
    status = fields.String(required=True, validate=validate.OneOf(WAITLIST_STATUSES))
    offer = fields.Nested(OfferSchema, required=True, allow_none=True)
    note = fields.String()
    # Issue 28: whose entry it is (the patient, or one of their dependants); the offer is theirs.
    for_ = fields.Nested(NamedRef, data_key="for", attribute="for", allow_none=True)


class RefreshedSchema(Schema):
    """A new access cookie was set."""

    refreshed = fields.Boolean(required=True)


class SignedOutSchema(Schema):
    """The session's tokens are revoked."""

    signed_out = fields.Boolean(required=True)


class PasswordChangedSchema(Schema):
    """The password is changed; other sessions ended."""

    changed = fields.Boolean(required=True)


class ResetSentSchema(Schema):
    """The same answer whatever the email."""

    message = fields.String(required=True)


class PasswordResetSchema(Schema):
    """The password is set; every session ended."""

    reset = fields.Boolean(required=True)


class ErasedSchema(Schema):
    """The patient's personal data is replaced; sign-in has ended."""

    erased = fields.Boolean(required=True)


class Record(Schema):
    """A stored record as exported: the fields named here, and every other field it holds."""

    class Meta:
        unknown = INCLUDE  # documented as additionalProperties: true

    id = fields.String(required=True)

    @post_dump(pass_original=True)
    def keep_every_field(self, data, original, **kwargs):
        """An export holds everything stored, not only the fields a schema names."""
        return {**original, **data}


class PatientRecord(Record):
    """The stored patient (never the password hash)."""

    email = fields.String()
    name = fields.String()
    phone = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = fields.String(metadata=DATE_TIME)


class AppointmentRecord(Record):
    """A stored appointment."""

    service = fields.String()
    provider = fields.String()
    start = fields.String(metadata=DATE_TIME)
    end = fields.String(metadata=DATE_TIME)
    status = fields.String()
    amount = fields.Integer()
    currency = fields.String()


class PaymentRecord(Record):
    """A stored payment."""

    appointment = fields.String()
    status = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    amount_refunded = fields.Integer()


class AuditRecord(Record):
    """An audit event about the patient: what, when, outcome and by which role ("you", "staff
    (reception)", "stripe", …) — never a staff member's id or a network address."""

    at = fields.String(metadata=DATE_TIME)
    by = fields.String()
    action = fields.String()
    record = fields.String()
    outcome = fields.String()


class ExportSchema(Schema):
    """Everything stored about the patient."""

    exported_at = fields.String(required=True, metadata=DATE_TIME)
    patient = fields.Nested(PatientRecord, required=True)
    dependants = fields.List(fields.Nested(PatientRecord), metadata={"description": "The people the patient books for"})
    appointments = fields.List(fields.Nested(AppointmentRecord), required=True)
    payments = fields.List(fields.Nested(PaymentRecord), required=True)
    other_records = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(Record)), required=True,
                                metadata={"description": "Other collections' records, by collection"})
    audit_events = fields.List(fields.Nested(AuditRecord), required=True)
    not_included = fields.String(required=True)


# --- Clinic profile and closures (issue 25) ----------------------------------------------------


class ClosureSchema(Schema):
    """A local date the clinic is closed (wholly, or in part: the reason then names the hours)."""

    date = fields.String(required=True, metadata={"format": "date"})
    reason = fields.String(required=True)


class ClinicSchema(Schema):
    """The clinic's public profile and its closures over the next 366 days."""

    name = fields.String(required=True)
    address = fields.String(required=True)
    phone = fields.String(required=True)
    email = fields.String(required=True)
    timezone = fields.String(required=True)
    currency = fields.String(required=True)
    brand_colour = fields.String(required=True)
    logo_url = fields.String(required=True, allow_none=True)
    locale = fields.String(required=True, metadata={
        "description": "How the clinic writes dates and money for people, a CLDR locale: en_GB, en_IE, en_US, "
                       "en_AU, en_NZ or en_CA"})
    closures = fields.List(fields.Nested(ClosureSchema), required=True)
