"""The sync: one path that re-fetches a PaymentIntent or Checkout Session and applies it (idempotent)."""

from bson import ObjectId

from models.audit import audited
from models.clock import utcnow
from models.errors import DomainError, NotFound
from models.payments.documents import FEE_KINDS, UPFRONT_KINDS, Payment
from models.payments.gateway import (
    InvalidRequestError,
    StripeError,
    _fetch_intent,
    _fetch_session,
    _id_of,
    _not_found,
    _obj,
    status_from_intent,
    stripe_api,
    translate_stripe_errors,
)
from models.payments.ledger import SyncResult, _audit, _move_payment, _ref_id, course_followers, log, may_move
from models.payments.refunds import _refund_stray_intent, sync_refunds
from models.payments.settlement import _amount_mismatch, _refuse_mismatched_money, settle_fee, settle_paid
from models import ratelimits
from models.ratelimits import Limit


def _payment_for_metadata(metadata):
    metadata = metadata or {}
    pid = metadata.get("payment_id")
    if not pid or not ObjectId.is_valid(str(pid)):
        return None
    payment = Payment.objects(id=pid).no_dereference().first()
    if payment is None or str(_ref_id(payment.appointment)) != str(metadata.get("appointment_id")):
        return None
    return payment


def _payment_following(field, obj):
    """The Payment that follows a Stripe object (by its id in `field`), else the one its metadata names."""
    return (Payment.objects(**{field: obj["id"]}).no_dereference().first()
            or _payment_for_metadata(obj.get("metadata")))


def _adopt_intent(payment, pi_id, now):
    """Make the Payment follow `pi_id`, unless it is paid; True when it follows it now.

    Guarded on the intent it followed when read, so of two syncs adopting at once one wins; and
    never once the Payment is paid: a sync that read it before another made it succeed must not
    re-point it, or the money of the intent it followed would be kept without a record.
    """
    if payment.stripe_payment_intent != pi_id:
        if not payment.modify(query={"stripe_payment_intent": payment.stripe_payment_intent,
                                     "status__nin": ("succeeded", "refunded")},
                              set__stripe_payment_intent=pi_id, set__updated_at=now):
            payment.reload()
    return payment.stripe_payment_intent == pi_id


def _course_follows_session_intent(payment, pi, now):
    """A course's Checkout Session intent, adopted by its lead: every share of that session follows it too
    (whichever of the session's and the intent's events arrives first)."""
    if not (payment.course and payment.stripe_checkout_session and (pi.get("metadata") or {}).get("flow") == "checkout"):
        return
    for share in Payment.objects(course=payment.course, stripe_checkout_session=payment.stripe_checkout_session,
                                 id__ne=payment.id, kind__in=UPFRONT_KINDS):
        _adopt_intent(share, pi["id"], now)


def _apply_status(payment, new_status, actor, now):
    """Move the Payment to what Stripe says (guarded, audited); a succeeded payment is settled.

    A course's share moves every share following the same intent (or session) with it, so the
    webhook, the sweep and the page reconcile a course payment into all its appointments.
    """
    moved = False
    for share in course_followers(payment) if payment.course else [payment]:
        if _move_payment(share, new_status, now):
            moved = True
            _audit(actor, f"payment.{new_status}", f"Payment:{share.id}")
    if payment.course:
        payment.reload()  # moved as one of its course's shares
    if payment.status == "succeeded" and payment.kind in FEE_KINDS:
        # A fee confirms nothing: its appointment is already closed; the patient gets a receipt.
        return SyncResult(settle_fee(payment, actor, now, first_time=moved), payment)
    if payment.status == "succeeded":
        return SyncResult(settle_paid(payment, actor, now, first_time=moved), payment)
    return SyncResult(f"payment_{new_status}" if moved else "unchanged", payment)


def sync_payment_intent(intent, actor="system", now=None):
    """Re-fetch a PaymentIntent and move its Payment and Appointment forward (idempotent)."""
    now = now or utcnow()
    pi = _fetch_intent(_id_of(intent))
    if pi is None:
        return SyncResult("unknown_intent")
    payment = _payment_following("stripe_payment_intent", pi)
    if payment is None:
        return SyncResult("unknown_payment")
    if payment.stripe_payment_intent != pi["id"]:
        # A Checkout intent seen for the first time, or money on an intent we had replaced: adopt
        # it (money that arrived is never ignored). Never over a paid Payment: the other intent's
        # charge is refunded below instead.
        adopt = payment.stripe_payment_intent is None or (
            pi["status"] == "succeeded" and payment.status not in ("succeeded", "refunded"))
        if not (adopt and _adopt_intent(payment, pi["id"], now)):
            if pi["status"] == "succeeded":
                _refund_stray_intent(payment, pi, actor, now)
                return SyncResult("duplicate_charge_refunded", payment)
            return SyncResult("stale_intent", payment)
        _course_follows_session_intent(payment, pi, now)
    return _apply_intent(payment, pi, actor, now)


def _apply_intent(payment, pi, actor, now):
    """Apply a fetched PaymentIntent to the Payment that follows it (money refused if it does not match)."""
    new_status = status_from_intent(pi)
    if new_status == "succeeded" and _amount_mismatch(payment, pi):
        return SyncResult(_refuse_mismatched_money(payment, pi, actor, now), payment)
    return _apply_status(payment, new_status, actor, now)


def _status_from_session(s):
    """Our Payment status for a Checkout Session that has no PaymentIntent."""
    if s.get("status") == "expired":
        return "canceled"
    if s.get("status") == "complete":
        return "succeeded" if s.get("payment_status") in ("paid", "no_payment_required") else "processing"
    return "pending"


def _money_of_session(s):
    """A session's total in the shape `_amount_mismatch` reads from an intent (all of it received)."""
    return {"amount_received": s.get("amount_total"), "currency": s.get("currency")}


def _flag_mismatched_session(payment, s, actor, now):
    """Money of a session without an intent that does not match: never confirm; flag it for staff.

    Without a PaymentIntent there is nothing to refund through, so staff settle it by hand; the
    Payment is failed like a refused intent's, and the appointment stays held and payable in full.
    """
    why = _amount_mismatch(payment, _money_of_session(s))
    flagged = Payment.objects(id=payment.id, flag="").update_one(
        set__flag=f"amount mismatch: {why}; session {s['id']} has no PaymentIntent, not refunded"[:300],
        set__updated_at=now)
    if may_move(payment, "failed"):
        _move_payment(payment, "failed", now)
    payment.reload()
    if flagged:
        _audit(actor, "payment.flagged", f"Payment:{payment.id}", outcome="amount_mismatch_unrefunded")
        log.error("payment %s: Checkout Session %s paid %s; flagged for staff", payment.id, s["id"], why)
    return "amount_mismatch_flagged"


def _apply_session(payment, s, actor, now):
    """Apply a fetched Checkout Session without an intent to its Payment (money checked the same way)."""
    new_status = _status_from_session(s)
    if new_status == "succeeded" and _amount_mismatch(payment, _money_of_session(s)):
        return SyncResult(_flag_mismatched_session(payment, s, actor, now), payment)
    return _apply_status(payment, new_status, actor, now)


def sync_checkout_session(session, actor="system", now=None):
    """Re-fetch a Checkout Session and move its Payment and Appointment forward (idempotent)."""
    now = now or utcnow()
    s = _fetch_session(_id_of(session))
    if s is None:
        return SyncResult("unknown_session")
    payment = _payment_following("stripe_checkout_session", s)
    if payment is None:
        return SyncResult("unknown_payment")
    pi_id = _id_of(s.get("payment_intent"))
    current = payment.stripe_checkout_session == s["id"] and payment.flow == "checkout"
    if pi_id:
        # The intent behind the session is the truth about the money (async methods included).
        # The Payment's current session's intent replaces one left from the card page (cancelled
        # when the flow was switched); an intent of a paid Payment is never replaced.
        if payment.stripe_payment_intent is None or current:
            _adopt_intent(payment, pi_id, now)
            _course_follows_session_intent(payment, {"id": pi_id, "metadata": {"flow": "checkout"}}, now)
        return sync_payment_intent(pi_id, actor, now)
    if not current:
        # Replaced by a newer session, or the Payment now follows a PaymentIntent of the card page.
        return SyncResult("stale_session", payment)
    return _apply_session(payment, s, actor, now)


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
    except InvalidRequestError as exc:
        if _not_found(exc):
            return None
        raise


@translate_stripe_errors
@audited("stripe_event.resync", lambda object_id, *args, **kwargs: f"StripeObject:{object_id}",
         outcome=lambda result: result)
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


# Pages (and scripts polling them) re-fetch one payment from Stripe at most this often a minute;
# past that they show what we know, and the webhook still moves the payment at once.
PAGE_REFETCHES_PER_MINUTE = 20
PAGE_REFETCHES = Limit("payment-refetch", PAGE_REFETCHES_PER_MINUTE, 60)


def _refetch_allowed(payment):
    """True for the first PAGE_REFETCHES_PER_MINUTE re-fetches of a payment in any minute."""
    return ratelimits.spend(PAGE_REFETCHES, payment.id)


def page_state(appointment, now, actor="system"):
    """The payment as the appointment page shows it, re-synced from Stripe while it is under way.

    The page never trusts a redirect: after Stripe.js or Checkout sends the patient back, this
    re-fetch is what moves the state (the webhook may not have arrived yet). Stripe not answering
    only means the page shows what we knew.
    """
    payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).no_dereference().first()
    if payment is not None and payment.status in ("pending", "processing", "failed") and (
            payment.stripe_payment_intent or payment.stripe_checkout_session) and _refetch_allowed(payment):
        try:
            sync_payment(payment, actor, now)
            payment.reload()
            appointment.reload()
        except (StripeError, DomainError) as exc:
            log.warning("payment %s: page re-sync failed: %s", payment.id, exc)
    return payment
