"""Booking rules shared by the portal, the back office and the payment sync.

No double booking: every appointment claims its provider's time, buffers included, as 5-minute
`TimeClaim` units under a unique index on (provider, unit). Claims are inserted before the
appointment becomes visible; the loser of a race hits the index and gets a Conflict. An unpaid
hold's claims carry the hold's expiry: once lapsed, a new booking may take them over with a
guarded update, so an expired hold never blocks a time. There is no read-then-insert anywhere.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pymongo.errors
from bson import ObjectId

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
    """Load time off and busy time of the providers with two queries (schedules from the catalog)."""
    catalog = current_catalog()
    schedules = {pid: catalog.schedules.get(pid) for pid in provider_ids}
    time_off = {pid: [] for pid in provider_ids}
    for off in TimeOff.objects(provider__in=provider_ids, start__lt=span_end, end__gt=span_start).no_dereference():
        time_off[off.provider.id].append((_utc(off.start), _utc(off.end)))
    busy = {pid: [] for pid in provider_ids}
    appointments = Appointment.objects(
        provider__in=provider_ids, status__in=ACTIVE_STATUSES,
        block_start__lt=span_end, block_end__gt=span_start,
    ).only("provider", "status", "hold_expires_at", "block_start", "block_end").no_dereference()
    for appt in appointments:
        if is_blocking(appt, now):
            busy[appt.provider.id].append((_utc(appt.block_start), _utc(appt.block_end)))
    return Window(schedules, time_off, busy)


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
    units = claim_units(block_start, block_end)
    docs = [{"provider": provider_id, "unit": u, "appointment": appointment_id, "expires_at": expires_at}
            for u in units]
    collection = TimeClaim._get_collection()
    try:
        collection.insert_many(docs, ordered=False)
        changed("availability")
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
    changed("availability")


# A booking writes its claims, then its appointment, within one request; claims older than this
# whose appointment never appeared were left by a process that died in between.
ORPHAN_AFTER = timedelta(seconds=60)


def _take_over_orphans(collection, provider_id, units, appointment_id, expires_at, now):
    """Take over claims whose appointment was never written; return the units still held."""
    claims = list(collection.find({"provider": provider_id, "unit": {"$in": units}},
                                  {"_id": 1, "unit": 1, "appointment": 1}))
    owners = {c["appointment"] for c in claims}
    alive = {a["_id"] for a in Appointment._get_collection().find({"_id": {"$in": list(owners)}}, {"_id": 1})}
    cutoff = ObjectId.from_datetime(now - ORPHAN_AFTER)
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
    changed("availability")
    provider_id = claims[0]["provider"]
    first = min(c["unit"] for c in claims)
    last = max(c["unit"] for c in claims) + UNIT
    for other in Appointment.objects(provider=provider_id, override=True, status__in=ACTIVE_STATUSES,
                                     block_start__lt=last, block_end__gt=first, id__ne=appointment_id):
        claim_time(provider_id, other.id, _utc(other.block_start), _utc(other.block_end),
                   None, now or datetime.now(timezone.utc), partial=True)


def book(patient, service_id, provider_id, start, now, hold_minutes=None, booked_by="patient",
         pay_online=True, override=False):
    """Book a time: `confirmed` at once when free of charge, else `held` until the hold expires.

    Staff bookings pass `pay_online=False` (confirmed at once, paid at the desk) and may pass
    `override=True` to book over a conflict: such an appointment claims every unit of its time that
    nobody else holds (so later bookings still cannot land on it), is marked `override`, and the
    caller audits it. Hours, grid, notice and horizon still apply.
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
    time_off = [(_utc(t.start), _utc(t.end)) for t in TimeOff.objects(
        provider=provider.id, start__lt=start + rules.duration + rules.buffer_after,
        end__gt=start - rules.buffer_before)]
    # Busy time is not read here: the claim below is the guard, and it cannot race.
    reason = why_not_bookable(tz=clinic.timezone, days=week, overrides=overrides, time_off=time_off,
                              busy=[], rules=rules, now=now, start=start)
    if reason == "busy" and not override:
        raise Conflict("The provider is away at that time.", code="provider_away")
    if reason and reason != "busy":
        raise ValidationFailed(REASONS[reason], code=f"not_bookable_{reason}", fields={"start": reason})
    end = start + rules.duration
    mine = Appointment.objects(patient=patient.id, status__in=ACTIVE_STATUSES, start__lt=end,
                               end__gt=start).only("status", "hold_expires_at")
    if any(is_blocking(a, now) for a in mine) and not override:
        raise Conflict("You already have an appointment at that time.", code="patient_overlap")
    paid = service.price > 0 and pay_online
    hold_minutes = hold_minutes or clinic.hold_minutes or 15
    hold_expires_at = now + timedelta(minutes=hold_minutes) if paid else None
    appointment = Appointment(
        id=ObjectId(), patient=patient, provider=provider, service=service, start=start, end=end,
        block_start=start - rules.buffer_before, block_end=end + rules.buffer_after,
        status="held" if paid else "confirmed", hold_expires_at=hold_expires_at,
        amount=service.price, currency=service.currency, created_at=now, updated_at=now,
        booked_by=booked_by, override=override)
    claim_time(provider.id, appointment.id, appointment.block_start, appointment.block_end,
               hold_expires_at, now, partial=override)
    try:
        appointment.save(force_insert=True)
    except Exception:
        release_time(appointment.id)
        raise
    return appointment


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
        set__status="cancelled", set__updated_at=now, set__cancel_reason=reason[:500])
    if not moved:
        raise Conflict("This appointment was already closed.", code="already_closed")
    release_time(appointment.id)
    # Its money: a refund when paid and due, or the unfinished payment stopped at Stripe.
    from models.payments import after_cancellation

    after_cancellation(appointment, now, by_staff=by_staff, status_before=appointment.status, actor=actor)
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
    """An iCalendar (.ics) document for one appointment."""
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//Clinic booking//EN")
    cal.add("version", "2.0")
    event = Event()
    event.add("uid", f"appointment-{appointment.id}@clinic")
    event.add("dtstamp", _utc(appointment.updated_at or appointment.created_at))
    event.add("dtstart", _utc(appointment.start))
    event.add("dtend", _utc(appointment.end))
    event.add("summary", f"{appointment.service.name} with {appointment.provider.name}")
    event.add("location", clinic.name)
    cal.add_component(event)
    return cal.to_ical()
