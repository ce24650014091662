"""Issue 24: an action's audit event is written in the same command as its change. A guarded update
carries the event inside the changed document and copies it into the trail at once; stopped in
between (the crash seam, as a killed worker), the change still holds its event and the sweep copies
it, once. Against the stack's MongoDB, through the back office's own door."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from models import Appointment, AuditEvent, Payment
from models.booking.create import book
from models.clock import utcnow
from models.sweep import sweep
from tests.support.clients import signed_in_staff
from tests.support.crashes import Crash, crash_at  # noqa: F401 (crash_at is a fixture)
from tests.support.factories import daytime_zone, form_csrf

ZONE_NAME = daytime_zone()  # "check in now" is inside the working day whatever the hour


@pytest.fixture
def visit(app, clinic_world):
    """A paid visit starting within the hour, booked by staff, and reception signed in."""
    world = clinic_world(clinic={"tz": ZONE_NAME},
                         services={"consult": dict(name="Consultation", duration=30, price=6000)},
                         providers={"dr": dict(name="Dr Audit", hours=("06:00", "20:00"), lunch=None)},
                         staff=("reception",), patients=["pat@example.com"])
    now = datetime.now(timezone.utc)
    local = now.astimezone(ZoneInfo(ZONE_NAME)).replace(second=0, microsecond=0)
    start = local - timedelta(minutes=local.minute % 5) + timedelta(minutes=10)
    appt = book(world.patient, str(world["consult"].id), str(world["dr"].id), start, now,
                booked_by="staff:seed", pay_online=False, by_staff=True)
    desk = signed_in_staff(app, "reception")
    return appt, desk, form_csrf(desk.get("/admin/login").get_data(as_text=True))


def run_sweep(app, now):
    """One sweep pass, as the worker runs it (inside the app, for its lease store)."""
    with app.app_context():
        return sweep(now=now)


def act(desk, token, op, appt, **more):
    """What a click on the day view's button posts."""
    return desk.post("/admin/day/act", data={"op": op, "appointment": str(appt.id), "csrf_token": token, **more})


def events(action, appt):
    return list(AuditEvent.objects(action=action, record=f"Appointment:{appt.id}"))


def carried(document):
    return type(document)._get_collection().find_one({"_id": document.id}).get("audit_pending", [])


def test_check_in_writes_one_event_with_its_change_and_keeps_nothing_in_the_document(visit):
    appt, desk, token = visit
    assert act(desk, token, "check_in", appt).status_code == 302
    [event] = events("appointment.check_in", appt)
    assert event.outcome == "ok" and event.actor.startswith("staff:") and event.request_id
    assert Appointment.objects.get(id=appt.id).status == "checked_in"
    assert carried(appt) == []


def test_a_refused_check_in_writes_its_refusal_and_carries_nothing(visit):
    appt, desk, token = visit
    assert act(desk, token, "check_in", appt).status_code == 302
    act(desk, token, "check_in", appt)  # a second click: the appointment is no longer confirmed
    outcomes = sorted(e.outcome for e in events("appointment.check_in", appt))
    assert outcomes == ["ok", "refused:bad_transition"]
    assert carried(appt) == []


def test_a_check_in_stopped_after_its_change_keeps_its_event_for_the_sweep(app, visit, crash_at):
    appt, desk, token = visit
    crash_at("audit.carried")
    with pytest.raises(Crash):
        act(desk, token, "check_in", appt)
    # The change landed with its event inside it; the trail has not got it yet.
    assert Appointment.objects.get(id=appt.id).status == "checked_in"
    [raw] = carried(appt)
    assert (raw["action"], raw["record"], raw["outcome"]) == ("appointment.check_in", f"Appointment:{appt.id}", "ok")
    assert events("appointment.check_in", appt) == []
    from models import crashpoints

    crashpoints.set_hook(None)
    report = run_sweep(app, utcnow())
    assert report.audited == 1 and "1 carried audit event(s) copied into the trail" in "\n".join(report.lines())
    [event] = events("appointment.check_in", appt)
    assert event.id == raw["_id"] and event.actor == raw["actor"]
    assert carried(appt) == []
    assert run_sweep(app, utcnow()).audited == 0 and len(events("appointment.check_in", appt)) == 1


def test_cash_at_the_desk_is_audited_in_the_payments_own_insert(visit):
    appt, desk, token = visit
    assert act(desk, token, "pay", appt, method="cash").status_code == 302
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.status == "succeeded" and payment.method == "cash"
    [event] = events("appointment.pay", appt)
    assert event.outcome == "ok" and event.actor.startswith("staff:")
    assert carried(payment) == []


def test_a_cancellation_stopped_after_its_change_is_finished_and_audited_by_the_sweep(app, visit, crash_at):
    appt, desk, token = visit
    crash_at("audit.carried")
    with pytest.raises(Crash):
        act(desk, token, "cancel", appt, confirm="yes", refund="none", reason="Unwell")
    from models import crashpoints

    crashpoints.set_hook(None)
    assert Appointment.objects.get(id=appt.id).status == "cancelled"
    assert events("appointment.cancel", appt) == []
    report = run_sweep(app, utcnow() + timedelta(minutes=1))
    assert report.audited == 1 and report.recovered
    [event] = events("appointment.cancel", appt)
    assert event.outcome == "ok"
    cancelled = Appointment.objects.get(id=appt.id)
    assert cancelled.pending is None and carried(cancelled) == []
