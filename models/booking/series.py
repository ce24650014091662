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

from models import clock, crashpoints
from models import formatting
from models.audit import as_events, audited, event_like
from models.booking.cancellation import cancel, cancellation_blocker
from models.booking.claims import _claim, claim_units, release_time
from models.booking.create import book
from models.booking.documents import ACTIVE_STATUSES, Appointment, TimeClaim
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

    This visit's own refusal (inside its cancellation window) comes first and cancels nothing;
    later visits start later, so the same window allows them. Answers the cancelled visits, this
    one first (the order of the work: `cancel_from_here`).
    """
    if not by_staff and not (appointment.pending == "cancel" and appointment.status == "cancelled"):
        blocker = cancellation_blocker(appointment, now)
        if blocker:
            raise Conflict(blocker, code="cancellation_window")
    return cancel_from_here(appointment, lambda visit, this: cancel(
        visit, now, reason=reason, by_staff=by_staff, actor=actor, audit_as=audit_as))


def cancel_from_here(appointment, cancel_one):
    """Run `cancel_one(visit, is_this_visit)` on this visit and each later live visit of its series.

    The one order of "this and the later visits", for patients and staff alike (issue 31): the
    later visits go first, last one first, and this visit last, so a crash part-way leaves this
    visit live and a repeated request cancels what is left (each cancel is recoverable on its own,
    `finish_cancel`). A closed visit is refused before anything changes. Answers the results,
    this visit's first.
    """
    if appointment.status not in ACTIVE_STATUSES and appointment.pending != "cancel":
        raise Conflict("This appointment was already closed.", code="already_closed")
    later = []
    if appointment.series:  # the live later visits, and any a crash left half-cancelled (`cancel` finishes those)
        later = sorted([v for v in this_and_following(appointment) if v.id != appointment.id] + list(
            Appointment.objects(series=appointment.series, pending="cancel", start__gt=appointment.start)),
            key=lambda v: v.start)
    done = []
    for visit in reversed(later):
        try:
            done.append(cancel_one(visit, False))
        except Conflict:
            continue  # closed meanwhile (paid visit completed, another tab cancelled it)
        crashpoints.reached("series.cancelled_one")
    return [cancel_one(appointment, True)] + done[::-1]


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
