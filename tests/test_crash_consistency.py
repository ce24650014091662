"""Crash consistency (issue 31): each multi-write action is stopped between each pair of its writes
(the `models.crashpoints` seam raises there, as a killed worker would stop), and then either the
patient's repeated request or the sweep brings it to the end: the time is free or held exactly once,
the email that was not sent is queued once, the money is refunded once."""

from datetime import timedelta, timezone

import pytest

from models import Appointment, Payment, TimeClaim, crashpoints
from models.booking.claims import claim_units
from models.clock import utcnow
from models.messages.documents import OutboxMessage
from models.sweep import sweep
from tests.support.clients import signed_in
from tests.support.crashes import Crash, crash_at, repair  # noqa: F401 (crash_at is a fixture)
from tests.support.factories import at, csrf_header, future_day


@pytest.fixture
def world(app, clinic_world):
    return clinic_world(services={"call": dict(name="Call", duration=15, price=0, notice=0, cancel_hours=0)},
                        providers={"dr": dict(name="Dr Crash")},
                        patients=["pat@example.com", "other@example.com"])


def book(client, world, start):
    resp = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(world["call"].id), "provider": str(world["dr"].id), "start": start.isoformat()})
    return resp


def cancel(client, appt_id):
    return client.post(f"/api/appointments/{appt_id}/cancel", headers=csrf_header(client), json={})


def move(client, appt_id, start):
    return client.post(f"/api/appointments/{appt_id}/reschedule", headers=csrf_header(client),
                       json={"start": start.isoformat()})


def emails(appt_id, kind):
    return OutboxMessage.objects(appointment=appt_id, kind=kind).count()


CANCEL_POINTS = ["cancel.moved", "cancel.released", "cancel.settled", "cancel.notified", "cancel.offered"]


@pytest.mark.parametrize("how", ["retry", "sweep"])
@pytest.mark.parametrize("point", CANCEL_POINTS)
def test_a_cancel_cut_off_anywhere_is_finished_by_a_retry_or_the_sweep(app, world, crash_at, point, how):
    client, other = signed_in(app), signed_in(app, "other@example.com")
    start = at(future_day(3), 10)
    appt_id = book(client, world, start).get_json()["id"]
    crash_at(point)
    with pytest.raises(Crash):
        cancel(client, appt_id)
    crashpoints.set_hook(None)
    assert Appointment.objects.get(id=appt_id).status == "cancelled"

    with app.app_context():
        repair(how, lambda: cancel(client, appt_id))

    appt = Appointment.objects.get(id=appt_id)
    assert appt.status == "cancelled" and appt.pending is None
    assert TimeClaim.objects(appointment=appt_id).count() == 0
    assert emails(appt_id, "cancelled") == 1, "the cancellation email is queued exactly once"
    # The time is neither booked nor stuck: another patient books it.
    assert book(other, world, start).status_code == 201
    # Finished: a further cancel is refused as for any closed appointment, and queues nothing.
    assert cancel(client, appt_id).status_code == 409
    assert emails(appt_id, "cancelled") == 1


RESCHEDULE_POINTS = ["reschedule.marked", "reschedule.claimed", "reschedule.moved", "reschedule.trimmed",
                     "reschedule.notified", "reschedule.offered"]


@pytest.mark.parametrize("how", ["retry", "sweep"])
@pytest.mark.parametrize("point", RESCHEDULE_POINTS)
def test_a_reschedule_cut_off_anywhere_ends_at_one_time(app, world, crash_at, point, how):
    client, other = signed_in(app), signed_in(app, "other@example.com")
    day = future_day(3)
    old, new = at(day, 10), at(day, 14)
    appt_id = book(client, world, old).get_json()["id"]
    crash_at(point)
    with pytest.raises(Crash):
        move(client, appt_id, new)
    crashpoints.set_hook(None)

    with app.app_context():
        repair(how, lambda: move(client, appt_id, new))

    appt = Appointment.objects.get(id=appt_id)
    assert appt.pending is None
    moved = point not in ("reschedule.marked", "reschedule.claimed") or how == "retry"
    here, there = (new, old) if moved else (old, new)
    assert appt.start.replace(tzinfo=timezone.utc) == here.astimezone(timezone.utc)
    # Exactly the units of the time it has: the other time is free for another patient...
    units = claim_units(here.astimezone(timezone.utc), (here + timedelta(minutes=15)).astimezone(timezone.utc))
    assert sorted(c.unit.replace(tzinfo=timezone.utc) for c in TimeClaim.objects(appointment=appt_id)) == units
    assert book(other, world, there).status_code == 201
    # ...and its own time is not.
    assert book(other, world, here).status_code == 409
    assert emails(appt_id, "rescheduled") == (1 if moved else 0)


@pytest.fixture
def paid_world(app, clinic_world):
    return clinic_world(services={"consult": dict(name="Consultation", duration=30, price=5000)},
                        providers={"provider": dict(name="Dr Refund")}, patients=["pat@example.com"])


@pytest.mark.parametrize("point", ["cancel.moved", "refund.reserved", "refund.sent", "cancel.settled"])
def test_a_paid_cancellation_cut_off_refunds_once_after_the_sweep(app, paid_world, fake_gateway, crash_at, point):
    from models.booking import cancellation
    from models.payments.ledger import payment_for
    from models.payments.sync import sync_payment_intent
    from tests.support.payments import book_held

    with app.app_context():
        now = utcnow()
        appt = book_held(paid_world.service, paid_world.provider, now=now)
        payment = payment_for(appt, "elements", now)
        pi = fake_gateway.add_intent(payment.amount, metadata={"payment_id": str(payment.id),
                                                               "appointment_id": str(appt.id)})
        Payment.objects(id=payment.id).update_one(set__stripe_payment_intent=pi["id"])
        assert sync_payment_intent(pi["id"], now=now).outcome == "confirmed"
        appt.reload()
        crash_at(point)
        with pytest.raises(Crash):
            cancellation.cancel(appt, now, by_staff=True, actor="staff:test")
        crashpoints.set_hook(None)
        # Two sweeps a minute apart (a refund reserved just now is sent by the next pass).
        sweep(now=now + timedelta(minutes=1))
        sweep(now=now + timedelta(minutes=3))

    payment.reload()
    assert payment.status == "refunded" and payment.amount_refunded == 5000
    assert len(fake_gateway.refunds_of(pi["id"])) == 1, "refunded once at Stripe"
    assert Appointment.objects.get(id=appt.id).pending is None
    assert TimeClaim.objects(appointment=appt.id).count() == 0
    assert emails(appt.id, "cancelled") == 1


def test_a_move_refused_for_one_clinician_leaves_no_marker_and_the_next_is_tried(app, clinic_world):
    from models.booking.reschedule import reschedule_to_first_free

    w = clinic_world(services={"call": dict(name="Call", duration=15, price=0, notice=0, cancel_hours=0)},
                     providers={"one": dict(name="Dr One"), "two": dict(name="Dr Two")},
                     patients=["pat@example.com", "other@example.com"])
    client, other = signed_in(app), signed_in(app, "other@example.com")
    day = future_day(3)

    def book_with(c, provider, start):
        return c.post("/api/appointments", headers=csrf_header(c), json={
            "service": str(w["call"].id), "provider": str(w[provider].id), "start": start.isoformat()})

    appt_id = book_with(client, "one", at(day, 9)).get_json()["id"]
    assert book_with(other, "one", at(day, 14)).status_code == 201  # Dr One is taken at 14:00
    with app.app_context():
        moved = reschedule_to_first_free(Appointment.objects.get(id=appt_id), at(day, 14).astimezone(timezone.utc),
                                         utcnow(), [str(w["one"].id), str(w["two"].id)])
    assert moved.provider.id == w["two"].id and moved.pending is None
    assert TimeClaim.objects(appointment=appt_id, provider=w["one"].id).count() == 0
