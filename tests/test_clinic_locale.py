"""The clinic's locale (issue 24's "the clinic's locale"): an admin chooses how dates, times and money
are written (English (United Kingdom) by default); a clinic switched to English (United States)
reads "Monday, December 7, 2026, 9:00 AM GMT" on the patient's page, in the back office and in the
confirmation email, its money still in its own currency; a locale the clinic cannot use is refused
and nothing is saved."""

from datetime import date, datetime

import pytest

from models.catalog.documents import Clinic
from models.catalog.snapshot import forget_held
from tests.support.factories import (LONDON, api_login, at, csrf_header, form_csrf, future_day, make_clinic,
                                     make_patient, make_provider, make_service, make_staff, staff_login)

PUBLIC = "http://clinic.test"


@pytest.fixture(autouse=True)
def _back_to_the_default_locale():
    """Leave no US clinic held in this process for the next test (its pure formatting tests included)."""
    yield
    forget_held()


def us_words(instant):
    """How an American reads an instant in London, written here without Babel."""
    wall = instant.astimezone(LONDON)
    hour = f"{wall.hour % 12 or 12}:{wall.minute:02d} {'AM' if wall.hour < 12 else 'PM'}"
    return f"{wall:%A}, {wall:%B} {wall.day}, {wall.year}, {hour} {wall.tzname()}"


def gb_words(instant):
    """The British wording every other test reads: 'Monday 7 December 2026, 09:00 GMT'."""
    wall = instant.astimezone(LONDON)
    return f"{wall:%A} {wall.day} {wall:%B} {wall.year}, {wall.hour:02d}:{wall.minute:02d} {wall.tzname()}"


def book(client, service, provider, start):
    resp = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat()})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def test_a_us_clinic_writes_us_dates_on_the_page_in_the_back_office_and_in_the_email(make_app, smtp_server):
    from models.sweep import sweep

    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    clinic = make_clinic()
    clinic.locale = "en_US"
    clinic.save()
    free, paid = make_service(name="Check-up", price=0), make_service(name="Physio", price=6000)
    provider = make_provider([free, paid], lunch=None)
    make_patient("una@example.com", name="Una States")
    make_staff("reception")
    patient = app.test_client()
    assert api_login(patient, "una@example.com").status_code == 200
    day = future_day(4)
    free_start, paid_start = at(day, 9), at(day, 14)
    free_id, paid_id = book(patient, free, provider, free_start), book(patient, paid, provider, paid_start)

    page = patient.get(f"/portal/appointments/{paid_id}").get_data(as_text=True)
    assert us_words(paid_start) in page and gb_words(paid_start) not in page
    assert '<html lang="en-US">' in page  # screen readers pronounce it the clinic's way too
    assert "£60.00" in page  # the locale writes the amount; the currency stays the service's

    office = app.test_client()
    assert staff_login(office).status_code == 302
    listing = office.get("/admin/appointments/").get_data(as_text=True)
    assert us_words(free_start) in listing and us_words(paid_start) in listing
    assert '<html lang="en-US">' in listing
    grid = office.get(f"/admin/day/?day={day.isoformat()}").get_data(as_text=True)
    assert "10:00 AM free" in grid  # the day's free gaps in the clinic's clock...
    assert "time=10:00&amp;provider" in grid  # ...while the link to book one still carries the machine's HH:MM
    move = office.get(f"/admin/day/move?appointment={free_id}").get_data(as_text=True)
    assert 'name="new_time" type="time" step="300" class="form-control" required value="09:00"' in move

    forget_held()  # a worker that never read the catalog still writes the clinic's way
    with app.app_context():
        sweep()
    [email] = smtp_server.wait_for(1, "una@example.com")
    assert email["Subject"].startswith("Booked: Check-up")
    for kind in ("plain", "html"):
        body = email.get_body(preferencelist=(kind,)).get_content()
        assert us_words(free_start) in body and gb_words(free_start) not in body
    assert '<html lang="en-US">' in email.get_body(preferencelist=("html",)).get_content()


def test_an_admin_chooses_the_locale_in_words_and_an_unknown_one_changes_nothing(app, staff_client):
    clinic = make_clinic()
    client = staff_client("admin")
    url = f"/admin/clinic/edit/?id={clinic.id}"
    form = client.get(url).get_data(as_text=True)
    assert "Dates and money written as" in form
    assert '<option selected value="en_GB">English (United Kingdom)</option>' in form
    assert '<html lang="en-GB">' in form  # the default, in the back office...
    assert '<html lang="en-GB">' in app.test_client().get("/").get_data(as_text=True)  # ...and the portal
    assert '<option value="en_US">English (United States)</option>' in form
    data = {"name": clinic.name, "timezone": clinic.timezone, "currency": clinic.currency, "hold_minutes": "15",
            "slot_step_minutes": "15", "default_cancellation_hours": "24", "phone": clinic.phone, "max_held": "2",
            "max_upcoming": "6", "brand_colour": "#0b6e4f", "csrf_token": form_csrf(form)}

    refused = client.post(url, data={**data, "locale": "fr_FR"})
    assert refused.status_code == 200
    assert "“fr_FR” is not a locale the clinic can use; choose one of English (United Kingdom)" in \
        refused.get_data(as_text=True)
    assert Clinic.get().locale == "en_GB"
    assert app.test_client().get("/api/clinic").get_json()["locale"] == "en_GB"

    assert client.post(url, data={**data, "locale": "en_US"}).status_code == 302
    assert Clinic.get().locale == "en_US"
    assert "English (United States)" in client.get(f"/admin/clinic/details/?id={clinic.id}").get_data(as_text=True)
    profile = app.test_client().get("/api/clinic").get_json()
    assert profile["locale"] == "en_US" and profile["currency"] == "gbp"
    assert staff_client("reception").get(url).status_code == 403


def test_the_clinic_document_refuses_a_locale_it_cannot_write_in():
    from mongoengine import ValidationError

    with pytest.raises(ValidationError, match="not a locale the clinic can use"):
        Clinic(name="Elsewhere", locale="xx_YY").validate()


@pytest.mark.parametrize("locale, expected", [
    ("en_GB", ["Monday 7 December 2026, 09:00 GMT", "Mon 7 Dec 09:00 GMT", "Friday 25 December 2026",
               "03/06/1984", "-US$20.00"]),
    ("en_US", ["Monday, December 7, 2026, 9:00 AM GMT", "Mon, Dec 7, 9:00 AM GMT", "Friday, December 25, 2026",
               "6/3/1984", "-$20.00"]),
    ("en_CA", ["Monday, December 7, 2026, 9:00 a.m. GMT", "Mon, Dec 7, 9:00 a.m. GMT", "Friday, December 25, 2026",
               "1984-06-03", "-US$20.00"]),
    ("en_AU", ["Monday 7 December 2026, 9:00 am GMT", "Mon 7 Dec 9:00 am GMT", "Friday 25 December 2026",
               "3/6/1984", "-USD20.00"]),
])
def test_each_locale_writes_in_its_own_order_and_clock(locale, expected):
    """Babel's CLDR data for the locale decides the order, the clock and the symbol; the zone stays named."""
    from models import formatting

    instant = datetime(2026, 12, 7, 9, 0)  # naive: UTC, as MongoDB returns it
    with formatting.using_locale(locale):
        written = [formatting.human_time(instant, "Europe/London"),
                   formatting.short_time(instant, "Europe/London", year=False),
                   formatting.human_date(date(2026, 12, 25)), formatting.numeric_date(date(1984, 6, 3)),
                   formatting.money(-2000, "usd")]
    assert written == expected
