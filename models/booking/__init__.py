"""Booking: appointments and the time they claim, from a free time to a closed visit.

Modules: `documents` (Appointment, TimeClaim), `intervals` and `availability` (the pure core: interval
algebra, then slot generation), `rules` (schedules as the core's values, slot rules, bulk loads), `claims` (the one
writer of time claims), `status` (which status may follow which), `create` (book), `cancellation`
(cancel, and `hooks` for the contexts above that act on it), `freetimes` (the cached free-times read
path), `waitlist`, `reschedule` and `frontdesk` (check-in, no-show, callers).

`from models import booking; booking.book(...)` keeps working: the names below load on first use.
Code inside `models/` imports the module that holds a name, never this front.
"""

from typing import TYPE_CHECKING

from models.facade import lazy_exports

EXPORTS = {
    "models.booking.documents": (
        "ACTIVE_STATUSES", "APPOINTMENT_STATUSES", "Appointment", "TimeClaim",
    ),
    "models.booking.rules": (
        "REASONS", "schedule_days", "service_rules", "is_blocking", "effective_status", "require_clinic",
        "get_service", "get_provider_for", "Window", "load_window", "find_slots", "free_providers_at",
        "get_patient_appointment",
    ),
    "models.booking.claims": (
        "UNIT", "TAKE_OVER_ORPHANS_AFTER", "claim_units", "claim_time", "release_time",
    ),
    "models.booking.create": (
        "book", "book_first_free", "check_hold_limits", "ics_for",
    ),
    "models.booking.cancellation": (
        "CancellationTerms", "cancellation_terms", "cancellation_terms_for", "cancellation_blocker", "cancel",
    ),
    "models.booking.hooks": (
        "on_cancel",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

if TYPE_CHECKING:  # the same names, imported for readers and for the import graph
    from models.booking.documents import (  # noqa: F401
        ACTIVE_STATUSES,
        APPOINTMENT_STATUSES,
        Appointment,
        TimeClaim,
    )
    from models.booking.rules import (  # noqa: F401
        REASONS,
        schedule_days,
        service_rules,
        is_blocking,
        effective_status,
        require_clinic,
        get_service,
        get_provider_for,
        Window,
        load_window,
        find_slots,
        free_providers_at,
        get_patient_appointment,
    )
    from models.booking.claims import (  # noqa: F401
        UNIT,
        TAKE_OVER_ORPHANS_AFTER,
        claim_units,
        claim_time,
        release_time,
    )
    from models.booking.create import (  # noqa: F401
        book,
        book_first_free,
        check_hold_limits,
        ics_for,
    )
    from models.booking.cancellation import (  # noqa: F401
        CancellationTerms,
        cancellation_terms,
        cancellation_terms_for,
        cancellation_blocker,
        cancel,
    )
    from models.booking.hooks import (  # noqa: F401
        on_cancel,
    )
