"""In real Chromium (no-show protection, issue 27): save a card on the account page through Stripe.js,
then book a service with fees after agreeing to the policy sentence; axe on each page, phone width."""

from models import Appointment, Patient
from tests.a11y import axe_violations
from tests.support.browser import enter_card, sign_in_to
from tests.support.world import build_world


def test_save_a_card_then_agree_to_the_fees_and_book(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    made = build_world(services={"physio": dict(name="Physio", duration=30, price=6000, cancel_hours=48)},
                       providers={"dr": dict(name="Dr Fee")}, patients=["pat@example.com"])
    service = made.services["physio"]
    service.update(set__late_cancel_fee=2000, set__no_show_fee=2000, set__pay_at_clinic=True)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in_to(page, base, "/portal/account")
    assert page.get_by_role("heading", name="Card on file").is_visible()
    assert axe_violations(page) == []
    page.get_by_role("link", name="Save a card").click()
    page.get_by_role("heading", name="Save a card").wait_for()
    assert axe_violations(page) == []
    enter_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Save this card").click()
    page.get_by_text("Your card is saved.").wait_for()
    assert "Your Visa card ending 4242" in page.locator("main").inner_text()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert Patient.objects.get(email="pat@example.com").card_last4 == "4242"
    # The booking page's review states the policy in one sentence, and booking needs the tick.
    from datetime import timedelta

    from tests.support.factories import at, future_day

    start = at(future_day(2), 10)
    local = start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
    page.goto(f"{base}/portal/book?service={service.id}&provider={made.providers['dr'].id}"
              f"&day={local.date().isoformat()}&start={local.isoformat().replace('+', '%2B')}")
    sentence = ("You pay at the clinic; nothing is taken now. If you cancel less than 48 hours before, or do not "
                "come, we will charge £20.00 to your card ending 4242.")
    assert page.locator("#fees-policy").inner_text() == sentence
    assert axe_violations(page) == []
    page.get_by_label(f"I agree: {sentence}").check()
    page.get_by_role("button", name="Book this time").click()
    page.wait_for_url(f"{base}/portal/appointments/*")
    appt = Appointment.objects.get(patient=Patient.objects.get(email="pat@example.com").id)
    assert appt.status == "confirmed" and appt.policy.text == sentence
    assert appt.start.replace(tzinfo=start.tzinfo) - start == timedelta(0)


def test_the_emailed_pay_link_completes_3d_secure_in_the_browser(live_server, page, stripe_base):
    from models import Payment
    from tests.support.factories import within_a_day
    from tests.support.payments import CARD_ALWAYS_3DS, api_post, save_card, signed_in

    base, app = live_server(COOKIE_SECURE=False)
    made = build_world(services={"physio": dict(name="Physio", duration=30, price=6000, cancel_hours=48)},
                       providers={"dr": dict(name="Dr Fee")}, patients=["pat@example.com"])
    service = made.services["physio"]
    service.update(set__late_cancel_fee=2000, set__pay_at_clinic=True)
    client = signed_in(app)
    save_card(client, stripe_base, CARD_ALWAYS_3DS)
    booked = api_post(client, "/api/appointments", {"service": str(service.id), "provider": str(made.providers["dr"].id),
                                                    "start": within_a_day().isoformat(), "agree_policy": True})
    appt_id = booked.get_json()["id"]
    assert api_post(client, f"/api/appointments/{appt_id}/cancel").get_json()["fee"]["status"] == "due"
    fee = Payment.objects.get(appointment=appt_id, kind="late_cancel_fee")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in_to(page, base, f"/portal/appointments/{appt_id}/fee/{fee.id}")
    assert page.get_by_role("heading", name="Your late-cancellation fee of £20.00").is_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Confirm and pay £20.00").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.get_by_text("Paid, thank you.").wait_for()
    assert Payment.objects.get(id=fee.id).status == "succeeded"
    assert page.csp_errors == []
