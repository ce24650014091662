"""Recurring series in the portal (issue 28): the review step's "Repeat this visit" (booked by
`/portal/book`, which hands a repeat here, with its "pay for each visit" or "pay for the whole
course now" choice), the page offering the nearest free times for dates that are not free, and the
series page listing every visit (with one .ics holding every confirmed one, and a course's one
"Pay £360.00 now for all 6 visits")."""

from datetime import datetime

from flask import current_app, flash, g, make_response, redirect, render_template, url_for

from models.booking.rules import effective_status, require_clinic
from models.payments.ledger import course_due
from models import clock
from models import formatting
from models.accounts.dependants import household_ids
from models.booking import series
from models.documents import utcnow
from models.errors import DomainError, SeriesUnavailable
from portal.auth import patient_page
from portal.door import book_series_for_patient
from portal.pages import bp
from portal.schemas import parse_instant, parse_instead


def wants_series(form):
    """True when the review form asked for more than one visit."""
    return form.get("every_weeks", "0") not in ("", "0")


def _whole(raw):
    return int(raw) if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 4 else None


def book_series_post(form, back, answers=None, for_=None):
    """Book the series the review form describes; on dates not free, offer the nearest free times (409)."""
    service_id, provider = form.get("service", ""), form.get("provider", "")
    try:
        start = parse_instant(form.get("start", ""))
        every, count = _whole(form.get("every_weeks")), _whole(form.get("count"))
        instead = parse_instead(form)
        pay = form.get("pay") or "visit"
        series_id, visits = book_series_for_patient(g.patient, service_id, provider, start,
                                                    {"every_weeks": every, "count": count, "instead": instead,
                                                     "pay": pay},
                                                    answers=answers, for_=for_)
    except SeriesUnavailable as exc:
        return _offer_alternatives(exc, form, service_id, provider, instead, back), 409
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(back)
    held = any(v.status == "held" for v in visits)
    course = any(v.pay_course for v in visits)
    flash(f"Your {len(visits)} visits are booked." + (" Pay for the whole course to confirm them." if course else
                                                      " Pay for each visit to confirm it." if held else ""), "info")
    return redirect(url_for("portal.series_page", series_id=series_id))


def _offer_alternatives(exc, form, service_id, provider, instead, back):
    """The page listing each date not free with its nearest free times, to book the whole set again."""
    clinic = require_clinic()
    tz = clinic.timezone
    # A date refused may itself be a time chosen earlier instead of a regular one: answer for the regular one.
    regular_of = {clock.as_utc(v): clock.as_utc(k) for k, v in instead.items()}
    dates, refused = [], set()
    for n, iso in enumerate(exc.details["unavailable"], 1):
        when = clock.as_utc(datetime.fromisoformat(iso))
        key = regular_of.get(when, when)
        refused.add(key)
        choices = [{"iso": a, "human": formatting.human_time(datetime.fromisoformat(a), tz)}
                   for a in exc.details["alternatives"].get(iso, [])]
        dates.append({"n": n, "key": clock.local_iso(key, tz), "human": formatting.human_time(when, tz),
                      "choices": choices})
    kept = [(clock.local_iso(k, tz), clock.local_iso(v, tz)) for k, v in instead.items()
            if clock.as_utc(k) not in refused]
    return render_template("portal/series_conflict.html", clinic=clinic, dates=dates, kept=kept,
                           service_id=service_id, provider=provider, start=form.get("start", ""),
                           every_weeks=form.get("every_weeks"), count=form.get("count"),
                           bookable=all(d["choices"] for d in dates), back=back,
                           carried=[(k, v) for k, v in form.items() if k.startswith("answer-") or k in ("for", "pay")])


@bp.get("/series/<series_id>")
@patient_page
def series_page(series_id):
    """Every visit of one of the patient's series, with its status and what to pay."""
    visits = series.patient_series(household_ids(g.patient), series_id)
    clinic = require_clinic()
    now = utcnow()
    rows = [(v, effective_status(v, now)) for v in visits]
    # A course paid up front (issue 28): one payment for every visit still held, started from the first.
    course_held = [v for v, status in rows if status == "held" and v.pay_course]
    due = course_due(course_held[0], now) if course_held else None
    course = {"first": course_held[0], "total": due[0], "count": due[1], "currency": course_held[0].currency,
              "until": course_held[0].hold_expires_at} if due else None
    paid_course = any(v.pay_course for v in visits) and not course_held
    return render_template("portal/series.html", clinic=clinic, visits=visits, rows=rows, series_id=series_id,
                           course=course, paid_course=paid_course,
                           held=any(s == "held" for _v, s in rows),
                           confirmed=any(s in ("confirmed", "checked_in") for _v, s in rows))


@bp.get("/series/<series_id>.ics")
@patient_page
def series_ics_file(series_id):
    """One calendar file with every confirmed visit of the series."""
    visits = [v for v in series.patient_series(household_ids(g.patient), series_id) if v.status in ("confirmed", "checked_in")]
    if not visits:
        raise DomainError("No visit of this series is confirmed yet.", code="not_confirmed")
    body = series.calendar(visits, require_clinic(), current_app.config.get("PUBLIC_URL", ""), series_id)
    response = make_response(body)
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="series-{series_id}.ics"'
    return response
