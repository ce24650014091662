"""Payments: one Payment per appointment, mirrored from Stripe, and the sync that moves money state.

Rules of this module (every door calls them: the portal, the webhook, the sweeper, staff actions):

- Money state only moves from an object fetched from Stripe by its id (`sync_payment_intent`,
  `sync_checkout_session`). An event's payload is a hint of *which* object changed, never proof.
- Every transition is a guarded single-document update: the Payment moves only from the statuses
  listed in `ALLOWED_FROM`, the Appointment only from `held`/`expired` to `confirmed`. Running a
  sync twice, or for events that arrive out of order, changes nothing twice.
- A payment that succeeds after its hold lapsed confirms the appointment when its time can still
  be secured (its own claims are intact, or `claim_time` can take the time again); otherwise the
  payment is refunded in full and the appointment is marked `expired` with the reason.
- A refund is first reserved on the Payment (a guarded update that keeps `amount_refunded` at or
  under the amount paid), then sent to Stripe with the key `refund:<payment_id>:<n>`, `n` being
  the refund's position on the Payment. A refund that Stripe could not be reached for stays
  `pending` and the sweeper sends it again with the same key (looking for it first, because
  localstripe ignores idempotency keys).
- Client secrets are handed to the patient's browser and never stored.
- One live way to pay per Payment: the doors only start the configured `PAYMENT_FLOW` (another
  flow answers 409 `wrong_payment_flow`), and when the configuration changed while a payment was
  under way, starting the new flow first stops the old one (the Checkout Session is expired, our
  own PaymentIntent cancelled; if it had already taken the money, the payment is settled instead).
- A payment never confirms a time the provider can no longer give: an appointment that has
  started, or whose time now falls in the provider's time off or outside their hours, is refunded
  in full like a time someone else took.
"""

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps

import pymongo.errors
import redis
import stripe
from bson import ObjectId
from flask import current_app, g, has_request_context
from mongoengine import NotUniqueError
from redis.exceptions import LockError

from models.audit import record_audit
from models.availability import SlotRules, why_not_bookable
from models.booking import (
    _utc,
    claim_time,
    claim_units,
    effective_status,
    release_time,
    schedule_days,
)
from models.catalog import current_catalog
from models.documents import Appointment, Payment, Refund, TimeClaim, TimeOff, utcnow
from models.errors import Conflict, DependencyDown, DomainError, NotFound, ValidationFailed
from models.stores import get_redis, rkey

log = logging.getLogger(__name__)

# Stripe refuses a Checkout Session that expires less than 30 minutes after it is created.
CHECKOUT_MIN_LIFETIME = timedelta(minutes=30)
CHECKOUT_MARGIN = timedelta(minutes=1)
TOKEN_RE = re.compile(r"^tok_[A-Za-z0-9_]{6,64}$")
CONFIRMED_STATUSES = ("confirmed", "checked_in", "completed", "no_show")
# From which statuses a Payment may move to each status. Stripe's object is the truth, so money
# that arrived is always recorded; what never happens is a step back to an earlier state.
ALLOWED_FROM = {
    "pending": ("failed", "canceled"),          # a fresh attempt after a decline or a replacement
    "processing": ("pending", "failed"),
    "failed": ("pending", "processing"),
    "canceled": ("pending", "failed"),
    "succeeded": ("pending", "processing", "failed", "canceled"),
    "refunded": ("succeeded",),
}
LATE_TAKEN_REASON = ("The payment arrived after the hold had expired and the time had been "
                     "booked by someone else; the payment was refunded in full.")
LATE_STARTED_REASON = ("The payment arrived after the appointment's start time; the payment was "
                       "refunded in full.")
LATE_UNAVAILABLE_REASON = ("The payment arrived when the provider was no longer available at that "
                           "time; the payment was refunded in full.")
# Why a paid appointment could not be confirmed: (cancel_reason, outcome) by cause.
UNCONFIRMABLE = {
    "taken": (LATE_TAKEN_REASON, "refunded_time_taken"),
    "started": (LATE_STARTED_REASON, "refunded_started"),
    "unavailable": (LATE_UNAVAILABLE_REASON, "refunded_unavailable"),
}
CANCELLED_BEFORE_PAID_REASON = "appointment cancelled before its payment completed"
PAYMENT_LOCK_SECONDS = 30


class PaymentDeclined(DomainError):
    """The card was declined (402); the appointment stays held and payable."""

    status = 402
    code = "card_declined"


class PaymentUnavailable(DependencyDown):
    """Stripe is not answering (503)."""

    code = "payments_unavailable"


class PaymentProviderError(DomainError):
    """Stripe refused a request we did not expect it to refuse (502)."""

    status = 502
    code = "payment_provider_error"


class RefundFailed(DomainError):
    """Stripe refused a refund for good (the reservation was given back)."""

    status = 502
    code = "refund_failed"


@dataclass
class SyncResult:
    """What one sync did: `outcome` is a short slug kept on the StripeEvent and in reports."""

    outcome: str
    payment: Payment = None


# --- plumbing -----------------------------------------------------------------------------------

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
                                         headers={"Retry-After": "5"}) from None
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


def _ref_id(value):
    """The ObjectId behind a reference (a document, a DBRef or an ObjectId)."""
    return getattr(value, "id", value)


def _audit(actor, action, record, outcome="ok"):
    request_id = g.get("request_id", "") if has_request_context() else ""
    try:
        record_audit(actor, action, record=record, outcome=outcome, request_id=request_id)
    except pymongo.errors.PyMongoError:  # the change itself is done; do not undo it for the log
        log.exception("could not write audit event %s %s", action, record)


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


def _move_payment(payment, new_status, now, **extra):
    """Guarded update of a Payment's status; True when this call moved it."""
    if payment.status == new_status:
        return False
    updates = {"set__status": new_status, "set__updated_at": now}
    updates.update({f"set__{k}": v for k, v in extra.items()})
    moved = Payment.objects(id=payment.id, status__in=ALLOWED_FROM[new_status]).update_one(**updates)
    payment.reload()
    return bool(moved)


@contextmanager
def _payment_lock(payment):
    """One payment attempt at a time per Payment (a double click must not confirm twice).

    redis-py's `Lock` (SET NX with a random token, deleted only by its holder): a second attempt
    does not wait but is refused at once, and the lock lapses by itself after PAYMENT_LOCK_SECONDS.
    """
    lock = get_redis().lock(rkey("payment-lock", payment.id), timeout=PAYMENT_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        raise Conflict("A payment for this appointment is already in progress.",
                       code="payment_in_progress")
    try:
        yield
    finally:
        try:
            lock.release()
        except LockError:
            pass  # it lapsed (another attempt may hold it now): nothing of ours to release


# --- starting a payment --------------------------------------------------------------------------

def _check_payable(appointment, now):
    if not appointment.amount:
        raise Conflict("This appointment is free of charge; there is nothing to pay.",
                       code="nothing_to_pay")
    status = effective_status(appointment, now)
    if status == "held":
        return
    if status in CONFIRMED_STATUSES:
        raise Conflict("This appointment is already paid and confirmed.", code="already_paid")
    if status == "expired":
        raise Conflict("The hold on this time has expired. Please book a time again.",
                       code="hold_expired")
    raise Conflict(f"This appointment is {status.replace('_', ' ')} and cannot be paid.",
                   code="not_payable")


def payment_for(appointment, flow, now):
    """The appointment's one Payment, created on first use (a unique index guards the race)."""
    payment = Payment.objects(appointment=appointment.id).first()
    if payment is None:
        payment = Payment(id=ObjectId(), appointment=appointment, patient=appointment.patient,
                          amount=appointment.amount, currency=appointment.currency, status="pending",
                          flow=flow, created_at=now, updated_at=now)
        try:
            payment.save(force_insert=True)
        except NotUniqueError:
            payment = Payment.objects(appointment=appointment.id).first()
    if payment.flow != flow and payment.status in ("pending", "failed", "canceled"):
        Payment.objects(id=payment.id, status__in=("pending", "failed", "canceled")).update_one(
            set__flow=flow, set__updated_at=now)
        payment.reload()
    return payment


def _refuse_if_settled(payment, appointment, actor, now):
    """409 when the payment already went through (after bringing the appointment up to date)."""
    if payment.status in ("succeeded", "refunded"):
        if payment.status == "succeeded":
            settle_paid(payment, actor, now, first_time=False)
        raise Conflict("This appointment is already paid.", code="already_paid")
    if payment.status == "processing":
        raise Conflict("A payment for this appointment is already being processed.",
                       code="payment_processing")


def configured_flow():
    """The payment flow this deployment offers (`PAYMENT_FLOW`): "elements" or "checkout"."""
    return current_app.config.get("PAYMENT_FLOW") or "elements"


def require_flow(flow):
    """409 `wrong_payment_flow` unless `flow` is the configured one.

    A Payment has one live way to pay: a door of the other flow (the Checkout form while the page
    takes cards, a card token while payments go through Checkout) would open a second one.
    """
    if flow != configured_flow():
        raise Conflict("This clinic does not take payments that way; please reload the "
                       "appointment page and pay from there.", code="wrong_payment_flow")


@translate_stripe_errors
def start_payment(appointment, now, actor="system", flow=None):
    """Create or reuse the appointment's Payment and its PaymentIntent or Checkout Session.

    Only the configured flow can be started (`require_flow`). Elements: `{flow, client_secret,
    publishable_key, payment_intent, amount, currency}`. Checkout: `{flow, url, session}`.
    """
    if flow is not None:
        require_flow(flow)
    flow = configured_flow()
    _check_payable(appointment, now)
    payment = payment_for(appointment, flow, now)
    _refuse_if_settled(payment, appointment, actor, now)
    if flow == "checkout":
        return _start_checkout(payment, appointment, actor, now)
    pi = _usable_intent(payment, appointment, actor, now)
    return {"flow": "elements", "client_secret": pi["client_secret"],
            "publishable_key": current_app.config.get("STRIPE_PUBLISHABLE_KEY"),
            "payment_intent": pi["id"], "amount": pi["amount"], "currency": pi["currency"]}


def _intent_params(payment, appointment):
    # localstripe rejects automatic_payment_methods, description and receipt_email; Stripe accepts this.
    return {"amount": appointment.amount, "currency": appointment.currency,
            "payment_method_types": ["card"],
            "metadata": {"appointment_id": str(appointment.id), "payment_id": str(payment.id),
                         "flow": "elements"}}


def _from_checkout(pi, session_intent=None):
    """Whether an intent was created by a Checkout Session: Stripe closes it with its session and
    refuses to cancel it directly (so does the app: it is never reused on the card page)."""
    return pi["id"] == session_intent or (pi.get("metadata") or {}).get("flow") == "checkout"


def _stop_checkout_session(payment, appointment, actor, now):
    """Expire the Payment's Checkout Session before it is paid by card on our page.

    Returns the id of the session's own PaymentIntent (None when it has none): Stripe closes that
    one with the session and refuses to cancel it directly. A session that completed meanwhile is
    synced first, so money it took settles the payment (409 `already_paid`) instead.
    """
    session_id = payment.stripe_checkout_session
    if not session_id:
        return None
    session = _fetch_session(session_id)
    if session is None:
        return None
    if session.get("status") == "open":
        try:
            stripe_api().v1.checkout.sessions.expire(session_id)
        except stripe.InvalidRequestError:
            session = _fetch_session(session_id) or session  # completed while we looked
        else:
            _audit(actor, "payment.checkout_expired", f"Payment:{payment.id}", outcome="flow_changed")
            return _id_of(session.get("payment_intent"))
    if session.get("status") == "complete":
        sync_checkout_session(session_id, actor, now)
        payment.reload()
        _refuse_if_settled(payment, appointment, actor, now)
    return _id_of(session.get("payment_intent"))


def _usable_intent(payment, appointment, actor, now):
    """The Payment's PaymentIntent when it can still take a card; otherwise a new one.

    An intent that was declined, whose 3-D Secure was abandoned, or that was cancelled is
    replaced (and cancelled first, so it can never take money later). Stripe could retry a
    declined intent, localstripe cannot; replacing works on both. A Checkout Session the Payment
    still has open (the flow was switched while it was under way) is expired first.
    """
    client = stripe_api()
    session_intent = _stop_checkout_session(payment, appointment, actor, now)
    old_id = payment.stripe_payment_intent
    key = f"pi-create:{payment.id}"
    if old_id:
        pi = _fetch_intent(old_id)
        if pi is not None:
            if pi["status"] in ("succeeded", "processing", "requires_capture"):
                _apply_intent(payment, pi, actor, now)
                _refuse_if_settled(payment, appointment, actor, now)
            checkout_made = _from_checkout(pi, session_intent)
            if (pi["status"] in ("requires_payment_method", "requires_confirmation")
                    and not pi.get("last_payment_error") and not checkout_made):
                return pi
            if pi["status"] != "canceled" and not checkout_made:
                try:
                    client.v1.payment_intents.cancel(old_id)
                except stripe.InvalidRequestError:
                    # It moved on while we looked (it may have succeeded): the sync decides.
                    sync_payment_intent(old_id, actor, now)
                    payment.reload()
                    _refuse_if_settled(payment, appointment, actor, now)
                    raise Conflict("This payment changed while we were starting a new one; "
                                   "please try again.", code="payment_changed") from None
        key = f"pi-create:{payment.id}:{old_id}"
    created = _obj(client.v1.payment_intents.create(_intent_params(payment, appointment),
                                                    options={"idempotency_key": key}))
    moved = Payment.objects(id=payment.id, stripe_payment_intent=old_id,
                            status__in=("pending", "failed", "canceled")).update_one(
        set__stripe_payment_intent=created["id"], set__status="pending", set__updated_at=now)
    payment.reload()
    if moved:
        return created
    # Someone else replaced it first (a double click): use theirs, and make ours harmless.
    if payment.stripe_payment_intent != created["id"]:
        try:
            client.v1.payment_intents.cancel(created["id"])
        except stripe.StripeError:
            log.warning("could not cancel surplus PaymentIntent %s", created["id"])
    _refuse_if_settled(payment, appointment, actor, now)
    current = _fetch_intent(payment.stripe_payment_intent)
    if current is None:
        raise Conflict("Please try the payment again.", code="payment_changed")
    return current


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


@translate_stripe_errors
def pay_with_token(appointment, token, now, actor="system"):
    """Attach a tokenised card to the PaymentIntent and confirm it on the server.

    Answers `{status, appointment_status, requires_action, client_secret?}`; the browser
    completes a 3-D Secure next action with `stripe.confirmCardPayment(client_secret)`.
    A declined card raises PaymentDeclined (402) and leaves the appointment held and payable.
    """
    require_flow("elements")
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ValidationFailed("The card token is missing or malformed.", fields={"token": "invalid"})
    _check_payable(appointment, now)
    payment = payment_for(appointment, "elements", now)
    _refuse_if_settled(payment, appointment, actor, now)
    client = stripe_api()
    with _payment_lock(payment):
        pi = _usable_intent(payment, appointment, actor, now)
        pm_id = _payment_method_from_token(token)
        # localstripe answers 500 to confirm(payment_method=…): attach first, then confirm.
        client.v1.payment_intents.update(pi["id"], {"payment_method": pm_id},
                                         options={"idempotency_key": f"pi-attach:{pi['id']}:{token}"})
        try:
            client.v1.payment_intents.confirm(pi["id"],
                                              options={"idempotency_key": f"pi-confirm:{pi['id']}:{token}"})
        except stripe.CardError as exc:
            sync_payment_intent(pi["id"], actor, now)  # records the failure; the hold stays
            raise PaymentDeclined(exc.user_message or "Your card was declined.") from None
        result = sync_payment_intent(pi["id"], actor, now)
    fresh = _fetch_intent(pi["id"]) or pi
    appointment.reload()
    answer = {"status": result.payment.status if result.payment else payment.status,
              "intent_status": fresh["status"],
              "appointment_status": effective_status(appointment, now),
              "requires_action": fresh["status"] == "requires_action"}
    if answer["requires_action"]:
        answer["client_secret"] = fresh["client_secret"]
    return answer


# --- Checkout ---------------------------------------------------------------------------------

def checkout_expiry(appointment, now):
    """When the Checkout Session should expire: the hold's end, but never under Stripe's minimum.

    Stripe requires `expires_at` at least 30 minutes ahead; a hold is usually shorter (15
    minutes). We extend the hold to the session's expiry (plus nothing more), so a patient who
    pays on Stripe's page within its lifetime always finds the time still theirs.
    """
    return max(_utc(appointment.hold_expires_at), now + CHECKOUT_MIN_LIFETIME + CHECKOUT_MARGIN)


def _extend_hold(appointment, until, now):
    """Move a live hold's end (and its claims' lapse) to `until`; Conflict when it lapsed."""
    old = _utc(appointment.hold_expires_at)
    if until <= old:
        return
    moved = old > now and Appointment.objects(id=appointment.id, status="held",
                                              hold_expires_at=old).update_one(
        set__hold_expires_at=until, set__updated_at=now)
    if not moved:
        raise Conflict("The hold on this time has expired. Please book a time again.",
                       code="hold_expired")
    TimeClaim._get_collection().update_many(
        {"appointment": appointment.id, "expires_at": {"$ne": None}}, {"$set": {"expires_at": until}})
    appointment.reload()


def _stop_own_intent(payment, appointment, actor, now, session_intent):
    """Cancel a live PaymentIntent we created for the card page before sending the patient to
    Checkout (the flow was switched while it was under way). An intent that already took the
    money settles the payment instead (409 `already_paid`); a Checkout Session's own intent is
    left to its session."""
    pi_id = payment.stripe_payment_intent
    if not pi_id or pi_id == session_intent:
        return
    pi = _fetch_intent(pi_id)
    if pi is None or pi["status"] == "canceled":
        return
    if pi["status"] in ("succeeded", "processing", "requires_capture"):
        _apply_intent(payment, pi, actor, now)
        _refuse_if_settled(payment, appointment, actor, now)
    if _from_checkout(pi):
        return
    try:
        stripe_api().v1.payment_intents.cancel(pi_id)
    except stripe.InvalidRequestError:
        # It moved on while we looked (it may have succeeded): the sync decides.
        sync_payment_intent(pi_id, actor, now)
        payment.reload()
        _refuse_if_settled(payment, appointment, actor, now)
        raise Conflict("This payment changed while we were starting a new one; "
                       "please try again.", code="payment_changed") from None
    _audit(actor, "payment.intent_canceled", f"Payment:{payment.id}", outcome="flow_changed")


def _start_checkout(payment, appointment, actor, now):
    """The Payment's open Checkout Session, or a new one (after stopping any other way to pay)."""
    client = stripe_api()
    old_id = payment.stripe_checkout_session
    key = f"cs-create:{payment.id}"
    session = _fetch_session(old_id) if old_id else None
    session_intent = _id_of(session.get("payment_intent")) if session else None
    _stop_own_intent(payment, appointment, actor, now, session_intent)
    if old_id:
        if session is not None:
            if session.get("status") == "open" and session.get("url"):
                return {"flow": "checkout", "url": session["url"], "session": session["id"]}
            if session.get("status") == "complete":
                sync_checkout_session(session["id"], actor, now)
                payment.reload()
                _refuse_if_settled(payment, appointment, actor, now)
        key = f"cs-create:{payment.id}:{old_id}"
    expires = checkout_expiry(appointment, now)
    _extend_hold(appointment, expires, now)
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    page = f"{base}/portal/appointments/{appointment.id}"
    metadata = {"appointment_id": str(appointment.id), "payment_id": str(payment.id), "flow": "checkout"}
    service = appointment.service
    params = {
        "mode": "payment",
        "payment_method_types": ["card"],
        "line_items": [{"quantity": 1, "price_data": {
            "currency": appointment.currency, "unit_amount": appointment.amount,
            "product_data": {"name": service.name}}}],
        "client_reference_id": str(appointment.id),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "expires_at": int(expires.timestamp()),
        "success_url": f"{page}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{page}?checkout=cancelled",
    }
    session = _obj(client.v1.checkout.sessions.create(params, options={"idempotency_key": key}))
    moved = Payment.objects(id=payment.id, stripe_checkout_session=old_id,
                            status__in=("pending", "failed", "canceled")).update_one(
        set__stripe_checkout_session=session["id"], set__status="pending", set__updated_at=now)
    payment.reload()
    if not moved and payment.stripe_checkout_session != session["id"]:
        current = _fetch_session(payment.stripe_checkout_session)
        if current and current.get("url"):
            return {"flow": "checkout", "url": current["url"], "session": current["id"]}
    return {"flow": "checkout", "url": session["url"], "session": session["id"]}


# --- the sync ----------------------------------------------------------------------------------

def _payment_for_metadata(metadata):
    metadata = metadata or {}
    pid = metadata.get("payment_id")
    if not pid or not ObjectId.is_valid(str(pid)):
        return None
    payment = Payment.objects(id=pid).no_dereference().first()
    if payment is None or str(_ref_id(payment.appointment)) != str(metadata.get("appointment_id")):
        return None
    return payment


def sync_payment_intent(intent, actor="system", now=None):
    """Re-fetch a PaymentIntent and move its Payment and Appointment forward (idempotent)."""
    now = now or utcnow()
    pi = _fetch_intent(_id_of(intent))
    if pi is None:
        return SyncResult("unknown_intent")
    payment = (Payment.objects(stripe_payment_intent=pi["id"]).no_dereference().first()
               or _payment_for_metadata(pi.get("metadata")))
    if payment is None:
        return SyncResult("unknown_payment")
    if payment.stripe_payment_intent != pi["id"]:
        if payment.stripe_payment_intent is None or (
                pi["status"] == "succeeded" and payment.status not in ("succeeded", "refunded")):
            # A Checkout intent seen for the first time, or money on an intent we had replaced:
            # adopt it (money that arrived is never ignored). Never once the Payment is paid: a
            # sync that read it before another made it succeed must not re-point it, or the money
            # of the intent it followed would be kept without a record; the other intent's
            # charge is refunded below instead.
            Payment.objects(id=payment.id, stripe_payment_intent=payment.stripe_payment_intent,
                            status__nin=("succeeded", "refunded")).update_one(
                set__stripe_payment_intent=pi["id"], set__updated_at=now)
            payment.reload()
        if payment.stripe_payment_intent != pi["id"]:
            if pi["status"] == "succeeded":
                _refund_stray_intent(payment, pi, actor, now)
                return SyncResult("duplicate_charge_refunded", payment)
            return SyncResult("stale_intent", payment)
    return _apply_intent(payment, pi, actor, now)


def _apply_intent(payment, pi, actor, now):
    new_status = status_from_intent(pi)
    if new_status == "succeeded" and _amount_mismatch(payment, pi):
        return SyncResult(_refuse_mismatched_money(payment, pi, actor, now), payment)
    moved = _move_payment(payment, new_status, now)
    if moved:
        _audit(actor, f"payment.{new_status}", f"Payment:{payment.id}")
    if payment.status == "succeeded":
        return SyncResult(settle_paid(payment, actor, now, first_time=moved), payment)
    return SyncResult(f"payment_{new_status}" if moved else "unchanged", payment)


def _amount_mismatch(payment, pi):
    """Why the money received differs from what the Payment asks for (Stripe's fulfilment advice), or ""."""
    # A succeeded intent received its whole amount; localstripe leaves `amount_received` out.
    received = pi.get("amount_received") if pi.get("amount_received") is not None else pi.get("amount")
    currency = (pi.get("currency") or "").lower()
    if currency != (payment.currency or "").lower():
        return f"received {received} {currency}, expected {payment.amount} {payment.currency}"
    if received is None or int(received) < payment.amount:
        return f"received {received} {currency}, expected {payment.amount} {payment.currency}"
    return ""


def _refuse_mismatched_money(payment, pi, actor, now):
    """A short or wrong-currency payment: never confirm; refund it in full and flag it for staff."""
    why = _amount_mismatch(payment, pi)
    key = f"refund:{payment.id}:{pi['id']}:mismatch"
    if _find_refund(pi["id"], key) is None:
        stripe_api().v1.refunds.create(
            {"payment_intent": pi["id"], "metadata": {"refund_key": key, "payment_id": str(payment.id)}},
            options={"idempotency_key": key})
        _audit(actor, "payment.refund", f"Payment:{payment.id}", outcome="amount_mismatch")
    flagged = Payment.objects(id=payment.id, flag="").update_one(
        set__flag=f"amount mismatch: {why}; refunded"[:300], set__updated_at=now)
    if payment.status in ALLOWED_FROM["failed"]:
        _move_payment(payment, "failed", now)  # the appointment stays held and payable in full
    payment.reload()
    if flagged:
        _audit(actor, "payment.flagged", f"Payment:{payment.id}", outcome="amount_mismatch")
    return "amount_mismatch_refunded"


def sync_checkout_session(session, actor="system", now=None):
    """Re-fetch a Checkout Session and move its Payment and Appointment forward (idempotent)."""
    now = now or utcnow()
    s = _fetch_session(_id_of(session))
    if s is None:
        return SyncResult("unknown_session")
    payment = (Payment.objects(stripe_checkout_session=s["id"]).no_dereference().first()
               or _payment_for_metadata(s.get("metadata")))
    if payment is None:
        return SyncResult("unknown_payment")
    pi_id = _id_of(s.get("payment_intent"))
    current = payment.stripe_checkout_session == s["id"] and payment.flow == "checkout"
    if pi_id:
        # The intent behind the session is the truth about the money (async methods included).
        # The Payment's current session's intent replaces one left from the card page (cancelled
        # when the flow was switched); an intent of a paid Payment is never replaced.
        if payment.stripe_payment_intent != pi_id and (payment.stripe_payment_intent is None or current):
            Payment.objects(id=payment.id, stripe_payment_intent=payment.stripe_payment_intent,
                            status__nin=("succeeded", "refunded")).update_one(
                set__stripe_payment_intent=pi_id, set__updated_at=now)
            payment.reload()
        return sync_payment_intent(pi_id, actor, now)
    if not current:
        # Replaced by a newer session, or the Payment now follows a PaymentIntent of the card page.
        return SyncResult("stale_session", payment)
    if s.get("status") == "expired":
        new_status = "canceled"
    elif s.get("status") == "complete":
        new_status = "succeeded" if s.get("payment_status") in ("paid", "no_payment_required") else "processing"
    else:
        new_status = "pending"
    moved = _move_payment(payment, new_status, now)
    if moved:
        _audit(actor, f"payment.{new_status}", f"Payment:{payment.id}")
    if payment.status == "succeeded":
        return SyncResult(settle_paid(payment, actor, now, first_time=moved), payment)
    return SyncResult(f"payment_{new_status}" if moved else "unchanged", payment)


def sync_payment(payment, actor="system", now=None):
    """Re-sync whatever Stripe object the Payment follows: its Checkout Session in the Checkout
    flow (which leads on to the session's intent), otherwise its PaymentIntent."""
    if payment.flow == "checkout" and payment.stripe_checkout_session:
        result = sync_checkout_session(payment.stripe_checkout_session, actor, now)
        if result.outcome != "unknown_session" or not payment.stripe_payment_intent:
            return result
    if payment.stripe_payment_intent:
        return sync_payment_intent(payment.stripe_payment_intent, actor, now)
    if payment.stripe_checkout_session:
        return sync_checkout_session(payment.stripe_checkout_session, actor, now)
    return SyncResult("nothing_to_sync", payment)


def _unavailable_because(appt, now):
    """Why the provider can no longer give the appointment its time, whoever holds the claims:
    "started" (its start has passed), "unavailable" (time off over it, buffers included, or it is
    now outside the provider's hours); None when the time can still be given."""
    start = _utc(appt.start)
    if start <= now:
        return "started"
    provider_id = _ref_id(appt.provider)
    block_start, block_end = _utc(appt.block_start), _utc(appt.block_end)
    if TimeOff.objects(provider=provider_id, start__lt=block_end, end__gt=block_start).first():
        return "unavailable"
    catalog = current_catalog()
    if catalog.clinic is None:
        return None
    days, overrides = schedule_days(catalog.schedules.get(provider_id))
    # The appointment's own booked length and buffers; notice, horizon and grid are booking-time
    # policies a paid appointment is not held to again.
    rules = SlotRules(duration=_utc(appt.end) - start,
                      step=timedelta(minutes=catalog.clinic.slot_step_minutes or 15),
                      buffer_before=start - block_start, buffer_after=block_end - _utc(appt.end),
                      min_notice=timedelta(0), horizon=timedelta(days=36500))
    reason = why_not_bookable(tz=catalog.clinic.timezone, days=days, overrides=overrides, time_off=[],
                              busy=[], rules=rules, now=now, start=start)
    return "unavailable" if reason == "outside_hours" else None


def _secure_time(appt, now):
    """Make the appointment's claims permanent; re-claim the time when some lapsed and went.

    Returns False when the time now belongs to someone else. Claims with `expires_at` None can
    never be taken over, so once this returns True the time is the appointment's for good.
    """
    collection = TimeClaim._get_collection()
    units = claim_units(appt.block_start, appt.block_end)
    collection.update_many({"appointment": appt.id}, {"$set": {"expires_at": None}})
    if collection.count_documents({"appointment": appt.id}) == len(units):
        return True
    release_time(appt.id)
    try:
        claim_time(_ref_id(appt.provider), appt.id, appt.block_start, appt.block_end, None, now)
    except Conflict:
        return False
    return True


def settle_paid(payment, actor, now, first_time):
    """Bring the appointment in line with a succeeded payment: confirm it, or give the money back."""
    if payment.status != "succeeded":
        return "unchanged"
    appt = Appointment.objects(id=_ref_id(payment.appointment)).no_dereference().first()
    if appt is None:
        log.error("payment %s has no appointment", payment.id)
        return "appointment_missing"
    record = f"Appointment:{appt.id}"
    if appt.status in CONFIRMED_STATUSES:
        return "already_confirmed"
    decided = [cause for cause, (text, _outcome) in UNCONFIRMABLE.items() if appt.cancel_reason == text]
    if appt.status == "expired" and decided:
        # Decided before (the time could not be given): finish the refund, never confirm after it.
        return _refund_unconfirmable(payment, decided[0], actor, now)
    if appt.status in ("held", "expired"):
        late = appt.status == "expired" or (
            appt.hold_expires_at is not None and _utc(appt.hold_expires_at) <= now)
        cause = _unavailable_because(appt, now)
        if cause is None and _secure_time(appt, now):
            moved = Appointment.objects(id=appt.id, status__in=("held", "expired")).update_one(
                set__status="confirmed", set__updated_at=now, inc__version=1)
            if moved:
                _audit(actor, "appointment.confirm", record, outcome="late_payment" if late else "ok")
                from models.outbox import appointment_confirmed  # confirmation, receipt, reminders

                appointment_confirmed(appt, now, paid=True)
                return "confirmed_late" if late else "confirmed"
            appt.reload()
            if appt.status in CONFIRMED_STATUSES:
                return "already_confirmed"
            release_time(appt.id)  # cancelled meanwhile: the claims we just made must not block
        else:
            cause = cause or "taken"
            text = UNCONFIRMABLE[cause][0]
            moved = Appointment.objects(id=appt.id, status__in=("held", "expired")).update_one(
                set__status="expired", set__updated_at=now, set__cancel_reason=text, inc__version=1)
            appt.reload()
            if moved or appt.status == "expired":
                release_time(appt.id)  # its time goes back to the diary
                _audit(actor, "appointment.expire", record,
                       outcome="time_taken_refunded" if cause == "taken" else f"{cause}_refunded")
                return _refund_unconfirmable(payment, cause, actor, now)
            if appt.status in CONFIRMED_STATUSES:
                return "already_confirmed"
    if appt.status == "cancelled" and first_time:
        # Cancelled while the payment was still on its way: the patient gets it all back.
        refund_payment(payment, reason=CANCELLED_BEFORE_PAID_REASON, actor=actor, now=now)
        return "refunded_cancelled"
    return "unchanged"


def _refund_unconfirmable(payment, cause, actor, now):
    """Refund in full a payment whose appointment could not be confirmed (see UNCONFIRMABLE)."""
    labels = {"taken": "late payment, time taken", "started": "payment after the start time",
              "unavailable": "provider unavailable at that time"}
    refund_payment(payment, reason=labels[cause], actor=actor, now=now)
    return UNCONFIRMABLE[cause][1]


# --- refunds ------------------------------------------------------------------------------------

def refund_payment(payment, amount=None, reason="", actor="system", now=None):
    """Refund `amount` (default: all that is left), never more than was paid; None if nothing left.

    The refund is reserved on the Payment first with a guarded update, so two callers at once
    cannot together refund more than the amount paid, whatever Stripe (or localstripe) allows.
    """
    now = now or utcnow()
    collection = Payment._get_collection()
    for _attempt in range(5):
        payment.reload()
        if payment.status not in ("succeeded", "refunded") or not payment.stripe_payment_intent:
            return None
        left = payment.amount - (payment.amount_refunded or 0)
        want = left if amount is None else min(int(amount), left)
        if want <= 0:
            return None
        index = len(payment.refunds)
        entry = Refund(amount=want, status="pending", created_at=now, reason=reason[:200]).to_mongo()
        reserved = collection.update_one(
            {"_id": payment.id, "amount_refunded": payment.amount_refunded or 0,
             "refunds": {"$size": index}},
            {"$push": {"refunds": entry}, "$inc": {"amount_refunded": want},
             "$set": {"updated_at": now}})
        if reserved.modified_count:
            break
    else:
        raise Conflict("The payment changed while refunding; please try again.", code="refund_busy")
    payment.reload()
    return _send_refund(payment, index, actor, now, retry=False)


def _find_refund(pi_id, key):
    """A refund already made in Stripe with our key (localstripe ignores idempotency keys)."""
    for item in stripe_api().v1.refunds.list({"payment_intent": pi_id, "limit": 100}).data:
        item = _obj(item)  # a StripeObject has no .get(); its metadata neither
        if (item.get("metadata") or {}).get("refund_key") == key:
            return item
    return None


def _send_refund(payment, index, actor, now, retry):
    entry = payment.refunds[index]
    key = f"refund:{payment.id}:{index}"
    collection = Payment._get_collection()
    client = stripe_api()
    try:
        made = _find_refund(payment.stripe_payment_intent, key) if retry else None
        if made is None:
            made = _obj(client.v1.refunds.create(
                {"payment_intent": payment.stripe_payment_intent, "amount": entry.amount,
                 "metadata": {"refund_key": key, "payment_id": str(payment.id)}},
                options={"idempotency_key": key}))
    except stripe.StripeError as exc:
        if is_transient(exc):
            log.warning("refund %s left pending, Stripe unavailable: %s", key, exc)
            raise
        # Refused for good: give the reservation back so the books stay right.
        collection.update_one({"_id": payment.id, f"refunds.{index}.status": "pending"},
                              {"$set": {f"refunds.{index}.status": "failed", "updated_at": now},
                               "$inc": {"amount_refunded": -entry.amount}})
        _audit(actor, "payment.refund", f"Payment:{payment.id}", outcome="refused")
        raise RefundFailed(f"Stripe refused the refund: {exc.user_message or exc}") from None
    status = made.get("status") or "pending"
    update = {"$set": {f"refunds.{index}.stripe_refund": made["id"],
                       f"refunds.{index}.status": status, "updated_at": now}}
    if status in ("failed", "canceled"):
        # Give the reservation back in the same guarded update that leaves `pending`: two callers
        # that both saw this refund fail (a retry racing the first attempt) give it back once.
        update["$inc"] = {"amount_refunded": -entry.amount}
    collection.update_one({"_id": payment.id, f"refunds.{index}.status": "pending"}, update)
    payment.reload()
    _mark_refunded_if_done(payment, now)
    _audit(actor, "payment.refund", f"Payment:{payment.id}", outcome=status)
    return made


def _mark_refunded_if_done(payment, now):
    if payment.status == "succeeded" and (payment.amount_refunded or 0) >= payment.amount:
        _move_payment(payment, "refunded", now)
    elif payment.status == "refunded" and (payment.amount_refunded or 0) < payment.amount:
        # A refund failed after all: the payment is (partly) kept again.
        Payment.objects(id=payment.id, status="refunded").update_one(set__status="succeeded",
                                                                     set__updated_at=now)
        payment.reload()


def retry_pending_refunds(payment, actor="system", now=None, older_than=None):
    """Send again, with the same keys, refunds that were reserved but never reached Stripe
    (only those reserved before `older_than`, so one still on its way is not sent twice)."""
    now = now or utcnow()
    sent = 0
    for index, entry in enumerate(payment.refunds):
        if older_than is not None and entry.created_at and _utc(entry.created_at) > older_than:
            continue
        if entry.status == "pending" and not entry.stripe_refund:
            _send_refund(payment, index, actor, now, retry=True)
            sent += 1
    return sent


def _refund_stray_intent(payment, pi, actor, now):
    """A second intent of a Payment that is already paid succeeded: refund that intent in full."""
    key = f"refund:{payment.id}:{pi['id']}"
    if _find_refund(pi["id"], key) is None:
        stripe_api().v1.refunds.create(
            {"payment_intent": pi["id"], "metadata": {"refund_key": key, "payment_id": str(payment.id)}},
            options={"idempotency_key": key})
        _audit(actor, "payment.refund", f"Payment:{payment.id}", outcome="duplicate_charge")


def sync_refunds(payment, actor="system", now=None):
    """Mirror the refunds Stripe holds for the payment (ours, and any made in Stripe's dashboard)."""
    now = now or utcnow()
    if not payment.stripe_payment_intent:
        return "nothing_to_sync"
    collection = Payment._get_collection()
    changed = 0
    items = stripe_api().v1.refunds.list({"payment_intent": payment.stripe_payment_intent, "limit": 100}).data
    for item in sorted((_obj(i) for i in items), key=lambda r: r.get("created") or 0):
        payment.reload()
        ours = {r.stripe_refund: i for i, r in enumerate(payment.refunds) if r.stripe_refund}
        key = (item.get("metadata") or {}).get("refund_key", "")
        index = ours.get(item["id"])
        if index is None and key.startswith(f"refund:{payment.id}:"):
            suffix = key.rsplit(":", 1)[1]
            index = int(suffix) if suffix.isascii() and suffix.isdigit() and int(suffix) < len(payment.refunds) else None
        status = item.get("status") or "pending"
        if index is None:
            if key.startswith(f"refund:{payment.id}:"):
                continue  # a stray-intent refund: not money of this payment's intent
            # Made outside the app (Stripe's dashboard): record it, guarded like our own.
            counted = status not in ("failed", "canceled")
            entry = Refund(stripe_refund=item["id"], amount=item["amount"], status=status,
                           created_at=now, reason="made in Stripe").to_mongo()
            done = collection.update_one(
                {"_id": payment.id, "refunds.stripe_refund": {"$ne": item["id"]}},
                {"$push": {"refunds": entry}, "$inc": {"amount_refunded": item["amount"] if counted else 0},
                 "$set": {"updated_at": now}})
            changed += done.modified_count
            continue
        entry = payment.refunds[index]
        if entry.status == status and entry.stripe_refund == item["id"]:
            continue
        was_counted = entry.status not in ("failed", "canceled")
        now_counted = status not in ("failed", "canceled")
        done = collection.update_one(
            {"_id": payment.id, f"refunds.{index}.status": entry.status},
            {"$set": {f"refunds.{index}.status": status, f"refunds.{index}.stripe_refund": item["id"],
                      "updated_at": now},
             "$inc": {"amount_refunded": (entry.amount if now_counted else 0) - (entry.amount if was_counted else 0)}})
        changed += done.modified_count
    payment.reload()
    _mark_refunded_if_done(payment, now)
    if changed:
        _audit(actor, "payment.refund_sync", f"Payment:{payment.id}")
    return "refunds_updated" if changed else "unchanged"


def payment_for_intent_id(pi_id):
    """The Payment that follows a PaymentIntent id, or None."""
    if not pi_id:
        return None
    payment = Payment.objects(stripe_payment_intent=pi_id).no_dereference().first()
    if payment is None:
        pi = _fetch_intent(pi_id)
        payment = _payment_for_metadata(pi.get("metadata")) if pi else None
    return payment


def _intent_of_charge_or_refund(object_id):
    """The PaymentIntent id behind a charge (`ch_`) or a refund (`re_`), or None if Stripe has none."""
    client = stripe_api()
    try:
        charge_id = object_id
        if object_id.startswith("re_"):
            refund = _obj(client.v1.refunds.retrieve(object_id))
            pi_id = _id_of(refund.get("payment_intent"))
            if pi_id:
                return pi_id
            charge_id = _id_of(refund.get("charge"))
        if not charge_id:
            return None
        return _id_of(_obj(client.v1.charges.retrieve(charge_id)).get("payment_intent"))
    except stripe.InvalidRequestError as exc:
        if _not_found(exc):
            return None
        raise


@translate_stripe_errors
def resync_object(object_id, actor="system", now=None):
    """Fetch one Stripe object again by its id and apply it (staff's "Re-sync from Stripe").

    Routed on the id's prefix: `pi_` syncs the PaymentIntent, `cs_` the Checkout Session, and a
    charge (`ch_`) or refund (`re_`) mirrors the refunds of the Payment it belongs to. Returns the
    sync's outcome slug. Raises NotFound for an id of another kind, or one that Stripe or the app
    does not know; Stripe not answering is a PaymentUnavailable (503), like everywhere else.
    """
    now = now or utcnow()
    object_id = object_id if isinstance(object_id, str) else ""
    if object_id.startswith("pi_"):
        outcome = sync_payment_intent(object_id, actor, now).outcome
    elif object_id.startswith("cs_"):
        outcome = sync_checkout_session(object_id, actor, now).outcome
    elif object_id.startswith(("ch_", "re_")):
        payment = payment_for_intent_id(_intent_of_charge_or_refund(object_id))
        outcome = sync_refunds(payment, actor, now) if payment is not None else "unknown_payment"
    else:
        raise NotFound("Only payments, Checkout Sessions, charges and refunds can be re-synced "
                       "from Stripe.", code="not_resyncable")
    if outcome in ("unknown_intent", "unknown_session", "unknown_payment"):
        raise NotFound(f"Stripe object {object_id} belongs to no payment of this clinic.",
                       code="stripe_object_unknown")
    return outcome


# --- cancellation -------------------------------------------------------------------------------

def refund_due(appointment, status_before):
    """Whether a cancelled, paid appointment is refunded: always when it was still only held
    (the patient never had a confirmed booking), otherwise under its service's refund rule."""
    if status_before == "held":
        return True
    service = Appointment.objects(id=appointment.id).first().service
    return getattr(service, "refund_rule", "full") == "full"


def after_cancellation(appointment, now, by_staff=False, status_before=None, actor=None):
    """Called by `booking.cancel` once an appointment is cancelled: settle its money.

    A paid appointment is refunded (never above what was paid) when its service's rule says so;
    an unpaid one has its PaymentIntent / Checkout Session stopped so it cannot take money later
    (if it had just succeeded, the sync refunds it). Stripe being down leaves a pending refund
    or a pending payment that the sweeper finishes; the cancellation itself stands.
    """
    payment = Payment.objects(appointment=appointment.id).no_dereference().first()
    if payment is None:
        return None
    actor = actor or ("staff" if by_staff else "system")
    try:
        if payment.status in ("pending", "failed", "processing"):
            _stop_remote(payment)
            return sync_payment(payment, actor, now).outcome
        if payment.status == "succeeded" and refund_due(appointment, status_before):
            refund_payment(payment, reason="appointment cancelled", actor=actor, now=now)
            return "refunded"
    except (stripe.StripeError, DomainError, pymongo.errors.PyMongoError, redis.RedisError) as exc:
        log.warning("payment %s: settling the cancellation is left to the sweeper: %s", payment.id, exc)
        return "deferred"
    return None


def _stop_remote(payment):
    """Cancel the PaymentIntent, or expire the Checkout Session, when Stripe still allows it."""
    client = stripe_api()
    if payment.stripe_checkout_session:
        try:
            client.v1.checkout.sessions.expire(payment.stripe_checkout_session)
        except stripe.InvalidRequestError:
            pass  # already complete or expired: the sync that follows reads which
    if payment.stripe_payment_intent:
        try:
            client.v1.payment_intents.cancel(payment.stripe_payment_intent)
        except stripe.InvalidRequestError:
            pass  # already succeeded or cancelled: the sync that follows reads which


def stop_and_sync(payment, actor="system", now=None):
    """Stop the payment at Stripe, then re-sync it (the sweeper's step before expiring a hold)."""
    _stop_remote(payment)
    return sync_payment(payment, actor, now)


# Pages (and scripts polling them) re-fetch one payment from Stripe at most this often a minute;
# past that they show what we know, and the webhook still moves the payment at once.
PAGE_REFETCHES_PER_MINUTE = 20


def _refetch_allowed(payment):
    """True for the first PAGE_REFETCHES_PER_MINUTE re-fetches of a payment in each minute."""
    key = rkey("payment-refetch", payment.id)
    pipe = get_redis().pipeline(transaction=True)
    pipe.set(key, 0, ex=60, nx=True)
    pipe.incr(key)
    return pipe.execute()[1] <= PAGE_REFETCHES_PER_MINUTE


def page_state(appointment, now, actor="system"):
    """The payment as the appointment page shows it, re-synced from Stripe while it is under way.

    The page never trusts a redirect: after Stripe.js or Checkout sends the patient back, this
    re-fetch is what moves the state (the webhook may not have arrived yet). Stripe not answering
    only means the page shows what we knew.
    """
    payment = Payment.objects(appointment=appointment.id).no_dereference().first()
    if payment is not None and payment.status in ("pending", "processing", "failed") and (
            payment.stripe_payment_intent or payment.stripe_checkout_session) and _refetch_allowed(payment):
        try:
            sync_payment(payment, actor, now)
            payment.reload()
            appointment.reload()
        except (stripe.StripeError, DomainError) as exc:
            log.warning("payment %s: page re-sync failed: %s", payment.id, exc)
    return payment
