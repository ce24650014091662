"""The schedule editor: a provider's week as seven rows (open, hours, breaks) plus date overrides.

Plain WTForms rendered by our own template, so it works without JavaScript: "Add a break",
"Remove" and "Add a date" are submit buttons that post the form back with one row more or less;
nothing is saved until "Save". Times are local wall-clock times ("HH:MM") in the clinic's zone,
the way `Schedule` stores them.
"""

import re
from datetime import date

from wtforms import BooleanField, FieldList, Form, FormField, SelectField, StringField
from wtforms.fields import DateField
from wtforms.validators import Optional
from wtforms.widgets import DateInput, TimeInput

from admin.base import ClinicSecureForm
from models.documents import Break, DateOverride, DayHours

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::\d{2})?$")
# Submit buttons that change the number of rows instead of saving.
ROW_BUTTONS = ("add_break", "remove_break", "add_override", "remove_override")


def clean_time(raw):
    """"9:00", "09:00" or "09:00:00" -> "09:00"; None when empty; ValueError when not a time."""
    raw = (raw or "").strip()
    if not raw:
        return None
    match = TIME.match(raw)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError("Enter a time like 09:00.")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


class BreakForm(Form):
    """One break inside a day's hours."""

    start = StringField("Break from", widget=TimeInput())
    end = StringField("Break until", widget=TimeInput())


class DayForm(Form):
    """One weekday: open or closed, its hours, and its breaks."""

    open = BooleanField("Open")
    start = StringField("Opens at", widget=TimeInput())
    end = StringField("Closes at", widget=TimeInput())
    breaks = FieldList(FormField(BreakForm))


class OverrideForm(Form):
    """One date with other hours, or closed all day."""

    date = DateField("Date", widget=DateInput(), validators=[Optional()])
    closed = BooleanField("Closed all day")
    start = StringField("Opens at", widget=TimeInput())
    end = StringField("Closes at", widget=TimeInput())


class ScheduleForm(ClinicSecureForm):
    """The whole editor; `provider` is removed for provider staff (it is always themselves)."""

    provider = SelectField("Provider", choices=[])
    days = FieldList(FormField(DayForm), min_entries=7, max_entries=7)
    overrides = FieldList(FormField(OverrideForm))


def _error(field, message):
    field.errors = list(field.errors or []) + [message]


def _times(day_or_override):
    """Clean the start/end pair of a row; errors go on the fields. Returns (start, end) or None."""
    values = []
    for field in (day_or_override.start, day_or_override.end):
        try:
            values.append(clean_time(field.data))
        except ValueError as exc:
            _error(field, str(exc))
            values.append(False)
    start, end = values
    if start is None:
        _error(day_or_override.start, "Enter the opening time.")
    if end is None:
        _error(day_or_override.end, "Enter the closing time.")
    if not start or not end:
        return None
    if end <= start:
        _error(day_or_override.end, f"The closing time must be after the opening time ({start}).")
        return None
    return start, end


def validate_schedule(form):
    """Check every row, putting each error on its field; returns (days, overrides) or None."""
    ok = True
    days = []
    for index, day in enumerate(form.days):
        entry = day.form
        if not entry.open.data:
            continue
        hours = _times(entry)
        if hours is None:
            ok = False
            continue
        breaks = []
        for brk in entry.breaks:
            sub = brk.form
            if not (sub.start.data or "").strip() and not (sub.end.data or "").strip():
                continue  # an empty (or removed) break row
            span = _times(sub)
            if span is None:
                ok = False
                continue
            if span[0] < hours[0] or span[1] > hours[1]:
                _error(sub.start, f"A break must lie within the working hours ({hours[0]}–{hours[1]}).")
                ok = False
                continue
            if any(span[0] < other[1] and other[0] < span[1] for other in breaks):
                _error(sub.start, "This break overlaps another break on the same day.")
                ok = False
                continue
            breaks.append(span)
        days.append(DayHours(weekday=index, start=hours[0], end=hours[1],
                             breaks=[Break(start=s, end=e) for s, e in sorted(breaks)]))
    overrides, seen = [], set()
    for row in form.overrides:
        sub = row.form
        if sub.date.data is None:
            if (sub.start.data or sub.end.data or sub.closed.data or (sub.date.raw_data or [""])[0]):
                _error(sub.date, "Enter the date, like 2027-12-24.")
                ok = False
            continue  # a blank row
        if sub.date.data in seen:
            _error(sub.date, "This date already has an override above.")
            ok = False
            continue
        seen.add(sub.date.data)
        if sub.closed.data:
            overrides.append(DateOverride(date=sub.date.data, intervals=[]))
            continue
        hours = _times(sub)
        if hours is None:
            ok = False
            continue
        overrides.append(DateOverride(date=sub.date.data, intervals=[list(hours)]))
    overrides.sort(key=lambda o: o.date)
    return (days, overrides) if ok else None


def prefill(form, schedule):
    """Fill an unposted form from a stored schedule (or leave the week closed for a new one)."""
    by_day = {d.weekday: d for d in (schedule.days if schedule else [])}
    while len(form.days) < 7:
        form.days.append_entry()
    for index, day in enumerate(form.days):
        stored = by_day.get(index)
        entry = day.form
        entry.open.data = stored is not None
        entry.start.data = stored.start if stored else ""
        entry.end.data = stored.end if stored else ""
        while len(entry.breaks):
            entry.breaks.pop_entry()
        for brk in (stored.breaks if stored else []):
            entry.breaks.append_entry({"start": brk.start, "end": brk.end})
    while len(form.overrides):
        form.overrides.pop_entry()
    for override in sorted(schedule.overrides if schedule else [], key=lambda o: o.date):
        interval = override.intervals[0] if override.intervals else None
        form.overrides.append_entry({"date": override.date if isinstance(override.date, date) else None,
                                     "closed": not override.intervals,
                                     "start": interval[0] if interval else "",
                                     "end": interval[1] if interval else ""})


def apply_row_buttons(form, values):
    """Add or remove a break or an override row when one of those buttons was pressed.

    Returns True when the post was such a button (show the form again, save nothing).
    """
    if "add_break" in values:
        index = _int(values.get("add_break"), 0, 6)
        if index is not None:
            form.days[index].form.breaks.append_entry()
            form.days[index].form.open.data = True
        return True
    if "remove_break" in values:
        day, _, brk = (values.get("remove_break") or "").partition("-")
        day, brk = _int(day, 0, 6), _int(brk, 0, 50)
        if day is not None and brk is not None and brk < len(form.days[day].form.breaks.entries):
            form.days[day].form.breaks.entries.pop(brk)
        return True
    if "add_override" in values:
        form.overrides.append_entry()
        return True
    if "remove_override" in values:
        index = _int(values.get("remove_override"), 0, 500)
        if index is not None and index < len(form.overrides.entries):
            form.overrides.entries.pop(index)
        return True
    return False


def _int(raw, low, high):
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if low <= value <= high else None
