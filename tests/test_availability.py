"""Availability core: interval algebra, slot generation, clock changes, booking checks.

Literal datetimes only; `now` is always passed in. Europe/London in January is
GMT (= UTC), which keeps the plain cases easy to read.
"""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from models.booking.availability import (
    DateOverride,
    SlotRules,
    WorkingDay,
    free_slots,
    intersect,
    merge,
    slot_is_free,
    subtract,
    why_not_bookable,
    working_intervals,
)

UTC = timezone.utc
LON = "Europe/London"
NYC = "America/New_York"
MIN = timedelta(minutes=1)

MONDAY = date(2026, 1, 12)  # GMT, so local time == UTC
WEEKDAYS = tuple(WorkingDay(wd, time(9), time(17), breaks=((time(12), time(13)),)) for wd in range(5))
EVERY_DAY = tuple(WorkingDay(wd, time(9), time(17)) for wd in range(7))
NIGHTS = tuple(WorkingDay(wd, time(0), time(4)) for wd in range(7))
RULES = SlotRules(duration=30 * MIN, step=15 * MIN)
EARLY = datetime(2026, 1, 1, tzinfo=UTC)  # long before every date used below


def z(*args):
    """A literal UTC instant."""
    return datetime(*args, tzinfo=UTC)


def at(tz, *args, fold=0):
    """A wall-clock time in `tz`, as a UTC instant."""
    return datetime(*args, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


def slots(**kw):
    args = dict(tz=LON, days=WEEKDAYS, overrides=(), time_off=(), busy=(), rules=RULES,
                now=EARLY, first=MONDAY, last=MONDAY)
    args.update(kw)
    return free_slots(**args)


def reason(start, **kw):
    args = dict(tz=LON, days=WEEKDAYS, overrides=(), time_off=(), busy=(), rules=RULES, now=EARLY)
    args.update(kw)
    return why_not_bookable(start=start, **args)


def week_before(day):
    """A `now` a week ahead of `day`, well inside the default 60-day horizon."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=7)


def labels(found, tz=LON):
    """Local wall-clock labels of the slot starts, as a patient would see them."""
    return [s.astimezone(ZoneInfo(tz)).strftime("%H:%M") for s, _ in found]


# ---------------------------------------------------------------- interval algebra

def test_merge_joins_overlapping_touching_and_contained_and_sorts():
    got = merge([(z(2026, 1, 1, 14), z(2026, 1, 1, 15)),
                 (z(2026, 1, 1, 9), z(2026, 1, 1, 10)),
                 (z(2026, 1, 1, 10), z(2026, 1, 1, 11)),      # touches the 09-10 one
                 (z(2026, 1, 1, 9, 30), z(2026, 1, 1, 9, 45)),  # contained
                 (z(2026, 1, 1, 14, 30), z(2026, 1, 1, 16))])   # overlaps
    assert got == [(z(2026, 1, 1, 9), z(2026, 1, 1, 11)), (z(2026, 1, 1, 14), z(2026, 1, 1, 16))]


def test_merge_of_nothing_and_of_empty_intervals_is_empty():
    assert merge([]) == []
    assert merge([(z(2026, 1, 1, 9), z(2026, 1, 1, 9))]) == []


def test_merge_compares_instants_not_wall_clock_and_returns_utc():
    # 01:30 BST and 01:10 GMT on the fall-back night: by wall clock they'd be out of order.
    lon = ZoneInfo(LON)
    first = (datetime(2026, 10, 25, 1, 30, tzinfo=lon), datetime(2026, 10, 25, 1, 40, tzinfo=lon))
    second = (datetime(2026, 10, 25, 1, 10, tzinfo=lon, fold=1), datetime(2026, 10, 25, 1, 20, tzinfo=lon, fold=1))
    got = merge([second, first])
    assert got == [(z(2026, 10, 25, 0, 30), z(2026, 10, 25, 0, 40)), (z(2026, 10, 25, 1, 10), z(2026, 10, 25, 1, 20))]
    assert all(s.tzinfo is UTC for s, _ in got)


def test_merge_rejects_naive_datetimes():
    with pytest.raises(ValueError):
        merge([(datetime(2026, 1, 1, 9), datetime(2026, 1, 1, 10))])


def test_subtract_splits_trims_and_removes():
    base = [(z(2026, 1, 1, 9), z(2026, 1, 1, 17))]
    assert subtract(base, [(z(2026, 1, 1, 12), z(2026, 1, 1, 13))]) == [
        (z(2026, 1, 1, 9), z(2026, 1, 1, 12)), (z(2026, 1, 1, 13), z(2026, 1, 1, 17))]
    # Cuts that only touch the edges leave the base whole.
    assert subtract(base, [(z(2026, 1, 1, 8), z(2026, 1, 1, 9)), (z(2026, 1, 1, 17), z(2026, 1, 1, 18))]) == base
    assert subtract(base, [(z(2026, 1, 1, 8), z(2026, 1, 1, 18))]) == []
    assert subtract(base, []) == base
    assert subtract([], base) == []


def test_subtract_many_cuts_across_many_bases():
    base = [(z(2026, 1, 1, 9), z(2026, 1, 1, 12)), (z(2026, 1, 1, 13), z(2026, 1, 1, 17))]
    cuts = [(z(2026, 1, 1, 8), z(2026, 1, 1, 10)), (z(2026, 1, 1, 11), z(2026, 1, 1, 14)),
            (z(2026, 1, 1, 15), z(2026, 1, 1, 15, 30))]
    assert subtract(base, cuts) == [(z(2026, 1, 1, 10), z(2026, 1, 1, 11)), (z(2026, 1, 1, 14), z(2026, 1, 1, 15)),
                                    (z(2026, 1, 1, 15, 30), z(2026, 1, 1, 17))]


def test_intersect_overlap_contained_touching_and_empty():
    a = [(z(2026, 1, 1, 9), z(2026, 1, 1, 12)), (z(2026, 1, 1, 13), z(2026, 1, 1, 17))]
    b = [(z(2026, 1, 1, 11), z(2026, 1, 1, 14)), (z(2026, 1, 1, 15), z(2026, 1, 1, 16)),
         (z(2026, 1, 1, 17), z(2026, 1, 1, 18))]  # the last only touches
    assert intersect(a, b) == [(z(2026, 1, 1, 11), z(2026, 1, 1, 12)), (z(2026, 1, 1, 13), z(2026, 1, 1, 14)),
                               (z(2026, 1, 1, 15), z(2026, 1, 1, 16))]
    assert intersect(a, []) == [] and intersect([], b) == []


# ---------------------------------------------------------------- working hours

def test_working_intervals_subtract_breaks_and_skip_closed_days():
    # Monday..Sunday; the weekly hours only cover Monday-Friday.
    got = working_intervals(LON, WEEKDAYS, (), date(2026, 1, 16), date(2026, 1, 18))
    assert got == [(z(2026, 1, 16, 9), z(2026, 1, 16, 12)), (z(2026, 1, 16, 13), z(2026, 1, 16, 17))]


def test_working_intervals_in_summer_are_shifted_to_utc():
    got = working_intervals(LON, WEEKDAYS, (), date(2026, 6, 1), date(2026, 6, 1))
    assert got == [(z(2026, 6, 1, 8), z(2026, 6, 1, 11)), (z(2026, 6, 1, 12), z(2026, 6, 1, 16))]


def test_override_replaces_or_closes_a_day():
    overrides = [DateOverride(date(2026, 1, 12), ((time(10), time(12)),)), DateOverride(date(2026, 1, 13))]
    got = working_intervals(LON, WEEKDAYS, overrides, date(2026, 1, 12), date(2026, 1, 14))
    assert got == [(z(2026, 1, 12, 10), z(2026, 1, 12, 12)),
                   (z(2026, 1, 14, 9), z(2026, 1, 14, 12)), (z(2026, 1, 14, 13), z(2026, 1, 14, 17))]


def test_working_day_rejects_backwards_hours():
    with pytest.raises(ValueError):
        WorkingDay(0, time(17), time(9))


# ---------------------------------------------------------------- free slots

def test_basic_day_with_lunch_break():
    found = slots()
    # 09:00..11:30 (11 starts) + 13:00..16:30 (15 starts), each 30 min on a 15-min grid.
    assert len(found) == 26
    assert found[0] == (z(2026, 1, 12, 9), z(2026, 1, 12, 9, 30))
    assert found[-1] == (z(2026, 1, 12, 16, 30), z(2026, 1, 12, 17))
    assert "11:30" in labels(found) and "11:45" not in labels(found) and "12:30" not in labels(found)


def test_slots_end_inside_hours_and_never_cross_the_break():
    for start, end in slots():
        assert end - start == 30 * MIN
        assert z(2026, 1, 12, 9) <= start and end <= z(2026, 1, 12, 17)
        assert end <= z(2026, 1, 12, 12) or start >= z(2026, 1, 12, 13)


def test_output_is_sorted_unique_utc_across_days():
    found = slots(first=date(2026, 1, 12), last=date(2026, 1, 18))
    assert found == sorted(set(found))
    assert len(found) == 5 * 26  # weekend closed
    assert all(s.tzinfo is UTC and e.tzinfo is UTC for s, e in found)


def test_overlapping_weekly_rows_do_not_double_slots():
    days = WEEKDAYS + (WorkingDay(0, time(10), time(11)),)  # redundant Monday row inside the hours
    assert slots(days=days) == slots()


def test_step_longer_than_duration_gives_hourly_starts():
    found = slots(rules=SlotRules(duration=30 * MIN, step=60 * MIN))
    assert labels(found) == ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]


def test_time_off_removes_the_overlapping_slots_only():
    found = labels(slots(time_off=[(z(2026, 1, 12, 14), z(2026, 1, 12, 15))]))
    assert "13:30" in found and "15:00" in found  # these touch the time off but do not overlap
    assert not {"13:45", "14:00", "14:15", "14:30", "14:45"} & set(found)


def test_busy_appointment_blocks_exactly_the_slots_that_overlap_it():
    found = labels(slots(busy=[(z(2026, 1, 12, 10), z(2026, 1, 12, 10, 30))]))
    assert "09:30" in found and "10:30" in found
    assert not {"09:45", "10:00", "10:15"} & set(found)


def test_buffers_widen_the_slot_when_checking_busy_time():
    rules = SlotRules(duration=30 * MIN, step=15 * MIN, buffer_before=15 * MIN, buffer_after=15 * MIN)
    found = labels(slots(rules=rules, busy=[(z(2026, 1, 12, 10), z(2026, 1, 12, 10, 30))]))
    # 09:15 + 30 min + 15 min buffer ends at 10:00; 10:45 - 15 min buffer starts at 10:30.
    assert "09:15" in found and "10:45" in found
    assert not {"09:30", "09:45", "10:00", "10:15", "10:30"} & set(found)


def test_buffers_may_extend_outside_working_hours():
    rules = SlotRules(duration=30 * MIN, step=15 * MIN, buffer_before=15 * MIN, buffer_after=15 * MIN)
    found = labels(slots(rules=rules))
    assert found[0] == "09:00" and found[-1] == "16:30" and "11:30" in found and "13:00" in found


def test_min_notice_hides_slots_too_soon():
    rules = SlotRules(duration=30 * MIN, step=15 * MIN, min_notice=timedelta(hours=2))
    found = slots(rules=rules, now=z(2026, 1, 12, 8))
    assert labels(found)[0] == "10:00"


def test_now_in_the_middle_of_the_day_drops_past_slots():
    found = slots(now=z(2026, 1, 12, 10, 7))
    assert labels(found)[0] == "10:15"
    assert all(s >= z(2026, 1, 12, 10, 7) for s, _ in found)


def test_horizon_caps_how_far_ahead_slots_start():
    rules = SlotRules(duration=30 * MIN, step=15 * MIN, horizon=timedelta(days=1))
    found = slots(rules=rules, now=z(2026, 1, 12, 9, 0), first=date(2026, 1, 12), last=date(2026, 1, 14))
    assert found[0][0] == z(2026, 1, 12, 9)
    assert found[-1][0] == z(2026, 1, 13, 9)  # exactly now + horizon is still offered
    assert len(found) == 26 + 1


def test_override_closing_a_day_keeps_neighbours_open():
    found = slots(overrides=[DateOverride(date(2026, 1, 13))], first=date(2026, 1, 12), last=date(2026, 1, 14))
    assert {s.date() for s, _ in found} == {date(2026, 1, 12), date(2026, 1, 14)}


def test_override_replacing_hours_opens_a_normally_closed_saturday():
    found = slots(overrides=[DateOverride(date(2026, 1, 17), ((time(10), time(12)),))],
                  first=date(2026, 1, 17), last=date(2026, 1, 17))
    assert labels(found) == ["10:00", "10:15", "10:30", "10:45", "11:00", "11:15", "11:30"]


def test_naive_now_is_rejected():
    with pytest.raises(ValueError):
        slots(now=datetime(2026, 1, 12, 9))


# ---------------------------------------------------------------- clock changes

@pytest.mark.parametrize("tz, day, first_utc", [
    (LON, date(2026, 3, 28), z(2026, 3, 28, 9)),   # last day of GMT
    (LON, date(2026, 3, 29), z(2026, 3, 29, 8)),   # spring forward: BST
    (LON, date(2026, 10, 24), z(2026, 10, 24, 8)),  # last day of BST
    (LON, date(2026, 10, 25), z(2026, 10, 25, 9)),  # fall back: GMT
    (NYC, date(2026, 3, 7), z(2026, 3, 7, 14)),    # EST
    (NYC, date(2026, 3, 8), z(2026, 3, 8, 13)),    # EDT
    (NYC, date(2026, 10, 31), z(2026, 10, 31, 13)),  # EDT
    (NYC, date(2026, 11, 1), z(2026, 11, 1, 14)),  # EST
])
def test_daytime_hours_on_clock_change_days_have_the_right_offset(tz, day, first_utc):
    found = slots(tz=tz, days=EVERY_DAY, first=day, last=day, now=week_before(day))
    assert found[0][0] == first_utc
    assert found[-1] == (first_utc + timedelta(hours=7, minutes=30), first_utc + timedelta(hours=8))
    assert len(found) == 31
    assert labels(found, tz)[0] == "09:00" and labels(found, tz)[-1] == "16:30"


def test_london_spring_forward_night_has_no_slot_in_the_missing_hour():
    found = slots(days=NIGHTS, first=date(2026, 3, 29), last=date(2026, 3, 29), now=z(2026, 3, 1))
    shown = labels(found)
    assert not [lab for lab in shown if lab.startswith("01:")]
    assert shown == ["00:00", "00:15", "00:30", "00:45", "02:00", "02:15", "02:30", "02:45",
                     "03:00", "03:15", "03:30"]
    # 00:45 GMT lasts 30 real minutes and ends at 02:15 BST.
    assert found[3] == (z(2026, 3, 29, 0, 45), z(2026, 3, 29, 1, 15))
    assert all(e - s == 30 * MIN for s, e in found)


def test_off_grid_step_never_offers_a_start_that_falls_in_the_gap():
    # With a 45-minute grid the 01:30 start does not exist; it must not be shifted to 02:30 BST.
    rules = SlotRules(duration=30 * MIN, step=45 * MIN)
    found = slots(days=NIGHTS, rules=rules, first=date(2026, 3, 29), last=date(2026, 3, 29), now=z(2026, 3, 1))
    assert labels(found) == ["00:00", "00:45", "02:15", "03:00"]


def test_london_fall_back_night_offers_the_repeated_hour_once():
    found = slots(days=NIGHTS, first=date(2026, 10, 25), last=date(2026, 10, 25), now=z(2026, 10, 1))
    shown = labels(found)
    assert len(shown) == len(set(shown)) == 15  # 00:00 .. 03:30, each wall-clock label once
    # The 01:00 slot is the first 01:00 (BST), i.e. midnight UTC.
    assert found[shown.index("01:00")][0] == z(2026, 10, 25, 0)
    assert found[0][0] == z(2026, 10, 24, 23)  # local midnight is still BST


def test_new_york_spring_and_fall_nights():
    spring = labels(slots(tz=NYC, days=NIGHTS, first=date(2026, 3, 8), last=date(2026, 3, 8), now=z(2026, 3, 1)), NYC)
    assert not [lab for lab in spring if lab.startswith("02:")]
    fall = labels(slots(tz=NYC, days=NIGHTS, first=date(2026, 11, 1), last=date(2026, 11, 1), now=z(2026, 10, 1)), NYC)
    assert len(fall) == len(set(fall)) == 15


def test_hours_starting_inside_the_gap_open_when_the_clock_jumps():
    days = (WorkingDay(6, time(1, 30), time(3)),)  # Sunday
    assert working_intervals(LON, days, (), date(2026, 3, 29), date(2026, 3, 29)) == [
        (z(2026, 3, 29, 1), z(2026, 3, 29, 2))]  # 02:00 BST .. 03:00 BST
    assert labels(slots(days=days, first=date(2026, 3, 29), last=date(2026, 3, 29), now=z(2026, 3, 1)))[0] == "02:00"
    # Hours wholly inside the missing hour simply do not exist that day.
    inside = (WorkingDay(6, time(1, 10), time(1, 50)),)
    assert working_intervals(LON, inside, (), date(2026, 3, 29), date(2026, 3, 29)) == []


# ---------------------------------------------------------------- booking checks

def test_slot_is_free_agrees_with_free_slots_for_every_5_minutes():
    kw = dict(busy=[(z(2026, 1, 12, 10), z(2026, 1, 12, 10, 30))], now=z(2026, 1, 12, 9, 20))
    offered = {s for s, _ in slots(**kw)}
    args = dict(tz=LON, days=WEEKDAYS, overrides=(), time_off=(), rules=RULES, **kw)
    for k in range(0, 12 * 12):
        start = z(2026, 1, 12, 7) + 5 * k * MIN
        assert slot_is_free(start=start, **args) == (start in offered), start


def test_why_not_bookable_reason_codes():
    now = z(2026, 1, 12, 9, 0)
    busy = [(z(2026, 1, 12, 15), z(2026, 1, 12, 15, 30))]
    notice = SlotRules(duration=30 * MIN, step=15 * MIN, min_notice=timedelta(hours=1))
    assert reason(z(2026, 1, 12, 10), now=now) is None
    assert reason(z(2026, 1, 12, 8, 45), now=now) == "past"
    assert reason(z(2026, 1, 12, 9, 30), now=now, rules=notice) == "notice"
    assert reason(z(2026, 3, 30, 10), now=now) == "horizon"  # default horizon is 60 days
    assert reason(z(2026, 1, 12, 10, 7), now=now) == "off_grid"
    assert reason(z(2026, 1, 12, 17), now=now) == "outside_hours"
    assert reason(z(2026, 1, 12, 16, 45), now=now) == "outside_hours"  # would run past closing
    assert reason(z(2026, 1, 12, 12, 15), now=now) == "outside_hours"  # lunch break
    assert reason(z(2026, 1, 17, 10), now=now) == "outside_hours"  # Saturday
    assert reason(z(2026, 1, 12, 15), now=now, busy=busy) == "busy"


def test_booking_check_accepts_local_times_and_respects_the_repeated_hour():
    lon = ZoneInfo(LON)
    assert reason(datetime(2026, 1, 12, 10, tzinfo=lon)) is None
    kw = dict(days=NIGHTS, now=z(2026, 10, 1))
    assert reason(datetime(2026, 10, 25, 1, 30, tzinfo=lon), **kw) is None  # first 01:30 (BST)
    assert reason(datetime(2026, 10, 25, 1, 30, tzinfo=lon, fold=1), **kw) == "off_grid"  # second 01:30 (GMT)
