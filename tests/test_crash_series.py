"""Crash consistency of a series' "this and the following visits" (issues 28 and 31): a cancel or a
move of several visits stopped part-way (the `models.crashpoints` seam raises there, as a killed
worker would stop) ends with every visit cancelled or moved, by the patient's repeated request or by
the sweep; never some of them, and no time held twice or lost."""

from datetime import timedelta, timezone

import pytest

from models import Appointment, Service, TimeClaim, crashpoints
from models.clock import utcnow
from models.messages.documents import OutboxMessage
from models.sweep import sweep
from tests.support.clients import signed_in
from tests.support.crashes import Crash, crash_at, repair  # noqa: F401 (crash_at is a fixture)
from tests.support.factories import at, csrf_header, future_day


@pytest.fixture
def world(app, clinic_world):
    made = clinic_world(services={"call": dict(name="Call", duration=15, price=0, notice=0, cancel_hours=0)},
                        providers={"dr": dict(name="Dr Crash")},
                        patients=["pat@example.com", "other@example.com"])
    Service.objects(id=made["call"].id).update_one(set__repeat_allowed=True)
    return made


def post(client, path, body):
    return client.post(path, headers=csrf_header(client), json=body)


def book_series(client, world, start, count=4):
    resp = post(client, "/api/appointments", {"service": str(world["call"].id), "provider": str(world["dr"].id),
                                              "start": start.isoformat(), "repeat": {"every_weeks": 1, "count": count}})
    assert resp.status_code == 201, resp.get_json()
    return [v["id"] for v in resp.get_json()["appointments"]]


def utc(when):
    return when.astimezone(timezone.utc)


def own_units(appt_id):
    return TimeClaim.objects(appointment=appt_id).count()


@pytest.mark.parametrize("how", ["retry", "sweep"])
@pytest.mark.parametrize("point", ["series.cancelled_one", "cancel.notified"])
def test_cancelling_this_and_the_later_visits_cut_off_part_way_cancels_them_all(app, world, crash_at, point, how):
    client = signed_in(app)
    ids = book_series(client, world, at(future_day(3), 10))
    crash_at(point)
    with pytest.raises(Crash):
        post(client, f"/api/appointments/{ids[1]}/cancel", {"scope": "following"})
    crashpoints.set_hook(None)
    with app.app_context():
        if how == "sweep":
            # What a sweep alone can do: finish the visit it cut off; the rest is still the
            # patient's to cancel, and the visit they asked about is still theirs, never half-done.
            report = sweep(now=utcnow() + timedelta(minutes=1))
            assert bool(report.recovered) == (point == "cancel.notified"), report.lines()
            assert Appointment.objects.get(id=ids[1]).status == "confirmed"
        repair("retry", lambda: post(client, f"/api/appointments/{ids[1]}/cancel", {"scope": "following"}))

    statuses = [Appointment.objects.get(id=i).status for i in ids]
    assert statuses == ["confirmed", "cancelled", "cancelled", "cancelled"]
    assert all(Appointment.objects.get(id=i).pending is None for i in ids)
    assert [own_units(i) for i in ids[1:]] == [0, 0, 0] and own_units(ids[0]) > 0
    # One cancellation email per cancelled visit, never two.
    assert [OutboxMessage.objects(appointment=i, kind="cancelled").count() for i in ids] == [0, 1, 1, 1]


@pytest.mark.parametrize("how", ["retry", "sweep"])
@pytest.mark.parametrize("point", ["reschedule.claimed", "series.decided", "series.moved_one", "reschedule.notified"])
def test_moving_this_and_the_later_visits_cut_off_part_way_ends_all_or_nothing(app, world, crash_at, point, how):
    client, other = signed_in(app), signed_in(app, "other@example.com")
    day = future_day(3)
    old = [at(day + timedelta(weeks=n), 10) for n in range(3)]
    new = [at(day + timedelta(weeks=n), 14) for n in range(3)]
    ids = book_series(client, world, old[0], count=3)
    crash_at(point)
    with pytest.raises(Crash):
        post(client, f"/api/appointments/{ids[0]}/reschedule", {"start": new[0].isoformat(), "scope": "following"})
    crashpoints.set_hook(None)
    with app.app_context():
        repair(how, lambda: post(client, f"/api/appointments/{ids[0]}/reschedule",
                                 {"start": new[0].isoformat(), "scope": "following"}))

    visits = [Appointment.objects.get(id=i) for i in ids]
    assert all(v.pending is None for v in visits)
    # Claimed but not decided, the sweep gives the move back; decided (or retried), every visit moved.
    moved = how == "retry" or point != "reschedule.claimed"
    here, there = (new, old) if moved else (old, new)
    assert [v.start.replace(tzinfo=timezone.utc) for v in visits] == [utc(h) for h in here]
    # Each visit holds exactly its own 15 minutes; the other times are free for another patient.
    assert [own_units(i) for i in ids] == [len(TimeClaim.objects(appointment=ids[0]))] * 3
    for when in there:
        resp = post(other, "/api/appointments", {"service": str(world["call"].id), "provider": str(world["dr"].id),
                                                 "start": when.isoformat()})
        assert resp.status_code == 201, resp.get_json()
    assert [OutboxMessage.objects(appointment=i, kind="rescheduled").count() for i in ids] == [int(moved)] * 3
