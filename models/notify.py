"""The messages patient self-service sends: one place for every notification of reschedule and waitlist.

For now each function writes an audit record of the notification (actor "system", the record it is
about, the kind), so tests and staff can see that it was due. When the email outbox
(models/outbox.py, built in another branch) is merged, these two functions are where it is
connected: they become "queue a `rescheduled` / `waitlist_offer` message in the outbox". Callers do
not change.
"""

from models.audit import record_audit


def rescheduled(appointment):
    """Tell the patient their appointment moved (today: an audit record `notify.rescheduled`)."""
    return record_audit("system", "notify.rescheduled", record=f"Appointment:{appointment.id}")


def waitlist_offer(entry):
    """Offer a freed time to a waiting patient (today: an audit record `notify.waitlist_offer`)."""
    return record_audit("system", "notify.waitlist_offer", record=f"WaitlistEntry:{entry.id}")
