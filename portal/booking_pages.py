"""Patient self-service pages: the one-screen booking page, the dashboard, reschedule, the waitlist.

Routes on the portal blueprint (`portal.*` endpoints), server-rendered and working without
JavaScript; `static/book.js` only adds the browser's time zone to the address.

The booking page is one address, `/portal/book`, whose query says how far the patient got:
`service` › `provider` ("any" or an id) › `day` (in the month `month`) › `start` (the review).
Anyone may browse it; booking (POST) needs a signed-in patient, and the review step sends visitors
to sign in or register with `next` pointing back to the review. `tz` (an IANA zone the page sends)
adds the patient's own time beside the clinic's when they differ.
"""

from calendar import Calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jwt as pyjwt
from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField
from wtforms.validators import DataRequired

from web.audit import audit, audit_event
from web.errors import status_of
from models.booking.cancellation import cancellation_terms_for
from models.booking.rules import find_slots, free_providers_at, get_patient_appointment, require_clinic
from models import clock
from models import formatting
from models.accounts.dependants import dependants_of
from models.accounts.phones import display_phone
from models.booking import series, waitlist
from models.catalog import bookable_services, current_catalog
from models.catalog.profile import upcoming_closures
from models.booking.lists import appointments_of
from models.documents import Payment, utcnow
from models.payments.documents import UPFRONT_KINDS
from models.errors import DomainError, NotFound, SeriesUnavailable
from models.booking.reschedule import reschedule_blocker
from models.catalog.policy import policy_sentence
from portal.door import (accept_offer_for_patient, book_any_for_patient, book_for_patient, join_waitlist_for_patient,
                         reschedule_following_for_patient, reschedule_for_patient)
from portal.schemas import parse_instant, parse_instead
from portal.auth import current_patient, issue_tokens, patient_page
from portal import series_pages
from portal.pages import bp

PARTS = (("Morning", 0, 12), ("Afternoon", 12, 17), ("Evening", 17, 24))
STEPS = ("Service", "Clinician", "Time", "Review", "Pay")


def patient_zone(raw, clinic_zone):
    """The patient's zone from the page's `tz`, when valid and different from the clinic's."""
    if not raw or raw == clinic_zone or len(raw) > 64:
        return None
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def optional_patient():
    """(patient or None, response or None): a visitor is None; a session whose access token lapsed
    but whose refresh token lives is renewed by answering a redirect to the same address."""
    try:
        verify_jwt_in_request(optional=True)
        patient = current_patient()
        if patient is not None:
            return patient, None
    except (pyjwt.PyJWTError, JWTExtendedException):
        pass
    if request.cookies.get(current_app.config["JWT_REFRESH_COOKIE_NAME"]):
        try:
            verify_jwt_in_request(refresh=True)
            patient = current_patient()
            if patient is not None:
                return None, issue_tokens(redirect(request.full_path), patient, sid=get_jwt()["sid"], refresh=False)
        except (pyjwt.PyJWTError, JWTExtendedException):
            pass
    return None, None


@dataclass
class Picker:
    """What the calendar and the day's times show, for booking or for a move."""

    month: date
    days_free: set
    day: date = None
    parts: list = field(default_factory=list)  # [(label, [(start, local, patient_local, provider)])]
    prev_month: date = None
    next_month: date = None
    weeks: list = field(default_factory=list)

    def nearby_days(self):
        """The free days just before and after the chosen one in this month (None when there is none)."""
        days = sorted(self.days_free)
        before = [d for d in days if self.day and d < self.day]
        after = [d for d in days if self.day and d > self.day]
        return (before[-1] if before else None), (after[0] if after else None)


def build_picker(service, providers, clinic, now, month_raw, day_raw, skip=None):
    """Free times of the month (days marked) and of the chosen day, grouped by part of day.

    With several providers each time is listed once (the first free provider is kept for it).
    `skip` is a start to leave out (the patient's own current time, when moving).
    """
    zone = ZoneInfo(clinic.timezone)
    today = clock.local_today(clinic.timezone, now)
    day = _parse_date(day_raw)
    month = _parse_month(month_raw) or (day.replace(day=1) if day else today.replace(day=1))
    if month < today.replace(day=1):
        month = today.replace(day=1)
    last = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    first = max(month, today)
    found = find_slots(service, providers, clinic, first, (last - first).days + 1, now) if first <= last else []
    by_day = {}
    for start, _end, provider in found:
        if skip is not None and start == skip:
            continue
        local = start.astimezone(zone)
        times = by_day.setdefault(local.date(), {})
        times.setdefault(start, (start, local, provider))
    if day is None or day not in by_day:
        day = min(by_day) if by_day and (day is None or day.replace(day=1) != month) else day
    picker = Picker(month=month, days_free=set(by_day), day=day)
    picker.prev_month = (month - timedelta(days=1)).replace(day=1) if month > today.replace(day=1) else None
    picker.next_month = last + timedelta(days=1)
    picker.weeks = Calendar(firstweekday=0).monthdatescalendar(month.year, month.month)
    if day in by_day:
        for label, lo, hi in PARTS:
            times = [t for t in sorted(by_day[day].values(), key=lambda t: t[0]) if lo <= t[1].hour < hi]
            if times:
                picker.parts.append((label, times))
    return picker


def _parse_date(raw):
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _parse_month(raw):
    try:
        return date.fromisoformat(f"{raw}-01") if raw else None
    except ValueError:
        return None


def book_url(**params):
    """The booking page's address with the given query (empty values left out)."""
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return url_for("portal.book") + ("?" + urlencode(clean) if clean else "")


def policy_text(terms, clinic):
    """The cancellation policy (booking's `cancellation_terms`), in one or two sentences."""
    hours = terms.window_hours
    refund = "you get a full refund" if terms.refund == "full" else "the price is not refunded"
    phone = f" on {display_phone(clinic.phone)}" if clinic.phone else ""
    if not hours:
        return f"You can cancel or move this appointment online until it starts; if you cancel, {refund}."
    return (f"You can cancel or move this appointment online up to {hours} hour{'s' if hours != 1 else ''} "
            f"before it starts; if you cancel, {refund}. Later than that, please call the clinic{phone}.")


CLOSURES_SHOWN_DAYS = 60  # the booking page names the clinic's closures this far ahead (issue 25)


@bp.get("/book")
def book():
    """The one-screen booking page: service › clinician › time (month calendar, day's times) › review."""
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    now = utcnow()
    patient, renewed = optional_patient()
    if renewed is not None:
        return renewed
    services = bookable_services(catalog)
    args = request.args
    tz_raw = args.get("tz", "")
    pzone = patient_zone(tz_raw, clinic.timezone)
    ctx = dict(clinic=clinic, services=services, service=None, providers=[], provider=None,
               provider_choice="", picker=None, review=None, patient=patient, pzone=pzone,
               tz=tz_raw if pzone else "", book_url=book_url, step=0, people=[], draft={},
               closures=upcoming_closures(catalog, now, days=CLOSURES_SHOWN_DAYS))
    service_id = args.get("service", "")
    if service_id:
        try:
            ctx["service"] = catalog.service(service_id)
        except DomainError as exc:
            flash(exc.message, "error")
    service = ctx["service"]
    if service is None:
        return render_template("portal/book.html", **ctx)
    providers = catalog.providers_offering(service)
    choice = args.get("provider", "any") or "any"
    chosen = providers if choice == "any" else [p for p in providers if str(p.id) == choice]
    if not chosen:
        flash("Choose a clinician who offers this service.", "error")
        choice, chosen = "any", providers
    ctx.update(providers=providers, provider_choice=choice, provider=None if choice == "any" else chosen[0],
               step=2)
    ctx["picker"] = build_picker(service, chosen, clinic, now, args.get("month"), args.get("day"))
    start_raw = args.get("start")
    if start_raw:
        # Issue 28: who it is for and the intake questions; a refused try's answers come back once.
        ctx["people"] = dependants_of(patient) if patient else []
        ctx["draft"] = session.pop("booking_draft", None) or {}
        if args.get("for") and "for" not in ctx["draft"]:
            # From the waitlist's "Times are free now" for a dependant: the review starts on them
            # (only a preselection: booking checks `for` against the account as always).
            ctx["draft"]["for"] = args.get("for", "")[:40]
        ctx["review"] = review_context(service, chosen, clinic, now, start_raw, ctx["picker"], patient)
        if ctx["review"] is None:
            flash("That time is no longer free. Please choose another.", "error")
        else:
            ctx["step"] = 3
    return render_template("portal/book.html", **ctx)


def review_context(service, chosen, clinic, now, start_raw, picker, patient=None):
    """What the review step shows, or None when the time is not (or no longer) free."""
    try:
        start = clock.as_utc(parse_instant(start_raw))
    except DomainError:
        return None
    local = start.astimezone(ZoneInfo(clinic.timezone))
    free = free_providers_at(service, start, now, chosen, clinic)
    if not free:
        return None
    terms = cancellation_terms_for(service, start, now)  # once booked, as the refund will read them
    policy = policy_text(terms, clinic)
    if not terms.may_cancel:
        hours = terms.window_hours
        # Said before committing: this time is already inside the window, so online changes are over.
        policy = (f"This time starts within {hours} hour{'s' if hours != 1 else ''}, so once booked it "
                  f"cannot be cancelled or moved online. " + policy)
    # No-show protection (issue 27): the deposit and fees in one plain sentence the patient agrees to.
    fees = service.policy
    return {"start": start, "local": local, "end": start + timedelta(minutes=service.duration_minutes),
            "providers": free, "start_iso": local.isoformat(),
            "hold_minutes": clinic.hold_minutes or 15, "policy": policy,
            "fees": fees if (fees.deposit or fees.needs_card) else None,
            "fees_text": policy_sentence(fees, service.currency, getattr(patient, "card_last4", None)),
            "needs_card": fees.needs_card and not getattr(patient, "card_payment_method", None)}


@bp.post("/book")
@patient_page
def book_post():
    """Book the reviewed time; with "any" clinician, the first one still free at that time gets it."""
    form = request.form
    service_id, choice = form.get("service", ""), form.get("provider", "")
    back = book_url(service=service_id, provider=choice, day=form.get("day"), tz=form.get("tz"))
    # Issue 28: the intake answers (fields answer-<question id>) and who the visit is for.
    answers = {key[len("answer-"):]: value[:2100] for key, value in form.items() if key.startswith("answer-")}
    for_ = form.get("for") or None
    if series_pages.wants_series(form):  # recurring series (issue 28)
        return series_pages.book_series_post(form, back, answers, for_)
    try:
        start = parse_instant(form.get("start", ""))
        agree = form.get("agree_policy") == "yes"
        if choice == "any":
            appt = book_any_for_patient(g.patient, service_id, start, answers=answers, for_=for_,
                                        agree_policy=agree)
        else:
            appt = book_for_patient(g.patient, service_id, choice, start, answers=answers, for_=for_,
                                    agree_policy=agree)
    except DomainError as exc:
        flash(exc.message, "error")
        if exc.code in ("answers_required", "invalid_answer"):
            # Back to the same review with what was typed, so nothing has to be typed again.
            session["booking_draft"] = {"answers": answers, "for": for_ or "", "errors": dict(exc.fields or {})}
            back = book_url(service=service_id, provider=choice, day=form.get("day"), tz=form.get("tz"),
                            start=form.get("start", "")) + "#review"
        return redirect(back)
    if appt.status == "confirmed":
        flash("Your appointment is booked.", "info")
    return redirect(url_for("portal.appointment", appointment_id=appt.id))


# --- Dashboard ------------------------------------------------------------------------------

def _still_free(appt, clinic, now):
    """True when an expired hold's time could be booked again now."""
    try:
        service = current_catalog().service(appt.service.id)
        provider = current_catalog().provider_for(service, appt.provider.id)
    except DomainError:
        return False
    return bool(free_providers_at(service, appt.start, now, [provider], clinic))


def again_url(appt, tz):
    """"Book this time again": the booking page's review of the same time, on the clinic's date.

    Issue 24: the day is the clinic-local date (09:00 in Sydney, or 00:30 BST, is the day before in
    UTC) and the start carries its own offset once (MongoDB hands back aware datetimes)."""
    start = clock.local(appt.start, tz)
    return book_url(service=str(appt.service.id), provider=str(appt.provider.id), day=start.date().isoformat(),
                    start=start.isoformat()) + "#review"


@bp.get("/")
@patient_page
def dashboard():
    """The patient's home: upcoming, past (with receipts) and cancelled/expired, each in its own list."""
    clinic = current_catalog().clinic  # None before the clinic is set up: the lists are empty then
    now = utcnow()
    # The account's visits, split as the API lists them (models/booking/lists.py).
    lists = appointments_of(g.patient, now)
    upcoming, past, closed = lists.upcoming, lists.past, lists.closed
    paid = {p.appointment.id: p for p in Payment.objects(appointment__in=[a.id for a, _ in past], kind__in=UPFRONT_KINDS).no_dereference()}
    again = {a.id: again_url(a, clinic.timezone) for a, status in closed[:10]
             if status == "expired" and clock.as_utc(a.start) > now and _still_free(a, clinic, now)}
    offers = [e for e in waitlist.entries_of(g.patient) if waitlist.offer_is_open(e, now)]
    audit(f"patient:{g.patient.id}", "appointment.list", record=f"Patient:{g.patient.id}")
    return render_template("portal/dashboard.html", clinic=clinic, patient=g.patient, upcoming=upcoming,
                           past=past, closed=closed, paid=paid, again=again, offers=offers, now=now, book_url=book_url)


@bp.get("/appointments/<appointment_id>/receipt")
@patient_page
def receipt(appointment_id):
    """A receipt for a paid (or free) appointment."""
    appt = get_patient_appointment(g.patient, appointment_id)
    clinic = require_clinic()
    payment = Payment.objects(appointment=appt.id, kind__in=UPFRONT_KINDS).first()
    if appt.amount and (payment is None or payment.status not in ("succeeded", "refunded")):
        raise NotFound("There is no receipt for this appointment: it was not paid.", code="no_receipt")
    audit(f"patient:{g.patient.id}", "appointment.receipt", record=f"Appointment:{appt.id}")
    return render_template("portal/receipt.html", appt=appt, clinic=clinic, payment=payment, patient=g.patient)


# --- Reschedule -----------------------------------------------------------------------------

@bp.get("/appointments/<appointment_id>/reschedule")
@patient_page
def reschedule_page(appointment_id):
    """Choose a new time for the same service (any clinician who offers it), then confirm."""
    appt = get_patient_appointment(g.patient, appointment_id)
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    now = utcnow()
    blocker = reschedule_blocker(appt, now, clinic)
    service = catalog.service(appt.service.id)
    providers = catalog.providers_offering(service)
    choice = request.args.get("provider", str(appt.provider.id))
    chosen = providers if choice == "any" else [p for p in providers if str(p.id) == choice] or providers
    picker = None if blocker else build_picker(service, chosen, clinic, now, request.args.get("month"),
                                               request.args.get("day"), skip=clock.as_utc(appt.start))
    review = None
    if not blocker and request.args.get("start"):
        review = review_context(service, chosen, clinic, now, request.args["start"], picker)
        if review is None:
            flash("That time is no longer free. Please choose another.", "error")
    pzone = patient_zone(request.args.get("tz", ""), clinic.timezone)

    def move_url(**params):
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        return url_for("portal.reschedule_page", appointment_id=appt.id) + ("?" + urlencode(clean) if clean else "")

    return render_template("portal/reschedule.html", appt=appt, clinic=clinic, service=service, providers=providers,
                           provider_choice=choice, picker=picker, review=review, blocker=blocker, pzone=pzone,
                           tz=request.args.get("tz", "") if pzone else "", move_url=move_url,
                           later=series.later_visits(appt))


@bp.post("/appointments/<appointment_id>/reschedule")
@patient_page
def reschedule_post(appointment_id):
    """Move the appointment to the reviewed time; the old time is released only once the new one is held."""
    appt = get_patient_appointment(g.patient, appointment_id)
    form = request.form
    if form.get("scope") == "following" and series.later_visits(appt):
        return _move_following(appt, form)
    try:
        start = parse_instant(form.get("start", ""))
        # The reviewed time's clinicians, tried in turn; the action audits itself once, done or refused.
        appt = reschedule_for_patient(g.patient, appt, start, [p for p in form.getlist("provider") if p])
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("portal.reschedule_page", appointment_id=appt.id))
    clinic = require_clinic()
    flash(f"Your appointment is moved to {formatting.human_time(appt.start, clinic.timezone)}.", "info")
    return redirect(url_for("portal.appointment", appointment_id=appt.id))


def _move_following(appt, form):
    """Move this visit and the later ones of its series (issue 28), all or nothing; on dates not
    free, the page lists each with its nearest free times to choose, then moves them all."""
    clinic = require_clinic()
    providers = [p for p in form.getlist("provider") if p]
    # One clinician for every visit: the appointment's own when the reviewed time allows it.
    provider = str(appt.provider.id) if not providers or str(appt.provider.id) in providers else providers[0]
    instead = {}
    try:
        start = parse_instant(form.get("start", ""))
        instead = parse_instead(form)
        moved = reschedule_following_for_patient(g.patient, appt, start, provider, instead)
    except SeriesUnavailable as exc:
        dates, kept = series.alternative_choices(exc.details, instead, clinic.timezone)
        return render_template("portal/series_move_conflict.html", clinic=clinic, appt=appt, dates=dates, kept=kept,
                               start=form.get("start", ""), provider=provider, message=exc.message,
                               bookable=all(d["choices"] for d in dates)), 409
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("portal.reschedule_page", appointment_id=appt.id))
    flash(f"Your appointment is moved to {formatting.human_time(moved[0].start, clinic.timezone)}, and the "
          f"{len(moved) - 1} later visit{'s' if len(moved) != 2 else ''} of the series with it.", "info")
    return redirect(url_for("portal.series_page", series_id=appt.series))


# --- Waitlist -------------------------------------------------------------------------------

class _FreeNow(Exception):
    """Times are free for what the patient asked: show them before joining (issue 26)."""


class WaitlistForm(FlaskForm):
    """Join the waitlist."""

    service = SelectField("Service", validators=[DataRequired()])
    provider = SelectField("Clinician")
    date_from = DateField("First day", validators=[DataRequired()])
    date_to = DateField("Last day", validators=[DataRequired()])


@bp.route("/waitlist", methods=["GET", "POST"])
@patient_page
def waitlist_page():
    """The patient's waitlist: offers to accept, entries to leave, and a form to join."""
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    now = utcnow()
    services = bookable_services(catalog)
    providers = sorted(catalog.providers.values(), key=lambda p: p.name)
    form = WaitlistForm(formdata=request.form if request.method == "POST" else None)
    form.service.choices = [(str(s.id), s.name) for s in services]
    form.provider.choices = [("any", "Any clinician")] + [(str(p.id), p.name) for p in providers]
    # Issue 26: only the clinicians who offer the chosen service (the page's script narrows the list
    # again when the service changes; a clinician who does not offer it is refused on joining).
    offers = {str(p.id): [str(getattr(s, "id", s)) for s in p.services] for p in providers}
    status = 200
    free_now = []
    # Issue 28: who waits, the patient or one of the people they book for (checked on joining).
    people = dependants_of(g.patient)
    for_ = (request.form.get("for") or None) if request.method == "POST" else None
    if request.method == "GET":
        today = clock.local_today(clinic.timezone, now)
        form.service.data = request.args.get("service") or (form.service.choices[0][0] if services else None)
        form.provider.data = request.args.get("provider") or "any"
        form.date_from.data = _parse_date(request.args.get("from")) or today
        form.date_to.data = _parse_date(request.args.get("to")) or today + timedelta(days=13)
    elif form.validate_on_submit():
        provider = form.provider.data if form.provider.data != "any" else None
        try:
            if request.form.get("wait_anyway") != "1":
                # Times free now are shown first: the patient books one, or still chooses to wait.
                free_now = waitlist.free_times(form.service.data, provider, form.date_from.data,
                                               form.date_to.data, now, limit=12)
            if free_now:
                raise _FreeNow()
            # The action audits itself and offers a time freed meanwhile at once; `for`: who waits (issue 28).
            entry = join_waitlist_for_patient(g.patient, form.service.data, provider, form.date_from.data,
                                              form.date_to.data, for_=for_, skip_free_now=True)
        except _FreeNow:
            pass
        except DomainError as exc:
            target = {"from": form.date_from, "to": form.date_to, "provider": form.provider}
            placed = False
            for name in exc.fields or {}:
                if name in target:
                    target[name].errors = list(target[name].errors) + [exc.message]
                    placed = True
            if not placed:
                flash(exc.message, "error")
            status = status_of(exc)
        else:
            flash("You are on the waitlist. We will offer you a time as soon as one frees up."
                  if entry.status == "waiting" else "A time freed up: it is held for you below.", "info")
            return redirect(url_for("portal.waitlist_page"))
    else:
        status = 400
    chosen_service = form.service.data
    if chosen_service:
        form.provider.choices = [("any", "Any clinician")] + [
            (str(p.id), p.name) for p in providers if chosen_service in offers[str(p.id)]]
    entries = waitlist.entries_of(g.patient)
    return render_template("portal/waitlist.html", form=form, entries=entries, clinic=clinic, now=now,
                           offer_fees=_offer_fees(g.patient), patient=g.patient, people=people, chosen_for=for_ or "",
                           free_now=free_now, offers=offers, all_providers=providers,
                           open_offer=lambda e: waitlist.offer_is_open(e, now),
                           date_span=formatting.date_span), status


def _offer_fees(patient):
    """For the waitlist page: an offer's deposit and fees as the sentence the patient agrees to on
    accepting (None when the service has none), and whether a card must be saved first."""
    def fees(entry):
        policy = entry.service.policy
        if not (policy.deposit or policy.needs_card):
            return None
        return {"text": policy_sentence(policy, entry.service.currency, getattr(patient, "card_last4", None)),
                "needs_card": policy.needs_card and not getattr(patient, "card_payment_method", None),
                "pay_at_clinic": policy.pay_at_clinic}
    return fees


@bp.post("/waitlist/<entry_id>/accept")
@patient_page
def waitlist_accept(entry_id):
    """Accept an offer: the time is booked (held for payment when the service has a price)."""
    entry = waitlist.get_entry(g.patient, entry_id)
    try:
        appt = accept_offer_for_patient(g.patient, entry, agree_policy=request.form.get("agree_policy") == "yes")
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("portal.waitlist_page"))
    flash("The offered time is yours." + (" Pay to confirm it." if appt.status == "held" else ""), "info")
    return redirect(url_for("portal.appointment", appointment_id=appt.id))


@bp.post("/waitlist/<entry_id>/leave")
@patient_page
def waitlist_leave(entry_id):
    """Leave the waitlist; an open offer goes to the next patient in line."""
    entry = waitlist.get_entry(g.patient, entry_id)
    waitlist.leave(entry, utcnow(), audit=audit_event(f"patient:{g.patient.id}", "waitlist.leave"))
    flash("You have left that waitlist.", "info")
    return redirect(url_for("portal.waitlist_page"))

