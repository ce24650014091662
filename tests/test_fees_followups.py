"""Issue 27's follow-ups (review 27, Part B 3-5): the pay link checks its appointment, a dispute on
a fee reaches staff, and what was built but untested (a deposit through Checkout, a fee settled by
its webhook, the home page's "fees taken" line, the day grid's "due"). Against the stack's real
localstripe (behind the Checkout stand-in), MongoDB and Redis; events are signed as Stripe signs them."""

import html
import re
from datetime import datetime, timezone

import pytest

from models import Appointment, AuditEvent, Patient, Payment
from models.formatting import human_time
from models.messages.documents import OutboxMessage
from tests.support.clients import signed_in_staff
from tests.support.factories import at, daytime_zone, future_day, make_patient
from tests.support.payments import (
    CARD_ALWAYS_3DS,
    CheckoutStandIn,
    api_post,
    authenticate_3ds,
    make_event,
    post_event,
    save_card,
    signed_in,
    stripe_client,
)
from tests.test_noshow import DEPOSIT, FEES, _started_appointment_with_fee, book, soon, world


def text_of(response):
    """A page as a person reads it: tags dropped, whitespace folded, entities decoded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def late_cancelled_fee(app, stripe_base, card=None):
    """A patient with a card who cancelled a visit late: (client, appointment id, the fee Payment)."""
    made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
    client = signed_in(app)
    save_card(client, stripe_base, *([card] if card else []))
    appt_id = book(client, made.services["fees"], made.providers["dr"], soon()).get_json()["id"]
    assert api_post(client, f"/api/appointments/{appt_id}/cancel").status_code == 200
    return client, appt_id, Payment.objects.get(appointment=appt_id, kind="late_cancel_fee"), made


# --- 1. the pay link's page checks the appointment in its URL ----------------------------------------

def test_the_pay_link_page_opens_only_under_its_own_appointment_and_for_its_own_patient(app, stripe_base):
    client, appt_id, fee, made = late_cancelled_fee(app, stripe_base, CARD_ALWAYS_3DS)
    other = book(client, made.services["fees"], made.providers["dr"], at(future_day(5), 10))
    assert other.status_code == 201, other.get_json()
    own = client.get(f"/portal/appointments/{appt_id}/fee/{fee.id}")
    assert own.status_code == 200 and "£20.00" in text_of(own)
    # The patient's own fee under another of their appointments, or under no appointment at all: not found.
    assert client.get(f"/portal/appointments/{other.get_json()['id']}/fee/{fee.id}").status_code == 404
    assert client.get(f"/portal/appointments/not-an-id/fee/{fee.id}").status_code == 404
    # Another patient's fee, even under its right appointment: not found.
    make_patient(email="other@example.com")
    stranger = signed_in(app, email="other@example.com")
    assert stranger.get(f"/portal/appointments/{appt_id}/fee/{fee.id}").status_code == 404
    assert stranger.get(f"/api/fees/{fee.id}").status_code == 404
    fee.reload()
    assert (fee.status, fee.fee_state) == ("pending", "authentication_required")  # nothing changed


# --- 2. a dispute on a fee is shown to staff --------------------------------------------------------

def test_a_dispute_on_a_fee_is_marked_and_staff_see_it_on_home_payments_and_the_patient(app, stripe_base):
    client, appt_id, fee, _ = late_cancelled_fee(app, stripe_base)
    assert fee.status == "succeeded" and fee.stripe_payment_intent
    opened = datetime(2030, 3, 4, 15, 30, tzinfo=timezone.utc)
    dispute = {"id": "dp_fee_1", "object": "dispute", "payment_intent": fee.stripe_payment_intent,
               "amount": 2000, "currency": "gbp", "reason": "fraudulent", "status": "needs_response",
               "created": int(opened.timestamp())}
    hook = app.test_client()
    unknown = post_event(hook, make_event("charge.dispute.created", dict(dispute, id="dp_x", payment_intent="pi_nobody")))
    assert unknown.status_code == 200 and unknown.get_json()["outcome"] == "unknown_payment"
    assert Payment.objects(dispute__exists=True).count() == 0
    resp = post_event(hook, make_event("charge.dispute.created", dispute))
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "dispute_recorded"
    # Stripe sends the same dispute in a new event: it is recorded once.
    again = post_event(hook, make_event("charge.dispute.created", dispute))
    assert again.get_json()["outcome"] == "dispute_already_recorded"
    fee.reload()
    assert fee.status == "succeeded"  # the money is still recorded as taken until the bank decides
    assert (fee.dispute.amount, fee.dispute.reason) == (2000, "fraudulent")
    words = f"Disputed: £20.00 on {human_time(opened, 'Europe/London')} (fraudulent)"
    assert words == "Disputed: £20.00 on Monday 4 March 2030, 15:30 GMT (fraudulent)"
    desk = signed_in_staff(app, "reception", create=True)
    home = text_of(desk.get("/admin/"))
    assert f"£20.00 payment : {words}; answer it in Stripe's dashboard" in home  # ":" follows the link
    assert words in text_of(desk.get("/admin/payments/"))
    patient = Patient.objects.get(email="pat@example.com")
    page = desk.get(f"/admin/patients/details/?id={patient.id}")
    assert page.status_code == 200 and f"Paid. {words}" in text_of(page)

    # The bank decides against the clinic: the dispute leaves "to look at" and says how it ended, once.
    closed = post_event(hook, make_event("charge.dispute.closed", dict(dispute, status="lost")))
    assert closed.status_code == 200 and closed.get_json()["outcome"] == "dispute_lost"
    assert post_event(hook, make_event("charge.dispute.closed", dict(dispute, status="lost"))).get_json()[
        "outcome"] == "dispute_already_closed"
    fee.reload()
    assert (fee.status, fee.dispute.outcome) == ("succeeded", "lost") and fee.dispute.closed_at is not None
    lost = f"Dispute lost on {human_time(fee.dispute.closed_at, 'Europe/London')}: the bank gave £20.00 back to the patient (fraudulent)"
    home = text_of(desk.get("/admin/"))
    assert "answer it in Stripe's dashboard" not in home and words not in home
    assert lost in text_of(desk.get("/admin/payments/"))
    assert f"Paid. {lost}" in text_of(desk.get(f"/admin/patients/details/?id={patient.id}"))
    assert AuditEvent.objects(action="payment.dispute_closed", record=f"Payment:{fee.id}", outcome="lost").count() == 1


def test_a_dispute_naming_only_its_charge_finds_the_fee_through_stripe(app, stripe_base):
    _, _, fee, _ = late_cancelled_fee(app, stripe_base)
    charge = stripe_client(stripe_base).v1.payment_intents.retrieve(fee.stripe_payment_intent).latest_charge
    charge_id = charge if isinstance(charge, str) else charge.id
    resp = post_event(app.test_client(), make_event("charge.dispute.created", {
        "id": "dp_fee_2", "object": "dispute", "charge": charge_id, "amount": 999999, "reason": "general"}))
    assert resp.get_json()["outcome"] == "dispute_recorded"
    assert Payment.objects.get(id=fee.id).dispute.amount == 2000  # never above what was paid
    # Won, and the closing event names only the charge too: the clinic keeps the money.
    won = post_event(app.test_client(), make_event("charge.dispute.closed", {
        "id": "dp_fee_2", "object": "dispute", "charge": charge_id, "amount": 2000, "status": "won"}))
    assert won.get_json()["outcome"] == "dispute_won"
    from models.glance import dispute_words

    assert dispute_words(Payment.objects.get(id=fee.id), "Europe/London").endswith("the clinic keeps £20.00 (general)")


def test_a_closing_that_comes_without_its_opening_records_both(app, stripe_base):
    _, _, fee, _ = late_cancelled_fee(app, stripe_base)
    resp = post_event(app.test_client(), make_event("charge.dispute.closed", {
        "id": "dp_fee_3", "object": "dispute", "payment_intent": fee.stripe_payment_intent, "amount": 2000,
        "reason": "duplicate", "status": "warning_closed"}))
    assert resp.get_json()["outcome"] == "dispute_closed"
    fee.reload()
    assert (fee.dispute.stripe_dispute, fee.dispute.outcome) == ("dp_fee_3", "warning_closed")
    from models.glance import attention, dispute_words

    assert dispute_words(fee, "UTC").startswith("Dispute closed on") and "without a chargeback" in dispute_words(fee, "UTC")
    assert not any(p.id == fee.id for p, _ in attention(datetime.now(timezone.utc)))


# --- 3. what was built but untested -----------------------------------------------------------------

def test_a_deposit_paid_through_checkout_confirms_the_visit_with_the_rest_due_at_the_desk(make_app, stripe_base):
    stand_in = CheckoutStandIn(stripe_base)
    app = make_app(PAYMENT_FLOW="checkout", STRIPE_API_BASE=stand_in.url)
    made = world(deposit=dict(DEPOSIT, deposit_amount=2000))
    client = signed_in(app)
    day = future_day(4)
    booked = book(client, made.services["deposit"], made.providers["dr"], at(day, 10))
    assert booked.status_code == 201 and booked.get_json()["status"] == "held"
    appt_id = booked.get_json()["id"]
    started = api_post(client, f"/api/appointments/{appt_id}/payment").get_json()
    assert started["flow"] == "checkout"
    [sent] = [r["form"] for r in stand_in.requests if r["method"] == "POST"]
    assert sent["line_items[0][price_data][unit_amount]"] == "2000"  # the deposit, not the £80.00 price
    assert sent["line_items[0][price_data][product_data][name]"] == "Assessment (deposit)"
    session = stand_in.pay(started["session"])
    assert stripe_client(stripe_base).v1.payment_intents.retrieve(session["payment_intent"]).amount == 2000
    resp = post_event(app.test_client(), make_event("checkout.session.completed", session))
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "confirmed"
    assert client.get(f"/api/appointments/{appt_id}").get_json()["status"] == "confirmed"
    deposit = Payment.objects.get(appointment=appt_id)
    assert (deposit.kind, deposit.amount, deposit.status) == ("deposit", 2000, "succeeded")
    desk = signed_in_staff(app, "reception", create=True)
    assert "£60.00 to pay at the desk." in text_of(desk.get(f"/admin/day/?day={day.isoformat()}"))


def test_a_fee_the_bank_asked_about_is_settled_by_the_payment_intent_succeeded_webhook(app, stripe_base):
    from models.glance import attention

    client, appt_id, fee, _ = late_cancelled_fee(app, stripe_base, CARD_ALWAYS_3DS)
    assert any(p.id == fee.id for p, _ in attention(datetime.now(timezone.utc)))
    # The patient confirms with the bank in Stripe.js; the app is told only by Stripe's event.
    secret = stripe_client(stripe_base).v1.payment_intents.retrieve(fee.stripe_payment_intent).client_secret
    authenticate_3ds(stripe_base, fee.stripe_payment_intent, secret)
    assert Payment.objects.get(id=fee.id).status == "pending"
    resp = post_event(app.test_client(), make_event("payment_intent.succeeded", {
        "id": fee.stripe_payment_intent, "object": "payment_intent", "status": "succeeded"}))
    assert resp.status_code == 200, resp.get_json()
    fee.reload()
    assert (fee.status, fee.fee_state) == ("succeeded", "")
    assert OutboxMessage.objects(kind="fee_charged", appointment=appt_id).count() == 1
    assert not any(p.id == fee.id for p, _ in attention(datetime.now(timezone.utc)))
    assert "Paid, thank you." in text_of(client.get(f"/portal/appointments/{appt_id}/fee/{fee.id}"))


@pytest.fixture
def started_visit(app, stripe_base):
    """A patient's visit that started 30 minutes ago today, agreed under a £25.00 no-show fee."""
    # A visit that started 30 minutes ago is today's in a clinic where it is daytime now.
    made = world(tz=daytime_zone(), fees=dict(FEES, no_show_fee=2500, pay_at_clinic=True))
    return made


def _mark_no_show(app, appt):
    from tests.support.factories import form_csrf

    desk = signed_in_staff(app, "reception", create=True)
    token = form_csrf(desk.get("/admin/login").get_data(as_text=True))
    answer = desk.post("/admin/day/act", data={"op": "no_show", "appointment": str(appt.id), "csrf_token": token,
                                               "confirm": "yes", "fee": "charge"})
    assert answer.status_code == 302
    assert Appointment.objects.get(id=appt.id).status == "no_show"
    return desk


def test_the_home_page_shows_the_fees_taken_for_today(app, stripe_base, started_visit):
    save_card(signed_in(app), stripe_base)
    patient = Patient.objects.get(email="pat@example.com")
    appt = _started_appointment_with_fee(patient, started_visit.services["fees"], started_visit.providers["dr"])
    line = "Late-cancellation and no-show fees taken for today's appointments:"
    assert line not in text_of(signed_in_staff(app, "admin", create=True).get("/admin/"))
    desk = _mark_no_show(app, appt)
    assert f"{line} £25.00." in text_of(desk.get("/admin/"))


def test_the_day_grid_says_a_fee_the_bank_asked_about_is_due(app, stripe_base, started_visit):
    save_card(signed_in(app), stripe_base, CARD_ALWAYS_3DS)
    patient = Patient.objects.get(email="pat@example.com")
    appt = _started_appointment_with_fee(patient, started_visit.services["fees"], started_visit.providers["dr"])
    desk = _mark_no_show(app, appt)
    fee = Payment.objects.get(appointment=appt.id, kind="no_show_fee")
    assert (fee.status, fee.fee_state) == ("pending", "authentication_required")
    assert "No-show fee £25.00: due (patient emailed a pay link)." in text_of(desk.get("/admin/day/"))
    assert "no-show fee due: the bank asked the patient to confirm it" in text_of(desk.get("/admin/"))
