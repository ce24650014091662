"""The email outbox: every message is a MongoDB document first, and the sweep sends it by SMTP.

Why: sending inside a request freezes booking when the mail server is down, and reminders kept
anywhere but the database get lost, duplicated or sent after a cancellation. Here:

- A change that causes a message writes an `OutboxMessage` right after its own guarded update
  (booking, payment confirmation, cancellation …). The unique index on
  (kind, subject, version, variant) makes queuing idempotent: the same change queued twice is
  one message.
- `deliver_due(now)` (called by every sweep pass, `flask sweep`) claims due messages one at a time
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
- `password_reset`, `invitation` — `{"token": raw token}` (see `models.reset`); `expires_at` =
  the token's expiry. The token is erased from the document once sent or dropped, and the
  back-office preview never shows it.
- `waitlist_offer` — `{"service", "provider", "start", "end", "expires_at", "url"}` (names as
  text, instants as ISO strings, `url` a path under the portal). `expires_at` as for resets.
  `register_check(kind, fn)` lets an issue add its own "still valid?" test (fn(message, now)
  returns a drop reason or None).

Templates: `templates/email/<kind>.txt` (first line `{% set subject = … %}`) and `<kind>.html`.
"""

import logging
import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import pymongo.errors
from mongoengine import (
    DateTimeField,
    DictField,
    Document,
    IntField,
    NotUniqueError,
    ObjectIdField,
    StringField,
)

from models.documents import Appointment, Patient, deliverable, utcnow

log = logging.getLogger(__name__)
UTC = timezone.utc

KINDS = ("confirmed", "receipt", "cancelled", "rescheduled", "reminder", "password_reset",
         "invitation", "waitlist_offer")
APPOINTMENT_KINDS = ("confirmed", "receipt", "cancelled", "rescheduled", "reminder")
TOKEN_KINDS = ("password_reset", "invitation")  # carry a set-password link
STATUSES = ("queued", "sending", "sent", "failed", "dropped")
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)  # a claimed message not finished by then is tried again
BATCH = 200  # messages per pass at most, so one pass stays short
DEFAULT_REMINDER_HOURS = (24, 2)


class OutboxMessage(Document):
    """One email: what it is about, who gets it, where it is in its delivery."""

    kind = StringField(required=True, choices=KINDS)
    subject = StringField(required=True, max_length=100)  # "Appointment:<id>", "PasswordReset:<id>"
    version = IntField(required=True, default=0)
    variant = StringField(default="", max_length=20)
    to = StringField(required=True, max_length=254)
    appointment = ObjectIdField()
    patient = ObjectIdField()
    context = DictField()
    status = StringField(required=True, choices=STATUSES, default="queued")
    due_at = DateTimeField(required=True)
    expires_at = DateTimeField()
    attempts = IntField(default=0)
    last_error = StringField(default="", max_length=500)
    drop_reason = StringField(default="", max_length=200)
    claimed_by = StringField()
    lease_until = DateTimeField()
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField()
    meta = {
        "collection": "outbox",
        "auto_create_index": False,
        "indexes": [
            {"fields": ("kind", "subject", "version", "variant"), "unique": True},
            ("status", "due_at"),
            ("status", "lease_until"),
            "-created_at",
            "appointment",
        ],
    }

    def __str__(self):
        return f"{self.kind} to {self.to}"


def ensure_outbox_indexes():
    """Build the outbox's (and reset tokens') indexes at start, like the other documents."""
    from models.reset import PasswordReset

    OutboxMessage.ensure_indexes()
    PasswordReset.ensure_indexes()


def _utc(dt):
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _ref_id(value):
    return getattr(value, "id", None) or getattr(value, "pk", None) or value


# --- queuing ----------------------------------------------------------------------------------

def enqueue(kind, to, subject, *, version=0, context=None, due_at=None, variant="",
            appointment_id=None, patient_id=None, expires_at=None, now=None):
    """Queue one message (idempotent on kind, subject, version, variant); return its document."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    if not deliverable(to):
        return None  # a caller added at the desk without an email: nothing to send
    now = now or utcnow()
    message = OutboxMessage(kind=kind, to=to, subject=subject, version=int(version or 0),
                            variant=variant or "", context=context or {},
                            due_at=due_at or now, expires_at=expires_at,
                            appointment=appointment_id, patient=patient_id, created_at=now)
    try:
        message.save(force_insert=True)
    except NotUniqueError:
        return OutboxMessage.objects(kind=kind, subject=subject, version=int(version or 0),
                                     variant=variant or "").first()
    return message


def enqueue_for_appointment(kind, appointment, now, *, context=None, due_at=None, variant=""):
    """Queue a message about an appointment, to its patient, at the appointment's stored version."""
    current = Appointment.objects(id=_ref_id(appointment)).only("patient", "version").no_dereference().first()
    if current is None:
        return None
    patient = Patient.objects(id=_ref_id(current.patient)).only("email").first()
    if patient is None or not deliverable(patient.email):
        return None
    return enqueue(kind, patient.email, f"Appointment:{current.id}", version=current.version or 0,
                   context=context, due_at=due_at, variant=variant, appointment_id=current.id,
                   patient_id=patient.id, now=now)


@dataclass
class _Facts:
    """What queuing needs to know about an appointment."""

    id: object
    version: int
    start: object
    patient_id: object
    email: str
    reminder_hours: list


def _facts(appointment, fresh=False):
    """The appointment as stored; `fresh`: the document in hand was just written (a new booking),
    so nothing is read again (booking's cost is counted in commands per request)."""
    from models.documents import Service

    appt = appointment if fresh else Appointment.objects(id=_ref_id(appointment)).only(
        "patient", "service", "start", "version").no_dereference().first()
    if appt is None:
        return None
    patient = appt.patient if isinstance(appt.patient, Patient) else \
        Patient.objects(id=_ref_id(appt.patient)).only("email").first()
    service = appt.service if isinstance(appt.service, Service) else \
        Service.objects(id=_ref_id(appt.service)).only("reminder_hours").first()
    if patient is None or not deliverable(patient.email):
        return None
    hours = getattr(service, "reminder_hours", None)
    return _Facts(appt.id, appt.version or 0, _utc(appt.start), patient.id, patient.email,
                  list(DEFAULT_REMINDER_HOURS if hours is None else hours))


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
    docs = [OutboxMessage(kind=kind, to=facts.email, subject=f"Appointment:{facts.id}",
                          version=facts.version, variant=variant, due_at=due or now,
                          appointment=facts.id, patient=facts.patient_id, created_at=now).to_mongo()
            for kind, variant, due in items]
    try:
        return len(OutboxMessage._get_collection().insert_many(docs, ordered=False).inserted_ids)
    except pymongo.errors.BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(err.get("code") != 11000 for err in errors):
            raise
        return len(docs) - len(errors)


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


def appointment_cancelled(appointment, now):
    """Queue the cancellation notice (any refund is read when it is sent)."""
    try:
        enqueue_for_appointment("cancelled", appointment, now)
    except Exception:
        log.exception("could not queue the cancellation of appointment %s", _ref_id(appointment))


# --- what still fits --------------------------------------------------------------------------

CHECKS = {}


def register_check(kind, check):
    """Add a send-time test for `kind`: `check(message, now)` returns a drop reason or None."""
    CHECKS[kind] = check


def why_drop(message, now):
    """Why a claimed message should not be sent any more, or None when it still fits."""
    if message.expires_at and _utc(message.expires_at) <= now:
        return "expired"
    if message.patient:
        patient = Patient.objects(id=message.patient).only("email", "active").first()
        if patient is None or not patient.active:
            return "patient account closed"
        if patient.email != message.to:
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


# --- SMTP -------------------------------------------------------------------------------------

@dataclass
class SmtpTarget:
    """Where and how to send: parsed from `SMTP_URL`."""

    host: str
    port: int
    tls: bool = False  # smtps:// — TLS from the first byte
    starttls: bool = False
    username: str = ""
    password: str = ""


def parse_smtp_url(url):
    """Parse `smtp://user:pass@host:port?starttls=1` or `smtps://…` into an SmtpTarget."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://host:port or smtps://user:pass@host:465")
    query = parse_qs(parts.query)
    starttls = (query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes", "on"))
    tls = parts.scheme == "smtps"
    return SmtpTarget(host=parts.hostname, port=parts.port or (465 if tls else 587 if starttls else 25),
                      tls=tls, starttls=starttls and not tls,
                      username=unquote(parts.username or ""), password=unquote(parts.password or ""))


class Unreachable(Exception):
    """The SMTP server cannot be reached or dropped the connection: not the message's fault."""


class SmtpSender:
    """One SMTP connection per pass, opened on the first message and closed at the end."""

    def __init__(self, target, timeout=15):
        self.target, self.timeout, self.conn = target, timeout, None

    def _connect(self):
        t = self.target
        try:
            if t.tls:
                conn = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout,
                                        context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
                if t.starttls:
                    conn.starttls(context=ssl.create_default_context())
            if t.username:
                conn.login(t.username, t.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise Unreachable(f"SMTP sign-in refused: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Unreachable(f"cannot reach the SMTP server {t.host}:{t.port}: {exc}") from None
        return conn

    def send(self, email):
        """Send one message; Unreachable for connection trouble, SMTPException for a refusal."""
        if self.conn is None:
            self.conn = self._connect()
        try:
            self.conn.send_message(email)
        except smtplib.SMTPServerDisconnected as exc:
            self.conn = None
            raise Unreachable(f"the SMTP server dropped the connection: {exc}") from None
        except smtplib.SMTPSenderRefused as exc:
            # MAIL_FROM is refused for every message alike: a set-up problem, not this message's.
            raise Unreachable(f"the SMTP server refuses the sender {exc.sender}: {exc.smtp_code} "
                              f"{_text(exc.smtp_error)} (check MAIL_FROM)") from None
        except smtplib.SMTPException:
            raise  # the server answered and refused this message (SMTPException is an OSError)
        except OSError as exc:
            self.conn = None
            raise Unreachable(f"the SMTP connection failed: {exc}") from None

    def close(self):
        """End the SMTP session politely."""
        if self.conn is not None:
            try:
                self.conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self.conn = None


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def build_email(message, rendered, mail_from):
    """The MIME message: plain text and HTML alternatives, plus any attachment."""
    email = EmailMessage()
    email["Subject"] = rendered.subject
    email["From"] = mail_from
    email["To"] = message.to
    email["Date"] = formatdate(usegmt=True)
    domain = (parseaddr(mail_from)[1].rpartition("@")[2] or "clinic.localhost")
    # Stable per message: a copy sent again after a lapsed lease carries the same id.
    email["Message-ID"] = f"<outbox-{message.id}@{domain}>"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(rendered.text)
    email.add_alternative(rendered.html, subtype="html")
    for filename, maintype, subtype, data, params in rendered.attachments:
        email.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename, params=params)
    return email


# --- delivery ---------------------------------------------------------------------------------

@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    sent: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    retrying: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    waiting: int = 0
    problems: list = field(default_factory=list)

    def lines(self):
        """Summary lines for the sweep's report."""
        out = [f"mail: {len(self.sent)} sent, {len(self.dropped)} dropped, "
               f"{len(self.retrying)} to retry, {len(self.failed)} failed"]
        if self.waiting:
            out.append(f"mail: {self.waiting} message(s) waiting")
        out += [f"mail: problem: {p}" for p in self.problems]
        return out


def backoff(attempts):
    """Wait before the next try after `attempts` failures: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def _claim(now, token):
    """Atomically take the next due message (or one whose sender's lease lapsed)."""
    return OutboxMessage._get_collection().find_one_and_update(
        {"$or": [{"status": "queued", "due_at": {"$lte": now}},
                 {"status": "sending", "lease_until": {"$lte": now}}]},
        {"$set": {"status": "sending", "claimed_by": token, "lease_until": now + LEASE},
         "$inc": {"attempts": 1}},
        sort=[("due_at", 1)],
        return_document=True)


def _finish(message_id, token, **changes):
    """Write a claimed message's outcome, only while this sender still holds its claim."""
    changes.setdefault("claimed_by", None)
    changes.setdefault("lease_until", None)
    return OutboxMessage._get_collection().update_one(
        {"_id": message_id, "status": "sending", "claimed_by": token}, {"$set": changes}).modified_count


def deliver_due(now=None, smtp_url=None, mail_from=None, limit=BATCH):
    """Send every due message once: claim, re-check, render, send; returns a DeliveryReport."""
    from flask import current_app

    from models.messages import render

    now = now or utcnow()
    report = DeliveryReport()
    smtp_url = smtp_url or current_app.config.get("SMTP_URL")
    mail_from = mail_from or current_app.config.get("MAIL_FROM")
    if not smtp_url:
        report.waiting = OutboxMessage.objects(status="queued", due_at__lte=now).count()
        if report.waiting:
            report.problems.append("SMTP_URL is not set: messages wait in the outbox")
        return report
    sender = SmtpSender(parse_smtp_url(smtp_url))
    token = uuid.uuid4().hex
    try:
        for _ in range(limit):
            raw = _claim(now, token)
            if raw is None:
                break
            message = OutboxMessage._from_son(raw)
            mid = message.id
            reason = why_drop(message, now)
            if reason:
                _finish(mid, token, status="dropped", drop_reason=reason[:200], context=_scrub(message))
                report.dropped.append(str(mid))
                continue
            try:
                email = build_email(message, render(message, now), mail_from)
                sender.send(email)
            except Unreachable as exc:
                # The server, not the message: give the attempt back and stop this pass.
                _finish(mid, token, status="queued", last_error=str(exc)[:500],
                        attempts=max(0, message.attempts - 1))
                report.problems.append(str(exc))
                report.waiting = OutboxMessage.objects(status="queued", due_at__lte=now).count()
                break
            except Exception as exc:  # refused by the server, or the template failed to render
                error = _describe(exc)
                if message.attempts >= MAX_ATTEMPTS or _permanent(exc):
                    _finish(mid, token, status="failed", last_error=error, context=_scrub(message))
                    report.failed.append(str(mid))
                else:
                    _finish(mid, token, status="queued", last_error=error,
                            due_at=now + backoff(message.attempts))
                    report.retrying.append(str(mid))
                log.warning("outbox message %s not sent: %s", mid, error)
                continue
            _finish(mid, token, status="sent", sent_at=now, last_error="", context=_scrub(message))
            report.sent.append(str(mid))
    finally:
        sender.close()
    return report


def _scrub(message):
    """The context without secrets (a reset token is not kept once its email left or was dropped)."""
    return {k: v for k, v in (message.context or {}).items() if k != "token"}


def _permanent(exc):
    """A 5xx answer (mailbox unknown, message refused) will not get better by retrying."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    code = getattr(exc, "smtp_code", None)
    return bool(code and code >= 500)


def _describe(exc):
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{rcpt}: {c} {_text(m)}" for rcpt, (c, m) in exc.recipients.items())[:500]
    if code:
        return f"{code} {_text(getattr(exc, 'smtp_error', ''))}"[:500]
    return f"{exc.__class__.__name__}: {exc}"[:500]


def resend(message_id, now=None):
    """Queue a failed (or dropped) message again, due now, with a fresh attempt count.

    Reset and invitation links are not kept after a failure: those are sent afresh instead
    (the patient asks for a new link; staff invite again), so this refuses them.
    """
    from models.errors import Conflict

    now = now or utcnow()
    message = OutboxMessage.objects(id=message_id).first()
    if message is None or message.status not in ("failed", "dropped"):
        raise Conflict("Only failed or dropped messages can be sent again.", code="not_resendable")
    if message.kind in TOKEN_KINDS:
        raise Conflict("A password link is not kept after it failed: send a new invitation or ask "
                       "the patient to use “Forgot your password?”.", code="link_not_kept")
    return OutboxMessage.objects(id=message_id, status__in=("failed", "dropped")).update_one(
        set__status="queued", set__due_at=now, set__attempts=0, set__last_error="",
        set__drop_reason="", set__claimed_by=None, set__lease_until=None)
