"""In real Chromium: pay for a held appointment through the payment page against localstripe."""

import pytest

from devstack.servers import register_localstripe_webhook
from models import Appointment, Payment
from tests.support.browser import enter_card, sign_in_to
from tests.support.payments import WEBHOOK_SECRET, book_held, clinic_with_service

CONFIRMED = "Your appointment is confirmed"




@pytest.fixture
def payment_page(live_server, stripe_base, page):
    """A signed-in patient on the page of their held appointment; returns (page, appointment)."""
    base, _app = live_server(COOKIE_SECURE=False)
    register_localstripe_webhook(stripe_base, f"{base}/webhooks/stripe", WEBHOOK_SECRET)
    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    sign_in_to(page, base, f"/portal/appointments/{appt.id}")
    assert page.get_by_role("heading", name="Pay £50.00 to confirm").is_visible()
    return page, appt


def test_paying_with_a_card_in_the_browser_confirms_the_appointment(payment_page):
    page, appt = payment_page
    enter_card(page, "4242424242424242", submit=True)
    page.get_by_role("heading", name=CONFIRMED).wait_for()
    assert page.locator("#status").inner_text() == "Confirmed"
    assert not page.locator("#pay-form").count()
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert Payment.objects.get(appointment=appt.id).status == "succeeded"
    assert page.csp_errors == []


def test_three_d_secure_in_the_browser(payment_page):
    page, appt = payment_page
    enter_card(page, "4000002500003155", submit=True)
    page.get_by_role("button", name="Complete authentication").click()
    page.get_by_role("heading", name=CONFIRMED).wait_for()
    assert Appointment.objects.get(id=appt.id).status == "confirmed"


def test_declined_card_in_the_browser_says_so_and_can_try_again(payment_page):
    page, appt = payment_page
    enter_card(page, "4000000000000341", submit=True)
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "Your card was declined."
    assert page.get_by_role("button", name="Pay £50.00").is_enabled()
    assert Appointment.objects.get(id=appt.id).status == "held"
    page.get_by_label("Card number").fill("4242424242424242")
    page.get_by_role("button", name="Pay £50.00").click()
    page.get_by_role("heading", name=CONFIRMED).wait_for()


def test_a_card_number_typed_in_groups_of_four_pays(payment_page):
    """As cards print it and the page's hint shows it: "4242 4242 4242 4242" (the stand-in refused it)."""
    page, appt = payment_page
    enter_card(page, "4242 4242 4242 4242", submit=True)
    page.get_by_role("heading", name=CONFIRMED).wait_for()
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert "Bad request" not in page.locator("body").inner_text()
