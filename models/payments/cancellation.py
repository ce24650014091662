"""After a cancellation: refund a paid appointment under its service's rule, or stop its payment."""

import pymongo.errors
import redis

from models.booking import hooks
from models.booking.cancellation import cancellation_terms
from models.booking.documents import Appointment
from models.clock import utcnow
from models.errors import DomainError
from models.payments.documents import UPFRONT_KINDS, Payment
from models.payments.fees import late_cancel_fee
from models.payments.gateway import InvalidRequestError, StripeError, stripe_api
from models.payments.ledger import log
from models.payments.refunds import refund_payment
from models.payments.sync import sync_payment


def refund_due(appointment, status_before, now=None):
    """Whether a cancelled, paid appointment is refunded: always when it was still only held
    (the patient never had a confirmed booking), otherwise under its service's refund rule."""
    # The service as stored now (the caller's copy may be older); the rule is booking's
    # `cancellation_terms`, the same the booking page states before the patient books.
    stored = Appointment.objects(id=appointment.id).first()
    return cancellation_terms(stored, now or utcnow(), status=status_before).refund == "full"


def after_cancellation(appointment, now, by_staff=False, status_before=None, actor=None, refund_amount=None):
    """Called by `booking.cancel` once an appointment is cancelled: settle its money.

    A paid appointment is refunded (never above what was paid) when its service's rule says so;
    an unpaid one has its PaymentIntent / Checkout Session stopped so it cannot take money later
    (if it had just succeeded, the sync refunds it). Stripe being down leaves a pending refund
    or a pending payment that the sweeper finishes; the cancellation itself stands. When staff
    decided the refund (`refund_amount`, minor units, 0 for none) that amount is refunded instead.
    """
    payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).no_dereference().first()
    actor = actor or ("staff" if by_staff else "system")
    # No-show protection: a patient's cancellation inside the window costs the agreed late fee,
    # first out of what was paid online (so only the rest of that is refunded), the remainder
    # charged to the card on file. Never on the clinic's (staff's) cancellation.
    fee = 0 if by_staff else cancellation_terms(Appointment.objects(id=appointment.id).first(), now,
                                                status=status_before).fee
    if payment is None:
        return _late_fee(appointment, now, actor) if fee else None
    try:
        if payment.status in ("pending", "failed", "processing"):
            _stop_remote(payment)
            return sync_payment(payment, actor, now).outcome
        if refund_amount is not None:  # staff decided the refund (issue 26); staff cancels carry no fee
            if payment.status == "succeeded" and refund_amount > 0:
                refund_payment(payment, amount=refund_amount, reason="appointment cancelled by the clinic",
                               actor=actor, now=now)
                return "refunded"
            return None
        if payment.status == "succeeded" and fee:
            kept = min(fee, payment.amount - (payment.amount_refunded or 0))
            if payment.amount - (payment.amount_refunded or 0) - kept > 0 and refund_due(appointment, status_before, now):
                refund_payment(payment, amount=payment.amount - (payment.amount_refunded or 0) - kept,
                               reason="appointment cancelled late: the late-cancellation fee is kept",
                               actor=actor, now=now)
            _late_fee(appointment, now, actor)
            return "late_fee"
        if payment.status == "succeeded" and refund_due(appointment, status_before, now):
            refund_payment(payment, reason="appointment cancelled", actor=actor, now=now)
            return "refunded"
    except (StripeError, DomainError, pymongo.errors.PyMongoError, redis.RedisError) as exc:
        log.warning("payment %s: settling the cancellation is left to the sweeper: %s", payment.id, exc)
        return "deferred"
    return None


def _late_fee(appointment, now, actor):
    """Charge the late-cancellation fee (what was paid online counts towards it); errors wait for the sweep."""
    try:
        late_cancel_fee(appointment, now, actor)
    except (StripeError, DomainError, pymongo.errors.PyMongoError, redis.RedisError) as exc:
        log.warning("appointment %s: late fee left to the sweeper: %s", appointment.id, exc)
        return "deferred"
    return "late_fee"


def _stop_remote(payment):
    """Cancel the PaymentIntent, or expire the Checkout Session, when Stripe still allows it."""
    client = stripe_api()
    if payment.stripe_checkout_session:
        try:
            client.v1.checkout.sessions.expire(payment.stripe_checkout_session)
        except InvalidRequestError:
            pass  # already complete or expired: the sync that follows reads which
    if payment.stripe_payment_intent:
        try:
            client.v1.payment_intents.cancel(payment.stripe_payment_intent)
        except InvalidRequestError:
            pass  # already succeeded or cancelled: the sync that follows reads which


def stop_and_sync(payment, actor="system", now=None):
    """Stop the payment at Stripe, then re-sync it (the sweeper's step before expiring a hold)."""
    _stop_remote(payment)
    return sync_payment(payment, actor, now)


# booking.cancel tells its subscribers; importing this module subscribes (models/__init__.py does).
hooks.on_cancel(after_cancellation)
