"""What booking tells the contexts above it, without importing them (they import booking).

`booking.cancel` frees an appointment's time and then calls every subscriber of `after_cancel`
with `(appointment, now, by_staff=, status_before=, actor=)`. Payments subscribes
`payments.after_cancellation` when `models.payments.cancellation` is imported, and
`models/__init__.py` imports it, so every process that can cancel (the app factory, the CLI, the
sweep, a test) has the subscriber before its first cancellation. A cancellation with no subscriber
raises: its money would otherwise be silently left behind.
"""

_after_cancel = []


def on_cancel(subscriber):
    """Subscribe `subscriber(appointment, now, *, by_staff, status_before, actor)` to cancellations (once)."""
    if subscriber not in _after_cancel:
        _after_cancel.append(subscriber)
    return subscriber


def cancelled(appointment, now, **details):
    """Tell every subscriber that `appointment` was cancelled (its time is already released)."""
    if not _after_cancel:
        raise RuntimeError("no subscriber to booking cancellations: import models.payments.cancellation")
    for subscriber in list(_after_cancel):
        subscriber(appointment, now, **details)
