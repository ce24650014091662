"""Every document of the domain in one registry, and their indexes.

Each context holds its own documents (`models/<context>/documents.py`); this module only gathers
them for the app's start (`ensure_indexes`), the back office's lists and the tests. Code inside
`models/` imports a context's documents module, never this registry (it sits above every context).

Instants are stored in UTC; schedules are local wall-clock times ("HH:MM") in the clinic's IANA
zone. Money is an integer in minor units plus an ISO currency code.
"""

from models.accounts.documents import (  # noqa: F401
    NO_EMAIL_DOMAIN,
    ROLES,
    PasswordReset,
    Patient,
    StaffUser,
    deliverable,
)
from models.audit import AuditEvent
from models.booking.documents import (  # noqa: F401
    ACTIVE_STATUSES,
    APPOINTMENT_STATUSES,
    Appointment,
    TimeClaim,
)
from models.booking.status import offers_become_a_status
from models.catalog.documents import (  # noqa: F401
    HHMM,
    REFUND_RULES,
    Break,
    Clinic,
    DateOverride,
    DayHours,
    Provider,
    Schedule,
    Service,
    TimeOff,
)
from models.catalog.documents import ClinicLogo, Closure  # noqa: F401 (clinic profile, issue 25)
from models.clock import utcnow  # noqa: F401
from models.messages.documents import OutboxMessage, SmsOptOut
from models.payments.documents import (  # noqa: F401
    PAYMENT_STATUSES,
    Payment,
    Refund,
    StripeEvent,
)

ALL_DOCUMENTS = (Clinic, Service, Provider, Schedule, TimeOff, Patient, StaffUser, Appointment,
                 TimeClaim, Payment, StripeEvent, AuditEvent)


def ensure_indexes():
    """Create every document's indexes now (MongoEngine would build them lazily otherwise)."""
    _drop_one_payment_per_appointment()
    offers_become_a_status()  # issue 24: a waitlist offer is a status of its own; old ones converted
    for document in ALL_DOCUMENTS:
        document.ensure_indexes()
    # The email outbox and the set-password links.
    OutboxMessage.ensure_indexes()
    SmsOptOut.ensure_indexes()  # text messages (issue 29)
    from models.feeds import FeedToken  # clinicians' calendar feeds (issue 29)

    FeedToken.ensure_indexes()
    PasswordReset.ensure_indexes()
    # The clinic's closures and logo (issue 25).
    Closure.ensure_indexes()
    ClinicLogo.ensure_indexes()


def _drop_one_payment_per_appointment():
    """No-show protection (issue 27): an appointment may have a deposit and fees besides its
    payment, so the old unique index on `appointment` alone gives way to (appointment, kind)."""
    collection = Payment._get_collection()
    for name, spec in collection.index_information().items():
        if spec.get("unique") and [k for k, _ in spec["key"]] == ["appointment"]:
            collection.drop_index(name)
