"""Phone numbers: parsed with `phonenumbers` and stored in E.164 ("+447700900123").

A number typed without a country code is read in the clinic's region (`Clinic.holiday_region`, e.g.
"GB-ENG" → GB, when the clinic has one; otherwise `PHONE_REGION`, default GB), so the front desk
and patients type numbers as they say them: "07700 900123" → "+447700900123". We accept every
number `phonenumbers` calls *possible* (right length for its country), not only *valid* ones:
validity follows the numbering plans' allocations, which refuse Ofcom's drama range (07700 900xxx)
and numbers allocated after the library's release, and a clinic would rather keep such a number
than refuse a patient. Anything else is refused with 422 on the phone field.
"""

import phonenumbers
from flask import g, has_request_context

from models import formatting
from models.catalog.documents import Clinic
from models.catalog.profile import phone_region
from models.errors import ValidationFailed

REASONS = {phonenumbers.ValidationResult.TOO_SHORT: "too short",
           phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short",
           phonenumbers.ValidationResult.TOO_LONG: "too long",
           phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code"}
INVALID = "Enter a phone number we can call or text, e.g. 07700 900123 or +44 7700 900123."


def default_region():
    """The two-letter region numbers without a country code are read in (`catalog.profile.phone_region`)."""
    return phone_region(Clinic.get())


def normalise_phone(value, field="phone", required=False, region=None):
    """The number in E.164, "" when empty and not required; ValidationFailed (422) when not a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationFailed("Phone is required.", fields={field: "required"})
        return ""
    if not isinstance(value, str) or len(value) > 50:
        raise ValidationFailed(INVALID, fields={field: "invalid"})
    try:
        number = phonenumbers.parse(value, region or default_region())
    except phonenumbers.NumberParseException:
        raise ValidationFailed(INVALID, fields={field: "invalid"}) from None
    # "Possible only locally" (a short number without its area code, e.g. "0123") cannot be called back.
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        # The field's own words say what is wrong with it; the message says what to type.
        raise ValidationFailed(INVALID, fields={field: REASONS.get(reason, "invalid")})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mobile_like(e164):
    """False only for numbers that certainly cannot take a text (fixed lines); unknown types pass."""
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return False
    return kind not in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.TOLL_FREE,
                        phonenumbers.PhoneNumberType.PREMIUM_RATE)


def display_phone(e164):
    """A stored number as staff and patients say it (`formatting.phone` in the clinic's region):
    "07700 900123" at home, "+1 202-555-0143" from abroad; anything unparseable as it was stored.
    The Jinja filter `phone`, used wherever a page, the back office or a sheet shows a number."""
    if not e164:
        return ""
    return formatting.phone(e164, _display_region())


def _display_region():
    """`default_region()`, read once per request: a list of 25 patients asks for it 25 times."""
    if not has_request_context():
        return default_region()
    if "phone_region" not in g:
        g.phone_region = default_region()
    return g.phone_region
