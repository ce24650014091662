"""The availability core's first half: its schedule types, interval algebra and working hours as UTC
intervals (wall clock to UTC across clock changes). Pure: see `models/booking/availability.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from models.clock import from_local
from models.clock import wall_time_exists as _exists  # availability steps over the gap with it

Interval = tuple[datetime, datetime]


UTC = timezone.utc


@dataclass(frozen=True)
class WorkingDay:
    """One weekday's opening hours, in the clinic's local wall-clock time."""

    weekday: int  # 0=Monday … 6=Sunday
    start: time
    end: time  # end > start, same day (no overnight shifts)
    breaks: tuple[tuple[time, time], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday must be 0 (Monday) .. 6 (Sunday)")
        if not self.start < self.end:
            raise ValueError("working day must end after it starts")
        for b_start, b_end in self.breaks:
            if not b_start < b_end:
                raise ValueError("break must end after it starts")


@dataclass(frozen=True)
class DateOverride:
    """Replaces the weekly hours for one local date; no intervals means closed."""

    date: date
    intervals: tuple[tuple[time, time], ...] = ()

    def __post_init__(self) -> None:
        for i_start, i_end in self.intervals:
            if not i_start < i_end:
                raise ValueError("override interval must end after it starts")


@dataclass(frozen=True)
class _Window:
    """One merged working interval of one local date, both as wall clock and as UTC."""

    local_start: datetime  # naive, wall clock
    local_end: datetime
    start: datetime  # aware, UTC
    end: datetime


# ---------------------------------------------------------------- interval algebra


def _merge_pairs(pairs: Iterable[tuple]) -> list[tuple]:
    """Sort and merge overlapping or touching pairs of comparable values, dropping empty ones."""
    out: list[list] = []
    for start, end in sorted(p for p in pairs if p[0] < p[1]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1][1] = end
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def _to_utc(dt: datetime) -> datetime:
    """Return an aware datetime as UTC; refuse naive ones, whose zone would be a guess."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime not allowed here: {dt!r}")
    return dt.astimezone(UTC)


def _utc_pairs(intervals: Iterable[Interval]) -> list[Interval]:
    """Normalise every endpoint to UTC so comparisons are between instants."""
    return [(_to_utc(s), _to_utc(e)) for s, e in intervals]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort intervals and merge overlapping or touching ones (empty ones dropped), in UTC."""
    return _merge_pairs(_utc_pairs(intervals))


def subtract(base: Iterable[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    """Return the parts of ``base`` not covered by any of ``cuts``, merged, in UTC."""
    cut_list = merge(cuts)
    out: list[Interval] = []
    for start, end in merge(base):
        cursor = start
        for c_start, c_end in cut_list:
            if c_end <= cursor:
                continue
            if c_start >= end:
                break  # cuts are sorted; the rest lie beyond this base interval
            if c_start > cursor:
                out.append((cursor, c_start))
            cursor = max(cursor, c_end)
            if cursor >= end:
                break
        if cursor < end:
            out.append((cursor, end))
    return out


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """Return the instants covered by both ``a`` and ``b``, merged, in UTC."""
    left, right = merge(a), merge(b)
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            out.append((start, end))
        # Advance whichever finishes first; it cannot meet anything further on the other side.
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return out


# ---------------------------------------------------------------- wall clock -> UTC


def _resolve(naive: datetime, zone: ZoneInfo) -> datetime:
    """Map a wall-clock time to a UTC instant: first occurrence if repeated, gap end if skipped."""
    return from_local(naive, zone)  # the one rule in models.clock, shared with the desk's forms


def _windows_for(zone: ZoneInfo, days: Sequence[WorkingDay], overrides: dict, day: date) -> list[_Window]:
    """Working windows of one local date: override or weekly hours minus breaks, merged."""
    if day in overrides:
        local = [(datetime.combine(day, s.replace(tzinfo=None)), datetime.combine(day, e.replace(tzinfo=None)))
                 for s, e in overrides[day]]
    else:
        local = []
        # Several WorkingDay rows for one weekday are a split shift: their union counts.
        for wd in days:
            if wd.weekday != day.weekday():
                continue
            hours = [(datetime.combine(day, wd.start.replace(tzinfo=None)),
                      datetime.combine(day, wd.end.replace(tzinfo=None)))]
            breaks = [(datetime.combine(day, s.replace(tzinfo=None)), datetime.combine(day, e.replace(tzinfo=None)))
                      for s, e in wd.breaks]
            local.extend(_subtract_pairs(hours, breaks))
    windows = []
    for local_start, local_end in _merge_pairs(local):
        start, end = _resolve(local_start, zone), _resolve(local_end, zone)
        if start < end:  # a window lying wholly inside a gap vanishes
            windows.append(_Window(local_start, local_end, start, end))
    return windows


def _subtract_pairs(base: list[tuple], cuts: list[tuple]) -> list[tuple]:
    """Subtract naive wall-clock pairs (breaks are wall clock, so cut before converting)."""
    out = []
    for start, end in _merge_pairs(base):
        pieces = [(start, end)]
        for c_start, c_end in _merge_pairs(cuts):
            pieces = [p for s, e in pieces for p in ((s, min(e, c_start)), (max(s, c_end), e)) if p[0] < p[1]]
        out.extend(pieces)
    return out


def _overrides_by_date(overrides: Iterable[DateOverride]) -> dict[date, list[tuple[time, time]]]:
    """Group overrides by date; several for one date combine, and any one marks the date overridden."""
    grouped: dict[date, list[tuple[time, time]]] = {}
    for ov in overrides:
        grouped.setdefault(ov.date, []).extend(ov.intervals)
    return grouped


def _dates(first: date, last: date) -> Iterable[date]:
    """Each local date from first to last inclusive."""
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def working_intervals(
    tz: str, days: Iterable[WorkingDay], overrides: Iterable[DateOverride], first: date, last: date
) -> list[Interval]:
    """Expand weekly hours minus breaks (or each date's override) for local dates first..last into UTC intervals."""
    zone, day_list, by_date = ZoneInfo(tz), tuple(days), _overrides_by_date(overrides)
    return merge((w.start, w.end) for d in _dates(first, last) for w in _windows_for(zone, day_list, by_date, d))
