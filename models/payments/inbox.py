"""The Stripe event inbox: each verified event stored once, handed to the sync, its outcome kept.

- Store once: the event id is unique. A redelivery of a processed event does nothing. An event whose
  processing failed (or whose worker died: "processing" for more than `STALE_AFTER`) is taken over
  by the next delivery; one still being processed is refused (`EventInProgress`), so Stripe
  delivers it again later.
- Handling never trusts the payload: handlers take the object's id and the sync re-fetches it from
  Stripe. Transitions there are guarded and idempotent, so duplicates and out-of-order events
  change nothing twice. Changes are audited with the actor "stripe".
- A failure marks the event failed, so Stripe's retry is processed: `EventDeferred` when a
  dependency (MongoDB, Redis, Stripe) did not answer, `EventFailed` otherwise. Unhandled types are
  stored as "ignored".

The webhook door verifies the signature and turns these results into HTTP answers.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from mongoengine import NotUniqueError

from models.clock import as_utc, utcnow
from models.errors import Conflict, DependencyDown, DomainError
from models.payments.documents import StripeEvent
from models.payments.gateway import _id_of, is_transient
from models.payments.ledger import _audit, _close_dispute, _mark_disputed, log
from models.payments.refunds import sync_refunds
from models.payments.sync import (
    _intent_of_charge_or_refund,
    payment_for_intent_id,
    sync_checkout_session,
    sync_payment_intent,
)
from models.payments.cards import sync_setup_intent, sync_setup_session

STALE_AFTER = timedelta(minutes=2)
ACTOR = "stripe"
# Stripe is told to deliver again after this many seconds (a busy or failed delivery).
RETRY_AFTER = 30


class EventInProgress(Conflict):
    """Another delivery of this event is being processed right now."""

    code = "event_in_progress"


class EventDeferred(DependencyDown):
    """A service the handling needs did not answer; the event is left for Stripe's retry."""


class EventFailed(DomainError):
    """The handling failed for another reason; the event is left for Stripe's retry."""

    code = "internal_error"


@dataclass
class EventReceipt:
    """What the inbox did with an event: `duplicate`, `ignored`, or `handled` with its outcome."""

    status: str
    outcome: str = ""


# --- handlers: each takes the event's object (a dict) and answers an outcome slug -------------

def _intent(obj, now):
    return sync_payment_intent(obj["id"], actor=ACTOR, now=now).outcome


def _session(obj, now):
    # No-show protection: a Checkout Session in `setup` mode saved a card, it took no money.
    if obj.get("mode") == "setup":
        return sync_setup_session(obj["id"], actor=ACTOR, now=now) or "ignored"
    return sync_checkout_session(obj["id"], actor=ACTOR, now=now).outcome


def _setup_intent(obj, now):
    return sync_setup_intent(obj["id"], actor=ACTOR, now=now)


def _refunds(obj, now):
    """charge.refunded / refund.updated / refund.failed: mirror the refunds Stripe holds."""
    pi_id = _id_of(obj.get("payment_intent"))
    if not pi_id and obj.get("object") == "refund" and obj.get("charge"):
        pi_id = _intent_of_charge_or_refund(_id_of(obj["charge"]))  # the charge, fetched from Stripe
    payment = payment_for_intent_id(pi_id)
    if payment is None:
        return "unknown_payment"
    return sync_refunds(payment, actor=ACTOR, now=now)


def _disputed_payment(obj):
    """The Payment a dispute object is about: by its intent, or by its charge (asked of Stripe)."""
    pi_id = _id_of(obj.get("payment_intent"))
    if not pi_id and obj.get("charge"):
        pi_id = _intent_of_charge_or_refund(_id_of(obj["charge"]))
    return payment_for_intent_id(pi_id)


def _dispute(obj, now):
    """charge.dispute.created: the patient's bank disputes a charge (a visit's, a deposit's or a fee's).

    The ledger marks the Payment disputed (amount and date), so staff see "Disputed" on the home
    page, the Payments list and the patient's page; an audit event and a log warning record it too.
    The dispute's amount, reason and date come from the signed event (localstripe has no disputes to
    fetch); the Payment is found from our own records by its intent (or its charge, through Stripe).
    """
    payment = _disputed_payment(obj)
    if payment is None:
        return "unknown_payment"
    amount = obj.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        amount = payment.amount  # no usable amount: the whole payment is in question
    created = obj.get("created")
    opened = datetime.fromtimestamp(created, timezone.utc) if isinstance(created, int) and created > 0 else now
    reason = obj.get("reason") if isinstance(obj.get("reason"), str) else ""
    if not _mark_disputed(payment, obj["id"], amount, reason, opened, now):
        return "dispute_already_recorded"
    _audit(ACTOR, "payment.dispute_opened", f"Payment:{payment.id}", outcome="needs_attention")
    log.warning("Stripe dispute %s opened on payment %s", obj.get("id"), payment.id)
    return "dispute_recorded"


def _dispute_closed(obj, now):
    """charge.dispute.closed: the bank decided. Won, the money stays the clinic's; lost, it went back
    to the patient. Either way the dispute leaves staff's "needs attention" list and the payment's
    pages say how it ended; a closing for a dispute never recorded opens and closes it at once."""
    payment = _disputed_payment(obj)
    if payment is None:
        return "unknown_payment"
    if payment.dispute is None or payment.dispute.stripe_dispute != str(obj["id"])[:100]:
        _dispute(obj, now)  # the opening event was lost or came after: record it first
        payment.reload()
    outcome = obj.get("status") if isinstance(obj.get("status"), str) else ""
    if not _close_dispute(payment, obj["id"], outcome, now, now):
        return "dispute_already_closed"
    _audit(ACTOR, "payment.dispute_closed", f"Payment:{payment.id}", outcome=outcome or "closed")
    return f"dispute_{outcome}" if outcome in ("won", "lost") else "dispute_closed"


HANDLERS = {
    "payment_intent.succeeded": _intent,
    "payment_intent.payment_failed": _intent,
    "payment_intent.canceled": _intent,
    "payment_intent.processing": _intent,
    "checkout.session.completed": _session,
    "checkout.session.async_payment_succeeded": _session,
    "checkout.session.async_payment_failed": _session,
    "checkout.session.expired": _session,
    "setup_intent.succeeded": _setup_intent,
    "charge.refunded": _refunds,
    "refund.updated": _refunds,
    "refund.failed": _refunds,
    "charge.dispute.created": _dispute,
    "charge.dispute.closed": _dispute_closed,
}


# --- store once ---------------------------------------------------------------------------------

def _claim(event_id, event_type, object_id, created, now):
    """Store the event, or take over a failed/stale earlier delivery of it.

    Returns the StripeEvent to process, "done" for a processed duplicate, "busy" when another
    delivery is processing it right now.
    """
    created = datetime.fromtimestamp(created, timezone.utc) if created else None
    record = StripeEvent(event_id=event_id, type=event_type, object_id=object_id, created=created,
                         received_at=now, outcome="processing")
    try:
        record.save(force_insert=True)
        return record
    except NotUniqueError:
        pass
    existing = StripeEvent.objects(event_id=event_id).first()
    if existing is None or existing.processed_at is not None:
        return "done"
    if existing.outcome.startswith("failed") or as_utc(existing.received_at) <= now - STALE_AFTER:
        # Guarded on what we read: of two deliveries taking it over at once, one wins.
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


def receive_event(event_id, event_type, obj, created=None, now=None):
    """Store a verified Stripe event once and hand it to the sync; returns an EventReceipt.

    `obj` is the event's object as a dict (only its id and the ids it names are used). Raises
    EventInProgress when another delivery is processing it, EventDeferred (a dependency did not
    answer) or EventFailed (anything else) when handling failed and Stripe's retry should do it.
    """
    now = now or utcnow()
    obj = obj or {}
    claimed = _claim(event_id, event_type, obj.get("id"), created, now)
    if claimed == "done":
        return EventReceipt("duplicate")
    if claimed == "busy":
        raise EventInProgress("This event is being processed; deliver it again later.",
                              retry_after=RETRY_AFTER)
    handler = HANDLERS.get(event_type)
    if handler is None or not obj.get("id"):
        _mark(claimed, "ignored", processed=True)
        return EventReceipt("ignored")
    try:
        outcome = handler(obj, now)
    except Exception as exc:
        if is_transient(exc):
            log.warning("Stripe event %s (%s) failed transiently: %s", event_id, event_type, exc)
            _mark(claimed, "failed: transient", processed=False)
            raise EventDeferred("A service the clinic depends on is not answering; the event will "
                                "be processed when Stripe retries.", retry_after=RETRY_AFTER) from exc
        log.exception("Stripe event %s (%s) could not be processed", event_id, event_type)
        _mark(claimed, f"failed: {exc.__class__.__name__}", processed=False)
        raise EventFailed("The event could not be processed; it will be processed when Stripe "
                          "retries.") from exc
    _mark(claimed, outcome or "processed", processed=True)
    return EventReceipt("handled", outcome)
