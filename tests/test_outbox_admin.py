"""Refusals from a real SMTP server: retries with backoff, the attempt limit, the last error kept;
the back office's Outbox shows them, previews bodies without secrets, and resends (audited)."""

import re
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from devstack.servers import free_port
from models import AuditEvent, Patient, StaffUser
from models.booking.create import book
from models.documents import utcnow
from models.messages.delivery import MAX_ATTEMPTS, deliver_due
from models.messages.outbox import OutboxMessage
from models.accounts.reset import PasswordReset, queue_invitation
from tests.support.factories import (
    at,
    form_csrf,
    future_day,
    make_clinic,
    make_patient,
    make_provider,
    make_service,
    make_staff,
    staff_login,
)


class Picky:
    """An SMTP handler that refuses some recipients: 550 for bounce@, 451 for later@."""

    def __init__(self):
        self.accepted = []
        self.refuse_later = True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address.startswith("unverified@"):
            return "550 5.7.1 Sender address not allowed"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce@"):
            return "550 5.1.1 No such mailbox here"
        if address.startswith("later@") and self.refuse_later:
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.accepted.append((envelope.rcpt_tos[:], envelope.content))
        return "250 Message accepted"


@pytest.fixture
def picky():
    handler = Picky()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


@pytest.fixture
def booked(make_app, picky, clinic_world):
    handler, url = picky
    app = make_app(SMTP_URL=url, PUBLIC_URL="http://clinic.test")
    world = clinic_world(services={"check_up": dict(name="Check-up", price=0)})
    service, provider = world.service, world.provider
    now = utcnow()
    for hour, email in ((9, "bounce@example.com"), (10, "later@example.com"), (11, "fine@example.com")):
        book(make_patient(email), service.id, provider.id, at(future_day(3), hour), now)
    return app, handler


def test_refusals_are_retried_with_backoff_until_the_attempt_limit(booked):
    app, handler = booked
    now = utcnow()
    with app.app_context():
        report = deliver_due(now)
    assert len(report.sent) == 1 and len(report.failed) == 1 and len(report.retrying) == 1
    assert [rcpts for rcpts, _ in handler.accepted] == [["fine@example.com"]]
    bounced = OutboxMessage.objects.get(to="bounce@example.com", kind="confirmed")
    assert bounced.status == "failed" and "550" in bounced.last_error  # 5xx: no point retrying
    later = OutboxMessage.objects.get(to="later@example.com", kind="confirmed")
    assert later.status == "queued" and later.attempts == 1 and "451" in later.last_error
    assert abs(later.due_at.replace(tzinfo=now.tzinfo) - (now + timedelta(minutes=1))) < timedelta(milliseconds=2)

    with app.app_context():
        assert deliver_due(now + timedelta(seconds=30)).retrying == []  # not due yet: backoff
        clock = now
        for _ in range(MAX_ATTEMPTS - 1):
            clock += timedelta(hours=1)
            deliver_due(clock)
    later.reload()
    assert later.status == "failed" and later.attempts == MAX_ATTEMPTS and "451" in later.last_error
    assert len(handler.accepted) == 1


def test_the_outbox_view_lists_previews_and_resends(booked):
    app, handler = booked
    with app.app_context():
        deliver_due(utcnow())
    make_staff("reception")
    make_staff("provider")
    client = app.test_client()
    assert staff_login(client, "reception@clinic.test").status_code == 302
    page = client.get("/admin/outbox/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "bounce@example.com" in html and "550 5.1.1 No such mailbox here" in html
    # Issue 26: kinds in words, each time on one line with its zone.
    kinds = [k.strip() for k in re.findall(r'<td class="col-kind">(.*?)</td>', html, re.S)]
    assert "Booking confirmed" in kinds and "confirmed" not in kinds
    assert re.search(r'<span class="text-nowrap">\w{3} \d{1,2} \w{3} \d{4} \d{2}:\d{2} (GMT|BST)</span>', html)
    bounced = OutboxMessage.objects.get(to="bounce@example.com", kind="confirmed")
    details = client.get(f"/admin/outbox/details/?id={bounced.id}").get_data(as_text=True)
    assert "Booked: Check-up" in details and "Your appointment is confirmed." in details
    assert "appointment.ics" in details

    token = form_csrf(client.get("/admin/patients/new/").get_data(as_text=True))
    handler.refuse_later = False
    later = OutboxMessage.objects.get(to="later@example.com", kind="confirmed")
    OutboxMessage.objects(id=later.id).update_one(set__status="failed")
    client.post("/admin/outbox/action/", data={"action": "resend", "rowid": [str(later.id)],
                                               "csrf_token": token})
    later.reload()
    assert later.status == "queued" and later.attempts == 0
    staff = StaffUser.objects.get(email="reception@clinic.test")
    assert AuditEvent.objects(actor=f"staff:{staff.id}", action="outbox.resend",
                              record=f"OutboxMessage:{later.id}").count() == 1
    with app.app_context():
        deliver_due(utcnow())
    assert OutboxMessage.objects.get(id=later.id).status == "sent"
    assert ["later@example.com"] in [rcpts for rcpts, _ in handler.accepted]

    other = app.test_client()
    assert staff_login(other, "provider@clinic.test").status_code == 302
    assert other.get("/admin/outbox/").status_code == 403


def test_a_staff_created_patient_gets_an_invitation_whose_link_staff_never_see(booked):
    app, handler = booked
    make_staff("admin")
    client = app.test_client()
    assert staff_login(client, "admin@clinic.test").status_code == 302
    token = form_csrf(client.get("/admin/patients/new/").get_data(as_text=True))
    resp = client.post("/admin/patients/new/", data={"name": "Walk In", "email": "walkin@example.com",
                                                     "phone": "", "active": "y", "csrf_token": token})
    assert resp.status_code == 302
    invitation = OutboxMessage.objects.get(kind="invitation", to="walkin@example.com")
    assert PasswordReset.objects.get(id=invitation.subject.split(":")[1]).purpose == "invitation"
    raw = invitation.context["token"]
    details = client.get(f"/admin/outbox/details/?id={invitation.id}").get_data(as_text=True)
    assert raw not in details and "link hidden" in details
    with app.app_context():
        deliver_due(utcnow())
    body = [c for rcpts, c in handler.accepted if rcpts == ["walkin@example.com"]][0].decode()
    assert "set up your account" in body and re.search(rf"/portal/reset/{re.escape(raw)}", body)
    assert "token" not in OutboxMessage.objects.get(id=invitation.id).context
    # Queuing again makes a new link (a new message), never a resend of the old one.
    queue_invitation(Patient.objects.get(email="walkin@example.com"))
    assert OutboxMessage.objects(kind="invitation", to="walkin@example.com").count() == 2


def _form_fields(html):
    """The name → value pairs a browser would post from the page's edit form."""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or 'type="submit"' in tag or 'type="checkbox"' in tag and "checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name.group(1)] = value.group(1) if value else ("y" if 'type="checkbox"' in tag else "")
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        fields[name] = body.strip()
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"|<option[^>]*value="([^"]*)"[^>]*selected',
                           body)
        if chosen:
            fields[name] = chosen.group(1) or chosen.group(2)
    return fields


def test_an_admin_sets_a_services_reminder_hours_and_bookings_follow_them(make_app, picky):
    _handler, url = picky
    app = make_app(SMTP_URL=url)
    make_clinic()
    service = make_service(name="Physio", price=0)
    provider = make_provider([service])
    make_staff("admin")
    client = app.test_client()
    assert staff_login(client, "admin@clinic.test").status_code == 302
    html = client.get(f"/admin/services/edit/?id={service.id}").get_data(as_text=True)
    data = _form_fields(html)
    assert data["reminder_hours"] == "24, 2"
    data["reminder_hours"] = "48, 2x"
    refused = client.post(f"/admin/services/edit/?id={service.id}", data=data)
    assert refused.status_code == 200 and "Enter whole hours" in refused.get_data(as_text=True)
    assert service.reload().reminder_hours == [24, 2]
    data["reminder_hours"] = "48"
    resp = client.post(f"/admin/services/edit/?id={service.id}", data=data)
    assert resp.status_code == 302
    service.reload()
    assert service.reminder_hours == [48]
    book(make_patient("physio@example.com"), service.id, provider.id, at(future_day(5), 10), utcnow())
    assert [m.variant for m in OutboxMessage.objects(kind="reminder")] == ["48h"]


def test_queued_mail_stops_for_a_closed_account_and_follows_a_changed_email(booked):
    app, handler = booked
    Patient.objects(email="fine@example.com").update_one(set__active=False)
    Patient.objects(email="later@example.com").update_one(set__email="later-new@example.com")
    handler.refuse_later = False
    with app.app_context():
        deliver_due(utcnow())
    assert OutboxMessage.objects.get(kind="confirmed", to="fine@example.com").drop_reason == "patient account closed"
    assert OutboxMessage.objects.get(kind="confirmed", to="later-new@example.com").status == "sent"
    assert [rcpts for rcpts, _ in handler.accepted] == [["later-new@example.com"]]


def test_a_refused_sender_is_a_set_up_problem_and_spends_no_attempt(booked):
    app, handler = booked
    with app.app_context():
        report = deliver_due(utcnow(), mail_from="Clinic <unverified@clinic.example>")
    assert report.sent == report.failed == [] and "check MAIL_FROM" in report.problems[0]
    assert OutboxMessage.objects(kind="confirmed", status="queued", attempts=0).count() == 3
    assert handler.accepted == []
