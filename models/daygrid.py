"""The day grid as data: per provider, working hours, breaks, time off, appointments and free gaps
of one local date, in minutes from the top of the grid. Pure arithmetic over loaded documents;
the day view renders it."""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from models.booking.availability import merge, subtract, working_intervals
from models.booking.documents import Appointment
from models.booking.rules import effective_status, is_blocking, schedule_days
from models.catalog.closures import closed_between, closed_dates, describe
from models.catalog.documents import TimeOff
from models.catalog.snapshot import current_catalog
from models.clock import _utc, local
from models.formatting import clock_time
from models.payments.desk import due_at_desk
from models.payments.documents import FEE_KINDS, UPFRONT_KINDS, Payment

HIDDEN_BY_DEFAULT = ("cancelled", "expired")


@dataclass
class Column:
    """One provider's day."""

    provider: object
    working: list = field(default_factory=list)  # (top, height) minutes
    blocked: list = field(default_factory=list)  # (top, height, label): breaks and time off
    appointments: list = field(default_factory=list)  # dicts for the template
    gaps: list = field(default_factory=list)  # free cells: (top, height, local start datetime)
    hours_text: str = ""


@dataclass
class Grid:
    """The whole day."""

    day: object
    tz: str
    top: datetime  # local time of the grid's first line
    minutes: int  # height of the grid in minutes
    columns: list
    hours: list  # (top, "09:00") hour lines
    now_top: int = None
    now_text: str = ""
    hidden: int = 0  # cancelled/expired appointments not drawn


def _minutes(delta):
    return int(delta / timedelta(minutes=1))


def build_grid(day, tz, providers, now, step_minutes=15, show_all=False):
    """The grid of `providers` on local date `day`; cancelled/expired appointments only with `show_all`."""
    zone = ZoneInfo(tz)
    catalog = current_catalog()
    day_start = datetime.combine(day, time(0), zone)
    day_end = datetime.combine(day + timedelta(days=1), time(0), zone)
    ids = [p.id for p in providers]
    appts = list(Appointment.objects(provider__in=ids, start__gte=day_start, start__lt=day_end)
                 .order_by("start").select_related(max_depth=1))
    payments = {p.appointment.id: p for p in Payment.objects(appointment__in=[a.id for a in appts], kind__in=UPFRONT_KINDS).no_dereference()}
    # No-show protection (issue 27): each appointment's fees, charged, due or waived.
    fees = {}
    for fee in Payment.objects(appointment__in=[a.id for a in appts], kind__in=FEE_KINDS).no_dereference():
        fees.setdefault(fee.appointment.id, []).append(fee)
    offs = list(TimeOff.objects(provider__in=ids, start__lt=day_end, end__gt=day_start).no_dereference())
    # The whole clinic closed (closures, public holidays; issue 25): drawn and never offered as free.
    closures = [c for c in catalog.closures or () if c.start < _utc(day_end) and c.end > _utc(day_start)]
    work = {}
    for provider in providers:
        week, overrides = schedule_days(catalog.schedules.get(provider.id))
        work[provider.id] = working_intervals(tz, week, overrides, day, day)
    # The grid spans every provider's hours and every appointment, in whole hours (08:00-18:00 if empty).
    edges = [local(s, zone) for iv in work.values() for s, _ in iv] + [local(a.start, zone) for a in appts]
    ends = [local(e, zone) for iv in work.values() for _, e in iv] + [local(a.end, zone) for a in appts]
    first = min(edges).replace(minute=0, second=0, microsecond=0) if edges else datetime.combine(day, time(8), zone)
    last = max(ends) if ends else datetime.combine(day, time(18), zone)
    if last.minute or last.second:
        last = last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    first = max(first, day_start.astimezone(zone))
    last = min(last, day_end.astimezone(zone))
    top_utc, bottom_utc = _utc(first), _utc(last)
    total = _minutes(bottom_utc - top_utc)

    def pos(start, end):
        start, end = max(_utc(start), top_utc), min(_utc(end), bottom_utc)
        return _minutes(start - top_utc), max(_minutes(end - start), 0)

    columns, hidden = [], 0
    for provider in providers:
        col = Column(provider=provider)
        hours = work[provider.id]
        col.working = [pos(s, e) for s, e in hours]
        col.hours_text = ", ".join(f"{clock_time(s, zone)}–{clock_time(e, zone)}" for s, e in hours) or "Not working"
        # Breaks: the holes between working intervals.
        for (_, e1), (s2, _) in zip(hours, hours[1:]):
            col.blocked.append((*pos(e1, s2), "Break"))
        away = [(_utc(o.start), _utc(o.end)) for o in offs if o.provider.id == provider.id]
        for s, e in merge(away):
            if _utc(s) < bottom_utc and _utc(e) > top_utc:
                col.blocked.append((*pos(s, e), "Time off"))
        for c in closures:
            if c.start < bottom_utc and c.end > top_utc:
                col.blocked.append((*pos(c.start, c.end), f"Clinic closed: {c.reason}"))
        away = away + [(c.start, c.end) for c in closures]
        busy = []
        for a in appts:
            if a.provider.id != provider.id:
                continue
            status = effective_status(a, now)
            if is_blocking(a, now):
                busy.append((_utc(a.block_start), _utc(a.block_end)))
            if status in HIDDEN_BY_DEFAULT and not show_all:
                hidden += 1
                continue
            top, height = pos(a.start, a.end)
            payment = payments.get(a.id)
            col.appointments.append({
                "a": a, "status": status, "top": top, "height": max(height, 15),
                "start": local(a.start, zone), "end": local(a.end, zone), "payment": payment,
                "due": due_at_desk(a, payment), "today": local(a.start, zone).date() == local(now, zone).date(),
                "started": _utc(a.start) <= now, "fees": fees.get(a.id, [])})
        free = subtract(hours, merge(busy + away))
        step = timedelta(minutes=step_minutes)
        for s, e in free:
            cell = _utc(s)
            while cell + timedelta(minutes=5) <= _utc(e):
                # Cells end on the clinic's step from the top of the grid, so times read 10:15, 10:30.
                done = (cell - top_utc) % step
                cell_end = min(cell + (step - done), _utc(e))
                if cell_end > now:  # a gap already over cannot be booked
                    col.gaps.append((*pos(cell, cell_end), local(cell, zone)))
                cell = cell_end
        columns.append(col)
    hour_lines = []
    mark = top_utc  # step in UTC: on the days the clocks change a local hour repeats or is skipped
    while mark < bottom_utc:
        hour_lines.append((_minutes(mark - top_utc), clock_time(mark, zone)))
        mark += timedelta(hours=1)
    grid = Grid(day=day, tz=tz, top=first, minutes=total, columns=columns, hours=hour_lines, hidden=hidden)
    if top_utc <= now < bottom_utc:
        grid.now_top = _minutes(now - top_utc)
        grid.now_text = clock_time(now, zone)
    return grid


def week_summary(first, tz, providers, now):
    """Providers × 7 local dates from `first`: each cell's active appointments, working hours (closed
    time left out) and why the clinic is closed that date, if it is."""
    zone = ZoneInfo(tz)
    catalog = current_catalog()
    start = datetime.combine(first, time(0), zone)
    end = datetime.combine(first + timedelta(days=7), time(0), zone)
    ids = [p.id for p in providers]
    appts = list(Appointment.objects(provider__in=ids, start__gte=start, start__lt=end)
                 .order_by("start").select_related(max_depth=1))
    days = [first + timedelta(days=i) for i in range(7)]
    closures = catalog.closures or ()
    # Why the clinic is closed on each date, as patients read it ("Christmas Day", "Staff training
    # (closed 09:00–13:00)"): the same words as the booking page and GET /api/clinic.
    closed_on = {}
    for d, closure in closed_dates(closures, tz, days[0], days[-1]):
        closed_on.setdefault(d, []).append(describe(closure, tz, d))
    rows = []
    for provider in providers:
        week, overrides = schedule_days(catalog.schedules.get(provider.id))
        cells = []
        for d in days:
            hours = working_intervals(tz, week, overrides, d, d)
            # Closed time (issue 25) is not working time: it leaves the hours and the free minutes.
            day_start, day_end = _utc(datetime.combine(d, time(0), zone)), _utc(datetime.combine(d + timedelta(days=1), time(0), zone))
            shut = closed_between(closures, day_start, day_end)
            hours = subtract(hours, merge(shut)) if shut else hours
            mine = [a for a in appts if a.provider.id == provider.id and local(a.start, zone).date() == d
                    and effective_status(a, now) not in HIDDEN_BY_DEFAULT]
            worked = sum(_minutes(e - s) for s, e in hours)
            booked = sum(_minutes(_utc(a.end) - _utc(a.start)) for a in mine)
            cells.append({"day": d, "appointments": [(a, local(a.start, zone), effective_status(a, now)) for a in mine],
                          "hours": ", ".join(f"{clock_time(s, zone)}–{clock_time(e, zone)}" for s, e in hours),
                          "closed": closed_on.get(d, []),
                          "free_minutes": max(worked - booked, 0)})
        rows.append((provider, cells))
    return days, rows


def free_now(tz, providers, now):
    """The first of `providers` (in order) who is working and free at `now`, or None."""
    zone = ZoneInfo(tz)
    grid = build_grid(local(now, zone).date(), tz, providers, now)
    for col in grid.columns:
        for top, height, at in col.gaps:
            if _utc(at) <= now < _utc(at) + timedelta(minutes=height):
                return col.provider
    return None
