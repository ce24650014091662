"""POST /webhooks/stripe: signatures, store-once, order, transient failures, refunds, disputes."""

import time

import pytest

from devstack.servers import free_port
from models import Appointment, AuditEvent, Payment, StripeEvent
from tests.support.payments import (
    api_post,
    book_held,
    clinic_with_service,
    confirm_at_stripe,
    make_event,
    post_event,
    signed_in,
    stripe_client,
)


@pytest.fixture
def started(app):
    """A held appointment whose payment has started: (appointment, PaymentIntent id)."""
    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    body = api_post(signed_in(app), f"/api/appointments/{appt.id}/payment").get_json()
    return appt, body["payment_intent"]


def intent_event(event_type, pi_id, status, **kwargs):
    """An event whose payload *claims* a status (the app must not believe it)."""
    return make_event(event_type, {"id": pi_id, "object": "payment_intent", "status": status,
                                   "amount": 5000, "currency": "gbp"}, **kwargs)


def status_of(appt):
    return Appointment.objects.get(id=appt.id).status


@pytest.mark.parametrize("how", ["unsigned", "forged", "stale", "future", "garbled"])
def test_bad_signatures_are_400_and_store_nothing(client, started, stripe_base, how):
    appt, pi_id = started
    confirm_at_stripe(stripe_base, pi_id)
    event = intent_event("payment_intent.succeeded", pi_id, "succeeded")
    if how == "unsigned":
        resp = post_event(client, event, header=False)
    elif how == "forged":
        resp = post_event(client, event, secret="whsec_someone_else")
    elif how == "stale":
        resp = post_event(client, event, timestamp=int(time.time()) - 301)
    elif how == "future":
        resp = post_event(client, event, timestamp=int(time.time()) + 3600)
    else:
        resp = client.post("/webhooks/stripe", data=b'{"id": "evt_x"', headers={"Stripe-Signature": "t=1,v1=00"})
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["code"] in ("bad_signature", "bad_payload")
    assert StripeEvent.objects.count() == 0
    assert status_of(appt) == "held"


def test_rotation_accepts_the_old_and_the_new_secret(make_app, stripe_base):
    app = make_app(STRIPE_WEBHOOK_SECRET="whsec_new, whsec_old")
    client = app.test_client()
    for secret in ("whsec_new", "whsec_old"):
        resp = post_event(client, make_event("customer.created", {"id": "cus_1", "object": "customer"}),
                          secret=secret)
        assert resp.status_code == 200
    assert post_event(client, make_event("customer.created", {"id": "cus_2"}), secret="whsec_gone").status_code == 400


def test_a_duplicate_event_is_stored_and_acted_on_once(client, started, stripe_base):
    appt, pi_id = started
    confirm_at_stripe(stripe_base, pi_id)
    event = intent_event("payment_intent.succeeded", pi_id, "succeeded")
    first = post_event(client, event)
    assert first.status_code == 200 and first.get_json()["outcome"] == "confirmed"
    second = post_event(client, event)
    assert second.status_code == 200 and second.get_json()["duplicate"] is True
    assert StripeEvent.objects(event_id=event["id"]).count() == 1
    assert status_of(appt) == "confirmed"
    assert AuditEvent.objects(action="appointment.confirm", actor="stripe").count() == 1
    # The same news in a different event (Stripe resends with new ids too) changes nothing twice.
    third = post_event(client, intent_event("payment_intent.succeeded", pi_id, "succeeded"))
    assert third.get_json()["outcome"] == "already_confirmed"
    assert AuditEvent.objects(action="appointment.confirm").count() == 1


def test_out_of_order_and_lying_payloads_do_not_move_state_backwards(client, started, stripe_base):
    appt, pi_id = started
    # "succeeded" arrives while Stripe says the intent still awaits a card: nothing is confirmed.
    early = post_event(client, intent_event("payment_intent.succeeded", pi_id, "succeeded"))
    assert early.status_code == 200 and status_of(appt) == "held"
    assert Payment.objects.get(appointment=appt.id).status == "pending"
    confirm_at_stripe(stripe_base, pi_id)
    newer = intent_event("payment_intent.succeeded", pi_id, "succeeded")
    older = intent_event("payment_intent.payment_failed", pi_id, "requires_payment_method",
                         created=time.time() - 120)
    assert post_event(client, newer).status_code == 200
    assert post_event(client, older).status_code == 200  # the older failure arrives last
    assert status_of(appt) == "confirmed"
    assert Payment.objects.get(appointment=appt.id).status == "succeeded"
    canceled = post_event(client, intent_event("payment_intent.canceled", pi_id, "canceled"))
    assert canceled.status_code == 200 and status_of(appt) == "confirmed"


def test_failed_payment_event_keeps_the_hold(client, started, stripe_base):
    appt, pi_id = started
    confirm_at_stripe(stripe_base, pi_id, number="4000000000000341")
    resp = post_event(client, intent_event("payment_intent.payment_failed", pi_id, "requires_payment_method"))
    assert resp.get_json()["outcome"] == "payment_failed"
    assert status_of(appt) == "held" and Payment.objects.get(appointment=appt.id).status == "failed"


def test_unknown_types_and_objects_are_2xx(client, started):
    resp = post_event(client, make_event("customer.updated", {"id": "cus_123", "object": "customer"}))
    assert resp.status_code == 200 and resp.get_json()["handled"] is False
    assert StripeEvent.objects.get(object_id="cus_123").outcome == "ignored"
    unknown = post_event(client, intent_event("payment_intent.succeeded", "pi_doesnotexist", "succeeded"))
    assert unknown.status_code == 200 and unknown.get_json()["outcome"] == "unknown_intent"


def test_transient_failure_answers_503_and_the_retry_is_processed(make_app, started, stripe_base):
    appt, pi_id = started
    confirm_at_stripe(stripe_base, pi_id)
    event = intent_event("payment_intent.succeeded", pi_id, "succeeded")
    down = make_app(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}")  # Stripe unreachable
    resp = post_event(down.test_client(), event)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert status_of(appt) == "held"
    assert StripeEvent.objects.get(event_id=event["id"]).processed_at is None
    # Stripe retries once it answers again: processed, not taken for a duplicate.
    up = make_app()
    retry = post_event(up.test_client(), event)
    assert retry.status_code == 200 and retry.get_json()["outcome"] == "confirmed"
    assert status_of(appt) == "confirmed"
    assert post_event(up.test_client(), event).get_json()["duplicate"] is True


def test_an_event_being_processed_elsewhere_is_not_processed_twice(client, started):
    appt, pi_id = started
    event = intent_event("payment_intent.succeeded", pi_id, "succeeded")
    from models.documents import utcnow

    StripeEvent(event_id=event["id"], type=event["type"], outcome="processing", received_at=utcnow()).save()
    resp = post_event(client, event)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "event_in_progress"


def test_refund_events_and_dashboard_refunds_are_mirrored(app, client, started, stripe_base):
    appt, pi_id = started
    confirm_at_stripe(stripe_base, pi_id)
    post_event(client, intent_event("payment_intent.succeeded", pi_id, "succeeded"))
    refund = stripe_client(stripe_base).v1.refunds.create({"payment_intent": pi_id, "amount": 1500})
    resp = post_event(client, make_event("charge.refunded", {"id": "ch_x", "object": "charge",
                                                             "payment_intent": pi_id}))
    assert resp.get_json()["outcome"] == "refunds_updated"
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.amount_refunded == 1500 and payment.status == "succeeded"
    assert [r.stripe_refund for r in payment.refunds] == [refund.id]
    again = post_event(client, make_event("refund.updated", {"id": refund.id, "object": "refund",
                                                             "payment_intent": pi_id, "status": "failed"}))
    assert again.get_json()["outcome"] == "unchanged"  # Stripe says it succeeded: the payload lies
    assert Payment.objects.get(appointment=appt.id).amount_refunded == 1500


def test_a_refund_event_naming_only_its_charge_finds_the_payment_through_stripe(client, started, stripe_base):
    appt, pi_id = started
    confirm_at_stripe(stripe_base, pi_id)
    post_event(client, intent_event("payment_intent.succeeded", pi_id, "succeeded"))
    stripe_api = stripe_client(stripe_base)
    charge = stripe_api.v1.payment_intents.retrieve(pi_id).latest_charge
    charge_id = charge if isinstance(charge, str) else charge.id
    refund = stripe_api.v1.refunds.create({"charge": charge_id, "amount": 1000})
    resp = post_event(client, make_event("refund.updated", {"id": refund.id, "object": "refund",
                                                            "charge": charge_id, "status": "succeeded"}))
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "refunds_updated"
    assert Payment.objects.get(appointment=appt.id).amount_refunded == 1000


def test_dispute_is_recorded_for_staff(client, started, stripe_base):
    appt, pi_id = started
    confirm_at_stripe(stripe_base, pi_id)
    post_event(client, intent_event("payment_intent.succeeded", pi_id, "succeeded"))
    resp = post_event(client, make_event("charge.dispute.created", {
        "id": "dp_1", "object": "dispute", "payment_intent": pi_id, "amount": 5000}))
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "dispute_recorded"
    payment = Payment.objects.get(appointment=appt.id)
    assert AuditEvent.objects(actor="stripe", action="payment.dispute_opened",
                              record=f"Payment:{payment.id}").count() == 1


def test_the_doors_call_no_private_payments_name_and_the_webhook_stores_nothing_itself():
    """The inbox lives in the domain: the webhook door verifies and calls `payments.receive_event`;
    no door reaches for a `_`-private name of `models.payments`."""
    import ast
    import pathlib

    from tests.helpers import ROOT

    private = []
    for package in ("portal", "admin", "webhooks"):
        for path in sorted(pathlib.Path(ROOT, package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("models.payments"):
                    private += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                        and node.value.id == "payments" and node.attr.startswith("_")):
                    private.append(f"{path.name}: payments.{node.attr}")
    assert private == []
    door = ast.parse(pathlib.Path(ROOT, "webhooks", "stripe_webhook.py").read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(door) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert not names & {"StripeEvent", "NotUniqueError", "sync_payment_intent", "sync_checkout_session"}, names
