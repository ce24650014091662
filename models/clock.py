"""Time shared by every context: the current instant, UTC normalising and the clinic's local dates
and wall-clock times (how people read an instant is `models.formatting`). The lowest layer of the
domain: it imports nothing from `models`."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc


def utcnow():
    """The current instant in UTC (only the doors and the CLI call this; rules take `now`)."""
    return datetime.now(timezone.utc)


def as_utc(dt):
    """An instant as an aware UTC datetime (MongoDB hands naive UTC datetimes back)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


_utc = as_utc  # the name the rules have always used


def _zone(tz):
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def local(dt, tz):
    """An instant (aware, or naive UTC as MongoDB returns it) as an aware datetime in zone `tz`."""
    return as_utc(dt).astimezone(_zone(tz))


def wall_time_exists(naive, tz):
    """True if the wall-clock time occurs in zone `tz` (is not skipped when the clocks go forward)."""
    zone = _zone(tz)
    # A wall-clock time inside the spring-forward gap does not survive the round trip through UTC.
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


def from_local(naive, tz):
    """A wall-clock time in zone `tz` as an aware UTC instant: a repeated time is its first pass, a
    time that does not exist moves forward to the moment the clocks changed (docs/booking-rules.md)."""
    if naive.tzinfo is not None:
        return as_utc(naive)  # already an instant: the wall clock it was typed in is known
    zone = _zone(tz)
    if wall_time_exists(naive, zone):
        # fold=0 is the first pass through a repeated hour (the clocks going back).
        return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    # In a gap the two folds land either side of the clock change. Binary-search whole seconds (zone
    # transitions fall on whole seconds) for the first instant whose wall clock is past `naive`:
    # that is the moment the clocks jumped, the first local time that exists after it.
    a = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    b = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    base = min(a, b).replace(microsecond=0)
    lo, hi = 0, int((max(a, b) - base).total_seconds()) + 1  # wall(base+lo) <= naive < wall(base+hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (base + timedelta(seconds=mid)).astimezone(zone).replace(tzinfo=None) > naive:
            hi = mid
        else:
            lo = mid
    return base + timedelta(seconds=hi)


def local_iso(dt, tz):
    """An instant as ISO 8601 in the clinic's zone, with its offset."""
    return local(dt, tz).isoformat() if dt else None


def local_today(tz, now):
    """Today's date in the clinic's zone."""
    return local(now, tz).date()

