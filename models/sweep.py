"""The sweeper: one pass that expires lapsed holds and reconciles payments with Stripe.

localstripe (and a webhook endpoint that was down) can leave money state behind: it sends no
event for a cancel or a refund and never retries a delivery. So the sweeper re-fetches:

1. Lapsed holds: before a hold with a PaymentIntent / Checkout Session is expired, the intent is
   cancelled (the session expired) and the payment re-synced. If it had succeeded, the sync
   confirms the appointment (or refunds it) instead; if Stripe cannot be asked, the hold is left
   for the next pass (its time is already free for new bookings at read time).
2. Payments stuck in `pending`/`processing` for over a minute are re-synced; succeeded payments
   whose appointment is still held or expired are settled; refunds that never reached Stripe are
   sent again with their idempotency keys.
3. A confirmed booking of the last day whose confirmation never reached the outbox (queuing failed
   after the booking was written, and was only logged) gets its confirmation queued (issue 31).
4. Time claims whose appointment does not exist (older than two minutes: a booking inserts its
   claims just before its appointment) are deleted, as are the claims of expired or cancelled
   appointments that were not secured by a payment.
5. Audit events an action's change carried but did not copy into the trail (cut off in between,
   issue 24) are copied now.
6. Inconsistencies it cannot fix are reported.

A pass holds a lease (redis-py's `Lock` under the app's key prefix), so running the sweeper from
several machines at once does each pass once; every step is a guarded update anyway.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from mongoengine.queryset.visitor import Q

from models.audit import flush_carried, record_audit
from models.booking import status
from models.booking.claims import DELETE_ORPHANS_AFTER, release_time, tidy_claims  # noqa: F401
from models.booking.cancellation import finish_cancel
from models.booking.documents import HOLDING_STATUSES, Appointment, TimeClaim
from models.booking.reschedule import finish_reschedule
from models.booking.waitlist import sweep_waitlist
from models.clock import as_utc, utcnow
from models.messages.delivery import deliver_due
from models.messages.documents import OutboxMessage
from models.messages.outbox import appointment_confirmed
from models.messages.sms import deliver_sms_due
from models.payments.cancellation import stop_and_sync
from models.payments.documents import FEE_KINDS, UPFRONT_KINDS, Payment
from models.payments.fees import retry_fees
from models.payments.ledger import _move_payment
from models.payments.refunds import retry_pending_refunds
from models.payments.settlement import settle_paid
from models.payments.sync import sync_payment
from models import stores
from models.stores import rkey

log = logging.getLogger(__name__)
LEASE_SECONDS = 30
STUCK_AFTER = timedelta(minutes=1)
# Issue 31: an action still marked unfinished this long after it began was cut off (a live request
# finishes in seconds: every wait is bounded), so the sweep finishes it.
RECOVER_AFTER = timedelta(seconds=30)
FINISHERS = {"cancel": finish_cancel, "reschedule": finish_reschedule}
RECENT = timedelta(days=1)
ACTOR = "sweeper"


@dataclass
class SweepReport:
    """What one sweep pass did."""

    expired: list = field(default_factory=list)
    confirmed: list = field(default_factory=list)
    refunded: list = field(default_factory=list)
    synced: list = field(default_factory=list)
    orphans: int = 0
    problems: list = field(default_factory=list)
    skipped: bool = False
    mail: object = None  # the outbox's DeliveryReport
    sms: object = None  # the texts' DeliveryReport (issue 29)
    offered: list = field(default_factory=list)
    completed: int = 0
    closed: list = field(default_factory=list)  # issue 31: payments that never reached Stripe, closed
    recovered: list = field(default_factory=list)  # issue 31: unfinished actions finished
    released: list = field(default_factory=list)  # issue 31: closed appointments' claims given back
    told: list = field(default_factory=list)  # issue 31: bookings whose missing confirmation was queued
    audited: int = 0  # issue 24: audit events carried by a change, copied into the trail here

    def lines(self):
        """Human-readable summary lines."""
        if self.skipped:
            return ["sweep: skipped: another sweep holds the lease"] + [
                f"sweep: problem: {p}" for p in self.problems]
        out = [f"sweep: {len(self.expired)} hold(s) expired"]
        if self.confirmed:
            out.append(f"sweep: {len(self.confirmed)} late payment(s) confirmed")
        if self.refunded:
            out.append(f"sweep: {len(self.refunded)} payment(s) refunded")
        if self.synced:
            out.append(f"sweep: {len(self.synced)} payment(s) re-synced with Stripe")
        if self.offered:
            out.append(f"sweep: {len(self.offered)} waitlist offer(s) made")
        if self.orphans:
            out.append(f"sweep: {self.orphans} stale time claim(s) deleted")
        if self.completed:
            out.append(f"sweep: {self.completed} visit(s) completed")
        if self.closed:
            out.append(f"sweep: {len(self.closed)} payment(s) that never reached Stripe closed")
        if self.recovered:
            out.append(f"sweep: {len(self.recovered)} unfinished action(s) finished")
        if self.released:
            out.append(f"sweep: time of {len(self.released)} closed appointment(s) released")
        if self.told:
            out.append(f"sweep: missing confirmation of {len(self.told)} booking(s) queued")
        if self.audited:
            out.append(f"sweep: {self.audited} carried audit event(s) copied into the trail")
        out += [f"sweep: problem: {p}" for p in self.problems]
        if self.mail is not None:
            out += [f"sweep: {line}" for line in self.mail.lines()]
        if self.sms is not None:
            out += [f"sweep: {line}" for line in self.sms.lines()]
        return out


class Lease(stores.Lease):
    """The sweep's lease, `lease:<name>`: one pass at a time across sweepers and workers.

    Acquiring never waits (a second sweeper skips its pass); renewed while the pass runs, so a
    pass cut off by a kill holds back the next one for LEASE_SECONDS at most.
    """

    def __init__(self, name="sweep", seconds=LEASE_SECONDS):
        super().__init__(rkey("lease", name), seconds)


def sweep(now=None):
    """One pass: expire lapsed holds, reconcile payments, tidy claims, send due email, report problems."""
    now = now or utcnow()
    report = SweepReport()
    lease = Lease()
    if not lease.acquire():
        report.skipped = True
        return report
    with lease.held():
        report.audited = flush_carried(Appointment) + flush_carried(Payment)
        _finish_pending(now, report)
        _release_closed(now, report)
        _expire_holds(now, report)
        _reconcile_payments(now, report)
        _recent_payments(now, report)
        _tidy_claims(now, report)
        _complete_visits(now, report)
        _queue_missed_confirmations(now, report)
        # Freed times go to the first patient in line.
        report.offered = sweep_waitlist(now, report)
        _send_mail(now, report)  # last, so this pass's offers go out at once
    return report


def _finish_pending(now, report):
    """Finish the actions a crash cut off (issue 31): each appointment marked `pending` for over
    RECOVER_AFTER is brought to the end of its action (claims, money, email, waitlist)."""
    stale = Appointment.objects(pending__exists=True, pending_since__lte=now - RECOVER_AFTER)
    for appointment in stale:
        finisher = FINISHERS.get(appointment.pending)
        if finisher is None:
            report.problems.append(f"appointment {appointment.id} has an unknown unfinished action "
                                   f"{appointment.pending!r}")
            continue
        try:
            finisher(appointment, now)
        except Exception as exc:  # a dependency hiccuped: the marker stays for the next pass
            log.warning("sweep: unfinished %s of %s left for the next pass: %s", appointment.pending,
                        appointment.id, exc)
            report.problems.append(f"unfinished {appointment.pending} of appointment {appointment.id} "
                                   f"not finished ({exc.__class__.__name__})")
            continue
        record_audit(ACTOR, f"appointment.{appointment.pending}.recovered", record=f"Appointment:{appointment.id}")
        report.recovered.append(str(appointment.id))


def _release_closed(now, report):
    """Give back the time of appointments closed in the last day that still hold claims and have
    nothing paid holding them (issue 31): a cancelled one never keeps its time; an expired one keeps
    it only while a payment has succeeded or is processing (settlement decides then)."""
    closed = {a["_id"]: a["status"] for a in Appointment._get_collection().find(
        {"status": {"$in": ["cancelled", "expired"]}, "updated_at": {"$gte": now - RECENT},
         "pending": {"$exists": False}}, {"status": 1})}
    if not closed:
        return
    holding = TimeClaim._get_collection().distinct("appointment", {"appointment": {"$in": list(closed)}})
    if not holding:
        return
    paid = set(Payment._get_collection().distinct(
        "appointment", {"appointment": {"$in": holding}, "status": {"$in": ["succeeded", "processing"]}}))
    for appointment_id in holding:
        if closed[appointment_id] == "expired" and appointment_id in paid:
            continue
        release_time(appointment_id, now=now)
        report.released.append(str(appointment_id))


# A message of these kinds for an appointment told its patient about the booking's time ("rescheduled"
# carries the new time and its .ics), so only a booking with neither was never told.
TOLD_KINDS = ("confirmed", "rescheduled")


def _queue_missed_confirmations(now, report):
    """Queue the confirmation of confirmed bookings of the last day whose patient was never told
    (issue 31: `appointment_confirmed` only logs a failure to queue, as email must never undo a
    booking). Left alone for RECOVER_AFTER after its last change, as a live request queues its own;
    a series is told by one message for all its visits, so it counts as told when any visit was.
    Idempotent: the outbox's unique (kind, subject, version, variant) makes a repeat queue nothing."""
    candidates = list(Appointment._get_collection().find(
        {"status": "confirmed", "created_at": {"$gte": now - RECENT}, "start": {"$gt": now},
         "updated_at": {"$lte": now - RECOVER_AFTER}}, {"series": 1, "start": 1}).sort("start", 1))
    if not candidates:
        return
    series = {a["series"] for a in candidates if a.get("series")}
    siblings = {}  # appointment id -> its series, for every visit of the candidates' series
    if series:
        siblings = {a["_id"]: a["series"] for a in Appointment._get_collection().find(
            {"series": {"$in": list(series)}}, {"series": 1})}
    told = _told(set(siblings) | {a["_id"] for a in candidates})
    told_series = {siblings[a] for a in told if a in siblings}
    untold, seen_series = [], set()
    for appt in candidates:
        if appt["_id"] in told or appt.get("series") in told_series or appt.get("series") in seen_series:
            continue
        if appt.get("series"):
            seen_series.add(appt["series"])  # the earliest live visit's confirmation lists every date
        untold.append(appt["_id"])
    if not untold:
        return
    paid = set(Payment._get_collection().distinct(
        "appointment", {"appointment": {"$in": untold}, "status": "succeeded", "kind": {"$in": list(UPFRONT_KINDS)}}))
    for appointment_id in untold:
        appointment_confirmed(appointment_id, now, paid=appointment_id in paid)  # logs its own failure
    for appointment_id in _told(untold):  # a patient with no address to write to gets nothing queued
        record_audit(ACTOR, "appointment.confirmation.recovered", record=f"Appointment:{appointment_id}")
        report.told.append(str(appointment_id))


def _told(appointment_ids):
    """The ids among `appointment_ids` that have a confirmation (or a reschedule notice) in the outbox."""
    return set(OutboxMessage._get_collection().distinct(
        "appointment", {"appointment": {"$in": list(appointment_ids)}, "kind": {"$in": list(TOLD_KINDS)}}))


def _complete_visits(now, report):
    """A checked-in appointment whose end has passed is `completed` (its version bumped, so any
    message still queued for it is dropped). No-shows and unattended visits stay as they are."""
    for appointment_id in Appointment.objects(status="checked_in", end__lte=now).scalar("id"):
        # Guarded per appointment: an undo of the check-in meanwhile wins.
        if status.move(appointment_id, "completed", now, only_from=("checked_in",)):
            record_audit(ACTOR, "appointment.complete", record=f"Appointment:{appointment_id}")
            report.completed += 1


def _note(outcome, appointment_id, report):
    if outcome in ("confirmed", "confirmed_late"):
        report.confirmed.append(appointment_id)
    elif outcome and outcome.startswith("refunded"):
        report.refunded.append(appointment_id)


def _expire_holds(now, report):
    # Lapsed unpaid holds and lapsed waitlist offers alike (an offer has no payment to check).
    lapsed = Appointment.objects(status__in=HOLDING_STATUSES, hold_expires_at__lte=now).only("id").no_dereference()
    for appt in lapsed:
        aid = str(appt.id)
        payment = Payment.objects(appointment=appt.id, kind__in=UPFRONT_KINDS).no_dereference().first()
        if payment is not None and (payment.stripe_payment_intent or payment.stripe_checkout_session):
            try:
                if payment.status == "succeeded":
                    outcome = settle_paid(payment, ACTOR, now, first_time=False)
                elif payment.status == "refunded":
                    outcome = None  # refunded before: nothing to settle, expire it
                else:
                    # Stop it first, so it cannot take money once the time is released.
                    outcome = stop_and_sync(payment, ACTOR, now).outcome
            except Exception as exc:  # Stripe or the database not answering: next pass
                log.warning("sweep: hold %s left for the next pass: %s", aid, exc)
                report.problems.append(f"hold {aid} not expired: its payment could not be "
                                       f"checked with Stripe ({exc.__class__.__name__})")
                continue
            _note(outcome, aid, report)
            payment.reload()
            if payment.status in ("succeeded", "processing"):
                if payment.status == "processing":
                    report.problems.append(f"hold {aid} lapsed with a payment still processing")
                continue
        # Guarded update: only a still-held (or offered), still-lapsed appointment moves to expired.
        moved = status.move(appt.id, "expired", now, only_from=HOLDING_STATUSES, where={"hold_expires_at__lte": now})
        if moved:
            # Claims secured by a payment (expires_at None) are never released here.
            release_time(appt.id, now=now, only_expiring=True)
            report.expired.append(aid)


def _reconcile_payments(now, report):
    # Stuck for a minute, or (issue 31) a confirmation whose answer was lost: re-synced at once.
    stuck = Payment.objects(Q(status__in=("pending", "processing"), updated_at__lte=now - STUCK_AFTER) |
                            Q(resync_due__ne=None))
    for payment in stuck.no_dereference():
        if not (payment.stripe_payment_intent or payment.stripe_checkout_session):
            continue
        try:
            result = sync_payment(payment, ACTOR, now)
        except Exception as exc:
            report.problems.append(f"payment {payment.id} could not be re-synced ({exc.__class__.__name__})")
            continue
        Payment.objects(id=payment.id, resync_due__ne=None).update_one(unset__resync_due=True)
        if result.outcome != "unchanged":
            report.synced.append(str(payment.id))
        _note(result.outcome, str(payment.appointment.id), report)
    _close_intentless(now, report)

    # No-show protection: fees Stripe did not answer for are charged again with the same key.
    try:
        if retry_fees(now, older_than=STUCK_AFTER):
            report.synced.append("fees")
    except Exception as exc:
        report.problems.append(f"fees still waiting to be charged ({exc.__class__.__name__})")

    for payment in Payment.objects(refunds__status="pending").no_dereference():
        try:
            if retry_pending_refunds(payment, ACTOR, now, older_than=now - STUCK_AFTER):
                report.refunded.append(str(payment.appointment.id))
        except Exception as exc:
            report.problems.append(f"refund of payment {payment.id} still pending ({exc.__class__.__name__})")


def _close_intentless(now, report):
    """A Payment that never reached Stripe (no intent, no session) closes with its hold (issue 31):
    `canceled` once its appointment is no longer held or its hold has lapsed; nothing to ask Stripe.
    Only the booking's own payment (or deposit): a fee with no intent yet is charged again by `retry_fees`."""
    waiting = Payment.objects(status="pending", stripe_payment_intent=None, stripe_checkout_session=None,
                              method="online", kind__in=UPFRONT_KINDS,  # a fee waits for `retry_fees`
                              updated_at__lte=now - STUCK_AFTER).no_dereference()
    for payment in waiting:
        appt = Appointment.objects(id=payment.appointment.id).only("status", "hold_expires_at").first()
        hold_lapsed = appt is not None and appt.status == "held" and appt.hold_expires_at is not None \
            and as_utc(appt.hold_expires_at) <= now
        if appt is None or appt.status != "held" or hold_lapsed:
            if _move_payment(payment, "canceled", now, only_from=("pending",),
                             where={"stripe_payment_intent": None, "stripe_checkout_session": None}):
                report.closed.append(str(payment.id))


def _tidy_claims(now, report):
    deleted, problems = tidy_claims(now)
    report.orphans += deleted
    report.problems += problems


def _recent_payments(now, report):
    """Payments that moved in the last day: settle the ones whose appointment never caught up
    (a crash between the payment's update and the appointment's) and report what is wrong."""
    recent = list(Payment.objects(status__in=("succeeded", "refunded"),
                                  updated_at__gte=now - RECENT).no_dereference())
    appts = {a.id: a for a in Appointment.objects(id__in=[p.appointment.id for p in recent]).only("status")}
    for payment in recent:
        appt = appts.get(payment.appointment.id)
        if (payment.amount_refunded or 0) > payment.amount:
            report.problems.append(f"payment {payment.id} has more refunded than paid")
        if appt is None:
            report.problems.append(f"payment {payment.id} belongs to no appointment")
        elif payment.kind in FEE_KINDS:
            continue  # a fee follows a closed appointment by design: nothing to settle or refund
        elif payment.status == "succeeded" and appt.status in ("held", "expired"):
            try:
                _note(settle_paid(payment, ACTOR, now, first_time=False), str(appt.id), report)
            except Exception as exc:
                report.problems.append(f"paid appointment {appt.id} could not be settled "
                                       f"({exc.__class__.__name__})")
        elif (payment.status == "succeeded" and appt.status == "cancelled" and not payment.amount_refunded
              and not Payment.objects(appointment=appt.id, kind="late_cancel_fee").count()):
            # (a late cancellation keeps what was paid towards its fee: no refund is expected then)
            report.problems.append(f"appointment {appt.id} is cancelled but its payment was not "
                                   "refunded (check the service's refund rule)")


def _send_mail(now, report):
    """Send the email that is due from the outbox (each message claimed atomically)."""
    try:
        report.mail = deliver_due(now)
    except Exception as exc:  # the database hiccuped: the messages stay queued for the next pass
        log.warning("sweep: mail not sent this pass: %s", exc)
        report.problems.append(f"mail not sent this pass ({exc.__class__.__name__})")
    try:
        report.sms = deliver_sms_due(now)
    except Exception as exc:  # as for mail: the texts stay queued for the next pass
        log.warning("sweep: texts not sent this pass: %s", exc)
        report.problems.append(f"texts not sent this pass ({exc.__class__.__name__})")
