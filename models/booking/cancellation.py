"""Cancelling: within the service's policy for a patient, at any time for staff; the time goes back,
the money is settled by whoever subscribed to `hooks.after_cancel` (payments), the notice is queued
and the freed time is offered to the waitlist."""

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from models import crashpoints
from models.audit import appointment_record, audited
from models.booking import hooks, status
from models.booking.documents import ACTIVE_STATUSES, HOLDING_STATUSES, Appointment
from models.booking.claims import release_time
from models.booking.rules import effective_status
from models.booking.waitlist import time_freed
from models.catalog.documents import Clinic
from models.clock import as_utc as _utc
from models.errors import Conflict
from models.messages.outbox import appointment_cancelled, drop_superseded_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CancellationTerms:
    """Whether the patient may still cancel online, until when, and what cancelling refunds."""

    status: str  # the status the terms are about
    window_hours: int  # the service's cancellation window
    until: "datetime | None"  # the last instant to cancel (or move) online; None while only held
    may_cancel: bool  # online, now
    refund: str  # of what was paid: "full" or "none"
    fee: int = 0  # no-show protection: the late-cancellation fee cancelling now costs (minor units)


def cancellation_terms(appointment, now, status=None):
    """The cancellation terms of an appointment now (`status`: the one it had, when just cancelled)."""
    terms = cancellation_terms_for(appointment.service, appointment.start, now,
                                   status or effective_status(appointment, now))
    agreed = getattr(appointment, "policy", None)
    if (agreed is not None and agreed.late_cancel_fee and terms.status == "confirmed"
            and terms.until is not None and terms.until < now < _utc(appointment.start)):
        # Inside the window with a late-cancellation fee agreed: the patient may still cancel
        # online, and the fee applies (never above what was agreed, nor the service's fee now).
        fee = min(agreed.late_cancel_fee, getattr(appointment.service, "late_cancel_fee", 0) or 0)
        return replace(terms, may_cancel=True, fee=fee)
    return terms


def cancellation_terms_for(service, start, now, status="confirmed"):
    """The cancellation terms of the service at `start` (by default once booked and confirmed)."""
    # The one statement of the policy: the booking page's review and policy text, the cancel and
    # reschedule rules and the refund after a cancellation (payments) all read it here.
    hours = getattr(service, "cancellation_window_hours", None) or 0
    if status == "held":
        # Never confirmed: the patient may let it go at any time, and gets back anything paid.
        return CancellationTerms(status, hours, None, True, "full")
    until = _utc(start) - timedelta(hours=hours)
    refund = "full" if getattr(service, "refund_rule", "full") == "full" else "none"
    return CancellationTerms(status, hours, until, status == "confirmed" and now <= until, refund)


def cancellation_blocker(appointment, now, clinic=None):
    """Why the patient may not cancel online now, or None when they may."""
    terms = cancellation_terms(appointment, now)
    if terms.status not in ("held", "confirmed"):
        return f"This appointment is {terms.status.replace('_', ' ')} and cannot be cancelled."
    if terms.may_cancel:
        return None
    clinic = clinic or Clinic.get()
    phone = f" on {clinic.phone}" if clinic and clinic.phone else ""
    hours = terms.window_hours
    return (f"Appointments for {appointment.service.name} can't be cancelled online less than "
            f"{hours} hour{'s' if hours != 1 else ''} before they start. Please call the clinic{phone}.")


@audited("appointment.cancel", appointment_record)
def cancel(appointment, now, reason="", by_staff=False, actor=None, refund_amount=None, refund_decision=""):
    """Cancel an appointment within policy (staff may cancel at any time) and free its time.

    `actor` ("patient:<id>", "staff:<id>") is recorded on the refund's audit event. Staff may
    decide the refund themselves (`refund_amount` minor units, `refund_decision` its name); the
    payments subscriber then refunds that instead of what the service's rule says. Recoverable
    (issue 31): the status change carries the `pending="cancel"` marker (with the staff's refund
    decision in its arguments), the later steps are each idempotent and the marker goes last, so a
    crash anywhere leaves a cancellation that a repeated request (answered as a success) or the
    sweep (`finish_cancel`) completes.
    """
    if appointment.pending == "cancel" and appointment.status == "cancelled":
        return finish_cancel(appointment, now)  # a repeated request finishes the job
    if not by_staff:
        blocker = cancellation_blocker(appointment, now)
        if blocker:
            raise Conflict(blocker, code="cancellation_window")
    args = {"by_staff": bool(by_staff), "status_before": appointment.status, "actor": actor or ""}
    if refund_amount is not None:  # staff's own refund decision (issue 26), kept for the finisher
        args["refund_amount"] = int(refund_amount)
    moved = status.move(appointment.id, "cancelled", now, only_from=ACTIVE_STATUSES,
                        set__cancel_reason=reason[:500], set__refund_decision=refund_decision or "",
                        set__pending="cancel", set__pending_since=now, set__pending_args=args)
    if not moved:
        appointment.reload()
        if appointment.pending == "cancel":  # a racing request cancelled it and has not finished
            return finish_cancel(appointment, now)
        raise Conflict("This appointment was already closed.", code="already_closed")
    appointment.pending_args = args
    crashpoints.reached("cancel.moved")
    return _finish_after_commit(appointment, now, finish_cancel)


def _finish_after_commit(appointment, now, finish):
    """Run an action's later steps once its change is committed: a failure there is logged and left
    to the sweep (the marker stays), never answered as an error for what happened (issue 31)."""
    try:
        return finish(appointment, now)
    except Exception as exc:
        log.warning("appointment %s: %s done, its follow-ups left to the sweep: %s",
                    appointment.id, appointment.pending or "action", exc)
        try:
            appointment.reload()
        except Exception:
            pass  # the document in hand already says what was committed
        return appointment


def finish_cancel(appointment, now):
    """The steps after a cancellation's status change, each idempotent; the marker is cleared last.

    Called by `cancel`, by a repeated cancel of the same appointment and by the sweep.
    """
    args = dict(appointment.pending_args or {})
    status_before = args.get("status_before") or "confirmed"
    release_time(appointment.id)
    # Its reminders (and any notice not sent yet) are for a visit that will not happen: drop them now,
    # so a worker claiming one before the send-time check's next look cannot send it either.
    drop_superseded_for(appointment.id, "the appointment changed: it was cancelled")
    crashpoints.reached("cancel.released")
    # Its money: a refund when paid and due, or the unfinished payment stopped at Stripe
    # (payments.after_cancellation, subscribed through the hook: payments sits above booking).
    # Repeating it is safe: a refund is reserved for what is left, a stopped intent stays stopped.
    decided = {} if args.get("refund_amount") is None else {"refund_amount": int(args["refund_amount"])}
    hooks.cancelled(appointment, now, by_staff=bool(args.get("by_staff")), status_before=status_before,
                    actor=args.get("actor") or None, **decided)
    crashpoints.reached("cancel.settled")
    if status_before not in HOLDING_STATUSES:  # an abandoned hold or an open offer was never confirmed by email
        appointment_cancelled(appointment, now, strict=True)  # one per version: never twice
    crashpoints.reached("cancel.notified")
    # The freed time goes to the first patient in line.
    time_freed(appointment.provider.id, now)
    crashpoints.reached("cancel.offered")
    Appointment.objects(id=appointment.id, pending="cancel").update_one(
        unset__pending=True, unset__pending_since=True, unset__pending_args=True)
    appointment.reload()
    return appointment
