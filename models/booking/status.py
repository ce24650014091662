"""Which appointment status may follow which: the one table every status change goes through.

    held        -> confirmed (paid, or a free waitlist offer accepted), expired (hold lapsed, offer
                   ended, payment too late), cancelled, held (a waitlist offer becomes the
                   patient's own hold)
    expired     -> confirmed (a late payment whose time could still be secured), expired (the
                   reason a late payment was refunded is recorded)
    confirmed   -> checked_in, no_show, cancelled
    checked_in  -> confirmed (check-in undone), completed (its end passed), cancelled
    no_show     -> confirmed (no-show undone)
    completed, cancelled: final

`move` writes a change with one guarded `modify(new=True)`: the appointment moves only from the
statuses the caller names, each of which the table must allow, so two racing changes never both win.
"""

from models.booking.documents import APPOINTMENT_STATUSES, Appointment

TRANSITIONS = {
    "held": ("confirmed", "expired", "cancelled", "held"),
    "expired": ("confirmed", "expired"),
    "confirmed": ("checked_in", "no_show", "cancelled"),
    "checked_in": ("confirmed", "completed", "cancelled"),
    "no_show": ("confirmed",),
    "completed": (),
    "cancelled": (),
}
assert set(TRANSITIONS) == set(APPOINTMENT_STATUSES)


class ForbiddenTransition(ValueError):
    """A status change the table does not list (a programming error, not a race)."""


def allowed(old, new):
    """True when the table lets an appointment move from `old` to `new`."""
    return new in TRANSITIONS.get(old, ())


def sources(new):
    """Every status the table lets an appointment move to `new` from."""
    return tuple(old for old, targets in TRANSITIONS.items() if new in targets)


def move(appointment_id, new, now, *, only_from=None, bump=True, where=None, **changes):
    """Move an appointment to `new` in one guarded write; the updated document, or None when it was
    no longer in one of `only_from` (default: every status the table allows) or `where` failed.

    `bump` increments `version` (queued email about the old version is then dropped); `changes` are
    further `set__` updates written in the same command.
    """
    only_from = tuple(sources(new) if only_from is None else only_from)
    wrong = [old for old in only_from if not allowed(old, new)]
    if wrong or not only_from:
        raise ForbiddenTransition(f"an appointment cannot go from {', '.join(wrong) or 'nowhere'} to {new}")
    update = {"set__status": new, "set__updated_at": now, **changes}
    if bump:
        update["inc__version"] = 1
    return Appointment.objects(id=appointment_id, status__in=only_from, **(where or {})).modify(new=True, **update)


def adopt(appointment, updated):
    """Bring a document in hand up to date with what `move` wrote (its references stay as they are)."""
    for name in ("status", "updated_at", "version", "cancel_reason", "hold_expires_at", "booked_by", "notes"):
        appointment._data[name] = updated._data.get(name)
    appointment._clear_changed_fields()
    return appointment
