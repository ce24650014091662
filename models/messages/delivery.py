"""Sending the outbox: each due message is claimed with a lease, re-checked, rendered, sent by SMTP, and
its wording kept (`as_sent`).

See `models/messages/outbox.py` for the rules (claims, leases, backoff, what is dropped and why).
"""

import logging
import re
import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

from models.audit import audited
from models.clock import utcnow
from models.errors import Conflict
from models.messages.documents import SENT_BODY_MAX, OutboxMessage
from models.messages.outbox import TOKEN_KINDS, why_drop
from models.messages.rendering import HIDDEN_LINK, render, sender

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


LEASE = timedelta(minutes=5)  # a claimed message not finished by then is tried again


BATCH = 200  # messages per pass at most, so one pass stays short


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
    email["From"] = sender(getattr(rendered, "from_name", ""), mail_from)
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


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    sent: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    retrying: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    waiting: int = 0
    problems: list = field(default_factory=list)
    channel: str = "mail"  # "sms" for texts (issue 29)

    def lines(self):
        """Summary lines for the sweep's report."""
        c = self.channel
        out = [f"{c}: {len(self.sent)} sent, {len(self.dropped)} dropped, "
               f"{len(self.retrying)} to retry, {len(self.failed)} failed"]
        if self.waiting:
            out.append(f"{c}: {self.waiting} message(s) waiting")
        out += [f"{c}: problem: {p}" for p in self.problems]
        return out


def backoff(attempts):
    """Wait before the next try after `attempts` failures: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


CLAIM_BATCH = 20  # issue 31: messages claimed per round trip (three commands, not one per message)

# Which channel a sender claims (issue 29): email senders take messages without a channel too
# (written before texts existed).
CHANNEL_FILTERS = {"email": {"channel": {"$ne": "sms"}}, "sms": {"channel": "sms"}}


def _claim(now, token, size=CLAIM_BATCH, channel="email"):
    """Atomically take up to `size` due messages of `channel` (or ones whose sender's lease lapsed), oldest first.

    Three commands whatever the size: the candidates' ids, one guarded `update_many` that claims
    those still free (a racing sender's are skipped), and the claimed documents. Each message is
    still finished one by one, right after its own send, so a crash re-sends at most the one in hand.
    """
    collection = OutboxMessage._get_collection()
    due = {"$or": [{"status": "queued", "due_at": {"$lte": now}},
                   {"status": "sending", "lease_until": {"$lte": now}}], **CHANNEL_FILTERS[channel]}
    ids = [d["_id"] for d in collection.find(due, {"_id": 1}).sort("due_at", 1).limit(size)]
    if not ids:
        return []
    collection.update_many({"_id": {"$in": ids}, **due},
                           {"$set": {"status": "sending", "claimed_by": token, "lease_until": now + LEASE},
                            "$inc": {"attempts": 1}})
    return list(collection.find({"_id": {"$in": ids}, "claimed_by": token, "status": "sending"}).sort("due_at", 1))


def _finish(message_id, token, **changes):
    """Write a claimed message's outcome, only while this sender still holds its claim."""
    changes.setdefault("claimed_by", None)
    changes.setdefault("lease_until", None)
    return OutboxMessage._get_collection().update_one(
        {"_id": message_id, "status": "sending", "claimed_by": token}, {"$set": changes}).modified_count


def _claimed(now, token, limit):
    """Every message this pass claims, a batch per round trip, at most `limit`; a caller that stops
    early leaves the rest of its batch to lapse (its lease) and be claimed again."""
    taken = 0
    while taken < limit:
        batch = _claim(now, token, min(CLAIM_BATCH, limit - taken))
        if not batch:
            return
        for raw in batch:
            taken += 1
            yield raw


def deliver_due(now=None, smtp_url=None, mail_from=None, limit=BATCH):
    """Send every due message once: claim, re-check, render, send; returns a DeliveryReport."""
    now = now or utcnow()
    report = DeliveryReport()
    smtp_url = smtp_url or current_app.config.get("SMTP_URL")
    mail_from = mail_from or current_app.config.get("MAIL_FROM")
    if not smtp_url:
        report.waiting = OutboxMessage.objects(status="queued", due_at__lte=now, channel__ne="sms").count()
        if report.waiting:
            report.problems.append("SMTP_URL is not set: messages wait in the outbox")
        return report
    sender = SmtpSender(parse_smtp_url(smtp_url))
    token = uuid.uuid4().hex
    try:
        for raw in _claimed(now, token, limit):
            message = OutboxMessage._from_son(raw)
            mid = message.id
            reason = why_drop(message, now)
            if reason:
                _finish(mid, token, status="dropped", drop_reason=reason[:200], context=_scrub(message))
                report.dropped.append(str(mid))
                continue
            try:
                rendered = render(message, now)
                sender.send(build_email(message, rendered, mail_from))
            except Unreachable as exc:
                # The server, not the message: give the attempt back and stop this pass.
                _finish(mid, token, status="queued", last_error=str(exc)[:500],
                        attempts=max(0, message.attempts - 1))
                report.problems.append(str(exc))
                report.waiting = OutboxMessage.objects(status="queued", due_at__lte=now, channel__ne="sms").count()
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
            _finish(mid, token, status="sent", sent_at=now, last_error="", context=_scrub(message),
                    sent_subject=rendered.subject[:200], sent_body=as_sent(message, rendered.text))
            report.sent.append(str(mid))
    finally:
        sender.close()
        _give_back_unsent(token)
    return report


def _give_back_unsent(token):
    """Messages this pass claimed but never tried (it stopped early: the server unreachable) go back
    to the queue as they were, not left to their lease."""
    try:
        OutboxMessage._get_collection().update_many(
            {"claimed_by": token, "status": "sending"},
            {"$set": {"status": "queued", "claimed_by": None, "lease_until": None}, "$inc": {"attempts": -1}})
    except Exception as exc:  # their leases lapse and another pass claims them
        log.warning("outbox: claimed messages not given back: %s", exc)


def as_sent(message, text):
    """The wording of a sent message as the outbox keeps it: a set-password link hidden (its token is
    a secret staff never see), at most SENT_BODY_MAX characters (a long email is cut, and says so)."""
    token = (message.context or {}).get("token")
    if token:
        text = re.sub(r"\S*" + re.escape(str(token)) + r"\S*", HIDDEN_LINK, text)
    if len(text) > SENT_BODY_MAX:
        note = f"\n[… cut here: the message sent was {len(text)} characters long]"
        text = text[:SENT_BODY_MAX - len(note)] + note
    return text


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


@audited("outbox.resend", lambda message_id, *args, **kwargs: f"OutboxMessage:{message_id}")
def resend(message_id, now=None):
    """Queue a failed (or dropped) message again, due now, with a fresh attempt count.

    Reset and invitation links are not kept after a failure: those are sent afresh instead
    (the patient asks for a new link; staff invite again), so this refuses them.
    """
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
