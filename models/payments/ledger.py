"""The Payment ledger: which status may follow which, the guarded moves, the per-Payment lock.

The one writer of a Payment's status: `new_payment` gives a new Payment its first status,
`_move_payment` every later one (tests/test_status_table.py fails on any other writer). It also
writes the one flag beside the status, a dispute (`_mark_disputed`), checked the same way.

A course paid up front (issue 28) keeps the ledger's rule of one Payment per appointment (and
kind): each held visit of the course has its own Payment, `amount` being that visit's share (its
price, or its deposit), all of them marked with the series id (`Payment.course`) and all following
the same PaymentIntent (or Checkout Session). So the day grid, the desk, takings, exports and a
cancellation's refund read each visit's money exactly as for a single appointment, and the one
intent's refunds are each a visit's share (never above it, so never above the total). The first
held visit's Payment (the "lead") is the one Stripe's metadata names and the payment page starts;
the sync applies the intent to every share that follows it, and settlement confirms every visit
with one confirmation listing every date. Why not one Payment covering several appointments: every
per-appointment reader (refund previews, the day grid, the desk, fees counted against what was
paid online) would need to learn to split it.
"""

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import pymongo.errors
from bson import ObjectId
from mongoengine import NotUniqueError

from models.audit import audit_here, carried_update, settle_carried, take_carried
from models.errors import Conflict
from models.booking.documents import Appointment, online_amount
from models.clock import _utc
from models.payments.documents import PAYMENT_STATUSES, UPFRONT_KINDS, Dispute, Payment
from models.stores import Lease, rkey
from models.transitions import ForbiddenTransition, StatusTable


log = logging.getLogger("models.payments")  # one logger for the package, as before the split

CONFIRMED_STATUSES = ("confirmed", "checked_in", "completed", "no_show")

# Which status may follow which (the form the Appointment's table shares, `models.transitions`).
# Stripe's object is the truth, so money that arrived is always recorded; what never happens is a
# step back to an earlier state.
TRANSITIONS = {
    "pending": ("processing", "failed", "canceled", "succeeded"),
    "processing": ("failed", "succeeded"),
    "failed": ("pending", "processing", "canceled", "succeeded"),  # pending: a fresh attempt after a decline
    "canceled": ("pending", "succeeded"),  # pending: a replacement attempt
    "succeeded": ("refunded",),
    "refunded": (),
}

# One move the table above does not make by default: a refund that failed after all gives a refunded
# Payment back its "succeeded" (the money is partly kept again). Only the refunds tell it: the
# PaymentIntent of a refunded payment still reads "succeeded", so a sync must never make this move;
# `_move_payment` makes it only for a caller that names it (`only_from=("refunded",)`).
GIVEN_BACK = {"refunded": ("succeeded",)}

TABLE = StatusTable("a payment", TRANSITIONS, PAYMENT_STATUSES, named_only=GIVEN_BACK)

# A Payment is born waiting for its money, or (taken at the desk) with it.
BORN_AS = ("pending", "succeeded")

PAYMENT_LOCK_SECONDS = 3


@dataclass
class SyncResult:
    """What one sync did: `outcome` is a short slug kept on the StripeEvent and in reports."""

    outcome: str
    payment: Payment = None


def _ref_id(value):
    """The ObjectId behind a reference (a document, a DBRef or an ObjectId)."""
    return getattr(value, "id", value)


def _audit(actor, action, record, outcome="ok"):
    """Write a payments audit event (with the request's id and address inside a request)."""
    try:
        audit_here(actor, action, record, outcome=outcome)
    except pymongo.errors.PyMongoError:  # the change itself is done; do not undo it for the log
        log.exception("could not write audit event %s %s", action, record)


def _move_payment(payment, new_status, now, *, only_from=None, where=None, **changes):
    """Guarded update of a Payment's status, the one writer of it; True when this call wrote.

    The Payment moves only from `only_from` (default: every status TRANSITIONS moves to it from),
    each of which the table must allow (GIVEN_BACK when named); a caller that also changes other
    fields may name `new_status` itself among them, to keep that status while it writes them.
    `where` adds conditions to the guard; `changes` are further update operators (`set__flow=…`,
    `push__refunds=…`) written in the same command.
    """
    only_from = TABLE.guard(new_status, only_from, also=(new_status,) if changes else ())
    if payment.status == new_status and not changes:
        return False
    updates = {"set__status": new_status, "set__updated_at": now, **changes}
    carried = take_carried(f"Payment:{payment.id}")  # the running action's audit, in the same write
    updates.update(carried_update(carried))
    # One command: the guarded update, and the document in hand refreshed from what it wrote.
    moved = payment.modify(query={"status__in": only_from, **(where or {})}, **updates)
    settle_carried(Payment, payment.id, carried, landed=bool(moved))
    if not moved:
        payment.reload()
    return bool(moved)


def _mark_disputed(payment, dispute_id, amount, reason, opened_at, now):
    """Flag a Payment as disputed by the patient's bank, once per dispute; True when this call wrote.

    A flag the ledger owns, not a status: while a dispute is open Stripe's intent still reads
    "succeeded", so a "disputed" status would be moved back by the next sync, and the money stays
    taken until the bank decides. The amount is never above the payment's.
    """
    dispute = Dispute(stripe_dispute=str(dispute_id)[:100], amount=max(0, min(int(amount), payment.amount)),
                      reason=(reason or "")[:60], opened_at=opened_at)
    marked = payment.modify(query={"dispute__stripe_dispute__ne": dispute.stripe_dispute},
                            set__dispute=dispute, set__updated_at=now)
    if not marked:
        payment.reload()
    return bool(marked)


def _close_dispute(payment, dispute_id, outcome, closed_at, now):
    """Record the bank's decision on the Payment's open dispute, once; True when this call wrote.

    The status stays: a lost dispute is money the bank took back, shown beside the payment (Stripe
    holds it as a dispute, not a refund), so the payment's own record of what was paid is kept.
    """
    closed = payment.modify(query={"dispute__stripe_dispute": str(dispute_id)[:100], "dispute__closed_at": None},
                            set__dispute__outcome=str(outcome or "")[:30], set__dispute__closed_at=closed_at,
                            set__updated_at=now)
    if not closed:
        payment.reload()
    return bool(closed)


def may_move(payment, new_status):
    """True when the table moves this Payment from its status to `new_status` by default."""
    return TABLE.allowed(payment.status, new_status)


def new_payment(status, **fields):
    """A new Payment (not yet saved) born in `status` (`BORN_AS`): the ledger writes its first status too."""
    if status not in BORN_AS:
        raise ForbiddenTransition(f"a payment cannot start as {status}")
    return Payment(status=status, **fields)


@contextmanager
def _payment_lock(payment):
    """One payment attempt at a time per Payment (a double click must not confirm twice).

    A `Lease` of PAYMENT_LOCK_SECONDS renewed while the attempt works (Stripe may take longer): a
    second attempt does not wait but is refused at once, and a lock left by a killed worker lapses
    within seconds.
    """
    lease = Lease(rkey("payment-lock", payment.id), PAYMENT_LOCK_SECONDS)
    if not lease.acquire():
        raise Conflict("A payment for this appointment is already in progress.",
                       code="payment_in_progress")
    with lease.held():
        yield


def payment_for(appointment, flow, now):
    """The appointment's one Payment, created on first use (a unique index guards the race).

    For a visit of a course paid up front: the course's lead Payment (the first held visit's),
    with a share created for every held visit of the course (`course_shares`).
    """
    if getattr(appointment, "pay_course", False) and appointment.series:
        shares = course_shares(appointment, flow, now)
        if shares:
            return shares[0]
    return _own_payment(appointment, flow, now)


def _own_payment(appointment, flow, now, course=None):
    payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).first()
    if payment is None:
        # No-show protection: with an agreed deposit, the deposit is what is paid online.
        kind = "deposit" if appointment.policy is not None and appointment.policy.deposit else "visit"
        payment = new_payment("pending", id=ObjectId(), appointment=appointment, patient=appointment.patient,
                              amount=online_amount(appointment), currency=appointment.currency,
                              flow=flow, created_at=now, updated_at=now, kind=kind, course=course)
        try:
            payment.save(force_insert=True)
        except NotUniqueError:
            payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).first()
    if payment.flow != flow and payment.status in ("pending", "failed", "canceled"):
        if not payment.modify(query={"status__in": ("pending", "failed", "canceled")},
                              set__flow=flow, set__updated_at=now):
            payment.reload()
    return payment


# --- A course paid up front (issue 28) -------------------------------------------------------------

def course_visits(appointment, now):
    """The visits of the appointment's course still held (unpaid, hold not lapsed), soonest first."""
    visits = Appointment.objects(series=appointment.series, pay_course=True, status="held").order_by("start")
    return [v for v in visits if v.hold_expires_at is None or _utc(v.hold_expires_at) > now]


def course_shares(appointment, flow, now):
    """Every held visit's share of the course (a Payment each, created on first use), lead first."""
    return [_own_payment(visit, flow, now, course=appointment.series) for visit in course_visits(appointment, now)]


def course_followers(payment):
    """The shares that follow the same Stripe object as this course Payment (it included), soonest first.

    The PaymentIntent when it has one, else its Checkout Session; a single Payment is its own only follower.
    """
    if not payment.course:
        return [payment]
    query = Payment.objects(course=payment.course, kind__in=UPFRONT_KINDS)
    if payment.stripe_payment_intent:
        query = query.filter(stripe_payment_intent=payment.stripe_payment_intent)
    elif payment.stripe_checkout_session:
        query = query.filter(stripe_checkout_session=payment.stripe_checkout_session)
    else:
        return [payment]
    shares = list(query)
    starts = {a.id: a.start for a in Appointment.objects(id__in=[_ref_id(p.appointment) for p in shares]).only("start")}
    shares.sort(key=lambda p: (starts.get(_ref_id(p.appointment)) is None, starts.get(_ref_id(p.appointment))))
    return shares or [payment]


def expected_amount(payment):
    """What the Stripe object this Payment follows must bring: its amount, or the course's total."""
    return sum(p.amount for p in course_followers(payment)) if payment.course else payment.amount


def follow_lead(lead, shares, now, **changes):
    """Make the other shares of a course follow what the lead now follows (`set__stripe_payment_intent=…`).

    Only a share not paid (pending, failed, canceled) moves; a paid one keeps its intent.
    """
    for share in shares:
        if share.id != lead.id:
            _move_payment(share, "pending", now, only_from=("pending", "failed", "canceled"), **changes)


def course_due(appointment, now):
    """(total, number of visits) a course payment started from this visit would take; None when not a course."""
    if not (getattr(appointment, "pay_course", False) and appointment.series):
        return None
    visits = course_visits(appointment, now)
    if not visits:
        return None
    return sum(online_amount(v) for v in visits), len(visits)
