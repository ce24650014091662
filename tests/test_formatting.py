"""One formatting layer (issue 24): money written by one function (Babel) in every door and email,
and wall-clock times turned into instants by one DST-safe rule in models/clock.py."""

import re
from datetime import datetime, timezone

import pytest

from models.clock import from_local, human_time, local
from models.formatting import money, plain_amount
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
    """A €15.50 appointment says "€15.50" in its receipt email, on the patient's page and in the
    back office's lists (which used to say "15.50 EUR")."""
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
    Payment(appointment=appt, patient=patient, amount=1550, currency="eur", status="succeeded",
            stripe_payment_intent="pi_test_formatting").save()

    message = OutboxMessage(kind="receipt", subject=f"Appointment:{appt.id}", to=patient.email,
                            appointment=appt.id, patient=patient.id, due_at=utcnow())
    with app.app_context():
        email = render(message, utcnow())
    assert "€15.50" in email.text and "€15.50" in email.html

    portal = app.test_client()
    assert api_login(portal).status_code == 200
    page = portal.get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert re.search(r"<dt>Price</dt><dd>€15.50</dd>", page)

    office = app.test_client()
    assert staff_login(office).status_code == 302
    appointments = office.get("/admin/appointments/").get_data(as_text=True)
    payments = office.get("/admin/payments/").get_data(as_text=True)
    for listing in (appointments, payments):
        assert "€15.50" in listing and "15.50 EUR" not in listing
