"""Reschedule through the API: the new time is claimed before the old one is released."""

import threading
from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, AuditEvent, Payment, TimeClaim
from models.booking.claims import claim_units
from tests.support.factories import at, csrf_header, future_day
from tests.support.clients import signed_in


@pytest.fixture
def setup(app, clinic_world):
    return clinic_world(
        # The race below holds a new paid time each round: more than the default 2 unpaid holds.
        clinic={"max_held": 10},
        services={"consult": dict(name="Consultation", duration=30, price=6000, after=10, cancel_hours=24),
                  "free": dict(name="Call", duration=15, price=0, cancel_hours=2)},
        providers={"one": dict(name="Dr One"), "two": dict(name="Dr Two")},
        patients=["pat@example.com", "other@example.com"])


def book(client, service, provider, start):
    resp = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat()})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def move(client, appt_id, start, provider=None):
    body = {"start": start.isoformat()}
    if provider is not None:
        body["provider"] = str(provider.id)
    return client.post(f"/api/appointments/{appt_id}/reschedule", headers=csrf_header(client), json=body)


def units_of(appt_id):
    return sorted(c.unit for c in TimeClaim.objects(appointment=appt_id))


def test_reschedule_moves_the_same_appointment_and_frees_the_old_time(app, setup):
    s, client = setup, signed_in(app)
    day = future_day(5)
    booked = book(client, s["consult"], s["one"], at(day, 10))
    resp = move(client, booked["id"], at(day, 14))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["id"] == booked["id"] and body["status"] == "held"
    assert datetime.fromisoformat(body["start"]) == at(day, 14)
    assert body["hold_expires_at"][:19] == booked["hold_expires_at"][:19]  # the hold is not extended by moving
    appt = Appointment.objects.get(id=booked["id"])
    expected = claim_units(at(day, 14).astimezone(timezone.utc), at(day, 14, 40).astimezone(timezone.utc))
    assert [u.replace(tzinfo=timezone.utc) for u in units_of(appt.id)] == expected
    # The old time is free again: another patient books it.
    other = signed_in(app, "other@example.com")
    book(other, s["consult"], s["one"], at(day, 10))
    from models.messages.outbox import OutboxMessage

    [moved_mail] = OutboxMessage.objects(kind="rescheduled", subject=f"Appointment:{appt.id}")
    assert moved_mail.version == Appointment.objects.get(id=appt.id).version >= 1
    assert AuditEvent.objects(action="appointment.reschedule", outcome="ok").count() == 1


def test_overlapping_move_with_the_same_provider_keeps_the_shared_units(app, setup):
    s, client = setup, signed_in(app)
    day = future_day(5)
    booked = book(client, s["consult"], s["one"], at(day, 10))
    resp = move(client, booked["id"], at(day, 10, 15))
    assert resp.status_code == 200, resp.get_json()
    units = units_of(booked["id"])
    assert len(units) == 8 and units[0].replace(tzinfo=timezone.utc) == at(day, 10, 15).astimezone(timezone.utc)


def test_move_to_another_provider_and_payment_carries_over(app, setup):
    s, client = setup, signed_in(app)
    day = future_day(5)
    booked = book(client, s["consult"], s["one"], at(day, 10))
    appt = Appointment.objects.get(id=booked["id"])
    # Paid: a Payment keyed by the appointment, and the appointment confirmed with permanent claims.
    Payment(appointment=appt, patient=appt.patient, amount=6000, currency="gbp", status="succeeded").save()
    Appointment.objects(id=appt.id).update_one(set__status="confirmed", set__hold_expires_at=None)
    TimeClaim.objects(appointment=appt.id).update(set__expires_at=None)
    resp = move(client, appt.id, at(day, 11), provider=s["two"])
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "confirmed" and body["provider"]["name"] == "Dr Two"
    assert Payment.objects.get(appointment=appt.id).status == "succeeded"
    claims = list(TimeClaim.objects(appointment=appt.id))
    assert {c.provider.id for c in claims} == {s["two"].id}
    assert all(c.expires_at is None for c in claims)


def test_a_taken_time_is_refused_and_nothing_changes(app, setup):
    s, client = setup, signed_in(app)
    day = future_day(5)
    mine = book(client, s["consult"], s["one"], at(day, 10))
    before = units_of(mine["id"])
    book(signed_in(app, "other@example.com"), s["consult"], s["one"], at(day, 15))
    resp = move(client, mine["id"], at(day, 15))
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "slot_taken"
    assert units_of(mine["id"]) == before
    assert Appointment.objects.get(id=mine["id"]).start.replace(tzinfo=timezone.utc) == at(day, 10)


def test_not_bookable_times_are_422(app, setup):
    s, client = setup, signed_in(app)
    day = future_day(5)
    mine = book(client, s["consult"], s["one"], at(day, 10))
    for start in (at(day, 20), at(day, 12, 15), at(day, 10, 7)):
        resp = move(client, mine["id"], start)
        assert resp.status_code == 422, (start, resp.get_json())
    assert move(client, mine["id"], at(day, 10)).status_code == 422  # the same time
    assert client.post(f"/api/appointments/{mine['id']}/reschedule", headers=csrf_header(client),
                       json={"start": "tomorrow"}).status_code == 422


def test_cancellation_window_applies(app, setup):
    s, client = setup, signed_in(app)
    now = datetime.now(timezone.utc)
    soon = (now + timedelta(hours=1)).astimezone(at(future_day(0), 9).tzinfo)
    # A free service confirmed at once, starting inside its 2-hour window (built directly: it must be
    # on the grid and inside hours, which the clock of the test run decides).
    appt_id = book(client, s["free"], s["one"], at(future_day(3), 9))["id"]
    Appointment.objects(id=appt_id).update_one(set__start=soon, set__end=soon + timedelta(minutes=15))
    resp = move(client, appt_id, at(future_day(3), 11))
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "inside_cancellation_window"
    assert "+44 20 7946 0123" in resp.get_json()["error"]["message"]


def test_someone_elses_appointment_is_404(app, setup):
    s = setup
    mine = book(signed_in(app), s["consult"], s["one"], at(future_day(5), 10))
    other = signed_in(app, "other@example.com")
    assert move(other, mine["id"], at(future_day(5), 14)).status_code == 404


def test_cancelled_appointment_cannot_move(app, setup):
    s, client = setup, signed_in(app)
    mine = book(client, s["consult"], s["one"], at(future_day(5), 10))
    client.post(f"/api/appointments/{mine['id']}/cancel", headers=csrf_header(client))
    resp = move(client, mine["id"], at(future_day(5), 14))
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "not_movable"


def test_race_reschedule_against_another_patient_booking_the_same_time(app, setup):
    """Both go for 15:00 at once, many times over: exactly one wins each round; the loser keeps what it had."""
    s = setup
    day = future_day(6)
    mover, booker = signed_in(app), signed_in(app, "other@example.com")
    for round_no, hour in enumerate((14, 15, 16)):
        mine = book(mover, s["consult"], s["one"], at(day, 9 + round_no))
        target = at(day, hour)
        barrier = threading.Barrier(2)
        results = {}

        def do_move():
            barrier.wait()
            results["move"] = move(mover, mine["id"], target)

        def do_book():
            barrier.wait()
            results["book"] = booker.post("/api/appointments", headers=csrf_header(booker), json={
                "service": str(s["consult"].id), "provider": str(s["one"].id), "start": target.isoformat()})

        threads = [threading.Thread(target=do_move), threading.Thread(target=do_book)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        codes = sorted([results["move"].status_code, results["book"].status_code])
        assert codes in ([200, 409], [201, 409]), (codes, results["move"].get_json(), results["book"].get_json())
        active = Appointment.objects(provider=s["one"].id, status__in=("held", "confirmed"), start=target)
        assert active.count() == 1
        appt = Appointment.objects.get(id=mine["id"])
        # The mover has exactly one time, with all of its units claimed: the new one or the old one.
        start = appt.start.replace(tzinfo=timezone.utc)
        expected = claim_units(start, start + timedelta(minutes=40))
        assert [u.replace(tzinfo=timezone.utc) for u in units_of(appt.id)] == expected
        if results["move"].status_code == 200:
            assert start == target
        else:
            assert start == at(day, 9 + round_no)
