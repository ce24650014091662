"""A closure's "Message their patients" (issue 25's follow-up): the notice goes the way every message
about a visit goes, to a dependant's account holder, by text to a patient who chose texts, and staff
are told by name whom nobody could be written to, so they phone them."""

import random
from datetime import date, timedelta, timezone

import pytest

from models.accounts.dependants import add_dependant
from models.accounts.patients import create_by_staff
from models.booking.create import book
from models.catalog.documents import Closure
from models.clock import utcnow
from models.messages.delivery import deliver_due
from models.messages.documents import OutboxMessage
from models.messages.sms import deliver_sms_due, is_gsm7
from tests.support.clients import signed_in_staff
from tests.support.factories import at, form_csrf, future_day

PUBLIC = "http://clinic.test"


@pytest.fixture
def closed_world(make_app, clinic_world, smtp_server, sms_standin):
    """A clinic with a free service and an app that emails and texts; `world.day` is the day that will flood."""
    app = make_app(SMTP_URL=smtp_server.url, SMS_URL=sms_standin.url, SMS_FROM="+447700900000", PUBLIC_URL=PUBLIC)
    world = clinic_world(services={"consult": dict(name="Consultation", price=0)},
                         providers={"one": dict(name="Dr One", lunch=None)})
    world.app, world.day = app, future_day(5)
    return world


def _book(world, patient, hour):
    """Book the free consultation at `hour` on the day before the closure is entered."""
    return book(patient, world["consult"].id, world["one"].id, at(world.day, hour), utcnow())


def _message_patients(world):
    """The day is closed for a flood, and staff choose "Message their patients" on it; the page they land on."""
    world.closure = Closure(start=at(world.day, 0), end=at(world.day + timedelta(days=1), 0), reason="Flood").save()
    client = signed_in_staff(world.app, "reception", create=True)
    token = form_csrf(client.get("/admin/closures/").get_data(as_text=True))
    resp = client.post("/admin/closures/action/", data={"action": "message_patients", "csrf_token": token,
                                                        "rowid": str(world.closure.id)}, follow_redirects=True)
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _text_body(message):
    return message.get_body(preferencelist=("plain",)).get_content()


def test_a_dependants_visit_in_a_closure_emails_their_account_holder_naming_them(closed_world, smtp_server):
    holder_email = f"holder{random.randint(0, 10**9)}@example.com"
    holder = create_by_staff("Pat Parent", email=holder_email, require_phone=False, invite=False)
    child = add_dependant(holder, "Kim Parent", date(2018, 4, 2), date.today())
    _book(closed_world, child, 10)
    page = _message_patients(closed_world)
    assert "Messaged about 1 appointment(s)" in page
    assert "No appointments are booked" not in page
    with closed_world.app.app_context():
        deliver_due(utcnow())
    [notice] = [m for m in smtp_server.wait_for(2, holder_email) if m["Subject"].startswith("The clinic is closed")]
    body = _text_body(notice)
    assert "Hello Pat Parent" in body and "For:   Kim Parent" in body
    assert "closed at the time of Kim Parent’s appointment (Flood)" in body
    assert "Consultation with Dr One" in body


def test_a_patient_who_chose_texts_gets_the_closure_notice_by_text(closed_world, sms_standin):
    phone = f"+4477009{random.randint(0, 99999):05d}"
    patient = create_by_staff("Tia Text", phone, email=f"tia{random.randint(0, 10**9)}@example.com", invite=False)
    patient.update(set__contact_by=["sms"])
    appt = _book(closed_world, patient, 11)
    assert "Messaged about 1 appointment(s)" in _message_patients(closed_world)
    with closed_world.app.app_context():
        # Midday, so quiet hours (21:00-08:00) do not hold the text back.
        deliver_sms_due(at(future_day(1), 12).astimezone(timezone.utc))
    [text] = [t["body"] for t in sms_standin.messages(to=phone) if "closed" in t["body"]]
    assert text.startswith("Test Clinic: We are closed when your Consultation is booked")
    assert "(Flood)" in text and f"{PUBLIC}/a/{appt.id}" in text
    assert len(text) <= 160 and is_gsm7(text), text
    # Texts only, as chosen: no email about the closure.
    assert not OutboxMessage.objects(kind="closure_notice", channel="email")


def test_staff_are_told_to_phone_a_patient_nobody_can_write_to(closed_world):
    nobody = create_by_staff("Nora Nobody", require_phone=False, invite=False)  # no email, no mobile
    _book(closed_world, nobody, 9)
    reachable = create_by_staff("Rita Reach", email=f"rita{random.randint(0, 10**9)}@example.com",
                                require_phone=False, invite=False)
    _book(closed_world, reachable, 14)
    page = _message_patients(closed_world)
    assert "Messaged about 1 appointment(s)" in page
    assert "Could not message 1 patient(s): no email or mobile number on file. Please phone them: Nora Nobody, " \
           "Consultation with Dr One" in page
    assert "No appointments are booked" not in page
    assert [m.to for m in OutboxMessage.objects(kind="closure_notice")] == [reachable.email]
