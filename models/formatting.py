"""How the product writes money and times for people: one module for every door, the emails, the
texts and the desk.

Amounts are integers in minor units plus an ISO 4217 code (CONTRACT.md); Babel's CLDR data decides
the symbol, the sign and the grouping, so the back office, the portal and the emails read alike
("£60.00", "-£20.00", "€15.50"). Dates and times go through Babel's `format_datetime` in the
clinic's locale too, and name the zone by its usual abbreviation ("GMT", "BST", "EST": what
`tzname()` says, which people read more easily than CLDR's "Eastern Standard Time" or "+0530").

The clinic's locale (its *Dates and money written as* setting, one of `CLINIC_LOCALES`) decides the
words, the order and the clock: en_GB "Monday 7 December 2026, 09:00 GMT", en_US "Monday,
December 7, 2026, 9:00 AM EST". Callers pass no locale: `current_locale()` reads it from the render
in hand (`using_locale`, which an email or text sets from the clinic it read) or else from the
catalog snapshot the process already holds (`set_locale_source`, installed by models.catalog), so
formatting never costs a database command. The currency and the zone stay the caller's.

Every function here is also a Jinja filter and a template global (registered once in
`clinic.create_app`), so a template writes `{{ amount|money(currency) }}`, `{{ start|human_time(tz) }}`
or `{{ day|human_date }}` and never strftime by hand (tests/test_formatting.py guards that).

Phone numbers are written one way too (`phone`: "07700 900123" at home, "+1 202-555-0143" from
abroad, by `phonenumbers`); the filter `phone` is `models.accounts.phones.display_phone`, which
passes the clinic's region to it.

Beside `clock` in the lowest layer of the domain: it imports nothing else from `models`.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, get_currency_precision
import phonenumbers

from models.clock import local

# The clinic's locale decides how an amount or a date is written (not which currency or zone it is
# in). en_GB, the default, writes September short as "Sept".
DEFAULT_LOCALE = "en_GB"
# The locales a clinic can choose: English ones whose CLDR data Babel writes dates and money well in.
CLINIC_LOCALES = ("en_GB", "en_IE", "en_US", "en_AU", "en_NZ", "en_CA")
# Each in words, as the back office's select shows it: "English (United Kingdom)" (CLDR's own name).
LOCALE_NAMES = {code: Locale.parse(code).get_display_name("en") for code in CLINIC_LOCALES}
DEFAULT_CURRENCY = "gbp"
DEFAULT_REGION = "GB"  # where a number without a country code is from, when the caller does not say

# The locale of the message being rendered (an email or a text reads its clinic itself); None: the
# clinic in the process's catalog snapshot.
_chosen = ContextVar("clinic_locale", default=None)
_source = None


def set_locale_source(source):
    """Install `source()`: the locale of the clinic this process holds in memory (None when none)."""
    global _source
    _source = source


@contextmanager
def using_locale(locale):
    """Write every date, time and amount inside the block in `locale` (None: the clinic's, as usual)."""
    token = _chosen.set(locale)
    try:
        yield
    finally:
        _chosen.reset(token)


def current_locale():
    """The locale dates and money are written in now: the render's, else the held clinic's, else en_GB."""
    for candidate in (_chosen.get(), _source() if _source is not None else None):
        if candidate in LOCALE_NAMES:
            return candidate
    return DEFAULT_LOCALE


@dataclass(frozen=True)
class _Style:
    """How one locale orders a date and writes the clock, read from its CLDR data."""

    month_first: bool  # "December 7, 2026" (en_US, en_CA) rather than "7 December 2026"
    clock: str  # "HH:mm" (en_GB, en_IE) or "h:mm a" ("9:00 AM")
    numeric: str  # "dd/MM/y", "M/d/y", "y-MM-dd"


@lru_cache(maxsize=None)
def _style(locale):
    cldr = Locale.parse(locale)
    long_date = cldr.date_formats["long"].pattern  # "d MMMM y" or "MMMM d, y"
    # CLDR puts a narrow no-break space before "AM": a plain one keeps texts in GSM-7 and reads the same.
    clock = cldr.time_formats["short"].pattern.replace("\u202f", " ")
    # A date of birth needs its four-digit year ("M/d/yy" would write 1984 as 84).
    numeric = cldr.date_formats["short"].pattern
    numeric = numeric if "yyy" in numeric else numeric.replace("yy", "y")
    return _Style(long_date.index("M") < long_date.index("d"), clock, numeric)


def _long_date(style, year=True):
    if style.month_first:
        return "EEEE, MMMM d, y" if year else "EEEE, MMMM d"
    return "EEEE d MMMM y" if year else "EEEE d MMMM"


def _short_date(style, weekday=True, year=True):
    if style.month_first:
        return ("EEE, " if weekday else "") + "MMM d" + (", y" if year else "")
    return ("EEE " if weekday else "") + "d MMM" + (" y" if year else "")


def money(minor, currency=DEFAULT_CURRENCY, locale=None, whole=False):
    """Minor units as people read money: 6000, "gbp" -> "£60.00"; -2000 -> "-£20.00"; None -> "".

    `whole=True` drops the decimals of a whole amount ("£60", for a chart's axis); others keep them.
    `locale` None: the clinic's (`current_locale`); it sets the symbol's form, never the currency."""
    if minor is None:
        return ""
    code = (currency or DEFAULT_CURRENCY).upper()
    locale = locale or current_locale()
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


def human_time(dt, tz, locale=None):
    """An instant as people read it, with the zone named: 'Tuesday 24 November 2026, 09:00 GMT'
    (en_US: 'Tuesday, November 24, 2026, 9:00 AM GMT')."""
    if not dt:
        return ""
    wall, locale = _wall(dt, tz), locale or current_locale()
    style = _style(locale)
    return f"{format_datetime(wall, f'{_long_date(style)}, {style.clock}', locale=locale)} {wall.tzname()}"


def short_time(dt, tz, year=True, locale=None):
    """An instant on one short line, zone named: 'Tue 24 Nov 2026 09:00 GMT' (lists); without the
    year, 'Tue 24 Nov 09:00 GMT' (texts, where every character counts). en_US: 'Tue, Nov 24, 9:00 AM GMT'."""
    if not dt:
        return ""
    wall, locale = _wall(dt, tz), locale or current_locale()
    style = _style(locale)
    joint = ", " if style.month_first else " "  # "Nov 24, 2026, 9:00 AM" but "24 Nov 2026 09:00"
    pattern = f"{_short_date(style, year=year)}{joint}{style.clock}"
    return f"{format_datetime(wall, pattern, locale=locale)} {wall.tzname()}"


def clock_time(dt, tz=None, locale=None):
    """The wall-clock time of an instant in zone `tz`: '09:00' (en_US '9:00 AM'; for a grid, where the
    zone is said once)."""
    if not dt:
        return ""
    locale = locale or current_locale()
    return format_datetime(_wall(dt, tz), _style(locale).clock, locale=locale)


def _as_date(day):
    if isinstance(day, str):
        return date.fromisoformat(day)
    return day.date() if isinstance(day, datetime) else day


def human_date(day, year=True, locale=None):
    """A date as people read it: 'Friday 25 December 2026'; year=False: 'Friday 25 December' (en_US:
    'Friday, December 25, 2026'). Takes a date, a datetime already in local time, or an ISO date string."""
    if not day:
        return ""
    locale = locale or current_locale()
    return format_date(_as_date(day), _long_date(_style(locale), year), locale=locale)


def short_date(day, tz=None, weekday=True, year=False, locale=None):
    """A date on a short line: 'Fri 25 Dec'; weekday=False, year=True: '25 Dec 2026' (en_US 'Fri, Dec 25',
    'Dec 25, 2026'). An instant is read in zone `tz` first."""
    if not day:
        return ""
    if isinstance(day, datetime) and tz:
        day = local(day, tz)
    locale = locale or current_locale()
    return format_date(_as_date(day), _short_date(_style(locale), weekday, year), locale=locale)


def date_span(first, last, locale=None):
    """Two dates as a range on a short line: 'Tue 1 Dec – Fri 4 Dec 2026' (a waitlist entry's days)."""
    return f"{short_date(first, locale=locale)} – {short_date(last, year=True, locale=locale)}"


def numeric_date(day, locale=None):
    """A date in the locale's short numeric form, for dates of birth: '03/06/1984' (en_GB), '6/3/1984' (en_US)."""
    if not day:
        return ""
    locale = locale or current_locale()
    return format_date(_as_date(day), _style(locale).numeric, locale=locale)


def month_name(day, year=False, locale=None):
    """A date's month as people say it: 'June'; year=True: 'June 2026' (the calendar's heading)."""
    if not day:
        return ""
    return format_date(_as_date(day), "MMMM y" if year else "MMMM", locale=locale or current_locale())


def weekday(day, short=True, locale=None):
    """A date's day of the week: 'Wed'; short=False: 'Wednesday'."""
    if not day:
        return ""
    return format_date(_as_date(day), "EEE" if short else "EEEE", locale=locale or current_locale())


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
