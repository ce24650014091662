"""Front-desk transitions staff make on the day: check-in and no-show (guarded, single-document)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from models.booking import _utc
from models.documents import Appointment
from models.errors import Conflict


def check_in(appointment, now, tz):
    """Mark a confirmed appointment of today as arrived."""
    zone = ZoneInfo(tz)
    if _utc(appointment.start).astimezone(zone).date() != _utc(now).astimezone(zone).date():
        raise Conflict("Only today's appointments can be checked in.", code="not_today")
    moved = Appointment.objects(id=appointment.id, status="confirmed").update_one(
        set__status="checked_in", set__updated_at=now, inc__version=1)
    if not moved:
        raise Conflict(f"This appointment is {appointment.status.replace('_', ' ')}; only confirmed "
                       "appointments can be checked in.", code="bad_transition")
    appointment.reload()
    return appointment


def mark_no_show(appointment, now):
    """Mark a confirmed appointment whose start has passed as a no-show."""
    if _utc(appointment.start) > now + timedelta(minutes=0):
        raise Conflict("An appointment can be marked as a no-show only after it was due to start.",
                       code="not_started")
    moved = Appointment.objects(id=appointment.id, status="confirmed").update_one(
        set__status="no_show", set__updated_at=now, inc__version=1)
    if not moved:
        raise Conflict(f"This appointment is {appointment.status.replace('_', ' ')}; only confirmed "
                       "appointments can be marked as no-shows.", code="bad_transition")
    appointment.reload()
    return appointment
