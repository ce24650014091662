"""The domain: documents with their indexes, and the rules every door shares."""

from models.documents import (  # noqa: F401
    ALL_DOCUMENTS,
    AuditEvent,
    Appointment,
    Clinic,
    DateOverride,
    DayHours,
    Break,
    Patient,
    Payment,
    Provider,
    Refund,
    Schedule,
    Service,
    StaffUser,
    StripeEvent,
    TimeClaim,
    TimeOff,
    ensure_indexes,
    utcnow,
)
