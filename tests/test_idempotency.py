"""`Idempotency-Key` (issue 31): a booking, payment start, cancel or reschedule sent again with its key
is done once and answered as the first time; the key with another body is refused; duplicates sent at
once do one thing; the portal's forms carry a key, so a double submit books once."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest

from models import Appointment
from models.messages.documents import OutboxMessage
from tests.helpers import concurrently
from tests.support.clients import signed_in
from tests.support.factories import at, csrf_header, form_csrf, future_day


@pytest.fixture
def world(app, clinic_world):
    return clinic_world(services={"call": dict(name="Call", duration=15, price=0, notice=0, cancel_hours=0),
                                  "consult": dict(name="Consultation", duration=30, price=6000)},
                        providers={"dr": dict(name="Dr Once")},
                        patients=["pat@example.com", "other@example.com"])


def booking(world, start, service="call"):
    return {"service": str(world[service].id), "provider": str(world["dr"].id), "start": start.isoformat()}


def post(client, path, body, key):
    headers = dict(csrf_header(client))
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(path, headers=headers, json=body)


def test_a_booking_sent_again_with_its_key_gets_the_first_answer_and_books_once(app, world):
    client = signed_in(app)
    body = booking(world, at(future_day(3), 10))
    first = post(client, "/api/appointments", body, "book-1")
    assert first.status_code == 201
    again = post(client, "/api/appointments", body, "book-1")
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert Appointment.objects.count() == 1
    assert OutboxMessage.objects(kind="confirmed").count() == 1
    # Without the key the same request is a new attempt: refused as the time is taken (by itself).
    assert post(client, "/api/appointments", body, None).status_code == 409


def test_the_same_key_with_another_body_is_refused_and_does_nothing(app, world):
    client = signed_in(app)
    assert post(client, "/api/appointments", booking(world, at(future_day(3), 10)), "k").status_code == 201
    other = post(client, "/api/appointments", booking(world, at(future_day(3), 11)), "k")
    assert other.status_code == 422 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert Appointment.objects.count() == 1
    # A key is the patient's own: another patient's same key is another request.
    assert post(signed_in(app, "other@example.com"), "/api/appointments",
                booking(world, at(future_day(3), 11)), "k").status_code == 201


def test_a_refusal_is_kept_too_and_a_malformed_key_is_refused(app, world):
    client, other = signed_in(app), signed_in(app, "other@example.com")
    body = booking(world, at(future_day(3), 10))
    assert post(other, "/api/appointments", body, None).status_code == 201
    taken = post(client, "/api/appointments", body, "try-1")
    assert taken.status_code == 409
    assert post(client, "/api/appointments", body, "try-1").get_json() == taken.get_json()
    bad = post(client, "/api/appointments", body, "x" * 300)
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid"


def test_duplicates_sent_at_once_book_once(app, world):
    clients = [signed_in(app) for _ in range(4)]
    body = booking(world, at(future_day(3), 10))
    answers = concurrently(4, lambda i: post(clients[i], "/api/appointments", body, "same-click"))
    assert Appointment.objects.count() == 1
    ids = {a.get_json().get("id") for a in answers if a.status_code == 201}
    assert len(ids) == 1, [(a.status_code, a.get_json()) for a in answers]
    assert all(a.status_code in (201, 409) for a in answers)


def test_cancel_and_reschedule_sent_again_answer_as_the_first_time(app, world):
    client = signed_in(app)
    day = future_day(3)
    appt_id = post(client, "/api/appointments", booking(world, at(day, 9)), None).get_json()["id"]
    moved = post(client, f"/api/appointments/{appt_id}/reschedule", {"start": at(day, 14).isoformat()}, "mv")
    assert moved.status_code == 200
    assert post(client, f"/api/appointments/{appt_id}/reschedule", {"start": at(day, 14).isoformat()},
                "mv").get_json() == moved.get_json()
    assert OutboxMessage.objects(kind="rescheduled").count() == 1
    first = post(client, f"/api/appointments/{appt_id}/cancel", {}, "cx")
    assert first.status_code == 200
    again = post(client, f"/api/appointments/{appt_id}/cancel", {}, "cx")
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert OutboxMessage.objects(kind="cancelled").count() == 1


def test_payment_start_sent_again_gives_the_same_payment(app, world):
    client = signed_in(app)
    appt_id = post(client, "/api/appointments", booking(world, at(future_day(3), 10), "consult"), None).get_json()["id"]
    first = post(client, f"/api/appointments/{appt_id}/payment", {}, "pay-1")
    assert first.status_code == 200
    assert post(client, f"/api/appointments/{appt_id}/payment", {}, "pay-1").get_json() == first.get_json()


def test_the_booking_form_carries_a_key_so_a_double_submit_books_once(app, world):
    client = signed_in(app)
    day = future_day(3)
    start = at(day, 10).isoformat()
    html = client.get(f"/portal/book?service={world['call'].id}&provider={world['dr'].id}&day={day}"
                      f"&start={quote(start)}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    form = {"csrf_token": form_csrf(html), "jwt_csrf": client.get_cookie("csrf_access_token").value,
            "service": str(world["call"].id), "provider": str(world["dr"].id), "start": start,
            "idempotency_key": key}
    first = client.post("/portal/book", data=form)
    second = client.post("/portal/book", data=form)
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == first.headers["Location"]
    assert Appointment.objects.count() == 1
    # A fresh page gives a fresh key: a booking made again on purpose is a new request.
    html = client.get(f"/portal/book?service={world['call'].id}&provider={world['dr'].id}&day={day}"
                      f"&start={quote(at(day, 11).isoformat())}").get_data(as_text=True)
    assert re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1) != key


def test_answers_are_kept_for_a_day_by_a_ttl_index(app):
    info = app.extensions["mongo"].database()["idempotency_keys"].index_information()
    ttl = [i for i in info.values() if "expireAfterSeconds" in i]
    assert ttl and ttl[0]["expireAfterSeconds"] == int(timedelta(hours=24).total_seconds())
