"""The sweeper: one pass that expires lapsed holds and reconciles payments."""

from dataclasses import dataclass, field

from models.documents import Appointment, TimeClaim, utcnow


@dataclass
class SweepReport:
    """What one sweep pass did."""

    expired: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def lines(self):
        """Human-readable summary lines."""
        out = [f"sweep: {len(self.expired)} hold(s) expired"]
        out += [f"sweep: problem: {p}" for p in self.problems]
        return out


def sweep(now=None):
    """Expire unpaid holds whose time has passed and release their claimed time."""
    now = now or utcnow()
    report = SweepReport()
    for appt in Appointment.objects(status="held", hold_expires_at__lte=now).only("id"):
        # Guarded update: only a still-held, still-lapsed appointment moves to expired.
        moved = Appointment.objects(id=appt.id, status="held", hold_expires_at__lte=now).update_one(
            set__status="expired", set__updated_at=now)
        if moved:
            TimeClaim.objects(appointment=appt.id).delete()
            report.expired.append(str(appt.id))
    return report
