"""Quiet hours for text messages (issue 29): no text between 21:00 and 08:00 in the clinic's zone.

Pure functions of an instant and a zone (the clock is a parameter). A text that falls due in
quiet hours waits until 08:00; a reminder would then be late (a 2 h reminder for 09:00 at 08:00
is still fine, but one for 08:30 would arrive after the patient left), so reminders are queued to
go out earlier instead: at 20:45 the evening before the quiet hours began.
"""

from datetime import datetime, time, timedelta

from models.clock import as_utc, from_local, local

QUIET_START = time(21, 0)
QUIET_END = time(8, 0)
REMINDER_LAST_CALL = time(20, 45)  # where a reminder due in quiet hours moves to


def in_quiet_hours(instant, tz):
    """True when `instant` falls between 21:00 and 08:00 on the clinic's wall clock."""
    wall = local(instant, tz).time()
    return wall >= QUIET_START or wall < QUIET_END


def quiet_ends(instant, tz):
    """The first instant at or after `instant` outside quiet hours (08:00 local, or `instant` itself)."""
    if not in_quiet_hours(instant, tz):
        return as_utc(instant)
    wall = local(instant, tz)
    day = wall.date() + timedelta(days=1) if wall.time() >= QUIET_START else wall.date()
    return from_local(datetime.combine(day, QUIET_END), tz)


def reminder_due(due, tz):
    """When a reminder due at `due` should go by text: earlier, at 20:45 the evening before, if
    `due` falls in quiet hours; otherwise `due` itself."""
    if not in_quiet_hours(due, tz):
        return as_utc(due)
    wall = local(due, tz)
    day = wall.date() if wall.time() >= QUIET_START else wall.date() - timedelta(days=1)
    return from_local(datetime.combine(day, REMINDER_LAST_CALL), tz)
