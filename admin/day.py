"""The reception day view: a time grid with one column per provider, the week at a glance, a
printable day sheet, the day's actions (each only when it makes sense, with undo), and staff
booking (walk-ins, phone bookings, new callers) through the same booking rule as the portal."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId
from flask import abort, flash, redirect, request, session, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin.base import StaffAccessMixin, clinic_zone, staff_actor, staff_role
from admin.roles import DAY_ACTIONS, EVERYONE, FRONT_DESK, SEES_MONEY
from web.audit import audit, audit_event
from web.errors import status_of
from models.booking import create
from models.booking import rules
from models import clock
from models import formatting
from models.booking import frontdesk
from models.booking import series, series_move  # recurring series (issue 28)
from models.booking.series_place import series_positions
from models.accounts import normalise_email
from models.catalog import current_catalog
from models.daygrid import build_grid, free_now, week_summary
from models.payments.desk import (DESK_METHODS, REFUND_CHOICES, cancel_at_desk, cancel_following_at_desk, kept_fee,
                                  mark_paid_at_desk, paid_left, refund_preview, refund_preview_total)
from models.payments.fees import fee_amount, no_show, paid_online, undo_no_show
from models.documents import Appointment, Clinic, Patient, utcnow
from models.errors import DomainError, SeriesUnavailable, ValidationFailed
from models.formatting import money

DONE = {"check_in": "Checked in", "undo_check_in": "Check-in undone for", "no_show": "Marked as no-show:",
        "undo_no_show": "No-show undone for"}
UNDO = {"check_in": "undo_check_in", "no_show": "undo_no_show"}
PX_PER_MINUTE = 2
# The session key of the service this desk last chose on the booking form (issue 28's walk-through).
DESK_SERVICE = "desk_service"
# The booking form's values carried by the review and override steps as hidden fields (issue 26),
# a series' repeat (issue 28) included, so that booking over a conflict still books every visit.
BOOKING_KEYS = ("day", "time", "provider", "service", "q", "patient", "name", "phone", "email", "date_of_birth",
                "confirm_new", "every_weeks", "count")


def parse_amount(raw):
    """Staff's "20", "20.50" or "£20.50" -> minor units (2050); ValidationFailed when not money."""
    try:
        value = formatting.parse_money(raw)
    except ValueError:
        value = None
    if value is None:
        raise ValidationFailed("Give the amount like 20.00.", fields={"amount": "invalid"})
    return value


def undone_fee_words(undone):
    """The end of the "No-show undone" message: what happened to the fee, in words staff act on."""
    fee = money(undone.amount, undone.fee.currency) if undone.fee is not None else ""
    return {"refunded": f"; the {fee} fee was refunded.",
            "refund_pending": f"; the {fee} fee's refund is requested, Stripe has not confirmed it yet "
                              "(the home page lists it until it does).",
            "refund_refused": f"; Stripe refused to refund the {fee} fee: the home page lists it.",
            "waived": f"; the {fee} fee is no longer due and its pay link says so.",
            "processing": f"; the {fee} fee is still being charged: refund it from Payments once taken.",
            }.get(undone.outcome, ".")


class DayView(StaffAccessMixin, BaseView):
    """One day of the clinic as a schedule, its week, its print sheet, and booking for a patient."""

    read_roles = EVERYONE
    extra_css = ["/static/frontdesk.css"]

    # --- reading ---------------------------------------------------------------------------------

    def _day(self, raw=None):
        raw = request.values.get("day", "") if raw is None else raw
        try:
            return date.fromisoformat(raw)
        except ValueError:
            today = clock.local_today(clinic_zone(), utcnow())
            if raw:
                # Said on the page: a mistyped date must not pass for today's sheet unnoticed.
                flash(f"“{raw[:20]}” is not a date; showing today, {formatting.human_date(today)}.", "warning")
            return today

    def _providers(self):
        if staff_role() == "provider":
            return [current_user.provider] if current_user.provider else []
        return sorted(current_catalog().providers.values(), key=lambda p: p.name)

    def _common(self, day):
        tz = clinic_zone()
        return dict(day=day, tz=tz, zone=ZoneInfo(tz), role=staff_role(),
                    sees_money=staff_role() in SEES_MONEY, front_desk=FRONT_DESK,
                    today=clock.local_today(tz, utcnow()), can_book=staff_role() in FRONT_DESK,
                    prev_day=day - timedelta(days=1), next_day=day + timedelta(days=1))

    @expose("/")
    def index(self):
        """The day as a time grid: one column per provider, actions on each appointment."""
        day = self._day()
        show_all = request.args.get("show") == "all"
        now = utcnow()
        clinic = Clinic.get()
        grid = build_grid(day, clinic_zone(), self._providers(), now,
                          step_minutes=(clinic.slot_step_minutes if clinic else 15) or 15, show_all=show_all)
        audit(staff_actor(), "Appointment.day_view", record=f"day:{day.isoformat()}")
        # Intake answers (issue 28) are health data: each appointment whose answers the grid shows is audited.
        for column in grid.columns:
            for item in column.appointments:
                if item["a"].answers:
                    audit(staff_actor(), "appointment.answers_read", record=f"Appointment:{item['a'].id}")
        undo = None
        op, _, undo_id = request.args.get("undo", "").partition(":")
        if op in UNDO.values() and ObjectId.is_valid(undo_id):
            undo = (op, undo_id)
        # Issue 28: a series visit's panel says "Visit 2 of 4" (and when the course was shortened).
        positions = series_positions([item["a"] for column in grid.columns for item in column.appointments])
        return self.render("admin_clinic/day.html", grid=grid, show_all=show_all, now=now, actions=DAY_ACTIONS,
                           px=PX_PER_MINUTE, undo=undo, methods=DESK_METHODS, positions=positions,
                           **self._common(day))

    @expose("/week")
    def week(self):
        """Providers × days of the week containing `day`."""
        day = self._day()
        first = day - timedelta(days=day.weekday())
        days, rows = week_summary(first, clinic_zone(), self._providers(), utcnow())
        audit(staff_actor(), "Appointment.week_view", record=f"week:{first.isoformat()}")
        return self.render("admin_clinic/week.html", days=days, rows=rows, first=first,
                           prev_week=first - timedelta(days=7), next_week=first + timedelta(days=7),
                           **self._common(day))

    @expose("/print")
    def print_sheet(self):
        """The day sheet to print: each provider's appointments with phone and amount due."""
        day = self._day()
        now = utcnow()
        grid = build_grid(day, clinic_zone(), self._providers(), now)
        audit(staff_actor(), "Appointment.day_sheet", record=f"day:{day.isoformat()}")
        return self.render("admin_clinic/print.html", grid=grid, clinic=Clinic.get(), now=now,
                           **self._common(day))

    # --- actions ---------------------------------------------------------------------------------

    def _appointment(self, appointment_id):
        query = (Appointment.objects(id=appointment_id) if ObjectId.is_valid(appointment_id or "")
                 else Appointment.objects.none())
        if staff_role() == "provider":
            query = query.filter(provider=current_user.provider.id if current_user.provider else None)
        appointment = query.first()
        if appointment is None:
            abort(404, "That appointment does not exist.")
        return appointment

    @expose("/no-show")
    def noshow_form(self):
        """No-show protection: the confirm step before marking a no-show that has an agreed fee."""
        if staff_role() not in DAY_ACTIONS["no_show"]:
            abort(403, "Your role cannot mark no-shows.")
        appointment = self._appointment(request.args.get("appointment", ""))
        return self._noshow_page(appointment, self._day(), None, "")

    def _noshow_page(self, appointment, day, error, reason, status=200):
        fee = max(0, fee_amount(appointment, "no_show_fee") - paid_online(appointment))
        return self.render("admin_clinic/noshow.html", a=appointment, fee=fee, error=error, reason=reason,
                           card=appointment.patient.card_last4, **self._common(day)), status

    @expose("/cancel")
    def cancel_form(self):
        """Ask for the reason and state the refund before cancelling."""
        if staff_role() not in DAY_ACTIONS["cancel"]:
            abort(403, "Your role cannot cancel appointments.")
        appointment = self._appointment(request.args.get("appointment", ""))
        day = self._day()
        return self._render_cancel(appointment, day)

    def _render_cancel(self, appointment, day, error=None, fields=None, status_code=200):
        """The cancellation form: the refund choices (the service's rule preselected) and a reason."""
        now = utcnow()
        refund = refund_preview(appointment, now)
        choice = request.form.get("refund") or ("full" if refund else "none")
        # Issue 28: what cancelling this and the later visits gives back, each visit's refund summed.
        following = series.this_and_following(appointment)
        return self.render("admin_clinic/cancel.html", a=appointment, status=rules.effective_status(appointment, now),
                           refund_following=refund_preview_total(following, now) if len(following) > 1 else None,
                           later=max(len(following) - 1, 0),
                           refund=refund, paid=paid_left(appointment), refund_choices=REFUND_CHOICES, fee=kept_fee(appointment),
                           choice=choice, amount_text=request.form.get("amount", "")[:20], fields=fields or {},
                           error=error, reason=request.form.get("reason", "")[:500],
                           **self._common(day)), status_code

    @expose("/move", methods=("GET", "POST"))
    def move(self):
        """Move an appointment (or it and the later visits of its series) to another time: new times are claimed first."""
        if staff_role() not in DAY_ACTIONS["move"]:
            abort(403, "Your role cannot move appointments.")
        appointment = self._appointment(request.values.get("appointment", ""))
        now, tz = utcnow(), clinic_zone()
        service = current_catalog().service(appointment.service.id)
        providers = current_catalog().providers_offering(service)
        local = clock.local(appointment.start, tz)
        values = {"day": request.values.get("new_day", local.date().isoformat())[:10],
                  "time": request.values.get("new_time", local.time().isoformat("minutes"))[:5],  # <input type=time>
                  "provider": request.values.get("provider", str(appointment.provider.id))[:24],
                  "scope": "following" if request.values.get("scope") == "following" else "one"}
        # Issue 28: how many later visits "this and following" would move.
        later = series.later_visits(appointment)
        error, status, dates, kept = None, 200, [], []
        if request.method == "POST":
            from models.booking.reschedule import reschedule

            old = formatting.short_time(appointment.start, tz, year=False)  # 'Wed 9 Dec 11:00 GMT'
            instead = {}
            try:
                start = self._parse_start(values)  # a time that cannot be read: nothing is tried
                instead = _instead(request.form)
                # The actions audit themselves, done or refused.
                if values["scope"] == "following" and later > 0:
                    moved_all = series_move.reschedule_following(
                        appointment, start, now, provider_id=values["provider"], instead=instead,
                        actor=staff_actor(), by_staff=True, audit_as=staff_actor())
                    moved = moved_all[0]
                else:
                    moved_all = [reschedule(appointment, start, now, provider_id=values["provider"],
                                            actor=staff_actor(), by_staff=True, audit_as=staff_actor())]
                    moved = moved_all[0]
            except SeriesUnavailable as exc:
                error, status = exc.message, status_of(exc)
                dates, kept = series.alternative_choices(exc.details, instead, tz)
            except DomainError as exc:
                error, status = exc.message, status_of(exc)
            else:
                new_local = clock.local(moved.start, tz)
                message = (f"Moved {moved.patient.name} from {old} to "
                           f"{formatting.short_time(moved.start, tz, year=False)} with {moved.provider.name}")
                if len(moved_all) > 1:
                    n = len(moved_all) - 1
                    message += f", and the {n} later visit{'s' if n != 1 else ''} of the series: " + ", ".join(
                        formatting.human_time(v.start, tz) for v in moved_all[1:])
                flash(message + ". " + _told_new_time(moved.patient), "success")
                return redirect(url_for(".index", day=new_local.date().isoformat()) + f"#appt-{moved.id}")
        return self.render("admin_clinic/move.html", a=appointment, v=values, providers=providers,
                           status_text=rules.effective_status(appointment, now), error=error, later=later,
                           dates=dates, kept=kept, **self._common(local.date())), status

    @expose("/act", methods=("POST",))
    def act(self):
        """Check in, undo, mark no-show, cancel or take payment for one appointment (role-checked)."""
        op = request.form.get("op", "")
        if staff_role() not in DAY_ACTIONS.get(op, ()):
            abort(403, "Your role cannot do that.")
        appointment = self._appointment(request.form.get("appointment", ""))
        day_raw = request.form.get("day", "")
        now = utcnow()
        tz = clinic_zone()
        local_start = clock.local(appointment.start, tz)
        label = f"{appointment.patient.name} ({formatting.clock_time(local_start)} with {appointment.provider.name})"
        undo = None
        audited = {"audit_as": staff_actor()}  # each action audits itself, done or refused
        try:
            if op == "check_in":
                frontdesk.check_in(appointment, now, tz, **audited)
            elif op == "undo_check_in":
                frontdesk.undo_check_in(appointment, now, tz, **audited)
            elif op == "no_show":
                # No-show protection: with an agreed fee, staff confirm first (charge it, or waive it
                # with a reason); the action charges once whatever is clicked twice.
                if fee_amount(appointment, "no_show_fee") and request.form.get("confirm") != "yes":
                    return redirect(url_for(".noshow_form", appointment=str(appointment.id), day=day_raw))
                try:
                    fee = no_show(appointment, now, charge=request.form.get("fee") != "waive",
                                  reason=request.form.get("reason", ""), actor=staff_actor(), **audited)
                except ValidationFailed as exc:
                    return self._noshow_page(appointment, self._day(day_raw), exc.message,
                                             request.form.get("reason", ""), status_of(exc))
                if fee is not None:
                    word = {"succeeded": "taken", "canceled": "waived",  # refunded: by an undo before
                            "refunded": "refunded earlier, not charged again"}.get(
                        fee.status, "due: the patient is emailed a pay link")
                    message = f"{DONE['no_show']} {label}. No-show fee {money(fee.amount, fee.currency)} {word}."
                    flash(message, "success")
                    return redirect(url_for(".index", day=day_raw, undo=f"undo_no_show:{appointment.id}")
                                    + f"#appt-{appointment.id}")
            elif op == "undo_no_show":
                # No-show protection: the undo takes the fee back too (refunded, or no longer due).
                undone = undo_no_show(appointment, now, actor=staff_actor(), **audited)
                flash(f"{DONE[op]} {label}{undone_fee_words(undone)}", "success")
                return redirect(url_for(".index", day=day_raw) + f"#appt-{appointment.id}")
            elif op == "pay":
                payment = mark_paid_at_desk(appointment, request.form.get("method", ""), now, staff_actor(),
                                            **audited)
                message = (f"Payment recorded: {money(payment.amount, payment.currency)} "
                           f"by {DESK_METHODS[payment.method]} from {label}.")
            else:
                paid_before = paid_left(appointment)
                if request.form.get("confirm") != "yes":
                    return redirect(url_for(".cancel_form", appointment=str(appointment.id), day=day_raw))
                choice = request.form.get("refund") or None  # none posted: the service's rule
                amount = parse_amount(request.form.get("amount", "")) if choice == "amount" else None
                if request.form.get("scope") == "following" and appointment.series:  # issue 28
                    done = cancel_following_at_desk(appointment, now, request.form.get("reason", "")[:500],
                                                    staff_actor(), refund=choice, amount=amount, **audited)
                    refunded = sum(r for _, r, _ in done)
                    message = f"Cancelled {label} and the {len(done) - 1} later visits of the series."
                    if refunded:
                        message += f" Refunds of {money(refunded, appointment.currency)} in all"
                        message += (" requested; Stripe has not confirmed them all yet." if any(p for *_, p in done)
                                    else " made.")
                    elif choice == "none" and paid_before:
                        message += " No refund given."
                    flash(message, "success")
                    return redirect(url_for(".index", day=day_raw))
                _, refunded, pending = cancel_at_desk(appointment, now, request.form.get("reason", ""),
                                                      staff_actor(), refund=choice, amount=amount, **audited)
                message = f"Cancelled {label}."
                if refunded and pending:
                    message += (f" Refund of {money(refunded, appointment.currency)} requested; Stripe has not "
                                "confirmed it yet (the home page lists it until it does).")
                elif refunded:
                    message += f" Refund of {money(refunded, appointment.currency)} made."
                elif choice == "none" and paid_before:
                    message += " No refund given."
        except DomainError as exc:
            if op == "cancel":
                return self._render_cancel(appointment, self._day(day_raw), error=exc.message,
                                           fields=getattr(exc, "fields", None), status_code=status_of(exc))
            flash(exc.message, "error")
            return redirect(url_for(".index", day=day_raw))
        if op in DONE:
            message = f"{DONE[op]} {label}."
            if op in UNDO:
                undo = f"{UNDO[op]}:{appointment.id}"
        flash(message, "success")
        return redirect(url_for(".index", day=day_raw, undo=undo) + f"#appt-{appointment.id}")

    # --- booking ---------------------------------------------------------------------------------

    def _booking_values(self, source):
        """The booking form's values from a query string or a posted form (they survive re-renders)."""
        tz = clinic_zone()
        now = utcnow()
        values = {k: (source.get(k, "") or "").strip()[:200] for k in (
            "day", "provider", "service", "q", "patient", "name", "phone", "email",
            "date_of_birth", "override_reason", "confirm_new", "every_weeks", "count")}
        # A "Choose 10:15" button posts a second `time` after the field's own: the last one wins.
        times = [t for t in source.getlist("time") if t] if hasattr(source, "getlist") else [source.get("time", "")]
        values["time"] = (times[-1] if times else "").strip()[:5]
        values["override"] = source.get("override") == "yes"
        # Intake answers (issue 28), fields answer-<question id>: checked by the booking action.
        values["answers"] = {k[len("answer-"):]: (source.get(k) or "")[:2100] for k in source.keys()
                             if k.startswith("answer-")}
        # `walkin_done`: a walk-in form sent again (Find, Show free times, a refused Book) stays a
        # walk-in, with the day and time it was given.
        values["walkin"] = bool(source.get("walkin_done"))
        if source.get("walkin"):
            local_now = clock.local(now, tz)
            values["day"] = local_now.date().isoformat()
            # The time input's value (HH:MM, a form value, not display), rounded down to five minutes.
            values["time"] = f"{local_now.hour:02d}:{local_now.minute - local_now.minute % 5:02d}"
            values["walkin"] = True
            if not values["provider"]:
                # Preselect whoever is working and free right now.
                free = free_now(tz, self._providers(), now)
                values["provider"] = str(free.id) if free else ""
        if not values["day"]:
            values["day"] = clock.local_today(tz, now).isoformat()
        if values["service"]:
            # Remembered for the next free time clicked in the day grid (its link names no service).
            session[DESK_SERVICE] = values["service"][:24]
        return values

    def _render_booking(self, values, error=None, status=200, fields=None, duplicates=None):
        day = self._day(values["day"])
        catalog = current_catalog()
        services = sorted((s for s in catalog.services.values() if s.active), key=lambda s: s.name)
        everyone = self._providers()
        found = frontdesk.find_patients(values["q"]) if values["q"] else []
        chosen = None
        if ObjectId.is_valid(values["patient"]):
            chosen = Patient.objects(id=values["patient"], active=True).first()
        if values["q"]:
            audit(staff_actor(), "Patient.search", record="Patient", outcome=f"found:{len(found)}")
        slots = []
        if values["service"] and values["provider"] and request.values.get("show_times"):
            try:
                service = rules.get_service(values["service"])
                provider = rules.get_provider_for(service, values["provider"])
                slots = [s for s, _, _ in rules.find_slots(service, [provider], Clinic.get(), day, 1, utcnow())]
            except DomainError as exc:
                error = error or exc.message
        # A free gap clicked in a provider's column: preselect the service this desk chose last when
        # that provider offers it, else the first they offer.
        picked = values["service"]
        chosen_provider = next((p for p in everyone if str(p.id) == values["provider"]), None)
        if not picked:
            offered = ({str(getattr(s, "id", s)) for s in chosen_provider.services} if chosen_provider is not None
                       else {str(s.id) for s in services})
            last = session.get(DESK_SERVICE, "")
            picked = last if last in offered and any(str(s.id) == last for s in services) else next(
                (str(s.id) for s in services if str(s.id) in offered), "")
        picked = picked or (str(services[0].id) if services else "")
        # Issue 26: only the clinicians who offer the chosen service are listed (the page's script
        # narrows the list again when another service is chosen; without it, "Show free times" does).
        offers = {str(p.id): [str(getattr(s, "id", s)) for s in p.services] for p in everyone}
        providers = [p for p in everyone if not picked or picked in offers[str(p.id)]]
        now = utcnow()
        cards = frontdesk.patient_cards(([chosen] if chosen else []) + [p for p in found if not chosen or p.id != chosen.id],
                                        now)
        return self.render("admin_clinic/book.html", v=values, services=services, providers=providers,
                           everyone=everyone, offers=offers, picked_service=picked, cards=cards,
                           duplicates=frontdesk.patient_cards(duplicates, now) if duplicates else [],
                           found=found, chosen=chosen, error=error, fields=fields or {}, slots=slots,
                           **self._common(day)), status

    @expose("/new", methods=("GET", "POST"))
    def new(self):
        """The booking form: find or add the patient, pick service, provider, day and time."""
        if staff_role() not in FRONT_DESK:
            abort(403, "Your role cannot book appointments.")
        return self._render_booking(self._booking_values(request.values))

    def _new_caller_duplicates(self, values):
        """Patients a new caller may already be (issue 26): checked until staff say "a new patient"."""
        if ObjectId.is_valid(values["patient"]) or "@" in values["patient"] or values["confirm_new"] == "yes":
            return []
        if not values["name"] and not values["phone"]:
            return []
        return frontdesk.possible_duplicates(values["name"], values["phone"], values["email"],
                                             values["date_of_birth"])

    DUPLICATE_WARNING = ("This caller may already be a patient: choose them below, or tick “None of these: "
                         "a new patient” to add a new record.")

    @expose("/review", methods=("POST",))
    def review(self):
        """The booking as it would be made (a free time was chosen): one more click books it."""
        if staff_role() not in FRONT_DESK:
            abort(403, "Your role cannot book appointments.")
        values = self._booking_values(request.form)
        try:
            start = self._parse_start(values)
            patient = self._existing_patient(values)
            service = rules.get_service(values["service"])
            provider = rules.get_provider_for(service, values["provider"])
        except DomainError as exc:
            return self._render_booking(values, error=exc.message, status=status_of(exc),
                                        fields=getattr(exc, "fields", None))
        duplicates = [] if patient is not None else self._new_caller_duplicates(values)
        if duplicates:
            return self._render_booking(values, error=self.DUPLICATE_WARNING, status=409, duplicates=duplicates)
        return self.render("admin_clinic/book_review.html", v=values, patient=patient, service=service,
                           provider=provider, start=start, keys=BOOKING_KEYS, **self._common(self._day(values["day"])))

    @expose("/book", methods=("POST",))
    def book(self):
        """Book a patient (found, or a new caller added inline) into a time; staff rules apply.

        A conflict is not booked over from the main form: it opens a separate step that asks for
        the override's reason (issue 26). A new caller who looks like a known patient is asked about.
        """
        if staff_role() not in FRONT_DESK:
            abort(403, "Your role cannot book appointments.")
        values = self._booking_values(request.form)
        try:
            start = self._parse_start(values)
            reason = values["override_reason"]
            if values["override"] and not reason:
                raise ValidationFailed("An override needs a reason.", fields={"override_reason": "required"})
            notes = f"Override: {reason[:500]}" if values["override"] else ""
            booked = []

            repeat = _repeat(request.form)  # recurring series (issue 28)

            def book_for(patient, also=()):
                # The action audits itself: its conflicts as "refused:<code>", its success event
                # (and an override's, and a new caller's "patient.create" in `also`) written with the booking.
                if repeat:
                    # `instead`: the nearest free times staff picked for dates that were not free.
                    _series_id, visits = series.book_series(
                        patient, values["service"], values["provider"], start, utcnow(), *repeat,
                        instead=_instead(request.form), answers=values["answers"],
                        booked_by=staff_actor(), pay_online=False, override=values["override"], notes=notes,
                        by_staff=True, audit_as=staff_actor(), audit=[audit_event(staff_actor(), "series.book"), *also])
                    booked.extend(visits)
                    return visits[0]
                return create.book(patient, values["service"], values["provider"], start, utcnow(),
                                    booked_by=staff_actor(), pay_online=False, override=values["override"],
                                    by_staff=True, notes=notes, audit_as=staff_actor(),
                                    audit=[audit_event(staff_actor(), "appointment.book"), *also],
                                    answers=values["answers"])

            patient = self._existing_patient(values)
            if patient is not None:
                appointment = book_for(patient)
            else:
                duplicates = self._new_caller_duplicates(values)
                if duplicates:
                    return self._render_booking(values, error=self.DUPLICATE_WARNING, status=409,
                                                duplicates=duplicates)
                # A new caller is saved only with their booking: a refused time leaves no record.
                patient, appointment = frontdesk.book_new_caller(
                    values["name"], values["phone"], values["email"], values["date_of_birth"], book_for,
                    audit=audit_event(staff_actor(), "patient.create"))
        except SeriesUnavailable as exc:
            # Issue 28: the dates not free, each with its nearest free times to pick; then the whole set.
            dates, kept = series.alternative_choices(exc.details, _instead(request.form), clinic_zone())
            return self.render("admin_clinic/book_series_conflict.html", v=values, error=exc.message,
                               keys=BOOKING_KEYS, dates=dates, kept=kept, repeat=_repeat(request.form),
                               bookable=all(d["choices"] for d in dates),
                               **self._common(self._day(values["day"]))), status_of(exc)
        except DomainError as exc:
            fields = getattr(exc, "fields", None) or {}
            if (status_of(exc) == 409 and exc.code != "email_taken") or "override_reason" in fields:
                # The separate confirm step: what conflicts, and the reason to book over it.
                return self.render("admin_clinic/book_override.html", v=values, error=exc.message,
                                   keys=BOOKING_KEYS, reason_missing="override_reason" in fields,
                                   **self._common(self._day(values["day"]))), status_of(exc)
            return self._render_booking(values, error=exc.message, status=status_of(exc), fields=fields)
        message = (f"Booked {patient.name} for {appointment.service.name} with {appointment.provider.name}, "
                   f"{formatting.human_time(appointment.start, clinic_zone())}.")
        if len(booked) > 1:
            # "At the same time" only when it is true: an alternative accepted for a taken date moves one.
            tz = clinic_zone()
            same = len({formatting.clock_time(clock.local(v.start, tz)) for v in booked}) == 1
            message = message.rstrip(".") + f", and {len(booked) - 1} more visits" + (
                " at the same time" if same else "") + ": " + ", ".join(
                formatting.human_time(v.start, tz) for v in booked[1:]) + "."
        if appointment.amount:
            each = " a visit" if len(booked) > 1 else ""
            message += f" {money(appointment.amount, appointment.currency)}{each} to pay at the desk."
        flash(message, "success")
        day = clock.local(appointment.start, clinic_zone()).date()
        return redirect(url_for(".index", day=day.isoformat()) + f"#appt-{appointment.id}")

    def _existing_patient(self, values):
        """The chosen patient, or one found by email (older forms); None for a new caller."""
        if ObjectId.is_valid(values["patient"]):
            patient = Patient.objects(id=values["patient"], active=True).first()
            if patient is None:
                raise ValidationFailed("That patient is no longer active.", fields={"patient": "inactive"})
            return patient
        if "@" in values["patient"]:
            patient = Patient.objects(email=normalise_email(values["patient"]), active=True).first()
            if patient is None:
                raise ValidationFailed("No active patient has that email.", fields={"patient": "unknown"})
            return patient
        if not values["name"] and not values["phone"]:
            raise ValidationFailed("Choose a patient, or give a new caller's name and phone.",
                                   fields={"name": "required", "phone": "required"})
        return None

    def _parse_start(self, values):
        raw = request.form.get("start", "")
        if raw:
            try:
                value = datetime.fromisoformat(raw)
                if value.tzinfo is not None:
                    return value
            except ValueError:
                pass
        try:
            local = datetime.combine(date.fromisoformat(values["day"]), time.fromisoformat(values["time"]))
        except ValueError:
            raise ValidationFailed("Give the date and the time as HH:MM.", fields={"time": "invalid"}) from None
        # Not .replace(tzinfo=…): a time the clocks skip or repeat resolves as the booking rules say.
        return clock.from_local(local, clinic_zone())


def _repeat(form):
    """The booking form's (every_weeks, count) for a series (issue 28), or None for one visit."""
    every, count = form.get("every_weeks", "0"), form.get("count", "")
    if every in ("", "0"):
        return None
    whole = [int(v) if v.isascii() and v.isdigit() and len(v) < 4 else None for v in (every, count)]
    return tuple(whole)


def _told_new_time(patient):
    """How the moved patient hears of it, in the flash: by the channels their messages really use."""
    from models.accounts.documents import patient_channels

    guardian = getattr(patient, "guardian", None)  # a dependant's messages go to the account holder
    channels = {c for c, _address in patient_channels(guardian or patient)}
    if channels == {"email", "sms"}:
        return "They are emailed and texted the new time."
    if channels == {"sms"}:
        return "They are texted the new time."
    if channels == {"email"}:
        return "They are emailed the new time."
    return "They have no email or mobile number on file: please tell them the new time."


def _instead(form):
    """The alternatives picked for a series' dates that were not free: `instead:<regular start>` → chosen start.

    Unreadable values are dropped: the date is then refused again and offered again.
    """
    picked = {}
    for key, value in form.items():
        if not key.startswith("instead:") or not value:
            continue
        try:
            regular, chosen = datetime.fromisoformat(key[len("instead:"):]), datetime.fromisoformat(value)
        except ValueError:
            continue
        if regular.tzinfo is not None and chosen.tzinfo is not None:
            picked[regular] = chosen
    return picked
