"""POST /webhooks/stripe: verify the signature on the raw body, then hand the event to the inbox.

- Verification (this door's one job of its own): every configured secret is tried (a rotation
  accepts old and new), with a 300 s tolerance; a missing, forged, stale or far-future signature
  answers 400 and stores nothing. The door imports `stripe` for this only; the domain reaches
  Stripe through `models.payments.gateway`.
- Everything after it is `models.payments.inbox.receive_event` (store once, dispatch, re-fetch,
  audit), whose results answer: 200 `{received, outcome}` when handled, 200 `{received,
  duplicate}` for a processed redelivery, 200 `{received, handled: false}` for a type not handled,
  409 `event_in_progress` (Retry-After) while another delivery processes it, 503 (Retry-After) when
  a dependency did not answer and 500 for any other failure, both left for Stripe's retry.
"""

import time

import stripe
from flask import Blueprint, current_app, jsonify, request

from models.payments.inbox import receive_event
from models.errors import DomainError

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


@bp.post("/stripe")
def receive_stripe_event():
    """Verify, then hand the event to the payments' inbox and answer what it did."""
    event = verify_event(request.get_data(), request.headers.get("Stripe-Signature"))
    data_object = event.data.object if getattr(event, "data", None) else None
    obj = data_object.to_dict() if hasattr(data_object, "to_dict") else (data_object or {})
    # EventInProgress (409), EventDeferred (503) and EventFailed (500) answer through
    # web.errors like every domain error, with Retry-After where Stripe should come back later.
    receipt = receive_event(event.id, event.type, obj, created=getattr(event, "created", None))
    if receipt.status == "duplicate":
        return jsonify(received=True, duplicate=True)
    if receipt.status == "ignored":
        return jsonify(received=True, handled=False)
    return jsonify(received=True, outcome=receipt.outcome)
