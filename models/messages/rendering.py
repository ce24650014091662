"""Rendering outbox messages: templates under `templates/email/`, times in the clinic's zone.

Each kind has `templates/email/<kind>.txt` (plain text; its first line sets the subject with
`{% set subject = "…" %}`) and `templates/email/<kind>.html`, both extending a shared layout.
Everything a template shows is read at send time (the appointment as it is now, the payment and
its refunds), except the few values the outbox keeps in the message's `context`.
"""

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bson import ObjectId

from models.accounts.documents import Patient
from models.booking.documents import Appointment
from models.catalog.documents import Clinic
from models.catalog.profile import accent_colour, phone_region
from models.clock import as_utc as _utc
from models.formatting import current_locale, human_time, money, phone, using_locale
from models.payments.documents import UPFRONT_KINDS, Payment

HIDDEN_LINK = "[link hidden: only the patient sees it]"


@dataclass
class Rendered:
    """A message ready to send: subject, text and HTML bodies, attachments."""

    subject: str
    text: str
    html: str
    # (filename, maintype, subtype, bytes, params)
    attachments: list = field(default_factory=list)
    from_name: str = ""  # the clinic's name, shown as the sender (issue 25)


def _instant(value):
    if isinstance(value, datetime):
        return _utc(value)
    return _utc(datetime.fromisoformat(value)) if value else None


def appointment_ics(appointment, clinic, public_url="", method="PUBLISH"):
    """An iCalendar file for one appointment: a VEVENT in the clinic's zone (TZID and VTIMEZONE),
    its location, the clinic's phone and the link to manage, reschedule or cancel it."""
    from icalendar import Calendar, Event

    zone = ZoneInfo(clinic.timezone)
    link = f"{public_url.rstrip('/')}/portal/appointments/{appointment.id}" if public_url else ""
    cal = Calendar()
    cal.add("prodid", "-//Clinic booking//EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    event = Event()
    event.add("uid", f"appointment-{appointment.id}@clinic")
    # Calendars replace an event they know when the sequence grows: every change bumps `version`.
    event.add("sequence", appointment.version or 0)
    event.add("dtstamp", _utc(appointment.updated_at or appointment.created_at))
    event.add("dtstart", _utc(appointment.start).astimezone(zone))
    event.add("dtend", _utc(appointment.end).astimezone(zone))
    event.add("summary", f"{appointment.service.name} with {appointment.provider.name}")
    event.add("location", clinic_location(clinic))
    lines = [f"{appointment.service.name} with {appointment.provider.name} at {clinic.name}."]
    if clinic.phone:
        lines.append(f"Clinic phone: {clinic_phone(clinic)}")
    if link:
        lines.append(f"Reschedule or cancel: {link}")
        event.add("url", link)
    event.add("description", "\n".join(lines))
    event.add("status", "CANCELLED" if appointment.status == "cancelled" else "CONFIRMED")
    if clinic.phone:
        event.add("contact", f"{clinic.name}, {clinic_phone(clinic)}")
    cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


def clinic_address(clinic):
    """The clinic's address on one line ("12 River Street, London SE1 2AB"), or ''."""
    return ", ".join(line.strip() for line in (getattr(clinic, "address", "") or "").splitlines() if line.strip())


def clinic_location(clinic):
    """Where a visit is, as calendars show it (every .ics LOCATION and the calendar links): the clinic's
    name and its address on one line ("Riverside Clinic, 12 River Street, London SE1 9RT")."""
    # The address is what a calendar app can map (issue 25); the name tells the patient whose door it is.
    return ", ".join(part for part in (clinic.name, clinic_address(clinic)) if part)


def clinic_phone(clinic):
    """The clinic's phone as patients say it ("020 7946 0000" at home), read in the clinic's own country."""
    if clinic is None or not clinic.phone:
        return ""
    return phone(clinic.phone, phone_region(clinic))


def calendar_links(appointment, clinic, public_url=""):
    """Plain links for the confirmation page (issue 25): the clinic's address on OpenStreetMap, and the
    appointment as a new event in Google Calendar and Outlook.com (no script from elsewhere)."""
    from urllib.parse import quote, urlencode

    start, end = _utc(appointment.start), _utc(appointment.end)
    title = f"{appointment.service.name} with {appointment.provider.name}"
    where = clinic_location(clinic)
    link = f"{public_url.rstrip('/')}/portal/appointments/{appointment.id}" if public_url else ""
    details = f"{title} at {clinic.name}." + (f" Phone {clinic_phone(clinic)}." if clinic.phone else "") + \
        (f" Reschedule or cancel: {link}" if link else "")
    stamp = "%Y%m%dT%H%M%SZ"
    google = "https://calendar.google.com/calendar/render?" + urlencode(
        {"action": "TEMPLATE", "text": title, "dates": f"{start:{stamp}}/{end:{stamp}}",
         "details": details, "location": where}, quote_via=quote)
    outlook = "https://outlook.live.com/calendar/0/deeplink/compose?" + urlencode(
        {"path": "/calendar/action/compose", "rru": "addevent", "subject": title,
         "startdt": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "enddt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
         "body": details, "location": where}, quote_via=quote)
    address = clinic_address(clinic)
    osm = ("https://www.openstreetmap.org/search?" + urlencode({"query": address}, quote_via=quote)) if address else ""
    return {"google": google, "outlook": outlook, "map": osm, "where": where, "address": address}


def sender(name, mail_from):
    """The From header: the clinic's name with MAIL_FROM's address ("Riverside Clinic <no-reply@…>")."""
    from email.headerregistry import Address
    from email.utils import parseaddr

    _, address = parseaddr(mail_from or "")
    if not name or not address:
        return mail_from
    # Address() quotes a name with commas or dots as the header needs it.
    return str(Address(display_name=name, addr_spec=address))


def context_for(message, now, public_url, preview=False, clinic=None):
    """The template context of a message, read from the database now (`clinic`: already read)."""
    clinic = Clinic.get() if clinic is None else clinic
    tz = clinic.timezone if clinic else "UTC"
    base = public_url.rstrip("/")
    ctx = {"message": message, "kind": message.kind, "clinic": clinic, "tz": tz,
           "clinic_name": clinic.name if clinic else "The clinic",
           "clinic_phone": clinic_phone(clinic), "clinic_tel": (clinic.phone if clinic else "") or "",
           "clinic_address": clinic_address(clinic) if clinic else "",
           # The pages' accent: the brand colour, darkened when white text on it would be too faint.
           "brand_colour": accent_colour(clinic.brand_colour if clinic else None),
           "portal_url": f"{base}/portal/", "book_url": f"{base}/portal/book",
           "preview": preview}  # money, human_time and the other formatters are the app's template globals
    patient = Patient.objects(id=message.patient).only("name").first() if message.patient else None
    ctx["patient_name"] = patient.name if patient else ""
    appt = Appointment.objects(id=message.appointment).first() if message.appointment else None
    if appt is not None:
        # A dependant's visit (issue 28): the message goes to the account holder and names who it is for.
        person = appt.patient
        ctx["visit_for"] = person.name if person is not None and getattr(person, "guardian", None) else ""
        ctx.update(appt=appt, service_name=appt.service.name, provider_name=appt.provider.name,
                   when=human_time(appt.start, tz), duration=appt.service.duration_minutes,
                   manage_url=f"{base}/portal/appointments/{appt.id}")
        if getattr(appt, "series", None):  # recurring series (issue 28): every live visit is listed
            ctx["series_visits"] = _series_live(appt)
            ctx["series_whens"] = [human_time(v.start, tz) for v in ctx["series_visits"]]
        payment = Payment.objects(appointment=appt.id, kind__in=UPFRONT_KINDS).first()
        ctx["payment"] = payment
        if payment is not None:
            ctx["paid"] = money(payment.amount, payment.currency)
            # This visit's own money: for a visit of a course, its share of the one course payment.
            ctx["paid_for_visit"] = ctx["paid"]
            if payment.course and payment.stripe_payment_intent:
                # A course paid up front (issue 28): the receipt is for the whole course, one payment.
                shares = Payment.objects(course=payment.course, stripe_payment_intent=payment.stripe_payment_intent,
                                         kind__in=UPFRONT_KINDS).only("amount")
                ctx["paid"] = money(sum(p.amount for p in shares), payment.currency)
                ctx["course_count"] = len(shares)
            ctx["refunded"] = money(payment.amount_refunded, payment.currency) if payment.amount_refunded else ""
            ctx["paid_at"] = human_time(payment.updated_at or payment.created_at, tz)
    data = message.context or {}
    if message.kind == "rescheduled" and data.get("old_start"):
        ctx["old_when"] = human_time(_instant(data["old_start"]), tz)
    if message.kind == "reminder":
        ctx["lead_hours"] = int((message.variant or "0h").rstrip("h") or 0)
    if message.kind in ("password_reset", "invitation"):
        token = data.get("token")
        ctx["link"] = HIDDEN_LINK if preview or not token else f"{base}/portal/reset/{token}"
        if message.expires_at:
            ctx["link_expires"] = human_time(message.expires_at, tz)
    if message.kind == "closure_notice":
        ctx["closure_reason"] = data.get("reason") or "closed"
    if message.kind in ("fee_charged", "fee_due", "fee_returned"):
        # No-show protection (issue 27): which fee, how much, and (when due) the page to pay it on.
        ctx["fee_name"] = {"late_cancel_fee": "late-cancellation fee",
                           "no_show_fee": "missed-appointment fee"}.get(data.get("kind"), "fee")
        ctx["fee_amount"] = money(int(data.get("amount") or 0), data.get("currency") or "gbp")
        if appt is not None:
            ctx["pay_url"] = f"{base}{fee_pay_path(appt.id, data.get('payment_id', ''))}"
    if message.kind == "waitlist_offer":
        ctx.update(service_name=data.get("service", ""), provider_name=data.get("provider", ""))
        if data.get("start"):
            ctx["when"] = human_time(_instant(data["start"]), tz)
        if data.get("expires_at"):
            ctx["offer_expires"] = human_time(_instant(data["expires_at"]), tz)
        ctx["offer_url"] = f"{base}{data.get('url') or '/portal/waitlist'}"
        ctx["visit_for"] = offer_for(data)
    return ctx, appt, clinic


def fee_pay_path(appointment_id, payment_id):
    """The path of a fee's pay page, the one link the `fee_due` email and text both carry."""
    return f"/portal/appointments/{appointment_id}/fee/{payment_id}"


def offer_for(data):
    """Whom a waitlist offer is for, when it is a dependant's (issue 28): their name, read now; else ""."""
    ident = data.get("for")
    person = Patient.objects(id=ident).only("name").first() if ident and ObjectId.is_valid(str(ident)) else None
    return person.name if person is not None else ""


def render(message, now, public_url=None, preview=False):
    """Render a message from its templates (the back office passes preview=True: no secrets)."""
    from flask import current_app

    public_url = public_url or current_app.config.get("PUBLIC_URL") or ""
    clinic = Clinic.get()
    # The whole message, templates' filters included, in the clinic's locale read here (a worker may
    # hold no catalog, or an older one); the .ics attachment is iCalendar, in no locale.
    with using_locale(getattr(clinic, "locale", None)):
        return _render(message, now, public_url, preview, clinic)


def _render(message, now, public_url, preview, clinic):
    from flask import current_app

    ctx, appt, clinic = context_for(message, now, public_url, preview, clinic)
    ctx["html_lang"] = current_locale().replace("_", "-")  # "en-GB": the locale it is written in
    env = current_app.jinja_env
    text_module = env.get_template(f"email/{message.kind}.txt").make_module(ctx)
    html = env.get_template(f"email/{message.kind}.html").render(ctx)
    subject = " ".join(str(getattr(text_module, "subject", "") or message.kind).split())
    rendered = Rendered(subject=subject, text=str(text_module).strip() + "\n", html=html,
                        from_name=clinic.name if clinic is not None else "")
    if message.kind in ("confirmed", "rescheduled", "cancelled") and appt is not None and clinic is not None:
        # A cancellation's file has METHOD:CANCEL, so calendars that took the event remove it.
        method = "CANCEL" if message.kind == "cancelled" else "PUBLISH"
        live = ctx.get("series_visits", ())
        confirmed = [v for v in live if v.status in ("confirmed", "checked_in")]
        # A series confirmed at once (free, or booked by staff) has one confirmation, the first
        # visit's: its file holds every visit. A visit paid for on its own keeps its own file, so a
        # calendar never gets one visit twice under two UIDs.
        if message.kind == "confirmed" and len(confirmed) > 1 and len(confirmed) == len(live) \
                and confirmed[0].id == appt.id:
            rendered.attachments.append(("appointments.ics", "text", "calendar",
                                         series_ics(confirmed, clinic, public_url, appt.series), {"method": method}))
        else:
            rendered.attachments.append(("appointment.ics", "text", "calendar",
                                         appointment_ics(appt, clinic, public_url, method), {"method": method}))
    return rendered


# --- Recurring series (issue 28) -------------------------------------------------------------------

def series_ics(appointments, clinic, public_url="", series_id=""):
    """One iCalendar file for a series: one VEVENT per visit, or a single VEVENT with an RRULE only
    when every visit is at the same local time, the same interval of whole weeks apart."""
    from icalendar import Calendar

    zone = ZoneInfo(clinic.timezone)
    events = [next(iter(Calendar.from_ical(appointment_ics(a, clinic, public_url)).walk("VEVENT")))
              for a in appointments]
    cal = Calendar()
    cal.add("prodid", "-//Clinic booking//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    weeks = _regular_weeks(appointments, zone)
    if weeks:
        event = events[0]
        event.pop("UID")
        event.pop("URL", None)
        event.add("uid", f"series-{series_id or appointments[0].id}@clinic")
        event.add("rrule", {"freq": "weekly", "interval": weeks, "count": len(appointments)})
        cal.add_component(event)
    else:
        for event in events:
            cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


def _regular_weeks(appointments, zone):
    """The interval in weeks when the visits repeat exactly (same wall-clock time and length), else None."""
    starts = [_utc(a.start).astimezone(zone) for a in appointments]
    lengths = {_utc(a.end) - _utc(a.start) for a in appointments}
    if len(starts) < 2 or len(lengths) != 1 or len({s.time() for s in starts}) != 1:
        return None
    gaps = {(b.date() - a.date()).days for a, b in zip(starts, starts[1:])}
    if len(gaps) != 1 or next(iter(gaps)) % 7:
        return None
    return next(iter(gaps)) // 7


def _series_live(appt):
    """The live visits of an appointment's series, soonest first (for its confirmation)."""
    return list(Appointment.objects(series=appt.series, status__in=("held", "confirmed", "checked_in"))
                .order_by("start"))
