"""The email outbox against a real SMTP server (aiosmtpd over a socket): confirmations with their
calendar file, reminders sent once and never after a cancellation, local times across a clock
change."""

import threading
from datetime import datetime, timedelta, timezone

from icalendar import Calendar

from models.booking.cancellation import cancel
from models.booking.create import book
from models.documents import Appointment, utcnow
from models.messages.delivery import deliver_due, parse_smtp_url
from models.messages.outbox import OutboxMessage
from models.sweep import sweep
from tests.support.factories import (
    LONDON,
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


def _setup(price=0, reminder_hours=None):
    clinic = make_clinic()
    service = make_service(name="Check-up", price=price)
    if reminder_hours is not None:
        service.update(set__reminder_hours=reminder_hours)
        service.reload()
    provider = make_provider([service])
    return clinic, service, provider


def _ics_event(message):
    """The VEVENT of the message's .ics attachment, parsed by the icalendar library."""
    parts = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "exactly one calendar file is attached"
    cal = Calendar.from_ical(parts[0].get_content().encode() if isinstance(parts[0].get_content(), str)
                             else parts[0].get_content())
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def _text(message):
    return message.get_body(preferencelist=("plain",)).get_content()


def test_booking_a_free_service_sends_one_confirmation_with_a_valid_ics(make_app, smtp_server):
    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    client = app.test_client()
    _clinic, service, provider = _setup()
    make_patient("ics@example.com", name="Ida Calendar")
    api_login(client, "ics@example.com")
    start = at(future_day(3), 10)
    resp = client.post("/api/appointments", headers=csrf_header(client),
                       json={"service": str(service.id), "provider": str(provider.id),
                             "start": start.isoformat()})
    assert resp.status_code == 201, resp.get_json()
    appt_id = resp.get_json()["id"]
    assert resp.get_json()["status"] == "confirmed"
    # The booking queued the message; nothing was sent inside the request.
    assert smtp_server.messages("ics@example.com") == []
    queued = OutboxMessage.objects(kind="confirmed", to="ics@example.com").get()
    assert queued.status == "queued"

    with app.app_context():
        report = sweep()
        sweep()  # a second pass sends nothing again
    assert len(report.mail.sent) == 1
    received = smtp_server.wait_for(1, "ics@example.com")
    assert len(received) == 1
    message = received[0]
    assert message["Subject"].startswith("Booked: Check-up")
    body = _text(message)
    assert "Ida Calendar" in body
    local = start.astimezone(LONDON)
    assert f"{local:%H:%M} {local.tzname()}" in body and "(Europe/London)" in body
    assert f"{PUBLIC}/portal/appointments/{appt_id}" in body
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Reschedule or cancel" in html and f"/portal/appointments/{appt_id}" in html

    cal, event = _ics_event(message)
    assert event.decoded("dtstart") == start
    assert event["dtstart"].params["TZID"] == "Europe/London"
    assert event.decoded("dtend") == start + timedelta(minutes=30)
    assert str(event["location"]) == "Test Clinic"
    assert "Clinic phone: 020 7946 0123" in str(event["description"])
    assert f"{PUBLIC}/portal/appointments/{appt_id}" in str(event["description"])
    assert cal.walk("VTIMEZONE")[0]["TZID"] == "Europe/London"
    assert OutboxMessage.objects(kind="confirmed", to="ics@example.com").get().status == "sent"
    # A reminder for each lead time still ahead is queued for later, not sent now.
    reminders = OutboxMessage.objects(kind="reminder", to="ics@example.com")
    assert sorted(m.variant for m in reminders) == ["24h", "2h"]
    assert all(m.status == "queued" for m in reminders)
    # Queuing the same change again is the same messages (the unique key), not new ones.
    from models.messages.outbox import appointment_confirmed

    appointment_confirmed(Appointment.objects.get(id=appt_id), utcnow())
    assert OutboxMessage.objects(to="ics@example.com").count() == 3


def test_two_sweeps_started_together_send_a_due_reminder_once(make_app, smtp_server):
    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    _clinic, service, provider = _setup(reminder_hours=[24])
    now = utcnow()
    day = future_day(3)
    emails = [f"twice{i}@example.com" for i in range(4)]
    starts = []
    for i, email in enumerate(emails):
        patient = make_patient(email)
        starts.append(at(day, (9, 10, 11, 14)[i]))
        book(patient, service.id, provider.id, starts[-1], now)
    with app.app_context():
        sweep(now)  # the confirmations
    smtp_server.wait_for(1, emails[-1])

    # The last reminder is due: two sweeps start at the same instant, two senders too.
    due = starts[-1].astimezone(timezone.utc) - timedelta(hours=24) + timedelta(minutes=1)
    barrier = threading.Barrier(4)
    errors = []

    def run(step):
        try:
            with app.app_context():
                barrier.wait()
                step(due)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in (sweep, sweep, deliver_due, deliver_due)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for email in emails:
        received = smtp_server.wait_for(2, email, timeout=3)
        reminders = [m for m in received if m["Subject"].startswith("Reminder:")]
        assert len(reminders) == 1, f"{email}: {[m['Subject'] for m in received]}"
    assert OutboxMessage.objects(kind="reminder", status="sent").count() == 4


def test_no_reminder_after_a_cancellation(make_app, smtp_server):
    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    _clinic, service, provider = _setup()
    patient = make_patient("cancelled@example.com")
    now = utcnow()
    start = at(future_day(3), 11)
    appt = book(patient, service.id, provider.id, start, now)
    cancel(appt, now + timedelta(minutes=5), reason="cancelled by patient")
    # Both reminders would be due by now; the appointment is cancelled.
    later = start.astimezone(timezone.utc) - timedelta(hours=1, minutes=50)
    with app.app_context():
        sweep(later)
    received = smtp_server.wait_for(1, "cancelled@example.com")
    assert [m["Subject"].split(":")[0] for m in received] == ["Cancelled"]
    assert "has been cancelled" in _text(received[0])
    statuses = {(m.kind, m.variant): (m.status, m.drop_reason) for m in OutboxMessage.objects(to=patient.email)}
    assert statuses[("reminder", "24h")][0] == "dropped"
    assert statuses[("reminder", "2h")][0] == "dropped"
    assert "changed" in statuses[("reminder", "2h")][1]
    # The confirmation had not gone out before the cancellation: it is dropped too.
    assert statuses[("confirmed", "")][0] == "dropped"


def test_reminder_in_the_week_the_clocks_change_shows_the_right_local_time(make_app, smtp_server):
    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    _clinic, service, provider = _setup(reminder_hours=[24])
    patient = make_patient("dst@example.com")
    # London moves to BST at 01:00 UTC on Sunday 29 March 2026; the appointment is that morning.
    booked_at = datetime(2026, 3, 26, 12, 0, tzinfo=timezone.utc)
    start = datetime(2026, 3, 29, 10, 0, tzinfo=LONDON)  # 09:00 UTC
    book(patient, service.id, provider.id, start, booked_at)
    reminder = OutboxMessage.objects(kind="reminder", to=patient.email).get()
    # 24 hours before is Saturday 09:00 GMT (09:00 UTC), not 10:00 local.
    assert reminder.due_at.replace(tzinfo=timezone.utc) == datetime(2026, 3, 28, 9, 0, tzinfo=timezone.utc)
    with app.app_context():
        report = sweep(datetime(2026, 3, 28, 9, 1, tzinfo=timezone.utc))
    assert len(report.mail.sent) == 2
    received = smtp_server.wait_for(2, patient.email)
    reminders = [m for m in received if m["Subject"].startswith("Reminder:")]
    assert len(reminders) == 1
    assert "Sunday 29 March 2026, 10:00 BST" in reminders[0]["Subject"]
    body = _text(reminders[0])
    assert "Sunday 29 March 2026, 10:00 BST (Europe/London)" in body
    assert "tomorrow" in body
    confirmation = [m for m in received if m["Subject"].startswith("Booked:")][0]
    _cal, event = _ics_event(confirmation)
    assert event.decoded("dtstart") == start
    assert event.decoded("dtstart").utcoffset() == timedelta(hours=1)


def test_smtp_url_forms():
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.tls, plain.starttls, plain.username) == (
        "mail.example.com", 25, False, False, "")
    relay = parse_smtp_url("smtp://apikey:p%40ss@smtp.relay.example:587?starttls=1")
    assert (relay.port, relay.starttls, relay.username, relay.password) == (587, True, "apikey", "p@ss")
    tls = parse_smtp_url("smtps://u:p@smtp.example.com")
    assert (tls.port, tls.tls, tls.starttls) == (465, True, False)


def test_a_paid_booking_sends_confirmation_and_receipt_and_a_cancellation_names_the_refund(
        make_app, smtp_server, stripe_base):
    from tests.test_payments import pay
    from tests.support.payments import CARD_OK, api_post, book_held, clinic_with_service, signed_in

    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    service, provider = clinic_with_service()
    appt = book_held(service, provider, email="paying@example.com")
    assert OutboxMessage.objects(to="paying@example.com").count() == 0  # a hold sends nothing yet
    client = signed_in(app, "paying@example.com")
    assert pay(client, appt.id, stripe_base, CARD_OK).status_code == 200
    with app.app_context():
        sweep()
    received = smtp_server.wait_for(2, "paying@example.com")
    subjects = sorted(m["Subject"] for m in received)
    assert len(subjects) == 2
    assert subjects[0].startswith("Booked:") and subjects[1] == "Receipt: £50.00 for Consultation"
    receipt = [m for m in received if m["Subject"].startswith("Receipt")][0]
    assert "£50.00" in _text(receipt) and "(Europe/London)" in _text(receipt)

    assert api_post(client, f"/api/appointments/{appt.id}/cancel").status_code == 200
    with app.app_context():
        sweep()
    cancelled = [m for m in smtp_server.wait_for(3, "paying@example.com") if m["Subject"].startswith("Cancelled")]
    assert len(cancelled) == 1
    assert "Refund: £50.00" in _text(cancelled[0])


def test_reschedule_and_waitlist_messages_render_with_their_context(make_app, smtp_server):
    """The kinds other actions queue through the generic functions (see models/messages/outbox.py)."""
    from models.messages.outbox import enqueue, enqueue_for_appointment

    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    _clinic, service, provider = _setup()
    patient = make_patient("moved@example.com", name="Mo Ved")
    now = utcnow()
    old_start, new_start = at(future_day(4), 9), at(future_day(5), 15)
    appt = book(patient, service.id, provider.id, old_start, now)
    # What a reschedule does: move the time, bump the version, queue the notice and new reminders.
    Appointment.objects(id=appt.id).update_one(set__start=new_start, set__end=new_start + timedelta(minutes=30),
                                               inc__version=1)
    enqueue_for_appointment("rescheduled", appt, now, context={"old_start": old_start.isoformat()})
    offer_end = now + timedelta(hours=2)
    enqueue("waitlist_offer", patient.email, "WaitlistEntry:abc", version=1, patient_id=patient.id,
            expires_at=offer_end, now=now,
            context={"service": "Check-up", "provider": "Dr Test", "start": at(future_day(6), 10).isoformat(),
                     "end": at(future_day(6), 10, 30).isoformat(), "expires_at": offer_end.isoformat(),
                     "url": "/portal/waitlist"})
    with app.app_context():
        report = sweep(now)
    assert len(report.mail.sent) == 2 and len(report.mail.dropped) == 1  # the old confirmation
    received = {m["Subject"].split(":")[0]: m for m in smtp_server.wait_for(2, patient.email)}
    moved = _text(received["Moved"])
    old_local, new_local = old_start.astimezone(LONDON), new_start.astimezone(LONDON)
    assert f"from {old_local:%A} {old_local.day} {old_local:%B %Y, %H:%M}" in moved
    assert f"{new_local:%H:%M} {new_local.tzname()} (Europe/London)" in moved
    _cal, event = _ics_event(received["Moved"])
    assert event.decoded("dtstart") == new_start and int(event["sequence"]) == 1
    offer = _text(received["A time is free"])
    assert "Check-up with Dr Test" in offer and f"{PUBLIC}/portal/waitlist" in offer
    # The old time's reminders stay queued until due, and are then dropped: their version is old.
    assert {m.status for m in OutboxMessage.objects(kind="reminder", version=0)} == {"queued"}
    with app.app_context():
        sweep(old_start.astimezone(timezone.utc) - timedelta(hours=23))
    assert {m.status for m in OutboxMessage.objects(kind="reminder", version=0)} == {"dropped", "queued"}


def test_a_cancellation_carries_a_calendar_cancel(make_app, smtp_server):
    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    _clinic, service, provider = _setup()
    patient = make_patient("calcancel@example.com")
    now = utcnow()
    appt = book(patient, service.id, provider.id, at(future_day(3), 15), now)
    with app.app_context():
        sweep(now)
    cancel(appt, now, reason="cancelled by patient")
    with app.app_context():
        sweep(now)
    cancelled = [m for m in smtp_server.wait_for(2, patient.email) if m["Subject"].startswith("Cancelled")][0]
    cal, event = _ics_event(cancelled)
    assert str(cal["method"]) == "CANCEL" and str(event["status"]) == "CANCELLED"
    assert str(event["uid"]) == f"appointment-{appt.id}@clinic" and int(event["sequence"]) == 1


def test_every_kind_of_cancel_drops_the_visit_s_queued_reminders_at_once(make_app, smtp_server):
    """QA walk: a cancellation drops its visit's queued reminders itself (its follow-ups), not at the
    next sweep's look: a single cancel, "this and following" of a series and a staff cancel alike, and
    a worker pass at the reminders' time then sends only the cancellation notices."""
    from models.booking import series

    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL=PUBLIC)
    _clinic, service, provider = _setup(reminder_hours=[24])
    service.update(set__repeat_allowed=True)
    patient = make_patient("dropped@example.com")
    now = utcnow()
    start = at(future_day(3), 11)
    single = book(patient, service.id, provider.id, start - timedelta(hours=2), now)
    _sid, visits = series.book_series(patient, service.id, provider.id, start, now, 1, 3)
    booked = [single] + visits
    assert OutboxMessage.objects(kind="reminder", status="queued").count() == 4

    cancel(single, now, reason="cancelled by patient")
    assert OutboxMessage.objects(appointment=single.id, kind="reminder").get().status == "dropped"
    series.cancel_following(visits[1], now, reason="clinician away", by_staff=True, actor="staff:test")
    reminders = {m.appointment: m for m in OutboxMessage.objects(kind="reminder")}
    assert [reminders[a.id].status for a in booked] == ["dropped", "queued", "dropped", "dropped"]
    assert "cancelled" in reminders[visits[2].id].drop_reason
    cancel(visits[0], now, by_staff=True, actor="staff:test")  # the desk cancels the one left
    assert OutboxMessage.objects(kind="reminder", status="queued").count() == 0

    with app.app_context():
        deliver_due(start.astimezone(timezone.utc) - timedelta(hours=23, minutes=50))
    subjects = [m["Subject"].split(":")[0] for m in smtp_server.wait_for(4, patient.email)]
    assert subjects == ["Cancelled"] * 4, subjects
