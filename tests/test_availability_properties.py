"""Property-based tests (hypothesis): for random schedules, busy time and clock-change dates, every
offered slot is inside working hours and clear of busy time, and booking any offered slot succeeds."""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.booking.availability import (
    SlotRules,
    WorkingDay,
    free_slots,
    intersect,
    merge,
    why_not_bookable,
    working_intervals,
)

UTC = timezone.utc
ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Europe/Berlin", "UTC"]
# Days the clocks change somewhere above, plus ordinary days.
DATES = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 10, 4), date(2026, 10, 25),
         date(2026, 11, 1), date(2027, 3, 14), date(2027, 3, 28), date(2026, 6, 15)]


@st.composite
def working_day(draw, weekday):
    start_minutes = draw(st.integers(0, 20 * 60)) // 15 * 15
    length = draw(st.integers(60, 12 * 60)) // 15 * 15
    end_minutes = min(start_minutes + length, 23 * 60 + 45)
    start = time(start_minutes // 60, start_minutes % 60)
    end = time(end_minutes // 60, end_minutes % 60)
    breaks = ()
    if draw(st.booleans()) and end_minutes - start_minutes >= 120:
        b_start = start_minutes + draw(st.integers(30, end_minutes - start_minutes - 60)) // 15 * 15
        b_end = min(b_start + 30, end_minutes)
        breaks = ((time(b_start // 60, b_start % 60), time(b_end // 60, b_end % 60)),)
    return WorkingDay(weekday=weekday, start=start, end=end, breaks=breaks)


@st.composite
def scenario(draw):
    tz = draw(st.sampled_from(ZONES))
    day = draw(st.sampled_from(DATES))
    days = tuple(draw(working_day(wd)) for wd in range(7))
    rules = SlotRules(duration=timedelta(minutes=draw(st.sampled_from([15, 30, 45, 60, 90]))),
                      step=timedelta(minutes=draw(st.sampled_from([5, 15, 30]))),
                      buffer_before=timedelta(minutes=draw(st.sampled_from([0, 5, 10]))),
                      buffer_after=timedelta(minutes=draw(st.sampled_from([0, 10, 15]))),
                      min_notice=timedelta(minutes=draw(st.sampled_from([0, 60]))),
                      horizon=timedelta(days=30))
    day_start = datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)
    busy = []
    for _ in range(draw(st.integers(0, 5))):
        offset = draw(st.integers(0, 47)) * 30
        length = draw(st.integers(1, 6)) * 15
        busy.append((day_start + timedelta(minutes=offset), day_start + timedelta(minutes=offset + length)))
    now = day_start - timedelta(hours=draw(st.integers(-6, 72)))
    return tz, day, days, rules, busy, now


@given(scenario())
@settings(max_examples=300, deadline=None)
def test_offered_slots_are_inside_hours_and_clear_of_busy_time(case):
    tz, day, days, rules, busy, now = case
    slots = free_slots(tz=tz, days=days, overrides=(), time_off=(), busy=busy, rules=rules, now=now,
                       first=day, last=day)
    hours = working_intervals(tz, days, (), day, day)
    assert slots == sorted(set(slots))
    labels = set()
    for start, end in slots:
        assert end - start == rules.duration
        assert start >= now + rules.min_notice
        # Inside one working interval.
        assert any(h_start <= start and end <= h_end for h_start, h_end in hours), (start, hours)
        # Clear of busy time, with the slot's own buffers.
        padded = (start - rules.buffer_before, end + rules.buffer_after)
        assert not intersect([padded], merge(busy)), (padded, busy)
        # A real local time that is offered once.
        local = start.astimezone(ZoneInfo(tz))
        assert local.replace(tzinfo=None).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC) == start or local.fold
        label = local.strftime("%Y-%m-%d %H:%M")
        assert label not in labels, f"{label} offered twice"
        labels.add(label)
        assert why_not_bookable(tz=tz, days=days, overrides=(), time_off=(), busy=busy, rules=rules,
                                now=now, start=start) is None


def test_booking_any_offered_slot_succeeds_and_removes_it(app):
    """Against the real database: a random offered slot books, and nothing offered overlaps it after."""
    from models import Appointment, Schedule
    from models.booking.create import book
    from models.booking.rules import find_slots
    from tests.support.factories import make_clinic, make_patient, make_provider, make_service

    clinic = make_clinic()
    patients = [make_patient(email=f"prop{i}@example.com") for i in range(3)]
    service = make_service("Prop", duration=30, price=0, before=5, after=10, notice=0, horizon=400)
    provider = make_provider([service], name="Dr Prop")

    @given(day=st.sampled_from(DATES[3:]), data=st.data(),
           hours=st.tuples(st.integers(0, 10), st.integers(4, 12)))
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(day, data, hours):
        Appointment.objects.delete()
        from models import TimeClaim

        TimeClaim.objects.delete()
        schedule = Schedule.objects.get(provider=provider.id)
        for d in schedule.days:
            d.start, d.end = f"{hours[0]:02d}:00", f"{min(hours[0] + hours[1], 23):02d}:00"
            d.breaks = []
        schedule.save()
        now = datetime.combine(day, time(0), ZoneInfo(clinic.timezone)).astimezone(UTC) - timedelta(days=1)
        offered = find_slots(service, [provider], clinic, day, 1, now)
        if not offered:
            return
        for patient in patients:
            start, end, _ = data.draw(st.sampled_from(offered))
            # Offered a moment ago, so it must book.
            booked = book(patient, str(service.id), str(provider.id), start, now)
            assert booked.status == "confirmed"
            offered = find_slots(service, [provider], clinic, day, 1, now)
            blocked = (booked.block_start.replace(tzinfo=UTC), booked.block_end.replace(tzinfo=UTC))
            for s, e, _ in offered:
                assert not intersect([(s - timedelta(minutes=5), e + timedelta(minutes=10))], [blocked])
            if not offered:
                return

    run()


# ---------------------------------------------------------------- the integer fast path


def _reference_slots(tz, days, overrides, time_off, busy, rules, now, first, last):
    """free_slots as it was written before the fast path: every candidate on the wall-clock grid,
    each checked against the blocked time. Slow and obviously right; the fast path must agree."""
    from models.booking.availability import _Blocked, _conflicts, _dates, _grid, _overrides_by_date, _windows_for

    zone, day_list, by_date = ZoneInfo(tz), tuple(days), _overrides_by_date(overrides)
    blocked = _Blocked(list(time_off), list(busy))
    earliest, latest = now + rules.min_notice, now + rules.horizon
    found = set()
    for d in _dates(first, last):
        for window in _windows_for(zone, day_list, by_date, d):
            for slot in _grid(window, zone, rules):
                if earliest <= slot[0] <= latest and not _conflicts(slot, rules, blocked):
                    found.add(slot)
    return sorted(found)


@st.composite
def span_scenario(draw):
    from models.booking.availability import DateOverride

    tz, day, days, rules, busy, now = draw(scenario())
    span = draw(st.integers(1, 9))
    first = day - timedelta(days=draw(st.integers(0, 3)))
    last = first + timedelta(days=span - 1)
    zone = ZoneInfo(tz)
    overrides = []
    for _ in range(draw(st.integers(0, 2))):
        o_day = first + timedelta(days=draw(st.integers(0, span - 1)))
        start = draw(st.integers(0, 20)) * 60 + draw(st.sampled_from([0, 30]))
        length = draw(st.integers(0, 8)) * 60
        overrides.append(DateOverride(date=o_day, intervals=(
            ((time(start // 60, start % 60), time(min(start + length, 23 * 60 + 59) // 60,
                                                   min(start + length, 23 * 60 + 59) % 60)),)
            if length else ())))
    time_off = []
    for _ in range(draw(st.integers(0, 3))):
        o_day = first + timedelta(days=draw(st.integers(0, span - 1)))
        start = datetime.combine(o_day, time(draw(st.integers(0, 23))), zone).astimezone(UTC)
        time_off.append((start, start + timedelta(minutes=draw(st.integers(1, 48)) * 15)))
    return tz, days, tuple(overrides), time_off, busy, rules, now, first, last


@given(span_scenario())
@settings(max_examples=300, deadline=None)
def test_fast_path_offers_exactly_what_the_per_slot_walk_offers(case):
    tz, days, overrides, time_off, busy, rules, now, first, last = case
    expected = _reference_slots(tz, days, overrides, time_off, busy, rules, now, first, last)
    assert free_slots(tz=tz, days=days, overrides=overrides, time_off=time_off, busy=busy, rules=rules,
                      now=now, first=first, last=last) == expected


@given(st.sampled_from(ZONES + ["Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns"]),
       st.integers(0, 4 * 365 * 24 * 3600), st.sampled_from([0, 0, 0, 7, 123456]))
@settings(max_examples=400, deadline=None)
def test_local_iso_formatter_writes_what_isoformat_writes(tz, seconds, micro):
    from models.booking.freetimes import LocalIso

    base = datetime(2025, 1, 1, tzinfo=UTC)
    instant = base + timedelta(seconds=seconds, microseconds=micro)
    us = (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert LocalIso(tz)(us) == instant.astimezone(ZoneInfo(tz)).isoformat()


def test_local_iso_formatter_across_clock_changes():
    from models.booking.freetimes import LocalIso

    iso = LocalIso("Europe/London")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    # Every minute around the spring and autumn changes of 2027, through one formatter (its caches).
    for middle in (datetime(2027, 3, 28, 1, tzinfo=UTC), datetime(2027, 10, 31, 1, tzinfo=UTC)):
        for minute in range(-180, 180):
            instant = middle + timedelta(minutes=minute)
            assert iso((instant - epoch) // timedelta(microseconds=1)) == \
                instant.astimezone(LONDON_ZONE).isoformat()


LONDON_ZONE = ZoneInfo("Europe/London")
