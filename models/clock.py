"""Time shared by every context: the current instant, UTC normalising, the clinic's local dates and
how people read an instant. The lowest layer of the domain: it imports nothing from `models`."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc


def utcnow():
    """The current instant in UTC (only the doors and the CLI call this; rules take `now`)."""
    return datetime.now(timezone.utc)


def as_utc(dt):
    """An instant as an aware UTC datetime (MongoDB hands naive UTC datetimes back)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


_utc = as_utc  # the name the rules have always used


def local_iso(dt, tz):
    """An instant as ISO 8601 in the clinic's zone, with its offset."""
    return as_utc(dt).astimezone(ZoneInfo(tz)).isoformat() if dt else None


def human_time(dt, tz):
    """An instant as people read it, with the zone named: 'Tuesday 24 November 2026, 09:00 GMT'."""
    local_dt = as_utc(dt).astimezone(ZoneInfo(tz))
    return f"{local_dt:%A} {local_dt.day} {local_dt:%B %Y, %H:%M} {local_dt.tzname()}"


def local_today(tz, now):
    """Today's date in the clinic's zone."""
    return as_utc(now).astimezone(ZoneInfo(tz)).date()

