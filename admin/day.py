"""The reception day view: each provider's appointments side by side, with the day's actions,
and staff booking through the same booking rule as the portal."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin.base import StaffAccessMixin, clinic_zone, staff_actor, staff_role
from clinic.audit import audit
from models import booking, frontdesk
from models.accounts import normalise_email
from models.catalog import current_catalog
from models.documents import Appointment, Clinic, Patient, Payment, Service, utcnow
from models.errors import DomainError, ValidationFailed

ACTIONS = {"check_in": ("admin", "reception", "provider"), "no_show": ("admin", "reception", "provider"),
           "cancel": ("admin", "reception")}


class DayView(StaffAccessMixin, BaseView):
    """One day of the clinic: appointments per provider, actions, and booking for a patient."""

    read_roles = ("admin", "reception", "provider")

    def _day(self):
        raw = request.values.get("day", "")
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return booking.local_today(clinic_zone(), utcnow())

    def _providers(self):
        if staff_role() == "provider":
            return [current_user.provider] if current_user.provider else []
        return sorted(current_catalog().providers.values(), key=lambda p: p.name)

    @expose("/")
    def index(self):
        """Show the day's columns and the booking form."""
        clinic = Clinic.get()
        tz = clinic_zone()
        zone = ZoneInfo(tz)
        day = self._day()
        providers = self._providers()
        start = datetime.combine(day, time(0), zone)
        end = datetime.combine(day + timedelta(days=1), time(0), zone)
        appts = list(Appointment.objects(provider__in=[p.id for p in providers], start__gte=start,
                                         start__lt=end).order_by("start").select_related(max_depth=1))
        payments = {p.appointment.id: p for p in
                    Payment.objects(appointment__in=[a.id for a in appts]).no_dereference()}
        columns = [(p, [a for a in appts if a.provider.id == p.id]) for p in providers]
        audit(staff_actor(), "Appointment.day_view", record=f"day:{day.isoformat()}")
        services = list(Service.objects(active=True).order_by("name"))
        # Free times for the booking form, when a service and provider are chosen.
        slots = []
        service_id, provider_id = request.args.get("service", ""), request.args.get("provider", "")
        if service_id and provider_id and staff_role() in ("admin", "reception"):
            try:
                service = booking.get_service(service_id)
                provider = booking.get_provider_for(service, provider_id)
                slots = [(s, e) for s, e, _ in booking.find_slots(service, [provider], clinic, day, 1, utcnow())]
            except DomainError as exc:
                flash(exc.message, "error")
        return self.render(
            "admin_clinic/day.html", day=day, tz=tz, columns=columns, payments=payments,
            prev_day=day - timedelta(days=1), next_day=day + timedelta(days=1), services=services,
            all_providers=providers, slots=slots, service_id=service_id, provider_id=provider_id,
            zone=zone, human_time=booking.human_time, effective_status=booking.effective_status,
            now=utcnow(), can_book=staff_role() in ("admin", "reception"), actions=ACTIONS,
            role=staff_role(), patient_email=request.args.get("patient", ""))

    @expose("/act", methods=("POST",))
    def act(self):
        """Check in, mark no-show or cancel one appointment (role-checked on the server)."""
        op = request.form.get("op", "")
        if staff_role() not in ACTIONS.get(op, ()):
            abort(403, "Your role cannot do that.")
        appointment_id = request.form.get("appointment", "")
        query = Appointment.objects(id=appointment_id) if len(appointment_id) == 24 else Appointment.objects.none()
        if staff_role() == "provider":
            query = query.filter(provider=current_user.provider.id if current_user.provider else None)
        appointment = query.first()
        if appointment is None:
            abort(404, "That appointment does not exist.")
        now = utcnow()
        try:
            if op == "check_in":
                frontdesk.check_in(appointment, now, clinic_zone())
            elif op == "no_show":
                frontdesk.mark_no_show(appointment, now)
            else:
                booking.cancel(appointment, now, reason=f"cancelled by {staff_actor()}", by_staff=True,
                               actor=staff_actor())
        except DomainError as exc:
            audit(staff_actor(), f"appointment.{op}", record=f"Appointment:{appointment.id}",
                  outcome=f"refused:{exc.code}")
            flash(exc.message, "error")
        else:
            audit(staff_actor(), f"appointment.{op}", record=f"Appointment:{appointment.id}")
            flash(f"{appointment.patient.name}: {op.replace('_', ' ')} done.", "success")
        return redirect(url_for(".index", day=request.form.get("day", "")))

    @expose("/book", methods=("POST",))
    def book(self):
        """Book a patient into a time; a conflict is refused unless staff explicitly override."""
        if staff_role() not in ("admin", "reception"):
            abort(403, "Your role cannot book appointments.")
        form = request.form
        day = form.get("day", "")
        back = url_for(".index", day=day, service=form.get("service", ""), provider=form.get("provider", ""),
                       patient=form.get("patient", ""))
        override = form.get("override") == "yes"
        try:
            email = normalise_email(form.get("patient", ""))
            patient = Patient.objects(email=email, active=True).first()
            if patient is None:
                raise ValidationFailed("No active patient has that email; register them first.")
            start = self._parse_start(form, day)
            reason = form.get("override_reason", "").strip()
            if override and not reason:
                raise ValidationFailed("An override needs a reason.")
            appointment = booking.book(patient, form.get("service", ""), form.get("provider", ""), start,
                                       utcnow(), booked_by=staff_actor(), pay_online=False,
                                       override=override)
        except DomainError as exc:
            audit(staff_actor(), "appointment.book", record=f"Provider:{form.get('provider', '')[:24]}",
                  outcome=f"refused:{exc.code}")
            hint = " Tick “Book over the conflict” with a reason to override." if exc.status == 409 else ""
            flash(exc.message + hint, "error")
            return redirect(back)
        if override:
            Appointment.objects(id=appointment.id).update_one(set__notes=f"Override: {reason[:500]}")
            audit(staff_actor(), "appointment.override", record=f"Appointment:{appointment.id}")
        audit(staff_actor(), "appointment.book", record=f"Appointment:{appointment.id}")
        flash(f"Booked {patient.name}, {booking.human_time(appointment.start, clinic_zone())}.", "success")
        return redirect(url_for(".index", day=day))

    def _parse_start(self, form, day):
        raw = form.get("start", "")
        if raw:
            try:
                value = datetime.fromisoformat(raw)
                if value.tzinfo is not None:
                    return value
            except ValueError:
                pass
        hhmm = form.get("time", "")
        try:
            local = datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm))
        except ValueError:
            raise ValidationFailed("Give the time as HH:MM.") from None
        return local.replace(tzinfo=ZoneInfo(clinic_zone()))
