"""The email outbox: every message is a MongoDB document first, and the sweep sends it by SMTP.

This module queues messages and decides at send time whether one still fits (`why_drop`);
`models/messages/delivery.py` sends them (`deliver_due`, `resend`).

Why: sending inside a request freezes booking when the mail server is down, and reminders kept
anywhere but the database get lost, duplicated or sent after a cancellation. Here:

- A change that causes a message writes an `OutboxMessage` right after its own guarded update
  (booking, payment confirmation, cancellation …). The unique index on
  (kind, subject, version, variant) makes queuing idempotent: the same change queued twice is
  one message.
- `delivery.deliver_due(now)` (called by every sweep pass, `flask sweep`) claims due messages one at a time
  with `find_one_and_update` (status `queued` → `sending`, with a lease), so two sweepers, or two
  machines, never send the same message. A sender that dies mid-send leaves a lapsed lease; the
  message is tried again then (SMTP cannot be exactly-once; the Message-ID stays the same, so
  mail clients can spot the copy).
- Before sending, the appointment is read again. A message for an older `version` of the
  appointment (it was cancelled, rescheduled, checked in, expired), or for one that has started,
  is dropped with its reason. Times are rendered at send time in the clinic's zone, zone named.
- Failures: a server that cannot be reached ends the pass and leaves every message queued, not
  counting an attempt against it (the next pass tries again); a message the server refuses is
  retried with exponential backoff (1, 2, 4 … 60 min) up to `MAX_ATTEMPTS`, then marked `failed`
  with its last error. Staff can resend a failed message from the back office's Outbox.

Generic queuing (other actions call this)::

    enqueue(kind, to, subject, *, version=0, context=None, due_at=None, variant="",
            appointment_id=None, patient_id=None, expires_at=None, now=None) -> OutboxMessage

    enqueue_for_appointment(kind, appointment, now, *, context=None, due_at=None, variant="")
        # `to`, `subject` ("Appointment:<id>"), `version` and the ids come from the appointment
        # as stored now, so call it AFTER the update that bumped `Appointment.version`.

`subject` names what the message is about ("Appointment:<id>", "PasswordReset:<id>",
"WaitlistEntry:<id>"); `version` is that thing's version; `variant` separates several messages
of one kind for one version (reminders: "24h", "2h"). `expires_at`: not sent after this instant.
`context` holds only what cannot be read again at send time (JSON-able values; ISO strings for
instants). Kinds and their context:

- `confirmed` — none (appointment, service, provider, clinic read at send time); `.ics` attached.
- `receipt` — none (the Payment is read at send time). Sent even if the appointment changed
  later: the money was taken, the patient keeps the record.
- `cancelled` — none (any refund is read from the Payment at send time). Sent for a cancelled
  appointment of the same version; a past start does not stop it.
- `rescheduled` — `{"old_start": ISO instant}`; the new time is read at send time; `.ics` attached.
  Queue it after bumping the version (the old version's reminders are then dropped) and call
  `queue_reminders(appointment, now)` for the new time.
- `reminder` — none; `variant` = "<hours>h". Dropped when the start has passed, or when it is
  more than half its lead time late (a 24 h reminder is not sent 3 h before).
- `password_reset`, `invitation` — `{"token": raw token}` (see `models.accounts.reset`); `expires_at` =
  the token's expiry. The token is erased from the document once sent or dropped, and the
  back-office preview never shows it.
- `waitlist_offer` — `{"service", "provider", "start", "end", "expires_at", "url", "for"?}` (names as
  text, instants as ISO strings, `url` a path under the portal; `for` the dependant's id when the
  entry is a dependant's, issue 28: the message goes to the account holder and names them).
  `expires_at` as for resets.
- `closure_notice` — `{"reason": staff's words}`, through `enqueue_for_appointment` (models/booking/closing.py).
  `register_check(kind, fn)` lets an issue add its own "still valid?" test (fn(message, now)
  returns a drop reason or None).

Templates: `templates/email/<kind>.txt` (first line `{% set subject = … %}`) and `<kind>.html`.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

import pymongo.errors
from mongoengine import NotUniqueError

from models.accounts.documents import Patient, deliverable, patient_channels  # noqa: F401
from models.booking.documents import Appointment
from models.catalog.documents import Clinic, Service
from models.clock import _utc, utcnow
from models.messages.quiet import reminder_due
from models.messages.documents import (  # noqa: F401 (the outbox's names, for its callers)
    APPOINTMENT_KINDS,
    KINDS,
    SMS_KINDS,
    SMS_VARIANT,
    STATUSES,
    TOKEN_KINDS,
    OutboxMessage,
    SmsOptOut,
)
from models.stores import get_redis, rkey

log = logging.getLogger(__name__)


# --- queuing ----------------------------------------------------------------------------------

DEFAULT_REMINDER_HOURS = (24, 2)


def _ref_id(value):
    return getattr(value, "id", None) or getattr(value, "pk", None) or value


# --- waking the worker (issue 29) ------------------------------------------------------------
# `flask --app wsgi worker` waits on this Redis list (BLPOP). Every queuing path below calls
# `wake()` once, AFTER its MongoDB insert returned: the outbox stays the record, the push only
# says "look now". A lost push (Redis down, a worker restarting) costs one poll (5 s) or one pass.

WAKE_LIST_MAX = 1000  # a burst of bookings leaves at most this many pushes waiting


def wake_key():
    """The Redis list the workers wait on."""
    return rkey("outbox", "wake")


def wake():
    """Tell a waiting worker that a message is due now (never fails the caller)."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.lpush(wake_key(), "1")
        pipe.ltrim(wake_key(), 0, WAKE_LIST_MAX - 1)
        pipe.execute()
    except Exception as exc:  # Redis down or no app: the worker's poll finds the message
        log.info("outbox: worker not woken (%s); the next pass sends it", exc.__class__.__name__)


# --- how a patient hears from the clinic (issue 29) ------------------------------------------

def sms_variant(variant):
    """The variant of a text: the email's variant plus "/sms" (its own row under the unique key)."""
    return f"{variant}/{SMS_VARIANT}" if variant else SMS_VARIANT


def base_variant(message):
    """The variant without the channel's suffix ("24h/sms" → "24h")."""
    variant = message.variant or ""
    return variant.rsplit("/", 1)[0] if variant.endswith(SMS_VARIANT) and "/" in variant else (
        "" if variant == SMS_VARIANT else variant)


def enqueue(kind, to, subject, *, version=0, context=None, due_at=None, variant="",
            appointment_id=None, patient_id=None, expires_at=None, now=None, channel="email"):
    """Queue one message (idempotent on kind, subject, version, variant); return its document.

    `channel="sms"` queues a text to the E.164 number `to` (its variant gets "/sms").
    """
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    if channel == "sms":
        if not to:
            return None
        variant = sms_variant(variant)
    elif not deliverable(to):
        return None  # a caller added at the desk without an email: nothing to send
    now = now or utcnow()
    message = OutboxMessage(kind=kind, to=to, subject=subject, version=int(version or 0),
                            variant=variant or "", context=context or {},
                            due_at=due_at or now, expires_at=expires_at, channel=channel,
                            appointment=appointment_id, patient=patient_id, created_at=now)
    try:
        message.save(force_insert=True)
    except NotUniqueError:
        return OutboxMessage.objects(kind=kind, subject=subject, version=int(version or 0),
                                     variant=variant or "").first()
    if _utc(message.due_at) <= now:
        wake()
    return message


def enqueue_for_patient(kind, patient, subject, **kwargs):
    """Queue `kind` to each of the patient's channels (texts only for SMS_KINDS); the first message
    queued (the email when there is one), or None."""
    first = None
    for channel, address in patient_channels(patient):
        if channel == "sms" and kind not in SMS_KINDS:
            continue
        queued = enqueue(kind, address, subject, channel=channel, patient_id=patient.id, **kwargs)
        first = first or queued
    return first


def enqueue_for_appointment(kind, appointment, now, *, context=None, due_at=None, variant=""):
    """Queue a message about an appointment, to its patient, at the appointment's stored version."""
    current = Appointment.objects(id=_ref_id(appointment)).only("patient", "version").no_dereference().first()
    if current is None:
        return None
    patient = _recipient(Patient.objects(id=_ref_id(current.patient)).only("email", "guardian", "phone",
                                                                          "contact_by").first())
    if patient is None:
        return None
    return enqueue_for_patient(kind, patient, f"Appointment:{current.id}", version=current.version or 0,
                               context=context, due_at=due_at, variant=variant,
                               appointment_id=current.id, now=now)


def _recipient(patient):
    """Who is written to about a patient's visit: the account holder for a dependant (issue 28)."""
    guardian = getattr(patient, "guardian", None) if patient is not None else None
    if guardian is None:
        return patient
    return Patient.objects(id=_ref_id(guardian)).only("email", "phone", "contact_by").first()


@dataclass
class _Facts:
    """What queuing needs to know about an appointment."""

    id: object
    version: int
    start: object
    patient_id: object
    email: str
    reminder_hours: list
    channels: list = None  # [(channel, address)] (issue 29)


def _facts(appointment, fresh=False):
    """The appointment as stored; `fresh`: the document in hand was just written (a new booking),
    so nothing is read again (booking's cost is counted in commands per request)."""
    appt = appointment if fresh else Appointment.objects(id=_ref_id(appointment)).only(
        "patient", "service", "start", "version").no_dereference().first()
    if appt is None:
        return None
    patient = _recipient(appt.patient if isinstance(appt.patient, Patient) else
                         Patient.objects(id=_ref_id(appt.patient)).only("email", "guardian", "phone",
                                                                        "contact_by").first())
    service = appt.service if isinstance(appt.service, Service) else \
        Service.objects(id=_ref_id(appt.service)).only("reminder_hours").first()
    channels = patient_channels(patient) if patient is not None else []
    if not channels:
        return None
    hours = getattr(service, "reminder_hours", None)
    return _Facts(appt.id, appt.version or 0, _utc(appt.start), patient.id, patient.email,
                  list(DEFAULT_REMINDER_HOURS if hours is None else hours), channels)


def _reminder_docs(facts, now):
    docs = []
    for lead in sorted(set(int(h) for h in facts.reminder_hours if h), reverse=True):
        due = facts.start - timedelta(hours=lead)
        if due > now:  # none for a lead time already inside at booking
            docs.append(("reminder", f"{lead}h", due))
    return docs


def _queue_all(facts, items, now):
    """Insert several messages about one appointment in one command; already queued ones stay."""
    if facts is None or not items:
        return 0
    docs, zone = [], None
    for channel, address in facts.channels:
        for kind, variant, due in items:
            if channel == "sms":
                if kind not in SMS_KINDS:
                    continue
                if kind == "reminder":  # quiet hours: a text reminder goes earlier, never later
                    zone = zone or _clinic_zone()
                    due = max(now, reminder_due(due, zone))
            docs.append(OutboxMessage(
                kind=kind, to=address, subject=f"Appointment:{facts.id}", version=facts.version,
                variant=sms_variant(variant) if channel == "sms" else variant, due_at=due or now,
                channel=channel, appointment=facts.id, patient=facts.patient_id, created_at=now).to_mongo())
    if not docs:
        return 0
    try:
        inserted = len(OutboxMessage._get_collection().insert_many(docs, ordered=False).inserted_ids)
    except pymongo.errors.BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(err.get("code") != 11000 for err in errors):
            raise
        inserted = len(docs) - len(errors)
    if inserted and any(_utc(doc["due_at"]) <= now for doc in docs):
        wake()
    return inserted


def _clinic_zone():
    clinic = Clinic.objects.only("timezone").order_by("id").first()
    return clinic.timezone if clinic else "UTC"


def queue_reminders(appointment, now):
    """Queue a reminder at each of the service's lead times still ahead (none inside one already)."""
    facts = _facts(appointment)
    return _queue_all(facts, _reminder_docs(facts, now) if facts else [], now)


def appointment_confirmed(appointment, now, paid=False, fresh=False):
    """Queue what a confirmed booking sends: the confirmation (.ics), a receipt when paid, reminders.

    `fresh=True` when `appointment` is the document just inserted (its version and references are
    current): then this costs one database command.
    """
    try:
        facts = _facts(appointment, fresh)
        items = [("confirmed", "", None)] + ([("receipt", "", None)] if paid else [])
        _queue_all(facts, items + (_reminder_docs(facts, now) if facts else []), now)
    except Exception:  # email must never undo a booking; the outbox view shows what is missing
        log.exception("could not queue the confirmation of appointment %s", _ref_id(appointment))


# How long the appointment's page says where a queued confirmation went (issue 28: right after booking or paying).
JUST_CONFIRMED = timedelta(minutes=10)


def just_confirmed(appointment_ids, now):
    """{channel: address} of the confirmations for `appointment_ids` (a visit, or its series) queued moments ago."""
    return {m.channel or "email": m.to for m in OutboxMessage.objects(  # a dropped one never went: not said
        kind="confirmed", appointment__in=[_ref_id(a) for a in appointment_ids], status__ne="dropped",
        created_at__gte=_utc(now) - JUST_CONFIRMED).only("channel", "to")}


def appointment_cancelled(appointment, now, strict=False):
    """Queue the cancellation notice (any refund is read when it is sent); `strict` re-raises a failure."""
    try:
        enqueue_for_appointment("cancelled", appointment, now)
    except Exception:
        log.exception("could not queue the cancellation of appointment %s", _ref_id(appointment))
        if strict:  # the cancellation's marker stays, so a retry or the sweep queues it
            raise


def drop_superseded(appointment_id, version, reason):
    """Mark the appointment's still-queued messages of versions before `version` dropped, with `reason`.

    The send-time check would drop them anyway, but a patient who moves a time back and forth
    would leave a pile of doomed notices and reminders in the outbox (and racing workers);
    receipts stay (the money was taken). Returns how many were dropped.
    """
    # A message's status, not the appointment's (tests/test_status_table.py reads the receiver's text).
    superseded = OutboxMessage.objects(appointment=_ref_id(appointment_id), status="queued",
                                       version__lt=int(version), kind__ne="receipt")
    return superseded.update(set__status="dropped", set__drop_reason=reason[:200])


def drop_superseded_for(appointment_id, reason):
    """Drop the appointment's still-queued messages of versions before the one stored now (reminders,
    a confirmation not sent yet), with `reason`; how many. A cancellation calls it once its status is
    written, so nothing queued for the visit goes out after it; the notices of the change itself
    (cancelled, a fee) are queued at the stored version and stay."""
    current = Appointment.objects(id=_ref_id(appointment_id)).only("version").first()
    if current is None:
        return 0
    version = current.version or 0
    return drop_superseded(current.id, version, f"{reason} (version {version})")


def drop_queued(subject, kind, reason):
    """Mark the still-queued messages of `kind` about `subject` dropped, with `reason`; how many.

    For a message whose subject is not an appointment (a waitlist offer is about its entry), so
    the send-time check of the appointment's version cannot catch that it no longer holds.
    """
    queued = OutboxMessage.objects(subject=subject, kind=kind, status="queued")
    return queued.update(set__status="dropped", set__drop_reason=reason[:200])


def _why_no_text(message, patient):
    """Why a text should not go to this patient any more (they changed their choice, their number
    or replied STOP), or None; a changed number gets the text at the new number."""
    numbers = [address for channel, address in patient_channels(patient) if channel == "sms"]
    if not numbers:
        return "patient no longer takes texts"
    if numbers[0] != message.to:
        OutboxMessage.objects(id=message.id).update_one(set__to=numbers[0])
        message.to = numbers[0]
    if SmsOptOut.objects(phone=message.to).only("id").first() is not None:
        return "the number replied STOP"
    return None


CHECKS = {}


def register_check(kind, check):
    """Add a send-time test for `kind`: `check(message, now)` returns a drop reason or None."""
    CHECKS[kind] = check


def why_drop(message, now):
    """Why a claimed message should not be sent any more, or None when it still fits."""
    if message.expires_at and _utc(message.expires_at) <= now:
        return "expired"
    if message.patient:
        patient = Patient.objects(id=message.patient).only("email", "active", "phone", "contact_by").first()
        if patient is None or not patient.active:
            return "patient account closed"
        if getattr(message, "channel", "email") == "sms":
            reason = _why_no_text(message, patient)
            if reason:
                return reason
        elif patient.email != message.to:
            if message.kind in TOKEN_KINDS:
                return "patient's email changed"
            # Appointment news goes to the address the patient has now.
            OutboxMessage.objects(id=message.id).update_one(set__to=patient.email)
            message.to = patient.email
    if message.kind in CHECKS:
        reason = CHECKS[message.kind](message, now)
        if reason:
            return reason
    if message.kind not in APPOINTMENT_KINDS:
        return None
    appt = Appointment.objects(id=message.appointment).only("status", "version", "start").first()
    if appt is None:
        return "appointment gone"
    if message.kind == "receipt":
        return None
    if (appt.version or 0) != message.version:
        return f"appointment changed (version {appt.version or 0}, message for {message.version})"
    if message.kind == "cancelled":
        return None if appt.status == "cancelled" else f"appointment is {appt.status}"
    if appt.status != "confirmed":
        return f"appointment is {appt.status.replace('_', ' ')}"
    start = _utc(appt.start)
    if start <= now:
        return "appointment has started"
    if message.kind == "reminder":
        due = _utc(message.due_at)
        if now - due > (start - due) / 2:
            return "reminder too late"
    return None
