"""The messages patient self-service sends: reschedule notices and waitlist offers, via the outbox.

Both queue an `OutboxMessage` (models/messages/outbox.py) right after the change that causes it; the sweep
sends it. Queuing never undoes the change: a failure is logged and the Outbox view shows the gap.
"""

import logging
from datetime import timedelta

from models.accounts.documents import Patient
from models.clock import as_utc
from models.messages import outbox
from models.messages.quiet import quiet_ends

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
    """Queue the offer of a held time to a waiting patient; it is not sent once the offer lapsed.

    A dependant's offer (issue 28) goes where their other messages go, to the account holder
    (`outbox._recipient`, as for their bookings), and names who it is for (`for`: the dependant's
    id, their name read at send time).
    """
    try:
        person = Patient.objects(id=entry.patient.id).only("email", "guardian", "phone", "contact_by").first()
        patient = outbox._recipient(person)
        if patient is None:
            return None
        context = {"service": service.name, "provider": provider.name,
                   "start": _iso(start), "end": _iso(end),
                   "expires_at": _iso(entry.offer_expires_at), "url": "/portal/waitlist"}
        if patient.id != person.id:
            context["for"] = str(person.id)
        # By email and/or text, as the patient chose (issue 29).
        return outbox.enqueue_for_patient(
            "waitlist_offer", patient, f"WaitlistEntry:{entry.id}",
            # One message per offer: each offer adds its start to the entry's `declined` list.
            version=len(entry.declined or []), now=now,
            expires_at=entry.offer_expires_at, context=context)
    except Exception:
        log.exception("could not queue the waitlist offer of entry %s", entry.id)
        return None


# A waitlist offer must reach its patient with this long left to answer it.
ANSWER_TIME = timedelta(minutes=10)


def offer_reaches_in_time(patient_id, now, expires, tz):
    """False when an offer made now, holding its time until `expires`, would reach the patient too
    late to answer: their messages (the account holder's, for a dependant) go by text only, and
    texts wait out quiet hours (21:00–08:00 on the clinic's clock). The waitlist skips them until
    then and the time goes to the next in line; they stay first in line for the next time."""
    if quiet_ends(now, tz) <= expires - ANSWER_TIME:
        return True  # a text would go now (or soon enough): no need to ask who it goes to
    person = Patient.objects(id=patient_id).only("email", "guardian", "phone", "contact_by").first()
    patient = outbox._recipient(person) if person is not None else None
    return patient is None or [c for c, _ in outbox.patient_channels(patient)] != ["sms"]


def fee_due(appointment, amount, currency, url, now, kind="fee"):
    """Queue the "fee to pay" text (issue 29) for a fee the card on file could not pay.

    Only the text: the fee's email belongs to the fees feature. `url` is a path under the portal
    (its pay link); `kind` tells which fee ("late_cancel", "no_show") so each is one message.
    """
    try:
        appt = outbox.Appointment.objects(id=outbox._ref_id(appointment)).only("patient", "version").first()
        patient = appt and Patient.objects(id=outbox._ref_id(appt.patient)).only("email", "phone", "contact_by").first()
        if patient is None:
            return None
        numbers = [a for c, a in outbox.patient_channels(patient) if c == "sms"]
        if not numbers:
            return None
        return outbox.enqueue("fee_due", numbers[0], f"Appointment:{appt.id}", version=appt.version or 0,
                              variant=kind, channel="sms", appointment_id=appt.id, patient_id=patient.id,
                              now=now, context={"amount": int(amount), "currency": currency, "url": url})
    except Exception:
        log.exception("could not queue the fee text of appointment %s", outbox._ref_id(appointment))
        return None
