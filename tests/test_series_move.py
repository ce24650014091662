"""Moving "this visit and the following ones" of a recurring series (issue 28), all or nothing,
through the API (and the back office's move page), against the real servers."""

from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from models import Appointment, Service, TimeClaim
from tests.support.clients import signed_in
from tests.support.factories import LONDON, at, csrf_header, future_day


@pytest.fixture
def world(app, clinic_world):
    made = clinic_world(
        services={"physio": dict(name="Physiotherapy", duration=45, price=6000)},
        providers={"dr": dict(name="Dr Series", services=["physio"])},
        patients=["pat@example.com", "other@example.com"])
    Service.objects(id=made["physio"].id).update_one(set__repeat_allowed=True)
    return made


def book(client, world, start, repeat=None):
    body = {"service": str(world["physio"].id), "provider": str(world["dr"].id), "start": start.isoformat()}
    if repeat is not None:
        body["repeat"] = repeat
    return client.post("/api/appointments", headers=csrf_header(client), json=body)


def move(client, appointment_id, start, **extra):
    return client.post(f"/api/appointments/{appointment_id}/reschedule", headers=csrf_header(client),
                       json={"start": start.isoformat(), **extra})


def starts_of(ids):
    return [Appointment.objects.get(id=i).start.replace(tzinfo=timezone.utc) for i in ids]


def test_moving_this_and_following_shifts_the_later_visits_and_leaves_the_earlier_one(app, world):
    client = signed_in(app)
    first = at(future_day(2), 10)
    visits = book(client, world, first, {"every_weeks": 1, "count": 4}).get_json()["appointments"]
    ids = [v["id"] for v in visits]
    new = at(future_day(2) + timedelta(weeks=1, days=1), 14, 30)  # visit 2: a day later, at 14:30
    resp = move(client, ids[1], new, scope="following")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["id"] == ids[1] and resp.get_json()["start"] == new.isoformat()
    expected = [first] + [new + timedelta(weeks=n) for n in range(3)]
    assert starts_of(ids) == [e.astimezone(timezone.utc) for e in expected]
    # The same four appointments, never copies; each holds exactly its new 45 minutes.
    assert Appointment.objects.count() == 4 and {a.status for a in Appointment.objects} == {"held"}
    for i in ids:
        assert TimeClaim.objects(appointment=i).count() == 9
    # The default scope moves one visit only.
    later = at(future_day(2) + timedelta(weeks=3, days=1), 16)
    assert move(client, ids[3], later).status_code == 200
    assert starts_of(ids)[2] == (new + timedelta(weeks=1)).astimezone(timezone.utc)


def test_a_move_with_a_date_not_free_moves_nothing_then_the_accepted_alternative_moves_them_all(app, world):
    client = signed_in(app)
    day = future_day(2)
    visits = book(client, world, at(day, 10), {"every_weeks": 1, "count": 3}).get_json()["appointments"]
    ids = [v["id"] for v in visits]
    before = starts_of(ids)
    claims = TimeClaim.objects.count()
    taken = at(day + timedelta(weeks=2), 15)  # where the third visit would go
    assert book(signed_in(app, "other@example.com"), world, taken).status_code == 201
    resp = move(client, ids[0], at(day, 15), scope="following")
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "series_unavailable" and "Nothing was moved" in error["message"]
    assert error["unavailable"] == [taken.isoformat()]
    choices = error["alternatives"][taken.isoformat()]
    assert choices and taken.isoformat() not in choices
    assert starts_of(ids) == before and TimeClaim.objects.count() == claims + 9
    assert Appointment.objects(pending__exists=True).count() == 0
    # The patient accepts the nearest free time for that date: every visit moves.
    resp = move(client, ids[0], at(day, 15), scope="following", instead={taken.isoformat(): choices[0]})
    assert resp.status_code == 200, resp.get_json()
    assert starts_of(ids) == [at(day, 15).astimezone(timezone.utc), at(day + timedelta(weeks=1), 15).astimezone(timezone.utc),
                              datetime.fromisoformat(choices[0]).astimezone(timezone.utc)]


def test_a_bad_scope_is_422_and_a_move_onto_the_series_own_next_visit_is_refused(app, world):
    client = signed_in(app)
    day = future_day(2)
    ids = [v["id"] for v in book(client, world, at(day, 10), {"every_weeks": 1, "count": 3}).get_json()["appointments"]]
    before = starts_of(ids)
    resp = move(client, ids[0], at(day, 15), scope="all")
    assert resp.status_code == 422 and "scope" in resp.get_json()["error"]["fields"]
    resp = move(client, ids[0], at(day + timedelta(weeks=1), 10), scope="following")
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "series_overlaps_itself"
    assert starts_of(ids) == before and Appointment.objects(pending__exists=True).count() == 0


def test_moving_following_across_the_spring_clock_change_keeps_the_wall_clock_time(app, world):
    # Europe/London springs forward on Sunday 28 March 2027. Fridays 19, 26 March and 2 April at
    # 10:00; the second visit moves to Monday 29 March at 10:00 (a wall-clock change of three days,
    # 71 hours of real time), so the third goes to Monday 5 April at 10:00 BST, not 09:00.
    with time_machine.travel(datetime(2027, 3, 10, 12, tzinfo=timezone.utc), tick=True):
        client = signed_in(app)
        ids = [v["id"] for v in book(client, world, datetime(2027, 3, 19, 10, tzinfo=LONDON),
                                     {"every_weeks": 1, "count": 3}).get_json()["appointments"]]
        resp = move(client, ids[1], datetime(2027, 3, 29, 10, tzinfo=LONDON), scope="following")
        assert resp.status_code == 200, resp.get_json()
    local = [s.astimezone(LONDON) for s in starts_of(ids)]
    assert [f"{s:%a %d %b %H:%M %Z}" for s in local] == [
        "Fri 19 Mar 10:00 GMT", "Mon 29 Mar 10:00 BST", "Mon 05 Apr 10:00 BST"]


def _radios(html):
    """The alternatives a page offers: (name, value, checked) of each radio button named instead:…"""
    import html as html_lib
    import re

    found = []
    for m in re.finditer(r'<input([^>]*type="radio"[^>]*)>', html):
        attrs = m.group(1)
        name = re.search(r'name="([^"]+)"', attrs).group(1)
        if name.startswith("instead:"):
            found.append((html_lib.unescape(name), html_lib.unescape(re.search(r'value="([^"]*)"', attrs).group(1)),
                          " checked" in attrs))
    return found


def test_reception_picks_the_nearest_free_time_for_a_taken_date_then_books_the_whole_series(app, world):
    from tests.support.clients import signed_in_staff
    from tests.support.factories import form_csrf, make_staff

    make_staff("reception")
    desk = signed_in_staff(app, "reception")
    day = future_day(2)
    taken = at(day + timedelta(weeks=1), 10)
    assert book(signed_in(app, "other@example.com"), world, taken).status_code == 201
    form = desk.get(f"/admin/day/new?day={day}&time=10:00&provider={world['dr'].id}").get_data(as_text=True)
    patient = world.patients["pat@example.com"]
    data = {"csrf_token": form_csrf(form), "patient": str(patient.id), "service": str(world["physio"].id),
            "provider": str(world["dr"].id), "day": day.isoformat(), "time": "10:00", "every_weeks": "1", "count": "3"}
    resp = desk.post("/admin/day/book", data=data)
    page = resp.get_data(as_text=True)
    # Not the override step: the date that is not free, its nearest free times, and nothing booked yet.
    assert resp.status_code == 409 and "Some dates of the series are not free" in page
    assert "Book over the conflict" not in page and "Book all 3 visits" in page
    assert "Instead of " + taken.strftime("%a") in page and "Nothing was booked" in page
    radios = _radios(page)
    assert radios and {n for n, _v, _c in radios} == {f"instead:{taken.isoformat()}"} and radios[0][2]
    assert taken.isoformat() not in {v for _n, v, _c in radios}
    assert Appointment.objects(patient=patient.id).count() == 0
    # Staff keep the preselected nearest time and book: the whole set, with that date moved.
    name, chosen, _ = radios[0]
    again = {**data, "csrf_token": form_csrf(page), name: chosen}
    assert f'name="every_weeks" value="1"' in page and f'name="count" value="3"' in page
    resp = desk.post("/admin/day/book", data=again)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    visits = list(Appointment.objects(patient=patient.id).order_by("start"))
    assert [v.start.replace(tzinfo=timezone.utc) for v in visits] == [
        at(day, 10).astimezone(timezone.utc), datetime.fromisoformat(chosen).astimezone(timezone.utc),
        at(day + timedelta(weeks=2), 10).astimezone(timezone.utc)]
    assert len({v.series for v in visits}) == 1
    # The note says what happened: one visit is not at the same time as the others, and each is paid.
    flashed = desk.get(resp.headers["Location"]).get_data(as_text=True)
    assert "and 2 more visits: " in flashed and "at the same time" not in flashed
    assert "£60.00 a visit to pay at the desk" in flashed


def test_the_desks_move_note_names_how_the_patient_hears_of_the_new_time(app, world):
    from models.accounts.documents import NO_EMAIL_DOMAIN
    from models.documents import Patient
    from tests.support.clients import signed_in_staff
    from tests.support.factories import form_csrf, make_staff

    make_staff("reception")
    desk = signed_in_staff(app, "reception")
    day = future_day(2)
    visit = book(signed_in(app), world, at(day, 10)).get_json()["id"]

    def move_to(hour):
        page = desk.get(f"/admin/day/move?appointment={visit}").get_data(as_text=True)
        resp = desk.post("/admin/day/move", data={
            "csrf_token": form_csrf(page), "appointment": visit, "new_day": day.isoformat(),
            "new_time": f"{hour}:00", "provider": str(world["dr"].id), "scope": "one"})
        body = resp.get_data(as_text=True)
        assert resp.status_code == 302, body[body.find('role="alert"'):][:400]
        return desk.get(resp.headers["Location"]).get_data(as_text=True)

    assert "They are emailed the new time." in move_to(11)
    # A caller booked at the desk with a mobile number and no email hears by text, not email.
    Patient.objects(email="pat@example.com").update_one(
        set__email=f"caller@{NO_EMAIL_DOMAIN}", set__phone="+447700900123")
    flashed = move_to(15)
    assert "They are texted the new time." in flashed and "emailed" not in flashed


def test_reception_moves_this_and_the_following_visits_from_the_day_view(app, world):
    from tests.support.clients import signed_in_staff
    from tests.support.factories import form_csrf, make_staff

    make_staff("reception")
    desk = signed_in_staff(app, "reception")
    day = future_day(2)
    ids = [v["id"] for v in book(signed_in(app), world, at(day, 10), {"every_weeks": 1, "count": 3})
           .get_json()["appointments"]]
    taken = at(day + timedelta(weeks=2), 15)
    assert book(signed_in(app, "other@example.com"), world, taken).status_code == 201
    page = desk.get(f"/admin/day/move?appointment={ids[1]}").get_data(as_text=True)
    assert "This visit and the 1 later visit of the series" in page
    data = {"csrf_token": form_csrf(page), "appointment": ids[1], "new_day": (day + timedelta(weeks=1)).isoformat(),
            "new_time": "15:00", "provider": str(world["dr"].id), "scope": "following"}
    resp = desk.post("/admin/day/move", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "Nothing was moved" in page and "Move all the visits" in page
    before = starts_of(ids)
    radios = _radios(page)
    assert radios and radios[0][0] == f"instead:{taken.isoformat()}"
    resp = desk.post("/admin/day/move", data={**data, "csrf_token": form_csrf(page), radios[0][0]: radios[0][1]})
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    after = starts_of(ids)
    assert after[0] == before[0]
    assert after[1:] == [at(day + timedelta(weeks=1), 15).astimezone(timezone.utc),
                         datetime.fromisoformat(radios[0][1]).astimezone(timezone.utc)]
    assert "and the 1 later visit of the series" in desk.get(resp.headers["Location"]).get_data(as_text=True)


def test_the_openapi_document_names_the_series_answer_and_the_move_scope(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    created = doc["paths"]["/api/appointments"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    refs = [s["$ref"].rsplit("/", 1)[1] for s in created["oneOf"]]
    assert refs == ["Appointment", "SeriesBooked"]
    booked = doc["components"]["schemas"]["SeriesBooked"]
    assert set(booked["required"]) == {"series", "appointments"}
    body = doc["paths"]["/api/appointments/{appointment_id}/reschedule"]["post"]["requestBody"]["content"]
    move_body = body["application/json"]["schema"]
    move_body = doc["components"]["schemas"][move_body["$ref"].rsplit("/", 1)[1]] if "$ref" in move_body else move_body
    assert move_body["properties"]["scope"]["enum"] == ["one", "following"]
    assert "series_unavailable" in move_body["properties"]["scope"]["description"]
    assert "instead" in move_body["properties"]


def test_the_patient_moves_this_and_following_from_the_portal_page_choosing_for_a_taken_date(app, world):
    from tests.support.factories import form_csrf

    client = signed_in(app)
    day = future_day(2)
    ids = [v["id"] for v in book(client, world, at(day, 10), {"every_weeks": 1, "count": 3}).get_json()["appointments"]]
    taken = at(day + timedelta(weeks=2), 15)
    assert book(signed_in(app, "other@example.com"), world, taken).status_code == 201
    new = at(day + timedelta(weeks=1), 15)
    review = client.get(f"/portal/appointments/{ids[1]}/reschedule?start={new.isoformat().replace('+', '%2B')}")
    html = review.get_data(as_text=True)
    assert "This visit and the 1 later visit of the series" in html
    form = {"csrf_token": form_csrf(html), "jwt_csrf": client.get_cookie("csrf_access_token").value,
            "start": new.isoformat(), "provider": str(world["dr"].id), "scope": "following"}
    resp = client.post(f"/portal/appointments/{ids[1]}/reschedule", data=form)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "Nothing was moved yet" in page and "Move all the visits" in page
    before = starts_of(ids)
    radios = _radios(page)
    assert radios and radios[0][0] == f"instead:{taken.isoformat()}" and radios[0][2]
    resp = client.post(f"/portal/appointments/{ids[1]}/reschedule",
                       data={**form, "csrf_token": form_csrf(page), radios[0][0]: radios[0][1]})
    assert resp.status_code == 302 and "/portal/series/" in resp.headers["Location"]
    assert starts_of(ids) == [before[0], new.astimezone(timezone.utc),
                              datetime.fromisoformat(radios[0][1]).astimezone(timezone.utc)]


def test_booking_a_series_over_a_conflict_keeps_the_repeat_and_books_every_visit(app, clinic_world):
    """The override step (the first visit's own conflict) carries the series: booking over it books the whole set."""
    from models import AuditEvent
    from tests.support.clients import signed_in_staff
    from tests.support.factories import form_csrf, make_staff

    world = clinic_world(
        services={"physio": dict(name="Physiotherapy", duration=45, price=6000)},
        providers={"dr": dict(name="Dr Series", services=["physio"]), "jo": dict(name="Jo Park", services=["physio"])},
        patients=["pat@example.com"])
    Service.objects(id=world["physio"].id).update_one(set__repeat_allowed=True)
    patient = world.patients["pat@example.com"]
    day = future_day(2)
    # The patient already sees Jo Park at the first visit's time: the series' first date is the patient's own overlap.
    from models.booking.create import book as book_one
    from models.documents import utcnow
    book_one(patient, str(world["physio"].id), str(world["jo"].id), at(day, 10), utcnow())
    make_staff("reception")
    desk = signed_in_staff(app, "reception")
    form = desk.get(f"/admin/day/new?day={day}&time=10:00&provider={world['dr'].id}").get_data(as_text=True)
    data = {"csrf_token": form_csrf(form), "patient": str(patient.id), "service": str(world["physio"].id),
            "provider": str(world["dr"].id), "day": day.isoformat(), "time": "10:00", "every_weeks": "1", "count": "3"}
    resp = desk.post("/admin/day/book", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "Book over the conflict" in page and "already have an appointment" in page
    assert 'name="every_weeks" value="1"' in page and 'name="count" value="3"' in page
    assert "This is a series of 3 visits" in page
    assert Appointment.objects(provider=world["dr"].id).count() == 0
    import re
    carried = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    resp = desk.post("/admin/day/book", data={**carried, "override_reason": "Back-to-back on purpose"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    visits = list(Appointment.objects(provider=world["dr"].id).order_by("start"))
    assert [v.start.replace(tzinfo=timezone.utc) for v in visits] == [
        at(day + timedelta(weeks=n), 10).astimezone(timezone.utc) for n in range(3)]
    assert len({v.series for v in visits}) == 1 and visits[0].series is not None
    assert all(v.override and "Back-to-back on purpose" in v.notes for v in visits)
    assert AuditEvent.objects(action="appointment.override").count() == 1
    flashed = desk.get(resp.headers["Location"]).get_data(as_text=True)
    assert "and 2 more visits at the same time" in flashed


def test_a_series_chosen_from_the_desks_free_times_keeps_its_repeat_through_the_review(app, world):
    """"Book at 10:00" opens the review step: it names the repeat, and its one more click books every visit."""
    import re
    from tests.support.clients import signed_in_staff
    from tests.support.factories import form_csrf, make_staff

    make_staff("reception")
    desk = signed_in_staff(app, "reception")
    day = future_day(2)
    patient = world.patients["pat@example.com"]
    form = desk.get(f"/admin/day/new?day={day}&provider={world['dr'].id}").get_data(as_text=True)
    resp = desk.post("/admin/day/review", data={
        "csrf_token": form_csrf(form), "patient": str(patient.id), "service": str(world["physio"].id),
        "provider": str(world["dr"].id), "day": day.isoformat(), "time": "10:00", "every_weeks": "2", "count": "3"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "3 visits, every 2 weeks" in page and "Book all 3 visits" in page
    carried = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    assert desk.post("/admin/day/book", data=carried).status_code == 302
    visits = list(Appointment.objects(patient=patient.id).order_by("start"))
    assert [v.start.replace(tzinfo=timezone.utc) for v in visits] == [
        at(day + timedelta(weeks=2 * n), 10).astimezone(timezone.utc) for n in range(3)]
