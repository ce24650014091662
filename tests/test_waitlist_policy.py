"""A waitlist offer is a booking like any other: the service's no-show policy (issue 27) applies
when the patient accepts it — a card on file, their agreement stored with the appointment, the
deposit as what is paid online. Against real MongoDB, Redis and the stack's localstripe."""

import re

from models import Appointment, TimeClaim
from models.booking.waitlist import WaitlistEntry
from tests.support.factories import at, form_csrf, future_day
from tests.support.payments import api_post, save_card, signed_in
from tests.support.world import build_world


def test_accepting_an_offer_asks_for_the_card_and_the_agreement_and_stores_it(app, stripe_base):
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

    # No card on file: the page says so before anything is pressed, and the API refuses.
    page = pat.get("/portal/waitlist").get_data(as_text=True)
    assert "This service needs a card on file." in page and "Accept this time" not in page
    refused = api_post(pat, f"/api/waitlist/{entry}/accept", {"agree_policy": True})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "card_required"
    save_card(pat, stripe_base)
    # With a card, the offer states the policy, and accepting without agreeing books nothing.
    page = pat.get("/portal/waitlist").get_data(as_text=True)
    sentence = ("We take a deposit of £20.00 now; the rest is paid at the clinic. If you cancel less than "
                "24 hours before, or do not come, we will charge £15.00 to your card ending 4242.")
    assert f"I agree: {sentence}" in page
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
    assert appt.status == "held" and appt.policy.text == sentence and appt.policy.late_cancel_fee == 1500
    assert appt.policy.agreed_at is not None
    shown = pat.get(accepted.headers["Location"]).get_data(as_text=True)
    assert re.search(r"Pay (the )?£20\.00", shown), "the deposit is what is paid online"
