"""POST /webhooks/stripe: verify the signature on the raw body, store each event once."""

import logging

import stripe
from flask import Blueprint, current_app, jsonify, request
from mongoengine import NotUniqueError

from models.documents import StripeEvent, utcnow
from models.errors import DomainError

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
TOLERANCE_SECONDS = 300


def webhook_secrets():
    """The accepted signing secrets (comma-separated, so a rotation can accept old and new)."""
    raw = current_app.config.get("STRIPE_WEBHOOK_SECRET") or ""
    return [s.strip() for s in raw.split(",") if s.strip()]


def verify_event(payload, header):
    """Return the verified event, trying each secret; raise DomainError(400) otherwise."""
    if not header:
        raise DomainError("Missing Stripe-Signature header.", code="bad_signature")
    for secret in webhook_secrets():
        try:
            return stripe.Webhook.construct_event(payload, header, secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError:
            continue
        except ValueError:
            raise DomainError("The event body is not valid JSON.", code="bad_payload") from None
    raise DomainError("The Stripe signature is invalid or too old.", code="bad_signature")


@bp.post("/stripe")
def receive_stripe_event():
    """Verify, store once, and hand the event to the payment rules."""
    event = verify_event(request.get_data(), request.headers.get("Stripe-Signature"))
    data_object = event.data.object if getattr(event, "data", None) else None
    record = StripeEvent(event_id=event.id, type=event.type,
                         object_id=getattr(data_object, "id", None), received_at=utcnow())
    try:
        record.save(force_insert=True)
    except NotUniqueError:
        return jsonify(received=True, duplicate=True)
    # Handling of the event types arrives with the payment rules; until then it is only stored.
    StripeEvent.objects(id=record.id).update_one(set__outcome="stored", set__processed_at=utcnow())
    return jsonify(received=True)
