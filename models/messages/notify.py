"""The messages patient self-service sends: reschedule notices and waitlist offers, via the outbox.

Both queue an `OutboxMessage` (models/messages/outbox.py) right after the change that causes it; the sweep
sends it. Queuing never undoes the change: a failure is logged and the Outbox view shows the gap.
"""

import logging

from models.accounts.documents import Patient
from models.clock import as_utc
from models.messages import outbox

log = logging.getLogger(__name__)


def _iso(dt):
    return as_utc(dt).isoformat()


def rescheduled(appointment, old_start, now, strict=False):
    """Queue the "rescheduled" email (new .ics) and the reminders for the new time.

    Call it after the update that moved the appointment and bumped its version: what was still
    queued for older versions (the last notice, the old time's reminders) is marked dropped.
    """
    try:
        queued = outbox.enqueue_for_appointment("rescheduled", appointment, now, context={"old_start": _iso(old_start)})
        outbox.queue_reminders(appointment, now)
        version = queued.version if queued is not None else appointment.version or 0
        # The old time's notices and reminders are superseded: dropped now, with the reason, not left to the sender.
        outbox.drop_superseded(appointment.id, version, f"superseded: the appointment was rescheduled (version {version})")
    except Exception:  # email must never undo a reschedule
        log.exception("could not queue the reschedule notice of appointment %s", appointment.id)
        if strict:  # the caller keeps its unfinished-action marker and the sweep queues it later
            raise


def waitlist_offer(entry, service, provider, start, end, now):
    """Queue the offer of a held time to a waiting patient; it is not sent once the offer lapsed."""
    try:
        patient = Patient.objects(id=entry.patient.id).only("email").first()
        if patient is None or not patient.email:
            return None
        return outbox.enqueue(
            "waitlist_offer", patient.email, f"WaitlistEntry:{entry.id}",
            # One message per offer: each offer adds its start to the entry's `declined` list.
            version=len(entry.declined or []), patient_id=patient.id, now=now,
            expires_at=entry.offer_expires_at,
            context={"service": service.name, "provider": provider.name,
                     "start": _iso(start), "end": _iso(end),
                     "expires_at": _iso(entry.offer_expires_at), "url": "/portal/waitlist"})
    except Exception:
        log.exception("could not queue the waitlist offer of entry %s", entry.id)
        return None
