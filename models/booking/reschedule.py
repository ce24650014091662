"""Reschedule: move an appointment to another free time of the same service, claiming before releasing.

The order is what makes it safe:

1. the new time is checked like a new booking (hours, grid, notice, horizon, time off, the
   patient's other appointments) and the cancellation window applies, as for cancel;
2. the intent is written first: a `pending="reschedule"` marker on the appointment (issue 31);
3. the new time's 5-minute units are claimed under the appointment's own id with the same unique
   index every booking uses, so a race with another patient is lost by exactly one of the two (409
   `slot_taken`; only the units this move added are given back and the old time is untouched);
4. the appointment is moved with a guarded update (only if it still is where it was, and active);
5. `finish_reschedule` releases the units outside its new span, tells the patient and clears the
   marker. A crash anywhere leaves the marker: the sweep or a repeated request finishes the move
   (or, if the appointment never moved, gives back the new units).

The patient-overlap check (step 1) is the booking's own (`create.check_patient_overlap`); the
patient's doors run the whole action under the booking's per-patient lock and a reschedule
throttle (`portal/door.py`). Messages queued for the old time are dropped from the outbox at once.

So the appointment never ends up with both times or with neither. It stays the same document:
its Payment (keyed by the appointment) carries over, and so does its hold expiry when unpaid.
"""

from models import crashpoints
from models.audit import appointment_record, audited, carried_update, settle_carried, take_carried
from models.booking import waitlist
from models.booking.availability import why_not_bookable
from models.booking.cancellation import _finish_after_commit, cancellation_blocker, cancellation_terms
from models.booking.claims import (claim_exact_units, claim_units, drop_claims, make_permanent,
                                   trim_claims)
from models.booking.create import check_patient_overlap, first_free, live_appointments
from models.booking.documents import ACTIVE_STATUSES, OFFERED, Appointment
from models.booking.rules import (REASONS, checked_start, clinic_closed, effective_status, schedule_days,
                                  service_rules)
from models.catalog.documents import TimeOff
from models.catalog.snapshot import changed, current_catalog
from models.clock import _utc
from models.errors import Conflict, ValidationFailed
from models.messages import notify


def reschedule_blocker(appointment, now, clinic=None):
    """Why the patient may not move this appointment online now, or None when they may."""
    status = effective_status(appointment, now)
    if status == OFFERED:
        return "Accept the waitlist offer first."
    if status not in ("held", "confirmed"):
        return f"This appointment is {status.replace('_', ' ')} and cannot be moved."
    blocker = cancellation_blocker(appointment, now, clinic)
    if blocker:
        return blocker.replace("cancelled online", "moved or cancelled online")
    terms = cancellation_terms(appointment, now)
    if terms.fee:
        # No-show protection: inside the window a move would dodge the agreed late fee.
        hours = terms.window_hours
        return (f"Appointments for {appointment.service.name} can't be moved online less than {hours} "
                f"hour{'s' if hours != 1 else ''} before they start. You may still cancel (the "
                f"late-cancellation fee applies), or call the clinic.")
    return None


@audited("appointment.reschedule", appointment_record)
def reschedule(appointment, new_start, now, provider_id=None, actor="patient", by_staff=False):
    """Move the appointment to `new_start` (same service; same provider unless one is named).

    Raises Conflict (`slot_taken`, `inside_cancellation_window`, `patient_overlap`,
    `provider_away`, `not_movable`) or ValidationFailed (`not_bookable_*`); nothing changes then.
    Returns the moved appointment; the patient is notified and the old time is offered to the
    waitlist.
    """
    new_start = checked_start(new_start)
    if appointment.pending == "reschedule":
        # A move cut off mid-way (issue 31): finish it first; repeating that same move is then done.
        finish_reschedule(appointment, now)
        if _utc(appointment.start) == new_start and (provider_id is None or str(appointment.provider.id) == str(provider_id)):
            return appointment
    move = plan_move(appointment, new_start, now, provider_id, actor=actor, by_staff=by_staff)
    claim_move(move, now)
    return commit_move(move, now)


class Move:
    """One appointment's planned move: what `claim_move` claims and `commit_move` writes."""

    def __init__(self, appointment, provider, new_start, new_end, block, to_claim, expires_at, actor):
        self.appointment, self.provider, self.new_start, self.new_end = appointment, provider, new_start, new_end
        self.block_start, self.block_end = block
        self.to_claim, self.expires_at, self.actor = to_claim, expires_at, actor
        self.old_start, self.old_provider = _utc(appointment.start), appointment.provider.id


def plan_move(appointment, new_start, now, provider_id=None, actor="patient", by_staff=False, exclude=()):
    """Check a move like a new booking (blockers, hours, closures, notice, horizon, the patient's
    overlap) without writing anything; the Move to claim, or the refusal.

    `exclude`: other appointments moving in the same action (a series' later visits, issue 28),
    left out of the patient-overlap check since they leave their times too.
    """
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    if not by_staff:
        blocker = reschedule_blocker(appointment, now, clinic)
        if blocker:
            inside = effective_status(appointment, now) == "confirmed" and (
                cancellation_blocker(appointment, now, clinic) is not None
                or bool(cancellation_terms(appointment, now).fee))
            raise Conflict(blocker, code="inside_cancellation_window" if inside else "not_movable")
    elif appointment.status not in ACTIVE_STATUSES or appointment.status == OFFERED:
        # An open waitlist offer is not the patient's booking yet: staff move it only once accepted.
        raise Conflict("This appointment is closed and cannot be moved.", code="not_movable")
    service = catalog.service(appointment.service.id)
    provider = catalog.provider_for(service, provider_id or appointment.provider.id)
    rules = service_rules(service, clinic)
    week, overrides = schedule_days(catalog.schedules.get(provider.id))
    time_off = [(_utc(t.start), _utc(t.end)) for t in TimeOff.objects(
        provider=provider.id, start__lt=new_start + rules.duration + rules.buffer_after,
        end__gt=new_start - rules.buffer_before)]
    closed = clinic_closed(catalog, new_start - rules.buffer_before, new_start + rules.duration + rules.buffer_after)
    reason = why_not_bookable(tz=clinic.timezone, days=week, overrides=overrides, time_off=time_off,
                              busy=[], rules=rules, now=now, start=new_start, closures=closed)
    if reason == "busy":
        raise Conflict("The provider is away at that time.", code="provider_away")
    if reason:
        raise ValidationFailed(REASONS[reason], code=f"not_bookable_{reason}", fields={"start": reason})
    old_start, old_provider = _utc(appointment.start), appointment.provider.id
    if new_start == old_start and provider.id == old_provider:
        raise ValidationFailed("That is the time you already have.", code="same_time", fields={"start": "same"})
    new_end = new_start + rules.duration
    # The patient's overlap rule, the one every booking passes; the door's per-patient lock keeps
    # two moves (or a move and a booking) from both passing it.
    leaving = {appointment.id, *exclude}
    check_patient_overlap([a for a in live_appointments(appointment.patient.id, now, exclude=appointment.id)
                           if a.id not in leaving], new_start, new_end)

    block_start, block_end = new_start - rules.buffer_before, new_end + rules.buffer_after
    old_block = (_utc(appointment.block_start), _utc(appointment.block_end))
    old_units = set(claim_units(*old_block))
    new_units = claim_units(block_start, block_end)
    # Units the appointment already holds with this provider stay put; only the others are claimed.
    to_claim = [u for u in new_units if provider.id != old_provider or u not in old_units]
    expires_at = appointment.hold_expires_at if appointment.status == "held" else None
    return Move(appointment, provider, new_start, new_end, (block_start, block_end), to_claim, expires_at, actor)


def claim_move(move, now):
    """Mark the intent on the appointment, then claim the move's new units (all or nothing).

    Raises Conflict (`slot_taken`, `not_movable`) with nothing left behind; `undo_claim` gives a
    claimed move back before it is committed (a series move refused further on, issue 28).
    """
    appointment = move.appointment
    # Issue 31: the intent first. The marker (with what the move needs to be finished or undone)
    # is written before any claim, so a crash at any later point leaves an appointment that the
    # sweep or a repeated request brings to one time: `finish_reschedule`.
    args = {"old_start": move.old_start, "old_provider": move.old_provider, "new_start": move.new_start,
            "new_provider": move.provider.id, "actor": move.actor, "new_end": move.new_end,
            "block_start": move.block_start, "block_end": move.block_end}
    marked = Appointment.objects(id=appointment.id, status__in=ACTIVE_STATUSES, start=appointment.start,
                                 provider=move.old_provider, pending__exists=False).update_one(
        set__pending="reschedule", set__pending_since=now, set__pending_args=args)
    if not marked:
        raise Conflict("This appointment changed meanwhile; reload and try again.", code="not_movable")
    crashpoints.reached("reschedule.marked")
    # The new units are claimed under the appointment's own id (a crash leaves no orphan another
    # booking could take over); a refusal gives back only the units this move added.
    try:
        claim_exact_units(move.provider.id, appointment.id, move.to_claim, move.expires_at, now,
                          give_back=lambda: drop_claims(appointment.id, move.provider.id, move.to_claim))
    except Conflict:
        # Refused (the time is taken) and the added units given back: nothing to finish.
        _unmark(appointment)
        raise
    crashpoints.reached("reschedule.claimed")


def undo_claim(move):
    """Give back the units a claimed (not yet committed) move added and clear its marker."""
    drop_claims(move.appointment.id, move.provider.id, move.to_claim)
    _unmark(move.appointment)
    changed("availability")


def decide_moves(moves):
    """Mark claimed moves as decided (issue 31): every new time is claimed, so from here a crash
    ends with all of them moved (`finish_reschedule` commits a decided move), never some."""
    Appointment._get_collection().update_many(
        {"_id": {"$in": [m.appointment.id for m in moves]}, "pending": "reschedule"},
        {"$set": {"pending_args.decided": True}})
    crashpoints.reached("series.decided")


def _commit_decided(appointment, args, now):
    """The guarded update of a decided move cut off before it was written; True when it wrote."""
    return bool(Appointment.objects(id=appointment.id, status__in=ACTIVE_STATUSES, start=args["old_start"],
                                    provider=args["old_provider"]).update_one(
        set__start=args["new_start"], set__end=args["new_end"], set__block_start=args["block_start"],
        set__block_end=args["block_end"], set__provider=args["new_provider"], set__updated_at=now,
        inc__version=1))


def _unmark(appointment):
    Appointment.objects(id=appointment.id, pending="reschedule").update_one(
        unset__pending=True, unset__pending_since=True, unset__pending_args=True)


def commit_move(move, now):
    """Move the claimed appointment with a guarded update, then finish (release, notify, waitlist)."""
    appointment = move.appointment
    carried = take_carried(f"Appointment:{appointment.id}")  # the action's audit, in the same write
    moved = Appointment.objects(id=appointment.id, status__in=ACTIVE_STATUSES, start=appointment.start,
                                provider=move.old_provider).update_one(
        set__start=move.new_start, set__end=move.new_end, set__block_start=move.block_start,
        set__block_end=move.block_end, set__provider=move.provider.id, set__updated_at=now, inc__version=1,
        **carried_update(carried))
    settle_carried(Appointment, appointment.id, carried, landed=bool(moved))
    if not moved:
        appointment.reload()
        finish_reschedule(appointment, now)  # gives back the units claimed for the move
        changed("availability")
        raise Conflict("This appointment changed meanwhile; reload and try again.", code="not_movable")
    crashpoints.reached("reschedule.moved")
    appointment.reload()
    return _finish_after_commit(appointment, now, finish_reschedule)


def finish_reschedule(appointment, now):
    """Bring a reschedule cut off mid-way to one time, each step idempotent; the marker is cleared last.

    A series' decided move (`decide_moves`) not written yet is written first. Moved (its start or
    provider is the new one): the old time's units go, the new time's are
    made permanent unless still an unpaid hold, the patient is told and the old time offered to the
    waitlist. Not moved: the units claimed for the move go. Called by `reschedule` itself, by a
    repeated reschedule and by the sweep.
    """
    args = dict(appointment.pending_args or {})
    moved = _utc(appointment.start) != _utc(args.get("old_start") or appointment.start) or \
        str(appointment.provider.id) != str(args.get("old_provider") or appointment.provider.id)
    if not moved and args.get("decided") and _commit_decided(appointment, args, now):
        appointment.reload()  # a series move decided before the crash: this visit moves too
        moved = True
    trim_claims(appointment)
    crashpoints.reached("reschedule.trimmed")
    if moved:
        if appointment.status != "held":
            # Paid (or confirmed) meanwhile: its time is secured, like any confirmed appointment's.
            make_permanent(appointment.id)
        changed("availability")
        notify.rescheduled(appointment, args["old_start"], now, strict=True)
        crashpoints.reached("reschedule.notified")
        waitlist.time_freed(args["old_provider"], now)  # the old time goes to the first patient in line
        crashpoints.reached("reschedule.offered")
    Appointment.objects(id=appointment.id, pending="reschedule").update_one(
        unset__pending=True, unset__pending_since=True, unset__pending_args=True)
    appointment.reload()
    return appointment


@audited("appointment.reschedule", appointment_record)
def reschedule_to_first_free(appointment, new_start, now, provider_ids, actor="patient"):
    """Move the appointment to `new_start` with the first of `provider_ids` still free then.

    The patient's page offers a time several clinicians have free: each is tried in turn and only
    `slot_taken` moves on to the next (any other refusal is the answer); an empty list means the
    appointment's own provider. Audited once, with the final outcome.
    """
    return first_free(provider_ids or [None], lambda provider_id: reschedule(
        appointment, new_start, now, provider_id=provider_id, actor=actor))
