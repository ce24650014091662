"""POST /webhooks/stripe: verify the signature on the raw body, store each event once, reconcile.

- Verification: every configured secret is tried (a rotation accepts old and new), with a 300 s
  tolerance; a missing, forged or stale signature answers 400 and stores nothing.
- Store once: the event id is unique. A redelivery of a processed event answers 200 and does
  nothing. An event whose processing failed (or whose worker died: "processing" for more than
  `STALE_AFTER`) is taken over by the next delivery; one still being processed answers 409 so
  Stripe delivers it again later.
- Handling never trusts the payload: handlers take the object's id and the payment rules re-fetch
  it from Stripe (`models.payments`). Transitions there are guarded and idempotent, so duplicates
  and out-of-order events change nothing twice. Changes are audited with the actor "stripe".
- A transient failure (MongoDB, Redis or Stripe not answering) marks the event failed and answers
  503, so Stripe's retry is processed. Unhandled types are stored and answered 200.
"""

import logging
import time
from datetime import datetime, timedelta, timezone

import stripe
from flask import Blueprint, current_app, jsonify, request
from mongoengine import NotUniqueError

from clinic.errors import error_response
from models import payments
from models.documents import StripeEvent, utcnow
from models.errors import DomainError

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
TOLERANCE_SECONDS = 300
STALE_AFTER = timedelta(minutes=2)
ACTOR = "stripe"


def webhook_secrets():
    """The accepted signing secrets (comma-separated, so a rotation can accept old and new)."""
    raw = current_app.config.get("STRIPE_WEBHOOK_SECRET") or ""
    return [s.strip() for s in raw.split(",") if s.strip()]


def verify_event(payload, header):
    """Return the verified event, trying each secret; raise DomainError(400) otherwise."""
    if not header:
        raise DomainError("Missing Stripe-Signature header.", code="bad_signature")
    if _signed_at(header) > time.time() + TOLERANCE_SECONDS:
        # stripe-python only refuses old timestamps; one far ahead would stretch the replay window.
        raise DomainError("The Stripe signature is invalid or too old.", code="bad_signature")
    for secret in webhook_secrets():
        try:
            return stripe.Webhook.construct_event(payload, header, secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError:
            continue
        except ValueError:
            raise DomainError("The event body is not valid JSON.", code="bad_payload") from None
    raise DomainError("The Stripe signature is invalid or too old.", code="bad_signature")


def _signed_at(header):
    """The `t=` timestamp of a Stripe-Signature header, parsed exactly as stripe-python parses it.

    stripe-python takes the first `t` item and calls int() on it, which also accepts "+170…",
    " 170…" and "1_70…"; reading it the same way means the future check below sees the very
    number the signature check will use (0 when there is none or it is not a number).
    """
    try:
        timestamp, _ = stripe.WebhookSignature._get_timestamp_and_signatures(header, "v1")
    except (ValueError, IndexError, TypeError):
        return 0
    return timestamp


# --- handlers: each takes the event's object (a dict) and answers an outcome slug -------------

def _intent(obj):
    return payments.sync_payment_intent(obj["id"], actor=ACTOR).outcome


def _session(obj):
    return payments.sync_checkout_session(obj["id"], actor=ACTOR).outcome


def _refunds(obj):
    """charge.refunded / refund.updated / refund.failed: mirror the refunds Stripe holds."""
    pi_id = obj.get("payment_intent")
    if isinstance(pi_id, dict):
        pi_id = pi_id.get("id")
    if not pi_id and obj.get("object") == "refund" and obj.get("charge"):
        charge = payments.stripe_api().v1.charges.retrieve(
            obj["charge"] if isinstance(obj["charge"], str) else obj["charge"]["id"])
        pi_id = getattr(charge, "payment_intent", None)
    payment = payments.payment_for_intent_id(pi_id)
    if payment is None:
        return "unknown_payment"
    return payments.sync_refunds(payment, actor=ACTOR)


def _dispute(obj):
    """A dispute needs people: record it in the audit log and the error log for staff."""
    payment = payments.payment_for_intent_id(obj.get("payment_intent"))
    if payment is None:
        return "unknown_payment"
    payments._audit(ACTOR, "payment.dispute_opened", f"Payment:{payment.id}", outcome="needs_attention")
    log.warning("Stripe dispute %s opened on payment %s", obj.get("id"), payment.id)
    return "dispute_recorded"


HANDLERS = {
    "payment_intent.succeeded": _intent,
    "payment_intent.payment_failed": _intent,
    "payment_intent.canceled": _intent,
    "payment_intent.processing": _intent,
    "checkout.session.completed": _session,
    "checkout.session.async_payment_succeeded": _session,
    "checkout.session.async_payment_failed": _session,
    "checkout.session.expired": _session,
    "charge.refunded": _refunds,
    "refund.updated": _refunds,
    "refund.failed": _refunds,
    "charge.dispute.created": _dispute,
}


# --- store once ---------------------------------------------------------------------------------

def _claim(event, object_id, now):
    """Store the event, or take over a failed/stale earlier delivery of it.

    Returns the StripeEvent to process, "done" for a processed duplicate, "busy" when another
    delivery is processing it right now.
    """
    created = datetime.fromtimestamp(event.created, timezone.utc) if getattr(event, "created", None) else None
    record = StripeEvent(event_id=event.id, type=event.type, object_id=object_id, created=created,
                         received_at=now, outcome="processing")
    try:
        record.save(force_insert=True)
        return record
    except NotUniqueError:
        pass
    existing = StripeEvent.objects(event_id=event.id).first()
    if existing is None or existing.processed_at is not None:
        return "done"
    received = existing.received_at.replace(tzinfo=timezone.utc) if existing.received_at.tzinfo is None \
        else existing.received_at
    if existing.outcome.startswith("failed") or received <= now - STALE_AFTER:
        taken = StripeEvent.objects(id=existing.id, outcome=existing.outcome, processed_at=None,
                                    received_at=existing.received_at).update_one(
            set__outcome="processing", set__received_at=now)
        if taken:
            existing.reload()
            return existing
    return "busy"


def _mark(record, outcome, processed):
    try:
        updates = {"set__outcome": outcome[:200]}
        if processed:
            updates["set__processed_at"] = utcnow()
        StripeEvent.objects(id=record.id).update_one(**updates)
    except Exception:  # MongoDB itself may be what failed; a stale record is taken over later
        log.exception("could not mark Stripe event %s as %s", record.event_id, outcome)


@bp.post("/stripe")
def receive_stripe_event():
    """Verify, store once, and hand the event to the payment rules."""
    event = verify_event(request.get_data(), request.headers.get("Stripe-Signature"))
    data_object = event.data.object if getattr(event, "data", None) else None
    obj = data_object.to_dict() if hasattr(data_object, "to_dict") else (data_object or {})
    claimed = _claim(event, obj.get("id"), utcnow())
    if claimed == "done":
        return jsonify(received=True, duplicate=True)
    if claimed == "busy":
        return error_response(409, "This event is being processed; deliver it again later.",
                              "event_in_progress", headers={"Retry-After": "30"})
    handler = HANDLERS.get(event.type)
    if handler is None or not obj.get("id"):
        _mark(claimed, "ignored", processed=True)
        return jsonify(received=True, handled=False)
    try:
        outcome = handler(obj)
    except Exception as exc:
        if payments.is_transient(exc):
            log.warning("Stripe event %s (%s) failed transiently: %s", event.id, event.type, exc)
            _mark(claimed, "failed: transient", processed=False)
            return error_response(503, "A service the clinic depends on is not answering; "
                                       "the event will be processed when Stripe retries.",
                                  headers={"Retry-After": "30"})
        log.exception("Stripe event %s (%s) could not be processed", event.id, event.type)
        _mark(claimed, f"failed: {exc.__class__.__name__}", processed=False)
        return error_response(500, "The event could not be processed; it will be processed "
                                   "when Stripe retries.")
    _mark(claimed, outcome or "processed", processed=True)
    return jsonify(received=True, outcome=outcome)
