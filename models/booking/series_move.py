"""Moving "this visit and the following ones" of a recurring series (issue 28), all or nothing.

Each visit goes through the reschedule action's own steps (`reschedule.plan_move`, `claim_move`,
`commit_move`); no visit moves until every new time is claimed, and once they all are the moves are
marked decided (`reschedule.decide_moves`), so a crash part-way ends with every visit moved, by
the sweep or by the patient's repeated request (issue 31), never with some.
"""

from models import clock, crashpoints
from models.booking.claims import claim_units
from models.booking.documents import Appointment, TimeClaim
from models.booking.reschedule import (claim_move, commit_move, decide_moves, finish_reschedule, plan_move,
                                       undo_claim)
from models.booking.rules import checked_start
from models.booking.series import UNFIXABLE, _refuse, series_visits
from models.catalog.snapshot import current_catalog
from models.audit import appointment_record, audited
from models.errors import Conflict, ValidationFailed


def following_starts(appointment, visits, new_start, tz):
    """Where each visit goes when `appointment` moves to `new_start`: the same wall-clock change.

    The change is measured on the clinic's wall clock (local new time minus local old time), and
    each visit keeps its own local time shifted by it, so 10:00 every Tuesday moved to 11:30 on
    Wednesday is 11:30 every Wednesday, before and after a clock change alike (`clock.from_local`).
    """
    shift = clock.local(new_start, tz).replace(tzinfo=None) - clock.local(appointment.start, tz).replace(tzinfo=None)
    return [new_start if v.id == appointment.id else
            clock.from_local(clock.local(v.start, tz).replace(tzinfo=None) + shift, tz) for v in visits]


@audited("series.reschedule", appointment_record, outcome=lambda moved: f"moved:{len(moved)}")
def reschedule_following(appointment, new_start, now, provider_id=None, instead=None, actor="patient",
                         by_staff=False):
    """Move this visit and every later live visit of its series by the same wall-clock change, all or nothing.

    Each visit goes through the reschedule action's own steps (`plan_move`: blockers, hours,
    closures, notice, horizon, the patient's overlap; `claim_move`: the claims; `commit_move`), and
    no visit moves until every new time is claimed. `instead` maps a visit's regular new start to
    the free time accepted in its place (the alternatives a refusal offered). Refusals: this visit's
    own as `reschedule` answers them; later visits not free → SeriesUnavailable (409, the dates and
    their nearest free times); a new time on another visit's current time → 422
    `series_overlaps_itself` (move by less than the series' spacing). Answers the moved visits,
    soonest first (a later visit already at its new time stays as it is).
    """
    new_start = checked_start(new_start)
    if appointment.series and _finish_cut_off(appointment, now) and clock.as_utc(appointment.start) == new_start:
        return series_visits(appointment, from_start=new_start)  # a repeated request: the move is done
    clinic = current_catalog().require_clinic()
    tz = clinic.timezone
    visits = [appointment]
    if appointment.series:
        visits += [v for v in series_visits(appointment, from_start=appointment.start) if v.id != appointment.id]
    regular = following_starts(appointment, visits, new_start, tz)
    chosen = dict((clock.as_utc(k), checked_start(v)) for k, v in (instead or {}).items())
    targets = [regular[0]] + [chosen.get(s, s) for s in regular[1:]]
    moving = {v.id for v in visits}
    moves, unavailable = [], []
    for n, (visit, when) in enumerate(zip(visits, targets)):
        try:
            moves.append(plan_move(visit, when, now, provider_id, actor=actor, by_staff=by_staff,
                                   exclude=moving))
        except (Conflict, ValidationFailed) as exc:
            if n and exc.code == "same_time":
                continue  # this visit is already where it would go
            if n == 0 or exc.code in UNFIXABLE or exc.code in ("not_movable", "inside_cancellation_window") \
                    or not (isinstance(exc, Conflict) or exc.code.startswith("not_bookable_")):
                raise
            unavailable.append(when)
    _check_not_on_itself(moves)
    provider = moves[0].provider
    unavailable += [m.new_start for m in moves[1:] if _held_by_others(m, moving, now)]
    if unavailable:
        _refuse_move(moves, unavailable, provider, clinic, now)
    claimed = []
    try:
        for move in moves:
            claim_move(move, now)
            claimed.append(move)
    except Conflict:
        for move in claimed:
            undo_claim(move)
        lost = moves[len(claimed)]
        if lost is moves[0]:
            raise
        _refuse_move(moves, [lost.new_start], provider, clinic, now)
    except BaseException:
        for move in claimed:
            undo_claim(move)
        raise
    decide_moves(moves)
    moved = []
    for move in moves:
        try:
            moved.append(commit_move(move, now))
        except Conflict:
            continue  # cancelled or closed by someone else between the claim and the move: left as it is
        crashpoints.reached("series.moved_one")
    return moved


def _finish_cut_off(appointment, now):
    """Bring the series' visits a crash left mid-move to one time (issue 31); True when there were any."""
    cut_off = list(Appointment.objects(series=appointment.series, pending="reschedule"))
    for visit in cut_off:
        finish_reschedule(visit, now)
    if cut_off:
        appointment.reload()
    return bool(cut_off)


def _check_not_on_itself(moves):
    """Refuse (422) a move whose new time lands on another moving visit's current time (same clinician)."""
    for move in moves:
        for other in moves:
            if other is move or other.old_provider != move.provider.id:
                continue
            if set(move.to_claim) & set(claim_units(other.appointment.block_start, other.appointment.block_end)):
                raise ValidationFailed("That change would put a visit on the time of another visit of the same "
                                       "series. Move the visits by less than the time between them.",
                                       code="series_overlaps_itself", fields={"start": "overlaps the series"})


def _held_by_others(move, moving, now):
    """True when a unit of the move's new time is held by an appointment outside the moving visits."""
    if not move.to_claim:
        return False
    return bool(TimeClaim._get_collection().count_documents(
        {"provider": move.provider.id, "unit": {"$in": list(move.to_claim)}, "appointment": {"$nin": list(moving)},
         "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}, limit=1))


def _refuse_move(moves, unavailable, provider, clinic, now):
    """Raise 409 series_unavailable for a move: the dates not free and the nearest free times for each."""
    service = current_catalog().service(moves[0].appointment.service.id)
    _refuse(service, provider, clinic, [m.new_start for m in moves], unavailable, now, nothing="moved")
