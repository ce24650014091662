"""How the product writes money and times for people: one module for every door, the emails, the
texts and the desk.

Amounts are integers in minor units plus an ISO 4217 code (CONTRACT.md); Babel's CLDR data decides
the symbol, the sign and the grouping, so the back office, the portal and the emails read alike
("£60.00", "-£20.00", "€15.50"). Dates and times go through Babel's `format_datetime` in the
clinic's locale too, and name the zone by its usual abbreviation ("GMT", "BST", "EST": what
`tzname()` says, which people read more easily than CLDR's "Eastern Standard Time" or "+0530").

Every function here is also a Jinja filter and a template global (registered once in
`clinic.create_app`), so a template writes `{{ amount|money(currency) }}`, `{{ start|human_time(tz) }}`
or `{{ day|human_date }}` and never strftime by hand (tests/test_formatting.py guards that).

Phone numbers are written one way too (`phone`: "07700 900123" at home, "+1 202-555-0143" from
abroad, by `phonenumbers`); the filter `phone` is `models.accounts.phones.display_phone`, which
passes the clinic's region to it.

Beside `clock` in the lowest layer of the domain: it imports nothing else from `models`.
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, get_currency_precision
import phonenumbers

from models.clock import local

# The clinic's locale decides how an amount or a date is written (not which currency or zone it is
# in); the clinic has no locale setting yet, so every caller gets the British one unless it passes
# another. en_GB writes September short as "Sept".
DEFAULT_LOCALE = "en_GB"
DEFAULT_CURRENCY = "gbp"
DEFAULT_REGION = "GB"  # where a number without a country code is from, when the caller does not say


def money(minor, currency=DEFAULT_CURRENCY, locale=DEFAULT_LOCALE, whole=False):
    """Minor units as people read money: 6000, "gbp" -> "£60.00"; -2000 -> "-£20.00"; None -> "".

    `whole=True` drops the decimals of a whole amount ("£60", for a chart's axis); others keep them."""
    if minor is None:
        return ""
    code = (currency or DEFAULT_CURRENCY).upper()
    # Decimal, not float, so no amount shows a penny off; and the currency's own number of decimals
    # (Stripe's minor unit of JPY is the yen itself), which is 2 for the clinic's currencies.
    amount = Decimal(int(minor)).scaleb(-get_currency_precision(code))
    if whole and amount == amount.to_integral_value():
        return format_currency(amount, code, format="¤#,##0", locale=locale, currency_digits=False)
    return format_currency(amount, code, locale=locale)


def plain_amount(minor):
    """Minor units as a bare decimal for exports and form fields: 6000 -> "60.00"; None -> ""."""
    if minor is None or minor == "":
        return ""
    return f"{Decimal(int(minor)).scaleb(-2):.2f}"


def parse_money(raw):
    """Money as staff type it ("20", "20.50", "£1,020.50") -> minor units (102050); None when empty.

    Raises ValueError when the text is not an amount with at most two decimals (the caller words
    the error for its form)."""
    text = (raw or "").strip().lstrip("£€$").replace(",", "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise ValueError("not an amount")
    return int(value * 100)


def _wall(dt, tz):
    """An instant in zone `tz` (a naive value is UTC, as MongoDB returns it); with no zone, an aware
    value as it is (already local)."""
    return local(dt, tz) if tz else dt


def human_time(dt, tz, locale=DEFAULT_LOCALE):
    """An instant as people read it, with the zone named: 'Tuesday 24 November 2026, 09:00 GMT'."""
    if not dt:
        return ""
    wall = _wall(dt, tz)
    return f"{format_datetime(wall, 'EEEE d MMMM y, HH:mm', locale=locale)} {wall.tzname()}"


def short_time(dt, tz, year=True, locale=DEFAULT_LOCALE):
    """An instant on one short line, zone named: 'Tue 24 Nov 2026 09:00 GMT' (lists); without the
    year, 'Tue 24 Nov 09:00 GMT' (texts, where every character counts)."""
    if not dt:
        return ""
    wall = _wall(dt, tz)
    pattern = "EEE d MMM y HH:mm" if year else "EEE d MMM HH:mm"
    return f"{format_datetime(wall, pattern, locale=locale)} {wall.tzname()}"


def clock_time(dt, tz=None, locale=DEFAULT_LOCALE):
    """The wall-clock time of an instant in zone `tz`: '09:00' (for a grid, where the zone is said once)."""
    if not dt:
        return ""
    return format_datetime(_wall(dt, tz), "HH:mm", locale=locale)


def _as_date(day):
    if isinstance(day, str):
        return date.fromisoformat(day)
    return day.date() if isinstance(day, datetime) else day


def human_date(day, year=True, locale=DEFAULT_LOCALE):
    """A date as people read it: 'Friday 25 December 2026'; year=False: 'Friday 25 December'.
    Takes a date, a datetime already in local time, or an ISO date string."""
    if not day:
        return ""
    pattern = "EEEE d MMMM y" if year else "EEEE d MMMM"
    return format_date(_as_date(day), pattern, locale=locale)


def short_date(day, tz=None, weekday=True, year=False, locale=DEFAULT_LOCALE):
    """A date on a short line: 'Fri 25 Dec'; weekday=False, year=True: '25 Dec 2026'. An instant is
    read in zone `tz` first."""
    if not day:
        return ""
    if isinstance(day, datetime) and tz:
        day = local(day, tz)
    pattern = ("EEE " if weekday else "") + "d MMM" + (" y" if year else "")
    return format_date(_as_date(day), pattern, locale=locale)


def numeric_date(day, locale=DEFAULT_LOCALE):
    """A date in the locale's short numeric form, for dates of birth: '03/06/1984' (en_GB)."""
    if not day:
        return ""
    return format_date(_as_date(day), "short", locale=locale)


def month_name(day, year=False, locale=DEFAULT_LOCALE):
    """A date's month as people say it: 'June'; year=True: 'June 2026' (the calendar's heading)."""
    if not day:
        return ""
    return format_date(_as_date(day), "MMMM y" if year else "MMMM", locale=locale)


def weekday(day, short=True, locale=DEFAULT_LOCALE):
    """A date's day of the week: 'Wed'; short=False: 'Wednesday'."""
    if not day:
        return ""
    return format_date(_as_date(day), "EEE" if short else "EEEE", locale=locale)


def phone(number, region=DEFAULT_REGION):
    """A phone number as people say it: national format for a number of `region` ("+447700900123" ->
    "07700 900123", "+44 20 7946 0123" -> "020 7946 0123"), international for another country's
    ("+1 202-555-0143"); "" for none, and text that is no number as it was written."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(str(number), (region or DEFAULT_REGION).upper())
    except phonenumbers.NumberParseException:
        return str(number)
    home = phonenumbers.country_code_for_region((region or DEFAULT_REGION).upper())
    style = phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == home else \
        phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(parsed, style)


# The filters (and template globals) clinic.create_app registers, by name.
FILTERS = {"money": money, "plain_amount": plain_amount, "human_time": human_time, "short_time": short_time,
           "clock_time": clock_time, "human_date": human_date, "short_date": short_date,
           "numeric_date": numeric_date, "month_name": month_name, "weekday": weekday}
