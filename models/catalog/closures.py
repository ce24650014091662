"""When the whole clinic is closed: staff's closures (whole or part days, with a reason) and the
public holidays of the clinic's region (the `holidays` package), minus the holidays staff opened
again. The catalog snapshot holds them as UTC intervals, and the availability core takes them as
blocked time, so free times, staff booking, the grids, the waitlist and reschedule honour them.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from models.catalog.documents import Closure
from models.clock import as_utc, from_local, local
from models.formatting import clock_time

# How far ahead public holidays are worked out: beyond every service's horizon (at most 730 days).
HOLIDAY_YEARS_AHEAD = 3


@dataclass(frozen=True)
class Closed:
    """One closed span: UTC instants, the reason people read, and where it came from."""

    start: datetime
    end: datetime
    reason: str
    kind: str  # "closure" (entered by staff) or "holiday" (the region's public holiday)
    holiday: date = None  # the holiday's date (to open it again)
    closure_id: str = ""


def region_parts(region):
    """'GB-ENG' -> ('GB', 'ENG'); 'FR' -> ('FR', None); '' -> (None, None)."""
    region = (region or "").strip().upper()
    if not region:
        return None, None
    country, _, subdiv = region.partition("-")
    return country, subdiv or None


def valid_region(region):
    """True when the `holidays` package knows the region ('GB-ENG', 'US-CA', 'FR'); '' is valid (none)."""
    country, subdiv = region_parts(region)
    if country is None:
        return True
    import holidays

    try:
        holidays.country_holidays(country, subdiv=subdiv, years=[2026])
    except (NotImplementedError, KeyError, ValueError, AttributeError):
        return False
    return True


def public_holidays(region, first_year, last_year):
    """{date: name} of the region's public holidays in the years given (empty for no region)."""
    country, subdiv = region_parts(region)
    if country is None:
        return {}
    import holidays

    try:
        found = holidays.country_holidays(country, subdiv=subdiv, years=range(first_year, last_year + 1))
    except (NotImplementedError, KeyError, ValueError, AttributeError):
        return {}
    return dict(sorted(found.items()))


def day_span(day, tz):
    """A local date as its UTC [start, end) (23 or 25 hours on the days the clocks change)."""
    return (as_utc(from_local(datetime.combine(day, time(0)), tz)),
            as_utc(from_local(datetime.combine(day + timedelta(days=1), time(0)), tz)))


def load_closures(clinic, now):
    """Every closed span from yesterday on: staff closures and the region's holidays not re-opened."""
    if clinic is None:
        return []
    since = now - timedelta(days=1)
    out = [Closed(as_utc(c.start), as_utc(c.end), c.reason, "closure", closure_id=str(c.id))
           for c in Closure.objects(end__gt=since).order_by("start")]
    reopened = set(clinic.reopened_holidays or [])
    year = local(now, clinic.timezone).year
    for day, name in public_holidays(clinic.holiday_region, year, year + HOLIDAY_YEARS_AHEAD).items():
        if day in reopened:
            continue
        start, end = day_span(day, clinic.timezone)
        if end > since:
            out.append(Closed(start, end, name, "holiday", holiday=day))
    out.sort(key=lambda c: (c.start, c.end))
    return out


def closed_between(closures, span_start, span_end):
    """The (start, end) UTC pairs of the closures overlapping [span_start, span_end)."""
    return [(c.start, c.end) for c in closures or () if c.start < span_end and c.end > span_start]


def closed_dates(closures, tz, first, last):
    """[(local date, Closed)] for each local date first..last a closure touches, in date order."""
    out = []
    for closure in closures or ():
        day = max(local(closure.start, tz).date(), first)
        # The end is exclusive: a closure ending at midnight does not touch the next date.
        end_day = local(closure.end - timedelta(microseconds=1), tz).date()
        while day <= min(end_day, last):
            out.append((day, closure))
            day += timedelta(days=1)
    out.sort(key=lambda item: (item[0], item[1].start))
    return out


def describe(closure, tz, day):
    """A closure's reason for one date, with its hours when it is only part of that day."""
    start, end = day_span(day, tz)
    if closure.start <= start and closure.end >= end:
        return closure.reason
    opens = clock_time(max(closure.start, start), tz)
    closes = clock_time(min(closure.end, end), tz) if closure.end < end else "24:00"
    return f"{closure.reason} (closed {opens}–{closes})"
