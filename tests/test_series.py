"""Recurring series (issue 28) through the API and the domain action, against the real servers."""

import re
from datetime import datetime, timedelta, timezone

import pytest
import requests

from models import Appointment, Service, TimeClaim
from models.booking import series
from tests.helpers import concurrently
from tests.support.clients import register_and_sign_in, signed_in
from tests.support.factories import LONDON, PASSWORD, at, csrf_header, future_day


@pytest.fixture
def world(app, clinic_world):
    made = clinic_world(
        services={"physio": dict(name="Physiotherapy", duration=45, price=6000),
                  "consult": dict(name="Consultation", duration=30, price=5000)},
        providers={"dr": dict(name="Dr Series", services=["physio", "consult"])},
        patients=["pat@example.com", "other@example.com"])
    Service.objects(id=made["physio"].id).update_one(set__repeat_allowed=True)
    return made


def book(client, world, start, repeat=None, service="physio"):
    body = {"service": str(world[service].id), "provider": str(world["dr"].id), "start": start.isoformat()}
    if repeat is not None:
        body["repeat"] = repeat
    return client.post("/api/appointments", headers=csrf_header(client), json=body)


def test_services_say_which_can_repeat(app, world):
    services = {s["name"]: s for s in app.test_client().get("/api/services").get_json()}
    assert services["Physiotherapy"]["repeat_allowed"] is True
    assert services["Consultation"]["repeat_allowed"] is False


def test_a_weekly_series_books_every_visit_at_the_same_local_time(app, world):
    client = signed_in(app)
    first = at(future_day(2), 10)
    resp = book(client, world, first, {"every_weeks": 2, "count": 4})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["series"]["count"] == 4 and body["series"]["every_weeks"] == 2
    starts = [datetime.fromisoformat(a["start"]) for a in body["appointments"]]
    assert starts == [first + timedelta(weeks=2 * n) for n in range(4)]
    assert {a["status"] for a in body["appointments"]} == {"held"}
    assert {a["series"] for a in body["appointments"]} == {body["series"]["id"]}
    # Each visit is an ordinary appointment: listed, with its own time claimed.
    listed = client.get("/api/appointments").get_json()
    assert [a["start"] for a in listed] == [a["start"] for a in body["appointments"]]
    assert TimeClaim.objects(appointment__in=[a["id"] for a in body["appointments"]]).count() == 4 * 9


def test_a_series_with_a_taken_date_books_nothing_then_the_accepted_alternative_books_it_all(app, world):
    other = signed_in(app, "other@example.com")
    first = at(future_day(2), 10)
    taken = first + timedelta(weeks=2)
    assert book(other, world, taken).status_code == 201
    client = signed_in(app)
    resp = book(client, world, first, {"every_weeks": 1, "count": 4})
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "series_unavailable" and "Nothing was booked" in error["message"]
    assert error["unavailable"] == [taken.isoformat()]
    choices = error["alternatives"][taken.isoformat()]
    assert choices and all(datetime.fromisoformat(c) != taken for c in choices)
    assert Appointment.objects(patient=world.patients["pat@example.com"].id).count() == 0
    assert TimeClaim.objects.count() == 9  # only the other patient's 45 minutes
    # The patient accepts the nearest free time for that date: the whole set is booked.
    resp = book(client, world, first, {"every_weeks": 1, "count": 4, "instead": {taken.isoformat(): choices[0]}})
    assert resp.status_code == 201, resp.get_json()
    starts = [a["start"] for a in resp.get_json()["appointments"]]
    assert choices[0] in starts and taken.isoformat() not in starts and len(starts) == 4


@pytest.mark.parametrize("repeat, says", [({"every_weeks": 1, "count": 13}, "2 and less than or equal to 12"),
                                          ({"every_weeks": 0, "count": 3}, "1 and less than or equal to 4"),
                                          ({"every_weeks": 5, "count": 3}, "1 and less than or equal to 4"),
                                          ({"every_weeks": 1, "count": 1}, "2 and less than or equal to 12"),
                                          ({"every_weeks": "1", "count": 3}, "integer")])
def test_a_series_outside_1_to_4_weeks_2_to_12_visits_is_422(app, world, repeat, says):
    resp = book(signed_in(app), world, at(future_day(2), 10), repeat)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid" and says in error["fields"]["repeat"]
    assert Appointment.objects.count() == 0


def test_a_service_that_does_not_repeat_refuses_a_series(app, world):
    resp = book(signed_in(app), world, at(future_day(2), 10), {"every_weeks": 1, "count": 3}, service="consult")
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "repeat_not_allowed"
    assert Appointment.objects.count() == 0


def test_a_series_reaching_past_the_horizon_is_422_and_books_nothing(app, world):
    Service.objects(id=world["physio"].id).update_one(set__horizon_days=20)
    resp = book(signed_in(app), world, at(future_day(2), 10), {"every_weeks": 4, "count": 3})
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "not_bookable_horizon"
    assert Appointment.objects.count() == 0 and TimeClaim.objects.count() == 0


def test_a_series_counts_as_one_hold_and_is_refused_past_the_caps(app, world):
    client = signed_in(app)
    day = future_day(2)
    assert book(client, world, at(day, 9), {"every_weeks": 1, "count": 6}).status_code == 201
    # Six held visits are one hold: one more single booking still fits the two-hold limit.
    assert book(client, world, at(day, 14), service="consult").status_code == 201
    resp = book(client, world, at(day, 15), {"every_weeks": 1, "count": 2})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "too_many_holds"
    assert Appointment.objects.count() == 7


def test_cancel_this_and_following_leaves_the_earlier_visits(app, world):
    client = signed_in(app)
    visits = book(client, world, at(future_day(2), 10), {"every_weeks": 1, "count": 4}).get_json()["appointments"]
    bad = client.post(f"/api/appointments/{visits[1]['id']}/cancel", headers=csrf_header(client),
                      json={"scope": "all"})
    assert bad.status_code == 422 and Appointment.objects(status="cancelled").count() == 0
    resp = client.post(f"/api/appointments/{visits[1]['id']}/cancel", headers=csrf_header(client),
                       json={"scope": "following"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    statuses = [a["status"] for a in client.get("/api/appointments").get_json()]
    assert statuses == ["held", "cancelled", "cancelled", "cancelled"]
    assert TimeClaim.objects(appointment=visits[0]["id"]).count() == 9
    assert TimeClaim.objects(appointment__in=[v["id"] for v in visits[1:]]).count() == 0
    # "one" (the default without a body) cancels just that visit.
    assert client.post(f"/api/appointments/{visits[0]['id']}/cancel",
                       headers=csrf_header(client)).status_code == 200


def test_a_series_across_the_spring_clock_change_keeps_the_wall_clock_time(app, world):
    # Europe/London springs forward on Sunday 28 March 2027: 10:00 is 10:00 UTC before, 09:00 UTC after.
    now = datetime(2027, 3, 10, 12, tzinfo=timezone.utc)
    first = datetime(2027, 3, 22, 10, tzinfo=LONDON)
    patient = world.patients["pat@example.com"]
    with app.app_context():
        series_id, visits = series.book_series(patient, str(world["physio"].id), str(world["dr"].id), first, now,
                                               every_weeks=1, count=3)
    utc = [v.start.replace(tzinfo=timezone.utc) for v in visits]
    assert [u.hour for u in utc] == [10, 9, 9]
    assert {u.astimezone(LONDON).strftime("%H:%M") for u in utc} == {"10:00"}
    assert Appointment.objects(series=series_id).count() == 3


@pytest.mark.slow
def test_two_patients_racing_for_overlapping_series_never_double_book_nor_half_book(live_server, clinic_world):
    base, app = live_server(COOKIE_SECURE=False)
    made = clinic_world(services={"physio": dict(name="Physiotherapy", duration=45, price=6000)},
                        providers={"dr": dict(name="Dr Series")}, clinic={"max_held": 10},
                        patients=["a@example.com", "b@example.com"])
    Service.objects(id=made["physio"].id).update_one(set__repeat_allowed=True)
    sessions = []
    for email in ("a@example.com", "b@example.com"):
        s = requests.Session()
        assert s.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD},
                      timeout=60).status_code == 200
        sessions.append(s)
    for round_, hour in enumerate((9, 11, 14)):
        day = future_day(2 + round_)
        # A wants weeks 0-3, B weeks 1-4 at the same time: three dates overlap.
        firsts = [at(day, hour), at(day, hour) + timedelta(weeks=1)]

        def attempt(i):
            s = sessions[i]
            return s.post(f"{base}/api/appointments", timeout=60, headers={"X-CSRF-TOKEN": s.cookies.get("csrf_access_token")},
                          json={"service": str(made["physio"].id), "provider": str(made["dr"].id),
                                "start": firsts[i].isoformat(), "repeat": {"every_weeks": 1, "count": 4}})

        answers = concurrently(2, attempt)
        codes = sorted(r.status_code for r in answers)
        assert codes == [201, 409], [r.json() for r in answers]
        loser = next(r for r in answers if r.status_code == 409).json()["error"]
        assert loser["code"] == "series_unavailable" and 1 <= len(loser["unavailable"]) <= 3
    for patient in made.patients.values():
        # All or nothing: each patient holds a multiple of four visits.
        assert Appointment.objects(patient=patient.id).count() % 4 == 0
    assert Appointment.objects.count() == 12
    live = sorted(Appointment.objects(status="held"), key=lambda a: a.start)
    for a, b in zip(live, live[1:]):
        assert b.start >= a.end, "double booked"
    claimed = {c.appointment.id for c in TimeClaim.objects}
    assert claimed == {a.id for a in live}, "claims left by a lost series"


def test_a_new_patient_books_a_series_through_the_registered_client(app, world):
    client = register_and_sign_in(app, email="new@example.com")
    resp = book(client, world, at(future_day(3), 11), {"every_weeks": 3, "count": 2})
    assert resp.status_code == 201 and len(resp.get_json()["appointments"]) == 2


def test_reception_books_a_series_for_a_caller_and_cancels_this_and_the_later_visits(app, world):
    from tests.support.clients import signed_in_staff
    from tests.support.factories import form_csrf, make_staff

    make_staff("reception")
    desk = signed_in_staff(app, "reception")
    day = future_day(2)
    form = desk.get(f"/admin/day/new?day={day}&time=10:00&provider={world['dr'].id}").get_data(as_text=True)
    assert "Repeat" in form and "Every 2 weeks" in form
    patient = world.patients["pat@example.com"]
    resp = desk.post("/admin/day/book", data={
        "csrf_token": form_csrf(form), "patient": str(patient.id), "service": str(world["physio"].id),
        "provider": str(world["dr"].id), "day": day.isoformat(), "time": "10:00", "every_weeks": "2", "count": "3"})
    assert resp.status_code == 302
    visits = list(Appointment.objects(patient=patient.id).order_by("start"))
    assert [v.start for v in visits] == [at(day, 10) + timedelta(weeks=2 * n) for n in range(3)]
    assert {v.status for v in visits} == {"confirmed"} and len({v.series for v in visits}) == 1  # paid at the desk
    follow = desk.get(resp.headers["Location"]).get_data(as_text=True)
    assert "and 2 more visits at the same time" in follow
    page = desk.get(f"/admin/day/cancel?appointment={visits[1].id}&day={day}").get_data(as_text=True)
    assert "Also cancel the 1 later visit of this series" in page
    # The last visit has no later ones: the box is not offered.
    last = desk.get(f"/admin/day/cancel?appointment={visits[2].id}&day={day}").get_data(as_text=True)
    assert "later visit" not in last
    resp = desk.post("/admin/day/act", data={"csrf_token": form_csrf(page), "op": "cancel", "confirm": "yes",
                                             "appointment": str(visits[1].id), "reason": "Course ended early",
                                             "scope": "following", "day": day.isoformat()})
    assert resp.status_code == 302
    assert [v.reload().status for v in visits] == ["confirmed", "cancelled", "cancelled"]
    # The same door refuses a series of a service that does not repeat, naming why, and books nothing.
    resp = desk.post("/admin/day/book", data={
        "csrf_token": form_csrf(form), "patient": str(patient.id), "service": str(world["consult"].id),
        "provider": str(world["dr"].id), "day": day.isoformat(), "time": "15:00", "every_weeks": "1", "count": "3"})
    assert resp.status_code == 422 and "cannot be booked as a series" in resp.get_data(as_text=True)
    assert Appointment.objects(service=world["consult"].id).count() == 0


def _calendar(message):
    from icalendar import Calendar

    parts = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one calendar file"
    content = parts[0].get_content()
    return Calendar.from_ical(content.encode() if isinstance(content, str) else content)


def test_a_free_series_sends_one_confirmation_listing_every_date_with_every_visit_in_its_ics(
        make_app, smtp_server, clinic_world):
    from models.messages.outbox import OutboxMessage
    from models.sweep import sweep

    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL="http://clinic.test")
    made = clinic_world(services={"call": dict(name="Check-in call", duration=15, price=0)},
                        providers={"dr": dict(name="Dr Series")}, patients=["pat@example.com"])
    Service.objects(id=made["call"].id).update_one(set__repeat_allowed=True)
    client = signed_in(app)
    first = at(future_day(3), 10)
    body = {"service": str(made["call"].id), "provider": str(made["dr"].id), "start": first.isoformat()}
    resp = client.post("/api/appointments", headers=csrf_header(client),
                       json=dict(body, repeat={"every_weeks": 1, "count": 3}))
    assert resp.status_code == 201 and {a["status"] for a in resp.get_json()["appointments"]} == {"confirmed"}
    assert OutboxMessage.objects(kind="confirmed").count() == 1
    assert OutboxMessage.objects(kind="reminder").count() == 3 * 2  # 24 h and 2 h before each visit
    # Irregular: the second visit moved to 11:00 (an accepted alternative).
    moved = first + timedelta(weeks=1)
    resp = client.post("/api/appointments", headers=csrf_header(client), json=dict(
        body, start=(first + timedelta(hours=4)).isoformat(),
        repeat={"every_weeks": 1, "count": 2, "instead": {(moved + timedelta(hours=4)).isoformat():
                                                          (moved + timedelta(hours=5)).isoformat()}}))
    assert resp.status_code == 201, resp.get_json()
    with app.app_context():
        sweep()
    received = smtp_server.wait_for(2, "pat@example.com")
    by_count = {}
    for message in received:
        text = message.get_body(preferencelist=("plain",)).get_content()
        by_count[text.count("\n- ")] = (text, _calendar(message))
    text, cal = by_count[3]
    assert "part of a course of 3" in text
    for n in range(3):
        day = (first + timedelta(weeks=n)).astimezone(LONDON)
        assert f"{day:%A} {day.day} {day:%B %Y}, 10:00" in text
    events = cal.walk("VEVENT")
    assert len(events) == 1 and events[0]["RRULE"]["COUNT"] == [3] and events[0]["RRULE"]["FREQ"] == ["WEEKLY"]
    _text2, cal2 = by_count[2]
    events = cal2.walk("VEVENT")
    assert len(events) == 2 and not any("RRULE" in e for e in events)
    assert sorted(e.decoded("dtstart").astimezone(LONDON).hour for e in events) == [14, 15]


def test_the_cancel_step_offers_the_later_visits_only_when_there_are_some(app, world):
    client = signed_in(app)
    visits = book(client, world, at(future_day(2), 10), {"every_weeks": 1, "count": 3}).get_json()["appointments"]
    first = client.get(f"/portal/appointments/{visits[0]['id']}?cancel=1").get_data(as_text=True)
    assert ">Cancel this and the 2 later visits</button>" in first
    second = client.get(f"/portal/appointments/{visits[1]['id']}?cancel=1").get_data(as_text=True)
    assert ">Cancel this and the 1 later visit</button>" in second
    # The last visit of the course has nothing after it: only "Yes, cancel it".
    last = client.get(f"/portal/appointments/{visits[2]['id']}?cancel=1").get_data(as_text=True)
    assert "Yes, cancel it" in last and 'value="following"' not in last


def test_the_day_view_panel_says_which_visit_of_the_series_it_is(app, world):
    from tests.support.clients import signed_in_staff
    from tests.support.factories import make_staff

    client = signed_in(app)
    day = future_day(2)
    visits = book(client, world, at(day, 10), {"every_weeks": 1, "count": 4}).get_json()["appointments"]
    api_cancel = client.post(f"/api/appointments/{visits[3]['id']}/cancel", headers=csrf_header(client))
    assert api_cancel.status_code == 200  # the last visit is off: the course of 4 now has 3
    make_staff("reception")
    desk = signed_in_staff(app, "reception")
    grid = desk.get(f"/admin/day/?day={day + timedelta(weeks=1)}").get_data(as_text=True)
    assert 'class="fd-series">Visit 2 of 4 (course shortened to 3 visits)<' in grid
    lone = book(client, world, at(day, 15), service="consult").get_json()
    grid = desk.get(f"/admin/day/?day={day}").get_data(as_text=True)
    assert 'Visit 1 of 4 (course shortened to 3 visits)<' in grid and grid.count('class="fd-series"') == 1, lone


def test_the_series_page_says_each_visit_s_status_in_words(app, world):
    """QA walk: the series page showed "held" and "cancelled"; it reads as the dashboard does."""
    client = signed_in(app)
    body = book(client, world, at(future_day(2), 10), {"every_weeks": 1, "count": 3}).get_json()
    visits = body["appointments"]
    cancelled = client.post(f"/api/appointments/{visits[1]['id']}/cancel", headers=csrf_header(client),
                            json={"scope": "following"})
    assert cancelled.status_code == 200, cancelled.get_json()
    page = client.get(f"/portal/series/{body['series']['id']}").get_data(as_text=True)
    badges = re.findall(r'<span class="badge[^"]*">([^<]*)</span>', page)
    assert badges == ["Awaiting payment", "Cancelled by you", "Cancelled by you"], badges
    assert 'class="badge tone-warn">Awaiting payment<' in page


def test_a_course_cut_short_keeps_each_visit_s_place_and_says_it_was_shortened(app, world):
    """QA walk: after the later visits were cancelled the one left read "Visit 1 of 1"."""
    client = signed_in(app)
    visits = book(client, world, at(future_day(2), 10), {"every_weeks": 1, "count": 6}).get_json()["appointments"]
    page = client.get(f"/portal/appointments/{visits[0]['id']}").get_data(as_text=True)
    assert 'id="series-position">Visit 1 of 6<' in page  # the whole course: nothing to say
    assert client.post(f"/api/appointments/{visits[1]['id']}/cancel", headers=csrf_header(client),
                       json={"scope": "following"}).status_code == 200
    page = client.get(f"/portal/appointments/{visits[0]['id']}").get_data(as_text=True)
    assert 'id="series-position">Visit 1 of 6 (course shortened to 1 visit)<' in page
    assert "Visit 1 of 1" not in page
