"""The schedule editor: a provider's week as seven rows (open, hours, breaks) plus date overrides.

Plain WTForms rendered by our own template, so it works without JavaScript: "Add a break",
"Remove", "Copy Monday to weekdays", "Copy Monday to every day" and "Add days off" are submit
buttons that post the form back changed; nothing is saved until "Save". With JavaScript
(static/schedule_editor.js, issue 26) the same buttons change the page in place, and a preview of
the week follows every change, so a week is set with one page load (the save). Times are local wall-clock times ("HH:MM") in the clinic's zone,
the way `Schedule` stores them.
"""

import re
from datetime import date, timedelta

from wtforms import BooleanField, FieldList, Form, FormField, SelectField, StringField
from wtforms.fields import DateField
from wtforms.validators import Optional
from wtforms.widgets import DateInput, TimeInput

from admin.base import ClinicSecureForm
from models.documents import Break, DateOverride, DayHours

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::\d{2})?$")
# Submit buttons that change the number of rows instead of saving.
ROW_BUTTONS = ("add_break", "remove_break", "add_override", "remove_override", "copy_weekdays", "copy_all")
# Days off and leave: a range is stored as one override per date; longer than this is refused.
MAX_RANGE_DAYS = 366


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
    """Days off or leave: one date or a range of dates, whole days (or the same part-day hours each date)."""

    date = DateField("Date", widget=DateInput(), validators=[Optional()])
    until = DateField("Until (optional)", widget=DateInput(), validators=[Optional()])
    closed = BooleanField("Whole day off")
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
        dates = _date_range(sub)
        if dates is None:
            ok = False
            continue
        if any(d in seen for d in dates):
            _error(sub.date, "These dates overlap days off above.")
            ok = False
            continue
        seen.update(dates)
        if sub.closed.data:
            overrides.extend(DateOverride(date=d, intervals=[]) for d in dates)
            continue
        hours = _times(sub)
        if hours is None:
            ok = False
            continue
        overrides.extend(DateOverride(date=d, intervals=[list(hours)]) for d in dates)
    overrides.sort(key=lambda o: o.date)
    return (days, overrides) if ok else None


def _date_range(sub):
    """The dates a days-off row covers (its date, up to its optional "until"); None with an error on the field."""
    first, last = sub.date.data, sub.until.data or sub.date.data
    if last < first:
        _error(sub.until, "The last day off must be on or after the first.")
        return None
    if (last - first).days >= MAX_RANGE_DAYS:
        _error(sub.until, f"Days off can cover at most {MAX_RANGE_DAYS} days in one row.")
        return None
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _ranges(overrides):
    """Stored per-date overrides grouped back into rows: consecutive dates with the same hours."""
    rows = []
    for override in sorted(overrides, key=lambda o: o.date):
        day = override.date if isinstance(override.date, date) else None
        if day is None:
            continue
        day = day.date() if hasattr(day, "date") and callable(day.date) else day
        hours = [list(i) for i in override.intervals or []]
        if rows and rows[-1]["hours"] == hours and rows[-1]["until"] + timedelta(days=1) == day:
            rows[-1]["until"] = day
        else:
            rows.append({"date": day, "until": day, "hours": hours})
    return rows


def week_preview(form):
    """The week as the form now says (checked or not): [(weekday name, "09:00–12:00, 13:00–17:00" or "Closed")]."""
    rows = []
    for index, day in enumerate(form.days):
        entry = day.form
        if not entry.open.data:
            rows.append((WEEKDAYS[index], "Closed"))
            continue
        try:
            start, end = clean_time(entry.start.data), clean_time(entry.end.data)
            breaks = sorted((clean_time(b.form.start.data), clean_time(b.form.end.data)) for b in entry.breaks
                            if b.form.start.data and b.form.end.data)
        except ValueError:
            rows.append((WEEKDAYS[index], "times to correct"))
            continue
        if not start or not end:
            rows.append((WEEKDAYS[index], "hours missing"))
            continue
        parts, cursor = [], start
        for b_start, b_end in breaks:
            if b_start > cursor:
                parts.append(f"{cursor}–{min(b_start, end)}")
            cursor = max(cursor, b_end)
        if cursor < end:
            parts.append(f"{cursor}–{end}")
        rows.append((WEEKDAYS[index], ", ".join(parts) or "Closed"))
    return rows


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
    for row in _ranges(schedule.overrides if schedule else []):
        interval = row["hours"][0] if row["hours"] else None
        form.overrides.append_entry({"date": row["date"], "until": row["until"] if row["until"] != row["date"] else None,
                                     "closed": not row["hours"],
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
        form.overrides.append_entry({"closed": True})  # a whole day off unless told otherwise
        return True
    if "copy_weekdays" in values or "copy_all" in values:
        copy_monday(form, range(1, 5) if "copy_weekdays" in values else range(1, 7))
        return True
    if "remove_override" in values:
        index = _int(values.get("remove_override"), 0, 500)
        if index is not None and index < len(form.overrides.entries):
            form.overrides.entries.pop(index)
        return True
    return False


def copy_monday(form, targets):
    """Give the `targets` weekdays Monday's open/closed, hours and breaks (issue 26)."""
    monday = form.days[0].form
    for index in targets:
        entry = form.days[index].form
        entry.open.data = monday.open.data
        entry.start.data, entry.end.data = monday.start.data, monday.end.data
        while len(entry.breaks):
            entry.breaks.pop_entry()
        for brk in monday.breaks:
            entry.breaks.append_entry({"start": brk.form.start.data, "end": brk.form.end.data})


def _int(raw, low, high):
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if low <= value <= high else None
