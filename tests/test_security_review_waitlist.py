"""Issue #23's security review, the waitlist and reschedule findings, replayed against the real servers.

Each test names the finding it replays and shows it closed:

1. the waitlist bypassed MAX_HELD, MAX_UPCOMING and the patient-overlap check (offers and their
   acceptance now pass the booking's own guards; entries count in a rolling window);
2. one entry for far-off dates stopped every offer for every patient (refused at join; one bad
   entry never stops the others);
5. two concurrent reschedules let one patient overlap themselves, reschedules were not throttled,
   and superseded notices and reminders were left queued.
"""

import threading
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from models import Appointment, Patient
from models.booking import waitlist
from models.booking.waitlist import WaitlistEntry
from models.clock import utcnow
from models.messages.documents import OutboxMessage
from models.sweep import sweep
from tests.support.clients import signed_in
from tests.support.factories import PASSWORD, at, csrf_header, form_csrf, future_day, make_clinic, \
    make_patient, make_provider, make_service


def book(client, service, provider, start):
    return client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat()})


def join(client, service, first, last=None, provider=None):
    body = {"service": str(service.id), "from": str(first), "to": str(last or first)}
    if provider is not None:
        body["provider"] = str(provider.id)
    return client.post("/api/waitlist", headers=csrf_header(client), json=body)


def accept(client, entry_id):
    return client.post(f"/api/waitlist/{entry_id}/accept", headers=csrf_header(client))


def offer_of(entry_id):
    entry = WaitlistEntry.objects.get(id=entry_id)
    return Appointment.objects.get(id=entry.offer.id) if entry.offer else None


def utc(dt):
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


@pytest.fixture
def world(app, clinic_world):
    return clinic_world(
        services={"call": dict(name="Call", duration=15, price=0, cancel_hours=0),
                  "physio": dict(name="Physio", duration=30, price=6000, cancel_hours=0)},
        providers={"a": dict(name="Dr A"), "b": dict(name="Dr B")},
        patients=["hoarder@example.com", "next@example.com"])


# --- 1. The waitlist bypassed MAX_HELD, MAX_UPCOMING and the patient-overlap check ---------------

def test_1_a_patient_at_max_upcoming_is_not_offered_and_the_time_goes_to_the_next_in_line(app, world):
    """Replays: a patient at 6 confirmed joined the waitlist for the free service and was offered times."""
    hoarder = signed_in(app, "hoarder@example.com")
    day = future_day(3)
    assert [book(hoarder, world["call"], world["a"], at(day, h)).status_code
            for h in (9, 10, 11, 13, 14, 15)] == [201] * 6
    later = future_day(4)
    joined = join(hoarder, world["call"], later)
    assert joined.status_code == 201, joined.get_json()
    # Times are free that day, but an offer is a booking: it would be a 7th upcoming appointment.
    assert joined.get_json()["status"] == "waiting" and joined.get_json()["offer"] is None
    nxt = join(signed_in(app, "next@example.com"), world["call"], later)
    assert nxt.get_json()["status"] == "offered"
    with app.app_context():
        sweep()
    assert WaitlistEntry.objects.get(id=joined.get_json()["id"]).status == "waiting"
    hoarder_id = Patient.objects.get(email="hoarder@example.com").id
    assert Appointment.objects(patient=hoarder_id).count() == 6


def test_1_accepting_an_offer_counts_against_max_upcoming(app, world):
    """An offer made at 5 upcoming cannot be accepted once the patient has 6 (staff booked one meanwhile)."""
    from models.booking import create

    client = signed_in(app, "hoarder@example.com")
    day = future_day(3)
    assert [book(client, world["call"], world["a"], at(day, h)).status_code for h in (9, 10, 11, 13, 14)] == [201] * 5
    entry = join(client, world["call"], future_day(4)).get_json()
    assert entry["status"] == "offered"  # 5 upcoming and this offer: within the limit of 6
    patient = Patient.objects.get(email="hoarder@example.com")
    with app.app_context():  # the desk books a 6th visit (staff are not held to the online limits)
        create.book(patient, str(world["call"].id), str(world["b"].id), at(day, 15), utcnow(),
                     booked_by="staff:desk", pay_online=False)
    refused = accept(client, entry["id"])
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "too_many_holds"
    assert Appointment.objects(patient=patient.id, status="confirmed").count() == 6


def test_1_an_offer_never_overlaps_the_patients_own_appointment(app, clinic_world):
    """Replays: two confirmed at 09:00 on the same day with two clinicians, one of them from the waitlist."""
    w = clinic_world(services={"call": dict(name="Call", duration=15, price=0, cancel_hours=0)},
                     providers={"a": dict(name="Dr A", hours=("09:00", "09:15"), lunch=None),
                                "b": dict(name="Dr B", hours=("09:00", "09:30"), lunch=None)},
                     patients=["hoarder@example.com", "next@example.com"])
    day = future_day(3)
    hoarder = signed_in(app, "hoarder@example.com")
    assert book(hoarder, w["call"], w["a"], at(day, 9)).status_code == 201
    mine = join(hoarder, w["call"], day).get_json()
    # Dr B's 09:00 is the earliest free time, but the patient is busy then: they get 09:15 instead.
    assert mine["status"] == "offered", mine
    assert datetime.fromisoformat(mine["offer"]["start"]) == at(day, 9, 15)
    # The 09:00 they could not have goes to the next in line.
    theirs = join(signed_in(app, "next@example.com"), w["call"], day).get_json()
    assert theirs["status"] == "offered" and datetime.fromisoformat(theirs["offer"]["start"]) == at(day, 9)


def test_1_accepting_an_offer_that_overlaps_the_patients_own_time_is_refused(app, clinic_world):
    """The acceptance checks the overlap again: the desk booked the patient at the same time meanwhile."""
    from models.booking import create

    w = clinic_world(services={"call": dict(name="Call", duration=15, price=0, cancel_hours=0)},
                     providers={"a": dict(name="Dr A", hours=("09:00", "09:15"), lunch=None),
                                "b": dict(name="Dr B", hours=("09:00", "09:15"), lunch=None)},
                     patients=["hoarder@example.com"])
    day = future_day(3)
    client = signed_in(app, "hoarder@example.com")
    entry = join(client, w["call"], day).get_json()
    assert entry["status"] == "offered" and entry["offer"]["provider"]["name"] == "Dr A"
    patient = Patient.objects.get(email="hoarder@example.com")
    with app.app_context():  # staff book over the conflict, explicitly
        create.book(patient, str(w["call"].id), str(w["b"].id), at(day, 9), utcnow(), booked_by="staff:desk",
                     pay_online=False, override=True, by_staff=True, notes="phoned in")
    refused = accept(client, entry["id"])
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "patient_overlap"
    assert Appointment.objects(patient=patient.id, status="confirmed").count() == 1


def test_1_paid_offers_count_as_holds(app, world):
    """Replays: for the paid service a new patient got 5 `held` through the waitlist (cap 2)."""
    client = signed_in(app, "hoarder@example.com")
    entries = [join(client, world["physio"], future_day(3 + n)).get_json() for n in range(5)]
    assert [e["status"] for e in entries] == ["offered", "offered", "waiting", "waiting", "waiting"]
    assert [accept(client, e["id"]).status_code for e in entries[:2]] == [201, 201]
    with app.app_context():
        sweep()
    assert [WaitlistEntry.objects.get(id=e["id"]).status for e in entries[2:]] == ["waiting"] * 3
    patient = Patient.objects.get(email="hoarder@example.com")
    assert Appointment.objects(patient=patient.id, status="held").count() == 2
    # And an open offer is a hold for direct bookings too.
    refused = book(client, world["physio"], world["a"], at(future_day(9), 9))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "too_many_holds"


def test_1_waitlist_entries_count_in_a_rolling_window_whatever_became_of_them(app, clinic_world):
    """Replays: accepted entries stopped counting, so join + accept could be repeated without end."""
    w = clinic_world(clinic={"max_upcoming": 50},
                     services={"call": dict(name="Call", duration=15, price=0, cancel_hours=0)},
                     providers={"a": dict(name="Dr A")}, patients=["hoarder@example.com"])
    client = signed_in(app, "hoarder@example.com")
    assert waitlist.MAX_ENTRIES_PER_WINDOW == 20  # README's waitlist section names the number
    for n in range(20):
        entry = join(client, w["call"], future_day(2 + n)).get_json()
        assert entry["status"] == "offered", (n, entry)
        if n % 2:
            assert client.delete(f"/api/waitlist/{entry['id']}", headers=csrf_header(client)).status_code == 204
        else:
            assert accept(client, entry["id"]).status_code == 201
    assert [e for e in client.get("/api/waitlist").get_json() if e["status"] in ("waiting", "offered")] == []
    refused = join(client, w["call"], future_day(30))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "too_many_entries"
    # The window rolls: 31 days on, the patient may join again.
    later = utcnow() + timedelta(days=31)
    patient = Patient.objects.get(email="hoarder@example.com")
    with app.app_context():
        day = (later + timedelta(days=3)).date()
        assert waitlist.join(patient, str(w["call"].id), None, day, day, later).status == "waiting"


# --- 2. One far-off entry stopped every offer for every patient ---------------------------------

def test_2_dates_beyond_the_booking_horizon_are_refused_at_join_with_the_field_named(app, world):
    """Replays: an entry for 9999-12-01..9999-12-31 was accepted (201)."""
    client = signed_in(app, "hoarder@example.com")
    far = join(client, world["call"], "9999-12-01", "9999-12-31")
    assert far.status_code == 422, far.get_json()
    assert far.get_json()["error"]["code"] == "invalid" and "from" in far.get_json()["error"]["fields"]
    # The service's horizon (60 days) is the limit, for the last day too.
    beyond = join(client, world["call"], future_day(2), future_day(70))
    assert beyond.status_code == 422 and list(beyond.get_json()["error"]["fields"]) == ["to"]
    assert join(client, world["call"], future_day(2), future_day(55)).status_code == 201
    # The page's form says it on the field.
    page = app.test_client()
    from tests.support.factories import api_login

    api_login(page, "next@example.com")
    form = page.get("/portal/waitlist").get_data(as_text=True)
    answer = page.post("/portal/waitlist", data={
        "csrf_token": form_csrf(form), "jwt_csrf": page.get_cookie("csrf_access_token").value,
        "service": str(world["call"].id), "provider": "any", "date_from": "9999-12-01", "date_to": "9999-12-31"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'aria-invalid="true"' in html and "The first day is too far ahead" in html
    assert WaitlistEntry.objects(patient=Patient.objects.get(email="next@example.com").id).count() == 0


def test_2_one_bad_entry_never_stops_offers_to_the_others(app, world):
    """Replays: with one far-off entry first in line, every sweep logged "waitlist offers not made"."""
    hoarder = Patient.objects.get(email="hoarder@example.com")
    # Entries written before join checked dates (or damaged since): far-off dates, and no last day at all.
    raw = WaitlistEntry._get_collection()
    made = utcnow() - timedelta(hours=1)
    raw.insert_one({"patient": hoarder.id, "service": world["call"].id, "date_from": datetime(9999, 12, 1),
                    "date_to": datetime(9999, 12, 31), "status": "waiting", "created_at": made,
                    "updated_at": made, "declined": [], "note": ""})
    broken = raw.insert_one({"patient": hoarder.id, "service": world["call"].id, "date_from": datetime(2026, 1, 1),
                             "status": "waiting", "created_at": made, "updated_at": made, "declined": [],
                             "note": ""}).inserted_id
    # Someone behind them joins while times are free: they are offered one at once.
    joined = join(signed_in(app, "next@example.com"), world["call"], future_day(3))
    assert joined.status_code == 201 and joined.get_json()["status"] == "offered", joined.get_json()
    # The sweep offers to whoever can be served and names the entry it could not serve.
    third = make_patient(email="third@example.com")
    with app.app_context():
        day = future_day(4)
        waitlist.join(third, str(world["call"].id), None, day, day, utcnow())
        report = sweep()
    assert len(report.offered) == 1 and WaitlistEntry.objects.get(patient=third.id).status == "offered"
    assert not any("waitlist offers not made" in p for p in report.problems), report.problems
    assert any(str(broken) in p for p in report.problems), report.problems


# --- 5. Reschedule: overlap under concurrency, throttle, superseded messages ----------------------

def test_5_two_concurrent_reschedules_cannot_overlap_the_patient(live_server):
    """Replays: two reschedules at once to 10:15 with two clinicians both answered 200."""
    base, app = live_server(COOKIE_SECURE=False)
    make_clinic()
    call = make_service("Call", duration=15, price=0, cancel_hours=0)
    dr_a, dr_b = make_provider([call], name="Dr A"), make_provider([call], name="Dr B")
    make_patient()
    session = requests.Session()
    assert session.post(f"{base}/api/auth/login", json={"email": "pat@example.com", "password": PASSWORD},
                        timeout=60).status_code == 200
    headers = {"X-CSRF-TOKEN": session.cookies.get("csrf_access_token")}
    day = future_day(5)
    ids = []
    for provider, hour in ((dr_a, 9), (dr_b, 11)):
        resp = session.post(f"{base}/api/appointments", headers=headers, timeout=60, json={
            "service": str(call.id), "provider": str(provider.id), "start": at(day, hour).isoformat()})
        assert resp.status_code == 201, resp.text
        ids.append((resp.json()["id"], provider))
    # Several rounds: each time both appointments go for one new time at once, each with its own clinician.
    for target in (at(day, 10, 15), at(day, 14, 15), at(day, 15, 45)):
        barrier = threading.Barrier(2)
        answers = {}

        def move(appointment_id, provider):
            barrier.wait()
            answers[appointment_id] = session.post(
                f"{base}/api/appointments/{appointment_id}/reschedule", headers=headers, timeout=60,
                json={"start": target.isoformat(), "provider": str(provider.id)})

        threads = [threading.Thread(target=move, args=pair) for pair in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        codes = sorted(a.status_code for a in answers.values())
        assert codes == [200, 409], (target, codes)
        [refused] = [a for a in answers.values() if a.status_code == 409]
        assert refused.json()["error"]["code"] == "patient_overlap"
        starts = [utc(Appointment.objects.get(id=i).start) for i, _p in ids]
        assert starts.count(target.astimezone(timezone.utc)) == 1, starts


def test_5_reschedules_are_throttled_per_patient(make_app, clinic_world):
    """Replays: 40 reschedules in 6.5 s, each queuing a notice and reminders."""
    app = make_app(RESCHEDULES_PER_ACCOUNT_10MIN=3)
    w = clinic_world(services={"call": dict(name="Call", duration=15, price=0, cancel_hours=0)},
                     providers={"a": dict(name="Dr A")}, patients=["pat@example.com"])
    client = signed_in(app)
    day = future_day(5)
    appt = book(client, w["call"], w["a"], at(day, 9)).get_json()
    answers = [client.post(f"/api/appointments/{appt['id']}/reschedule", headers=csrf_header(client),
                           json={"start": at(day, hour).isoformat()}) for hour in (10, 11, 13, 14)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    error = answers[-1].get_json()["error"]
    assert error["code"] == "too_many_requests" and "try again" in error["message"]
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert utc(Appointment.objects.get(id=appt["id"]).start) == at(day, 13).astimezone(timezone.utc)
    # Booking has its own budget: a throttled mover may still book.
    assert book(client, w["call"], w["a"], at(day, 16)).status_code == 201


def test_5_superseded_notices_and_reminders_are_dropped_from_the_outbox(app, clinic_world):
    """A move makes the old time's reminders and the last move's notice obsolete: dropped with the reason."""
    w = clinic_world(services={"call": dict(name="Call", duration=15, price=0, cancel_hours=0)},
                     providers={"a": dict(name="Dr A")}, patients=["pat@example.com"])
    client = signed_in(app)
    day = future_day(5)
    appt = book(client, w["call"], w["a"], at(day, 9)).get_json()
    for hour in (10, 11, 13):
        assert client.post(f"/api/appointments/{appt['id']}/reschedule", headers=csrf_header(client),
                           json={"start": at(day, hour).isoformat()}).status_code == 200
    version = Appointment.objects.get(id=appt["id"]).version
    messages = list(OutboxMessage.objects(appointment=appt["id"]))
    current = sorted((m.kind, m.variant) for m in messages if m.version == version)
    assert current == [("reminder", "24h"), ("reminder", "2h"), ("rescheduled", "")]
    assert all(m.status == "queued" for m in messages if m.version == version)
    old = [m for m in messages if m.version != version]
    assert len(old) == 3 + 2 * 3  # the booking: confirmation and 2 reminders; each earlier move: notice and 2
    assert {m.status for m in old} == {"dropped"}
    assert all(m.drop_reason.startswith("superseded: the appointment was rescheduled") for m in old)


def test_2_the_horizon_is_a_date_in_the_clinics_zone():
    """`last_bookable_day` is the local date of now + the service's horizon (no app needed)."""
    from types import SimpleNamespace

    service = SimpleNamespace(duration_minutes=15, buffer_before_minutes=0, buffer_after_minutes=0,
                              min_notice_minutes=0, horizon_days=60)
    clinic = SimpleNamespace(timezone="Pacific/Auckland", slot_step_minutes=15)
    now = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)  # already 5 December in Auckland
    assert waitlist.last_bookable_day(service, clinic, now) == date(2027, 2, 3)
