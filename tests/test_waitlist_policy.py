"""A waitlist offer is a booking like any other: the service's no-show policy (issue 27) applies
when the patient accepts it — a card on file, their agreement stored with the appointment, the
deposit as what is paid online. Against real MongoDB, Redis and the stack's localstripe."""

import re

from models import Appointment, TimeClaim
from models.booking.waitlist import WaitlistEntry
from tests.support.factories import at, form_csrf, future_day
from tests.support.payments import api_post, save_card, signed_in
from tests.support.world import build_world


def offered(app, stripe_base):
    """A £80.00 assessment with a £20.00 deposit and a £15.00 fee for cancelling late or not coming;
    its one time that day is booked by `taker`, `pat` waits for the day, and `taker` cancels: the
    time is offered to `pat`. Answers (pat's client, the entry's id)."""
    made = build_world(services={"assess": dict(name="Assessment", duration=30, price=8000, cancel_hours=24)},
                       providers={"dr": dict(name="Dr Wait", hours=("09:00", "09:30"), lunch=None)},
                       patients=["pat@example.com", "taker@example.com"])
    service, dr = made.services["assess"], made.providers["dr"]
    day = future_day(4)
    taker, pat = signed_in(app, "taker@example.com"), signed_in(app, "pat@example.com")
    save_card(taker, stripe_base)
    service.update(set__deposit_amount=2000, set__late_cancel_fee=1500, set__no_show_fee=1500)
    booked = api_post(taker, "/api/appointments", {"service": str(service.id), "provider": str(dr.id),
                                                   "start": at(day, 9).isoformat(), "agree_policy": True})
    assert booked.status_code == 201, booked.get_json()
    Appointment.objects(id=booked.get_json()["id"]).update_one(set__status="confirmed", set__hold_expires_at=None)
    TimeClaim.objects(appointment=booked.get_json()["id"]).update(set__expires_at=None)
    joined = api_post(pat, "/api/waitlist", {"service": str(service.id), "from": day.isoformat(), "to": day.isoformat()})
    assert joined.status_code == 201, joined.get_json()
    entry = joined.get_json()["id"]
    assert api_post(taker, f"/api/appointments/{booked.get_json()['id']}/cancel").status_code == 200
    assert WaitlistEntry.objects.get(id=entry).status == "offered"
    return pat, entry


SENTENCE = ("We take a deposit of £20.00 now; the rest is paid at the clinic. If you cancel less than "
            "24 hours before, or do not come, we will charge £15.00 to your card ending 4242.")


def test_accepting_an_offer_asks_for_the_card_and_the_agreement_and_stores_it(app, stripe_base):
    pat, entry = offered(app, stripe_base)

    # No card on file: the page says so before anything is pressed, and the API refuses.
    page = pat.get("/portal/waitlist").get_data(as_text=True)
    assert "This service needs a card on file." in page and "Accept this time" not in page
    refused = api_post(pat, f"/api/waitlist/{entry}/accept", {"agree_policy": True})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "card_required"
    save_card(pat, stripe_base)
    # With a card, the offer states the policy, and accepting without agreeing books nothing.
    page = pat.get("/portal/waitlist").get_data(as_text=True)
    assert f"I agree: {SENTENCE}" in page
    unagreed = api_post(pat, f"/api/waitlist/{entry}/accept")
    assert unagreed.status_code == 422 and unagreed.get_json()["error"]["code"] == "policy_not_agreed"
    assert api_post(pat, f"/api/waitlist/{entry}/accept", {"agree_policy": "yes"}).status_code == 422
    assert WaitlistEntry.objects.get(id=entry).status == "offered"  # the offer still holds the time
    # The page's form (the box ticked) books it, held for the deposit, with the agreement stored.
    accepted = pat.post(f"/portal/waitlist/{entry}/accept", data={
        "csrf_token": form_csrf(page), "jwt_csrf": pat.get_cookie("csrf_access_token").value,
        "agree_policy": "yes"})
    assert accepted.status_code == 302, accepted.get_data(as_text=True)
    appt = Appointment.objects.get(id=WaitlistEntry.objects.get(id=entry).offer.id)
    assert appt.status == "held" and appt.policy.text == SENTENCE and appt.policy.late_cancel_fee == 1500
    assert appt.policy.agreed_at is not None
    shown = pat.get(accepted.headers["Location"]).get_data(as_text=True)
    assert re.search(r"Pay (the )?£20\.00", shown), "the deposit is what is paid online"


def test_on_a_phone_the_patient_agrees_and_accepts_the_offer_and_pays_the_deposit(live_server, browser, stripe_base):
    """In Chromium at phone size: the offer states the policy; accepting without the box ticked is
    stopped by the browser; ticked, the time is held and the pay page asks for the deposit."""
    from tests.a11y import assert_accessible
    from tests.helpers import save_screenshot
    from tests.support.browser import portal_sign_in

    base, app = live_server(COOKIE_SECURE=False)
    pat, entry = offered(app, stripe_base)
    save_card(pat, stripe_base)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        portal_sign_in(page, base)
        page.goto(f"{base}/portal/waitlist")
        box = page.get_by_label(f"I agree: {SENTENCE}")
        assert box.is_visible() and not box.is_checked()
        assert_accessible(page, "the waitlist page with an offer and its policy")
        save_screenshot(page, "waitlist-offer-policy-phone.png")
        page.get_by_role("button", name="Accept this time").click()
        assert page.url == f"{base}/portal/waitlist"  # the browser asks for the box first
        assert WaitlistEntry.objects.get(id=entry).status == "offered"
        box.check()
        page.get_by_role("button", name="Accept this time").click()
        page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
        assert page.get_by_role("button", name="Pay £20.00").is_visible()
        assert WaitlistEntry.objects.get(id=entry).status == "booked"
    finally:
        context.close()
