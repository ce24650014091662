"""The domain: one package per context (catalog, accounts, messages, booking, payments) over the
shared clock, errors, audit and stores; every document is offered here too (see `documents`).

Importing the domain wires its contexts: `models.payments.cancellation` subscribes payments to
booking's cancellations (`models.booking.hooks`), so every process that can cancel (the app
factory, the CLI, the sweep, the tests) has the subscriber as soon as it imports anything from
`models`.
"""

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
from models.payments import cancellation as _subscribes_payments_to_cancellations  # noqa: F401, E402
