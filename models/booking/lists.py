"""A patient's appointment lists (issue 24): the one answer to "which appointments are mine, and
which are still to come", read by the portal's dashboard and by `GET /api/appointments` alike.

The account's appointments are the holder's and their dependants' (issue 28). A waitlist offer is
not among them until accepted (`NOT_AN_OFFER`: open or ended, it was never the patient's). Each
appointment is listed with the status a person should see (`effective_status`: a lapsed hold reads
as expired before the sweep runs) and falls in exactly one list:

- `upcoming`: not ended, not closed — soonest first;
- `past`: ended (or completed, or a no-show) — most recent first;
- `closed`: cancelled or expired — most recently changed first.
"""

from dataclasses import dataclass

from models.accounts.dependants import household_ids
from models.booking.documents import NOT_AN_OFFER, Appointment
from models.booking.rules import effective_status
from models.clock import as_utc

CLOSED = ("cancelled", "expired")
ENDED = ("completed", "no_show")


@dataclass
class PatientAppointments:
    """The account's appointments as three lists of (appointment, status shown)."""

    upcoming: list
    past: list
    closed: list

    def everything(self):
        """Every listed appointment with its status, by start, soonest first (the API's order)."""
        return sorted(self.upcoming + self.past + self.closed, key=lambda item: as_utc(item[0].start))


def appointments_of(patient, now):
    """The patient's (and their dependants') appointments, offers left out, split for people to read.

    One query; each appointment comes with its patient, service and provider loaded.
    """
    appointments = list(Appointment.objects(patient__in=household_ids(patient), **NOT_AN_OFFER)
                        .order_by("start").select_related(max_depth=1))
    upcoming, past, closed = [], [], []
    for appointment in appointments:
        status = effective_status(appointment, now)
        if status in CLOSED:
            closed.append((appointment, status))
        elif as_utc(appointment.end) < now or status in ENDED:
            past.append((appointment, status))
        else:
            upcoming.append((appointment, status))
    past.reverse()
    closed.sort(key=lambda item: as_utc(item[0].updated_at or item[0].start), reverse=True)
    return PatientAppointments(upcoming, past, closed)
