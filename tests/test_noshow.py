"""No-show protection (issue 27): a card on file, deposits, late-cancellation and no-show fees,
against the stack's real localstripe (behind the Checkout stand-in), MongoDB and Redis."""

from datetime import datetime, timedelta, timezone

import pytest
import requests
import time_machine

from models import Appointment, Patient, Payment
from models.messages.documents import OutboxMessage
from tests.helpers import concurrently
from tests.support.factories import at, future_day, within_a_day
from tests.support.payments import (
    CARD_ALWAYS_3DS,
    CARD_OK,
    PUBLISHABLE_KEY,
    CheckoutStandIn,
    api_post,
    authenticate_3ds,
    card_token,
    make_event,
    post_event,
    save_card,
    signed_in,
    stripe_client,
)
from tests.support.world import build_world


FEES = dict(name="Physio", duration=30, price=6000, cancel_hours=48)
DEPOSIT = dict(name="Assessment", duration=30, price=8000, cancel_hours=24)


def world(tz=None, **services):
    """A clinic (in zone `tz`, London by default) with the named services (policy fields set after
    creation) and one provider."""
    specs = {key: {k: v for k, v in spec.items() if k in ("name", "duration", "price", "cancel_hours")}
             for key, spec in services.items()}
    made = build_world(services=specs, providers={"dr": dict(name="Dr Fee")}, patients=["pat@example.com"],
                       clinic={"tz": tz} if tz else None)
    for key, spec in services.items():
        extra = {k: v for k, v in spec.items() if k not in specs[key]}
        if extra:
            made.services[key].update(**{f"set__{k}": v for k, v in extra.items()})
            made.services[key].reload()
    return made


def book(client, service, provider, start, agree=True):
    return api_post(client, "/api/appointments", {
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat(),
        "agree_policy": agree})


def soon():
    """A start inside working hours and inside every window here (24 h and 48 h)."""
    return within_a_day()


def test_services_show_their_policy_and_a_fee_above_the_price_is_refused(app):
    made = world(fees=dict(FEES, late_cancel_fee=2000, no_show_fee=2500, pay_at_clinic=True),
                 deposit=dict(DEPOSIT, deposit_percent=25))
    listed = {s["name"]: s for s in app.test_client().get("/api/services").get_json()}
    assert listed["Physio"]["policy"] == {"deposit": 0, "late_cancel_fee": 2000, "no_show_fee": 2500,
                                          "cancellation_hours": 48}
    assert listed["Assessment"]["policy"]["deposit"] == 2000
    from mongoengine import ValidationError

    service = made.services["fees"]
    service.no_show_fee = 9000
    with pytest.raises(ValidationError):
        service.save()


def test_card_on_file_is_saved_shown_and_removed_and_only_ids_are_stored(app, stripe_base):
    world(fees=dict(FEES, late_cancel_fee=2000))
    client = signed_in(app)
    assert client.get("/api/me/card").status_code == 404
    card = save_card(client, stripe_base)
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == ("visa", "4242", 12, 2034)
    patient = Patient.objects.get(email="pat@example.com")
    assert patient.stripe_customer.startswith("cus_") and patient.card_payment_method.startswith("pm_")
    raw = Patient._get_collection().find_one({"_id": patient.id})
    assert CARD_OK not in repr(raw)
    page = client.get("/portal/account")
    assert b"ending 4242" in page.data
    assert api_post(client, "/api/me/card").status_code == 200  # a second card reuses the Customer
    assert Patient.objects.get(id=patient.id).stripe_customer == patient.stripe_customer
    gone = client.delete("/api/me/card", headers={"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value})
    assert gone.status_code == 200 and gone.get_json() == {"removed": True}
    assert client.get("/api/me/card").status_code == 404


def test_booking_needs_a_card_and_the_agreement_which_is_stored(app, stripe_base):
    made = world(fees=dict(FEES, late_cancel_fee=2000, no_show_fee=2000, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    client = signed_in(app)
    start = soon()
    refused = book(client, service, provider, start)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "card_required"
    save_card(client, stripe_base)
    unagreed = book(client, service, provider, start, agree=False)
    assert unagreed.status_code == 422 and unagreed.get_json()["error"]["code"] == "policy_not_agreed"
    assert "£20.00" in unagreed.get_json()["error"]["message"]
    booked = book(client, service, provider, start)
    assert booked.status_code == 201, booked.get_json()
    assert booked.get_json()["status"] == "confirmed"  # paid at the clinic: nothing taken now
    appt = Appointment.objects.get(id=booked.get_json()["id"])
    assert appt.policy.text == ("You pay at the clinic; nothing is taken now. If you cancel less than 48 hours "
                                "before, or do not come, we will charge £20.00 to your card ending 4242.")
    assert appt.policy.agreed_at is not None and appt.policy.late_cancel_fee == 2000


def _intents_for(stripe_base, payment_id):
    listed = stripe_client(stripe_base).v1.payment_intents.list({"limit": 100})
    intents = [pi.to_dict() for pi in listed.data]
    return [pi for pi in intents if (pi.get("metadata") or {}).get("payment_id") == str(payment_id)]


def test_late_cancel_charges_the_fee_once_under_ten_concurrent_cancels(app, stripe_base):
    made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    client = signed_in(app)
    save_card(client, stripe_base)
    appt_id = book(client, service, provider, soon()).get_json()["id"]  # inside the 48-hour window
    clients = [signed_in(app) for _ in range(10)]
    answers = concurrently(10, lambda i: api_post(clients[i], f"/api/appointments/{appt_id}/cancel"))
    codes = sorted(a.status_code for a in answers)
    # One cancels; a repeat arriving while that one is still finishing is answered as the same success
    # (the crash-recovery rule: a repeated request finishes the job), later ones are refused. Never 5xx.
    assert set(codes) <= {200, 409} and codes.count(200) >= 1, codes
    done = [a.get_json() for a in answers if a.status_code == 200]
    assert all(d["status"] == "cancelled" and d["refund"] is None for d in done)
    assert {"kind": "late_cancel_fee", "amount": 2000, "currency": "gbp", "status": "charged"} in [d["fee"] for d in done]
    fees = Payment.objects(appointment=appt_id, kind="late_cancel_fee")
    assert fees.count() == 1 and fees.first().status == "succeeded"
    charged = _intents_for(stripe_base, fees.first().id)
    assert [(pi["amount"], pi["status"]) for pi in charged] == [(2000, "succeeded")]
    assert OutboxMessage.objects(kind="fee_charged", appointment=appt_id).count() == 1


def test_cancelling_before_the_window_or_by_the_clinic_charges_nothing(app, stripe_base):
    made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    client = signed_in(app)
    save_card(client, stripe_base)
    early = book(client, service, provider, at(future_day(5), 10)).get_json()["id"]
    answer = api_post(client, f"/api/appointments/{early}/cancel").get_json()
    assert answer["status"] == "cancelled" and answer["fee"] is None
    from models.booking.cancellation import cancel

    late = Appointment.objects.get(id=book(client, service, provider, soon()).get_json()["id"])
    cancel(late, datetime.now(timezone.utc), reason="clinician ill", by_staff=True, actor="staff:x")
    assert Payment.objects(kind__in=("late_cancel_fee", "no_show_fee")).count() == 0


def test_no_show_fee_is_charged_once_after_confirming_or_waived_with_a_reason(app, stripe_base):
    from models.payments.fees import charge_fee, no_show
    from models.errors import Conflict, ValidationFailed

    made = world(fees=dict(FEES, no_show_fee=2500, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    client = signed_in(app)
    save_card(client, stripe_base)
    first = Appointment.objects.get(id=book(client, service, provider, soon()).get_json()["id"])
    second = Appointment.objects.get(id=book(client, service, provider, at(future_day(2), 14)).get_json()["id"])
    with time_machine.travel(second.start.replace(tzinfo=timezone.utc) + timedelta(minutes=20), tick=False), \
            app.app_context():
        now = datetime.now(timezone.utc)
        fee = no_show(first, now, charge=True, actor="staff:desk")
        assert (fee.kind, fee.amount, fee.status) == ("no_show_fee", 2500, "succeeded")
        with pytest.raises(Conflict):  # a second click: the appointment is already a no-show
            no_show(Appointment.objects.get(id=first.id), now, charge=True, actor="staff:desk")
        assert charge_fee(first, "no_show_fee", 2500, now).id == fee.id  # the first result
        with pytest.raises(ValidationFailed):
            no_show(second, now, charge=False, reason=" ", actor="staff:desk")
        assert Appointment.objects.get(id=second.id).status == "confirmed"  # nothing changed
        waived = no_show(second, now, charge=False, reason="Flat tyre, called ahead", actor="staff:desk")
    assert (waived.status, waived.fee_state, waived.waived_reason) == ("canceled", "waived", "Flat tyre, called ahead")
    assert len(_intents_for(stripe_base, fee.id)) == 1
    assert _intents_for(stripe_base, waived.id) == []


def test_off_session_3ds_emails_a_pay_link_and_the_patient_pays_on_session(app, stripe_base):
    made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    client = signed_in(app)
    save_card(client, stripe_base, CARD_ALWAYS_3DS)
    appt_id = book(client, service, provider, soon()).get_json()["id"]
    answer = api_post(client, f"/api/appointments/{appt_id}/cancel").get_json()
    assert answer["fee"]["status"] == "due"
    fee = Payment.objects.get(appointment=appt_id, kind="late_cancel_fee")
    assert (fee.status, fee.fee_state) == ("pending", "authentication_required")
    message = OutboxMessage.objects.get(kind="fee_due", appointment=appt_id)
    assert message.context["payment_id"] == str(fee.id)
    from models.messages.rendering import render

    with app.app_context():
        text = render(message, datetime.now(timezone.utc)).text
    link = f"/portal/appointments/{appt_id}/fee/{fee.id}"
    assert link in text and "£20.00" in text
    assert client.get(link).status_code == 200
    due = client.get(f"/api/fees/{fee.id}").get_json()
    assert due["status"] == "due" and due["client_secret"]
    authenticate_3ds(stripe_base, fee.stripe_payment_intent, due["client_secret"])  # Stripe.js on the page
    paid = client.get(f"/api/fees/{fee.id}").get_json()
    assert paid["status"] == "charged" and paid["client_secret"] is None
    assert Payment.objects.get(id=fee.id).fee_state == ""
    assert OutboxMessage.objects(kind="fee_charged", appointment=appt_id).count() == 1
    # Someone else's fee is not found.
    from tests.support.factories import make_patient

    make_patient(email="other@example.com")
    stranger = signed_in(app, email="other@example.com")
    assert stranger.get(f"/api/fees/{fee.id}").status_code == 404


def test_deposit_is_taken_now_and_refunded_by_policy(app, stripe_base):
    made = world(deposit=dict(DEPOSIT, deposit_amount=2000))
    service, provider = made.services["deposit"], made.providers["dr"]
    client = signed_in(app)
    booked = book(client, service, provider, at(future_day(4), 10))
    assert booked.status_code == 201 and booked.get_json()["status"] == "held"
    appt_id = booked.get_json()["id"]
    started = api_post(client, f"/api/appointments/{appt_id}/payment").get_json()
    assert stripe_client(stripe_base).v1.payment_intents.retrieve(started["payment_intent"]).amount == 2000
    token = card_token(stripe_base, CARD_OK)["id"]
    paid = api_post(client, f"/api/appointments/{appt_id}/payment/confirm", {"token": token}).get_json()
    assert paid["appointment_status"] == "confirmed"
    deposit = Payment.objects.get(appointment=appt_id)
    assert (deposit.kind, deposit.amount, deposit.status) == ("deposit", 2000, "succeeded")
    answer = api_post(client, f"/api/appointments/{appt_id}/cancel").get_json()  # before the window
    assert answer["refund"] == {"amount": 2000, "currency": "gbp", "status": "refunded"}
    assert answer["fee"] is None


def test_a_late_cancel_keeps_the_deposit_towards_the_fee_and_never_charges_above_the_policy(app, stripe_base):
    made = world(deposit=dict(DEPOSIT, cancel_hours=48, deposit_amount=1500, late_cancel_fee=2000))
    service, provider = made.services["deposit"], made.providers["dr"]
    client = signed_in(app)
    save_card(client, stripe_base)
    appt_id = book(client, service, provider, soon()).get_json()["id"]
    api_post(client, f"/api/appointments/{appt_id}/payment")
    token = card_token(stripe_base, CARD_OK)["id"]
    api_post(client, f"/api/appointments/{appt_id}/payment/confirm", {"token": token})
    # The clinic raises its fee after the booking: the patient's agreed £20.00 still holds.
    service.update(set__late_cancel_fee=5000)
    answer = api_post(client, f"/api/appointments/{appt_id}/cancel").get_json()
    assert answer["refund"] is None  # the £15.00 deposit is kept towards the fee
    assert answer["fee"] == {"kind": "late_cancel_fee", "amount": 500, "currency": "gbp", "status": "charged"}
    taken = sum(p.amount - (p.amount_refunded or 0) for p in Payment.objects(appointment=appt_id, status="succeeded"))
    assert taken == 2000
    from models.sweep import sweep

    with app.app_context():  # the sweeper neither refunds the fee nor reports the kept deposit as a problem
        report = sweep(datetime.now(timezone.utc) + timedelta(minutes=2))
    assert report.problems == [] and Payment.objects.get(appointment=appt_id, kind="late_cancel_fee").status == "succeeded"


@pytest.fixture
def checkout_app(make_app, stripe_base):
    return make_app(PAYMENT_FLOW="checkout", STRIPE_API_BASE=stripe_base)


def test_checkout_flow_saves_the_card_in_setup_mode(checkout_app, stripe_base):
    stand_in = CheckoutStandIn(stripe_base)
    world(fees=dict(FEES, late_cancel_fee=2000))
    client = signed_in(checkout_app)
    started = api_post(client, "/api/me/card").get_json()
    assert started["flow"] == "checkout" and started["url"]
    sent = [r for r in stand_in.requests if r["method"] == "POST"][0]["form"]
    patient = Patient.objects.get(email="pat@example.com")
    assert sent["mode"] == "setup" and sent["customer"] == patient.stripe_customer
    assert "line_items[0][price_data][unit_amount]" not in sent  # nothing is charged
    session = stand_in.pay(started["session"], CARD_OK)
    assert session["status"] == "complete" and session["setup_intent"].startswith("seti_")
    # Stripe tells the webhook; the signed event alone saves the card.
    delivered = post_event(checkout_app.test_client(), make_event("checkout.session.completed", session))
    assert delivered.status_code == 200
    patient.reload()
    assert (patient.card_brand, patient.card_last4) == ("visa", "4242")
    assert client.get("/api/me/card").get_json()["last4"] == "4242"


def _started_appointment_with_fee(patient, service, provider, fee=2500):
    """An appointment that started 30 minutes ago today, booked under a no-show fee (written directly)."""
    from models.booking.documents import AgreedPolicy

    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=30)
    end = start + timedelta(minutes=30)
    return Appointment(patient=patient, provider=provider, service=service, start=start, end=end,
                       block_start=start, block_end=end, status="confirmed", amount=service.price, currency="gbp",
                       policy=AgreedPolicy(no_show_fee=fee, pay_at_clinic=True, text="If you do not come, we will "
                                           "charge £25.00 to your card ending 4242.", agreed_at=start)).save()


def test_staff_confirm_then_charge_or_waive_a_no_show_in_the_day_view_and_refund_the_fee(app, stripe_base):
    from tests.support.clients import signed_in_staff
    from tests.support.factories import form_csrf

    from tests.support.factories import daytime_zone

    # A visit that started 30 minutes ago is today's in a clinic where it is daytime now.
    made = world(tz=daytime_zone(), fees=dict(FEES, no_show_fee=2500, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    save_card(signed_in(app), stripe_base)
    patient = Patient.objects.get(email="pat@example.com")
    appt = _started_appointment_with_fee(patient, service, provider)
    desk = signed_in_staff(app, "reception", create=True)
    token = form_csrf(desk.get("/admin/login").get_data(as_text=True))
    asked = desk.post("/admin/day/act", data={"op": "no_show", "appointment": str(appt.id), "csrf_token": token})
    assert asked.status_code == 302 and "/admin/day/no-show" in asked.headers["Location"]
    assert Appointment.objects.get(id=appt.id).status == "confirmed"  # nothing happens before the confirm step
    page = desk.get(asked.headers["Location"]).get_data(as_text=True)
    assert "charge £25.00 to the card ending 4242" in page
    no_reason = desk.post("/admin/day/act", data={"op": "no_show", "appointment": str(appt.id), "csrf_token": token,
                                                  "confirm": "yes", "fee": "waive", "reason": ""})
    assert no_reason.status_code == 422 and "reason" in no_reason.get_data(as_text=True)
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    for _ in range(2):  # a double click charges once
        desk.post("/admin/day/act", data={"op": "no_show", "appointment": str(appt.id), "csrf_token": token,
                                          "confirm": "yes", "fee": "charge"})
    assert Appointment.objects.get(id=appt.id).status == "no_show"
    fee = Payment.objects.get(appointment=appt.id, kind="no_show_fee")
    assert (fee.status, fee.amount) == ("succeeded", 2500) and len(_intents_for(stripe_base, fee.id)) == 1
    day = desk.get("/admin/day/").get_data(as_text=True)
    assert "No-show fee £25.00:" in day and "taken" in day
    # Staff give the fee back from the payments ledger.
    admin = signed_in_staff(app, "admin", create=True)
    listing = admin.get("/admin/payments/").get_data(as_text=True)
    refunded = admin.post("/admin/payments/action/", data={"action": "refund_fee", "rowid": str(fee.id),
                                                           "csrf_token": form_csrf(listing)})
    assert refunded.status_code == 302
    fee.reload()
    assert (fee.status, fee.amount_refunded) == ("refunded", 2500)


def test_stripe_down_leaves_the_fee_waiting_and_the_sweep_charges_it_once(make_app, stripe_base):
    from models.sweep import sweep
    from tests.support.payments import StripeProxy

    down = {"on": False}

    def answer(method, path, query, form):
        if down["on"] and method == "POST" and path == "/v1/payment_intents":
            return 503, {"error": {"type": "api_error", "message": "Stripe is down (test)"}}
        return None

    proxy = StripeProxy(stripe_base, answer)
    try:
        app = make_app(STRIPE_API_BASE=proxy.url)
        made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
        service, provider = made.services["fees"], made.providers["dr"]
        client = signed_in(app)
        save_card(client, stripe_base)
        appt_id = book(client, service, provider, soon()).get_json()["id"]
        down["on"] = True
        answer_ = api_post(client, f"/api/appointments/{appt_id}/cancel")
        assert answer_.status_code == 200 and answer_.get_json()["status"] == "cancelled"
        assert answer_.get_json()["fee"]["status"] == "pending"
        fee = Payment.objects.get(appointment=appt_id, kind="late_cancel_fee")
        assert (fee.status, fee.stripe_payment_intent, fee.fee_state) == ("pending", None, "")
        down["on"] = False
        with app.app_context():
            sweep(datetime.now(timezone.utc) + timedelta(minutes=2))
            sweep(datetime.now(timezone.utc) + timedelta(minutes=4))  # a second pass charges nothing more
        fee.reload()
        assert fee.status == "succeeded"
        assert [pi["status"] for pi in _intents_for(stripe_base, fee.id)] == ["succeeded"]
    finally:
        proxy.stop()


def test_a_card_removed_before_the_charge_makes_the_fee_due_and_emails_the_patient(app, stripe_base):
    made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    client = signed_in(app)
    save_card(client, stripe_base)
    appt_id = book(client, service, provider, soon()).get_json()["id"]
    assert client.delete("/api/me/card", headers={"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value}
                         ).status_code == 200
    answer = api_post(client, f"/api/appointments/{appt_id}/cancel").get_json()
    assert answer["fee"]["status"] == "due"
    fee = Payment.objects.get(appointment=appt_id, kind="late_cancel_fee")
    assert (fee.status, fee.fee_state) == ("pending", "no_card")
    assert OutboxMessage.objects(kind="fee_due", appointment=appt_id).count() == 1
    from models.glance import attention

    assert any(p.id == fee.id and "due" in why for p, why in attention(datetime.now(timezone.utc)))


def test_inside_the_window_the_patient_may_cancel_with_the_fee_but_not_move_and_the_page_says_so(app, stripe_base):
    made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    client = signed_in(app)
    save_card(client, stripe_base)
    appt_id = book(client, service, provider, soon()).get_json()["id"]
    moved = api_post(client, f"/api/appointments/{appt_id}/reschedule",
                     {"start": at(future_day(2), 11).isoformat()})
    assert moved.status_code == 409 and moved.get_json()["error"]["code"] == "inside_cancellation_window"
    page = client.get(f"/portal/appointments/{appt_id}?cancel=1").get_data(as_text=True)
    assert "a fee of £20.00 applies" in page


def test_the_rest_after_a_deposit_is_taken_at_the_desk(app, stripe_base):
    from models.payments.desk import due_at_desk, mark_paid_at_desk

    made = world(deposit=dict(DEPOSIT, deposit_amount=2000))
    service, provider = made.services["deposit"], made.providers["dr"]
    client = signed_in(app)
    appt_id = book(client, service, provider, at(future_day(4), 10)).get_json()["id"]
    api_post(client, f"/api/appointments/{appt_id}/payment")
    token = card_token(stripe_base, CARD_OK)["id"]
    api_post(client, f"/api/appointments/{appt_id}/payment/confirm", {"token": token})
    appt = Appointment.objects.get(id=appt_id)
    deposit = Payment.objects.get(appointment=appt_id, kind="deposit")
    assert due_at_desk(appt, deposit) == 6000
    rest = mark_paid_at_desk(appt, "card_terminal", datetime.now(timezone.utc), "staff:desk")
    assert (rest.kind, rest.amount, rest.method) == ("visit", 6000, "card_terminal")
    assert due_at_desk(appt, deposit) == 0


def test_the_signed_setup_intent_succeeded_event_saves_the_card_and_a_stranger_s_is_ignored(app, stripe_base):
    world(fees=dict(FEES, late_cancel_fee=2000))
    client = signed_in(app)
    body = api_post(client, "/api/me/card").get_json()
    resp = requests.post(f"{stripe_base}/v1/setup_intents/{body['setup_intent']}/confirm", timeout=10, json={
        "key": PUBLISHABLE_KEY, "client_secret": body["client_secret"], "use_stripe_sdk": True,
        "payment_method_data": {"type": "card", "card": {"number": CARD_OK, "exp_month": "12",
                                                         "exp_year": "2034", "cvc": "123"}}})
    seti = resp.json()
    # An event's payload is only a hint: a forged metadata naming another patient changes nothing.
    forged = dict(seti, metadata={"patient_id": "0" * 24})
    assert post_event(app.test_client(), make_event("setup_intent.succeeded", forged)).status_code == 200
    assert post_event(app.test_client(), make_event("setup_intent.succeeded", seti)).status_code == 200
    patient = Patient.objects.get(email="pat@example.com")
    assert (patient.card_last4, patient.card_setup) == ("4242", None)


def test_a_fee_for_a_childs_visit_is_the_parents_to_pay_and_in_their_export(app, stripe_base):
    """A parent booked for a child and cancelled late: the emailed pay link opens for the parent
    (the fee is the child's visit's, charged to the parent's card), and the parent's data export
    holds the child's payments."""
    made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
    service, provider = made.services["fees"], made.providers["dr"]
    parent = signed_in(app)
    save_card(parent, stripe_base, CARD_ALWAYS_3DS)
    kid = api_post(parent, "/api/me/dependants", {"name": "Kim Patient", "date_of_birth": "2018-04-02"}).get_json()
    booked = api_post(parent, "/api/appointments", {
        "service": str(service.id), "provider": str(provider.id), "start": soon().isoformat(),
        "agree_policy": True, "for": kid["id"]})
    assert booked.status_code == 201, booked.get_json()
    appt_id = booked.get_json()["id"]
    assert api_post(parent, f"/api/appointments/{appt_id}/cancel").get_json()["fee"]["status"] == "due"
    fee = Payment.objects.get(appointment=appt_id, kind="late_cancel_fee")
    assert str(fee.patient.id if hasattr(fee.patient, "id") else fee.patient) == kid["id"]
    assert parent.get(f"/portal/appointments/{appt_id}/fee/{fee.id}").status_code == 200
    due = parent.get(f"/api/fees/{fee.id}").get_json()
    assert due["status"] == "due" and due["client_secret"] and due["amount"] == 2000
    exported = parent.get("/api/me/export").get_json()
    assert str(fee.id) in {p["id"] for p in exported["payments"]}
