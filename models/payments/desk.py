"""Money taken at the front desk (cash or the card terminal, recorded as a Payment so takings add up),
and what cancelling an appointment would give back.

Online payments go through Stripe (models/payments/). A staff booking of a paid service is
confirmed at once and paid at the desk; this module records that payment (method `cash` or
`card_terminal`, `paid_at` now) and, when such an appointment is cancelled with a refund due, records
the money given back at the desk. Stripe is never called for desk money.
"""

from mongoengine import NotUniqueError

from models.audit import appointment_record, audited, insert_with_audit
from models.booking.cancellation import cancel
from models.booking.series import cancel_from_here
from models.errors import Conflict, ValidationFailed
from models.payments.cancellation import refund_due
from models.payments.documents import UPFRONT_KINDS, Payment, Refund
from models.payments.ledger import _audit as audit  # the payments' audit writer, in a request or not
from models.payments.ledger import _move_payment, new_payment


DESK_METHODS = {"cash": "cash", "card_terminal": "card terminal"}
PAYABLE_STATUSES = ("confirmed", "checked_in", "completed", "no_show")


def due_at_desk(appointment, payment):
    """Minor units still to take at the desk for an appointment (0 when nothing is due)."""
    # A no-show may still be charged (mark_paid_at_desk allows it) but is not listed as due.
    if not appointment.amount or appointment.status not in ("confirmed", "checked_in", "completed"):
        return 0
    rest = _rest_after_deposit(appointment, payment)
    if rest is not None:
        return rest
    if payment is not None and payment.status in ("succeeded", "refunded", "pending", "processing"):
        return 0
    return appointment.amount


def _rest_after_deposit(appointment, payment):
    """No-show protection: after a deposit paid online, what is left to take at the desk (None when
    the appointment's online payment is not a paid deposit)."""
    if payment is None or payment.kind != "deposit" or payment.status != "succeeded":
        return None
    if Payment.objects(appointment=appointment.id, kind="visit", status__in=("succeeded", "refunded")).count():
        return 0
    return max(0, appointment.amount - payment.amount)


@audited("appointment.pay", appointment_record)
def mark_paid_at_desk(appointment, method, now, actor):
    """Record that the patient paid the appointment's price at the desk; returns the Payment.

    Refused when nothing is due: free services, closed appointments, an online payment that
    succeeded or is still under way (taking the money twice is the mistake this guards against).
    A failed or cancelled online attempt is replaced by the desk payment in one guarded update.
    """
    if method not in DESK_METHODS:
        raise ValidationFailed("Choose cash or card terminal.", fields={"method": "invalid"})
    appointment.reload()
    if not appointment.amount:
        raise Conflict("This appointment is free of charge; there is nothing to take.", code="nothing_due")
    if appointment.status not in PAYABLE_STATUSES:
        raise Conflict(f"This appointment is {appointment.status.replace('_', ' ')}; take no payment for it.",
                       code="not_payable")
    existing = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).no_dereference().first()
    amount = appointment.amount
    rest = _rest_after_deposit(appointment, existing)
    if rest:
        # The deposit was paid online: the rest is its own Payment (kind "visit"), taken here.
        existing, amount = None, rest
    if existing is not None and existing.status in ("succeeded", "refunded"):
        raise Conflict("This appointment is already paid.", code="already_paid")
    if existing is not None and existing.status in ("pending", "processing"):
        raise Conflict("An online payment for this appointment is under way; wait for it to finish "
                       "before taking money at the desk.", code="payment_under_way")
    fields = dict(amount=amount, currency=appointment.currency, method=method, paid_at=now, updated_at=now)
    if existing is None:
        payment = new_payment("succeeded", appointment=appointment.id, patient=appointment.patient.id,
                              created_at=now, **fields)
        try:
            insert_with_audit(payment, None)  # with the action's "appointment.pay" event, in one command
        except NotUniqueError:
            raise Conflict("This appointment was paid a moment ago.", code="already_paid") from None
    else:
        moved = _move_payment(existing, "succeeded", now, only_from=("failed", "canceled"),
                              **{f"set__{k}": v for k, v in fields.items() if k != "updated_at"})
        if not moved:
            raise Conflict("This appointment's payment changed a moment ago; look again.", code="already_paid")
        payment = Payment.objects.get(id=existing.id)
    audit(actor, "payment.desk", f"Payment:{payment.id}")
    return payment


# Issue 26: the refund choices staff have when cancelling a paid appointment, in the order the form
# shows them. One more choice (issue 27's "keep the policy's fee") is one more entry here and one
# more branch in `refund_for_choice`.
REFUND_CHOICES = {"full": "Full refund", "keep_fee": "Keep the late-cancellation fee",
                  "amount": "Refund an amount", "none": "No refund"}


def kept_fee(appointment):
    """The late-cancellation fee the patient agreed to when booking (minor units; 0 when none):
    what "keep_fee" keeps of the money paid (issue 27's policy, as agreed, never the service's later one)."""
    policy = getattr(appointment, "policy", None)
    return int(policy.late_cancel_fee or 0) if policy is not None else 0


def paid_left(appointment):
    """What was paid and not yet refunded: (minor units, currency, how) or None when nothing was.

    `how` is "card" for an online payment (refunded through Stripe) or "desk" for cash or the
    card terminal (given back at the desk and recorded).
    """
    payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).no_dereference().first()
    if payment is None or payment.status != "succeeded":
        return None
    left = payment.amount - (payment.amount_refunded or 0)
    if left <= 0:
        return None
    return left, payment.currency, "card" if (payment.method or "online") == "online" else "desk"


def refund_for_choice(appointment, choice, amount=None):
    """The minor units staff's refund `choice` gives back; ValidationFailed when it cannot be given.

    "full": all that is left; "keep_fee": that less the agreed late-cancellation fee; "amount": `amount` minor units, more than 0 and never above what was
    paid less what was already refunded; "none": nothing.
    """
    if choice not in REFUND_CHOICES:
        raise ValidationFailed("Choose how much to refund.", fields={"refund": "invalid"})
    left = paid_left(appointment)
    if choice == "keep_fee" and not kept_fee(appointment):
        raise ValidationFailed("This appointment has no late-cancellation fee to keep; choose another refund.",
                               fields={"refund": "no fee agreed"})
    if choice == "none" or left is None:
        return 0
    if choice == "full":
        return left[0]
    if choice == "keep_fee":  # all that is left less the agreed fee (nothing when the fee is more)
        return max(0, left[0] - kept_fee(appointment))
    try:
        want = int(amount)
    except (TypeError, ValueError):
        raise ValidationFailed("Give the amount to refund.", fields={"amount": "invalid"}) from None
    if want <= 0:
        raise ValidationFailed("The amount to refund must be more than nothing; choose “No refund” "
                               "for none.", fields={"amount": "invalid"})
    if want > left[0]:
        raise ValidationFailed("The refund cannot be more than was paid less what was already refunded.",
                               fields={"amount": "too_high"})
    return want


def _check_desk_cancel(appointment, reason, refund, amount):
    """Refuse (422) a staff cancellation without a reason or with a refund it cannot make."""
    if not (reason or "").strip():
        raise ValidationFailed("Give a reason for the cancellation.", fields={"reason": "required"})
    if refund is not None:
        refund_for_choice(appointment, refund, amount)


@audited("appointment.cancel", appointment_record)
def cancel_at_desk(appointment, now, reason, actor, refund=None, amount=None):
    """Cancel for staff: the booking rule's cancel (Stripe refunds included), and money taken at the
    desk recorded as given back.

    `refund` None follows the service's rule; otherwise staff's choice (see REFUND_CHOICES, `amount`
    in minor units for "amount") is refunded through the same ledger, whatever the rule says.
    Returns (appointment, refunded minor units, whether that refund is still pending at Stripe).
    """
    _check_desk_cancel(appointment, reason, refund, amount)
    if refund is None:
        preview = refund_preview(appointment, now)
        decided = {}
    else:
        want = refund_for_choice(appointment, refund, amount)
        left = paid_left(appointment)
        preview = (want, left[1], left[2]) if left and want else None
        decided = {"refund_amount": want, "refund_decision": refund}
    before = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).no_dereference().first()
    cancel(appointment, now, reason=reason.strip(), by_staff=True, actor=actor, **decided)
    if refund is not None:
        audit(actor, "appointment.refund_decision", appointment_record(appointment),
              outcome=f"{refund}:{preview[0] if preview else 0}")
    if preview is None:
        return appointment, 0, False
    amount, _currency, how = preview
    pending = False
    if how == "card":
        # cancel asked Stripe; what it reserved (sent, or left pending for the sweeper) counts.
        after = Payment.objects(id=before.id).first()
        amount = (after.amount_refunded or 0) - (before.amount_refunded or 0)
        pending = any(r.status == "pending" for r in after.refunds[len(before.refunds):])
    else:
        payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).no_dereference().first()
        entry = Refund(amount=amount, status="succeeded", created_at=now,
                       reason=f"given back at the desk ({DESK_METHODS.get(payment.method, payment.method)})")
        given_before = payment.amount_refunded or 0
        if given_before + amount >= payment.amount:
            moved = _move_payment(payment, "refunded", now, where={"amount_refunded": given_before},
                                  push__refunds=entry, inc__amount_refunded=amount)
        else:  # partly given back: the payment stays as it is
            moved = Payment.objects(id=payment.id, amount_refunded=given_before).update_one(
                push__refunds=entry, inc__amount_refunded=amount, set__updated_at=now)
        if moved:
            audit(actor, "payment.refund", f"Payment:{payment.id}", outcome="desk")
        else:
            amount = 0
    appointment.reload()
    return appointment, amount, pending


def cancel_following_at_desk(appointment, now, reason, actor, refund=None, amount=None, audit_as=None):
    """Cancel a series visit and its later live visits for staff, each by `cancel_at_desk` (issue 28).

    Staff's refund choice applies to every visit: "full" and "none" as they say, "keep_fee" keeps
    each visit's own agreed fee (a visit agreed to none is refunded in full). "amount" is what staff
    typed for this visit, so the later visits follow the service's rule, as the form says. This
    visit is checked first, so a refusal cancels nothing; the order is `series.cancel_from_here`'s. Answers
    [(appointment, refunded minor units, refund still pending at Stripe)] per cancelled visit.
    """
    _check_desk_cancel(appointment, reason, refund, amount)  # this visit's refusal cancels nothing

    def cancel_one(visit, this):
        if this:
            return cancel_at_desk(visit, now, reason, actor, refund=refund, amount=amount, audit_as=audit_as)
        choice = None if refund == "amount" else refund
        if choice == "keep_fee" and not kept_fee(visit):
            choice = "full"
        return cancel_at_desk(visit, now, reason, actor, refund=choice, audit_as=audit_as)

    return cancel_from_here(appointment, cancel_one)


# --- money on cancellation -----------------------------------------------------------------------

def refund_preview(appointment, now):
    """What cancelling now would give back: (amount, currency, how) or None when nothing would be.

    `how` is "card" for an online payment (refunded through Stripe) or "desk" for cash or the card
    terminal (given back at the desk and recorded).
    """
    payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).no_dereference().first()
    if payment is None or payment.status != "succeeded":
        return None
    if not refund_due(appointment, appointment.status, now):
        return None
    left = payment.amount - (payment.amount_refunded or 0)
    if left <= 0:
        return None
    how = "card" if (payment.method or "online") == "online" else "desk"
    return left, payment.currency, how


def refund_preview_total(appointments, now):
    """What cancelling all of `appointments` now would give back, summed: (amount, currency) or None.

    Each visit's share by `refund_preview` (a series' "this and the later visits", issue 28).
    """
    previews = [p for p in (refund_preview(a, now) for a in appointments) if p]
    if not previews:
        return None
    return sum(p[0] for p in previews), previews[0][1]
