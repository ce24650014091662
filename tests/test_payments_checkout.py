"""Stripe Checkout (PAYMENT_FLOW=checkout).

localstripe has no Checkout Sessions, so these tests run against the one-machine stack's Checkout
stand-in (`devstack.checkout_standin`, in front of the real localstripe), started by the same stack
builder as `./scripts/run`. It records every Checkout request exactly as our Stripe client
sent it; "paying" posts a card to its hosted page, which charges a real PaymentIntent in
localstripe with the session's metadata, so refunds and re-fetches after it run against
localstripe. Events are posted here ourselves, signed with the webhook secret (the browser test in
test_browser_checkout.py has the stand-in deliver them).
"""

from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, Payment, TimeClaim
from tests.support.payments import (
    CheckoutStandIn,
    api_post,
    book_held,
    clinic_with_service,
    make_event,
    post_event,
    signed_in,
    stripe_client,
)

PUBLIC_URL = "https://clinic.example"


@pytest.fixture
def stand_in(stripe_base):
    return CheckoutStandIn(stripe_base)


@pytest.fixture
def checkout_app(make_app, stand_in):
    return make_app(PAYMENT_FLOW="checkout", STRIPE_API_BASE=stand_in.url, PUBLIC_URL=PUBLIC_URL)


@pytest.fixture
def booked(checkout_app):
    service, provider = clinic_with_service()
    return book_held(service, provider)


def start(app, appt):
    resp = api_post(signed_in(app), f"/api/appointments/{appt.id}/payment")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def session_event(event_type, session):
    return make_event(event_type, {"id": session["id"], "object": "checkout.session",
                                   "status": session["status"], "metadata": session["metadata"]})


def test_session_request_carries_the_service_metadata_expiry_and_return_urls(checkout_app, booked, stand_in):
    before = datetime.now(timezone.utc)
    body = start(checkout_app, booked)
    session_id = body["session"]
    assert body["flow"] == "checkout" and body["url"].endswith(session_id)
    [sent] = stand_in.requests
    form = sent["form"]
    payment = Payment.objects.get(appointment=booked.id)
    assert sent["method"] == "POST" and sent["idempotency_key"] == f"cs-create:{payment.id}"
    assert form["mode"] == "payment" and form["payment_method_types[0]"] == "card"
    assert form["line_items[0][quantity]"] == "1"
    assert form["line_items[0][price_data][unit_amount]"] == "5000"
    assert form["line_items[0][price_data][currency]"] == "gbp"
    assert form["line_items[0][price_data][product_data][name]"] == "Consultation"
    for prefix in ("metadata", "payment_intent_data[metadata]"):
        assert form[f"{prefix}[appointment_id]"] == str(booked.id)
        assert form[f"{prefix}[payment_id]"] == str(payment.id)
    assert form["client_reference_id"] == str(booked.id)
    page = f"{PUBLIC_URL}/portal/appointments/{booked.id}"
    assert form["success_url"] == f"{page}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"
    assert form["cancel_url"] == f"{page}?checkout=cancelled"
    # Stripe needs 30 minutes or more; the 15-minute hold is extended to the session's expiry.
    expires_at = datetime.fromtimestamp(int(form["expires_at"]), timezone.utc)
    assert expires_at >= before + timedelta(minutes=30)
    held = Appointment.objects.get(id=booked.id)
    assert abs(held.hold_expires_at.replace(tzinfo=timezone.utc) - expires_at) < timedelta(seconds=1)
    claims = TimeClaim.objects(appointment=booked.id)
    assert {c.expires_at.replace(tzinfo=timezone.utc) for c in claims} == {held.hold_expires_at.replace(tzinfo=timezone.utc)}
    # Asking again reuses the open session rather than creating another.
    assert start(checkout_app, booked)["session"] == session_id
    assert [r["method"] for r in stand_in.requests] == ["POST", "GET"]
    assert payment.reload().stripe_checkout_session == session_id


def test_completed_session_event_confirms_and_the_refund_goes_to_its_intent(checkout_app, booked, stand_in, stripe_base):
    session = stand_in.pay(start(checkout_app, booked)["session"])
    client = checkout_app.test_client()
    resp = post_event(client, session_event("checkout.session.completed", session))
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "confirmed"
    assert Appointment.objects.get(id=booked.id).status == "confirmed"
    payment = Payment.objects.get(appointment=booked.id)
    assert payment.status == "succeeded" and payment.stripe_payment_intent == session["payment_intent"]
    dup = post_event(client, session_event("checkout.session.async_payment_succeeded", session))
    assert dup.get_json()["outcome"] == "already_confirmed"
    patient = signed_in(checkout_app)
    assert api_post(patient, f"/api/appointments/{booked.id}/cancel").status_code == 200
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": session["payment_intent"]}).data
    assert [r.amount for r in refunds] == [5000]


def test_the_return_page_checks_with_stripe_and_ignores_the_redirect(checkout_app, booked, stand_in):
    session_id = start(checkout_app, booked)["session"]
    patient = signed_in(checkout_app)
    # Arriving at the success URL proves nothing: the session is not paid.
    page = patient.get(f"/portal/appointments/{booked.id}?checkout=success&session_id={session_id}")
    assert "payment needed" in page.get_data(as_text=True)
    stand_in.pay(session_id)
    page = patient.get(f"/portal/appointments/{booked.id}?checkout=success&session_id={session_id}")
    assert "Your appointment is confirmed" in page.get_data(as_text=True)


def test_async_payment_failed_keeps_the_hold_and_expired_session_is_replaced(checkout_app, booked, stand_in):
    session = stand_in.pay(start(checkout_app, booked)["session"], number="4000000000000341")
    client = checkout_app.test_client()
    resp = post_event(client, session_event("checkout.session.async_payment_failed", session))
    assert resp.get_json()["outcome"] == "payment_failed"
    assert Appointment.objects.get(id=booked.id).status == "held"
    assert Payment.objects.get(appointment=booked.id).status == "failed"


def test_expired_session_event_cancels_the_payment_and_a_new_session_can_start(checkout_app, booked, stand_in):
    first = start(checkout_app, booked)["session"]
    expired = stand_in.expire(first)
    resp = post_event(checkout_app.test_client(), session_event("checkout.session.expired", expired))
    assert resp.get_json()["outcome"] == "payment_canceled"
    assert Payment.objects.get(appointment=booked.id).status == "canceled"
    second = start(checkout_app, booked)["session"]
    assert second != first
    payment = Payment.objects.get(appointment=booked.id)
    assert stand_in.requests[-1]["idempotency_key"] == f"cs-create:{payment.id}:{first}"
    assert payment.stripe_checkout_session == second and payment.status == "pending"


def test_sweeper_expires_the_session_before_releasing_a_lapsed_hold(checkout_app, booked, stand_in):
    from models.sweep import sweep

    session_id = start(checkout_app, booked)["session"]
    held = Appointment.objects.get(id=booked.id)
    with checkout_app.app_context():
        report = sweep(held.hold_expires_at.replace(tzinfo=timezone.utc) + timedelta(minutes=1))
    assert report.expired == [str(booked.id)]
    assert ("POST", f"/v1/checkout/sessions/{session_id}/expire") in [
        (r["method"], r["path"]) for r in stand_in.requests]
    assert stand_in.session(session_id)["status"] == "expired"
    assert Payment.objects.get(appointment=booked.id).status == "canceled"


def test_event_for_a_session_stripe_does_not_know_changes_nothing(checkout_app, booked, stand_in):
    start(checkout_app, booked)
    fake = {"id": "cs_test_forged", "status": "complete", "metadata": {}}
    resp = post_event(checkout_app.test_client(), session_event("checkout.session.completed", fake))
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "unknown_session"
    assert Appointment.objects.get(id=booked.id).status == "held"


def test_checkout_form_on_the_page_redirects_to_stripe(checkout_app, booked, stand_in):
    from tests.support.factories import form_csrf

    patient = signed_in(checkout_app)
    page = patient.get(f"/portal/appointments/{booked.id}").get_data(as_text=True)
    assert "Pay £50.00 with Stripe" in page and "pay.js" not in page
    resp = patient.post(f"/portal/appointments/{booked.id}/checkout", data={
        "csrf_token": form_csrf(page), "jwt_csrf": patient.get_cookie("csrf_access_token").value})
    assert resp.status_code == 303 and resp.headers["Location"].startswith(f"{stand_in.url}/checkout/pay/cs_test_")
    # Without the form's CSRF token nothing is created.
    before = len(stand_in.requests)
    refused = patient.post(f"/portal/appointments/{booked.id}/checkout", data={})
    assert refused.status_code in (400, 403), refused.status_code
    assert len(stand_in.requests) == before


# --- one live way to pay per Payment ---------------------------------------------------------------

@pytest.fixture
def elements_app(make_app, stand_in):
    """The same clinic taking cards on its own page (PAYMENT_FLOW=elements), same Stripe."""
    return make_app(PAYMENT_FLOW="elements", STRIPE_API_BASE=stand_in.url, PUBLIC_URL=PUBLIC_URL)


def test_checkout_form_is_refused_while_the_page_takes_cards(elements_app, stand_in, stripe_base):
    from tests.support.factories import form_csrf

    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    patient = signed_in(elements_app)
    pi_id = start(elements_app, appt)["payment_intent"]
    page = patient.get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert "with Stripe</button>" not in page and 'id="pay-form"' in page
    # A page form's CSRF token (the cancel question's; this page's card form sends its own header).
    token = form_csrf(patient.get(f"/portal/appointments/{appt.id}?cancel=1").get_data(as_text=True))
    form = {"csrf_token": token, "jwt_csrf": patient.get_cookie("csrf_access_token").value}
    resp = patient.post(f"/portal/appointments/{appt.id}/checkout", data=form,
                        headers={"Accept": "application/json"})
    assert resp.status_code == 409, resp.status_code
    assert resp.get_json()["error"]["code"] == "wrong_payment_flow"
    as_page = patient.post(f"/portal/appointments/{appt.id}/checkout", data=form)
    assert as_page.status_code == 409 and "Location" not in as_page.headers
    # No Checkout Session was opened: the card page's intent stays the one way to pay.
    assert not [r for r in stand_in.requests if r["path"].startswith("/v1/checkout")]
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.stripe_checkout_session is None and payment.stripe_payment_intent == pi_id
    assert stripe_client(stripe_base).v1.payment_intents.retrieve(pi_id).status == "requires_payment_method"


def test_card_token_is_refused_while_payments_go_through_checkout(checkout_app, booked, stand_in, stripe_base):
    from tests.support.payments import CARD_OK, card_token

    session_id = start(checkout_app, booked)["session"]
    patient = signed_in(checkout_app)
    resp = api_post(patient, f"/api/appointments/{booked.id}/payment/confirm",
                    {"token": card_token(stripe_base, CARD_OK)["id"]})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "wrong_payment_flow"
    # Nothing was charged and no intent was made: the open session stays the one way to pay.
    assert Appointment.objects.get(id=booked.id).status == "held"
    payment = Payment.objects.get(appointment=booked.id)
    assert payment.stripe_payment_intent is None and payment.status == "pending"
    assert stand_in.session(session_id)["status"] == "open"


def test_switching_to_checkout_cancels_the_card_pages_intent(elements_app, checkout_app, stand_in, stripe_base):
    """PAYMENT_FLOW changed from elements to checkout while a patient was paying: the card page's
    intent is cancelled before the patient is sent to Checkout, and the session's payment counts."""
    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    pi_id = start(elements_app, appt)["payment_intent"]
    session_id = start(checkout_app, appt)["session"]
    assert stripe_client(stripe_base).v1.payment_intents.retrieve(pi_id).status == "canceled"
    stand_in.pay(session_id)
    # The return page (no webhook yet) follows the session, not the cancelled intent.
    page = signed_in(checkout_app).get(f"/portal/appointments/{appt.id}?checkout=success&session_id={session_id}")
    assert "Your appointment is confirmed" in page.get_data(as_text=True)
    payment = Payment.objects.get(appointment=appt.id)
    paid_pi = stand_in.session(session_id)["payment_intent"]
    assert payment.status == "succeeded" and payment.stripe_payment_intent == paid_pi
    assert api_post(signed_in(checkout_app), f"/api/appointments/{appt.id}/cancel").status_code == 200
    assert [r.amount for r in stripe_client(stripe_base).v1.refunds.list({"payment_intent": paid_pi}).data] == [5000]


def test_switching_to_the_card_page_expires_the_open_session(checkout_app, elements_app, stand_in, stripe_base):
    """PAYMENT_FLOW changed from checkout to elements while a session was open: the session is
    expired before the card page takes the card, so it can no longer be paid as well."""
    from tests.support.payments import CARD_OK, card_token

    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    session_id = start(checkout_app, appt)["session"]
    body = start(elements_app, appt)
    assert body["flow"] == "elements"
    assert stand_in.session(session_id)["status"] == "expired"
    token = card_token(stripe_base, CARD_OK)["id"]
    paid = api_post(signed_in(elements_app), f"/api/appointments/{appt.id}/payment/confirm", {"token": token})
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["appointment_status"] == "confirmed"
    # The session's expiry, arriving late, does not undo the card payment.
    resp = post_event(elements_app.test_client(),
                      session_event("checkout.session.expired", stand_in.session(session_id)))
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "stale_session"
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.status == "succeeded" and payment.stripe_payment_intent == body["payment_intent"]


def test_a_session_paid_before_the_switch_is_not_charged_again_on_the_card_page(checkout_app, elements_app, stand_in):
    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    session_id = start(checkout_app, appt)["session"]
    stand_in.pay(session_id)  # paid on Stripe's page; no webhook has reached us yet
    resp = api_post(signed_in(elements_app), f"/api/appointments/{appt.id}/payment")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "already_paid"
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    # No intent of the card page was made: the Payment follows the session's, which took the money.
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.status == "succeeded"
    assert payment.stripe_payment_intent == stand_in.session(session_id)["payment_intent"]
