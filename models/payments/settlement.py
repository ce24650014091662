"""Settlement: a succeeded payment confirms its appointment, or its money goes back (amount checked)."""

from datetime import timedelta

from models.booking import status
from models.booking.availability import SlotRules, why_not_bookable
from models.booking.claims import release_time, secure_time
from models.booking.documents import Appointment
from models.booking.rules import schedule_days
from models.catalog.documents import TimeOff
from models.catalog.snapshot import current_catalog
from models.clock import _utc
from models.messages.outbox import appointment_confirmed, enqueue_for_appointment, queue_reminders
from models.payments.documents import Payment
from models.payments.gateway import _find_refund, stripe_api
from models.payments.ledger import (
    CONFIRMED_STATUSES,
    _audit,
    _move_payment,
    _ref_id,
    course_followers,
    expected_amount,
    log,
    may_move,
)
from models.payments.refunds import refund_payment


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


def _amount_mismatch(payment, pi):
    """Why the money received differs from what the Payment asks for (Stripe's fulfilment advice), or "".

    A course's share asks for the course's total: every share following the same intent.
    """
    # A succeeded intent received its whole amount; localstripe leaves `amount_received` out.
    received = pi.get("amount_received") if pi.get("amount_received") is not None else pi.get("amount")
    currency = (pi.get("currency") or "").lower()
    expected = expected_amount(payment)
    if currency != (payment.currency or "").lower():
        return f"received {received} {currency}, expected {expected} {payment.currency}"
    if received is None or int(received) < expected:
        return f"received {received} {currency}, expected {expected} {payment.currency}"
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
    for share in course_followers(payment):  # a course's shares all fail with it (refunded once, above)
        if may_move(share, "failed"):
            _move_payment(share, "failed", now)  # the appointment stays held and payable in full
    payment.reload()
    if flagged:
        _audit(actor, "payment.flagged", f"Payment:{payment.id}", outcome="amount_mismatch")
    return "amount_mismatch_refunded"


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
    """Make the appointment's time its own for good (the claims' one writer: booking.claims)."""
    return secure_time(appt, now)


def settle_paid(payment, actor, now, first_time):
    """Bring the appointment in line with a succeeded payment: confirm it, or give the money back.

    A course's share settles the whole course (`settle_course`).
    """
    if payment.course:
        return settle_course(payment, actor, now, first_time)
    return _settle_visit(payment, actor, now, first_time)


def settle_course(payment, actor, now, first_time):
    """Settle every paid share of a course: each visit confirmed (or, when its time can no longer be
    given, its share refunded, as for a single appointment), then one confirmation listing every
    date, one receipt for the course and each visit's reminders. Answers `payment`'s own outcome."""
    outcomes, confirmed = {}, []
    for share in course_followers(payment):
        if share.status != "succeeded":
            continue
        outcomes[share.id] = _settle_visit(share, actor, now, first_time, notify=False)
        if outcomes[share.id] in ("confirmed", "confirmed_late"):
            confirmed.append(share)
    if confirmed:
        visits = Appointment.objects(id__in=[_ref_id(p.appointment) for p in confirmed]).order_by("start")
        visits = list(visits)
        appointment_confirmed(visits[0], now, paid=True)  # lists every live date; .ics with every visit
        for visit in visits[1:]:
            queue_reminders(visit, now)
    return outcomes.get(payment.id, "unchanged")


def _settle_visit(payment, actor, now, first_time, notify=True):
    """Settle one appointment's paid Payment; `notify=False` leaves its emails to the caller (a course)."""
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
            moved = status.move(appt.id, "confirmed", now, only_from=("held", "expired"))
            if moved:
                _audit(actor, "appointment.confirm", record, outcome="late_payment" if late else "ok")
                if notify:
                    appointment_confirmed(appt, now, paid=True)  # confirmation, receipt, reminders
                return "confirmed_late" if late else "confirmed"
            appt.reload()
            if appt.status in CONFIRMED_STATUSES:
                return "already_confirmed"
            release_time(appt.id)  # cancelled meanwhile: the claims we just made must not block
        else:
            cause = cause or "taken"
            text = UNCONFIRMABLE[cause][0]
            moved = status.move(appt.id, "expired", now, only_from=("held", "expired"), set__cancel_reason=text)
            if moved:
                status.adopt(appt, moved)
            else:
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


def settle_fee(payment, actor, now, first_time=True):
    """No-show protection: a fee that was paid clears what staff see as due and sends the patient
    a "fee charged" receipt (once per fee: the outbox is idempotent on kind, subject and variant)."""
    if payment.fee_state:
        Payment.objects(id=payment.id, status="succeeded").update_one(set__fee_state="", set__updated_at=now)
    enqueue_for_appointment("fee_charged", payment.appointment, now, variant=payment.kind,
                            context={"payment_id": str(payment.id), "kind": payment.kind,
                                     "amount": payment.amount, "currency": payment.currency})
    if first_time:
        _audit(actor, "payment.fee_charged", f"Payment:{payment.id}")
    return "fee_charged"
