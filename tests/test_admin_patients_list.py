"""Issue 26 follow-up in the back office's Patients view: staff tell patients of one name apart
(date of birth, last and next visit, as the desk's search shows them; the page's visits loaded in
one query), an erased patient's pseudonymous address is never shown, and "Create patient" warns
about a likely duplicate exactly as the desk does, until staff choose "Create anyway"."""

import re
from datetime import timedelta
from html import unescape

import pytest

from models import Appointment, AuditEvent, Patient
from models.booking.frontdesk import create_caller
from tests.support.clients import register_and_sign_in, signed_in_staff
from tests.support.factories import LONDON, PASSWORD, at, form_csrf, future_day, make_patient, staff_login


@pytest.fixture
def world(app, clinic_world):
    return clinic_world(services={"consult": dict(name="Consultation", duration=30, price=0)},
                        providers={"one": dict(name="Dr One")}, staff=("admin", "reception"))


def visit(patient, world, start, status):
    return Appointment(patient=patient, provider=world["one"], service=world["consult"], start=start,
                       end=start + timedelta(minutes=30), block_start=start, block_end=start + timedelta(minutes=30),
                       status=status).save()


def test_the_patients_list_tells_two_maria_lopez_apart(app, world):
    older = create_caller("Maria Lopez", "07700 900111", date_of_birth="02/03/1984", invite=False)
    create_caller("Maria Lopez", "07700 900222", date_of_birth="15/07/1990", invite=False)
    past, ahead = at(future_day(-20), 10), at(future_day(4), 14, 30)
    visit(older, world, past, "completed")
    visit(older, world, ahead, "confirmed")
    page = unescape(signed_in_staff(app, "reception").get("/admin/patients/?search=Maria").get_data(as_text=True))
    for heading in ("Date of birth", "Last visit", "Next visit"):
        assert heading in page
    assert "02/03/1984" in page and "15/07/1990" in page
    assert past.strftime("%-d %b %Y") in page  # the last visit's date, e.g. "15 Nov 2026"
    # The next visit with its time and zone, e.g. "Tue 9 Dec 2026 14:30 GMT".
    assert ahead.astimezone(LONDON).strftime("%a %-d %b %Y %H:%M %Z") in page
    assert "none booked" in page  # the younger Maria has no visit booked


def test_the_patients_lists_cost_does_not_grow_with_its_rows(make_app, world):
    app = make_app(COUNT_DB_COMMANDS=True)
    client = app.test_client()
    assert staff_login(client, "reception@clinic.test").status_code == 302

    def add(first, count):
        for i in range(first, first + count):
            patient = make_patient(email=f"p{i}@example.com", name=f"Patient {i:02d}")
            visit(patient, world, at(future_day(-10), 9) + timedelta(minutes=30 * (i % 16)), "completed")
            visit(patient, world, at(future_day(5 + i // 16), 9) + timedelta(minutes=30 * (i % 16)), "confirmed")
        return at(future_day(5 + (first + count - 1) // 16), 9) + timedelta(minutes=30 * ((first + count - 1) % 16))

    add(0, 2)
    small = client.get("/admin/patients/")
    last_next = add(2, 18)
    large = client.get("/admin/patients/")
    # Every row's next visit is read (Patient 19's among them), with no query per row.
    assert "none booked" not in large.get_data(as_text=True)
    assert last_next.astimezone(LONDON).strftime("%a %-d %b %Y %H:%M %Z") in large.get_data(as_text=True)
    assert int(small.headers["X-DB-Commands"]) == int(large.headers["X-DB-Commands"]), (
        small.headers["X-DB-Commands"], large.headers["X-DB-Commands"])


def test_an_erased_patients_pseudonymous_address_is_not_shown(app, world):
    client = register_and_sign_in(app, "gone@example.com", "Gone Away")
    gone = Patient.objects.get(email="gone@example.com")
    assert client.post("/api/me/delete", json={"password": PASSWORD}).status_code == 200
    admin = signed_in_staff(app, "admin")
    listing = admin.get("/admin/patients/?search=Erased").get_data(as_text=True)
    assert "Erased patient" in listing and "erased.invalid" not in listing
    assert re.search(r'class="col-email">\s*Erased\s*<', listing)
    details = admin.get(f"/admin/patients/details/?id={gone.id}").get_data(as_text=True)
    assert "erased.invalid" not in details


def test_create_patient_warns_about_a_likely_duplicate_until_create_anyway(app, world):
    known = create_caller("Maria Lopez", "07700 900111", date_of_birth="02/03/1984", invite=False)
    admin = signed_in_staff(app, "reception")
    form = admin.get("/admin/patients/new/").get_data(as_text=True)
    assert "Create anyway" not in form
    typed = {"csrf_token": form_csrf(form), "name": "maria lopez", "email": "", "phone": "",
             "date_of_birth": "02/03/1984", "active": "y"}
    warned = admin.post("/admin/patients/new/", data=typed)
    page = unescape(warned.get_data(as_text=True))
    assert warned.status_code == 200 and "Already a patient?" in page
    assert f'href="/admin/patients/details/?id={known.id}"' in page and "born 02/03/1984" in page
    assert 'value="maria lopez"' in page and "Create anyway" in page  # what was typed is kept
    assert Patient.objects.count() == 1  # nothing saved
    # The same phone typed another way is a match too, as at the desk.
    by_phone = admin.post("/admin/patients/new/", data=dict(typed, name="M Lopez", date_of_birth="",
                                                            phone="+44 7700 900111"))
    assert "Already a patient?" in by_phone.get_data(as_text=True)
    made = admin.post("/admin/patients/new/", data=dict(typed, create_anyway="yes"))
    assert made.status_code == 302
    assert Patient.objects.count() == 2
    assert AuditEvent.objects(action="patient.create", outcome="ok").count() == 1
    # Someone new (another date of birth, phone and email) is created at once, with no warning.
    fresh = admin.post("/admin/patients/new/", data=dict(typed, name="Maria Lopez", date_of_birth="15/07/1990",
                                                         phone="07700 900333", email="maria@example.org"))
    assert fresh.status_code == 302 and Patient.objects.count() == 3

