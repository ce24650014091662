"""Issues 29 and 25, follow-ups: a patient chooses email, text or both on the account page (and
staff on the back office's patient form), through the action behind `PATCH /api/me`; the
confirmation page says truthfully where the confirmation went; the waitlist and family pages'
designed empty states."""

import random
from datetime import timezone

import pytest

from models.audit import AuditEvent
from models.documents import Patient
from models.formatting import phone as say_phone
from models.messages.documents import OutboxMessage
from models.messages.sms import deliver_sms_due
from tests.support.clients import signed_in, signed_in_staff
from tests.support.factories import at, csrf_header, form_csrf, future_day

PUBLIC = "http://clinic.test"


def _number():
    """A UK mobile number of this test's own, E.164 (the stand-in keeps every test's texts)."""
    return f"+4477009{random.randint(0, 99999):05d}"


@pytest.fixture
def sms_app(make_app, sms_standin):
    return make_app(SMS_URL=sms_standin.url, SMS_FROM="+447700900000", PUBLIC_URL=PUBLIC)


@pytest.fixture
def world(sms_app, clinic_world):
    return clinic_world(services={"call": dict(name="Phone call", price=0)},
                        providers={"dr": dict(name="Dr Call", services=["call"])},
                        patients=["pat@example.com"], staff=["reception"])


def _save_contact(client, phone, choice):
    page = client.get("/portal/account").get_data(as_text=True)
    return client.post("/portal/account/contact", data={
        "csrf_token": form_csrf(page), "jwt_csrf": client.get_cookie("csrf_access_token").value,
        "phone": phone, "contact_by": choice})


def _book(client, world, hour=10):
    resp = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(world["call"].id), "provider": str(world["dr"].id),
        "start": at(future_day(3), hour).isoformat()})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def _stored(email="pat@example.com"):
    patient = Patient.objects.get(email=email)
    return patient.phone, list(patient.contact_by or [])


def test_a_patient_switches_to_text_on_the_account_page_and_the_next_confirmation_is_texted(
        sms_app, world, sms_standin):
    client = signed_in(sms_app)
    page = client.get("/portal/account").get_data(as_text=True)
    assert "Send me messages by:" in page and 'value="email" checked' in page  # what they get now
    before = _stored()
    # A number nobody can text is refused on its field, and nothing is saved.
    bad = _save_contact(client, "12ab", "sms")
    assert bad.status_code == 422
    assert "Enter a phone number we can call or text" in bad.get_data(as_text=True)
    assert 'id="contact-phone" name="phone"' in bad.get_data(as_text=True) and 'aria-invalid="true"' in bad.get_data(as_text=True)
    assert _stored() == before
    # Texts without a phone: refused with words that say what to do.
    none = _save_contact(client, "", "sms")
    assert none.status_code == 422 and "Add a mobile number to get text messages." in none.get_data(as_text=True)
    assert _stored() == before
    # A valid number, typed as people say it, and texts only.
    number = _number()
    local = say_phone(number, "GB")
    done = _save_contact(client, local, "sms")
    assert done.status_code == 302
    assert _stored() == (number, ["sms"])
    shown = client.get("/portal/account").get_data(as_text=True)
    assert f"Saved: we will text you at {local}." in shown and 'value="sms" checked' in shown
    assert AuditEvent.objects(action="patient.contact", outcome="ok").count() == 1
    # The next booking's confirmation goes by text, not by email, and the page says so.
    appt_id = _book(client, world)
    confirmation = client.get(f"/portal/appointments/{appt_id}").get_data(as_text=True)
    assert f"We have sent your confirmation by text to <strong>{local}</strong>." in confirmation
    assert "We have emailed your confirmation" not in confirmation
    assert OutboxMessage.objects(kind="confirmed", channel="email").count() == 0
    with sms_app.app_context():  # midday, so quiet hours never hold it back
        deliver_sms_due(at(future_day(1), 12).astimezone(timezone.utc))
    texts = sms_standin.messages(to=number)
    assert len(texts) == 1 and "booked" in texts[0]["body"], texts


def test_the_confirmation_page_names_each_channel_it_went_by(sms_app, world):
    client = signed_in(sms_app)
    email_only = _book(client, world, 10)
    page = client.get(f"/portal/appointments/{email_only}").get_data(as_text=True)
    assert "We have emailed your confirmation to <strong>pat@example.com</strong>." in page
    assert "by text" not in page
    number = _number()
    assert _save_contact(client, number, "both").status_code == 302
    both = _book(client, world, 11)
    page = client.get(f"/portal/appointments/{both}").get_data(as_text=True)
    assert ("We have emailed your confirmation to <strong>pat@example.com</strong>. We have sent your "
            f"confirmation by text to <strong>{say_phone(number, 'GB')}</strong>.") in page


def test_staff_set_the_same_choice_on_the_patient_form(sms_app, world):
    patient = world.patient
    client = signed_in_staff(sms_app, "reception")
    edit = client.get(f"/admin/patients/edit/?id={patient.id}").get_data(as_text=True)
    assert "Send messages by" in edit and '<option selected value="email">Email</option>' in edit
    form = {"csrf_token": form_csrf(edit), "name": patient.name, "email": patient.email, "active": "y"}
    refused = client.post(f"/admin/patients/edit/?id={patient.id}", data=dict(form, phone="", send_by="sms"))
    assert refused.status_code == 200 and "Add a mobile number to get text messages." in refused.get_data(as_text=True)
    assert _stored() == ("", [])
    number = _number()
    saved = client.post(f"/admin/patients/edit/?id={patient.id}",
                        data=dict(form, phone=say_phone(number, "GB"), send_by="both"))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert _stored() == (number, ["email", "sms"])
    assert [e.actor.split(":")[0] for e in AuditEvent.objects(action="patient.contact", outcome="ok")] == ["staff"]
    # A dependant's messages go to their account holder: their form offers no choice.
    from datetime import date

    from models.accounts.dependants import add_dependant

    child = add_dependant(Patient.objects.get(id=patient.id), "Kim Example", date(2018, 4, 2), date.today())
    assert "Send messages by" not in client.get(f"/admin/patients/edit/?id={child.id}").get_data(as_text=True)
    # The patient's own page shows what staff chose.
    page = signed_in(sms_app).get("/portal/account").get_data(as_text=True)
    assert 'value="both" checked' in page


def test_empty_waitlist_and_family_pages_say_what_they_are_for_and_what_to_do(sms_app, world):
    client = signed_in(sms_app)
    waitlist = client.get("/portal/waitlist").get_data(as_text=True)
    empty = waitlist.split('id="entries-empty"')[1].split("</div>")[0]
    assert "You are not on any waitlist." in empty and 'href="#join-heading">Join a waitlist</a>' in empty
    family = client.get("/portal/family").get_data(as_text=True)
    empty = family.split('id="people-empty"')[1].split("</div>")[0]
    assert "Nobody yet." in empty and 'href="#add-heading">Add a person</a>' in empty
