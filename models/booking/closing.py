"""A closure over booked appointments: staff see which appointments fall in it (to move them) and
can tell those patients with one action, through the outbox (one message per appointment, once).

The notice goes the way every message about a visit goes (`outbox.enqueue_for_appointment`): to the
account holder for a dependant's visit, by email and/or text as that person chose. A visit nobody
can be written to about (no email and no mobile on file) is handed back, so staff phone them.
"""

from dataclasses import dataclass, field

from models.audit import audited
from models.booking.documents import ACTIVE_STATUSES, Appointment
from models.clock import as_utc
from models.messages.outbox import enqueue_for_appointment


def appointments_during(start, end):
    """Active appointments (held, confirmed, checked in) overlapping [start, end), by start."""
    return list(Appointment.objects(status__in=ACTIVE_STATUSES, start__lt=as_utc(end), end__gt=as_utc(start))
                .order_by("start").select_related(max_depth=1))


@dataclass
class ClosureNotices:
    """What messaging a closure's patients did: the appointments whose patient (or guardian) is told,
    and those with nobody to write to, by start."""

    told: list = field(default_factory=list)
    unreachable: list = field(default_factory=list)

    def __add__(self, other):
        """Both closures' notices together (the action may be asked about several at once)."""
        return ClosureNotices(self.told + other.told, self.unreachable + other.unreachable)


def _closure_record(closure, *args, **kwargs):
    return f"Closure:{closure.id}"


@audited("closure.message_patients", _closure_record,
         outcome=lambda notices: f"told:{len(notices.told)},unreachable:{len(notices.unreachable)}")
def message_patients(closure, now):
    """Queue a "the clinic is closed then" notice about each appointment in the closure; a ClosureNotices.

    Asking twice sends nothing twice: the outbox keeps one notice per appointment and version (so a
    visit in two closures hears of the first one asked about).
    """
    notices = ClosureNotices()
    for appt in appointments_during(closure.start, closure.end):
        queued = enqueue_for_appointment("closure_notice", appt, now, context={"reason": closure.reason})
        (notices.told if queued is not None else notices.unreachable).append(appt)
    return notices
