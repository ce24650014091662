"""The back office reads in words, not stored codes (a QA walk's findings): yes/no settings as
"Yes"/"No", who booked as "Patient", a payment's kind as "Visit", the Outbox's statuses as "Sent",
"Queued", "Failed", a clinician without a calendar feed as "No feed", every phone number in one
human format, and no "Create" on Schedules for a provider who already has hours."""

import re
from datetime import datetime, timezone

import pytest

from models import Patient, Provider, Schedule, StaffUser
from models.feeds import make_feed
from models.formatting import phone
from models.messages.outbox import OutboxMessage
from models.seed import DEMO_PASSWORD
from tests.support.factories import demo_paid_visit, staff_login


def cells(page):
    """A details page's (label, value) rows, as text."""
    rows = re.findall(r'<th scope="row">(.*?)</th>\s*<td>(.*?)</td>', page, re.S)
    return {label.strip(): re.sub(r"<[^>]+>", "", value).strip() for label, value in rows}


def staff(app, role):
    client = app.test_client()
    assert staff_login(client, f"{role}@clinic.test", DEMO_PASSWORD).status_code == 302
    return client


@pytest.fixture
def clinic(app):
    """The demo clinic; its patient with a mobile number and a paid, booked visit next week."""
    visit = demo_paid_visit(stripe_payment_intent="pi_words")
    Patient.objects(id=visit["patient"].id).update_one(set__phone="+447700900123")
    return visit


def test_details_pages_say_words_not_codes(app, clinic):
    desk = staff(app, "admin")
    appt = cells(desk.get(f"/admin/appointments/details/?id={clinic['appointment'].id}").get_data(as_text=True))
    assert appt["Booked by"] == "Patient"
    assert appt["Booked over a conflict"] == "No"
    assert appt["Payment"] == "Paid"
    payment = cells(desk.get(f"/admin/payments/details/?id={clinic['payment'].id}").get_data(as_text=True))
    assert payment["Kind"] == "Visit" and payment["Status"] == "Paid" and payment["Amount"] == "£60.00"
    assert payment["Payment page"] == "Card form"
    patient = cells(desk.get(f"/admin/patients/details/?id={clinic['patient'].id}").get_data(as_text=True))
    assert patient["Active"] == "Yes"
    assert "Booked for by" not in patient and "Account holder" in patient
    service = desk.get("/admin/services/").get_data(as_text=True)
    assert "Full refund" in service and ">full<" not in service
    staff_user = StaffUser.objects.get(email="reception@clinic.test")
    details = cells(desk.get(f"/admin/staff/details/?id={staff_user.id}").get_data(as_text=True))
    assert details["Role"] == "Reception" and details["Active"] == "Yes"
    for page in (appt, payment, patient, details):
        assert not {"True", "False", "None", "patient", "visit", "reception"} & set(page.values()), page


def test_lists_show_yes_and_no_in_words(app, clinic):
    desk = staff(app, "admin")
    patients = desk.get("/admin/patients/").get_data(as_text=True)
    assert re.search(r'<td class="col-active">\s*Yes\s*</td>', patients)
    assert "fa-check-circle" not in patients  # not a bare icon whose only words are "active: true"
    appointments = desk.get("/admin/appointments/").get_data(as_text=True)
    assert re.search(r'<td class="col-override">\s*No\s*</td>', appointments)


def test_the_outbox_says_each_status_in_words(app, clinic):
    now = datetime.now(timezone.utc)
    for status in ("sent", "queued", "failed"):
        OutboxMessage(kind="confirmed", subject=f"Appointment:{status}", to=f"{status}@example.test", status=status,
                      due_at=now, sent_at=now if status == "sent" else None).save()
    desk = staff(app, "reception")
    listing = desk.get("/admin/outbox/").get_data(as_text=True)
    shown = [s.strip() for s in re.findall(r'<td class="col-status">(.*?)</td>', listing, re.S)]
    assert sorted(shown) == ["Failed", "Queued", "Sent"], shown
    failed = OutboxMessage.objects.get(status="failed")
    details = cells(desk.get(f"/admin/outbox/details/?id={failed.id}").get_data(as_text=True))
    assert details["Status"] == "Failed"


def test_the_outbox_says_what_a_message_is_about_and_links_to_it(app, clinic):
    """"About" names the appointment with its local time and links to it, not "Appointment:<id>"."""
    now = datetime.now(timezone.utc)
    appt = clinic["appointment"]
    about_visit = OutboxMessage(kind="reminder", subject=f"Appointment:{appt.id}", appointment=appt.id,
                                patient=clinic["patient"].id, to="pat@example.test", due_at=now).save()
    reset = OutboxMessage(kind="password_reset", subject="PasswordReset:abc", to="pat@example.test",
                          patient=clinic["patient"].id, due_at=now).save()
    desk = staff(app, "reception")
    page = desk.get(f"/admin/outbox/details/?id={about_visit.id}").get_data(as_text=True)
    about = cells(page)["About"]
    assert re.fullmatch(r"General consultation with Dr Amira Shah, \w+day \d+ \w+ \d{4}, \d\d:\d\d (GMT|BST)",
                        about), about
    assert f'href="/admin/appointments/details/?id={appt.id}' in page
    about = cells(desk.get(f"/admin/outbox/details/?id={reset.id}").get_data(as_text=True))["About"]
    assert about == f"Password reset for {clinic['patient'].name}", about
    assert "Appointment:" not in page and "PasswordReset:" not in about


def test_the_patient_page_and_the_desk_forms_give_statuses_in_words(app, clinic):
    """The patient's own page lists "Awaiting payment" and "Paid", and the desk's cancel and move forms
    name a checked-in visit "checked in" in the one wording, not the codes "held", "succeeded", "checked_in"."""
    desk = staff(app, "reception")
    page = desk.get(f"/admin/patients/details/?id={clinic['patient'].id}").get_data(as_text=True)
    shown = {re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", page, re.S)}
    assert {"Awaiting payment", "Paid"} <= shown, shown
    assert not {"held", "succeeded"} & shown, shown
    appt = clinic["appointment"]
    appt.update(set__status="checked_in")
    for url in (f"/admin/day/cancel?appointment={appt.id}", f"/admin/day/move?appointment={appt.id}"):
        text = re.sub(r"<[^>]+>", "", desk.get(url).get_data(as_text=True))
        assert "checked_in" not in text and "Status: checked in." in text, url


def test_the_calendar_feed_column_says_no_feed_or_since_when(app, clinic):
    admin = staff(app, "admin")
    listing = admin.get("/admin/providers/").get_data(as_text=True)
    feeds = [s.strip() for s in re.findall(r'<td class="col-feed">(.*?)</td>', listing, re.S)]
    assert feeds and set(feeds) == {"No feed"}, feeds
    make_feed(clinic["amira"].id)
    listing = admin.get("/admin/providers/").get_data(as_text=True)
    feeds = [s.strip() for s in re.findall(r'<td class="col-feed">(.*?)</td>', listing, re.S)]
    made = [f for f in feeds if f != "No feed"]
    assert len(made) == 1 and len(feeds) == Provider.objects.count(), feeds
    assert re.match(r"Active since \w+day \d+ \w+ \d{4}, \d\d:\d\d (GMT|BST)$", made[0]), feeds


def test_phones_read_one_way_everywhere(app, clinic):
    """The patient's "+447700900123" and the clinic's "+44 20 7946 0123" both read in national format."""
    from models.clock import utcnow
    from models.messages.documents import OutboxMessage
    from models.messages.outbox import appointment_confirmed

    # The patient takes texts: the Outbox's recipient of a text is their number, as people say it.
    Patient.objects(id=clinic["patient"].id).update_one(set__contact_by=["sms"])
    appointment_confirmed(clinic["appointment"], utcnow())
    text = OutboxMessage.objects(channel="sms").first()
    desk = staff(app, "reception")
    day = clinic["day"].isoformat()
    pages = {
        "outbox list": desk.get("/admin/outbox/").get_data(as_text=True),
        "outbox details": desk.get(f"/admin/outbox/details/?id={text.id}").get_data(as_text=True),
        "patients list": desk.get("/admin/patients/").get_data(as_text=True),
        "patient details": desk.get(f"/admin/patients/details/?id={clinic['patient'].id}").get_data(as_text=True),
        "day view": desk.get(f"/admin/day/?day={day}").get_data(as_text=True),
        "day sheet": desk.get(f"/admin/day/print?day={day}").get_data(as_text=True),
        "search": desk.get("/admin/?q=Pat").get_data(as_text=True),
    }
    for name, page in pages.items():
        assert "07700 900123" in page, name
        assert ">+447700900123<" not in page and "+447700900123</" not in page, name
    clinic_page = staff(app, "admin").get("/admin/clinic/").get_data(as_text=True)
    assert "020 7946 0123" in clinic_page and "+44 20 7946 0123" not in clinic_page
    # The portal's pages use the same filter: the footer's clinic phone.
    portal = app.test_client().get("/portal/login").get_data(as_text=True)
    assert "020 7946 0123</a>" in portal


def test_the_day_sheet_says_statuses_in_words(app, clinic):
    sheet = staff(app, "reception").get(f"/admin/day/print?day={clinic['day'].isoformat()}").get_data(as_text=True)
    assert "Awaiting payment" in sheet or "Confirmed" in sheet
    assert "<td>held</td>" not in sheet and "<td>confirmed</td>" not in sheet


@pytest.mark.parametrize("number, region, shown", [
    ("+447700900123", "GB", "07700 900123"),
    ("+44 20 7946 0123", "GB", "020 7946 0123"),
    ("020 7946 0123", "GB", "020 7946 0123"),
    ("+12025550143", "GB", "+1 202-555-0143"),
    ("+447700900123", "US", "+44 7700 900123"),
    ("not a number", "GB", "not a number"),
    ("", "GB", ""),
])
def test_the_phone_formatter(number, region, shown):
    assert phone(number, region) == shown


def test_a_provider_with_hours_is_not_offered_create_on_schedules(app, clinic):
    new = "/admin/schedules/new/"
    assert new in staff(app, "admin").get("/admin/schedules/").get_data(as_text=True)
    provider = staff(app, "provider")
    listing = provider.get("/admin/schedules/").get_data(as_text=True)
    assert "Dr Amira Shah" in listing and new not in listing
    # "new" still leads to the hours they have.
    own = Schedule.objects.get(provider=clinic["amira"].id)
    again = provider.get(new)
    assert again.status_code == 302 and str(own.id) in again.headers["Location"]
    # Without hours yet, a provider may set their own: then Create is offered.
    Schedule.objects(provider=clinic["amira"].id).delete()
    assert new in staff(app, "provider").get("/admin/schedules/").get_data(as_text=True)
