"""Text messages (issue 29): rendered short, sent through a Twilio-compatible Messages API.

The same outbox, claims, leases and send-time checks as email (`models/messages/delivery.py`,
`why_drop`): a text is an `OutboxMessage` with `channel="sms"` and an E.164 number in `to`.

- **Provider**: `SMS_URL` = `https://ACCOUNT_SID:AUTH_TOKEN@api.host`; we POST the form fields
  `To`, `From` (`SMS_FROM`), `Body` to `/2010-04-01/Accounts/ACCOUNT_SID/Messages.json` with HTTP
  basic auth and keep the answer's `sid`. Unset: texts wait in the outbox.
- **Failures**: the provider unreachable, answering 5xx or 429, or refusing our credentials →
  the text is queued again with backoff (30 s, 1, 2, 4 … 30 min), never failed for it (nothing
  is lost in an outage; the send-time checks still drop a text that no longer fits), and the pass
  stops. A 4xx about the message (a bad number: Twilio's 21211, 21614 …) → `failed`, with the
  provider's reason in `last_error` for staff. Twilio's 21610 ("unsubscribed recipient") records
  the opt-out and drops the text.
- **Quiet hours** (`models/messages/quiet.py`): a text due between 21:00 and 08:00 in the clinic's
  zone waits until 08:00 (reminders were queued earlier instead).
- **Wording**: each kind fits one 160-character GSM-7 segment where it can: clinic name, what,
  when (zone named), a short link (`PUBLIC_URL/a/<appointment>`).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import unquote, urlsplit

import requests
from flask import current_app

from models.booking.documents import Appointment
from models.catalog.documents import Clinic
from models.clock import as_utc, utcnow
from models.formatting import money, short_time, using_locale
from models.messages.delivery import DeliveryReport, _claim, _finish, _scrub, as_sent
from models.messages.documents import OutboxMessage, SmsOptOut
from models.messages.outbox import base_variant, why_drop
from models.messages.quiet import in_quiet_hours, quiet_ends
from models.messages.rendering import fee_pay_path, offer_for

log = logging.getLogger(__name__)

SEGMENT = 160
# GSM 03.38's basic set (what one 160-character segment can carry).
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
BATCH = 200


def is_gsm7(text):
    """True when `text` fits the GSM-7 alphabet (160 characters a segment, not 70)."""
    return all(ch in GSM7 for ch in text)


@dataclass
class SmsTarget:
    """Where texts go: the Messages API's base, account and token (from `SMS_URL`)."""

    base: str
    account: str
    token: str

    @property
    def messages_url(self):
        """The Messages resource of the account."""
        return f"{self.base}/2010-04-01/Accounts/{self.account}/Messages.json"


def parse_sms_url(url):
    """Parse `https://SID:TOKEN@host[:port]` into an SmsTarget."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.username:
        raise ValueError("SMS_URL must look like https://ACCOUNT_SID:AUTH_TOKEN@api.host")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return SmsTarget(base=f"{parts.scheme}://{host}{parts.path.rstrip('/')}",
                     account=unquote(parts.username), token=unquote(parts.password or ""))


def auth_token():
    """The provider's auth token (signs its webhooks), or "" when texts are off."""
    url = current_app.config.get("SMS_URL")
    return parse_sms_url(url).token if url else ""


# --- wording ------------------------------------------------------------------------------------

def short_link(base, appointment_id):
    """The shortest link to an appointment's page (`/a/<id>` redirects to it)."""
    return f"{base}/a/{appointment_id}"


def render_text(message, now, public_url=None):
    """The text of a message, read from the database now: one segment where it can be."""
    clinic = Clinic.get()
    # Times and amounts in the clinic's locale, read here as the email's are (models.messages.rendering).
    with using_locale(getattr(clinic, "locale", None)):
        return _text(message, now, public_url, clinic)


def _text(message, now, public_url, clinic):
    base = (public_url or current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    tz = clinic.timezone if clinic else "UTC"
    name = clinic.name if clinic else "The clinic"
    data = message.context or {}
    appt = Appointment.objects(id=message.appointment).first() if message.appointment else None
    service = appt.service.name if appt is not None else data.get("service", "")
    link = short_link(base, appt.id) if appt is not None else ""
    when = short_time(appt.start, tz, year=False) if appt is not None else ""
    kind = message.kind
    if kind == "confirmed":
        body = f"{service} booked for {when}. Details, change or cancel: {link}"
    elif kind == "reminder":
        hours = int((base_variant(message) or "0h").rstrip("h") or 0)
        ahead = "tomorrow" if hours >= 20 else f"in {hours} h" if hours else "soon"
        body = f"Reminder: {service} {ahead}, {when}. Change or cancel: {link}"
    elif kind == "cancelled":
        body = f"Your {service} on {when} is cancelled. Book again: {base}/portal/book"
    elif kind == "rescheduled":
        body = f"{service} moved to {when}. Details: {link}"
    elif kind == "waitlist_offer":
        start = as_utc(_iso(data.get("start"))) if data.get("start") else None
        until = short_time(_iso(data["expires_at"]), tz, year=False) if data.get("expires_at") else ""
        # A dependant's offer (issue 28) names who it is for; the holder's own reads "for you".
        who = offer_for(data) or "you"
        body = (f"{service} is free for {who} {short_time(start, tz, year=False) if start else ''}. Held until "
                f"{until}. Book: {base}{data.get('url') or '/portal/waitlist'}")
    elif kind == "closure_notice":
        closed = f"We are closed when your {service} is booked, {when}"
        why = f" ({data['reason']})" if data.get("reason") else ""
        body = f"{closed}{why}. Choose another time: {link}"
        if why and (not is_gsm7(body) or len(f"{name}: {body}") > SEGMENT):
            # Staff's reason only while the text stays one GSM-7 segment (the email always has it).
            body = f"{closed}. Choose another time: {link}"
    elif kind == "fee_due":
        amount = money(int(data.get("amount") or 0), data.get("currency") or (clinic.currency if clinic else "gbp"))
        # The fee's own pay page, as in its email (the fee queues its id, not a url).
        path = fee_pay_path(appt.id, data["payment_id"]) if appt is not None and data.get("payment_id") \
            else data.get("url") or "/portal/"
        body = f"A fee of {amount} is due for your {service}. Pay: {base}{path}"
    else:
        body = f"You have a message from us: {base}/portal/"
    text = f"{name}: {body}"
    stop = " Reply STOP to end texts."
    return text + stop if len(text + stop) <= SEGMENT else text


def _iso(value):
    from datetime import datetime

    return value if not isinstance(value, str) else datetime.fromisoformat(value)


# --- sending ------------------------------------------------------------------------------------

class ProviderDown(Exception):
    """The provider cannot take texts now (unreachable, 5xx, 429, our credentials refused)."""


class Refused(Exception):
    """The provider refused this text (a 4xx about the message); `code` is its error code."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def send_text(target, sms_from, to, body, timeout=(3, 10)):
    """POST one text to the Messages API; the provider's sid, or ProviderDown / Refused."""
    try:
        resp = requests.post(target.messages_url, data={"To": to, "From": sms_from, "Body": body},
                             auth=(target.account, target.token), timeout=timeout)
    except requests.RequestException as exc:
        raise ProviderDown(f"cannot reach the SMS provider: {exc.__class__.__name__}") from None
    try:
        payload = resp.json()
    except ValueError:
        payload = {}
    detail = payload.get("message") or resp.reason or ""
    code = payload.get("code")
    if resp.status_code >= 500 or resp.status_code == 429:
        raise ProviderDown(f"SMS provider answered {resp.status_code} {detail}".strip()[:500])
    if resp.status_code in (401, 403):
        raise ProviderDown(f"SMS provider refused our credentials ({resp.status_code}): check SMS_URL")
    if resp.status_code >= 400:
        raise Refused(f"SMS provider refused the text ({resp.status_code}"
                      f"{f', code {code}' if code else ''}): {detail}"[:500], code=code)
    return str(payload.get("sid") or "")


def sms_backoff(attempts):
    """Wait before the next try after `attempts` failures: 30 s, 1, 2, 4 … minutes, at most 30 minutes."""
    return timedelta(seconds=min(1800, 30 * 2 ** max(0, attempts - 1)))


UNSUBSCRIBED = 21610  # Twilio: the recipient replied STOP to our number


def deliver_sms_due(now=None, sms_url=None, sms_from=None, limit=BATCH):
    """Send every due text once: claim, re-check, quiet hours, render, send; a DeliveryReport."""
    now = now or utcnow()
    report = DeliveryReport(channel="sms")
    sms_url = sms_url or current_app.config.get("SMS_URL")
    sms_from = sms_from or current_app.config.get("SMS_FROM") or ""
    if not sms_url:
        report.waiting = OutboxMessage.objects(status="queued", due_at__lte=now, channel="sms").count()
        if report.waiting:
            report.problems.append("SMS_URL is not set: texts wait in the outbox")
        return report
    target = parse_sms_url(sms_url)
    token = uuid.uuid4().hex
    zone = None
    for _ in range(limit):
        # One at a time: a text may be put back for quiet hours, so none waits claimed behind it.
        claimed = _claim(now, token, size=1, channel="sms")
        if not claimed:
            break
        raw = claimed[0]
        message = OutboxMessage._from_son(raw)
        mid = message.id
        reason = why_drop(message, now)
        if reason:
            _finish(mid, token, status="dropped", drop_reason=reason[:200], context=_scrub(message))
            report.dropped.append(str(mid))
            continue
        zone = zone or _zone()
        if in_quiet_hours(now, zone):
            # Not the message's fault: the attempt is given back; it goes at 08:00.
            _finish(mid, token, status="queued", due_at=quiet_ends(now, zone),
                    attempts=max(0, message.attempts - 1),
                    last_error="waiting for quiet hours to end (no texts 21:00–08:00)")
            report.waiting += 1
            continue
        try:
            text = render_text(message, now)
            sid = send_text(target, sms_from, message.to, text)
        except ProviderDown as exc:
            _finish(mid, token, status="queued", last_error=str(exc)[:500],
                    due_at=now + sms_backoff(message.attempts))
            report.retrying.append(str(mid))
            report.problems.append(str(exc))
            log.warning("text %s not sent: %s", mid, exc)
            break  # the provider, not the text: the others wait for the next pass
        except Refused as exc:
            if exc.code == UNSUBSCRIBED:
                record_opt_out(message.to, now, keyword="provider")
                _finish(mid, token, status="dropped", drop_reason="the number replied STOP",
                        last_error=str(exc)[:500])
                report.dropped.append(str(mid))
            else:
                _finish(mid, token, status="failed", last_error=str(exc)[:500], context=_scrub(message))
                report.failed.append(str(mid))
            log.warning("text %s refused: %s", mid, exc)
            continue
        except Exception as exc:  # a rendering bug: keep the message, tell staff
            _finish(mid, token, status="failed", last_error=f"{exc.__class__.__name__}: {exc}"[:500])
            report.failed.append(str(mid))
            continue
        # The text as the phone got it, kept: the Outbox shows it even after the visit moves.
        _finish(mid, token, status="sent", sent_at=now, last_error="", provider_id=sid[:64],
                context=_scrub(message), sent_body=as_sent(message, text))
        report.sent.append(str(mid))
    return report


def _zone():
    clinic = Clinic.objects.only("timezone").order_by("id").first()
    return clinic.timezone if clinic else "UTC"


def record_opt_out(phone, now=None, keyword="STOP"):
    """Stop texts to `phone` (E.164) and drop its queued texts; idempotent."""
    now = now or utcnow()
    SmsOptOut._get_collection().update_one({"phone": phone},
                                           {"$setOnInsert": {"phone": phone, "at": now, "keyword": keyword[:20]}},
                                           upsert=True)
    return OutboxMessage.objects(channel="sms", to=phone, status="queued").update(
        set__status="dropped", set__drop_reason="the number replied STOP")


def clear_opt_out(phone):
    """Texts to `phone` may go again (the patient replied START)."""
    return SmsOptOut.objects(phone=phone).delete()


STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "UNSTOP", "YES"}


def reply_received(sender, body, now=None):
    """A patient's reply to a text (the provider's webhook, signature already checked): STOP and
    the other opt-out words end texts to that number, START lets them go again; audited.
    Returns "opt_out", "opt_in" or "ignored"."""
    import phonenumbers

    from models.audit import record_audit

    word = (body or "").strip().split(" ")[0].upper().strip(".!") if (body or "").strip() else ""
    try:
        number = phonenumbers.format_number(phonenumbers.parse(sender or "", None),
                                            phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return "ignored"
    if word in STOP_WORDS:
        record_opt_out(number, now, keyword=word)
        record_audit("sms-provider", "sms.opt_out", record=f"Phone:{number}")
        return "opt_out"
    if word in START_WORDS:
        clear_opt_out(number)
        record_audit("sms-provider", "sms.opt_in", record=f"Phone:{number}")
        return "opt_in"
    return "ignored"
