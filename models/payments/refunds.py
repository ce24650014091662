"""Refunds: reserved on the Payment first (never above what was paid), then sent with a stable key."""

from models import crashpoints
from models.clock import _utc, utcnow
from models.errors import Conflict, DomainError
from models.payments.documents import Payment, Refund
from models.payments.gateway import StripeError, _find_refund, _obj, is_transient, stripe_api
from models.payments.ledger import _audit, _move_payment, log


class RefundFailed(DomainError):
    """Stripe refused a refund for good (the reservation was given back)."""

    code = "refund_failed"


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
    crashpoints.reached("refund.reserved")
    return _send_refund(payment, index, actor, now, retry=False)


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
    except StripeError as exc:
        if is_transient(exc):
            log.warning("refund %s left pending, Stripe unavailable: %s", key, exc)
            raise
        # Refused for good: give the reservation back so the books stay right.
        collection.update_one({"_id": payment.id, f"refunds.{index}.status": "pending"},
                              {"$set": {f"refunds.{index}.status": "failed", "updated_at": now},
                               "$inc": {"amount_refunded": -entry.amount}})
        _audit(actor, "payment.refund", f"Payment:{payment.id}", outcome="refused")
        raise RefundFailed(f"Stripe refused the refund: {exc.user_message or exc}") from None
    crashpoints.reached("refund.sent")
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
        _move_payment(payment, "succeeded", now, only_from=("refunded",))


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
        owner = (item.get("metadata") or {}).get("payment_id")
        if index is None and owner and owner != str(payment.id):
            continue  # another share of the same course's intent (issue 28): that Payment's refund
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
