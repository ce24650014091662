"""Clinicians' calendar feeds (issue 29): staff make and revoke a secret link; the feed lists the
clinician's appointments from 30 days back to the booking horizon, with initials unless the clinic allows names; tokens
stored hashed; reads audited and rate-limited; a revoked link is 404."""

import re
from datetime import timedelta

from icalendar import Calendar

from models.audit import AuditEvent
from models.booking.cancellation import cancel
from models.booking.create import book
from models.documents import Appointment, Clinic
from models.feeds import FeedToken
from tests.support.factories import LONDON, at, form_csrf, future_day, make_clinic, make_patient, make_provider, make_service


def _events(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "text/calendar"
    return Calendar.from_ical(resp.get_data()).walk("VEVENT")


def _make_link(client, provider):
    """Make a feed link the way an admin does: the Providers list's action; the link from the flash."""
    page = client.get("/admin/providers/").get_data(as_text=True)
    resp = client.post("/admin/providers/action/", data={"action": "make_feed", "rowid": str(provider.id),
                                                          "csrf_token": form_csrf(page)}, follow_redirects=True)
    text = resp.get_data(as_text=True)
    match = re.search(r"/feeds/([A-Za-z0-9_-]+)\.ics", text)
    assert match, text[:2000]
    return match.group(1), text


def test_staff_make_a_feed_that_follows_bookings_with_initials_and_revoke_it(app, staff_client):
    clinic = make_clinic()
    service = make_service(name="Physio", price=0)
    provider = make_provider([service], name="Dr Feed")
    other = make_provider([service], name="Dr Other")
    patient = make_patient("jane.smith@example.com", name="Jane Anne Smith")
    admin = staff_client("admin")
    token, page = _make_link(admin, provider)
    assert "shown only once" in page and "Active since" in page
    # Only the token's hash is stored.
    stored = FeedToken.objects(provider=provider.id).get()
    assert token not in stored.token_hash and len(stored.token_hash) == 64

    client = app.test_client()
    assert _events(client.get(f"/feeds/{token}.ics")) == []
    from models.clock import utcnow

    now = utcnow()
    day = future_day(3)
    appt = book(patient, service.id, provider.id, at(day, 10), now)
    book(patient, service.id, other.id, at(day, 14), now)  # another clinician's: not in this feed
    events = _events(client.get(f"/feeds/{token}.ics"))
    assert len(events) == 1
    assert str(events[0]["summary"]) == "Physio — Patient J.A.S."
    assert "Jane" not in client.get(f"/feeds/{token}.ics").get_data(as_text=True)
    assert events[0].decoded("dtstart") == at(day, 10)
    # Cancelled: the event says so, so subscribed calendars drop it.
    cancel(Appointment.objects(id=appt.id).get(), now, by_staff=True, actor="staff:test")
    assert str(_events(client.get(f"/feeds/{token}.ics"))[0]["status"]) == "CANCELLED"
    # The clinic's setting allows names.
    Clinic.objects(id=clinic.id).update_one(set__feed_shows_names=True)
    assert "Jane Anne Smith" in str(_events(client.get(f"/feeds/{token}.ics"))[0]["summary"])

    reads = AuditEvent.objects(action="feed.read", record=f"Provider:{provider.id}").count()
    assert reads == 5
    assert AuditEvent.objects(action="feed.make", record=f"Provider:{provider.id}").count() == 1

    # A new link ends the old one; revoking ends the new one: 404 for both, in the contract's shape.
    new_token, _ = _make_link(admin, provider)
    old = client.get(f"/feeds/{token}.ics")
    assert old.status_code == 404
    assert client.get(f"/feeds/{new_token}.ics").status_code == 200
    page = admin.get("/admin/providers/").get_data(as_text=True)
    admin.post("/admin/providers/action/", data={"action": "revoke_feed", "rowid": str(provider.id),
                                                 "csrf_token": form_csrf(page)})
    assert client.get(f"/feeds/{new_token}.ics").status_code == 404
    assert client.get("/feeds/made-up-token.ics").status_code == 404
    assert AuditEvent.objects(action="feed.read", outcome="refused:not_found").count() == 3


def test_reception_cannot_make_a_feed_and_reads_are_rate_limited(app, staff_client):
    make_clinic()
    service = make_service(name="Physio", price=0)
    provider = make_provider([service], name="Dr Limit")
    reception = staff_client("reception")
    page = reception.get("/admin/providers/").get_data(as_text=True)
    reception.post("/admin/providers/action/", data={"action": "make_feed", "rowid": str(provider.id),
                                                     "csrf_token": form_csrf(page) or ""})
    assert FeedToken.objects.count() == 0
    from models.feeds import make_feed

    with app.app_context():
        token = make_feed(provider.id)
    client = app.test_client()
    answers = [client.get(f"/feeds/{token}.ics").status_code for _ in range(61)]
    assert answers[:60] == [200] * 60 and answers[60] == 429
    assert client.get(f"/feeds/{token}.ics").headers.get("Retry-After")


def test_the_feed_puts_each_visit_where_the_patients_own_calendar_file_does(app):
    """The clinician's calendar shows the clinic's address, as the patient's .ics does, not its name alone."""
    from models.clock import utcnow
    from models.feeds import make_feed
    from tests.support.clients import signed_in

    clinic = make_clinic()
    Clinic.objects(id=clinic.id).update_one(set__address="12 River Street\nLondon SE1 9RT")
    service = make_service(name="Physio", price=0)
    provider = make_provider([service], name="Dr Where")
    patient = make_patient("where@example.com", name="Wendy Where")
    appt = book(patient, service.id, provider.id, at(future_day(3), 10), utcnow())
    with app.app_context():
        token = make_feed(provider.id)
    [event] = _events(app.test_client().get(f"/feeds/{token}.ics"))
    assert str(event["location"]) == "Test Clinic, 12 River Street, London SE1 9RT"
    own = signed_in(app, "where@example.com").get(f"/portal/appointments/{appt.id}.ics")
    [patients_event] = Calendar.from_ical(own.get_data()).walk("VEVENT")
    assert str(patients_event["location"]) == str(event["location"])


def test_the_feed_runs_from_30_days_back_to_the_booking_horizon(app):
    """31 days back is gone from the clinician's calendar, 29 days back is still there, and the furthest
    time a patient can book (the service's 60-day horizon) is there; a visit beyond it is not."""
    from models.clock import utcnow
    from models.feeds import make_feed

    make_clinic()
    service = make_service(name="Physio", price=0, horizon=60)
    provider = make_provider([service], name="Dr Window")
    patient = make_patient("window@example.com", name="Wyn Window")
    now = utcnow()
    today = now.astimezone(LONDON).date()

    def booked(start, when=None):
        """Booked through the booking action, as of `when` (a day before the visit: past visits too)."""
        return book(patient, service.id, provider.id, start, when or start - timedelta(days=1)).id

    gone = booked(at(today - timedelta(days=31), 10))
    kept = booked(at(today - timedelta(days=29), 10))
    # The furthest time a patient booking now may take: the last on-the-hour start inside 60 days.
    furthest = max(at(today + timedelta(days=d), h) for d in (59, 60) for h in range(9, 17) if h != 12
                   and at(today + timedelta(days=d), h) <= now + timedelta(days=60))
    last = booked(furthest, now)  # bookable today: it is inside the horizon
    beyond = booked(at(today + timedelta(days=63), 10))
    with app.app_context():
        token = make_feed(provider.id)
    events = _events(app.test_client().get(f"/feeds/{token}.ics"))
    shown = {str(e["uid"]) for e in events}
    assert f"appointment-{kept}@clinic" in shown and f"appointment-{last}@clinic" in shown
    assert f"appointment-{gone}@clinic" not in shown and f"appointment-{beyond}@clinic" not in shown
    assert len(events) == 2
    assert max(e.decoded("dtstart") for e in events) == furthest
