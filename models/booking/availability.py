"""Pure availability core: slot generation over working hours (interval algebra in `intervals`).

Everything here is a function of its arguments. Nothing reads the clock (``now``
is a parameter), nothing touches the database or Flask, and only the standard
library is imported, so the same code answers "what can I show?" (free_slots)
and "may I book this?" (slot_is_free / why_not_bookable) and can be tested with
literal datetimes.

Conventions:

* An ``Interval`` is a pair of aware datetimes, half-open ``[start, end)``, so
  intervals that merely touch do not overlap.
* Schedules (WorkingDay, DateOverride) are wall-clock times in an IANA zone.
  All instants we return are in UTC (``tzinfo=timezone.utc``). Aware inputs are
  normalised to UTC before any comparison or arithmetic, because Python
  compares and subtracts two datetimes sharing a tzinfo by wall clock, which is
  wrong across a clock change.
* Clock changes: candidate starts step in local wall-clock time; a wall time
  that does not exist (spring-forward gap) yields no slot, and a repeated wall
  time (fall-back) yields one slot at its first occurrence (fold=0), so the
  second pass of the repeated hour offers no starts. A working-interval
  endpoint that falls in a gap is moved forward to the first instant that
  exists (the moment of the clock change); an ambiguous endpoint uses its first
  occurrence.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

# The core's first half, offered here too: callers import the whole core from this module.
from models.booking.intervals import (  # noqa: F401
    UTC,
    DateOverride,
    Interval,
    WorkingDay,
    _dates,
    _exists,
    _merge_pairs,
    _overrides_by_date,
    _resolve,
    _subtract_pairs,
    _to_utc,
    _utc_pairs,
    _Window,
    _windows_for,
    intersect,
    merge,
    subtract,
    working_intervals,
)

@dataclass(frozen=True)
class SlotRules:
    """How a service is cut into bookable slots."""

    duration: timedelta
    step: timedelta  # slots start at each working interval's start + k*step
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    min_notice: timedelta = timedelta(0)
    horizon: timedelta = timedelta(days=60)

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0) or self.step <= timedelta(0):
            raise ValueError("duration and step must be positive")
        # Negative buffers or notice would let slots overlap bookings or start in the past.
        if min(self.buffer_before, self.buffer_after, self.min_notice, self.horizon) < timedelta(0):
            raise ValueError("buffers, min_notice and horizon must not be negative")


# ---------------------------------------------------------------- slots


def _grid(window: _Window, zone: ZoneInfo, rules: SlotRules) -> Iterable[Interval]:
    """Candidate slots of one window: wall-clock steps from its start, skipping gaps, fold=0 when repeated."""
    wall = window.local_start
    while wall < window.local_end:
        if _exists(wall, zone):
            start = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
            end = start + rules.duration  # real elapsed time, even across a clock change
            if start >= window.start and end <= window.end:
                yield (start, end)
        wall += rules.step


class _Blocked:
    """Busy appointments and time off, merged, answering 'does this padded slot collide?'."""

    def __init__(self, time_off: Iterable[Interval], busy: Iterable[Interval]) -> None:
        self.intervals = merge(list(time_off) + list(busy))
        self.starts = [s for s, _ in self.intervals]

    def hits(self, start: datetime, end: datetime) -> bool:
        """True if [start, end) overlaps any blocked interval."""
        # Merged intervals are disjoint and sorted, so only the last one starting before `end` can overlap.
        i = bisect_left(self.starts, end) - 1
        return i >= 0 and self.intervals[i][1] > start


def _conflicts(slot: Interval, rules: SlotRules, blocked: _Blocked) -> bool:
    """A slot conflicts when it, widened by its own buffers, overlaps anything blocked."""
    return blocked.hits(slot[0] - rules.buffer_before, slot[1] + rules.buffer_after)


def free_slots(
    *,
    tz: str,
    days: Iterable[WorkingDay],
    overrides: Iterable[DateOverride],
    time_off: Iterable[Interval],
    busy: Iterable[Interval],
    rules: SlotRules,
    now: datetime,
    first: date,
    last: date,
    closures: Iterable[Interval] = (),
) -> list[Interval]:
    """Return the sorted, de-duplicated UTC slots bookable on local dates first..last.

    ``closures`` are the times the whole clinic is closed (staff closures, public holidays): they
    block like time off, so a slot never overlaps one, buffers included.

    A slot lies wholly inside one working interval; its buffers may extend past
    working hours (a 09:00 slot with a 10-minute buffer_before is still offered),
    because buffers protect against other bookings, not against closing time.
    ``busy`` intervals must already include the existing appointments' buffers.
    """
    starts = free_starts(tz=tz, days=days, overrides=overrides, time_off=time_off, busy=busy, rules=rules,
                         now=now, first=first, last=last, closures=closures)
    length = _us(rules.duration)
    return [(EPOCH + timedelta(microseconds=s), EPOCH + timedelta(microseconds=s + length)) for s in starts]


# ---------------------------------------------------------------- slots as integers (the fast path)
#
# free_slots is answered here in integer microseconds since the epoch (UTC): a window whose UTC
# offset does not change is a plain arithmetic progression of starts, and the busy time turns
# into sorted ranges of forbidden starts, so one pass over those ranges cuts each window into
# allowed stretches whose grid points come out of range() without a Python object per candidate.
# Windows that contain a clock change keep the wall-clock walk of _grid.

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_ONE_US = timedelta(microseconds=1)


def _us(value) -> int:
    """A timedelta, or an aware datetime as time since the epoch, in whole microseconds."""
    if isinstance(value, timedelta):
        return value // _ONE_US
    return (_to_utc(value) - EPOCH) // _ONE_US


@lru_cache(maxsize=512)
def _window_table(tz: str, day_list: tuple) -> dict:
    """A memo of _day_windows for one zone and set of weekly hours, keyed by (override, date).

    Providers sharing weekly hours share the work, and the answers depend only on the arguments
    (zone rules come from the tz database, which does not change under us). Looking the weekly
    hours up once per call, rather than once per date, keeps their hashing out of the loop.
    """
    return {}


def _day_windows(tz: str, day_list: tuple, override: Optional[tuple], day: date) -> tuple:
    """One local date's windows as (start_us, end_us, window or None); the window is kept only
    when the UTC offset moves inside it (a clock change), for the wall-clock walk."""
    zone = ZoneInfo(tz)
    by_date = {day: list(override)} if override is not None else {}
    out = []
    for w in _windows_for(zone, day_list, by_date, day):
        steady = (w.start.astimezone(zone).utcoffset() == w.end.astimezone(zone).utcoffset()
                  and w.end - w.start == w.local_end - w.local_start)
        out.append((_us(w.start), _us(w.end), None if steady else w))
    return tuple(out)


def free_starts(
    *,
    tz: str,
    days: Iterable[WorkingDay],
    overrides: Iterable[DateOverride],
    time_off: Iterable[Interval],
    busy: Iterable[Interval],
    rules: SlotRules,
    now: datetime,
    first: date,
    last: date,
    closures: Iterable[Interval] = (),
) -> list[int]:
    """The starts of free_slots' answer, as sorted integer microseconds since the epoch (UTC).

    Cost: one pass over the dates' windows and the sorted busy time, plus the answer itself.
    """
    zone_name, day_list, by_date = tz, tuple(days), _overrides_by_date(overrides)
    zone = ZoneInfo(tz)
    now_us = _us(now)
    earliest, latest = now_us + _us(rules.min_notice), now_us + _us(rules.horizon)
    length, step = _us(rules.duration), _us(rules.step)
    before, after = _us(rules.buffer_before), _us(rules.buffer_after)
    blocked = _merge_pairs([(_us(s), _us(e)) for s, e in list(time_off) + list(busy) + list(closures)])
    # A start s collides with blocked [b0, b1) iff b0 - length - after < s < b1 + before.
    lows = [b0 - length - after for b0, _ in blocked]
    highs = [b1 + before for _, b1 in blocked]
    out: list[int] = []
    table = _window_table(zone_name, day_list)
    if len(table) > 20_000:  # bound the memo (a year of dates for dozens of override patterns)
        table.clear()
    for d in _dates(first, last):
        override = tuple(by_date[d]) if d in by_date else None
        windows = table.get((override, d))
        if windows is None:
            windows = table[(override, d)] = _day_windows(zone_name, day_list, override, d)
        for w_start, w_end, clock_change in windows:
            if clock_change is not None:
                for slot in _grid(clock_change, zone, rules):
                    s = _us(slot[0])
                    if earliest <= s <= latest:
                        j = bisect_right(highs, s)
                        if j == len(lows) or s <= lows[j]:
                            out.append(s)
                continue
            lo, hi = max(w_start, earliest), min(w_end - length, latest)
            if lo > hi:
                continue
            j = bisect_right(highs, lo)  # the first forbidden range reaching past lo
            while lo <= hi:
                stretch_end = hi if j == len(lows) else min(hi, lows[j])
                if stretch_end >= lo:
                    # The first grid point at or after lo: w_start + ceil((lo - w_start) / step) * step.
                    out.extend(range(w_start - ((w_start - lo) // step) * step, stretch_end + 1, step))
                if j == len(lows):
                    break
                lo = max(lo, highs[j])
                j += 1
    out.sort()  # already sorted in practice; Timsort checks that in one pass
    if len(set(out)) != len(out):
        out = sorted(set(out))
    return out


def why_not_bookable(
    *,
    tz: str,
    days: Iterable[WorkingDay],
    overrides: Iterable[DateOverride],
    time_off: Iterable[Interval],
    busy: Iterable[Interval],
    rules: SlotRules,
    now: datetime,
    start: datetime,
    closures: Iterable[Interval] = (),
) -> Optional[str]:
    """Return None if ``start`` is a free slot, else one of past/notice/horizon/outside_hours/off_grid/
    closed/busy (``closed``: the slot, with its buffers, overlaps a time the whole clinic is closed)."""
    zone = ZoneInfo(tz)
    now, start = _to_utc(now), _to_utc(start)
    if start < now:
        return "past"
    if start < now + rules.min_notice:
        return "notice"
    if start > now + rules.horizon:
        return "horizon"
    end = start + rules.duration
    # Every slot starts on a wall-clock time of its own local date, so that date's windows suffice.
    windows = _windows_for(zone, tuple(days), _overrides_by_date(overrides), start.astimezone(zone).date())
    containing = [w for w in windows if w.start <= start and end <= w.end]
    if not containing:
        return "outside_hours"
    if not any(slot[0] == start for w in containing for slot in _grid(w, zone, rules)):
        return "off_grid"
    if _conflicts((start, end), rules, _Blocked(_utc_pairs(closures), ())):
        return "closed"
    if _conflicts((start, end), rules, _Blocked(_utc_pairs(time_off), _utc_pairs(busy))):
        return "busy"
    return None


def slot_is_free(
    *,
    tz: str,
    days: Iterable[WorkingDay],
    overrides: Iterable[DateOverride],
    time_off: Iterable[Interval],
    busy: Iterable[Interval],
    rules: SlotRules,
    now: datetime,
    start: datetime,
    closures: Iterable[Interval] = (),
) -> bool:
    """True iff ``start`` is exactly one of the slots free_slots would offer for its local date."""
    return (
        why_not_bookable(
            tz=tz, days=days, overrides=overrides, time_off=time_off, busy=busy, rules=rules, now=now, start=start,
            closures=closures,
        )
        is None
    )
