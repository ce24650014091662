"""Paying for an appointment (PaymentIntents, the Elements flow) against the real localstripe."""

from datetime import datetime, timedelta, timezone

import pytest
import stripe

from devstack.servers import register_localstripe_webhook
from models import Appointment, AuditEvent, Payment, StripeEvent, TimeClaim
from tests.support.factories import LONDON
from tests.support.payments import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    WEBHOOK_SECRET,
    api_post,
    appointment_status,
    authenticate_3ds,
    book_held,
    card_token,
    clinic_with_service,
    confirm_at_stripe,
    signed_in,
    start_at,
    stripe_client,
    wait_until,
)


@pytest.fixture
def held(app):
    service, provider = clinic_with_service()
    return book_held(service, provider)


def pay(client, appt_id, stripe_base, number):
    """What the payment page does: start, tokenise the card, let the server confirm."""
    assert api_post(client, f"/api/appointments/{appt_id}/payment").status_code == 200
    token = card_token(stripe_base, number)["id"]
    return api_post(client, f"/api/appointments/{appt_id}/payment/confirm", {"token": token})


def test_start_creates_one_intent_with_metadata_and_our_key_and_stores_no_secret(app, held, stripe_base):
    client = signed_in(app)
    first = api_post(client, f"/api/appointments/{held.id}/payment")
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["flow"] == "elements" and body["publishable_key"] == "pk_test_clinic"
    assert body["client_secret"].startswith(body["payment_intent"] + "_secret_")
    pi = stripe_client(stripe_base).v1.payment_intents.retrieve(body["payment_intent"])
    payment = Payment.objects.get(appointment=held.id)
    assert (pi.amount, pi.currency) == (5000, "gbp")
    assert pi.metadata["appointment_id"] == str(held.id) and pi.metadata["payment_id"] == str(payment.id)
    # A second click reuses the same Payment and intent.
    again = api_post(client, f"/api/appointments/{held.id}/payment").get_json()
    assert again["payment_intent"] == body["payment_intent"]
    assert Payment.objects(appointment=held.id).count() == 1
    raw = Payment._get_collection().find_one({"_id": payment.id})
    assert body["client_secret"] not in repr(raw)
    assert payment.stripe_payment_intent == body["payment_intent"] and payment.status == "pending"


def test_card_confirmed_in_the_browser_is_confirmed_by_the_signed_webhook(live_server, stripe_base):
    base, app = live_server()
    register_localstripe_webhook(stripe_base, f"{base}/webhooks/stripe", WEBHOOK_SECRET)
    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    client = signed_in(app)
    started = api_post(client, f"/api/appointments/{appt.id}/payment").get_json()
    # Stripe.js confirms the card at Stripe; our server hears of it only through the webhook.
    assert confirm_at_stripe(stripe_base, started["payment_intent"]).status == "succeeded"
    wait_until(lambda: appointment_status(client, appt.id) == "confirmed", timeout=15)
    # The webhook records its outcome after confirming the appointment (and queuing its email).
    wait_until(lambda: StripeEvent.objects(object_id=started["payment_intent"], outcome="confirmed").count(),
               timeout=15)
    event = StripeEvent.objects.get(object_id=started["payment_intent"])
    assert event.type == "payment_intent.succeeded" and event.outcome == "confirmed"
    assert event.processed_at is not None
    assert AuditEvent.objects(actor="stripe", action="appointment.confirm",
                              record=f"Appointment:{appt.id}").count() == 1
    assert Payment.objects.get(appointment=appt.id).status == "succeeded"
    # The time is the appointment's for good: its claims no longer lapse with the hold.
    assert TimeClaim.objects(appointment=appt.id, expires_at__ne=None).count() == 0
    assert TimeClaim.objects(appointment=appt.id).count() == 6


def test_server_confirmed_card_confirms_at_once(app, held, stripe_base):
    client = signed_in(app)
    resp = pay(client, held.id, stripe_base, CARD_OK)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "succeeded"
    assert resp.get_json()["appointment_status"] == "confirmed"
    assert appointment_status(client, held.id) == "confirmed"
    page = client.get(f"/portal/appointments/{held.id}").get_data(as_text=True)
    assert "Your appointment is confirmed" in page and 'id="pay-form"' not in page
    # Paying again is refused: the appointment is paid.
    again = api_post(client, f"/api/appointments/{held.id}/payment")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_paid"


def test_declined_card_leaves_it_held_and_payable_again(app, held, stripe_base):
    client = signed_in(app)
    declined = pay(client, held.id, stripe_base, CARD_DECLINED)
    assert declined.status_code == 402
    assert declined.get_json()["error"] == {"code": "card_declined", "message": "Your card was declined."}
    assert appointment_status(client, held.id) == "held"
    first = Payment.objects.get(appointment=held.id)
    assert first.status == "failed"
    page = client.get(f"/portal/appointments/{held.id}").get_data(as_text=True)
    assert "did not go through" in page and 'id="pay-form"' in page
    # Another card works; the declined intent was replaced (localstripe cannot retry it) and cancelled.
    ok = pay(client, held.id, stripe_base, CARD_OK)
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["appointment_status"] == "confirmed"
    second = Payment.objects.get(appointment=held.id)
    assert second.id == first.id and second.stripe_payment_intent != first.stripe_payment_intent
    old = stripe_client(stripe_base).v1.payment_intents.retrieve(first.stripe_payment_intent)
    assert old.status == "canceled"


def test_three_d_secure_card_completes_after_authentication(app, held, stripe_base):
    client = signed_in(app)
    resp = pay(client, held.id, stripe_base, CARD_3DS)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["requires_action"] is True and body["status"] == "pending"
    assert appointment_status(client, held.id) == "held"
    pi_id = Payment.objects.get(appointment=held.id).stripe_payment_intent
    authenticate_3ds(stripe_base, pi_id, body["client_secret"])
    # The page the browser returns to re-fetches from Stripe: no webhook is needed to see it.
    synced = api_post(client, f"/api/appointments/{held.id}/payment/sync").get_json()
    assert synced["status"] == "succeeded" and synced["appointment_status"] == "confirmed"


def test_failed_three_d_secure_leaves_it_held(app, held, stripe_base):
    client = signed_in(app)
    body = pay(client, held.id, stripe_base, CARD_3DS).get_json()
    pi_id = Payment.objects.get(appointment=held.id).stripe_payment_intent
    authenticate_3ds(stripe_base, pi_id, body["client_secret"], success=False)
    page = client.get(f"/portal/appointments/{held.id}").get_data(as_text=True)
    assert "payment needed" in page and "did not go through" in page
    assert Payment.objects.get(appointment=held.id).status == "failed"


def test_payment_page_loads_stripe_js_under_a_csp_widened_on_that_page_only(app, held, stripe_base):
    client = signed_in(app)
    resp = client.get(f"/portal/appointments/{held.id}")
    page = resp.get_data(as_text=True)
    assert f'<script src="{stripe_base}/js.stripe.com/v3/">' in page
    assert '<script src="/static/pay.js" defer>' in page and "<script>" not in page
    assert 'role="group" aria-labelledby="card-label"' in page and ">Pay £50.00</button>" in page
    csp = resp.headers["Content-Security-Policy"]
    script_src = [d for d in csp.split(";") if d.strip().startswith("script-src")][0]
    assert stripe_base in script_src and "'self'" in script_src and "unsafe-inline" not in script_src
    assert "frame-ancestors 'none'" in csp
    dashboard = client.get("/portal/")
    assert stripe_base not in dashboard.headers["Content-Security-Policy"]
    assert client.get("/static/pay.js").status_code == 200


def test_payment_refused_for_other_patients_free_and_lapsed_appointments(app, held, stripe_base):
    from tests.support.factories import make_patient, make_service

    make_patient(email="other@example.com")
    other = signed_in(app, "other@example.com")
    assert api_post(other, f"/api/appointments/{held.id}/payment").status_code == 404
    client = signed_in(app)
    assert api_post(client, f"/api/appointments/{held.id}/payment/confirm",
                    {"token": "not-a-token"}).status_code == 422
    no_csrf = client.post(f"/api/appointments/{held.id}/payment", json={})
    assert no_csrf.status_code in (401, 403)
    Appointment.objects(id=held.id).update_one(
        set__hold_expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    lapsed = api_post(client, f"/api/appointments/{held.id}/payment")
    assert lapsed.status_code == 409 and lapsed.get_json()["error"]["code"] == "hold_expired"
    free = make_service("Call", duration=15, price=0)
    from models import Provider

    Provider.objects(name="Dr Pay").update_one(push__services=free)
    from models.booking.create import book
    from models import Patient

    appt = book(Patient.objects.get(email="pat@example.com"), str(free.id),
                str(Provider.objects.get(name="Dr Pay").id), start_at(hour=15), datetime.now(timezone.utc))
    nothing = api_post(client, f"/api/appointments/{appt.id}/payment")
    assert nothing.status_code == 409 and nothing.get_json()["error"]["code"] == "nothing_to_pay"
    assert Payment.objects(appointment=appt.id).count() == 0


# --- late payments ------------------------------------------------------------------------------

def _started_in_the_past(app, service, provider, minutes_ago=30, email="pat@example.com"):
    """An appointment booked and its payment started `minutes_ago` (its 15-minute hold lapsed)."""
    from models.payments.start import start_payment

    then = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    appt = book_held(service, provider, email=email, now=then)
    with app.app_context():
        started = start_payment(appt, then)
    assert appt.hold_expires_at.replace(tzinfo=timezone.utc) < datetime.now(timezone.utc)
    return appt, started["payment_intent"]


def test_late_payment_is_confirmed_while_the_time_is_still_free(app, stripe_base):
    from models.payments.sync import sync_payment_intent

    service, provider = clinic_with_service()
    appt, pi_id = _started_in_the_past(app, service, provider)
    confirm_at_stripe(stripe_base, pi_id)
    with app.app_context():
        assert sync_payment_intent(pi_id).outcome == "confirmed_late"
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert TimeClaim.objects(appointment=appt.id, expires_at=None).count() == 6


def test_late_payment_after_the_sweeper_released_the_time_reclaims_it(app, stripe_base):
    from models.payments.sync import sync_payment_intent

    service, provider = clinic_with_service()
    appt, pi_id = _started_in_the_past(app, service, provider)
    # An older sweeper (or a crash) expired it without asking Stripe; the time is free.
    Appointment.objects(id=appt.id).update_one(set__status="expired")
    TimeClaim.objects(appointment=appt.id).delete()
    confirm_at_stripe(stripe_base, pi_id)
    with app.app_context():
        assert sync_payment_intent(pi_id).outcome == "confirmed_late"
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert TimeClaim.objects(appointment=appt.id).count() == 6


def test_late_payment_for_a_time_someone_else_took_is_refunded_in_full(app, stripe_base):
    from models.payments.sync import sync_payment_intent

    service, provider = clinic_with_service()
    appt, pi_id = _started_in_the_past(app, service, provider)
    rival = book_held(service, provider, email="rival@example.com")  # takes over the lapsed time
    confirm_at_stripe(stripe_base, pi_id)
    with app.app_context():
        assert sync_payment_intent(pi_id).outcome == "refunded_time_taken"
        assert sync_payment_intent(pi_id).outcome == "unchanged"  # again: nothing twice
    late = Appointment.objects.get(id=appt.id)
    assert late.status == "expired" and "refunded" in late.cancel_reason
    assert Appointment.objects.get(id=rival.id).status == "held"
    assert TimeClaim.objects(appointment=appt.id).count() == 0
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.status == "refunded" and payment.amount_refunded == 5000
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": pi_id}).data
    assert [(r.amount, r.metadata["refund_key"]) for r in refunds] == [(5000, f"refund:{payment.id}:0")]
    client = signed_in(app)
    page = client.get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert "Refunded: £50.00" in page and "booked by someone else" in page


# --- refunds on cancellation ------------------------------------------------------------------------

def _paid(app, stripe_base, **service_kwargs):
    service, provider = clinic_with_service(**service_kwargs)
    appt = book_held(service, provider)
    client = signed_in(app)
    assert pay(client, appt.id, stripe_base, CARD_OK).get_json()["appointment_status"] == "confirmed"
    return client, appt, Payment.objects.get(appointment=appt.id)


def test_cancelling_a_paid_appointment_within_policy_refunds_it_once(app, stripe_base):
    client, appt, payment = _paid(app, stripe_base)
    resp = api_post(client, f"/api/appointments/{appt.id}/cancel")
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    payment.reload()
    assert payment.status == "refunded" and payment.amount_refunded == 5000
    assert [(r.amount, r.status) for r in payment.refunds] == [(5000, "succeeded")]
    assert payment.refunds[0].stripe_refund.startswith("re_")
    again = api_post(client, f"/api/appointments/{appt.id}/cancel")
    assert again.status_code == 409
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": payment.stripe_payment_intent}).data
    assert [r.amount for r in refunds] == [5000]
    payment_view = client.get(f"/api/appointments/{appt.id}/payment").get_json()
    assert payment_view["status"] == "refunded" and payment_view["amount_refunded"] == 5000


def test_refunds_never_exceed_what_was_paid(app, stripe_base):
    from models.payments.refunds import refund_payment, sync_refunds

    client, appt, payment = _paid(app, stripe_base)
    # Staff refunded 20.00 in Stripe's dashboard; localstripe sends no event, a sync records it.
    stripe_client(stripe_base).v1.refunds.create({"payment_intent": payment.stripe_payment_intent,
                                                  "amount": 2000})
    with app.app_context():
        assert sync_refunds(payment) == "refunds_updated"
        assert sync_refunds(payment) == "unchanged"
        made = refund_payment(payment, amount=999_999)
        assert made["amount"] == 3000
        assert refund_payment(payment) is None and refund_payment(payment, amount=1) is None
    payment.reload()
    assert payment.amount_refunded == 5000 and payment.status == "refunded"
    stripe_total = sum(r.amount for r in stripe_client(stripe_base).v1.refunds.list(
        {"payment_intent": payment.stripe_payment_intent}).data)
    assert stripe_total == 5000
    # Cancelling now refunds nothing more.
    assert api_post(client, f"/api/appointments/{appt.id}/cancel").status_code == 200
    payment.reload()
    assert payment.amount_refunded == 5000 and len(payment.refunds) == 2


def test_no_refund_when_the_service_rule_says_none(app, stripe_base):
    client, appt, payment = _paid(app, stripe_base, refund_rule="none")
    assert api_post(client, f"/api/appointments/{appt.id}/cancel").status_code == 200
    payment.reload()
    assert payment.status == "succeeded" and payment.amount_refunded == 0 and not payment.refunds


def test_cancelling_a_held_appointment_cancels_its_intent(app, held, stripe_base):
    client = signed_in(app)
    pi_id = api_post(client, f"/api/appointments/{held.id}/payment").get_json()["payment_intent"]
    assert api_post(client, f"/api/appointments/{held.id}/cancel").status_code == 200
    assert stripe_client(stripe_base).v1.payment_intents.retrieve(pi_id).status == "canceled"
    assert Payment.objects.get(appointment=held.id).status == "canceled"


def test_concurrent_refunds_together_never_exceed_the_payment(app, stripe_base):
    import threading

    from models.payments.refunds import refund_payment

    _client, appt, payment = _paid(app, stripe_base)
    results, errors = [], []

    def refund():
        try:
            with app.app_context():
                results.append(refund_payment(Payment.objects.get(id=payment.id), amount=3000))
        except Exception as exc:  # a Conflict for the loser of a race is fine
            errors.append(exc)

    threads = [threading.Thread(target=refund) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    payment.reload()
    assert payment.amount_refunded == 5000 and payment.status == "refunded"
    assert sorted(r.amount for r in payment.refunds) == [2000, 3000]
    stripe_total = sum(r.amount for r in stripe_client(stripe_base).v1.refunds.list(
        {"payment_intent": payment.stripe_payment_intent}).data)
    assert stripe_total == 5000


# --- review fixes: a paid Payment is never re-pointed, a failed refund is given back once,
# --- and a payment never confirms a time the provider can no longer give ----------------------

def test_a_second_charge_is_refunded_even_when_its_sync_raced_the_first(app, held, stripe_base, monkeypatch):
    """Two intents of one Payment both took money (the patient paid in two tabs). The sync of the
    second read the Payment just before the sync of the first made it succeed: the patient must
    still get the second charge back, and the Payment must keep following the first."""
    from models.payments import sync as payments  # where the sync looks the Payment up

    client = signed_in(app)
    first = api_post(client, f"/api/appointments/{held.id}/payment").get_json()["payment_intent"]
    payment = Payment.objects.get(appointment=held.id)
    second = stripe_client(stripe_base).v1.payment_intents.create({
        "amount": 5000, "currency": "gbp", "payment_method_types": ["card"],
        "metadata": {"appointment_id": str(held.id), "payment_id": str(payment.id)}}).id
    confirm_at_stripe(stripe_base, first)
    confirm_at_stripe(stripe_base, second)
    original = payments._payment_for_metadata

    def read_then_other_worker_syncs(metadata):
        stale = original(metadata)  # read while still pending …
        monkeypatch.setattr(payments, "_payment_for_metadata", original)
        assert payments.sync_payment_intent(first).outcome == "confirmed"  # … the other worker wins
        return stale

    monkeypatch.setattr(payments, "_payment_for_metadata", read_then_other_worker_syncs)
    with app.app_context():
        assert payments.sync_payment_intent(second).outcome == "duplicate_charge_refunded"
        # Stripe redelivers: the second charge is found refunded and not refunded again.
        assert payments.sync_payment_intent(second).outcome == "duplicate_charge_refunded"
    payment.reload()
    assert payment.stripe_payment_intent == first and payment.status == "succeeded"
    assert Appointment.objects.get(id=held.id).status == "confirmed"
    api = stripe_client(stripe_base).v1.refunds
    assert [r.amount for r in api.list({"payment_intent": second}).data] == [5000]
    assert api.list({"payment_intent": first}).data == []
    # Cancelling now refunds the charge the Payment follows: the patient gets both back, once each.
    assert api_post(client, f"/api/appointments/{held.id}/cancel").status_code == 200
    assert [r.amount for r in api.list({"payment_intent": first}).data] == [5000]


@pytest.fixture
def failing_refunds(stripe_base):
    """A Stripe whose refunds are created but fail (real Stripe can; localstripe never does)."""
    from tests.support.payments import StripeProxy

    made = []

    def answer(method, path, query, form):
        if path != "/v1/refunds":
            return None
        if method == "GET":
            return 200, {"object": "list", "has_more": False, "url": "/v1/refunds",
                         "data": [r for r in made if r["payment_intent"] == query.get("payment_intent")]}
        refund = {"id": f"re_failed{len(made)}", "object": "refund", "status": "failed",
                  "amount": int(form["amount"]), "currency": "gbp", "payment_intent": form["payment_intent"],
                  "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}}
        made.append(refund)
        return 200, refund

    proxy = StripeProxy(stripe_base, answer)
    yield proxy
    proxy.stop()


def test_a_failed_refund_retried_by_two_sweepers_is_given_back_once(make_app, stripe_base, failing_refunds):
    """A refund left pending is retried by two sweepers that both read it; Stripe says it failed.
    The reservation goes back once: a later full refund still returns 50.00, not 100.00."""
    from devstack.servers import free_port
    from models.payments.refunds import refund_payment, retry_pending_refunds

    app = make_app()
    _client, _appt, payment = _paid(app, stripe_base)
    with make_app(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}").app_context():
        # Stripe down: the refund is left pending, and the rule lets Stripe's connection error
        # through as it is (no domain error: its callers leave the retry to the sweeper).
        with pytest.raises(stripe.APIConnectionError):
            refund_payment(payment, reason="appointment cancelled")
    payment.reload()
    assert payment.amount_refunded == 5000 and [r.status for r in payment.refunds] == ["pending"]
    one, two = Payment.objects.get(id=payment.id), Payment.objects.get(id=payment.id)
    with make_app(STRIPE_API_BASE=failing_refunds.url).app_context():
        assert retry_pending_refunds(one) == 1
        assert retry_pending_refunds(two) == 1
    payment.reload()
    assert [r.status for r in payment.refunds] == ["failed"]
    assert payment.amount_refunded == 0 and payment.status == "succeeded"
    with make_app().app_context():  # Stripe as it is: refunds succeed
        made = refund_payment(payment, reason="refund again")
    assert made["amount"] == 5000
    payment.reload()
    assert payment.amount_refunded == 5000 and payment.status == "refunded"
    stripe_total = sum(r.amount for r in stripe_client(stripe_base).v1.refunds.list(
        {"payment_intent": payment.stripe_payment_intent}).data)
    assert stripe_total == 5000


def test_a_payment_arriving_after_the_start_time_is_refunded_not_confirmed(app, held, stripe_base):
    from models.payments.sync import sync_payment_intent

    client = signed_in(app)
    pi_id = api_post(client, f"/api/appointments/{held.id}/payment").get_json()["payment_intent"]
    confirm_at_stripe(stripe_base, pi_id)  # paid at Stripe; we hear of it only later
    after_start = held.start.replace(tzinfo=timezone.utc) + timedelta(minutes=5)
    with app.app_context():
        assert sync_payment_intent(pi_id, now=after_start).outcome == "refunded_started"
        assert sync_payment_intent(pi_id, now=after_start).outcome == "unchanged"
    appt = Appointment.objects.get(id=held.id)
    assert appt.status == "expired" and "start time" in appt.cancel_reason
    assert TimeClaim.objects(appointment=held.id).count() == 0
    payment = Payment.objects.get(appointment=held.id)
    assert payment.status == "refunded" and payment.amount_refunded == 5000
    assert [r.amount for r in stripe_client(stripe_base).v1.refunds.list({"payment_intent": pi_id}).data] == [5000]
    page = client.get(f"/portal/appointments/{held.id}").get_data(as_text=True)
    assert "Refunded: £50.00" in page and "after the appointment&#39;s start time" in page


@pytest.mark.parametrize("change", ["time_off", "hours"])
def test_a_late_payment_for_a_time_the_provider_no_longer_works_is_refunded(app, stripe_base, change):
    """The hold lapsed; meanwhile the provider took that time off (or stopped working that day).
    The payment that arrives now is refunded in full; the patient is told why."""
    from models import DayHours, Schedule, TimeOff
    from models.payments.sync import sync_payment_intent

    service, provider = clinic_with_service()
    appt, pi_id = _started_in_the_past(app, service, provider)
    if change == "time_off":
        TimeOff(provider=provider, start=appt.start - timedelta(hours=1), end=appt.end + timedelta(hours=1),
                reason="sick").save()
    else:
        weekday = appt.start.replace(tzinfo=timezone.utc).astimezone(LONDON).weekday()
        schedule = Schedule.objects.get(provider=provider.id)
        schedule.days = [d for d in schedule.days if d.weekday != weekday] or [
            DayHours(weekday=(weekday + 1) % 7, start="09:00", end="17:00")]
        schedule.save()
    confirm_at_stripe(stripe_base, pi_id)
    with app.app_context():
        assert sync_payment_intent(pi_id).outcome == "refunded_unavailable"
    late = Appointment.objects.get(id=appt.id)
    assert late.status == "expired" and "no longer available" in late.cancel_reason
    assert TimeClaim.objects(appointment=appt.id).count() == 0
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.status == "refunded" and payment.amount_refunded == 5000
    page = signed_in(app).get(f"/portal/appointments/{appt.id}").get_data(as_text=True)
    assert "Refunded: £50.00" in page and "no longer available" in page
