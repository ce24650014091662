"""Booking: appointments and the time they claim, from a free time to a closed visit.

Modules: `documents` (Appointment, TimeClaim), `intervals` and `availability` (the pure core: interval
algebra, then slot generation), `rules` (schedules as the core's values, slot rules, bulk loads), `claims` (the one
writer of time claims), `status` (which status may follow which), `create` (book), `cancellation`
(cancel, and `hooks` for the contexts above that act on it), `freetimes` (the cached free-times read
path), `waitlist`, `reschedule` and `frontdesk` (check-in, no-show, callers).

Import a name from the module that defines it (`from models.booking.create import book`); this
package's top imports nothing, so importing one module (say `documents`) runs no action module.
"""
