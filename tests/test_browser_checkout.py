"""In real Chromium: a new patient pays through Stripe Checkout on the stack's stand-in.

The patient registers at the front door, holds a paid time, presses "Pay … with Stripe", pays on
the stand-in's hosted page (a real localstripe PaymentIntent), and comes back. The appointment is
confirmed by the signed `checkout.session.completed` event the stand-in delivers to our webhook.
"""

import re

import pytest
from playwright.sync_api import expect

from models import Appointment, Payment
from tests.support.factories import at, future_day
from tests.support.payments import CheckoutStandIn, wait_until

STRONG_PASSWORD = "violet-harbour-lantern-42"


@pytest.fixture
def checkout_site(live_server, stripe_base, clinic_world):
    """A clinic taking payments through Checkout, with the stand-in delivering its events."""
    from devstack.servers import free_port

    # The app's address is needed before the stand-in starts (its webhook) and vice versa.
    app_port = free_port()
    stand_in = CheckoutStandIn(stripe_base, webhook_url=f"http://127.0.0.1:{app_port}/webhooks/stripe")
    base, app = live_server(COOKIE_SECURE=False, PAYMENT_FLOW="checkout", STRIPE_API_BASE=stand_in.url,
                            PUBLIC_URL=f"http://127.0.0.1:{app_port}", port=app_port)
    world = clinic_world(services={"physio": dict(name="Physiotherapy", duration=45, price=6000)},
                         providers={"provider": dict(name="Dr Lena Ortiz")})
    return base, stand_in, world.service, world.provider


def register_and_hold(page, base, service, provider):
    """Register at the front door, then hold a paid time through the API as the signed-in patient."""
    page.goto(f"{base}/portal/register")
    page.get_by_label("Name").fill("Nadia Patel")
    page.get_by_label("Email").fill("nadia@example.com")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/portal/")
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrf_access_token")
    start = at(future_day(3), 10).isoformat()
    resp = page.request.post(f"{base}/api/appointments", headers={"X-CSRF-TOKEN": csrf},
                             data={"service": str(service.id), "provider": str(provider.id), "start": start})
    assert resp.status == 201, resp.text()
    return resp.json()["id"]


def test_a_new_patient_pays_on_the_hosted_checkout_page(checkout_site, page):
    base, stand_in, service, provider = checkout_site
    appt_id = register_and_hold(page, base, service, provider)
    page.goto(f"{base}/portal/appointments/{appt_id}")
    page.get_by_role("button", name="Pay £60.00 with Stripe").click()

    # Stripe's page (the stand-in), which says it is a local test page.
    page.wait_for_url(re.compile(rf"{re.escape(stand_in.url)}/checkout/pay/cs_test_\w+$"))
    assert page.get_by_text("Local test page.").is_visible()
    page.get_by_label("Card number").fill("4000 0000 0000 0341")
    page.get_by_role("button", name="Pay £60.00").click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay £60.00").click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/portal/appointments/{appt_id}\?checkout=success"))
    page.get_by_role("heading", name="Your appointment is confirmed").wait_for()
    # The signed webhook from the stand-in arrives too and is stored once.
    from models import StripeEvent

    wait_until(lambda: StripeEvent.objects(type="checkout.session.completed").count() == 1)
    assert Appointment.objects.get(id=appt_id).status == "confirmed"
    assert Payment.objects.get(appointment=appt_id).status == "succeeded"


def test_three_d_secure_on_the_hosted_page_then_the_webhook_confirms(checkout_site, page):
    base, stand_in, service, provider = checkout_site
    appt_id = register_and_hold(page, base, service, provider)
    page.goto(f"{base}/portal/appointments/{appt_id}")
    page.get_by_role("button", name="Pay £60.00 with Stripe").click()
    page.get_by_label("Card number").fill("4000002500003155")
    page.get_by_role("button", name="Pay £60.00").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/portal/appointments/{appt_id}\?checkout=success"))
    wait_until(lambda: Appointment.objects.get(id=appt_id).status == "confirmed")
