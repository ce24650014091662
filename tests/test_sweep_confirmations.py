"""Issue 31: a booking whose confirmation failed to queue (the outbox insert failed after the booking
was written, which `appointment_confirmed` only logs) is repaired by the sweep: the confirmation is
queued once and reaches the patient's mailbox on the real SMTP server; a second pass queues nothing."""

import uuid
from datetime import timedelta

from models import Appointment, Service
from models.clock import utcnow
from models.messages.documents import OutboxMessage
from models.sweep import sweep
from tests.support.clients import signed_in
from tests.support.factories import at, csrf_header, future_day
from tests.test_faults import failpoint  # noqa: F401 — the SecantusDB failpoint fixture


def book(client, world, start, repeat=None):
    body = {"service": str(world["call"].id), "provider": str(world["dr"].id), "start": start.isoformat()}
    if repeat:
        body["repeat"] = repeat
    answer = client.post("/api/appointments", headers=csrf_header(client), json=body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def confirmations(appointment_id):
    return list(OutboxMessage.objects(appointment=appointment_id, kind="confirmed"))


def test_a_confirmation_that_failed_to_queue_is_queued_and_sent_once_by_the_sweep(
        failpoint, make_app, clinic_world, smtp_server):
    app = make_app(SMTP_URL=smtp_server.url)
    email = f"told-{uuid.uuid4().hex[:8]}@example.com"
    world = clinic_world(services={"call": dict(name="Call", duration=15, price=0, notice=0)},
                         providers={"dr": dict(name="Dr Told")}, patients=[email])
    Service.objects(id=world["call"].id).update_one(set__repeat_allowed=True)
    client = signed_in(app, email=email)
    # A series booked as usual: one confirmation lists both visits, none is queued for the second.
    series = book(client, world, at(future_day(2), 9), repeat={"every_weeks": 1, "count": 2})["appointments"]
    assert len(confirmations(series[0]["id"])) == 1 and not confirmations(series[1]["id"])
    # The outbox's insert fails once, right after the booking's own write (code 50: the database
    # gave up on the command): the booking answers 201, the confirmation is only logged as missing.
    failpoint.fail(["insert"], {"times": 1}, errorCode=50)
    try:
        booked = book(client, world, at(future_day(3), 10))
    finally:
        failpoint.off()
    assert Appointment.objects.get(id=booked["id"]).status == "confirmed"
    assert OutboxMessage.objects(appointment=booked["id"]).count() == 0, "the fault did not hit the outbox"

    later = utcnow() + timedelta(minutes=1)  # past the half-minute a live request is given
    with app.app_context():
        first = sweep(now=later)
    assert first.told == [booked["id"]], first.lines()
    queued = confirmations(booked["id"])
    assert len(queued) == 1 and queued[0].status == "sent", [(m.status, m.last_error) for m in queued]
    # Queued with what a booking queues: its reminders too (due later).
    assert OutboxMessage.objects(appointment=booked["id"], kind="reminder").count() == 2
    received = [m for m in smtp_server.wait_for(2, to=email) if m["Subject"].startswith("Booked")]
    about_it = [m for m in received if f"outbox-{queued[0].id}@" in m["Message-ID"]]
    assert len(about_it) == 1, [m["Subject"] for m in received]
    # The series was told already: nothing for its second visit.
    assert not confirmations(series[1]["id"])

    with app.app_context():
        second = sweep(now=later + timedelta(minutes=1))
    assert second.told == [], second.lines()
    assert len(confirmations(booked["id"])) == 1
    assert OutboxMessage.objects(appointment=booked["id"]).count() == 3  # confirmation + 2 reminders
    assert len([m for m in smtp_server.messages(to=email) if m["Subject"].startswith("Booked")]) == 2
