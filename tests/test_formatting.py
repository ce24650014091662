"""One formatting layer (issue 24): money written by one function (Babel) in every door and email,
and wall-clock times turned into instants by one DST-safe rule in models/clock.py."""

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from models.clock import from_local, local
from models import formatting
from models.formatting import human_time, money, plain_amount
from tests.support.factories import (api_login, at, future_day, make_clinic, make_patient, make_provider,
                                     make_service, make_staff, staff_login)

UTC = timezone.utc
LONDON = "Europe/London"


@pytest.mark.parametrize("minor, currency, expected", [
    (6000, "gbp", "£60.00"),
    (-2000, "gbp", "-£20.00"),
    (0, "gbp", "£0.00"),
    (1550, "eur", "€15.50"),
    (123456, "GBP", "£1,234.56"),  # grouping, and the code's case does not matter
    (5, "gbp", "£0.05"),
    (None, "gbp", ""),  # no amount recorded: nothing, not "£0.00"
    (6000, None, "£60.00"),  # a record without a currency is in the clinic's default
])
def test_money_is_written_one_way(minor, currency, expected):
    """The one money function: sign before the symbol, two decimals, grouped thousands."""
    assert money(minor, currency) == expected


def test_plain_amount_is_a_bare_decimal_for_exports():
    """Exports carry the currency in its own column, so the amount is a bare number."""
    assert [plain_amount(v) for v in (6000, -2005, 0, None)] == ["60.00", "-20.05", "0.00", ""]


def test_from_local_moves_a_time_the_clocks_skip_forward():
    """2026-03-29 01:30 does not exist in London (01:00 GMT -> 02:00 BST): it becomes 02:00 BST."""
    instant = from_local(datetime(2026, 3, 29, 1, 30), LONDON)
    assert instant == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local(instant, LONDON).strftime("%H:%M %Z") == "02:00 BST"
    # Either side of the gap is untouched.
    assert from_local(datetime(2026, 3, 29, 0, 59), LONDON) == datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    assert from_local(datetime(2026, 3, 29, 2, 0), LONDON) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_from_local_takes_the_first_pass_of_a_repeated_time():
    """2026-10-25 01:30 happens twice in London (BST, then GMT): the first, 00:30 UTC, is meant."""
    instant = from_local(datetime(2026, 10, 25, 1, 30), LONDON)
    assert instant == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local(instant, LONDON).strftime("%H:%M %Z") == "01:30 BST"
    assert human_time(instant, LONDON) == "Sunday 25 October 2026, 01:30 BST"
    # After the repeated hour, GMT again.
    assert from_local(datetime(2026, 10, 25, 2, 0), LONDON) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def test_from_local_keeps_an_aware_time_and_local_reads_naive_utc():
    """An aware value is already an instant; MongoDB's naive UTC reads as UTC."""
    aware = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert from_local(aware, LONDON) == aware
    assert from_local(datetime(2026, 7, 1, 10, 0), LONDON) == aware
    assert local(datetime(2026, 7, 1, 9, 0), LONDON).isoformat() == "2026-07-01T10:00:00+01:00"


def test_the_same_appointment_reads_the_same_amount_in_email_portal_and_back_office(app):
    """A €15.50 appointment with €5.00 refunded says "€15.50", "€5.00" and its time the same way in
    its receipt email, on the patient's page and in the back office (which used to say "15.50 EUR")."""
    from models import Payment
    from models.booking.create import book
    from models.documents import utcnow
    from models.messages.documents import OutboxMessage
    from models.messages.rendering import render

    make_clinic()
    service = make_service(price=1550)
    service.currency = "eur"
    service.save()
    provider = make_provider([service], name="Dr Euro")
    patient = make_patient()
    make_staff("reception")
    appt = book(patient, str(service.id), str(provider.id), at(future_day(5), 10), utcnow())
    assert (appt.amount, appt.currency) == (1550, "eur")
    Payment(appointment=appt, patient=patient, amount=1550, amount_refunded=500, currency="eur",
            status="succeeded", stripe_payment_intent="pi_test_formatting").save()
    when = human_time(appt.start, LONDON)
    assert re.fullmatch(r"\w+day \d{1,2} \w+ \d{4}, 10:00 (GMT|BST)", when)

    message = OutboxMessage(kind="receipt", subject=f"Appointment:{appt.id}", to=patient.email,
                            appointment=appt.id, patient=patient.id, due_at=utcnow())
    with app.app_context():
        email = render(message, utcnow())
    for body in (email.text, email.html):
        assert "€15.50" in body and "€5.00" in body and when in body

    portal = app.test_client()
    assert api_login(portal).status_code == 200
    page = portal.get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert re.search(r"<dt>Price</dt><dd>€15.50</dd>", page)
    assert "Refunded: €5.00 of €15.50." in page and when in page

    office = app.test_client()
    assert staff_login(office).status_code == 302
    appointments = office.get("/admin/appointments/").get_data(as_text=True)
    payments = office.get("/admin/payments/").get_data(as_text=True)
    for listing in (appointments, payments):
        assert "€15.50" in listing and "15.50 EUR" not in listing
    assert "€5.00" in payments and when in appointments


@pytest.mark.parametrize("function, args, expected", [
    ("human_time", (datetime(2026, 11, 24, 9, 0), LONDON), "Tuesday 24 November 2026, 09:00 GMT"),
    ("human_time", (datetime(2026, 7, 1, 8, 0, tzinfo=UTC), LONDON), "Wednesday 1 July 2026, 09:00 BST"),
    ("human_time", (datetime(2026, 7, 1, 13, 0), "America/New_York"), "Wednesday 1 July 2026, 09:00 EDT"),
    ("short_time", (datetime(2026, 12, 4, 9, 0), LONDON), "Fri 4 Dec 2026 09:00 GMT"),
    ("short_time", (datetime(2026, 12, 8, 10, 0), LONDON, False), "Tue 8 Dec 10:00 GMT"),
    ("clock_time", (datetime(2026, 7, 1, 8, 5), LONDON), "09:05"),
    ("human_date", (date(2026, 12, 25),), "Friday 25 December 2026"),
    ("human_date", ("2026-12-25", False), "Friday 25 December"),
    ("short_date", (date(2026, 12, 25),), "Fri 25 Dec"),
    ("short_date", (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Asia/Tokyo", False, True), "1 Jan 2027"),
    ("numeric_date", (date(1984, 6, 3),), "03/06/1984"),
    ("month_name", (date(2026, 6, 3), True), "June 2026"),
    ("weekday", (date(2026, 6, 3),), "Wed"),
    ("money", (600000, "gbp", "en_GB", True), "£6,000"),
    ("money", (6050, "gbp", "en_GB", True), "£60.50"),  # not whole: the pence stay
])
def test_dates_and_times_are_written_one_way(function, args, expected):
    """The wording people have always read ('Tuesday 24 November 2026, 09:00 GMT'), now from Babel,
    with the zone as its usual abbreviation; a naive instant is UTC (as MongoDB returns it)."""
    assert formatting.FILTERS[function](*args) == expected


def test_every_formatter_is_a_filter_and_a_global_in_pages_and_emails(app):
    """Templates of every door and the emails reach the same functions, by the same names."""
    with app.app_context():
        env = app.jinja_env
        for name, function in formatting.FILTERS.items():
            assert env.filters[name] is function and env.globals[name] is function
        text = env.from_string("{{ 6000|money('gbp') }} / {{ money(-500, 'gbp') }} / {{ day|human_date }}").render(
            day=date(2026, 12, 25))
    assert text == "£60.00 / -£5.00 / Friday 25 December 2026"


ROOT = Path(__file__).resolve().parent.parent
# Where people read money and times: the doors, the domain, the web infrastructure, the app's wiring
# and every template.
SCANNED = ("admin", "portal", "webhooks", "models", "clinic", "web", "templates")
# Writing money by hand: Babel or Decimal money machinery, two-decimal formats, currency codes
# glued to amounts, minor units divided into pounds.
MONEY_BY_HAND = re.compile(r"format_currency|get_currency_precision|scaleb\(|\.2f\b|:,"
                           r"|[\d}]\s*(GBP|EUR|USD)\b|/\s*100\b|%\s*100\b|\*\s*100\b")
# Writing a date or time for people by hand (machine formats starting with %Y, ISO, are fine).
TIME_BY_HAND = re.compile(r"strftime\(\s*[\"'](?!%Y)|\{[^{}]*:%[aAbBdHMZ-]")


def _lines(pattern):
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".html", ".txt") or path.name == "common-passwords.txt":
                continue
            rel = path.relative_to(ROOT).as_posix()
            if rel in ("models/formatting.py", "models/clock.py"):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line) and "percent" not in line:  # a deposit's per cent is not money
                    yield f"{rel}:{number}: {line.strip()}"


def test_money_is_written_only_by_the_formatting_module():
    """A second money formatter (an f-string with .2f, "60.00 GBP", pence divided by 100) fails
    here: call models.formatting.money, or the `money` filter in a template."""
    assert list(_lines(MONEY_BY_HAND)) == []


def test_dates_and_times_for_people_are_written_only_by_the_formatting_module():
    """strftime with a day, month or hour for people fails here: use models.formatting (human_time,
    short_time, clock_time, human_date...) or its filter in a template."""
    assert list(_lines(TIME_BY_HAND)) == []
