"""Booking's read side: a schedule as the availability core's values, a service's slot rules, which
appointments block their time, and the bulk loads the free-time searches run on."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId

from models.booking.availability import DateOverride as DayOverride
from models.booking.availability import SlotRules, WorkingDay, free_slots
from models.booking.documents import ACTIVE_STATUSES, NOT_AN_OFFER, Appointment, is_lapsed_hold
from models.catalog.closures import closed_between
from models.catalog.documents import TimeOff
from models.catalog.snapshot import current_catalog
from models.clock import UTC, as_utc as _utc
from models.errors import NotFound, ValidationFailed

REASONS = {
    "past": "That time is in the past.",
    "notice": "That time is too soon: this service needs more notice.",
    "horizon": "That time is too far ahead to book yet.",
    "outside_hours": "That time is outside the provider's working hours.",
    "off_grid": "Appointments start on the booking grid; choose one of the offered times.",
    "busy": "That time is no longer free.",
    "closed": "The clinic is closed at that time.",
}


def _parse_hhmm(value):
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def checked_start(start):
    """A requested start as UTC, or ValidationFailed when it has no offset or lies in a far-off year."""
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise ValidationFailed("The start time needs a timezone offset.", fields={"start": "needs an offset"})
    if not 2000 <= start.year <= 2200:
        # Far-off years are not bookable, and would overflow the arithmetic that follows.
        raise ValidationFailed("That time is too far ahead to book yet.", code="not_bookable_horizon",
                               fields={"start": "horizon"})
    return _utc(start)


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
    """True while an appointment holds its time (a held or offered one only until its hold lapses)."""
    return appointment.status in ACTIVE_STATUSES and not is_lapsed_hold(appointment, now)


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
    closures: list = ()  # [(start, end)] UTC: the whole clinic closed (issue 25)


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
    return Window(schedules, time_off, busy, clinic_closed(catalog, span_start, span_end))


def clinic_closed(catalog, span_start, span_end):
    """[(start, end)] UTC times the whole clinic is closed within the span (closures, public holidays):
    the one source every availability call takes its `closures` from."""
    return closed_between(catalog.closures, span_start, span_end)


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
                                     rules=rules, now=now, first=first, last=last, closures=window.closures):
            found.append((start, end, provider))
    found.sort(key=lambda item: (item[0], item[2].name))
    return found


def free_providers_at(service, start, now, providers=None, clinic=None):
    """The providers free to start the service at `start`, by name (default: all who offer it)."""
    # The one answer to "who is free at this time": the booking page's review, "any clinician"
    # booking (`create.book_first_free`) and "book this time again" all read it here.
    catalog = current_catalog()
    clinic = clinic or catalog.require_clinic()
    providers = catalog.providers_offering(service) if providers is None else providers
    start = _utc(start)
    local_day = start.astimezone(ZoneInfo(clinic.timezone)).date()
    return [p for s, _e, p in find_slots(service, providers, clinic, local_day, 1, now) if s == start]


def get_patient_appointment(patient, appointment_id):
    from models.accounts.dependants import household_ids  # accounts sits below booking
    """One of the patient's own appointments, or NotFound (also for someone else's)."""
    # A waitlist offer (models/booking/waitlist.py) becomes the patient's own only once accepted.
    # The account's own: the holder's and their dependants' (issue 28).
    appointment = (Appointment.objects(id=appointment_id, patient__in=household_ids(patient),
                                       **NOT_AN_OFFER).first()
                   if ObjectId.is_valid(str(appointment_id)) else None)
    if appointment is None:
        raise NotFound("That appointment does not exist.", code="appointment_not_found")
    return appointment


def effective_status(appointment, now):
    """The status a person should see: a lapsed hold (or offer) reads as expired before the sweeper runs."""
    if is_lapsed_hold(appointment, now):
        return "expired"
    return appointment.status
