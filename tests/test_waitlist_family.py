"""Issue 28 on the waitlist: a parent puts their child on the waitlist (API and page), the child's
freed time is offered to the parent (page, email) as the child's, the parent accepts it; nobody else
can see or accept it, and a `for` that is not on the account is refused with nothing written."""

from datetime import datetime

import pytest

from models import Appointment, Patient, TimeClaim
from models.booking.waitlist import WaitlistEntry
from models.documents import Clinic, utcnow
from models.messages.documents import OutboxMessage
from models.messages.rendering import render
from models.messages.sms import render_text
from tests.support.clients import register_and_sign_in
from tests.support.factories import PASSWORD, at, form_csrf, future_day


@pytest.fixture
def family(app, clinic_world):
    """One short working hour (09:00, 09:30) fully booked by another patient; a parent with a child."""
    w = clinic_world(
        services={"consult": dict(name="Consultation", duration=30, price=6000, cancel_hours=0)},
        providers={"one": dict(name="Dr One", hours=("09:00", "10:00"), lunch=None),
                   "two": dict(name="Dr Two", hours=("09:00", "10:00"), lunch=None)})
    day = future_day(4)
    busy = register_and_sign_in(app, email="busy@example.com", name="Bo Busy")
    booked = []
    for minute in (0, 30):
        resp = busy.post("/api/appointments", json={"service": str(w["consult"].id), "provider": str(w["one"].id),
                                                     "start": at(day, 9, minute).isoformat()})
        assert resp.status_code == 201, resp.get_json()
        booked.append(resp.get_json()["id"])
    # Paid: confirmed, their time secured (both clinics' holds would otherwise lapse on their own).
    Appointment.objects(id__in=booked).update(set__status="confirmed", set__hold_expires_at=None)
    TimeClaim.objects(appointment__in=booked).update(set__expires_at=None)
    parent = register_and_sign_in(app, email="alex@example.com", name="Alex Lopez")
    kid = parent.post("/api/me/dependants", json={"name": "Sam Lopez", "date_of_birth": "2017-06-01"}).get_json()
    return dict(w, day=day, busy=busy, booked=booked, parent=parent, kid=kid)


def _join(client, f, provider="one", **extra):
    return client.post("/api/waitlist", json={"service": str(f["consult"].id), "provider": str(f[provider].id),
                                              "from": f["day"].isoformat(), "to": f["day"].isoformat(), **extra})


def _free_nine(f):
    """The other patient cancels their 09:00 with Dr One: the time is freed for the waitlist."""
    resp = f["busy"].post(f"/api/appointments/{f['booked'][0]}/cancel")
    assert resp.status_code == 200, resp.get_json()


def test_a_parent_puts_a_child_on_the_waitlist_and_accepts_the_childs_offer(app, family):
    f = family
    kid = {"id": f["kid"]["id"], "name": "Sam Lopez"}
    # The parent has their own visit at 09:00 (with Dr Two): the child's offer is not stopped by it,
    # the overlap rule is the child's own.
    own = f["parent"].post("/api/appointments", json={"service": str(f["consult"].id), "provider": str(f["two"].id),
                                                      "start": at(f["day"], 9).isoformat()})
    assert own.status_code == 201, own.get_json()
    joined = _join(f["parent"], f, **{"for": kid["id"]})
    assert joined.status_code == 201, joined.get_json()
    entry = joined.get_json()
    assert entry["for"] == kid and entry["status"] == "waiting"
    assert str(WaitlistEntry.objects.get(id=entry["id"]).patient.id) == kid["id"]

    _free_nine(f)
    [listed] = f["parent"].get("/api/waitlist").get_json()
    assert listed["for"] == kid and listed["status"] == "offered"
    assert datetime.fromisoformat(listed["offer"]["start"]) == at(f["day"], 9)
    offer = WaitlistEntry.objects.get(id=entry["id"]).offer
    assert str(offer.patient.id) == kid["id"]  # the offer is the child's appointment

    # The offer is written to the parent (where the child's confirmations go) and names the child.
    mail = OutboxMessage.objects.get(kind="waitlist_offer", subject=f"WaitlistEntry:{entry['id']}", channel="email")
    assert mail.to == "alex@example.com"
    with app.app_context():
        rendered = render(mail, utcnow())
        assert "Hello Alex Lopez" in rendered.text and "For:   Sam Lopez" in rendered.text
        assert "<td>Sam Lopez</td>" in rendered.html
        assert "free for Sam Lopez" in render_text(mail, utcnow())

    # The parent's page says whose it is; the dashboard names the child beside the offer.
    page = f["parent"].get("/portal/waitlist").get_data(as_text=True)
    assert "Consultation</strong> for Sam Lopez" in page and "A time is held for Sam Lopez" in page
    assert "Sam Lopez: Consultation with Dr One" in f["parent"].get("/portal/").get_data(as_text=True)

    accepted = f["parent"].post(f"/api/waitlist/{entry['id']}/accept")
    assert accepted.status_code == 201, accepted.get_json()
    appt = accepted.get_json()
    assert appt["for"] == kid and appt["status"] == "held"
    assert f["parent"].get("/api/waitlist").get_json()[0]["status"] == "booked"
    assert sorted(a["for"]["name"] for a in f["parent"].get("/api/appointments").get_json()) == [
        "Alex Lopez", "Sam Lopez"]


def test_another_account_cannot_see_leave_or_accept_the_childs_entry(app, family):
    f = family
    entry = _join(f["parent"], f, **{"for": f["kid"]["id"]}).get_json()
    _free_nine(f)
    stranger = register_and_sign_in(app, email="other@example.com", name="Oli Other")
    assert stranger.get("/api/waitlist").get_json() == []
    assert stranger.post(f"/api/waitlist/{entry['id']}/accept").status_code == 404
    assert stranger.delete(f"/api/waitlist/{entry['id']}").status_code == 404
    assert "Sam Lopez" not in stranger.get("/portal/waitlist").get_data(as_text=True)
    assert WaitlistEntry.objects.get(id=entry["id"]).status == "offered"
    # The parent may leave it for the child: the offer is given back.
    assert f["parent"].delete(f"/api/waitlist/{entry['id']}").status_code == 204
    assert Appointment.objects.get(id=WaitlistEntry.objects.get(id=entry["id"]).offer.id).status == "expired"


def test_a_for_not_on_the_account_is_refused_and_nothing_is_written(app, family):
    f = family
    stranger = register_and_sign_in(app, email="other@example.com", name="Oli Other")
    theirs = stranger.post("/api/me/dependants", json={"name": "Kit Other", "date_of_birth": "2016-01-01"}).get_json()
    for who in (theirs["id"], "0123456789abcdef01234567"):
        answer = _join(f["parent"], f, **{"for": who})
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "dependant_not_found"
    malformed = _join(f["parent"], f, **{"for": "Sam"})
    assert malformed.status_code == 422 and "for" in malformed.get_json()["error"]["fields"]
    # Through the page too.
    form = f["parent"].get("/portal/waitlist").get_data(as_text=True)
    answer = f["parent"].post("/portal/waitlist", data={
        "csrf_token": form_csrf(form), "jwt_csrf": f["parent"].get_cookie("csrf_access_token").value,
        "service": str(f["consult"].id), "provider": str(f["one"].id), "date_from": f["day"].isoformat(),
        "date_to": f["day"].isoformat(), "wait_anyway": "1", "for": theirs["id"]})
    assert answer.status_code == 404 and "That person is not on your account." in answer.get_data(as_text=True)
    assert WaitlistEntry.objects.count() == 0


def test_the_page_form_asks_who_it_is_for_and_the_parent_accepts_there(app, family):
    f = family
    parent, jwt = f["parent"], f["parent"].get_cookie("csrf_access_token").value
    form = parent.get("/portal/waitlist").get_data(as_text=True)
    assert "<legend>Who is this for?</legend>" in form and "Alex Lopez (you)" in form
    assert f'value="{f["kid"]["id"]}"> Sam Lopez' in form
    joined = parent.post("/portal/waitlist", data={
        "csrf_token": form_csrf(form), "jwt_csrf": jwt, "service": str(f["consult"].id),
        "provider": str(f["one"].id), "date_from": f["day"].isoformat(), "date_to": f["day"].isoformat(),
        "for": f["kid"]["id"]})
    assert joined.status_code == 302, joined.get_data(as_text=True)
    entry = WaitlistEntry.objects.get()
    assert str(entry.patient.id) == f["kid"]["id"]
    page = parent.get("/portal/waitlist").get_data(as_text=True)
    assert "Consultation</strong> for Sam Lopez with Dr One" in page

    _free_nine(f)
    page = parent.get("/portal/waitlist").get_data(as_text=True)
    assert "A time is held for Sam Lopez" in page
    accepted = parent.post(f"/portal/waitlist/{entry.id}/accept", data={"csrf_token": form_csrf(page), "jwt_csrf": jwt})
    assert accepted.status_code == 302 and "/portal/appointments/" in accepted.headers["Location"]
    shown = parent.get(accepted.headers["Location"]).get_data(as_text=True)
    assert '<dd id="for">Sam Lopez</dd>' in shown


def test_the_caps_count_the_household_for_a_childs_offer(app, family):
    f = family
    clinic = Clinic.objects.get()
    clinic.max_held = 1
    clinic.save()  # its signal tells the catalog cache
    # The parent's own unpaid hold fills the household's one hold: the child is not offered a time.
    held = f["parent"].post("/api/appointments", json={"service": str(f["consult"].id), "provider": str(f["two"].id),
                                                       "start": at(f["day"], 9, 30).isoformat()})
    assert held.status_code == 201 and held.get_json()["status"] == "held"
    entry = _join(f["parent"], f, **{"for": f["kid"]["id"]}).get_json()
    _free_nine(f)
    assert WaitlistEntry.objects.get(id=entry["id"]).status == "waiting"


def test_the_childs_entry_is_in_the_parents_export_and_left_on_erasure(app, family):
    f = family
    entry = _join(f["parent"], f, **{"for": f["kid"]["id"]}).get_json()
    _free_nine(f)
    offer_id = WaitlistEntry.objects.get(id=entry["id"]).offer.id
    export = f["parent"].get("/api/me/export").get_json()
    [row] = export["other_records"]["waitlist_entries"]
    assert row["id"] == entry["id"] and row["patient"] == f["kid"]["id"]
    assert f["parent"].post("/api/me/delete", json={"password": PASSWORD}).status_code == 200
    left = WaitlistEntry.objects.get(id=entry["id"])
    assert left.left_at is not None and left.status == "expired"
    assert Appointment.objects.get(id=offer_id).status == "expired"  # the held time is given back
    assert Patient.objects.get(id=f["kid"]["id"]).name == "Erased patient"


def test_times_free_now_for_a_child_open_the_booking_review_for_the_child(app, family):
    """Asked for the child, the waitlist shows Dr Two's free times first; choosing one opens the
    booking review with the child already chosen as who it is for."""
    import html
    import re

    f = family
    parent = f["parent"]
    form = parent.get("/portal/waitlist").get_data(as_text=True)
    answer = parent.post("/portal/waitlist", data={
        "csrf_token": form_csrf(form), "jwt_csrf": parent.get_cookie("csrf_access_token").value,
        "service": str(f["consult"].id), "provider": str(f["two"].id), "date_from": f["day"].isoformat(),
        "date_to": f["day"].isoformat(), "for": f["kid"]["id"]}).get_data(as_text=True)
    assert "Times are free now" in answer and WaitlistEntry.objects.count() == 0
    link = html.unescape(re.search(r'<a href="(/portal/book\?[^"]+)">[^<]*09:00', answer).group(1))
    assert f"for={f['kid']['id']}" in link
    review = parent.get(link).get_data(as_text=True)
    assert re.search(rf'value="{f["kid"]["id"]}" checked> Sam Lopez', review), "the child is chosen"
