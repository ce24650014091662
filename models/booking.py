"""Booking rules shared by the portal, the back office and the payment sync.

No double booking: every appointment claims its provider's time, buffers included, as 5-minute
`TimeClaim` units under a unique index on (provider, unit). Claims are inserted before the
appointment becomes visible; the loser of a race hits the index and gets a Conflict. An unpaid
hold's claims carry the hold's expiry: once lapsed, a new booking may take them over with a
guarded update, so an expired hold never blocks a time. There is no read-then-insert anywhere.
"""

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pymongo.errors
from bson import ObjectId
from mongoengine import signals

from models.availability import DateOverride as DayOverride
from models.availability import SlotRules, WorkingDay, free_slots, why_not_bookable
from models.documents import (
    ACTIVE_STATUSES,
    Appointment,
    Clinic,
    TimeClaim,
    TimeOff,
)
from models.catalog import changed, current_catalog
from models.errors import Conflict, NotFound, ValidationFailed

UNIT = timedelta(minutes=5)
UTC = timezone.utc
REASONS = {
    "past": "That time is in the past.",
    "notice": "That time is too soon: this service needs more notice.",
    "horizon": "That time is too far ahead to book yet.",
    "outside_hours": "That time is outside the provider's working hours.",
    "off_grid": "Appointments start on the booking grid; choose one of the offered times.",
    "busy": "That time is no longer free.",
}


def _parse_hhmm(value):
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def schedule_days(schedule):
    """The schedule document as the availability core's WorkingDay values."""
    if schedule is None:
        return (), ()
    days = tuple(
        WorkingDay(weekday=d.weekday, start=_parse_hhmm(d.start), end=_parse_hhmm(d.end),
                   breaks=tuple((_parse_hhmm(b.start), _parse_hhmm(b.end)) for b in d.breaks or []))
        for d in schedule.days or [])
    overrides = tuple(
        DayOverride(date=o.date.date() if isinstance(o.date, datetime) else o.date,
                    intervals=tuple((_parse_hhmm(a), _parse_hhmm(b)) for a, b in o.intervals or []))
        for o in schedule.overrides or [])
    return days, overrides


def service_rules(service, clinic):
    """The slot rules of a service in this clinic."""
    return SlotRules(
        duration=timedelta(minutes=service.duration_minutes),
        step=timedelta(minutes=clinic.slot_step_minutes or 15),
        buffer_before=timedelta(minutes=service.buffer_before_minutes or 0),
        buffer_after=timedelta(minutes=service.buffer_after_minutes or 0),
        min_notice=timedelta(minutes=service.min_notice_minutes or 0),
        horizon=timedelta(days=service.horizon_days or 60),
    )


def is_blocking(appointment, now):
    """True while an appointment holds its time (a held one only until its hold lapses)."""
    if appointment.status not in ACTIVE_STATUSES:
        return False
    if appointment.status == "held" and appointment.hold_expires_at and _utc(appointment.hold_expires_at) <= now:
        return False
    return True


def _utc(dt):
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def require_clinic():
    """The clinic, or a clear error when none is configured."""
    return current_catalog().require_clinic()


def get_service(service_id):
    """An active service by id, or NotFound."""
    return current_catalog().service(service_id)


def get_provider_for(service, provider_id):
    """An active provider who offers the service, or NotFound/ValidationFailed."""
    return current_catalog().provider_for(service, provider_id)


@dataclass
class Window:
    """Everything availability needs for some providers over a span, loaded in bulk."""

    schedules: dict
    time_off: dict
    busy: dict


def load_window(provider_ids, span_start, span_end, now):
    """Load busy time of the providers with one query (schedules and time off from the catalog)."""
    catalog = current_catalog()
    schedules = {pid: catalog.schedules.get(pid) for pid in provider_ids}
    time_off = _time_off(catalog, provider_ids, span_start, span_end)
    busy = {pid: [] for pid in provider_ids}
    appointments = Appointment.objects(
        provider__in=provider_ids, status__in=ACTIVE_STATUSES,
        block_start__lt=span_end, block_end__gt=span_start,
    ).only("provider", "status", "hold_expires_at", "block_start", "block_end").no_dereference()
    for appt in appointments:
        if is_blocking(appt, now):
            busy[appt.provider.id].append((_utc(appt.block_start), _utc(appt.block_end)))
    return Window(schedules, time_off, busy)


def _time_off(catalog, provider_ids, span_start, span_end):
    """{provider id: [(start, end)]} time off overlapping the span: from the catalog snapshot when it
    holds time off, else one query."""
    time_off = {pid: [] for pid in provider_ids}
    if catalog.time_off is not None:
        for pid in provider_ids:
            time_off[pid] = [(s, e) for s, e in catalog.time_off.get(pid, ()) if s < span_end and e > span_start]
        return time_off
    for off in TimeOff.objects(provider__in=provider_ids, start__lt=span_end, end__gt=span_start).no_dereference():
        time_off[off.provider.id].append((_utc(off.start), _utc(off.end)))
    return time_off


def find_slots(service, providers, clinic, first, days, now):
    """Free times of the service with each provider on `days` local dates from `first`, sorted by start."""
    zone = ZoneInfo(clinic.timezone)
    last = first + timedelta(days=days - 1)
    rules = service_rules(service, clinic)
    # Pad the span by a day each side: local dates straddle UTC days, and buffers reach outside.
    span_start = datetime.combine(first - timedelta(days=1), time(0), zone).astimezone(UTC)
    span_end = datetime.combine(last + timedelta(days=2), time(0), zone).astimezone(UTC)
    window = load_window([p.id for p in providers], span_start, span_end, now)
    found = []
    for provider in providers:
        week, overrides = schedule_days(window.schedules.get(provider.id))
        for start, end in free_slots(tz=clinic.timezone, days=week, overrides=overrides,
                                     time_off=window.time_off[provider.id], busy=window.busy[provider.id],
                                     rules=rules, now=now, first=first, last=last):
            found.append((start, end, provider))
    found.sort(key=lambda item: (item[0], item[2].name))
    return found


def claim_units(block_start, block_end):
    """The 5-minute units a blocked span covers."""
    units, unit = [], _floor_unit(block_start)
    while unit < block_end:
        units.append(unit)
        unit += UNIT
    return units


def _floor_unit(dt):
    dt = _utc(dt)
    return dt - timedelta(minutes=dt.minute % 5, seconds=dt.second, microseconds=dt.microsecond)


def claim_time(provider_id, appointment_id, block_start, block_end, expires_at, now, partial=False):
    """Atomically claim the provider's time for an appointment, or raise Conflict and claim nothing.

    With `partial=True` (a staff override) the units another appointment holds are left to it and
    every other unit is claimed, so the overriding appointment still blocks later bookings.
    """
    _claim(provider_id, appointment_id, block_start, block_end, expires_at, now, partial)
    changed("availability", provider=provider_id)


def _claim_docs(provider_id, appointment_id, block_start, block_end, expires_at):
    return [{"provider": provider_id, "unit": u, "appointment": appointment_id, "expires_at": expires_at}
            for u in claim_units(block_start, block_end)]


def _claim(provider_id, appointment_id, block_start, block_end, expires_at, now, partial=False):
    """claim_time without telling the caches (the caller does, once the appointment is written)."""
    docs = _claim_docs(provider_id, appointment_id, block_start, block_end, expires_at)
    collection = TimeClaim._get_collection()
    try:
        collection.insert_many(docs, ordered=False)
        return
    except pymongo.errors.BulkWriteError as exc:
        taken = [docs[err["index"]]["unit"] for err in exc.details.get("writeErrors", []) if err.get("code") == 11000]
        others = [err for err in exc.details.get("writeErrors", []) if err.get("code") != 11000]
        if others:
            release_time(appointment_id)
            raise
    except pymongo.errors.PyMongoError:
        # The command failed as a whole (or the connection dropped mid-way): give back whatever
        # landed, best effort; the sweeper removes claims of appointments that never appeared.
        try:
            release_time(appointment_id)
        except pymongo.errors.PyMongoError:
            pass
        raise
    # Units already claimed may belong to lapsed holds: take those over, one guarded update each.
    unresolved = []
    for unit in taken:
        moved = collection.find_one_and_update(
            {"provider": provider_id, "unit": unit, "expires_at": {"$ne": None, "$lte": now}},
            {"$set": {"appointment": appointment_id, "expires_at": expires_at}})
        if moved is None:
            unresolved.append(unit)
    if unresolved:
        unresolved = _take_over_orphans(collection, provider_id, unresolved, appointment_id, expires_at, now)
    if unresolved and not partial:
        release_time(appointment_id)
        raise Conflict(REASONS["busy"], code="slot_taken")


# A booking writes its claims, then its appointment, within one request; claims older than this
# whose appointment never appeared were left by a process that died in between, and a new booking
# may take them over. (The sweeper deletes such claims later: sweep.DELETE_ORPHANS_AFTER.)
TAKE_OVER_ORPHANS_AFTER = timedelta(seconds=60)


def _take_over_orphans(collection, provider_id, units, appointment_id, expires_at, now):
    """Take over claims whose appointment was never written; return the units still held."""
    claims = list(collection.find({"provider": provider_id, "unit": {"$in": units}},
                                  {"_id": 1, "unit": 1, "appointment": 1}))
    owners = {c["appointment"] for c in claims}
    alive = {a["_id"] for a in Appointment._get_collection().find({"_id": {"$in": list(owners)}}, {"_id": 1})}
    cutoff = ObjectId.from_datetime(now - TAKE_OVER_ORPHANS_AFTER)
    held = set(units)
    for claim in claims:
        if claim["appointment"] in alive or claim["_id"] >= cutoff:
            continue
        if collection.find_one_and_update({"_id": claim["_id"], "appointment": claim["appointment"]},
                                          {"$set": {"appointment": appointment_id, "expires_at": expires_at}}):
            held.discard(claim["unit"])
    return [u for u in units if u in held]


def release_time(appointment_id, now=None, only_expiring=False):
    """Give back every unit an appointment claimed (or only its lapsing hold's units).

    A staff override that overlapped this appointment could not claim the units this one held;
    it claims them now, so the time it covers stays blocked.
    """
    collection = TimeClaim._get_collection()
    query = {"appointment": appointment_id}
    if only_expiring:
        # Claims secured by a payment (expires_at None) stay.
        query["expires_at"] = {"$ne": None}
    claims = list(collection.find(query, {"provider": 1, "unit": 1}))
    if not claims:
        return
    collection.delete_many(query)
    provider_id = claims[0]["provider"]
    changed("availability", provider=provider_id)
    first = min(c["unit"] for c in claims)
    last = max(c["unit"] for c in claims) + UNIT
    for other in Appointment.objects(provider=provider_id, override=True, status__in=ACTIVE_STATUSES,
                                     block_start__lt=last, block_end__gt=first, id__ne=appointment_id):
        claim_time(provider_id, other.id, _utc(other.block_start), _utc(other.block_end),
                   None, now or datetime.now(timezone.utc), partial=True)


def book(patient, service_id, provider_id, start, now, hold_minutes=None, booked_by="patient",
         pay_online=True, override=False, by_staff=False, notes="", audit=None):
    """Book a time: `confirmed` at once when free of charge, else `held` until the hold expires.

    Staff bookings pass `pay_online=False` (confirmed at once, paid at the desk) and may pass
    `override=True` to book over a conflict: such an appointment claims every unit of its time that
    nobody else holds (so later bookings still cannot land on it), is marked `override`, and the
    caller audits it. Hours, grid, notice and horizon still apply.

    `by_staff=True` (any staff booking) lifts the minimum notice and the booking grid, and admits
    a walk-in that already started today; working hours, time off and the horizon still apply.
    `notes` (e.g. the override's reason) is written with the appointment itself.
    `audit`, an unsaved AuditEvent, is written with the booking (its record defaults to the
    appointment) in the same database command when the server allows.
    """
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise ValidationFailed("The start time needs a timezone offset.", fields={"start": "needs an offset"})
    if not 2000 <= start.year <= 2200:
        # Far-off years are not bookable, and would overflow the arithmetic below.
        raise ValidationFailed("That time is too far ahead to book yet.", code="not_bookable_horizon",
                               fields={"start": "horizon"})
    start = _utc(start)
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    service = catalog.service(service_id)
    provider = catalog.provider_for(service, provider_id)
    rules = service_rules(service, clinic)
    week, overrides = schedule_days(catalog.schedules.get(provider.id))
    time_off = _time_off(catalog, [provider.id], start - rules.buffer_before,
                         start + rules.duration + rules.buffer_after)[provider.id]
    # Busy time is not read here: the claim below is the guard, and it cannot race.
    check_now = now
    if by_staff:
        rules = replace(rules, min_notice=timedelta(0))
        if start < now and local_today(clinic.timezone, start) == local_today(clinic.timezone, now):
            check_now = start  # a walk-in who already started today
    reason = why_not_bookable(tz=clinic.timezone, days=week, overrides=overrides, time_off=time_off,
                              busy=[], rules=rules, now=check_now, start=start)
    if reason == "off_grid" and by_staff:
        away = any(s < start + rules.duration + rules.buffer_after and e > start - rules.buffer_before
                   for s, e in time_off)
        reason = "busy" if away else None
    if reason == "busy" and not override:
        raise Conflict("The provider is away at that time.", code="provider_away")
    if reason and reason != "busy":
        raise ValidationFailed(REASONS[reason], code=f"not_bookable_{reason}", fields={"start": reason})
    end = start + rules.duration
    # One read of the patient's live appointments serves the overlap check and the hold limits.
    mine = [a for a in Appointment.objects(patient=patient.id, status__in=ACTIVE_STATUSES, end__gt=now).only(
        "status", "hold_expires_at", "start", "end") if is_blocking(a, now)]
    if any(_utc(a.start) < end and _utc(a.end) > start for a in mine) and not override:
        raise Conflict("You already have an appointment at that time.", code="patient_overlap")
    paid = service.price > 0 and pay_online
    if not str(booked_by).startswith("staff"):
        check_hold_limits(mine, clinic, paid)
    hold_minutes = hold_minutes or clinic.hold_minutes or 15
    hold_expires_at = now + timedelta(minutes=hold_minutes) if paid else None
    appointment = Appointment(
        id=ObjectId(), patient=patient, provider=provider, service=service, start=start, end=end,
        block_start=start - rules.buffer_before, block_end=end + rules.buffer_after,
        status="held" if paid else "confirmed", hold_expires_at=hold_expires_at,
        amount=service.price, currency=service.currency, created_at=now, updated_at=now,
        booked_by=booked_by, override=override, notes=notes[:2000])
    _write_booking(appointment, provider.id, hold_expires_at, now, override, audit)
    if appointment.status == "confirmed":
        from models.outbox import appointment_confirmed  # confirmation, reminders: sent by the sweep

        appointment_confirmed(appointment, now, fresh=True)
    return appointment


def check_hold_limits(live, clinic, creates_hold):
    """Refuse (409 too_many_holds) past the clinic's MAX_HELD unpaid holds or MAX_UPCOMING appointments."""
    max_held, max_upcoming = clinic.max_held or 2, clinic.max_upcoming or 6
    if creates_hold and sum(1 for a in live if a.status == "held") >= max_held:
        raise Conflict(f"You already have {max_held} bookings waiting for payment. Pay for or cancel one "
                       "before booking another.", code="too_many_holds")
    if len(live) >= max_upcoming:
        raise Conflict(f"You already have {max_upcoming} upcoming appointments, the most that can be booked "
                       "online. Please call the clinic to book more.", code="too_many_holds")


# MongoDB 8.0's client-level bulkWrite lets the claims, the appointment and its audit event go in one
# ordered command; False once the server turned out older (then one command each).
_one_batch = True


def _write_booking(appointment, provider_id, expires_at, now, override, audit):
    """Write a booking's claims, then the appointment, then its audit event; tell the caches last.

    The caches hear of it only once the appointment is written, so a free-time read that sees the
    new version also sees the appointment. Raises Conflict (nothing written) when the time is taken.
    """
    global _one_batch
    if audit is not None and not audit.record:
        audit.record = f"Appointment:{appointment.id}"
    done = False
    if _one_batch and not override:
        try:
            done = _write_in_one_batch(appointment, provider_id, expires_at, audit)
        except pymongo.errors.InvalidOperation:  # the server is older than MongoDB 8.0
            _one_batch = False
    if not done:
        # Some unit is claimed already (perhaps by a lapsed hold, which may be taken over) or the
        # server cannot batch across collections: claim with takeovers, then write the rest.
        _claim(provider_id, appointment.id, appointment.block_start, appointment.block_end,
               expires_at, now, partial=override)
        try:
            appointment.save(force_insert=True)
        except Exception:
            release_time(appointment.id)
            raise
        if audit is not None:
            audit.save()
    changed("availability", provider=provider_id)


def _write_in_one_batch(appointment, provider_id, expires_at, audit):
    """One ordered bulkWrite: claims, appointment, audit. True when written; False when a unit was
    taken (whatever landed is given back); raises on other failures, leaving nothing behind."""
    # Written without save(), so MongoEngine's save signals are sent here, as save() would.
    signals.pre_save.send(Appointment, document=appointment)
    appointment.validate()
    db = Appointment._get_db()
    claims_ns = f"{db.name}.{TimeClaim._get_collection_name()}"
    docs = _claim_docs(provider_id, appointment.id, appointment.block_start, appointment.block_end, expires_at)
    ops = [pymongo.InsertOne(d, namespace=claims_ns) for d in docs]
    ops.append(pymongo.InsertOne(appointment.to_mongo(), namespace=f"{db.name}.{Appointment._get_collection_name()}"))
    if audit is not None:
        audit.id = audit.id or ObjectId()
        audit.validate()
        ops.append(pymongo.InsertOne(audit.to_mongo(), namespace=f"{db.name}.{type(audit)._get_collection_name()}"))
    try:
        db.client.bulk_write(ops, ordered=True)
    except pymongo.errors.ClientBulkWriteException as exc:
        first = min(exc.write_errors or [], key=lambda e: e["idx"], default=None)
        failed = first["idx"] if first else None
        if audit is not None and failed == len(ops) - 1 and exc.error is None:
            # Only the audit event failed: the booking stands; try the event on its own.
            _mark_written(appointment)
            signals.post_save.send(Appointment, document=appointment, created=True)
            audit.save()
            return True
        _undo_batch(appointment)
        if failed is not None and failed < len(docs) and exc.error is None and first.get("code") == 11000:
            return False
        raise
    except pymongo.errors.InvalidOperation:
        raise  # nothing was sent
    except pymongo.errors.PyMongoError:
        _undo_batch(appointment)
        raise
    _mark_written(appointment)
    signals.post_save.send(Appointment, document=appointment, created=True)
    if audit is not None:
        _mark_written(audit)
        signals.post_save.send(type(audit), document=audit, created=True)
    return True


def _undo_batch(appointment):
    """Best effort: remove whatever part of a failed batch landed (the sweeper covers the rest)."""
    try:
        TimeClaim._get_collection().delete_many({"appointment": appointment.id})
        Appointment._get_collection().delete_one({"_id": appointment.id})
    except pymongo.errors.PyMongoError:
        pass


def _mark_written(document):
    """Let a document inserted outside save() behave as saved (later saves update it)."""
    document._created = False
    document._clear_changed_fields()


def get_patient_appointment(patient, appointment_id):
    """One of the patient's own appointments, or NotFound (also for someone else's)."""
    # A waitlist offer (models/waitlist.py) becomes the patient's own only once accepted.
    appointment = (Appointment.objects(id=appointment_id, patient=patient.id, booked_by__ne="waitlist-offer").first()
                   if ObjectId.is_valid(str(appointment_id)) else None)
    if appointment is None:
        raise NotFound("That appointment does not exist.", code="appointment_not_found")
    return appointment


def effective_status(appointment, now):
    """The status a person should see: a lapsed hold reads as expired before the sweeper runs."""
    if appointment.status == "held" and appointment.hold_expires_at and _utc(appointment.hold_expires_at) <= now:
        return "expired"
    return appointment.status


def cancellation_blocker(appointment, now, clinic=None):
    """Why the patient may not cancel online now, or None when they may."""
    status = effective_status(appointment, now)
    if status not in ("held", "confirmed"):
        return f"This appointment is {status.replace('_', ' ')} and cannot be cancelled."
    if status == "held":
        return None
    window = timedelta(hours=appointment.service.cancellation_window_hours or 0)
    if _utc(appointment.start) - now < window:
        clinic = clinic or Clinic.get()
        phone = f" on {clinic.phone}" if clinic and clinic.phone else ""
        hours = appointment.service.cancellation_window_hours
        return (f"Appointments for {appointment.service.name} can't be cancelled online less than "
                f"{hours} hour{'s' if hours != 1 else ''} before they start. Please call the clinic{phone}.")
    return None


def cancel(appointment, now, reason="", by_staff=False, actor=None):
    """Cancel an appointment within policy (staff may cancel at any time) and free its time.

    `actor` ("patient:<id>", "staff:<id>") is recorded on the refund's audit event.
    """
    if not by_staff:
        blocker = cancellation_blocker(appointment, now)
        if blocker:
            raise Conflict(blocker, code="cancellation_window")
    moved = Appointment.objects(id=appointment.id, status__in=("held", "confirmed", "checked_in")).update_one(
        set__status="cancelled", set__updated_at=now, set__cancel_reason=reason[:500], inc__version=1)
    if not moved:
        raise Conflict("This appointment was already closed.", code="already_closed")
    release_time(appointment.id)
    # Its money: a refund when paid and due, or the unfinished payment stopped at Stripe.
    from models.payments import after_cancellation

    after_cancellation(appointment, now, by_staff=by_staff, status_before=appointment.status, actor=actor)
    if appointment.status != "held":  # an abandoned unpaid hold was never confirmed by email
        from models.outbox import appointment_cancelled  # queued reminders of the old version drop

        appointment_cancelled(appointment, now)
    from models.waitlist import time_freed  # the freed time goes to the first patient in line

    time_freed(appointment.provider.id, now)
    appointment.reload()
    return appointment


def local_iso(dt, tz):
    """An instant as ISO 8601 in the clinic's zone, with its offset."""
    return _utc(dt).astimezone(ZoneInfo(tz)).isoformat() if dt else None


def human_time(dt, tz):
    """An instant as people read it, with the zone named: 'Tuesday 24 November 2026, 09:00 GMT'."""
    local_dt = _utc(dt).astimezone(ZoneInfo(tz))
    return f"{local_dt:%A} {local_dt.day} {local_dt:%B %Y, %H:%M} {local_dt.tzname()}"


def local_today(tz, now):
    """Today's date in the clinic's zone."""
    return _utc(now).astimezone(ZoneInfo(tz)).date()


def ics_for(appointment, clinic):
    """An iCalendar (.ics) document for one appointment (the same file the confirmation email carries)."""
    from flask import current_app, has_app_context

    from models.messages import appointment_ics

    public_url = current_app.config.get("PUBLIC_URL", "") if has_app_context() else ""
    return appointment_ics(appointment, clinic, public_url)
