"""The payment section reads like a product: no stand-in labels, "Pay" is the primary action, the
test cards are named only on a local Stripe, and Stripe being out of reach is said in plain words
(the time stays held, the patient can try again) — in real Chromium, plus rendered pages."""

import pytest

from devstack.servers import free_port, register_localstripe_webhook, start_localstripe
from models import Appointment
from tests.a11y import axe_violations
from tests.support.clients import signed_in
from tests.support.browser import enter_card, sign_in_to
from tests.support.payments import WEBHOOK_SECRET, book_held, clinic_with_service

NOTICE = "Local test payment server"
UNAVAILABLE = "Card payments are not available right now"
STILL_HELD = "your time is still held"
BROWSER_WORDS = ("Failed to fetch", "NetworkError", "Load failed")
PRIMARY_BLUE = "rgb(11, 110, 79)"  # the accent token: the test clinic's brand colour #0b6e4f (static/tokens.css)


def open_payment_page(page, base):
    """Book a held £60.00 appointment, sign in through the portal and land on its page."""
    service, provider = clinic_with_service(price=6000)
    appt = book_held(service, provider)
    sign_in_to(page, base, f"/portal/appointments/{appt.id}")
    assert page.get_by_role("heading", name="Pay £60.00 to confirm").is_visible()
    return appt


def body_text(page):
    """What a person sees on the page (no markup, no hidden nodes)."""
    return page.locator("body").inner_text()


def assert_no_browser_words(page):
    """The browser's own words for a failed request never reach the patient."""
    text = body_text(page)
    for words in BROWSER_WORDS:
        assert words not in text, text


def assert_unavailable_and_still_held(page, appt):
    """The page says in plain words that payments are unavailable and the time held; it is held."""
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert UNAVAILABLE in alert.inner_text() and STILL_HELD in alert.inner_text()
    assert_no_browser_words(page)
    assert Appointment.objects.get(id=appt.id).status == "held"


def test_the_card_form_reads_like_a_product_with_pay_as_the_primary_action(live_server, stripe_base, page):
    base, _app = live_server(COOKIE_SECURE=False)
    open_payment_page(page, base)
    page.get_by_label("Card number").wait_for()

    text = body_text(page)
    assert "localstripe" not in text.lower(), text
    notice = page.locator("#test-cards")
    assert notice.is_visible()
    assert NOTICE in notice.inner_text() and "4242 4242 4242 4242" in notice.inner_text()
    assert "4000 0025 0000 3155" in notice.inner_text() and "4000 0000 0000 0341" in notice.inner_text()

    pay = page.get_by_role("button", name="Pay £60.00")
    assert "primary" in pay.get_attribute("class").split()
    pay_bg = pay.evaluate("el => getComputedStyle(el).backgroundColor")
    default_bg = page.evaluate("""() => {
        const b = document.createElement('button'); document.body.appendChild(b);
        const bg = getComputedStyle(b).backgroundColor; b.remove(); return bg; }""")
    assert pay_bg == PRIMARY_BLUE and pay_bg != default_bg
    # The other action on the page is visibly secondary: not the primary's filled colour.
    move = page.get_by_role("link", name="Move this appointment")
    assert move.evaluate("el => getComputedStyle(el).backgroundColor") != pay_bg
    assert not axe_violations(page)


@pytest.mark.parametrize("api_base, shown", [
    ("https://api.stripe.com", False),
    (None, False),
    ("http://localhost:12111", True),
])
def test_the_test_card_notice_appears_only_on_a_local_stripe(make_app, api_base, shown):
    app = make_app(STRIPE_API_BASE=api_base)
    service, provider = clinic_with_service(price=6000)
    appt = book_held(service, provider)
    html = signed_in(app).get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert 'id="pay-form"' in html
    assert (NOTICE in html) is shown
    assert ("4242 4242 4242 4242" in html) is shown
    assert 'id="pay-button" class="primary"' in html


def test_the_checkout_button_is_the_primary_action_too(make_app):
    app = make_app(PAYMENT_FLOW="checkout")
    service, provider = clinic_with_service(price=6000)
    appt = book_held(service, provider)
    html = signed_in(app).get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert '<button type="submit" class="primary">Pay £60.00 with Stripe</button>' in html


@pytest.mark.parametrize("api_base, local", [
    (None, False), ("", False), ("https://api.stripe.com", False), ("https://api.stripe.com/", False),
    ("http://127.0.0.1:8420", True), ("http://localhost:8420", True), ("http://[::1]:8420", True),
    ("http://stripe.localhost:8420", True), ("http://localhost.example.com", False),
    ("https://127.0.0.1.example.com", False), ("http://10.0.0.5:8420", False),
])
def test_what_counts_as_a_local_stripe(api_base, local):
    from portal.payment import is_local_stripe

    assert is_local_stripe(api_base) is local


def test_stripe_js_that_does_not_load_is_said_in_plain_words(live_server, stripe_base, page):
    closed = f"http://127.0.0.1:{free_port()}"
    base, _app = live_server(COOKIE_SECURE=False, STRIPE_API_BASE=closed)
    appt = open_payment_page(page, base)
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert UNAVAILABLE in alert.inner_text() and STILL_HELD in alert.inner_text()
    assert_no_browser_words(page)
    # No card field to fill and no Pay button that cannot work: "Try again" loads the page again.
    assert not page.get_by_role("button", name="Pay £60.00").is_visible()
    retry = page.get_by_role("button", name="Try again")
    assert retry.is_visible()
    with page.expect_navigation():
        retry.click()
    page.get_by_role("alert").wait_for()
    assert Appointment.objects.get(id=appt.id).status == "held"


def test_stripe_going_down_after_the_page_loaded_keeps_the_hold_and_lets_the_patient_retry(
        live_server, mongo_uri, redis_url, tmp_path, page):
    # Stripe as the run command composes it (localstripe behind the Checkout stand-in), of this test's
    # own, because the test stops it: the stand-in stays up and localstripe behind it goes away.
    from devstack.stack import start_stack

    own = start_stack(str(tmp_path), keep=False,
                      environ={"MONGODB_URI": mongo_uri, "REDIS_URL": redis_url, "SMTP_URL": "smtp://unused"})
    localstripe = own.find("stripe")
    try:
        base, _app = live_server(COOKIE_SECURE=False, STRIPE_API_BASE=own.env["STRIPE_API_BASE"])
        appt = open_payment_page(page, base)
        enter_card(page)
        localstripe.stop()
        page.get_by_role("button", name="Pay £60.00").click()
        assert_unavailable_and_still_held(page, appt)
        assert page.get_by_role("button", name="Pay £60.00").is_enabled()

        # Stripe answers again: pressing Pay once more pays for the same held time.
        own.servers[own.servers.index(localstripe)] = start_localstripe(port=localstripe.port)
        register_localstripe_webhook(own.env["STRIPE_API_BASE"], f"{base}/webhooks/stripe", WEBHOOK_SECRET)
        page.get_by_role("button", name="Pay £60.00").click()
        page.get_by_role("heading", name="Your appointment is confirmed").wait_for()
        assert Appointment.objects.get(id=appt.id).status == "confirmed"
    finally:
        own.stop()


def test_a_card_request_that_never_reaches_stripe_is_said_in_plain_words(live_server, stripe_base, page):
    base, _app = live_server(COOKIE_SECURE=False)
    register_localstripe_webhook(stripe_base, f"{base}/webhooks/stripe", WEBHOOK_SECRET)
    appt = open_payment_page(page, base)
    # Stripe.js's own request for the card token fails as a dropped connection does.
    page.route("**/v1/tokens", lambda route: route.abort("connectionrefused"))
    enter_card(page)
    page.get_by_role("button", name="Pay £60.00").click()
    assert_unavailable_and_still_held(page, appt)
    pay = page.get_by_role("button", name="Pay £60.00")
    assert pay.is_enabled()

    page.unroute("**/v1/tokens")
    pay.click()
    page.get_by_role("heading", name="Your appointment is confirmed").wait_for()


def test_a_retry_after_a_lost_answer_sends_the_same_idempotency_key(live_server, stripe_base, page):
    """The server started the payment but its answer never arrived: the patient's retry is the same
    request (same Idempotency-Key), so the server answers it from the first attempt; then it pays."""
    base, _app = live_server(COOKIE_SECURE=False)
    register_localstripe_webhook(stripe_base, f"{base}/webhooks/stripe", WEBHOOK_SECRET)
    appt = open_payment_page(page, base)
    start = f"**/api/appointments/{appt.id}/payment"
    keys = []

    def lose_the_answer(route):
        keys.append(route.request.headers["idempotency-key"])
        route.fetch()  # the server does the work...
        route.abort("connectionreset")  # ...and the connection dies before its answer arrives

    page.route(start, lose_the_answer)
    enter_card(page)
    page.get_by_role("button", name="Pay £60.00").click()
    assert_unavailable_and_still_held(page, appt)

    page.unroute(start)
    page.on("request", lambda request: request.url.endswith("/payment") and keys.append(
        request.headers["idempotency-key"]))
    page.get_by_role("button", name="Pay £60.00").click()
    page.get_by_role("heading", name="Your appointment is confirmed").wait_for()
    assert len(keys) == 2 and keys[0] == keys[1], keys


def test_a_payment_received_before_its_appointment_is_confirmed_waits_instead_of_offering_pay(
        live_server, stripe_base, page):
    """Between the money arriving and the booking being confirmed (the webhook and the page's own
    re-check settle together), the page says it is confirming, offers no second Pay, and shows the
    confirmation by itself once it is there."""
    from datetime import datetime, timezone

    from models.payments.ledger import _move_payment, payment_for
    from models.payments.settlement import settle_paid

    base, _app = live_server(COOKIE_SECURE=False)
    appt = open_payment_page(page, base)
    now = datetime.now(timezone.utc)
    # The money is in: the Payment is `succeeded`, the settlement that confirms has not run yet.
    payment = payment_for(appt, "elements", now)
    assert _move_payment(payment, "succeeded", now, only_from=(payment.status,))
    page.reload()
    page.get_by_role("heading", name="Confirming your payment").wait_for()
    assert "We have received your payment of £60.00" in body_text(page)
    assert page.get_by_role("button", name="Pay £60.00").count() == 0
    assert page.get_by_role("link", name="Check again").is_visible()

    # The settlement confirms it (as the webhook's would): the page notices without a click.
    assert settle_paid(payment, "system", datetime.now(timezone.utc), first_time=True) == "confirmed"
    page.get_by_role("heading", name="Your appointment is confirmed").wait_for()
    assert Appointment.objects.get(id=appt.id).status == "confirmed"


def test_coming_back_from_checkout_before_stripe_has_told_us_waits_too(make_app):
    """Checkout's return address with the session still unpaid at Stripe: confirming, no Pay button."""
    from datetime import datetime, timezone

    from models.payments.ledger import payment_for

    app = make_app(PAYMENT_FLOW="checkout")
    service, provider = clinic_with_service(price=6000)
    appt = book_held(service, provider)
    payment_for(appt, "checkout", datetime.now(timezone.utc))
    client = signed_in(app)
    page = client.get(f"/portal/appointments/{appt.id}?checkout=success").get_data(as_text=True)
    assert "Confirming your payment" in page and "Pay £60.00 with Stripe" not in page
    plain = client.get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert "Pay £60.00 with Stripe" in plain and "Confirming your payment" not in plain
