"""The Outbox keeps what was sent (issue 29, review part B item 3): a text's body and an email's subject
and plain text are stored when they leave, so staff read the wording the patient got even after the
visit moved; a message not sent shows a preview, labelled so. Reset links stay hidden; erasure
removes the kept wording and the export carries it."""

import html
import json
import random
import re
from datetime import date, timedelta, timezone

from models.accounts.patients import create_by_staff
from models.booking.create import book
from models.booking.reschedule import reschedule
from models.documents import Appointment, Patient, utcnow
from models.formatting import human_time, short_time
from models.messages.delivery import as_sent, deliver_due
from models.messages.documents import SENT_BODY_MAX, OutboxMessage
from models.messages.outbox import enqueue
from models.messages.sms import deliver_sms_due
from models.seed import seed_demo
from tests.a11y import axe_violations
from tests.support.browser import staff_sign_in
from tests.support.factories import (
    PASSWORD,
    api_login,
    at,
    csrf_header,
    future_day,
    make_clinic,
    make_patient,
    make_provider,
    make_service,
)

PUBLIC = "http://clinic.test"
ZONE = "Europe/London"


def _number():
    """A UK mobile number of this test's own (Ofcom's drama range), E.164."""
    return f"+4477009{random.randint(0, 99999):05d}"


def _noon(days):
    """Midday in the clinic's zone `days` ahead, as UTC: no quiet hours hold a text back then."""
    return at(future_day(days), 12).astimezone(timezone.utc)


def _details(client, message):
    resp = client.get(f"/admin/outbox/details/?id={message.id}")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _wording(page):
    """The message's wording on its Outbox details page (the "About" row says the visit as it is now)."""
    return html.unescape(re.search(r"<pre[^>]*>(.*?)</pre>", page, re.S).group(1))


def test_a_sent_text_reads_as_sent_after_the_visit_moves_and_a_queued_one_is_a_preview(
        make_app, sms_standin, staff_client):
    app = make_app(SMS_URL=sms_standin.url, SMS_FROM="+447700900000", PUBLIC_URL=PUBLIC)
    make_clinic()
    service = make_service(name="Physio", price=0)
    provider = make_provider([service])
    phone, day = _number(), future_day(5)
    with app.app_context():
        patient = create_by_staff("Tess Text", phone, invite=False)
        appt = book(patient, service.id, provider.id, at(day, 10), utcnow(), by_staff=True, pay_online=False)
        deliver_sms_due(_noon(1))
        # The clinic moves the visit after the confirmation left.
        reschedule(Appointment.objects.get(id=appt.id), at(day, 15), _noon(1), actor="staff:test", by_staff=True)
    [received] = sms_standin.messages(to=phone)
    old, new = short_time(at(day, 10), ZONE, year=False), short_time(at(day, 15), ZONE, year=False)
    assert old in received["body"]

    desk = staff_client("reception")
    confirmation = OutboxMessage.objects.get(appointment=appt.id, kind="confirmed", channel="sms")
    page = _details(desk, confirmation)
    assert "Text message as sent" in page
    assert _wording(page) == received["body"]  # word for word what the phone got, the old time
    assert old in _wording(page) and new not in _wording(page)
    # The new time's text is not sent yet: a preview, labelled so, with the new time.
    moved = OutboxMessage.objects.get(appointment=appt.id, kind="rescheduled", channel="sms")
    preview = _details(desk, moved)
    assert "Preview" in preview and "not sent" in preview and "as sent" not in preview
    assert new in _wording(preview)


def test_a_sent_email_keeps_its_subject_and_text_and_never_a_reset_link(make_app, smtp_server, staff_client):
    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    make_clinic()
    service = make_service(name="Check-up", price=0)
    provider = make_provider([service])
    email, day = "kept.wording@example.com", future_day(4)
    patient = make_patient(email, name="Kim Kept")
    appt = book(patient, service.id, provider.id, at(day, 10), utcnow())
    assert app.test_client().post("/api/auth/password/forgot", json={"email": email}).status_code == 202
    reset = OutboxMessage.objects.get(kind="password_reset", to=email)
    token = reset.context["token"]
    with app.app_context():
        deliver_due(utcnow())
        reschedule(Appointment.objects.get(id=appt.id), at(day, 14), utcnow(), actor="staff:test", by_staff=True)
    [confirmed] = [m for m in smtp_server.wait_for(2, email) if m["Subject"].startswith("Booked:")]
    old, new = human_time(at(day, 10), ZONE), human_time(at(day, 14), ZONE)

    desk = staff_client("reception")
    page = _details(desk, OutboxMessage.objects.get(kind="confirmed", to=email))
    assert "Email as sent" in page and html.escape(confirmed["Subject"]) in page
    assert "Hello Kim Kept" in _wording(page) and old in _wording(page) and new not in _wording(page)
    # The reset email as sent, its link hidden: staff never see the token, nor does the database keep it.
    sent_reset = OutboxMessage.objects.get(id=reset.id)
    assert sent_reset.status == "sent" and "link hidden" in sent_reset.sent_body
    assert token not in json.dumps(sent_reset.to_mongo().to_dict(), default=str)
    reset_page = _details(desk, sent_reset)
    assert "Email as sent" in reset_page and token not in reset_page


def test_the_kept_wording_is_cut_to_size_and_says_so():
    """A message longer than the outbox keeps (an email of a long course, a clinic's long address) is
    stored cut, ending with a line that says it was cut and how long the message sent was."""
    message = OutboxMessage(kind="confirmed", context={})
    long_text = "Hello Pat,\n" + "A line of a long email.\n" * 400
    kept = as_sent(message, long_text)
    assert len(kept) <= SENT_BODY_MAX and kept.startswith("Hello Pat,\nA line of a long email.")
    assert kept.endswith(f"[… cut here: the message sent was {len(long_text)} characters long]")
    assert as_sent(message, "Short and whole.") == "Short and whole."


def test_the_export_carries_the_wording_sent_and_erasure_removes_it(make_app, smtp_server, sms_standin, staff_client):
    app = make_app(SMTP_URL=smtp_server.url, SMS_URL=sms_standin.url, SMS_FROM="+447700900000", PUBLIC_URL=PUBLIC)
    make_clinic()
    service = make_service(name="Physio", price=0)
    provider = make_provider([service])
    email, phone = "both.ways@example.com", _number()
    patient = make_patient(email, name="Bo Zephyrine")
    client = app.test_client()
    api_login(client, email)
    assert client.patch("/api/me", headers=csrf_header(client),
                        json={"phone": phone, "contact_by": ["email", "sms"]}).status_code == 200
    booked = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": at(future_day(5), 10).isoformat()})
    assert booked.status_code == 201, booked.get_json()
    with app.app_context():
        deliver_due(utcnow())
        deliver_sms_due(_noon(1))
    [text] = sms_standin.messages(to=phone)
    assert client.post(f"/api/appointments/{booked.get_json()['id']}/cancel", headers=csrf_header(client),
                       json={}).status_code == 200

    exported = client.get("/api/me/export").get_json()["other_records"]["outbox"]
    bodies = {row["channel"]: row.get("sent_body", "") for row in exported if row["kind"] == "confirmed"}
    assert bodies["sms"] == text["body"] and "Hello Bo Zephyrine" in bodies["email"]

    assert client.post("/api/me/delete", headers=csrf_header(client), json={"password": PASSWORD}).status_code == 200
    assert Patient.objects.get(id=patient.id).name == "Erased patient"
    kept = OutboxMessage._get_collection().find({"patient": patient.id})
    assert all("sent_body" not in m and "sent_subject" not in m for m in kept)
    assert "Zephyrine" not in json.dumps(list(OutboxMessage._get_collection().find()), default=str)
    # Staff see that the wording is gone, not the patient's words.
    page = _details(staff_client("reception"), OutboxMessage.objects.get(kind="confirmed", channel="sms"))
    assert "the wording sent was not kept" in page and "as sent" not in page


def test_taking_a_dependant_off_the_account_removes_the_wording_about_them(make_app, smtp_server):
    """The holder's email about a child's visit names the child: once the child is taken off the
    account (their data erased), the holder's kept copy of it goes too."""
    from models.accounts.dependants import add_dependant
    from models.booking.cancellation import cancel
    from models.privacy import remove_dependant

    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    make_clinic()
    service = make_service(name="Check-up", price=0)
    provider = make_provider([service])
    holder = make_patient("holder.kept@example.com", name="Hal Holder")
    child = add_dependant(holder, "Quentin Quillfeather", date(2018, 5, 1), utcnow().date())
    appt = book(child, service.id, provider.id, at(future_day(4), 10), utcnow())
    with app.app_context():
        deliver_due(utcnow())
    about_child = OutboxMessage.objects.get(kind="confirmed", appointment=appt.id)
    assert about_child.to == "holder.kept@example.com" and "Quentin Quillfeather" in about_child.sent_body
    cancel(Appointment.objects.get(id=appt.id), utcnow(), by_staff=True, actor="staff:test")
    remove_dependant(holder, Patient.objects.get(id=child.id), utcnow())
    about_child.reload()
    assert about_child.sent_body is None and about_child.to == "holder.kept@example.com"


def test_staff_read_a_sent_text_in_the_outbox_on_a_phone(live_server, page, sms_standin):
    base, app = live_server(COOKIE_SECURE=False, SMS_URL=sms_standin.url, SMS_FROM="+447700900000",
                            PUBLIC_URL=PUBLIC)
    seed_demo()
    phone = _number()
    with app.app_context():
        patient = create_by_staff("Paige Phone", phone, invite=False)
        offer = enqueue("waitlist_offer", phone, "WaitlistEntry:page", channel="sms", patient_id=patient.id,
                        now=_noon(1), context={"service": "Physio", "url": "/portal/waitlist",
                                               "start": at(future_day(2), 11).isoformat(),
                                               "expires_at": (_noon(1) + timedelta(minutes=30)).isoformat()})
        deliver_sms_due(_noon(1) + timedelta(minutes=1))
    [received] = sms_standin.messages(to=phone)
    page.set_viewport_size({"width": 390, "height": 844})
    staff_sign_in(page, base, "reception@clinic.test")
    assert page.goto(f"{base}/admin/outbox/details/?id={offer.id}").status == 200
    assert page.get_by_text("Text message as sent").is_visible()
    assert page.get_by_text(received["body"]).is_visible()
    assert not axe_violations(page)
