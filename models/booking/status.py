"""Which appointment status may follow which: the one table every status change goes through.

    held        -> confirmed (paid), expired (hold lapsed, payment too late), cancelled
    offered     -> held (a waitlist offer accepted, payment due), confirmed (a free one accepted),
                   expired (the offer lapsed, was declined or withdrawn), cancelled (by staff)
    expired     -> confirmed (a late payment whose time could still be secured), expired (the
                   reason a late payment was refunded is recorded)
    confirmed   -> checked_in, no_show, cancelled
    checked_in  -> confirmed (check-in undone), completed (its end passed), cancelled
    no_show     -> confirmed (no-show undone)
    completed, cancelled: final

The table is a `models.transitions.StatusTable`, the form the Payment's table (the ledger's) shares.
`move` writes a change with one guarded `modify(new=True)`: the appointment moves only from the
statuses the caller names, each of which the table must allow, so two racing changes never both win.
"""

from models.audit import carried_update, settle_carried, take_carried
from models.booking.documents import APPOINTMENT_STATUSES, OFFERED, WAITLIST_OFFER, Appointment
from models.transitions import ForbiddenTransition, StatusTable  # noqa: F401 (ForbiddenTransition: for callers)

TRANSITIONS = {
    "held": ("confirmed", "expired", "cancelled"),
    "offered": ("held", "confirmed", "expired", "cancelled"),
    "expired": ("confirmed", "expired"),
    "confirmed": ("checked_in", "no_show", "cancelled"),
    "checked_in": ("confirmed", "completed", "cancelled"),
    "no_show": ("confirmed",),
    "completed": (),
    "cancelled": (),
}
TABLE = StatusTable("an appointment", TRANSITIONS, APPOINTMENT_STATUSES)  # the form the Payment's shares


def allowed(old, new):
    """True when the table lets an appointment move from `old` to `new`."""
    return TABLE.allowed(old, new)


def sources(new):
    """Every status the table lets an appointment move to `new` from."""
    return TABLE.sources(new)


def move(appointment_id, new, now, *, only_from=None, bump=True, where=None, **changes):
    """Move an appointment to `new` in one guarded write; the updated document, or None when it was
    no longer in one of `only_from` (default: every status the table allows) or `where` failed.

    `bump` increments `version` (queued email about the old version is then dropped); `changes` are
    further `set__` updates written in the same command.
    """
    only_from = TABLE.guard(new, only_from)
    update = {"set__status": new, "set__updated_at": now, **changes}
    if bump:
        update["inc__version"] = 1
    carried = take_carried(f"Appointment:{appointment_id}")  # the action's audit, in the same write
    update.update(carried_update(carried))
    moved = Appointment.objects(id=appointment_id, status__in=only_from, **(where or {})).modify(new=True, **update)
    settle_carried(Appointment, appointment_id, carried, landed=moved is not None)
    return moved


def adopt(appointment, updated):
    """Bring a document in hand up to date with what `move` wrote (its references stay as they are)."""
    for name in ("status", "updated_at", "version", "cancel_reason", "hold_expires_at", "booked_by", "notes"):
        appointment._data[name] = updated._data.get(name)
    appointment._clear_changed_fields()
    return appointment


def offers_become_a_status():
    """Start-up migration (issue 24), idempotent: a waitlist offer stored the old way (`held` with
    `booked_by=WAITLIST_OFFER`) becomes `offered`. Returns how many changed. Runs in
    `models.ensure_indexes`, before the app serves (the `held` -> `offered` step is outside the table:
    it renames how an open offer is stored, not a change of the appointment)."""
    result = Appointment._get_collection().update_many({"status": "held", "booked_by": WAITLIST_OFFER},
                                                       {"$set": {"status": OFFERED}})
    return result.modified_count
