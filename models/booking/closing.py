"""A closure over booked appointments: staff see which appointments fall in it (to move them) and
can tell those patients with one action, through the outbox (one message per appointment, once)."""

from models.audit import audited
from models.booking.documents import ACTIVE_STATUSES, Appointment
from models.clock import as_utc
from models.messages.outbox import enqueue


def appointments_during(start, end):
    """Active appointments (held, confirmed, checked in) overlapping [start, end), by start."""
    return list(Appointment.objects(status__in=ACTIVE_STATUSES, start__lt=as_utc(end), end__gt=as_utc(start))
                .order_by("start").select_related(max_depth=1))


def _closure_record(closure, *args, **kwargs):
    return f"Closure:{closure.id}"


@audited("closure.message_patients", _closure_record)
def message_patients(closure, now):
    """Queue a "the clinic is closed then" email to the patient of each appointment in the closure;
    answers how many appointments' patients are told (asking twice sends nothing twice: the outbox
    keeps one message per closure and appointment)."""
    told = 0
    for appt in appointments_during(closure.start, closure.end):
        if enqueue("closure_notice", appt.patient.email, f"Closure:{closure.id}:{appt.id}",
                   appointment_id=appt.id, patient_id=appt.patient.id,
                   context={"reason": closure.reason}, now=now) is not None:
            told += 1
    return told
