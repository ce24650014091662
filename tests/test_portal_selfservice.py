"""The self-service pages without JavaScript (plain HTTP): booking, sign-in coming back to the review,
the dashboard's lists, an expired hold's reason and "book this time again", and the waitlist form."""

import re
from datetime import timedelta
from urllib.parse import quote, unquote

import pytest

from models import Appointment, Payment, TimeClaim
from models.documents import utcnow
from tests.support.factories import PASSWORD, api_login, at, form_csrf, future_day, make_patient, make_service


@pytest.fixture
def setup(app, clinic_world):
    return clinic_world(
        services={"consult": dict(name="Consultation", duration=30, price=6000, cancel_hours=24,
                                  description="Thirty minutes with a doctor.")},
        providers={"one": dict(name="Dr One"), "two": dict(name="Dr Two")}, patients=["pat@example.com"])


def jwt_csrf(client):
    return client.get_cookie("csrf_access_token").value


def test_visitors_browse_and_the_review_sends_them_to_sign_in_and_back(app, setup):
    s, client = setup, app.test_client()
    day = future_day(3)
    page = client.get("/portal/book").get_data(as_text=True)
    assert "Consultation" in page and "£60.00" in page and "Thirty minutes with a doctor." in page
    page = client.get(f"/portal/book?service={s['consult'].id}&provider=any&day={day}").get_data(as_text=True)
    assert page.count(">10:00<span") == 1  # two clinicians free at 10:00, listed once
    assert "Morning" in page and "Afternoon" in page
    # The next free day is one link away from the times, and the waitlist is offered too.
    following = day + timedelta(days=1)
    assert f'day={following.isoformat()}&amp;service={s["consult"].id}&amp;provider=any#times">' \
        f'{following.strftime("%a")} {following.day}' in page
    assert f'/portal/waitlist?service={s["consult"].id}&amp;provider=any">Join the waitlist</a>' in page
    start = at(day, 10).isoformat()
    review = client.get(f"/portal/book?service={s['consult'].id}&provider=any&day={day}&start={quote(start)}")
    html = review.get_data(as_text=True)
    assert "Any available: Dr One or Dr Two" in html
    assert "held for you for 15 minutes" in html and "up to 24 hours before it starts" in html
    assert "Hold this time" not in html  # no booking before signing in
    login_link = re.search(r'href="(/portal/login\?next=[^"]+)"', html).group(1).replace("&amp;", "&")
    form = client.get(login_link).get_data(as_text=True)
    answer = client.post(login_link, data={"csrf_token": form_csrf(form), "email": "pat@example.com",
                                           "password": PASSWORD})
    assert answer.status_code == 302
    back = unquote(answer.headers["Location"])
    assert back.startswith("/portal/book?") and f"start={start}" in back and back.endswith("#review")
    html = client.get(answer.headers["Location"].split("#")[0]).get_data(as_text=True)
    assert "Hold this time and pay £60.00" in html

    # Without JavaScript: the form posts "any" and a clinician free at that time is picked.
    booked = client.post("/portal/book", data={
        "csrf_token": form_csrf(html), "jwt_csrf": jwt_csrf(client), "service": str(s["consult"].id),
        "provider": "any", "start": start})
    assert booked.status_code == 302 and "/portal/appointments/" in booked.headers["Location"]
    # The same time again, "any": the other clinician gets it.
    other = make_patient(email="two@example.com")
    second = app.test_client()
    api_login(second, email=other.email)
    html = second.get(f"/portal/book?service={s['consult'].id}&provider=any&day={day}&start={quote(start)}").get_data(as_text=True)
    assert second.post("/portal/book", data={
        "csrf_token": form_csrf(html), "jwt_csrf": jwt_csrf(second), "service": str(s["consult"].id),
        "provider": "any", "start": start}).status_code == 302
    assert {a.provider.name for a in Appointment.objects(start=at(day, 10))} == {"Dr One", "Dr Two"}


def test_a_time_no_longer_free_is_not_reviewed(app, setup):
    s, client = setup, app.test_client()
    html = client.get(f"/portal/book?service={s['consult'].id}&provider={s['one'].id}&day={future_day(3)}"
                      f"&start={quote(at(future_day(3), 12, 10).isoformat())}").get_data(as_text=True)
    assert "That time is no longer free" in html and 'id="review"' not in html


def test_dashboard_lists_and_an_expired_hold_offers_its_time_again(app, setup):
    s = setup
    client = app.test_client()
    api_login(client)
    from models.booking.create import book
    from models.documents import Patient

    pat, now = Patient.objects.get(email="pat@example.com"), utcnow()
    upcoming = book(pat, str(s["consult"].id), str(s["one"].id), at(future_day(3), 9), now)
    lapsed = book(pat, str(s["consult"].id), str(s["one"].id), at(future_day(3), 14), now)
    Appointment.objects(id=lapsed.id).update_one(set__hold_expires_at=now - timedelta(minutes=1))
    TimeClaim.objects(appointment=lapsed.id).update(set__expires_at=now - timedelta(minutes=1))
    cancelled = book(pat, str(s["consult"].id), str(s["two"].id), at(future_day(4), 9), now)
    Appointment.objects(id=cancelled.id).update_one(set__status="cancelled", set__cancel_reason="cancelled by patient")
    past = Appointment(patient=pat, provider=s["one"], service=s["consult"], start=now - timedelta(days=2),
                       end=now - timedelta(days=2, minutes=-30), block_start=now - timedelta(days=2),
                       block_end=now - timedelta(days=2, minutes=-30), status="completed", amount=6000,
                       currency="gbp").save()
    Payment(appointment=past, patient=pat, amount=6000, currency="gbp", status="succeeded",
            stripe_payment_intent="pi_receipt").save()

    html = client.get("/portal/").get_data(as_text=True)
    sections = {name: html.split(f'id="{name}"')[1].split("</ul>")[0] for name in ("upcoming", "past", "closed")}
    assert str(upcoming.id) in sections["upcoming"] and "Awaiting payment" in sections["upcoming"]
    assert str(lapsed.id) not in sections["upcoming"]
    assert str(past.id) in sections["past"] and f"/portal/appointments/{past.id}/receipt" in sections["past"]
    assert str(lapsed.id) in sections["closed"] and str(cancelled.id) in sections["closed"]
    assert "payment was not completed by then, so it was released" in sections["closed"]
    assert "Book this time again" in sections["closed"]
    receipt = client.get(f"/portal/appointments/{past.id}/receipt").get_data(as_text=True)
    assert "£60.00" in receipt and "pi_receipt" in receipt
    assert client.get(f"/portal/appointments/{upcoming.id}/receipt").status_code == 404

    # Once somebody else holds that time, it is no longer offered again.
    other = make_patient(email="x@example.com")
    book(other, str(s["consult"].id), str(s["one"].id), at(future_day(3), 14), utcnow())
    html = client.get("/portal/").get_data(as_text=True)
    assert "Book this time again" not in html


def test_waitlist_form_shows_errors_on_the_field(app, setup):
    from models.booking.waitlist import WaitlistEntry
    from models.documents import Appointment

    s, client = setup, app.test_client()
    api_login(client)
    form = client.get("/portal/waitlist").get_data(as_text=True)
    answer = client.post("/portal/waitlist", data={
        "csrf_token": form_csrf(form), "jwt_csrf": jwt_csrf(client), "service": str(s["consult"].id),
        "provider": "any", "date_from": "2026-12-10", "date_to": "2026-12-01"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'aria-invalid="true"' in html and "The last day comes before the first." in html
    wanted = {"csrf_token": form_csrf(form), "jwt_csrf": jwt_csrf(client), "service": str(s["consult"].id),
              "provider": str(s["one"].id), "date_from": future_day(3).isoformat(),
              "date_to": future_day(3).isoformat()}
    answer = client.post("/portal/waitlist", data=wanted)
    # Issue 26: times are free that day already: they are shown first, nothing is joined or held.
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Times are free now" in html and "/portal/book?service=" in html
    assert WaitlistEntry.objects.count() == 0 and Appointment.objects(booked_by="waitlist-offer").count() == 0
    # The patient still wants to wait: joined, and none of the times shown is held for them.
    answer = client.post("/portal/waitlist", data=dict(wanted, wait_anyway="1"))
    assert answer.status_code == 302
    html = client.get("/portal/waitlist").get_data(as_text=True)
    assert "A time is held for you:" not in html and WaitlistEntry.objects.get().status == "waiting"
    assert Appointment.objects(booked_by="waitlist-offer").count() == 0


def test_cancelling_takes_two_steps_and_states_the_refund_first(app, setup):
    from models.booking.cancellation import cancel
    from models.booking.create import book
    from models.documents import Patient
    from tests.support.payments import CARD_OK, api_post, card_token

    s, client = setup, app.test_client()
    assert api_login(client).status_code == 200
    patient = Patient.objects.get(email="pat@example.com")
    appt = book(patient, str(s["consult"].id), str(s["one"].id), at(future_day(5), 10), utcnow())
    stripe_base = app.config["STRIPE_API_BASE"]
    assert api_post(client, f"/api/appointments/{appt.id}/payment").status_code == 200
    paid = api_post(client, f"/api/appointments/{appt.id}/payment/confirm",
                    {"token": card_token(stripe_base, CARD_OK)["id"]})
    assert paid.get_json()["appointment_status"] == "confirmed"

    page = client.get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert 'cancel=1#cancel">Cancel this appointment</a>' in page and "Yes, cancel it" not in page
    ask = client.get(f"/portal/appointments/{appt.id}?cancel=1").get_data(as_text=True)
    assert "Cancel this appointment?" in ask
    # A post without the confirmation (an old form, a stray click) only leads to the question.
    early = client.post(f"/portal/appointments/{appt.id}/cancel",
                        data={"csrf_token": form_csrf(ask), "jwt_csrf": jwt_csrf(client)})
    assert early.status_code == 302 and early.headers["Location"].endswith("?cancel=1#cancel")
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert "You will be refunded £60.00 to the card you paid with." in ask
    done = client.post(f"/portal/appointments/{appt.id}/cancel",
                       data={"csrf_token": form_csrf(ask), "jwt_csrf": jwt_csrf(client), "confirm": "yes"})
    assert done.status_code == 302 and Appointment.objects.get(id=appt.id).status == "cancelled"
    assert Payment.objects.get(appointment=appt.id).amount_refunded == 6000

    # A cancellation by the clinic shows as such; the staff's own note is not shown to the patient.
    other = book(patient, str(s["consult"].id), str(s["two"].id), at(future_day(6), 11), utcnow(),
                 booked_by="staff:reception", pay_online=False)
    cancel(other, utcnow(), reason="Patient phoned: feeling better", by_staff=True, actor="staff:reception")
    dashboard = client.get("/portal/").get_data(as_text=True)
    # Each says who cancelled once, in its badge (the QA walk found "Cancelled by you" twice).
    assert dashboard.count("Cancelled by the clinic") == 1 and dashboard.count("Cancelled by you") == 1
    assert '<span class="badge tone-muted">Cancelled by you</span>' in dashboard
    assert "feeling better" not in dashboard


def test_the_review_warns_when_the_time_is_already_inside_the_cancellation_window(app, setup):
    from datetime import datetime, timezone

    s, client = setup, app.test_client()
    slots = client.get(f"/api/slots?service={s['consult'].id}&provider={s['one'].id}&days=7").get_json()
    soon = slots[0]  # the provider works every day, so the first free time is under 24 hours away
    assert datetime.fromisoformat(soon["start"]) - datetime.now(timezone.utc) < timedelta(hours=24)
    later = next(x for x in slots if datetime.fromisoformat(x["start"]) - datetime.now(timezone.utc) > timedelta(hours=48))
    warning = "This time starts within 24 hours, so once booked it cannot be cancelled or moved online."

    def review(slot):
        day = slot["start"][:10]
        url = (f"/portal/book?service={s['consult'].id}&provider={s['one'].id}&day={day}"
               f"&start={quote(slot['start'])}")
        return client.get(url).get_data(as_text=True)

    assert warning in review(soon)
    assert warning not in review(later) and "up to 24 hours before it starts" in review(later)


def test_a_service_no_clinician_offers_is_not_offered_for_booking(app, setup):
    orphan = make_service("Orphan therapy", duration=30, price=1000)
    page = app.test_client().get("/portal/book").get_data(as_text=True)
    assert "Consultation" in page and orphan.name not in page


def test_the_api_and_the_booking_page_list_the_same_services(app, setup):
    """`GET /api/services` lists what the booking page offers: active services some clinician provides."""
    from models import Provider, Service

    make_service(name="Nobody Offers This")  # active, but no clinician provides it: no time to book
    retired = make_service(name="Retired Service")
    Provider.objects(id=setup["one"].id).update_one(push__services=retired.id)
    Service.objects(id=retired.id).update_one(set__active=False)
    client = app.test_client()
    listed = [s["name"] for s in client.get("/api/services").get_json()]
    page = client.get("/portal/book").get_data(as_text=True)
    on_page = re.findall(r'\?service=[0-9a-f]{24}[^"]*"><strong>([^<]+)</strong>', page)
    assert listed == on_page == ["Consultation"]


def test_the_review_states_the_terms_that_cancel_and_refund_then_apply(app, clinic_world):
    """The booking page's policy and "starts within" notice, the cancel rule and the refund after a
    cancellation all read `cancellation_terms`: what the page promises is what happens."""
    from models.booking.cancellation import cancellation_blocker, cancellation_terms
    from models.booking.create import book
    from models.documents import Patient
    from models.payments.cancellation import refund_due

    world = clinic_world(services={"strict": dict(name="Strict", duration=30, price=6000, cancel_hours=48,
                                                  refund_rule="none")},
                         providers={"one": dict(name="Dr One")}, patients=["pat@example.com"])
    service, client = world["strict"], app.test_client()
    near, far = at(future_day(1), 10), at(future_day(5), 10)

    def review(start):
        return client.get(f"/portal/book?service={service.id}&provider=any&day={start.date()}"
                          f"&start={quote(start.isoformat())}").get_data(as_text=True)

    far_page, near_page = review(far), review(near)
    for page in (far_page, near_page):
        assert "up to 48 hours before it starts; if you cancel, the price is not refunded" in page
    assert "This time starts within 48 hours" in near_page and "starts within" not in far_page
    pat = Patient.objects.get(email="pat@example.com")
    with app.app_context():
        now = utcnow()
        booked_near = book(pat, str(service.id), str(world["one"].id), near, now, pay_online=False)
        booked_far = book(pat, str(service.id), str(world["one"].id), far, now, pay_online=False)
        held = book(pat, str(service.id), str(world["one"].id), at(future_day(6), 10), now)
        terms = cancellation_terms(booked_near, now)
        assert (terms.may_cancel, terms.refund, terms.until) == (False, "none", near - timedelta(hours=48))
        assert cancellation_blocker(booked_near, now) is not None
        terms = cancellation_terms(booked_far, now)
        assert (terms.may_cancel, terms.refund) == (True, "none") and cancellation_blocker(booked_far, now) is None
        assert refund_due(booked_far, "confirmed", now) is False
        # Only held (never confirmed): cancellable at any time, and anything paid comes back.
        assert cancellation_terms(held, now).refund == "full" and refund_due(held, "held", now) is True


def test_book_this_time_again_names_the_clinics_date_not_utcs(app, clinic_world):
    """Issue 24: 09:00 in Sydney is 22:00 UTC the day before; the dashboard's "Book this time again"
    opens the booking page on the clinic's date (it once wrote the UTC date: the day before)."""
    from datetime import datetime, time, timezone
    from zoneinfo import ZoneInfo

    from models.booking.create import book
    from models.documents import Patient

    sydney = ZoneInfo("Australia/Sydney")
    s = clinic_world(clinic={"tz": "Australia/Sydney"},
                     services={"consult": dict(name="Consultation", duration=30, price=6000, cancel_hours=0)},
                     providers={"one": dict(name="Dr One", hours=("09:00", "10:00"), lunch=None)},
                     patients=["pat@example.com"])
    day = (datetime.now(timezone.utc) + timedelta(days=3)).astimezone(sydney).date()
    start = datetime.combine(day, time(9), sydney)
    pat, now = Patient.objects.get(email="pat@example.com"), utcnow()
    lapsed = book(pat, str(s["consult"].id), str(s["one"].id), start, now)
    Appointment.objects(id=lapsed.id).update_one(set__hold_expires_at=now - timedelta(minutes=1))
    TimeClaim.objects(appointment=lapsed.id).update(set__expires_at=now - timedelta(minutes=1))
    client = app.test_client()
    api_login(client)
    closed = client.get("/portal/").get_data(as_text=True).split('id="closed"')[1].split("</ul>")[0]
    again = re.search(r'href="([^"]+)">Book this time again', closed).group(1).replace("&amp;", "&")
    assert f"day={day.isoformat()}" in again and start.astimezone(timezone.utc).date() != day
    # The link's page shows that time to book again.
    page = client.get(again.split("#")[0]).get_data(as_text=True)
    assert 'id="review"' in page
    # Just after midnight in a London summer: the local date, never the UTC one.
    from portal.booking_pages import again_url

    summer = Appointment(service=s["consult"], provider=s["one"], start=datetime(2026, 6, 30, 23, 30, tzinfo=timezone.utc))
    with app.test_request_context():
        assert "day=2026-07-01&start=2026-07-01T00%3A30%3A00%2B01%3A00" in again_url(summer, "Europe/London")


def test_the_dashboard_and_the_api_list_the_same_appointments(app, setup):
    """Issue 24: one domain function (`models.booking.lists.appointments_of`) lists the account's
    appointments for the dashboard and for `GET /api/appointments`: the same ones (a dependant's
    included, a waitlist offer open or ended left out), upcoming soonest first."""
    from datetime import date

    from models.accounts.dependants import add_dependant
    from models.booking.create import book
    from models.booking.documents import WAITLIST_OFFER
    from models.booking.lists import appointments_of
    from models.documents import Patient

    s = setup
    pat, now = Patient.objects.get(email="pat@example.com"), utcnow()
    child = add_dependant(pat, "Kit Example", date(2018, 5, 1), now.date())
    pat.reload()
    lapsed = book(pat, str(s["consult"].id), str(s["one"].id), at(future_day(4), 14), now)
    Appointment.objects(id=lapsed.id).update_one(set__hold_expires_at=now - timedelta(minutes=1))
    later = book(pat, str(s["consult"].id), str(s["two"].id), at(future_day(5), 9), now)
    sooner = book(child, str(s["consult"].id), str(s["one"].id), at(future_day(3), 11), now)
    past = Appointment(patient=pat, provider=s["one"], service=s["consult"], start=now - timedelta(days=2),
                       end=now - timedelta(days=2, minutes=-30), block_start=now - timedelta(days=2),
                       block_end=now - timedelta(days=2, minutes=-30), status="completed", amount=6000,
                       currency="gbp").save()
    offers = [Appointment(patient=pat, provider=s["two"], service=s["consult"], start=at(future_day(6), h),
                          end=at(future_day(6), h, 30), block_start=at(future_day(6), h), block_end=at(future_day(6), h, 30),
                          status=st, hold_expires_at=now + timedelta(minutes=30), booked_by=WAITLIST_OFFER).save()
              for h, st in ((9, "offered"), (10, "expired"))]

    lists = appointments_of(pat, now)
    assert [a.id for a, _ in lists.upcoming] == [sooner.id, later.id]
    assert [a.id for a, _ in lists.past] == [past.id] and [(a.id, st) for a, st in lists.closed] == [(lapsed.id, "expired")]
    client = app.test_client()
    api_login(client)
    listed = client.get("/api/appointments").get_json()
    assert [a["id"] for a in listed] == [str(a.id) for a, _ in lists.everything()]
    assert [a["status"] for a in listed] == [st for _, st in lists.everything()]
    html = client.get("/portal/").get_data(as_text=True)
    for name, part in (("upcoming", lists.upcoming), ("past", lists.past), ("closed", lists.closed)):
        section = html.split(f'id="{name}"')[1].split("</ul>")[0]
        assert re.findall(r"/portal/appointments/([0-9a-f]{24})\"", section) == [str(a.id) for a, _ in part], name
    assert not any(str(o.id) in html for o in offers)
    assert not {str(o.id) for o in offers} & {a["id"] for a in listed}
