"""The back office's model views, configured declaratively; operations call the domain rules."""

import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import flash
from flask_admin.actions import action
from wtforms import PasswordField
from wtforms.validators import Optional

from admin.base import SecureModelView, clinic_zone, local_formatter, staff_actor
from clinic.audit import audit
from models import booking, frontdesk
from models.accounts import hash_password, normalise_email, validate_password
from models.documents import Payment, Patient, utcnow
from models.errors import DomainError

FRONT_DESK = ("admin", "reception")
EVERYONE = ("admin", "reception", "provider")


class ClinicView(SecureModelView):
    """Clinic settings: timezone, currency, hold length and default policies (admin only)."""

    read_roles = ("admin",)
    allow_create = False
    column_list = ("name", "timezone", "currency", "hold_minutes", "slot_step_minutes",
                   "default_cancellation_hours", "phone", "max_held", "max_upcoming")


class StaffUserView(SecureModelView):
    """Staff accounts and roles (admin only); passwords are set here, never shown."""

    read_roles = ("admin",)
    column_list = ("email", "name", "role", "provider", "active", "created_at")
    column_filters = ("role", "active")
    column_searchable_list = ("email", "name")
    column_default_sort = "email"
    form_excluded_columns = ("password_hash", "session_version", "created_at")
    form_extra_fields = {"password": PasswordField("New password", validators=[Optional()])}
    column_formatters = {"created_at": local_formatter("created_at")}

    def on_model_change(self, form, model, is_created):
        """Normalise the email, hash a new password, and end sessions when access changes."""
        model.email = normalise_email(model.email)
        if form.password.data:
            validate_password(form.password.data, email=model.email, name=model.name)
            model.password_hash = hash_password(form.password.data)
        elif is_created:
            raise DomainError("A new staff user needs a password.")
        if not is_created:
            model.session_version = (model.session_version or 0) + 1
        super().on_model_change(form, model, is_created)

    def after_model_change(self, form, model, is_created):
        audit(staff_actor(), "staff_user.create" if is_created else "staff_user.update",
              record=f"StaffUser:{model.id}")


class ProviderView(SecureModelView):
    """Providers and the services they offer."""

    read_roles = FRONT_DESK
    column_list = ("name", "email", "services", "active")
    column_filters = ("active",)
    column_searchable_list = ("name", "email")
    column_default_sort = "name"


class ServiceView(SecureModelView):
    """Services with their booking policy."""

    read_roles = FRONT_DESK
    column_list = ("name", "duration_minutes", "price", "currency", "buffer_before_minutes",
                   "buffer_after_minutes", "min_notice_minutes", "horizon_days",
                   "cancellation_window_hours", "refund_rule", "active")
    column_filters = ("active", "refund_rule")
    column_searchable_list = ("name",)
    column_default_sort = "name"
    column_labels = {"price": "Price (minor units)"}


class ScheduleView(SecureModelView):
    """Weekly hours with breaks, as local times of day (HH:MM) in the clinic's zone."""

    read_roles = EVERYONE
    write_roles = ("admin", "provider")
    provider_field = "provider"
    column_list = ("provider", "days")
    column_formatters = {"days": lambda v, c, m, n: "; ".join(
        f"{'Mon Tue Wed Thu Fri Sat Sun'.split()[d.weekday]} {d.start}-{d.end}"
        + (f" (breaks {', '.join(f'{b.start}-{b.end}' for b in d.breaks)})" if d.breaks else "")
        for d in sorted(m.days or [], key=lambda d: d.weekday))}
    column_descriptions = {"days": "Weekday 0 = Monday … 6 = Sunday; times are HH:MM local time."}


def _to_utc_from_local(value):
    """A naive form datetime is local clinic time; store it as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(clinic_zone()))
    return value.astimezone(ZoneInfo("UTC"))


class TimeOffView(SecureModelView):
    """Providers' time off; times are entered and shown in the clinic's zone."""

    read_roles = EVERYONE
    write_roles = EVERYONE
    provider_field = "provider"
    column_list = ("provider", "start", "end", "reason")
    column_default_sort = ("start", True)
    column_filters = ("provider", "start")
    column_formatters = {"start": local_formatter("start"), "end": local_formatter("end")}
    column_descriptions = {"start": "Local clinic time", "end": "Local clinic time"}

    def on_form_prefill(self, form, id):
        """Show stored UTC instants as local clinic time in the form."""
        zone = ZoneInfo(clinic_zone())
        for field in (form.start, form.end):
            if isinstance(field.data, datetime) and field.data.tzinfo is not None:
                field.data = field.data.astimezone(zone).replace(tzinfo=None)

    def on_model_change(self, form, model, is_created):
        model.start = _to_utc_from_local(model.start)
        model.end = _to_utc_from_local(model.end)
        if model.end <= model.start:
            raise DomainError("Time off must end after it starts.")
        super().on_model_change(form, model, is_created)


def payment_state(view, context, model, name):
    """The payment state of an appointment, from the page's bulk-loaded payments."""
    payments = getattr(view, "_page_payments", {})
    payment = payments.get(model.id)
    if payment is not None:
        return payment.status
    return "free" if not model.amount else ("at desk" if model.booked_by.startswith("staff") else "none")


class AppointmentView(SecureModelView):
    """Appointments: filter, search, export; cancel (with refund), check in, no-show as actions."""

    read_roles = EVERYONE
    allow_create = False  # staff book from the day view, through the booking rule
    allow_edit = False
    export_roles = FRONT_DESK
    audit_reads = True
    provider_field = "provider"
    column_list = ("start", "patient", "provider", "service", "status", "payment", "amount", "override")
    column_details_list = ("start", "end", "patient", "provider", "service", "status", "payment",
                           "hold_expires_at", "amount", "currency", "booked_by", "override",
                           "cancel_reason", "notes", "created_at")
    column_export_list = ("start", "patient", "provider", "service", "status", "amount", "currency")
    column_filters = ("status", "start", "provider", "service", "override")
    column_default_sort = ("start", True)
    column_formatters = {"start": local_formatter("start"), "end": local_formatter("end"),
                         "hold_expires_at": local_formatter("hold_expires_at"),
                         "created_at": local_formatter("created_at"), "payment": payment_state}
    column_formatters_export = {"start": lambda v, c, m, n: booking.local_iso(m.start, clinic_zone())}
    action_roles = {"cancel": FRONT_DESK, "check_in": EVERYONE, "no_show": EVERYONE}

    def after_list_loaded(self, rows):
        """One query for the payments of the whole page."""
        ids = [row.id for row in rows]
        self._page_payments = {p.appointment.id: p for p in Payment.objects(appointment__in=ids).no_dereference()}

    def _apply(self, ids, operation, verb):
        done, failed = 0, []
        now = utcnow()
        for appointment in self.get_query().filter(id__in=ids):
            try:
                operation(appointment, now)
            except DomainError as exc:
                failed.append(exc.message)
                audit(staff_actor(), f"appointment.{verb}", record=f"Appointment:{appointment.id}",
                      outcome=f"refused:{exc.code}")
            else:
                done += 1
                audit(staff_actor(), f"appointment.{verb}", record=f"Appointment:{appointment.id}")
        if done:
            flash(f"{done} appointment(s): {verb.replace('_', ' ')} done.", "success")
        for message in sorted(set(failed)):
            flash(message, "error")

    @action("cancel", "Cancel (refund when paid)", "Cancel the selected appointments?")
    def action_cancel(self, ids):
        """Cancel as staff: any time, with a refund when paid."""
        self._apply(ids, lambda a, now: booking.cancel(a, now, reason=f"cancelled by {staff_actor()}",
                                                       by_staff=True, actor=staff_actor()), "cancel")

    @action("check_in", "Check in")
    def action_check_in(self, ids):
        """Mark today's confirmed appointments as arrived."""
        self._apply(ids, lambda a, now: frontdesk.check_in(a, now, clinic_zone()), "check_in")

    @action("no_show", "Mark as no-show")
    def action_no_show(self, ids):
        """Mark confirmed appointments that have started as no-shows."""
        self._apply(ids, frontdesk.mark_no_show, "no_show")


class PatientView(SecureModelView):
    """Patients: search and edit contact details; deactivate, never delete."""

    read_roles = FRONT_DESK
    write_roles = FRONT_DESK
    audit_reads = True
    column_list = ("name", "email", "phone", "active", "created_at")
    column_searchable_list = ("name", "email", "phone")
    column_filters = ("active",)
    column_default_sort = "name"
    form_columns = ("name", "email", "phone", "active")
    column_formatters = {"created_at": local_formatter("created_at")}
    action_roles = {"deactivate": FRONT_DESK}

    def on_model_change(self, form, model, is_created):
        """Normalise the email; a patient created by staff gets an unusable password until reset."""
        model.email = normalise_email(model.email)
        if is_created:
            model.password_hash = hash_password(secrets.token_urlsafe(32))
        if not model.active:
            model.token_generation = (model.token_generation or 0) + 1
        super().on_model_change(form, model, is_created)

    def after_model_change(self, form, model, is_created):
        audit(staff_actor(), "patient.create" if is_created else "patient.update", record=f"Patient:{model.id}")

    @action("deactivate", "Deactivate", "Deactivate the selected patients? They will be signed out.")
    def action_deactivate(self, ids):
        """Deactivate patients: they can no longer sign in and their sessions end."""
        for patient in Patient.objects(id__in=ids):
            Patient.objects(id=patient.id).update_one(set__active=False, inc__token_generation=1)
            audit(staff_actor(), "patient.deactivate", record=f"Patient:{patient.id}")
        flash(f"{len(ids)} patient(s) deactivated.", "success")


class PaymentView(SecureModelView):
    """The payments ledger (read-only)."""

    read_roles = FRONT_DESK
    write_roles = ()
    export_roles = FRONT_DESK
    audit_reads = True
    column_list = ("created_at", "patient", "appointment", "amount", "currency", "status",
                   "amount_refunded", "flow", "stripe_payment_intent", "flag")
    column_filters = ("status", "flow", "created_at")
    column_searchable_list = ("stripe_payment_intent", "stripe_checkout_session")
    column_default_sort = ("created_at", True)
    column_formatters = {"created_at": local_formatter("created_at"),
                         "appointment": lambda v, c, m, n: str(m.appointment.id) if m.appointment else ""}


class StripeEventView(SecureModelView):
    """Stripe events as received (read-only), with a re-sync action."""

    read_roles = FRONT_DESK
    write_roles = ()
    column_list = ("received_at", "type", "event_id", "object_id", "outcome", "processed_at")
    column_filters = ("type", "outcome")
    column_searchable_list = ("event_id", "object_id")
    column_default_sort = ("received_at", True)
    column_formatters = {"received_at": local_formatter("received_at"),
                         "processed_at": local_formatter("processed_at")}
    action_roles = {"resync": FRONT_DESK}

    @action("resync", "Re-sync from Stripe")
    def action_resync(self, ids):
        """Fetch each event's object from Stripe again and apply it (`payments.resync_object`)."""
        from models.documents import StripeEvent
        from models.payments import resync_object

        actor, done = staff_actor(), 0
        for event in self.get_query().filter(id__in=ids):
            record = f"StripeEvent:{event.id}"
            try:
                outcome = resync_object(event.object_id, actor=actor)
            except DomainError as exc:
                flash(exc.message, "error")
                audit(actor, "stripe_event.resync", record=record, outcome=f"refused:{exc.code}")
                continue
            done += 1
            StripeEvent.objects(id=event.id, processed_at=None).update_one(set__processed_at=utcnow())
            StripeEvent.objects(id=event.id).update_one(set__outcome=f"resynced: {outcome}"[:200])
            audit(actor, "stripe_event.resync", record=record, outcome=outcome)
        if done:
            flash(f"{done} event(s) re-synced from Stripe.", "success")


class AuditEventView(SecureModelView):
    """The audit trail (read-only, admin only)."""

    read_roles = ("admin",)
    write_roles = ()
    column_list = ("at", "actor", "action", "record", "outcome", "ip", "request_id")
    column_filters = ("action", "outcome", "actor", "at")
    column_searchable_list = ("actor", "action", "record", "request_id")
    column_default_sort = ("at", True)
    column_formatters = {"at": local_formatter("at")}
