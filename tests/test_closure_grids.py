"""The back office's day and week grids show when the clinic is closed (issue 25): the demo clinic's
public holiday (it closes on GB-ENG's) and a part-day closure staff entered, with the reason, and
never a free time inside one."""

import re
from datetime import date, datetime, time, timedelta, timezone

from models.catalog.closures import public_holidays
from models.catalog.documents import Closure
from models.seed import seed_demo
from tests.support.clients import signed_in_staff
from tests.support.factories import LONDON, PASSWORD


def _next_christmas():
    """The next 25 December in the clinic's zone (25 December 2026 when this was written)."""
    today = datetime.now(timezone.utc).astimezone(LONDON).date()
    christmas = date(today.year, 12, 25)
    return christmas if christmas >= today else date(today.year + 1, 12, 25)


def _cell(week_html, day):
    """The text of the first provider's cell for `day` in the week table (tags dropped)."""
    match = re.search(rf'<td data-day="{day.isoformat()}">(.*?)</td>', week_html, re.S)
    assert match, day
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def _working_day_of_christmas_week(christmas):
    """A weekday of Christmas week (the doctors work Monday to Friday) that is no public holiday."""
    monday = christmas - timedelta(days=christmas.weekday())
    holidays = public_holidays("GB-ENG", christmas.year, christmas.year)
    return next(d for d in (monday + timedelta(days=i) for i in range(5)) if d not in holidays)


def test_the_day_and_week_grids_say_the_clinic_is_closed_and_why(app):
    seed_demo(password=PASSWORD)
    christmas = _next_christmas()
    training = _working_day_of_christmas_week(christmas)
    # A part-day closure staff entered: the morning of a working day in the same week.
    Closure(start=datetime.combine(training, time(9), LONDON), end=datetime.combine(training, time(13), LONDON),
            reason="Staff training").save()
    client = signed_in_staff(app, "reception", create=True)

    day = client.get(f"/admin/day/?day={christmas.isoformat()}").get_data(as_text=True)
    assert "Clinic closed: Christmas Day" in day
    assert "fd-gap" not in day  # no free time offered on a closed day

    part = client.get(f"/admin/day/?day={training.isoformat()}").get_data(as_text=True)
    assert "Clinic closed: Staff training" in part
    free = re.findall(r"(\d\d:\d\d) free<", part)
    assert free and all(at >= "13:00" for at in free), free  # the morning is not offered

    week = client.get(f"/admin/day/week?day={christmas.isoformat()}").get_data(as_text=True)
    closed = _cell(week, christmas)
    assert closed.startswith("Clinic closed: Christmas Day"), closed
    assert "Not working" not in closed and "h free" not in closed
    cell = _cell(week, training)
    assert cell.startswith("Clinic closed: Staff training (closed 09:00–13:00)"), cell
    assert "13:30–17:00" in cell  # the doctor's hours left that day (lunch was 12:30–13:30)
