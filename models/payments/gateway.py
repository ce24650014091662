"""The gateway to Stripe: the only module of the domain that imports `stripe`.

It holds the client, the fetches by id, the translation of Stripe's exceptions into the contract's
answers, and the localstripe quirks (card tokens, idempotency keys it ignores). The other payment
modules catch Stripe's exceptions under the names re-exported here.
"""

import logging
from functools import wraps

import pymongo.errors
import redis
import stripe
from flask import current_app
from stripe import CardError, InvalidRequestError, StripeError  # noqa: F401 — for the other modules

from models.errors import DependencyDown, DomainError

log = logging.getLogger("models.payments")


class PaymentDeclined(DomainError):
    """The card was declined; the appointment stays held and payable."""

    code = "card_declined"


class PaymentUnavailable(DependencyDown):
    """Stripe is not answering."""

    code = "payments_unavailable"


class PaymentProviderError(DomainError):
    """Stripe refused a request we did not expect it to refuse."""

    code = "payment_provider_error"


def stripe_api():
    """The app's StripeClient (explicit retries and timeouts, `STRIPE_API_BASE` honoured)."""
    return current_app.extensions["stripe"].client


def is_transient(exc):
    """True for failures worth retrying: a dependency not answering, not a refusal."""
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    if isinstance(exc, stripe.StripeError) and (exc.http_status or 0) >= 500:
        return True
    if isinstance(exc, (pymongo.errors.ConnectionFailure, pymongo.errors.NetworkTimeout,
                        pymongo.errors.ServerSelectionTimeoutError)):
        return True
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError))


def translate_stripe_errors(func):
    """Turn Stripe's exceptions into the contract's answers for the doors (402/503/502)."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except stripe.CardError as exc:
            raise PaymentDeclined(exc.user_message or "Your card was declined.") from None
        except stripe.StripeError as exc:
            if is_transient(exc):
                log.warning("Stripe unavailable: %s", exc)
                raise PaymentUnavailable("Card payments are not available right now; your time is "
                                         "still held. Please try again in a moment.",
                                         retry_after=5) from None
            log.error("Stripe refused a request: %s", exc)
            raise PaymentProviderError("The payment provider refused the request; nothing was "
                                       "charged. Please try again or call the clinic.") from None

    return wrapper


def _obj(value):
    """A Stripe object (or a plain dict) as a plain dict."""
    if value is None or isinstance(value, dict):
        return value
    return value.to_dict()


def _id_of(value):
    """The id of a Stripe object given as an id, a dict or a StripeObject."""
    if value is None or isinstance(value, str):
        return value
    return value["id"] if isinstance(value, dict) else value.id


def _not_found(exc):
    return isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404


def _fetch_intent(pi_id):
    try:
        return _obj(stripe_api().v1.payment_intents.retrieve(pi_id))
    except stripe.InvalidRequestError as exc:
        if _not_found(exc):
            return None
        raise


def _fetch_session(session_id):
    try:
        return _obj(stripe_api().v1.checkout.sessions.retrieve(session_id))
    except stripe.InvalidRequestError as exc:
        if _not_found(exc):
            return None
        raise


def status_from_intent(pi):
    """Our Payment status for a PaymentIntent's state."""
    status = pi.get("status")
    if status == "succeeded":
        return "succeeded"
    if status in ("processing", "requires_capture"):
        return "processing"
    if status == "canceled":
        return "canceled"
    if status == "requires_payment_method" and pi.get("last_payment_error"):
        return "failed"
    return "pending"


def _payment_method_from_token(token):
    """A payment method for a card token from Stripe.js `createToken`.

    Stripe turns the token into a PaymentMethod. localstripe's PaymentMethod only takes raw card
    numbers (it answers 400 to `card[token]`); there the token's Card is itself a valid
    `payment_method` for a PaymentIntent, so we fall back to it.
    """
    client = stripe_api()
    try:
        pm = client.v1.payment_methods.create({"type": "card", "card": {"token": token}},
                                              options={"idempotency_key": f"pm-create:{token}"})
        return pm.id
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 400:
            raise
        tok = client.v1.tokens.retrieve(token)
        card = getattr(tok, "card", None)
        if card is None:
            raise
        return card.id


def _find_refund(pi_id, key):
    """A refund already made in Stripe with our key (localstripe ignores idempotency keys)."""
    for item in stripe_api().v1.refunds.list({"payment_intent": pi_id, "limit": 100}).data:
        item = _obj(item)  # a StripeObject has no .get(); its metadata neither
        if (item.get("metadata") or {}).get("refund_key") == key:
            return item
    return None
