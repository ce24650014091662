"""The clinic's profile and closures (issue 25): GET /api/clinic, closures and public holidays honoured
by free times, booking (patient and staff), reschedule and the waitlist's search; a holiday opened
again; the logo's checks; the From header, the footer and the .ics LOCATION of the emails."""

from datetime import date, datetime, timedelta, timezone

import pytest

from models import Appointment
from models.catalog.documents import Clinic, Closure
from models.catalog.profile import accent_colour, check_logo, contrast_with_white, reopen_holiday
from models.errors import ValidationFailed
from tests.support.clients import signed_in
from tests.support.factories import at, csrf_header, future_day

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def world(app, clinic_world):
    w = clinic_world(services={"consult": dict(name="Consultation", duration=30, price=0, horizon=400)},
                     providers={"one": dict(name="Dr One", services=["consult"], lunch=None)},
                     patients=["pat@example.com"])
    clinic = w.clinic
    clinic.address = "12 River Street\nLondon SE1 9RT"
    clinic.name = "Riverside Clinic"
    clinic.save()
    return w


def slots(client, service, day):
    resp = client.get("/api/slots", query_string={"service": str(service.id), "from": day.isoformat(), "days": 1})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def book(client, w, start):
    return client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(w["consult"].id), "provider": str(w["one"].id), "start": start.isoformat()})


def test_api_clinic_answers_the_contract_shape(app, world):
    body = app.test_client().get("/api/clinic").get_json()
    assert set(body) == {"name", "address", "phone", "email", "timezone", "currency", "brand_colour",
                         "logo_url", "locale", "closures"}
    assert body["name"] == "Riverside Clinic" and "12 River Street" in body["address"]
    assert body["locale"] == "en_GB"  # a clinic that never chose one is written as it always was
    assert body["logo_url"] is None and body["timezone"] == "Europe/London"


def test_a_closure_removes_slots_and_refuses_a_booking_with_422(app, world):
    day = future_day(4)
    client = signed_in(app, "pat@example.com")
    assert any(s["start"].startswith(f"{day.isoformat()}T10:00") for s in slots(client, world["consult"], day))
    Closure(start=at(day, 9), end=at(day, 13), reason="Staff training").save()
    left = slots(client, world["consult"], day)
    assert left and all(datetime.fromisoformat(s["start"]) >= at(day, 13) for s in left)
    resp = book(client, world, at(day, 10))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "not_bookable_closed"
    assert Appointment.objects.count() == 0
    listed = app.test_client().get("/api/clinic").get_json()["closures"]
    assert {"date": day.isoformat(), "reason": "Staff training (closed 09:00–13:00)"} in listed
    assert book(client, world, at(day, 14)).status_code == 201


def test_public_holidays_close_and_can_be_opened_again(app, world):
    clinic = Clinic.get()
    clinic.holiday_region = "GB-ENG"
    clinic.save()
    today = datetime.now(timezone.utc).date()
    christmas = date(today.year, 12, 25) if today < date(today.year, 12, 25) else date(today.year + 1, 12, 25)
    client = app.test_client()
    closures = client.get("/api/clinic").get_json()["closures"]
    assert {"date": christmas.isoformat(), "reason": "Christmas Day"} in closures
    assert slots(client, world["consult"], christmas) == []
    reopen_holiday(Clinic.get(), christmas)
    assert slots(client, world["consult"], christmas)
    assert christmas.isoformat() not in {c["date"] for c in client.get("/api/clinic").get_json()["closures"]}


def test_staff_booking_and_reschedule_honour_a_closure(app, world):
    from models.booking import create
    from models.booking.reschedule import reschedule
    from models.clock import utcnow

    day = future_day(5)
    patient = world["patient"]
    appt = create.book(patient, str(world["consult"].id), str(world["one"].id), at(day, 9), utcnow())
    Closure(start=at(day, 12), end=at(day, 17), reason="Burst pipe").save()
    for start in (at(day, 12, 7), at(day, 15)):  # off the grid too: staff may book off-grid, not when closed
        with pytest.raises(ValidationFailed) as refused:
            create.book(patient, str(world["consult"].id), str(world["one"].id), start, utcnow(),
                         by_staff=True, pay_online=False, booked_by="staff:reception", override=True)
        assert refused.value.code == "not_bookable_closed"
    with pytest.raises(ValidationFailed) as refused:
        reschedule(appt, at(day, 14), utcnow(), by_staff=True)
    assert refused.value.code == "not_bookable_closed"
    assert Appointment.objects(id=appt.id).first().start.replace(tzinfo=timezone.utc) == at(day, 9)


def test_waitlist_search_skips_closed_time(app, world):
    from models.booking.rules import find_slots
    from models.catalog import current_catalog
    from models.clock import utcnow

    day = future_day(6)
    Closure(start=at(day, 0), end=at(day + timedelta(days=1), 0), reason="Closed for the move").save()
    found = find_slots(world["consult"], [world["one"]], current_catalog().clinic, day, 2, utcnow())
    assert found and all(s.astimezone(at(day, 0).tzinfo).date() != day for s, _e, _p in found)


def test_logo_checks_type_size_and_svg_scripts():
    assert check_logo(PNG) == "image/png"
    assert check_logo(b"\xff\xd8\xff\xe0" + b"0" * 10) == "image/jpeg"
    assert check_logo(b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>') == "image/svg+xml"
    for bad, code in ((b"GIF89a....", "logo_type"), (PNG + b"0" * 512 * 1024, "logo_too_large"),
                      (b'<svg><script>alert(1)</script></svg>', "logo_unsafe"),
                      (b'<svg onload="x()"></svg>', "logo_unsafe")):
        with pytest.raises(ValidationFailed) as refused:
            check_logo(bad)
        assert refused.value.code == code


def test_logo_is_served_with_a_long_cache(app, world):
    from models.catalog.profile import save_logo
    from models.clock import utcnow

    save_logo(Clinic.get(), PNG, utcnow())
    url = app.test_client().get("/api/clinic").get_json()["logo_url"]
    resp = app.test_client().get(url)
    assert resp.status_code == 200 and resp.data == PNG and resp.mimetype == "image/png"
    assert "max-age=31536000" in resp.headers["Cache-Control"]
    assert app.test_client().get("/clinic/logo/" + "0" * 64).status_code == 404


def test_a_too_light_brand_colour_is_darkened_to_pass_contrast():
    assert accent_colour("#0b6e4f") == "#0b6e4f"
    light = accent_colour("#ffeb3b")
    assert light != "#ffeb3b" and contrast_with_white(light) >= 4.5
    assert accent_colour("nonsense") == "#0b6e4f"


def test_front_door_is_the_booking_page_without_signing_in(app, world):
    resp = app.test_client().get("/")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<title>Book an appointment · Riverside Clinic</title>" in page
    assert "12 River Street" in page and "020 7946 0123" in page and "Consultation" in page


def test_email_from_names_the_clinic_and_footer_and_ics_carry_the_address(make_app, clinic_world, smtp_server):
    from models.booking import create
    from models.clock import utcnow
    from models.messages.delivery import deliver_due
    from tests.support.factories import make_patient

    app = make_app(SMTP_URL=smtp_server.url, MAIL_FROM="Clinic <no-reply@clinic.localhost>")
    w = clinic_world(services={"consult": dict(name="Consultation", price=0)},
                     providers={"one": dict(name="Dr One", services=["consult"], lunch=None)})
    clinic = w.clinic
    clinic.name, clinic.address = "Riverside Clinic", "12 River Street\nLondon SE1 9RT"
    clinic.brand_colour = "#ffeb3b"  # too light for white text: emails take the pages' darkened accent
    clinic.save()
    patient = make_patient("fromhdr@example.com")
    create.book(patient, str(w["consult"].id), str(w["one"].id), at(future_day(3), 10), utcnow())
    with app.app_context():
        deliver_due(utcnow())
    [mail] = smtp_server.wait_for(1, "fromhdr@example.com")
    assert str(mail["From"]) == "Riverside Clinic <no-reply@clinic.localhost>"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    # The phone reads as the clinic's own patients say it, in the email and the calendar event alike.
    assert "12 River Street, London SE1 9RT" in text and "020 7946 0123" in text and "+44" not in text
    ics = next(p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar").get_payload(decode=True)
    unfolded = ics.decode().replace("\r\n ", "")
    assert "LOCATION:Riverside Clinic\\, 12 River Street\\, London SE1 9RT" in unfolded
    assert "CONTACT:Riverside Clinic\\, 020 7946 0123" in unfolded
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert 'href="tel:+442079460123"' in html and ">020 7946 0123</a>" in html
    # The email's links and buttons wear the clinic's colour as the pages do, never a fixed blue.
    assert f"color:{accent_colour('#ffeb3b')};" in html and "#0b57d0" not in html and "#ffeb3b" not in html


def test_numbers_without_a_country_code_are_read_in_the_clinics_own_country(app, world):
    from models.accounts.phones import normalise_phone

    assert normalise_phone("07700 900123") == "+447700900123"
    clinic = world.clinic
    clinic.holiday_region = "US-CA"
    clinic.save()
    assert normalise_phone("(202) 555-0143") == "+12025550143"


# --- the back office ----------------------------------------------------------------------------


def _clinic_form(clinic, **changes):
    data = {"name": clinic.name, "timezone": clinic.timezone, "currency": clinic.currency,
            "hold_minutes": "15", "slot_step_minutes": "15", "default_cancellation_hours": "24",
            "phone": clinic.phone, "max_held": "2", "max_upcoming": "6", "address": "1 High Street\r\nLeeds",
            "email": "hello@example.com", "website": "https://example.com", "brand_colour": "#0b6e4f",
            "holiday_region": "GB-ENG"}
    data.update(changes)
    return data


def test_admin_saves_the_profile_with_a_logo_and_refuses_a_bad_one(app, world, staff_client):
    from io import BytesIO

    from tests.support.factories import form_csrf

    client = staff_client("admin")
    clinic = Clinic.get()
    url = f"/admin/clinic/edit/?id={clinic.id}"
    token = form_csrf(client.get(url).get_data(as_text=True))
    bad = client.post(url, data={**_clinic_form(clinic), "csrf_token": token,
                                 "logo_file": (BytesIO(b"GIF89a not allowed"), "logo.gif")},
                      content_type="multipart/form-data")
    assert "PNG, JPEG or SVG" in bad.get_data(as_text=True)
    assert Clinic.get().logo_sha == "" and Clinic.get().address != "1 High Street\r\nLeeds"
    resp = client.post(url, data={**_clinic_form(clinic), "csrf_token": token,
                                  "logo_file": (BytesIO(PNG), "logo.png")},
                       content_type="multipart/form-data", follow_redirects=True)
    assert resp.status_code == 200
    saved = Clinic.get()
    assert saved.logo_sha and saved.holiday_region == "GB-ENG" and saved.address.startswith("1 High Street")
    home = client.get("/admin/").get_data(as_text=True)
    assert f"/clinic/logo/{saved.logo_sha}" in home and "Riverside Clinic" in home
    region = client.post(url, data={**_clinic_form(saved), "holiday_region": "XX-NOPE", "csrf_token": token},
                         content_type="multipart/form-data")
    assert "not a region we know" in region.get_data(as_text=True) and Clinic.get().holiday_region == "GB-ENG"
    assert staff_client("reception").get(url).status_code == 403


def test_a_closure_over_bookings_lists_them_and_messages_their_patients_once(app, world, staff_client):
    from models.booking import create
    from models.clock import utcnow
    from models.messages.documents import OutboxMessage
    from tests.support.factories import form_csrf

    day = future_day(5)
    create.book(world["patient"], str(world["consult"].id), str(world["one"].id), at(day, 10), utcnow())
    client = staff_client("reception")
    token = form_csrf(client.get("/admin/closures/new/").get_data(as_text=True))
    resp = client.post("/admin/closures/new/", data={"start": f"{day}T00:00", "end": f"{day + timedelta(days=1)}T00:00",
                                                     "reason": "Flood", "csrf_token": token}, follow_redirects=True)
    assert "1 appointment(s) are booked while the clinic is closed" in resp.get_data(as_text=True)
    closure = Closure.objects.get(reason="Flood")
    assert closure.start.astimezone(timezone.utc) == at(day, 0)
    listing = client.get("/admin/closures/").get_data(as_text=True)
    assert "Pat Example" in listing or "pat@example.com" in listing
    for _ in range(2):
        client.post("/admin/closures/action/", data={"action": "message_patients", "rowid": str(closure.id),
                                                     "csrf_token": token})
    [notice] = OutboxMessage.objects(kind="closure_notice")
    assert notice.to == "pat@example.com" and notice.context["reason"] == "Flood"


def test_staff_open_a_public_holiday_again_from_the_holidays_page(app, world, staff_client):
    from tests.support.factories import form_csrf

    clinic = Clinic.get()
    clinic.holiday_region = "GB-ENG"
    clinic.save()
    client = staff_client("reception")
    page = client.get("/admin/holidays/").get_data(as_text=True)
    assert "Christmas Day" in page
    today = datetime.now(timezone.utc).date()
    christmas = date(today.year, 12, 25) if today < date(today.year, 12, 25) else date(today.year + 1, 12, 25)
    token = form_csrf(page)
    resp = client.post("/admin/holidays/", data={"date": christmas.isoformat(), "do": "open", "csrf_token": token},
                       follow_redirects=True)
    assert "The clinic is open on" in resp.get_data(as_text=True)
    assert christmas in Clinic.get().reopened_holidays
    assert slots(app.test_client(), world["consult"], christmas)
