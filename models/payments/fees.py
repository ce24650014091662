"""No-show protection (issue 27): late-cancellation and no-show fees charged to the card on file.

Rules kept here, once:

- A fee is a Payment of its own kind (`late_cancel_fee`, `no_show_fee`), one per appointment and
  kind (a unique index): whoever creates it charges it; every other caller (ten cancels at once, a
  double click on "charge", a retry) gets that Payment back and charges nothing. The Stripe call
  carries the key `fee:<appointment>:<kind>` as well.
- The amount is never above the policy agreed at booking (`Appointment.policy`), nor the service's
  fee now; money already paid online for the visit counts towards it (only the rest is charged).
- Never on an appointment the clinic cancelled: the late fee follows a patient's cancellation
  only, the no-show fee a no-show only.
- Off-session, with the saved card. When the bank asks for authentication (Stripe's
  `authentication_required`; localstripe answers `requires_action`), or the card is gone or
  declined, the fee is due: `fee_state` says why, staff see it, and the patient is emailed a link
  to pay it on-session. When Stripe does not answer the fee stays pending without an intent, and
  the sweep charges it again with the same key (`retry_fees`).
- Its money moves like every payment's: through the ledger's `_move_payment` and the one sync
  (`sync_payment_intent`, which sends the "fee charged" receipt).
"""

from dataclasses import dataclass

from bson import ObjectId
from flask import current_app
from mongoengine import NotUniqueError

from models.accounts.dependants import household_ids
from models.accounts.documents import Patient
from models.audit import appointment_record, audited
from models.booking.cancellation import cancellation_terms
from models.booking.documents import Appointment
from models.booking.frontdesk import mark_no_show, undo_no_show as unmark_no_show
from models.clock import utcnow
from models.errors import Conflict, NotFound, ValidationFailed
from models.messages.outbox import enqueue_for_appointment, register_check
from models.payments.documents import FEE_KINDS, UPFRONT_KINDS, Payment
from models.payments.gateway import CardError, StripeError, _obj, is_transient, stripe_api
from models.payments.ledger import _audit, _move_payment, _ref_id, log, new_payment
from models.payments.refunds import RefundFailed, refund_payment
from models.payments.sync import sync_payment_intent


def fee_amount(appointment, kind):
    """The fee this appointment may be charged of `kind` (0 when none was agreed)."""
    agreed = getattr(appointment, "policy", None)
    if agreed is None:
        return 0
    agreed_fee = getattr(agreed, kind, 0) or 0
    now_fee = getattr(appointment.service, kind, 0) or 0
    return max(0, min(agreed_fee, now_fee))


def paid_online(appointment):
    """Money paid online for the visit and kept (minor units)."""
    payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS,
                              status__in=("succeeded", "refunded")).no_dereference().first()
    if payment is None or (payment.method or "online") != "online":
        return 0
    return max(0, payment.amount - (payment.amount_refunded or 0))


def fee_of(appointment, kind):
    """The appointment's fee Payment of `kind`, or None."""
    return Payment.objects(appointment=appointment.id, kind=kind).no_dereference().first()


def fee_view(payment):
    """A fee as the API answers it: `{kind, amount, currency, status}` (status in words a patient reads)."""
    if payment is None:
        return None
    if payment.status == "succeeded":
        state = "charged"
    elif payment.status == "refunded":
        state = "refunded"
    elif payment.fee_state == "waived":
        state = "waived"
    elif payment.fee_state:
        state = "due"
    else:
        state = "pending"
    return {"kind": payment.kind, "amount": payment.amount, "currency": payment.currency, "status": state}


def charge_fee(appointment, kind, amount, now, actor="system"):
    """Create the appointment's fee of `kind` and charge it once; returns the fee Payment.

    A second call finds the first one's Payment and charges nothing (the unique index decides).
    """
    if kind not in FEE_KINDS:
        raise ValueError(kind)
    cap = fee_amount(appointment, kind)
    amount = min(int(amount), cap)
    if amount <= 0:
        return None
    payment = new_payment("pending", id=ObjectId(), appointment=appointment.id,
                          patient=_ref_id(appointment.patient), amount=amount, currency=appointment.currency,
                          flow="elements", kind=kind, created_at=now, updated_at=now)
    try:
        payment.save(force_insert=True)
    except NotUniqueError:
        return fee_of(appointment, kind)  # charged (or being charged) by the first caller
    _audit(actor, f"payment.{kind}", f"Payment:{payment.id}", outcome="created")
    _attempt(payment, actor, now)
    payment.reload()
    return payment


def _attempt(payment, actor, now):
    """Charge a pending fee off-session with the saved card (the same key every time)."""
    patient = Patient.objects(id=_ref_id(payment.patient)).first()
    if patient is not None and patient.guardian is not None:
        patient = Patient.objects(id=_ref_id(patient.guardian)).first()  # a dependant's: the account holder's card
    if patient is None or not patient.card_payment_method or not patient.stripe_customer:
        return _due(payment, "no_card", actor, now)
    params = {"amount": payment.amount, "currency": payment.currency, "customer": patient.stripe_customer,
              "payment_method": patient.card_payment_method, "off_session": True, "confirm": True,
              "payment_method_types": ["card"],
              "metadata": {"appointment_id": str(_ref_id(payment.appointment)), "payment_id": str(payment.id),
                           "kind": payment.kind, "flow": "fee"}}
    key = f"fee:{_ref_id(payment.appointment)}:{payment.kind}"
    try:
        pi = _obj(stripe_api().v1.payment_intents.create(params, options={"idempotency_key": key}))
    except CardError as exc:
        error = getattr(exc, "error", None)
        pi = _obj(getattr(error, "payment_intent", None)) if error is not None else None
        if pi:
            _follow(payment, pi["id"], now)
        reason = "authentication_required" if getattr(exc, "code", "") == "authentication_required" else "declined"
        return _due(payment, reason, actor, now)
    except StripeError as exc:
        if is_transient(exc):
            log.warning("fee %s left pending, Stripe unavailable: %s", payment.id, exc)
            return "deferred"
        log.error("fee %s refused by Stripe: %s", payment.id, exc)
        return _due(payment, "declined", actor, now)
    _follow(payment, pi["id"], now)
    if pi.get("status") == "requires_action":
        return _due(payment, "authentication_required", actor, now)
    return sync_payment_intent(pi["id"], actor, now).outcome


def _follow(payment, pi_id, now):
    _move_payment(payment, "pending", now, only_from=("pending", "failed"), set__stripe_payment_intent=pi_id)


def _due(payment, reason, actor, now):
    """The fee could not be taken off-session: staff see it due, the patient is emailed a pay link."""
    _move_payment(payment, "pending", now, only_from=("pending", "failed"), set__fee_state=reason)
    enqueue_for_appointment("fee_due", payment.appointment, now, variant=payment.kind,
                            context={"payment_id": str(payment.id), "kind": payment.kind,
                                     "amount": payment.amount, "currency": payment.currency})
    _audit(actor, f"payment.{payment.kind}", f"Payment:{payment.id}", outcome=f"due:{reason}")
    return f"fee_due_{reason}"


def late_cancel_fee(appointment, now, actor="system"):
    """After a patient's cancellation inside the window: charge the late fee (less what was paid)."""
    stored = Appointment.objects(id=appointment.id).first()
    if stored is None or stored.status != "cancelled":
        return None
    terms = cancellation_terms(stored, now, status="confirmed")
    if not terms.fee:
        return None
    return charge_fee(stored, "late_cancel_fee", terms.fee - paid_online(stored), now, actor)


@audited("appointment.no_show", appointment_record)
def no_show(appointment, now, charge=True, reason="", actor="staff"):
    """Staff mark a no-show (after their confirm step): the agreed no-show fee is charged, or waived
    with a reason (required). Returns the fee Payment (None when no fee was agreed). `charge=None`
    (a bulk action with no confirm step) marks only appointments without a fee."""
    cap = fee_amount(appointment, "no_show_fee")
    if cap and charge is None:
        raise Conflict("This appointment has a no-show fee: mark it from the day view, where you charge "
                       "or waive the fee.", code="fee_decision_required")
    if cap and not charge and not (reason or "").strip():
        raise ValidationFailed("Give a reason for waiving the no-show fee.", fields={"reason": "required"})
    mark_no_show(appointment, now)
    if not cap:
        return None
    appointment.reload()
    if charge:
        return charge_fee(appointment, "no_show_fee", cap - paid_online(appointment), now, actor)
    payment = new_payment("pending", id=ObjectId(), appointment=appointment.id,
                          patient=_ref_id(appointment.patient), amount=cap, currency=appointment.currency,
                          kind="no_show_fee", created_at=now, updated_at=now)
    try:
        payment.save(force_insert=True)
    except NotUniqueError:
        return fee_of(appointment, "no_show_fee")
    _move_payment(payment, "canceled", now, set__fee_state="waived", set__waived_reason=reason.strip()[:300])
    _audit(actor, "payment.no_show_fee", f"Payment:{payment.id}", outcome="waived")
    return payment


@audited("appointment.undo_no_show", appointment_record, outcome=lambda undone: undone.outcome)
def undo_no_show(appointment, now, actor="staff"):
    """Staff take back a no-show (the patient came after all): the visit is confirmed again and its
    no-show fee is undone too, once. Returns an `UndoneNoShow` saying what happened to the fee.

    A fee still due is waived (its intent cancelled, so the pay link says it is no longer owed); a
    fee taken is refunded in full through `refund_fee`. Each writes its own audit event. Undoing
    twice is refused by the appointment's guarded move, so the fee is never touched twice.
    """
    unmark_no_show(appointment, now)
    undone = _undo_fee(fee_of(appointment, "no_show_fee"), now, actor)
    if undone.outcome in ("refunded", "refund_pending", "waived"):
        # The patient was charged or asked to pay: they are told it is given back or no longer owed.
        fee = undone.fee
        enqueue_for_appointment("fee_returned", appointment, now, variant=fee.kind, context={
            "payment_id": str(fee.id), "kind": fee.kind, "amount": undone.amount, "currency": fee.currency,
            "how": "waived" if undone.outcome == "waived" else "refunded"})
    return undone


UNDONE_REASON = "the no-show was undone"


def _undo_fee(fee, now, actor, again=True):
    """Give back (refund) or stop asking for (waive) an undone no-show's fee, whichever it needs now."""
    if fee is None:
        return UndoneNoShow(None, "no_fee")
    if fee.status in ("canceled", "refunded") or fee.fee_state == "waived":
        return UndoneNoShow(fee, "nothing_due")
    if fee.status == "processing":  # the bank has not answered: staff refund it once it is taken
        return UndoneNoShow(fee, "processing", fee.amount)
    if fee.status == "succeeded":
        left = fee.amount - (fee.amount_refunded or 0)
        try:
            refund_fee(fee, now, actor=actor, audit_as=actor)
        except RefundFailed:  # given back to the books; the home page lists the refused refund
            return UndoneNoShow(fee, "refund_refused", left)
        except StripeError as exc:
            if not is_transient(exc):
                raise
            # The refund is reserved on the fee; the sweep sends it (retry_pending_refunds).
            return UndoneNoShow(fee, "refund_pending", left)
        fee.reload()
        return UndoneNoShow(fee, "refunded" if fee.status == "refunded" else "refund_pending", left)
    try:
        waive_fee(fee, UNDONE_REASON, now, actor=actor, audit_as=actor)
    except Conflict:
        if not again:
            raise
        fee.reload()  # paid on the pay page a moment ago: refund it instead
        return _undo_fee(fee, now, actor, again=False)
    return UndoneNoShow(fee, "waived", fee.amount)


@dataclass
class UndoneNoShow:
    """What undoing a no-show did to its fee: `outcome` is "no_fee", "nothing_due" (already waived or
    refunded), "waived" (it was due), "refunded", "refund_pending" (Stripe has not answered yet),
    "refund_refused" (Stripe said no: staff settle it) or "processing" (the charge itself is not
    settled); `amount` the money given back or no longer asked for (minor units)."""

    fee: object
    outcome: str
    amount: int = 0


def _fee_still_due(message, now):
    """The send-time check of a `fee_due` message: dropped once its fee is paid, waived or refunded
    (a text held back by quiet hours must not ask for a fee the clinic took back)."""
    ident = (message.context or {}).get("payment_id")
    if not ident or not ObjectId.is_valid(str(ident)):
        return None
    payment = Payment.objects(id=ident).only("status", "fee_state").first()
    if payment is None:
        return "the fee is gone"
    if payment.status not in ("pending", "failed") or payment.fee_state == "waived":
        return f"the fee is no longer due (it is {fee_view(payment)['status']})"
    return None


register_check("fee_due", _fee_still_due)


@audited("payment.fee_waive", lambda payment, *a, **k: f"Payment:{payment.id}")
def waive_fee(payment, reason, now, actor="staff"):
    """Staff waive a fee that is still due (with a reason); a charged fee is refunded instead."""
    if not (reason or "").strip():
        raise ValidationFailed("Give a reason for waiving the fee.", fields={"reason": "required"})
    # A fee whose off-session charge failed is as unpaid as a pending one.
    if payment.kind not in FEE_KINDS or payment.status not in ("pending", "failed"):
        raise Conflict("Only a fee that is still due can be waived; refund a charged fee instead.",
                       code="not_waivable")
    if payment.stripe_payment_intent:
        try:
            stripe_api().v1.payment_intents.cancel(payment.stripe_payment_intent)
        except StripeError as exc:
            log.warning("fee %s: could not cancel its intent: %s", payment.id, exc)
    if not _move_payment(payment, "canceled", now, only_from=("pending", "failed"),
                         set__fee_state="waived", set__waived_reason=reason.strip()[:300]):
        raise Conflict("This fee changed a moment ago; look again.", code="fee_changed")
    return payment


@audited("payment.fee_refund", lambda payment, *a, **k: f"Payment:{payment.id}")
def refund_fee(payment, now, actor="staff"):
    """Staff refund a charged fee in full (what is left of it); None for anything but a charged fee."""
    if payment.kind not in FEE_KINDS or payment.status != "succeeded":
        return None
    return refund_payment(payment, reason="fee refunded by staff", actor=actor, now=now)


def start_fee_payment(patient, payment_id, now, appointment_id=None):
    """The pay link's page: the fee's intent for Stripe.js to confirm on-session (3-D Secure),
    `{client_secret, publishable_key, amount, currency, status}`; 404 for anyone else's fee.

    A dependant's visit's fee is the account holder's to pay (their card, their pay link). With
    `appointment_id` (the pay link's page names one) the fee must be that appointment's too: a link
    pairing one's own fee with another visit is not found, so no page shows a fee under the wrong visit."""
    if not ObjectId.is_valid(str(payment_id)):
        raise NotFound("No such fee.")
    fees = Payment.objects(id=payment_id, patient__in=household_ids(patient), kind__in=FEE_KINDS)
    if appointment_id is not None:
        if not ObjectId.is_valid(str(appointment_id)):
            raise NotFound("No such fee.")
        fees = fees.filter(appointment=ObjectId(str(appointment_id)))
    payment = fees.first()
    if payment is None:
        raise NotFound("No such fee.")
    answer = {"amount": payment.amount, "currency": payment.currency, "kind": payment.kind,
              "status": fee_view(payment)["status"], "client_secret": None,
              "publishable_key": current_app.config.get("STRIPE_PUBLISHABLE_KEY")}
    if payment.status == "pending" and payment.stripe_payment_intent and payment.fee_state != "waived":
        pi = _obj(stripe_api().v1.payment_intents.retrieve(payment.stripe_payment_intent))
        if pi.get("status") == "requires_action":
            answer["client_secret"] = pi["client_secret"]
        else:
            sync_payment_intent(pi["id"], f"patient:{patient.id}", now)
            payment.reload()
            answer["status"] = fee_view(payment)["status"]
    return answer


def retry_fees(now=None, older_than=None):
    """The sweep's step: charge again each fee left pending because Stripe did not answer."""
    now = now or utcnow()
    done = 0
    query = Payment.objects(kind__in=FEE_KINDS, status="pending", stripe_payment_intent=None, fee_state="")
    if older_than is not None:
        query = query.filter(updated_at__lte=now - older_than)
    for payment in query:
        outcome = _attempt(payment, "system", now)
        done += outcome != "deferred"
    return done


def cancellation_money(appointment):
    """What a cancellation did to the money, for the cancel answer: `{refund, fee}` (each None or
    `{amount, currency, status}`; the fee with its `kind`)."""
    payment = Payment.objects(appointment=appointment.id, kind__in=UPFRONT_KINDS).no_dereference().first()
    refund = None
    if payment is not None and payment.amount_refunded:
        pending = any(r.status == "pending" for r in payment.refunds)
        refund = {"amount": payment.amount_refunded, "currency": payment.currency,
                  "status": "pending" if pending else "refunded"}
    return {"refund": refund, "fee": fee_view(fee_of(appointment, "late_cancel_fee"))}
