"""Availability and booking through the API, against the real servers."""

from datetime import date, datetime, time, timedelta, timezone

import pytest

from models import Appointment, AuditEvent, TimeClaim, TimeOff
from tests.support.factories import (
    LONDON,
    at,
    future_day,
    csrf_header,
    make_clinic,
    make_patient,
    make_provider,
    make_service,
)
from tests.support.clients import signed_in


@pytest.fixture
def clinic_setup(app, clinic_world):
    return clinic_world(
        services={"consult": dict(name="Consultation", duration=30, price=5000, after=10),
                  "physio": dict(name="Physio", duration=45, price=7000),
                  "free": dict(name="Call", duration=15, price=0)},
        providers={"provider": dict(name="Dr One", services=["consult", "physio", "free"]),
                   "other": dict(name="Dr Two", services=["consult", "free"])},
        patients=["pat@example.com", "other@example.com"])


def post_booking(client, service, provider, start):
    return client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat()})


def get_slots(client, service, provider=None, first=None, days=1):
    params = {"service": str(service.id), "days": days}
    if provider:
        params["provider"] = str(provider.id)
    if first:
        params["from"] = first.isoformat()
    resp = client.get("/api/slots", query_string=params)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_slots_are_sorted_future_of_service_length_inside_hours(app, clinic_setup):
    s = clinic_setup
    day = future_day()
    TimeOff(provider=s["provider"], start=at(day, 15), end=at(day, 16)).save()
    slots = get_slots(app.test_client(), s["consult"], s["provider"], day)
    starts = [datetime.fromisoformat(x["start"]) for x in slots]
    assert starts == sorted(starts) and starts
    for slot in slots:
        start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        local = start.astimezone(LONDON)
        assert start.utcoffset() == local.utcoffset()  # shown in the clinic's zone
        assert end - start == timedelta(minutes=30)
        assert time(9) <= local.time() and end.astimezone(LONDON).time() <= time(17)
        assert not (start < at(day, 13) and end > at(day, 12)), "overlaps the lunch break"
        assert not (start < at(day, 16) and end > at(day, 15)), "overlaps time off"
        assert slot["provider"] == str(s["provider"].id)
    assert starts[0] == at(day, 9) and at(day, 16, 30) in starts and at(day, 11, 30) in starts


def test_any_provider_merges_everyone_offering_the_service(app, clinic_setup):
    s = clinic_setup
    slots = get_slots(app.test_client(), s["consult"], first=future_day())
    assert {x["provider"] for x in slots} == {str(s["provider"].id), str(s["other"].id)}
    physio = get_slots(app.test_client(), s["physio"], first=future_day())
    assert {x["provider"] for x in physio} == {str(s["provider"].id)}


def test_paid_booking_is_held_and_free_booking_confirmed(app, clinic_setup):
    s = clinic_setup
    client = signed_in(app)
    day = future_day()
    held = post_booking(client, s["consult"], s["provider"], at(day, 10))
    assert held.status_code == 201
    body = held.get_json()
    assert body["status"] == "held" and body["amount"] == 5000 and body["currency"] == "gbp"
    expires = datetime.fromisoformat(body["hold_expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(timezone.utc) <= timedelta(minutes=15)
    free = post_booking(client, s["free"], s["provider"], at(day, 14))
    assert free.status_code == 201
    assert free.get_json()["status"] == "confirmed" and free.get_json()["hold_expires_at"] is None


def test_booked_slot_disappears_for_everyone_and_second_booking_gets_409(app, clinic_setup):
    s = clinic_setup
    day = future_day()
    first, second = signed_in(app), signed_in(app, "other@example.com")
    assert post_booking(first, s["consult"], s["provider"], at(day, 10)).status_code == 201
    starts = {x["start"] for x in get_slots(second, s["consult"], s["provider"], day)}
    assert at(day, 10).isoformat() not in starts
    # The 10-minute buffer after 10:00-10:30 also removes 10:30; a 9:30 start would need its own
    # clean-up time until 10:10, inside the booked appointment.
    for blocked in (at(day, 10, 30), at(day, 9, 45), at(day, 9, 30)):
        assert blocked.isoformat() not in starts
    assert at(day, 10, 45).isoformat() in starts and at(day, 9, 15).isoformat() in starts
    taken = post_booking(second, s["consult"], s["provider"], at(day, 10))
    assert taken.status_code == 409
    assert taken.get_json()["error"]["code"] == "slot_taken"
    assert Appointment.objects.count() == 1
    assert AuditEvent.objects(action="appointment.book", outcome="refused:slot_taken").count() == 1


def test_overlapping_booking_of_a_different_length_is_refused(app, clinic_setup):
    s = clinic_setup
    day = future_day()
    assert post_booking(signed_in(app), s["physio"], s["provider"], at(day, 10)).status_code == 201
    other = signed_in(app, "other@example.com")
    # Physio runs 10:00-10:45; a 30-minute consultation at 10:30 overlaps it.
    assert post_booking(other, s["consult"], s["provider"], at(day, 10, 30)).status_code == 409
    # A consultation at 9:30 ends 10:00 but its 10-minute buffer runs into physio.
    assert post_booking(other, s["consult"], s["provider"], at(day, 9, 30)).status_code == 409
    assert post_booking(other, s["consult"], s["provider"], at(day, 10, 45)).status_code == 201
    # The other provider is free at 10:00.
    assert post_booking(other, s["consult"], s["other"], at(day, 10)).status_code == 201


def test_patient_cannot_hold_two_overlapping_appointments(app, clinic_setup):
    s = clinic_setup
    day = future_day()
    client = signed_in(app)
    assert post_booking(client, s["consult"], s["provider"], at(day, 10)).status_code == 201
    again = post_booking(client, s["consult"], s["other"], at(day, 10))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "patient_overlap"


def test_expired_hold_frees_its_time_and_can_be_taken_over(app, clinic_setup):
    s = clinic_setup
    day = future_day()
    first = post_booking(signed_in(app), s["consult"], s["provider"], at(day, 10)).get_json()
    # The hold lapses (as 15 minutes passing would make it).
    Appointment.objects(id=first["id"]).update_one(
        set__hold_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    TimeClaim.objects(appointment=first["id"]).update(
        set__expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    other = signed_in(app, "other@example.com")
    starts = {x["start"] for x in get_slots(other, s["consult"], s["provider"], day)}
    assert at(day, 10).isoformat() in starts
    taken = post_booking(other, s["consult"], s["provider"], at(day, 10))
    assert taken.status_code == 201
    claims = TimeClaim.objects(provider=s["provider"].id)
    assert {str(c.appointment.id) for c in claims} == {taken.get_json()["id"]}
    mine = signed_in(app).get(f"/api/appointments/{first['id']}").get_json()
    assert mine["status"] == "expired"


def test_the_unique_claim_index_is_what_stops_double_booking(app, clinic_setup):
    s = clinic_setup
    day = future_day()
    TimeClaim._get_collection().drop_index("provider_1_unit_1")
    try:
        one = post_booking(signed_in(app), s["consult"], s["provider"], at(day, 10))
        two = post_booking(signed_in(app, "other@example.com"), s["consult"], s["provider"], at(day, 10))
        # Without the guard the same time is sold twice: this is what the index prevents.
        assert one.status_code == two.status_code == 201
    finally:
        TimeClaim.objects.delete()
        TimeClaim.ensure_indexes()


@pytest.mark.parametrize("body_change,status", [
    ({"start": "yesterday"}, 422),
    ({"start": "2030-01-07T10:00:00"}, 422),          # no offset
    ({"start": {"$gt": ""}}, 422),
    ({"service": {"$ne": None}}, 422),
    ({"provider": ["x"]}, 422),
    ({"service": "000000000000000000000000"}, 404),
    ({"provider": "000000000000000000000000"}, 404),
    ({"service": "not-an-id"}, 404),
])
def test_bad_booking_input_gets_error_shape_and_creates_nothing(app, clinic_setup, body_change, status):
    s = clinic_setup
    client = signed_in(app)
    body = {"service": str(s["consult"].id), "provider": str(s["provider"].id),
            "start": at(future_day(), 10).isoformat()}
    body.update(body_change)
    resp = client.post("/api/appointments", headers=csrf_header(client), json=body)
    assert resp.status_code == status
    assert resp.get_json()["error"]["code"]
    assert Appointment.objects.count() == 0 and TimeClaim.objects.count() == 0


@pytest.mark.parametrize("when,code", [
    (lambda d: at(d, 10) - timedelta(days=10), "not_bookable_past"),
    (lambda d: at(d, 10, 7), "not_bookable_off_grid"),
    (lambda d: at(d, 7), "not_bookable_outside_hours"),
    (lambda d: at(d, 12, 15), "not_bookable_outside_hours"),   # lunch
    (lambda d: at(d, 10) + timedelta(days=90), "not_bookable_horizon"),
])
def test_unbookable_times_are_422_with_the_reason(app, clinic_setup, when, code):
    s = clinic_setup
    resp = post_booking(signed_in(app), s["consult"], s["provider"], when(future_day()))
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == code
    assert Appointment.objects.count() == 0


def test_minimum_notice_is_enforced(app, clinic_setup):
    s = clinic_setup
    s["consult"].min_notice_minutes = 3 * 24 * 60 + 24 * 60
    s["consult"].save()  # through save(), as the back office does, so caches hear of it
    resp = post_booking(signed_in(app), s["consult"], s["provider"], at(future_day(3), 10))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "not_bookable_notice"


def test_provider_who_does_not_offer_the_service_is_refused(app, clinic_setup):
    s = clinic_setup
    resp = post_booking(signed_in(app), s["physio"], s["other"], at(future_day(), 10))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "service_not_offered"


def test_patients_see_only_their_own_appointments(app, clinic_setup):
    s = clinic_setup
    mine = post_booking(signed_in(app), s["consult"], s["provider"], at(future_day(), 10)).get_json()
    other = signed_in(app, "other@example.com")
    assert other.get("/api/appointments").get_json() == []
    foreign = other.get(f"/api/appointments/{mine['id']}")
    assert foreign.status_code == 404 and foreign.get_json()["error"]["code"] == "appointment_not_found"
    cancel = other.post(f"/api/appointments/{mine['id']}/cancel", headers=csrf_header(other))
    assert cancel.status_code == 404
    assert Appointment.objects.get(id=mine["id"]).status == "held"
    listed = signed_in(app).get("/api/appointments").get_json()
    assert [a["id"] for a in listed] == [mine["id"]]
    assert listed[0]["provider"]["name"] == "Dr One" and listed[0]["service"]["name"] == "Consultation"


def test_cancel_within_policy_frees_the_time(app, clinic_setup):
    s = clinic_setup
    day = future_day()
    client = signed_in(app)
    booked = post_booking(client, s["free"], s["provider"], at(day, 10)).get_json()
    resp = client.post(f"/api/appointments/{booked['id']}/cancel", headers=csrf_header(client))
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    assert TimeClaim.objects(appointment=booked["id"]).count() == 0
    assert at(day, 10).isoformat() in {x["start"] for x in get_slots(client, s["free"], s["provider"], day)}
    assert AuditEvent.objects(action="appointment.cancel", outcome="ok").count() == 1


def test_cancel_inside_the_window_is_409_saying_whom_to_call(app, clinic_setup):
    s = clinic_setup
    s["free"].cancellation_window_hours = 24 * 30
    s["free"].save()
    client = signed_in(app)
    booked = post_booking(client, s["free"], s["provider"], at(future_day(), 10)).get_json()
    resp = client.post(f"/api/appointments/{booked['id']}/cancel", headers=csrf_header(client))
    assert resp.status_code == 409
    message = resp.get_json()["error"]["message"]
    assert "720 hours" in message and "+44 20 7946 0123" in message
    assert Appointment.objects.get(id=booked["id"]).status == "confirmed"


def test_booking_requires_sign_in_and_csrf(app, clinic_setup):
    s = clinic_setup
    body = {"service": str(s["free"].id), "provider": str(s["provider"].id),
            "start": at(future_day(), 10).isoformat()}
    assert app.test_client().post("/api/appointments", json=body).status_code == 401
    client = signed_in(app)
    assert client.post("/api/appointments", json=body).status_code == 403
    assert Appointment.objects.count() == 0


def test_slot_query_validation(app, clinic_setup):
    client = app.test_client()
    s = clinic_setup
    for params in ({"service": "nope"}, {"service": str(s["consult"].id), "days": "0"},
                   {"service": str(s["consult"].id), "days": "365"},
                   {"service": str(s["consult"].id), "from": "tomorrow"}, {}):
        resp = client.get("/api/slots", query_string=params)
        assert resp.status_code == 422, params
        assert resp.get_json()["error"]["code"] == "invalid"


def test_clock_change_days_at_the_api(app):
    make_clinic()
    service = make_service("Long horizon", duration=60, price=0, horizon=730)
    provider = make_provider([service], hours=("00:00", "04:00"), lunch=None)
    client = app.test_client()
    spring = get_slots(client, service, provider, date(2027, 3, 28))
    local = [datetime.fromisoformat(x["start"]).astimezone(LONDON) for x in spring]
    # 01:00-02:00 does not exist that night in London: no start there, and nothing doubled.
    assert all(t.hour != 1 for t in local)
    assert len({t.strftime("%H:%M") for t in local}) == len(local)
    assert datetime.fromisoformat(spring[-1]["start"]).utcoffset() == timedelta(hours=1)
    autumn = get_slots(client, service, provider, date(2027, 10, 31))
    labels = [datetime.fromisoformat(x["start"]).astimezone(LONDON).strftime("%H:%M") for x in autumn]
    assert len(labels) == len(set(labels)), "the repeated hour must not offer a time twice"
    assert "01:00" in labels and "01:15" in labels


def test_slots_use_a_constant_number_of_queries(make_app):
    app = make_app(COUNT_DB_COMMANDS=True)
    make_clinic().update(set__max_upcoming=10)  # one patient books seven times below
    consult = make_service("Consultation", duration=30, price=5000)
    free = make_service("Call", duration=15, price=0)
    providers = [make_provider([consult, free], name=f"Dr {n}") for n in ("A", "B", "C")]
    make_patient()
    http = app.test_client()
    day = future_day()

    def slots_cost(days):
        resp = http.get("/api/slots", query_string={"service": str(consult.id), "from": day.isoformat(),
                                                    "days": days})
        assert resp.status_code == 200
        return int(resp.headers["X-DB-Commands"]), len(resp.get_json())

    slots_cost(2)  # loads the catalog (clinic, services, providers, schedules) once
    small, small_count = slots_cost(1)
    booker = signed_in(app)
    for offset in range(6):
        assert post_booking(booker, free, providers[offset % 3],
                            at(day + timedelta(days=offset), 10)).status_code == 201
    large, large_count = slots_cost(14)
    assert large_count > 10 * small_count / 2
    assert large == small <= 3, (small, large)
    # Asked again, the same answer comes from the cache, and a booking moves it on at once.
    assert slots_cost(14) == (0, large_count)
    taken = post_booking(booker, consult, providers[0], at(day + timedelta(days=1), 14))
    assert taken.status_code == 201
    after, after_count = slots_cost(14)
    assert after_count < large_count and after == large


def test_confirmed_appointment_downloads_as_ics(app, clinic_setup):
    from icalendar import Calendar

    s = clinic_setup
    client = signed_in(app)
    day = future_day()
    free = post_booking(client, s["free"], s["provider"], at(day, 10)).get_json()
    resp = client.get(f"/portal/appointments/{free['id']}.ics")
    assert resp.status_code == 200 and resp.mimetype == "text/calendar"
    event = Calendar.from_ical(resp.data).walk("VEVENT")[0]
    assert event.decoded("dtstart") == at(day, 10)
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=15)
    assert "Call with Dr One" in str(event.get("summary"))
    held = post_booking(client, s["consult"], s["provider"], at(day, 14)).get_json()
    assert client.get(f"/portal/appointments/{held['id']}.ics").status_code == 400


def test_appointment_page_shows_status_time_with_zone_and_price(app, clinic_setup):
    s = clinic_setup
    client = signed_in(app)
    day = future_day()
    held = post_booking(client, s["consult"], s["provider"], at(day, 10)).get_json()
    page = client.get(f"/portal/appointments/{held['id']}").get_data(as_text=True)
    assert "payment needed" in page and "£50.00" in page and "Dr One" in page
    assert f"{at(day, 10):%A} {day.day} {at(day, 10):%B %Y}, 10:00 {at(day, 10).tzname()}" in page and "Europe/London" in page
    other = signed_in(app, "other@example.com")
    assert other.get(f"/portal/appointments/{held['id']}").status_code == 404


@pytest.mark.parametrize("start", ["9999-12-31T23:59:00+00:00", "0001-01-01T00:00:00+05:00",
                                   "1900-01-01T10:00:00+00:00"])
def test_extreme_dates_are_422_not_500(app, clinic_setup, start):
    s = clinic_setup
    client = signed_in(app)
    resp = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(s["consult"].id), "provider": str(s["provider"].id), "start": start})
    assert resp.status_code == 422
    for first in ("9999-12-31", "0001-01-01"):
        slots = client.get("/api/slots", query_string={"service": str(s["consult"].id), "from": first, "days": 2})
        assert slots.status_code == 422 and slots.get_json()["error"]["code"] == "invalid"


def test_staff_override_still_blocks_later_bookings(app, clinic_setup):
    from models.booking.create import book

    s = clinic_setup
    day = future_day()
    now = datetime.now(timezone.utc)
    walk_in = make_patient(email="walkin@example.com")
    forced = book(walk_in, str(s["free"].id), str(s["provider"].id), at(day, 10), now,
                  booked_by="staff:x", pay_online=False, override=True)
    assert forced.override and TimeClaim.objects(appointment=forced.id).count() == 3
    taken = post_booking(signed_in(app, "other@example.com"), s["free"], s["provider"], at(day, 10))
    assert taken.status_code == 409
    # Overriding on top of an existing appointment leaves that one's time to it and takes the rest.
    first = post_booking(signed_in(app), s["consult"], s["other"], at(day, 14)).get_json()
    extra = book(walk_in, str(s["free"].id), str(s["other"].id), at(day, 14, 30), now,
                 booked_by="staff:x", pay_online=False, override=True)
    owners = {c.unit.replace(tzinfo=timezone.utc): str(c.appointment.id)
              for c in TimeClaim.objects(provider=s["other"].id)}
    assert owners[at(day, 14, 30).astimezone(timezone.utc)] == first["id"]  # inside consult's buffer
    assert owners[at(day, 14, 40).astimezone(timezone.utc)] == str(extra.id)


def test_an_override_takes_the_time_back_when_the_appointment_it_overrode_is_cancelled(app, clinic_setup):
    from models.booking.cancellation import cancel
    from models.booking.create import book

    s = clinic_setup
    day = future_day()
    now = datetime.now(timezone.utc)
    first = book(make_patient(email="first@example.com"), str(s["free"].id), str(s["provider"].id),
                 at(day, 10), now)
    forced = book(make_patient(email="walkin@example.com"), str(s["free"].id), str(s["provider"].id),
                  at(day, 10), now, booked_by="staff:x", pay_online=False, override=True)
    assert TimeClaim.objects(appointment=forced.id).count() == 0  # all its units were held
    cancel(first, now, by_staff=True)
    assert TimeClaim.objects(appointment=forced.id).count() == 3
    taken = post_booking(signed_in(app, "other@example.com"), s["free"], s["provider"], at(day, 10))
    assert taken.status_code == 409


def test_free_providers_at_names_who_is_free_at_a_time(app, clinic_setup):
    """`free_providers_at`: every clinician offering the service and free then, by name."""
    from models.booking.create import book
    from models.booking.rules import free_providers_at
    from models.documents import Patient, utcnow

    s, day, now = clinic_setup, future_day(), datetime.now(timezone.utc)
    with app.app_context():
        assert [p.name for p in free_providers_at(s["consult"], at(day, 10), now)] == ["Dr One", "Dr Two"]
        book(Patient.objects.get(email="pat@example.com"), str(s["consult"].id), str(s["provider"].id),
             at(day, 10), utcnow())
        assert [p.name for p in free_providers_at(s["consult"], at(day, 10), now)] == ["Dr Two"]
        assert free_providers_at(s["consult"], at(day, 10), now, [s["provider"]]) == []
        assert free_providers_at(s["consult"], at(day, 12, 15), now) == []  # lunch for both


def test_book_first_free_moves_past_a_lost_race_and_audits_once(app, clinic_setup, monkeypatch):
    """"Any clinician" is one action: a clinician taken meanwhile is skipped, one event is written
    (about the appointment made), and nobody free is one refusal about the service."""
    from models.audit import new_audit
    from models.booking import create
    from models.booking.create import book, book_first_free
    from models.documents import Patient, utcnow
    from models.errors import Conflict

    s, day = clinic_setup, future_day()
    pat, other = Patient.objects.get(email="pat@example.com"), Patient.objects.get(email="other@example.com")
    with app.test_request_context():
        book(other, str(s["consult"].id), str(s["provider"].id), at(day, 10), utcnow())
        # As if Dr One had looked free when read and was taken just before our claim.
        monkeypatch.setattr(create, "free_providers_at", lambda *a, **k: [s["provider"], s["other"]])
        made = book_first_free(pat, str(s["consult"].id), None, at(day, 10), utcnow(),
                               audit=new_audit("patient:x", "appointment.book"), audit_as="patient:x")
        assert made.provider.id == s["other"].id
        assert [(e.outcome, e.record) for e in AuditEvent.objects(actor="patient:x")] == [
            ("ok", f"Appointment:{made.id}")]
        monkeypatch.undo()
        with pytest.raises(Conflict) as refused:
            book_first_free(pat, str(s["consult"].id), None, at(day, 10), utcnow(),
                            audit=new_audit("patient:y", "appointment.book"), audit_as="patient:y")
        assert refused.value.code == "slot_taken"
        assert [(e.outcome, e.record) for e in AuditEvent.objects(actor="patient:y")] == [
            ("refused:slot_taken", f"Service:{s['consult'].id}")]
