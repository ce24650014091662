"""Recurring series (issue 28): "every 1–4 weeks, 2–12 times" at the same local wall-clock time,
booked all or nothing, and cancelled or moved one visit at a time or "this and following".

Every visit is checked by the ordinary booking action (`create.book` with `write=False`: hours,
closures, notice, horizon, the patient's overlap and hold limits, where a series counts as one
hold), then the claims machinery (`claims._claim`, no read-then-insert) claims each visit's time in
ascending order. The first visit whose time is taken stops the claim and every claim already taken
is given back, so of two patients racing for overlapping series the one who gets the earliest
shared time gets all of it and the other gets nothing. Only once every visit's time is claimed are
the appointments written (one insert), so no partial series is ever visible as appointments.

Payment is per visit (each visit an ordinary appointment with its own hold and Payment), or, when
the patient chose `pay="course"`, the whole course up front: the held visits are marked
`pay_course` and `models.payments` takes one PaymentIntent for all of them (each visit keeps its own
Payment, its share; see `models/payments/ledger.py`). The visits' holds are written in one action
with one expiry, so unpaid they lapse together.
"""

from datetime import datetime, timedelta

import pymongo.errors
from bson import ObjectId
from mongoengine import signals

from models import clock
from models import formatting
from models.audit import appointment_record, as_events, audited, event_like
from models.booking.cancellation import cancel
from models.booking.claims import _claim, claim_units, release_time
from models.booking.create import book
from models.booking.documents import Appointment, TimeClaim
from models.booking.reschedule import claim_move, commit_move, plan_move, undo_claim
from models.booking.rules import checked_start, find_slots, free_providers_at
from models.catalog.snapshot import changed, current_catalog
from models.errors import Conflict, NotFound, SeriesUnavailable, ValidationFailed
from models.messages.outbox import appointment_confirmed, queue_reminders
from models.messages.rendering import series_ics

EVERY_WEEKS = (1, 4)
COUNT = (2, 12)
# Refusals of a later visit that another time could fix make it "unavailable" (409): taken, away,
# the patient's own overlap, outside hours, a closure; the horizon (or notice) is the series' own 422.
UNFIXABLE = {"not_bookable_horizon", "not_bookable_past", "not_bookable_notice", "too_many_holds"}
ALTERNATIVES_PER_DATE = 3
PAY_CHOICES = ("visit", "course")


def check_repeat(every_weeks, count):
    """Refuse (422) a repeat outside every 1–4 weeks, 2–12 times."""
    if not isinstance(every_weeks, int) or not EVERY_WEEKS[0] <= every_weeks <= EVERY_WEEKS[1]:
        raise ValidationFailed("A series repeats every 1 to 4 weeks.", fields={"repeat.every_weeks": "1 to 4"})
    if not isinstance(count, int) or not COUNT[0] <= count <= COUNT[1]:
        raise ValidationFailed("A series has 2 to 12 visits.", fields={"repeat.count": "2 to 12"})


def series_starts(start, every_weeks, count, tz):
    """The visits' starts: the first one's local wall-clock time every `every_weeks` weeks (DST-safe)."""
    wall = clock.local(start, tz).replace(tzinfo=None)
    return [clock.from_local(wall + timedelta(weeks=every_weeks * n), tz) for n in range(count)]


def _series_record(patient, service_id, provider_id, *args, **kwargs):
    return f"Provider:{provider_id}"


@audited("series.book", _series_record, on_success=False, refused_on=Conflict)
def book_series(patient, service_id, provider_id, start, now, every_weeks, count, instead=None, audit=None,
                pay="visit", **options):
    """Book a whole series or nothing; answers (series id, appointments soonest first).

    `instead` maps a regular start to the time chosen in its place (the page's "nearest free
    alternative"). `pay` is "visit" (each visit paid on its own) or "course" (every held visit paid
    at once, one PaymentIntent; a free or desk-paid series has nothing to pay online and ignores it).
    `options` are `book`'s (booked_by, pay_online, by_staff, hold_minutes, and staff's
    `override` with its `notes`: every visit then skips the conflicts `book` lets an override pass,
    the patient's own overlap and the provider being away, and the series' event is written with an
    "appointment.override" one; a time another appointment holds is still a date not free, offered
    with alternatives, never double booked as part of a series).
    Raises SeriesUnavailable (409, with the dates and alternatives) when some visit is not free,
    ValidationFailed (422) when the first visit is not bookable or the series passes the horizon.
    """
    check_repeat(every_weeks, count)
    if pay not in PAY_CHOICES:
        raise ValidationFailed("'pay' must be \"visit\" or \"course\".", fields={"repeat.pay": "visit or course"})
    start = checked_start(start)
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    service = catalog.service(service_id)
    if not getattr(service, "repeat_allowed", False):
        raise ValidationFailed(f"{service.name} cannot be booked as a series.", code="repeat_not_allowed",
                               fields={"repeat": "not allowed for this service"})
    if provider_id in (None, "", "any"):
        # "Any clinician": the series goes to the first one free at the first visit's time.
        free = free_providers_at(service, start, now, None, clinic)
        if not free:
            raise Conflict("That time is no longer free. Please choose another.", code="slot_taken")
        provider_id = str(free[0].id)
    regular = series_starts(start, every_weeks, count, clinic.timezone)
    chosen = dict((clock.as_utc(k), checked_start(v)) for k, v in (instead or {}).items())
    starts = [chosen.get(s, s) for s in regular]
    series_id = ObjectId()
    visits, unavailable = [], []
    for n, when in enumerate(starts):
        try:
            visits.append(book(patient, service_id, provider_id, when, now, series=series_id, write=False,
                               **options))
        except (Conflict, ValidationFailed) as exc:
            if n == 0 or exc.code in UNFIXABLE or not (isinstance(exc, Conflict)
                                                        or exc.code.startswith("not_bookable_")):
                raise  # the chosen time itself, a hold limit, the horizon: the ordinary answer
            unavailable.append(when)
    if unavailable:
        _refuse(service, visits[0].provider if visits else None, clinic, [v.start for v in visits], unavailable, now)
    provider_id = visits[0].provider.id
    if pay == "course":
        for visit in visits:
            visit.pay_course = visit.status == "held"  # only what is paid online makes up the course
    taken = []
    try:
        for visit in visits:
            _claim(provider_id, visit.id, visit.block_start, visit.block_end, visit.hold_expires_at, now)
            taken.append(visit)
    except Conflict:
        _give_back(taken)
        lost = visits[len(taken)]
        later = _held_now([v for v in visits[len(taken) + 1:]], provider_id, now)
        _refuse(service, visits[0].provider, clinic, [v.start for v in visits], [lost.start] + [v.start for v in later], now)
    except BaseException:
        _give_back(taken)
        raise
    events = as_events(audit)
    if options.get("override") and events:
        events.append(event_like(events[0], "appointment.override", record=""))  # staff's explicit override
    _insert(visits, events)
    changed("availability", provider=provider_id)
    # Free of charge (or booked by staff): one confirmation listing every date, its .ics holding every
    # visit (models/messages/rendering.py), and each visit's own reminders. A paid visit is confirmed
    # by email when it is paid, like any appointment.
    confirmed = [v for v in visits if v.status == "confirmed"]
    if confirmed:
        appointment_confirmed(confirmed[0], now, fresh=True)
        for visit in confirmed[1:]:
            queue_reminders(visit, now)
    return series_id, visits


def _give_back(visits):
    for visit in visits:
        try:
            release_time(visit.id)
        except pymongo.errors.PyMongoError:
            pass  # the sweep deletes claims whose appointment never appeared


def _held_now(visits, provider_id, now):
    """Which of these visits' times someone else holds now (to name every unavailable date at once)."""
    held = []
    collection = TimeClaim._get_collection()
    for visit in visits:
        units = claim_units(visit.block_start, visit.block_end)
        if collection.count_documents({"provider": provider_id, "unit": {"$in": units},
                                       "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}, limit=1):
            held.append(visit)
    return held


def _insert(visits, audit):
    """Write every visit in one insert (claims are already theirs); on failure nothing stays."""
    for visit in visits:
        signals.pre_save.send(Appointment, document=visit)
        visit.validate()
    collection = Appointment._get_collection()
    try:
        collection.insert_many([v.to_mongo() for v in visits], ordered=True)
    except BaseException:
        collection.delete_many({"_id": {"$in": [v.id for v in visits]}})
        _give_back(visits)
        raise
    for visit in visits:
        visit._created = False
        visit._clear_changed_fields()
        signals.post_save.send(Appointment, document=visit, created=True)
    for event in as_events(audit):  # the series' event, and a new caller's "patient.create" with it
        event.record = event.record or f"Series:{visits[0].series}"
        event.save()


def _refuse(service, provider, clinic, planned, unavailable, now, nothing="booked"):
    """Raise 409 series_unavailable naming the dates not free and the nearest free times for each.

    `planned` are the series' intended starts; the ones still free are kept out of the alternatives.
    `nothing` says what did not happen ("booked", "moved").
    """
    tz = clinic.timezone
    keep = {clock.as_utc(p) for p in planned} - {clock.as_utc(u) for u in unavailable}
    alternatives = {}
    for when in unavailable:
        alternatives[clock.local_iso(when, tz)] = [
            clock.local_iso(s, tz) for s in nearest_free(service, provider, clinic, when, now, avoid=keep)]
    dates = ", ".join(formatting.human_time(u, tz) for u in unavailable)
    raise SeriesUnavailable(f"Some dates of the series are not free: {dates}. Nothing was {nothing}.",
                            [clock.local_iso(u, tz) for u in unavailable], alternatives)


def nearest_free(service, provider, clinic, when, now, avoid=(), days_around=3):
    """The free times of `provider` nearest to `when` (within `days_around` local days), nearest first."""
    if provider is None:
        return []
    day = clock.local(when, clinic.timezone).date()
    first = max(day - timedelta(days=days_around), clock.local_today(clinic.timezone, now))
    last = day + timedelta(days=days_around)
    if last < first:
        return []
    slots = find_slots(service, [provider], clinic, first, (last - first).days + 1, now)
    taken = [(a, a + timedelta(minutes=service.duration_minutes)) for a in avoid]
    free = [s for s, e, _p in slots if not any(s < b and e > a for a, b in taken)]
    free.sort(key=lambda s: (abs(s - clock.as_utc(when)), s))
    return sorted(free[:ALTERNATIVES_PER_DATE])


def patient_series(patient_ids, series_id):
    """Every visit of a series of these patients' (an account's household), soonest first (NotFound otherwise)."""
    try:
        oid = ObjectId(str(series_id))
    except Exception:
        raise NotFound("No such series.") from None
    visits = list(Appointment.objects(series=oid, patient__in=list(patient_ids)).order_by("start"))
    if not visits:
        raise NotFound("No such series.")
    return visits


def series_visits(appointment, from_start=None):
    """The live visits of an appointment's series (from `from_start` on), soonest first."""
    query = Appointment.objects(series=appointment.series, status__in=("held", "confirmed"))
    if from_start is not None:
        query = query.filter(start__gte=from_start)
    return list(query.order_by("start"))


def this_and_following(appointment):
    """The live visits of the appointment's series from this one on, soonest first ([] outside a series):
    what "this and the later visits" would cancel or move."""
    return series_visits(appointment, from_start=appointment.start) if appointment.series else []


def later_visits(appointment):
    """How many live visits of the appointment's series come after it (0 outside a series)."""
    return max(len(this_and_following(appointment)) - 1, 0)


def cancel_following(appointment, now, reason="", by_staff=False, actor=None, audit_as=None):
    """Cancel this visit and every later live visit of its series, each by the ordinary `cancel`.

    This visit goes first, so a refusal (inside its cancellation window) cancels nothing; later
    visits start later, so the same window allows them. Answers the cancelled visits.
    """
    cancelled = [cancel(appointment, now, reason=reason, by_staff=by_staff, actor=actor, audit_as=audit_as)]
    if not appointment.series:
        return cancelled
    for visit in series_visits(appointment, from_start=appointment.start):
        if visit.id == appointment.id:
            continue
        try:
            cancelled.append(cancel(visit, now, reason=reason, by_staff=by_staff, actor=actor, audit_as=audit_as))
        except Conflict:
            continue  # closed meanwhile (paid visit completed, another tab cancelled it)
    return cancelled


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
    moved = []
    for move in moves:
        try:
            moved.append(commit_move(move, now))
        except Conflict:
            continue  # cancelled or closed by someone else between the claim and the move: left as it is
    return moved


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


def alternative_choices(details, instead, tz):
    """A refusal's dates for a page to offer (issue 28): (dates, kept).

    `details` is SeriesUnavailable's; `instead` the choices already posted (regular start → chosen).
    Each date is `{n, key, human, choices: [{iso, human}]}` where `key` is the regular start the
    choice replaces (a refused date may itself be an earlier choice); `kept` the earlier choices
    that still hold, as (key, value) ISO pairs to post again.
    """
    regular_of = {clock.as_utc(v): clock.as_utc(k) for k, v in (instead or {}).items()}
    dates, refused = [], set()
    for n, iso in enumerate(details["unavailable"], 1):
        when = clock.as_utc(datetime.fromisoformat(iso))
        key = regular_of.get(when, when)
        refused.add(key)
        choices = [{"iso": a, "human": formatting.human_time(datetime.fromisoformat(a), tz)}
                   for a in details["alternatives"].get(iso, [])]
        dates.append({"n": n, "key": clock.local_iso(key, tz), "human": formatting.human_time(when, tz), "choices": choices})
    kept = [(clock.local_iso(k, tz), clock.local_iso(v, tz)) for k, v in (instead or {}).items()
            if clock.as_utc(k) not in refused]
    return dates, kept


def calendar(visits, clinic, public_url="", series_id=""):
    """The series' .ics: one VEVENT per visit, or one with an RRULE when the visits are regular."""
    return series_ics(visits, clinic, public_url, series_id)
