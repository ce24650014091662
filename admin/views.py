"""The back office's model views, configured declaratively; operations call the domain rules."""

import logging
from datetime import datetime

from bson import ObjectId
from bson.errors import InvalidId
from flask import current_app, flash, g, redirect, request, url_for
from flask_admin import expose
from markupsafe import Markup
from flask_admin.actions import action
from flask_admin.helpers import get_form_data, get_redirect_target
from flask_login import current_user
from mongoengine.errors import NotUniqueError
from mongoengine.errors import ValidationError as MongoValidationError
from flask_admin.contrib.mongoengine.filters import BaseMongoEngineFilter
from mongoengine.queryset.visitor import Q
from wtforms import PasswordField, SelectField, StringField
from wtforms import validators as wtf_validators
from wtforms.validators import Optional

from admin.base import SecureModelView, clinic_zone, local_formatter, staff_actor, staff_role
from admin.fields import (
    ClinicEmailField,
    LocalDateTimeField,
    HoursListField,
    MoneyField,
    NameField,
    appointment_text,
    code_words,
    link,
    money_formatter,
    names_formatter,
    phone_formatter,
    to_local_naive,
    words,
    words_formatter,
)
from admin.merge import PatientMergeMixin
from admin.patients import PatientListMixin, birth_formatter, email_words, last_visit_formatter, next_visit_formatter
from admin.roles import ADMIN_ONLY, EVERYONE, FRONT_DESK, SCHEDULE_CREATORS, SCHEDULE_EDITORS
from admin.schedule import WEEKDAYS, ScheduleForm, apply_row_buttons, prefill, validate_schedule, week_preview
from web.audit import audit, audit_event
from models.booking.cancellation import cancel
from models.payments.fees import no_show, refund_fee
from models import clock
from models import formatting
from models.booking import frontdesk
from models.accounts import hash_password, normalise_email, validate_password
from models.accounts.contact import CHOICES, UNSET, channels_of, contact_choice, update_contact
from models.accounts.documents import NO_EMAIL_DOMAIN, deliverable
from models.accounts.patients import create_by_staff, deactivate
from models.accounts.users import clean_birth_date
from models.documents import Appointment, Payment, Patient, Provider, Schedule, StaffUser, utcnow
from models.payments.documents import UPFRONT_KINDS
from models.errors import DomainError, ValidationFailed
from models.feeds import feed_status, make_feed, revoke_feed
from models.glance import dispute_words
from models.catalog.questions import answer_text
from models.formatting import money, plain_amount

log = logging.getLogger(__name__)


class ClinicView(SecureModelView):
    """Clinic settings: timezone, currency, hold length and default policies (admin only)."""

    read_roles = ADMIN_ONLY
    allow_create = False
    record_noun = "clinic"
    column_list = ("name", "timezone", "currency", "hold_minutes", "slot_step_minutes",
                   "default_cancellation_hours", "phone", "max_held", "max_upcoming")
    column_labels = {"timezone": "Time zone", "hold_minutes": "Unpaid hold (minutes)",
                     "slot_step_minutes": "Time step (minutes)",
                     "default_cancellation_hours": "Cancellation window (hours)",
                     "max_held": "Unpaid holds per patient", "max_upcoming": "Upcoming bookings per patient",
                     "feed_shows_names": "Patients' names in clinicians' calendar feeds"}
    column_descriptions = {"feed_shows_names": "Off: feed events show the service and the patient's initials only.",
                           "timezone": "An IANA zone such as Europe/London; schedules are in this zone.",
                           "currency": "Three-letter code in lower case, e.g. gbp."}
    column_formatters = {"currency": lambda v, c, m, n: (m.currency or "").upper(), "phone": phone_formatter}
    form_overrides = {"currency": StringField, "timezone": StringField, "name": NameField}


class StaffUserView(SecureModelView):
    """Staff accounts and roles (admin only); passwords are set here, never shown."""

    read_roles = ADMIN_ONLY
    empty_list_message = "No staff yet."
    empty_create_hint = "Add a colleague with Create."
    record_noun = "staff user"
    column_list = ("email", "name", "role", "provider", "active", "created_at")
    column_details_list = ("email", "name", "role", "provider", "active", "created_at")
    column_labels = {"provider": "Provider (for the provider role)", "created_at": "Created"}
    column_filters = ("role", "active")
    column_searchable_list = ("email", "name")
    column_default_sort = "email"
    form_excluded_columns = ("password_hash", "session_version", "created_at")
    form_extra_fields = {"password": PasswordField("New password", validators=[Optional()])}
    form_overrides = {"name": NameField}
    column_formatters = {"created_at": local_formatter("created_at"), "role": words("role")}

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
    empty_list_message = "No clinicians yet: nobody can be booked until a clinician is added."
    empty_create_hint = "Add one with Create, then set their weekly hours under Clinic › Schedules."
    record_noun = "provider"
    column_list = ("name", "email", "services", "active", "hours", "feed")
    column_filters = ("active",)
    column_searchable_list = ("name", "email")
    column_default_sort = "name"
    column_labels = {"hours": "Weekly hours", "feed": "Calendar feed"}
    column_formatters = {"services": names_formatter, "hours": lambda v, c, m, n: hours_link(m),
                         "feed": lambda v, c, m, n: feed_words(m)}
    # Calendar feeds (issue 29): admins make a clinician's secret link (shown once) or revoke it.
    action_roles = {"make_feed": ADMIN_ONLY, "revoke_feed": ADMIN_ONLY}

    def after_list_loaded(self, rows):
        """Which providers of the page have weekly hours, and a calendar feed, in one query each."""
        g.page_schedules = {s.provider.id: s.id for s in
                            Schedule.objects(provider__in=[r.id for r in rows]).only("id", "provider").no_dereference()}
        g.page_feeds = feed_status(r.id for r in rows)

    @action("make_feed", "Make a new calendar feed link",
            "Make a new calendar feed link? The clinician's old link stops working.")
    def action_make_feed(self, ids):
        """Make each selected clinician a new secret feed link and show it once."""
        base = (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")
        for provider in Provider.objects(id__in=ids).only("id", "name"):
            token = make_feed(provider.id, by=staff_actor(), audit_as=staff_actor())
            flash(f"Calendar feed for {provider.name} (copy it now; it is shown only once): "
                  f"{base}/feeds/{token}.ics", "success")

    @action("revoke_feed", "Revoke calendar feed link", "Revoke the selected clinicians' calendar feed links?")
    def action_revoke_feed(self, ids):
        """End the selected clinicians' feed links (their calendar apps get 404 from now on)."""
        ended = sum(revoke_feed(ObjectId(i), audit_as=staff_actor()) for i in ids)
        flash(f"{ended} calendar feed link(s) revoked." if ended else "None of them had a feed link.",
              "success" if ended else "info")

    form_overrides = {"email": ClinicEmailField, "name": NameField}
    column_descriptions = {"services": "The services this provider offers. Set their weekly hours under "
                                       "Clinic → Schedules."}


def feed_words(provider):
    """The provider's calendar feed in words: "Active since …", or "No feed" when none was made
    (or the last one was revoked)."""
    since = (g.get("page_feeds") or {}).get(provider.id)
    return f"Active since {formatting.human_time(since, clinic_zone())}" if since else "No feed"


def hours_link(provider):
    """A link to the provider's weekly hours (or to set them) for admins; plain words for others."""
    schedule_id = (g.get("page_schedules") or {}).get(provider.id)
    if staff_role() != "admin":
        return "Set" if schedule_id else "Not set"
    if schedule_id:
        return link(url_for("schedules.edit_view", id=str(schedule_id)), f"Edit hours of {provider.name}")
    return link(url_for("schedules.create_view", provider=str(provider.id)), f"Set hours of {provider.name}")


class ServiceView(SecureModelView):
    """Services with their booking policy."""

    read_roles = FRONT_DESK
    empty_list_message = "No services yet: patients see nothing to book."
    empty_create_hint = "Add one with Create; it is bookable once a clinician offers it."
    column_list = ("name", "duration_minutes", "price", "currency", "buffer_before_minutes",
                   "buffer_after_minutes", "min_notice_minutes", "horizon_days",
                   "cancellation_window_hours", "refund_rule", "active")
    column_filters = ("active", "refund_rule")
    column_searchable_list = ("name",)
    column_default_sort = "name"
    record_noun = "service"
    form_overrides = {"price": MoneyField, "currency": StringField, "reminder_hours": HoursListField,
                      "name": NameField,
                      # No-show protection (issue 27): money as "20.00", like the price.
                      "deposit_amount": MoneyField, "late_cancel_fee": MoneyField, "no_show_fee": MoneyField}
    column_labels = {"duration_minutes": "Duration (minutes)", "buffer_before_minutes": "Buffer before (minutes)",
                     "buffer_after_minutes": "Buffer after (minutes)", "min_notice_minutes": "Minimum notice (minutes)",
                     "horizon_days": "Bookable ahead (days)", "cancellation_window_hours": "Cancellation window (hours)",
                     "refund_rule": "Refund on cancellation", "reminder_hours": "Email reminders (hours before)",
                     "repeat_allowed": "Can be booked as a series",
                     "deposit_amount": "Deposit (amount)", "deposit_percent": "Deposit (% of the price)",
                     "late_cancel_fee": "Late-cancellation fee", "no_show_fee": "No-show fee",
                     "pay_at_clinic": "Pay at the clinic (card on file required)"}
    column_descriptions = {
                           "deposit_amount": "Taken online when booking; the rest is paid at the clinic. 0.00 for none.",
                           "deposit_percent": "Or a percentage of the price (0 for none); give one of the two.",
                           "late_cancel_fee": "Charged to the card on file when the patient cancels inside the "
                                              "cancellation window (patients may then still cancel online). 0.00 for none.",
                           "no_show_fee": "Charged to the card on file when staff mark a no-show (or waived "
                                          "with a reason). 0.00 for none.",
                           "pay_at_clinic": "Nothing is taken online; patients need a card on file to book.",
                           "price": "An amount like 55.00, in the currency below; 0.00 for a free service.",
                           "currency": "Three-letter code in lower case, e.g. gbp.",
                           "duration_minutes": "A multiple of 5 minutes.",
                           "repeat_allowed": "Patients and staff may book 2 to 12 visits, every 1 to 4 weeks, at once."}
    column_formatters = {"price": money_formatter("price"), "currency": lambda v, c, m, n: (m.currency or "").upper(),
                         "refund_rule": words("refund_rule"), "deposit_amount": money_formatter("deposit_amount"),
                         "late_cancel_fee": money_formatter("late_cancel_fee"),
                         "no_show_fee": money_formatter("no_show_fee"),
                         "deposit_percent": lambda v, c, m, n: f"{m.deposit_percent or 0}%"}
    # Intake questions (issue 28): the form builder, one inline row per question (admins only: the
    # view's write role). Ids and versions are the model's (Service.clean), never typed in.
    form_subdocuments = {"questions": {"form_subdocuments": {None: {
        "form_columns": ("label", "kind", "required", "help_text", "choices", "position"),
        "form_args": {"label": {"label": "Question"}, "kind": {"label": "Kind of answer"},
                      "required": {"label": "Required"}, "help_text": {"label": "Help text"},
                      "choices": {"label": "Choices (for a choice question)"},
                      "position": {"label": "Order (lower first)",
                                   "description": "Left empty, the question goes after the last one."}},
        # "Kind of answer" in words comes from the model's QUESTION_KIND_CHOICES (see there why).
    }}}}


def answers_formatter(view, context, model, name):
    """The intake answers as given (label and value, escaped); reading them is audited."""
    answers = list(model.answers or [])
    if not answers:
        return "None asked" if not getattr(model.service, "questions", None) else "Not answered"
    audit(staff_actor(), "appointment.answers_read", record=f"Appointment:{model.id}")
    return Markup("<dl class='mb-0'>{}</dl>").format(Markup("").join(
        Markup("<dt>{}</dt><dd>{}</dd>").format(a.label, answer_text(a)) for a in answers))


def guardian_formatter(view, context, model, name):
    """A dependant's account holder (issue 28), linked; empty for anyone else."""
    guardian = getattr(model, "guardian", None)
    if guardian is None:
        return ""
    return link(url_for("patients.details_view", id=str(guardian.id)), str(guardian.name))


class ScheduleView(SecureModelView):
    """Weekly hours with breaks and date overrides, as local times of day in the clinic's zone.

    Create and edit use the schedule editor (admin/schedule.py): seven weekday rows and a list of
    date overrides, working without JavaScript.
    """

    read_roles = EVERYONE
    write_roles = SCHEDULE_EDITORS
    create_roles = SCHEDULE_CREATORS
    empty_list_message = "No weekly hours yet: a clinician without hours has no times to book."
    empty_create_hint = "Set a clinician's hours with Create."
    provider_field = "provider"
    record_noun = "schedule"
    editor_template = "admin_clinic/schedule_form.html"
    column_list = ("provider", "days", "overrides")
    column_details_list = ("provider", "days", "overrides")
    column_labels = {"days": "Weekly hours", "overrides": "Date overrides"}
    column_formatters = {
        "days": lambda v, c, m, n: "; ".join(
            f"{WEEKDAYS[d.weekday][:3]} {d.start}–{d.end}"
            + (f" (breaks {', '.join(f'{b.start}–{b.end}' for b in d.breaks)})" if d.breaks else "")
            for d in sorted(m.days or [], key=lambda d: d.weekday)) or "Closed every day",
        "overrides": lambda v, c, m, n: "; ".join(
            f"{formatting.short_date(o.date, year=True)} "
            + (", ".join(f"{i[0]}–{i[1]}" for i in o.intervals) if o.intervals else "closed")
            for o in sorted(m.overrides or [], key=lambda o: o.date)) or "None",
    }
    column_descriptions = {"days": "Local times in the clinic's zone."}

    @property
    def can_create(self):
        """Admins create; a provider only their own first schedule (with hours set, they edit those)."""
        if super().can_create:
            return True
        return staff_role() == "provider" and self._own_schedule() is None and current_user.provider is not None

    def _own_schedule(self):
        """The signed-in provider's schedule, or None (looked up once per request)."""
        if "own_schedule" not in g:
            provider = current_user.provider
            g.own_schedule = Schedule.objects(provider=provider.id).only("id").first() if provider else None
        return g.own_schedule

    def _editor_form(self):
        form = ScheduleForm(get_form_data())
        if staff_role() == "provider":
            del form["provider"]
        else:
            form.provider.choices = [(str(p.id), p.name) for p in Provider.objects.order_by("name").only("id", "name")]
        return form

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """The schedule editor for a provider who has no schedule yet."""
        return self._editor(None)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """The schedule editor for an existing schedule (provider staff: only their own)."""
        schedule = self.get_one(request.args.get("id", "")) if ObjectId.is_valid(request.args.get("id", "")) else None
        if schedule is None:
            flash("That schedule does not exist.", "error")
            return redirect(self.get_url(".index_view"))
        return self._editor(schedule)

    def _editor(self, schedule):
        return_url = get_redirect_target() or self.get_url(".index_view")
        if schedule is None and staff_role() == "provider" and self._own_schedule() is not None:
            # A provider's "new" opens the hours they have (one schedule each).
            return redirect(self.get_url(".edit_view", id=str(self._own_schedule().id)))
        if not (self.can_edit if schedule is not None else self.can_create):
            return redirect(return_url)
        form = self._editor_form()
        if request.method != "POST":
            prefill(form, schedule)
            if "provider" in form:
                form.provider.data = str(schedule.provider.id) if schedule else request.args.get("provider", "")
        elif not apply_row_buttons(form, request.form):
            valid = form.validate()
            result = validate_schedule(form)
            provider = self._chosen_provider(form, schedule)
            if valid and result is not None and provider is not None:
                saved = self._save(schedule, provider, *result)
                if saved is not None:
                    flash(f"Hours saved for {provider.name}.", "success")
                    return redirect(return_url)
            else:
                flash("The schedule was not saved: please correct the highlighted fields.", "error")
        return self.render(self.editor_template, form=form, schedule=schedule, return_url=return_url,
                           weekdays=WEEKDAYS, zone=clinic_zone(), preview=week_preview(form))

    def _chosen_provider(self, form, schedule):
        """The provider the schedule is for; an error on the field when it already has one."""
        if staff_role() == "provider":
            provider = current_user.provider
        else:
            provider = Provider.objects(id=form.provider.data).first() if ObjectId.is_valid(form.provider.data or "") else None
            if provider is None:
                form.provider.errors = list(form.provider.errors or []) + ["Choose a provider."]
                return None
        if provider is None:
            return None
        clash = Schedule.objects(provider=provider.id)
        if schedule is not None:
            clash = clash.filter(id__ne=schedule.id)
        if clash.only("id").first() is not None:
            if "provider" in form:
                form.provider.errors = list(form.provider.errors or []) + [
                    f"{provider.name} already has a schedule: edit that one instead."]
            else:
                flash(f"{provider.name} already has a schedule: edit that one instead.", "error")
            return None
        return provider

    def _save(self, schedule, provider, days, overrides):
        created = schedule is None
        schedule = schedule or Schedule()
        schedule.provider = provider
        schedule.days = days
        schedule.overrides = overrides
        try:
            schedule.save()
        except NotUniqueError:
            flash(f"{provider.name} already has a schedule: edit that one instead.", "error")
            return None
        except MongoValidationError as exc:
            flash(f"This schedule cannot be saved: {exc.message}.", "error")
            return None
        audit(staff_actor(), "schedule.create" if created else "schedule.update", record=f"Schedule:{schedule.id}")
        return schedule


def _to_utc_from_local(value):
    """A naive form datetime is local clinic time; store it as UTC."""
    if value is None:
        return None
    # clock.from_local, not .replace(tzinfo=…): on the nights the clocks change a typed time may
    # not exist or may happen twice, and the booking rules say which instant it means.
    return clock.from_local(value, clinic_zone())


class TimeOffView(SecureModelView):
    """Providers' time off; times are entered and shown in the clinic's zone."""

    read_roles = EVERYONE
    write_roles = EVERYONE
    empty_list_message = "No time off booked."
    empty_create_hint = "Add a clinician's leave with Create."
    provider_field = "provider"
    column_list = ("provider", "start", "end", "reason")
    column_default_sort = ("start", True)
    column_filters = ("provider", "start")
    record_noun = "time off"
    column_formatters = {"start": local_formatter("start"), "end": local_formatter("end")}
    column_labels = {"start": "Starts", "end": "Ends"}
    column_descriptions = {"start": "Local clinic time", "end": "Local clinic time"}
    form_overrides = {"start": LocalDateTimeField, "end": LocalDateTimeField}

    def _name_zone(self, form):
        """Name the clinic's zone on the form's date-time fields."""
        zone = clinic_zone()
        for field in (form.start, form.end):
            field.description = f"Local time in {zone}."
        return form

    def create_form(self, obj=None):
        return self._name_zone(super().create_form(obj))

    def edit_form(self, obj=None):
        """The edit form, with the stored UTC instants shown as local clinic time."""
        form = self._name_zone(super().edit_form(obj))
        for field in (form.start, form.end):
            if not field.raw_data:
                field.data = to_local_naive(field.data, clinic_zone())
        return form

    def on_form_prefill(self, form, id):
        """Show stored UTC instants as local clinic time in the form."""
        for field in (form.start, form.end):
            if isinstance(field.data, datetime) and field.data.tzinfo is not None:
                field.data = to_local_naive(field.data, clinic_zone())

    def on_model_change(self, form, model, is_created):
        model.start = _to_utc_from_local(model.start)
        model.end = _to_utc_from_local(model.end)
        if model.end <= model.start:
            raise DomainError("Time off must end after it starts.",
                              fields={"end": "The end must be after the start."})
        super().on_model_change(form, model, is_created)


def payment_state(view, context, model, name):
    """The payment state of an appointment, from the page's bulk-loaded payments."""
    payments = g.get("page_payments") or {}
    payment = payments.get(model.id)
    if payment is None and model.amount and request.endpoint and request.endpoint.endswith("details_view"):
        payment = Payment.objects(appointment=model.id, kind__in=UPFRONT_KINDS).first()
    if payment is not None:
        return words_formatter(view, context, payment, "status")  # "Paid", as the ledger says
    return code_words("payment_state", "free" if not model.amount else
                      ("at_desk" if (model.booked_by or "").startswith("staff") else "none"))


def patient_formatter(view, context, model, name):
    """A patient as "Name <email>", linked to their page for the roles that may open it."""
    patient = getattr(model, name, None)
    if patient is None:
        return ""
    if staff_role() in FRONT_DESK:
        return link(url_for("patients.details_view", id=str(patient.id)), str(patient))
    return str(patient)


class FilterPatientText(BaseMongoEngineFilter):
    """Appointments (or payments) of patients whose name, email or phone contains the text."""

    def apply(self, query, value):
        term = (value or "").strip()
        ids = Patient.objects(Q(name__icontains=term) | Q(email__icontains=term)
                              | Q(phone__icontains=term)).scalar("id")
        return query.filter(**{f"{self.column}__in": list(ids)})

    def operation(self):
        return "name, email or phone contains"


class FilterPatientId(BaseMongoEngineFilter):
    """Appointments (or payments) of one patient, by id (the link from the patient's page)."""

    def apply(self, query, value):
        try:
            return query.filter(**{self.column: ObjectId(value)})
        except (InvalidId, TypeError):
            return query.none()

    def operation(self):
        return "is (id)"

    def validate(self, value):
        return ObjectId.is_valid(value or "")


class AppointmentView(SecureModelView):
    """Appointments: filter, search, export; cancel (with refund), check in, no-show as actions."""

    read_roles = EVERYONE
    allow_create = False  # staff book from the day view, through the booking rule
    allow_edit = False
    empty_list_message = "No appointments yet. Patients book online; staff book a caller from the Day view."
    export_roles = FRONT_DESK
    audit_reads = True
    provider_field = "provider"
    record_noun = "appointment"
    money_columns = ("payment", "amount")
    column_list = ("start", "patient", "provider", "service", "status", "payment", "amount", "override")
    column_details_list = ("start", "end", "patient", "provider", "service", "status", "payment",
                           "hold_expires_at", "amount", "booked_by", "override",
                           "cancel_reason", "notes", "created_at", "answers")
    column_export_list = ("start", "patient", "provider", "service", "status", "amount", "currency")
    column_filters = ("status", "start", "provider", "service", "override",
                      FilterPatientText("patient", "Patient"), FilterPatientId("patient", "Patient"))
    column_default_sort = ("start", True)
    column_labels = {"answers": "Intake answers", "start": "Starts", "end": "Ends", "hold_expires_at": "Hold expires",
                     "override": "Booked over a conflict", "cancel_reason": "Why cancelled",
                     "created_at": "Booked at", "booked_by": "Booked by"}
    column_formatters = {"start": local_formatter("start"), "end": local_formatter("end"),
                         "hold_expires_at": local_formatter("hold_expires_at"),
                         "created_at": local_formatter("created_at"), "payment": payment_state,
                         "status": words_formatter, "amount": money_formatter("amount"),
                         "patient": patient_formatter, "booked_by": lambda v, c, m, n: booked_by_words(m.booked_by),
                         "cancel_reason": lambda v, c, m, n: cancel_reason_words(m.cancel_reason),
                         "answers": answers_formatter}
    column_formatters_export = {"start": lambda v, c, m, n: clock.local_iso(m.start, clinic_zone()),
                                "patient": lambda v, c, m, n: str(m.patient) if m.patient else "",
                                "amount": lambda v, c, m, n: plain_amount(m.amount),
                                "currency": lambda v, c, m, n: (m.currency or "").upper(),
                                "status": words_formatter}
    action_roles = {"cancel": FRONT_DESK, "check_in": EVERYONE, "no_show": EVERYONE}

    def after_list_loaded(self, rows):
        """One query for the payments of the whole page (kept per request, not on the shared view)."""
        ids = [row.id for row in rows]
        g.page_payments = {p.appointment.id: p for p in Payment.objects(appointment__in=ids, kind__in=UPFRONT_KINDS).no_dereference()}

    def _apply(self, ids, operation, verb):
        done, failed = 0, []
        now = utcnow()
        for appointment in self.get_query().filter(id__in=ids):
            try:
                operation(appointment, now, audit_as=staff_actor())  # the action audits itself
            except DomainError as exc:
                failed.append(exc.message)
            else:
                done += 1
        if done:
            flash(f"{done} appointment(s): {verb.replace('_', ' ')} done.", "success")
        for message in sorted(set(failed)):
            flash(message, "error")

    @action("cancel", "Cancel (refund when paid)", "Cancel the selected appointments?")
    def action_cancel(self, ids):
        """Cancel as staff: any time, with a refund when paid."""
        self._apply(ids, lambda a, now, **audited: cancel(a, now, reason=f"cancelled by {staff_actor()}",
                                                                by_staff=True, actor=staff_actor(), **audited),
                    "cancel")

    @action("check_in", "Check in")
    def action_check_in(self, ids):
        """Mark today's confirmed appointments as arrived."""
        self._apply(ids, lambda a, now, **audited: frontdesk.check_in(a, now, clinic_zone(), **audited), "check_in")

    @action("no_show", "Mark as no-show")
    def action_no_show(self, ids):
        """Mark confirmed appointments that have started as no-shows."""
        # No-show protection: one with an agreed fee is refused here (staff charge or waive it in the day view).
        self._apply(ids, lambda a, now, **audited: no_show(a, now, charge=None, actor=staff_actor(),
                                                                     **audited), "no_show")


class PatientView(PatientMergeMixin, PatientListMixin, SecureModelView):
    """Patients: search and edit contact details; deactivate, never delete."""

    read_roles = FRONT_DESK
    write_roles = FRONT_DESK
    empty_list_message = ("No patients yet. Patients appear here when they register online or are booked "
                          "at the desk.")
    empty_create_hint = "Add one with Create."
    audit_reads = True
    record_noun = "patient"
    details_template = "admin_clinic/patient_details.html"
    # Issue 26: what tells two patients of one name apart, as the desk's search shows it
    # (admin/patients.py: the page's visits are loaded in one query).
    column_list = ("name", "date_of_birth", "phone", "email", "last_visit", "next_visit", "guardian", "active",
                   "created_at")
    # Never the password hash or the token generation: only what reception needs.
    column_details_list = ("name", "date_of_birth", "email", "phone", "last_visit", "next_visit", "active",
                           "created_at", "guardian")
    column_export_list = ("name", "date_of_birth", "email", "phone", "active", "created_at")
    column_labels = {"created_at": "Registered", "guardian": "Account holder",
                     "date_of_birth": "Date of birth", "last_visit": "Last visit", "next_visit": "Next visit"}
    column_searchable_list = ("name", "email", "phone")
    column_filters = ("active",)
    column_default_sort = "name"
    form_columns = ("name", "email", "phone", "send_by", "date_of_birth", "active")
    # The date of birth is typed as at the front desk (DD/MM/YYYY or YYYY-MM-DD) and read by the
    # same rule (`clean_birth_date`), so both doors refuse the same dates with the same words.
    form_overrides = {"name": NameField, "date_of_birth": StringField}
    # Issue 29: how the patient's messages go, the same choice as on their account page (edit only:
    # a new patient hears by email, or by text when they have no email).
    form_extra_fields = {"send_by": SelectField(
        "Send messages by", choices=[("", "Not set")] + list(CHOICES), validate_choice=True,
        description="Texts need a mobile phone. Set on the patient's account page too.")}
    # Issue 26: email is optional; a desk placeholder address is never shown, read "no email".
    form_args = {"email": {"validators": [wtf_validators.Optional(), wtf_validators.Length(max=254)]},
                 "date_of_birth": {"validators": [wtf_validators.Optional(), wtf_validators.Length(max=10)],
                                   "description": "DD/MM/YYYY"}}
    column_formatters = {"created_at": local_formatter("created_at"), "guardian": guardian_formatter,
                         "email": lambda v, c, m, n: email_words(m), "phone": phone_formatter,
                         "date_of_birth": birth_formatter, "last_visit": last_visit_formatter,
                         "next_visit": next_visit_formatter}
    column_formatters_export = {"email": lambda v, c, m, n: frontdesk.shown_email(m),
                                "date_of_birth": lambda v, c, m, n: m.date_of_birth.isoformat() if m.date_of_birth else ""}
    action_roles = {"deactivate": FRONT_DESK}

    def on_form_prefill(self, form, id):
        """An edit form never shows the placeholder address: the field is empty instead."""
        if not deliverable(form.email.data):
            form.email.data = ""
        born = form.date_of_birth.data
        # Typed back as DD/MM/YYYY (the field's hint, `parse_birth_date`), whatever the clinic's locale.
        form.date_of_birth.data = formatting.numeric_date(born, locale=formatting.DEFAULT_LOCALE) \
            if born and hasattr(born, "year") else (born or "")

    def create_form(self, obj=None):
        """The create form, without the choice of messages (`create_by_staff` gives the default)."""
        form = super().create_form(obj)
        delattr(form, "send_by")
        return form

    def edit_form(self, obj=None):
        """The edit form, showing how messages go now; no choice for a dependant (their account holder hears)."""
        form = super().edit_form(obj)
        if obj is not None and getattr(obj, "guardian", None) is not None:
            delattr(form, "send_by")
        elif obj is not None and not form.send_by.raw_data:
            form.send_by.data = contact_choice(obj)
        return form

    def _check_unique(self, form):
        """On create the rule (`create_by_staff`) is the uniqueness check, so its refusal reads as the desk's."""
        if request.endpoint and request.endpoint.endswith(".create_view"):
            return True
        return super()._check_unique(form)

    def create_model(self, form):
        """Create through the rule the front desk's new caller passes (`create_by_staff`), never a bare save."""
        g.admin_form = form  # refusals naming a field are shown on it (SecureModelView)
        if self.stopped_for_duplicates(form):  # the desk's duplicate check, until "Create anyway"
            return False
        try:
            # The form asks for an email, so a phone is optional here; given, it is checked as at the
            # desk. The rule gives an unusable password, emails the set-password invitation and
            # writes its "patient.create" event with the patient.
            model = create_by_staff(form.name.data, form.phone.data, form.email.data, form.date_of_birth.data,
                                    require_phone=False, active=form.active.data,
                                    audit=audit_event(staff_actor(), "patient.create"))
        except Exception as exc:  # as Flask-Admin's own create_model: a message, never a 500
            if not self.handle_view_exception(exc):
                flash("Failed to create the patient.", "error")
                log.exception("Failed to create a patient.")
            return False
        self.after_model_change(form, model, True)
        return model

    def on_model_change(self, form, model, is_created):
        """On an edit: normalise the email, then set the phone (E.164) and how messages go (issue 29)."""
        g.admin_form = form  # a refused phone is shown on its field
        if not (model.email or "").strip():  # left empty: the record keeps an undeliverable placeholder
            stored = Patient.objects(id=model.id).only("email").first() if model.id else None
            model.email = stored.email if stored and not deliverable(stored.email) else \
                f"patient-{model.id}@{NO_EMAIL_DOMAIN}"
        model.email = normalise_email(model.email)
        model.date_of_birth = clean_birth_date(model.date_of_birth)
        # Phone and choice through the action the portal and PATCH /api/me use, last, so a refusal
        # before it leaves them as they were; it writes and audits them, and the save writes the same.
        choice = getattr(form, "send_by", None)
        try:
            update_contact(model, phone=form.phone.data, audit_as=staff_actor(),
                           contact_by=channels_of(choice.data) if choice is not None and choice.data else UNSET)
        except ValidationFailed as exc:  # the choice is `send_by` on this form: its refusal is said there
            fields = dict(exc.fields)
            if "contact_by" in fields:
                fields = dict(fields, send_by=exc.message)
                del fields["contact_by"]
            raise ValidationFailed(exc.message, fields=fields) from None
        if not model.active:
            model.token_generation = (model.token_generation or 0) + 1
        super().on_model_change(form, model, is_created)

    def after_model_change(self, form, model, is_created):
        """An edit is Flask-Admin's own save: audited here (a create audits itself in `create_by_staff`)."""
        if not is_created:
            audit(staff_actor(), "patient.update", record=f"Patient:{model.id}")

    def render(self, template, **kwargs):
        """The patient's page also lists their appointments and payments, newest first."""
        if template == self.details_template and kwargs.get("model") is not None:
            patient = kwargs["model"]
            appointments = list(Appointment.objects(patient=patient.id).order_by("-start")
                                .select_related(max_depth=1))
            payments = list(Payment.objects(patient=patient.id).order_by("-created_at").select_related(max_depth=2))
            appointments_view = self.admin._views and next(
                (v for v in self.admin._views if getattr(v, "endpoint", "") == "appointments"), None)
            filter_url = None
            if appointments_view is not None:
                for index, flt in enumerate(appointments_view._filters or []):
                    if isinstance(flt, FilterPatientId):
                        filter_url = url_for("appointments.index_view", **{
                            f"flt0_{appointments_view.get_filter_arg(index, flt)}": str(patient.id)})
            kwargs.update(appointments=appointments, payments=payments, zone=clinic_zone(),
                          appointment_text=appointment_text, dispute_words=dispute_words, all_appointments_url=filter_url)
        return super().render(template, **kwargs)

    @action("deactivate", "Deactivate", "Deactivate the selected patients? They will be signed out.")
    def action_deactivate(self, ids):
        """Deactivate patients: they can no longer sign in and their sessions end."""
        for patient in Patient.objects(id__in=ids):
            deactivate(patient, audit_as=staff_actor())  # the action audits itself
        flash(f"{len(ids)} patient(s) deactivated.", "success")


class PaymentView(SecureModelView):
    """The payments ledger (read-only)."""

    read_roles = FRONT_DESK
    write_roles = ()
    empty_list_message = "No payments yet. They appear here when a patient pays online or at the desk."
    export_roles = FRONT_DESK
    audit_reads = True
    record_noun = "payment"
    column_list = ("created_at", "patient", "appointment", "kind", "amount", "status", "dispute", "amount_refunded",
                   "flow", "stripe_payment_intent", "flag")
    column_details_list = ("created_at", "updated_at", "patient", "appointment", "kind", "amount", "status",
                           "dispute", "fee_state", "waived_reason", "amount_refunded", "refunds", "flow",
                           "stripe_payment_intent", "stripe_checkout_session", "flag")
    column_export_list = ("created_at", "patient", "appointment", "kind", "amount", "currency", "status",
                          "amount_refunded", "flow", "stripe_payment_intent", "flag")
    column_filters = ("status", "kind", "flow", "created_at", FilterPatientText("patient", "Patient"))
    column_searchable_list = ("stripe_payment_intent", "stripe_checkout_session")
    column_default_sort = ("created_at", True)
    column_labels = {"created_at": "Created", "updated_at": "Updated", "amount_refunded": "Refunded",
                     "dispute": "Dispute", "fee_state": "Fee state", "waived_reason": "Why waived",
                     "stripe_payment_intent": "Stripe payment", "stripe_checkout_session": "Stripe Checkout session",
                     "flow": "Payment page"}
    column_formatters = {
        "created_at": local_formatter("created_at"), "updated_at": local_formatter("updated_at"),
        "patient": patient_formatter, "status": words_formatter, "kind": words("payment_kind"),
        "fee_state": words_formatter, "flow": words("flow"),
        "dispute": lambda v, c, m, n: dispute_words(m, clinic_zone()),  # the bank's chargeback, in words
        "amount": money_formatter("amount"), "amount_refunded": money_formatter("amount_refunded"),
        "appointment": lambda v, c, m, n: link(url_for("appointments.details_view", id=str(m.appointment.id)),
                                               appointment_text(m.appointment, clinic_zone()))
        if m.appointment else "",
        "refunds": lambda v, c, m, n: "; ".join(
            f"{money(r.amount, m.currency)} {code_words('refund_status', r.status)}, "
            f"{formatting.human_time(r.created_at, clinic_zone())}" for r in (m.refunds or [])) or "none",
    }
    column_formatters_export = {
        "created_at": lambda v, c, m, n: clock.local_iso(m.created_at, clinic_zone()),
        "patient": lambda v, c, m, n: str(m.patient) if m.patient else "",
        "appointment": lambda v, c, m, n: appointment_text(m.appointment, clinic_zone()),
        "amount": lambda v, c, m, n: plain_amount(m.amount),
        "amount_refunded": lambda v, c, m, n: plain_amount(m.amount_refunded),
        "currency": lambda v, c, m, n: (m.currency or "").upper(),
        "status": words_formatter,
    }

    # No-show protection (issue 27): staff give a charged fee back (the whole of what is left).
    action_roles = {"refund_fee": FRONT_DESK}

    @action("refund_fee", "Refund fee", "Refund the selected late-cancellation or no-show fees to the patient's card?")
    def action_refund_fee(self, ids):
        """Refund charged fees in full (other payments are refused here: cancel the appointment instead)."""
        done, refused = 0, 0
        for payment in Payment.objects(id__in=ids):
            try:
                refunded = refund_fee(payment, utcnow(), actor=staff_actor(), audit_as=staff_actor())
            except DomainError as exc:
                flash(exc.message, "error")
                continue
            done += bool(refunded)
            refused += not refunded
        if done:
            flash(f"{done} fee(s) refunded to the patient's card.", "success")
        if refused:
            flash(f"{refused} payment(s) skipped: only a charged fee can be refunded here.", "error")

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """Payments with their appointments' services and providers, loaded in bulk."""
        count, rows = super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)
        if execute:
            rows = list(rows)
            appointment_ids = [p.appointment.id for p in rows if p.appointment is not None]
            loaded = {a.id: a for a in Appointment.objects(id__in=appointment_ids).select_related(max_depth=1)}
            for payment in rows:
                if payment.appointment is not None and payment.appointment.id in loaded:
                    payment.appointment = loaded[payment.appointment.id]
        return count, rows


class StripeEventView(SecureModelView):
    """Stripe events as received (read-only), with a re-sync action."""

    read_roles = FRONT_DESK
    write_roles = ()
    empty_list_message = "No Stripe events yet. They appear when Stripe reports on a payment."
    column_list = ("received_at", "type", "event_id", "object_id", "outcome", "processed_at")
    column_filters = ("type", "outcome")
    column_searchable_list = ("event_id", "object_id")
    column_default_sort = ("received_at", True)
    column_labels = {"received_at": "Received", "processed_at": "Processed", "event_id": "Event id",
                     "object_id": "Object id", "created": "Created at Stripe"}
    column_formatters = {"received_at": local_formatter("received_at"),
                         "processed_at": local_formatter("processed_at")}
    action_roles = {"resync": FRONT_DESK}

    @action("resync", "Re-sync from Stripe")
    def action_resync(self, ids):
        """Fetch each event's object from Stripe again and apply it (`payments.resync_object`)."""
        from models.documents import StripeEvent
        from models.payments.sync import resync_object

        actor, done = staff_actor(), 0
        for event in self.get_query().filter(id__in=ids):
            record = f"StripeEvent:{event.id}"
            try:  # the action audits itself, done or refused
                outcome = resync_object(event.object_id, actor=actor, audit_as=actor, audit_record=record)
            except DomainError as exc:
                flash(exc.message, "error")
                continue
            done += 1
            StripeEvent.objects(id=event.id, processed_at=None).update_one(set__processed_at=utcnow())
            StripeEvent.objects(id=event.id).update_one(set__outcome=f"resynced: {outcome}"[:200])
        if done:
            flash(f"{done} event(s) re-synced from Stripe.", "success")


class AuditEventView(SecureModelView):
    """The audit trail (read-only, admin only)."""

    read_roles = ADMIN_ONLY
    write_roles = ()
    empty_list_message = "Nothing recorded yet."
    column_list = ("at", "actor", "action", "record", "outcome", "ip", "request_id")
    column_filters = ("action", "outcome", "actor", "at")
    column_searchable_list = ("actor", "action", "record", "request_id")
    column_default_sort = ("at", True)
    column_labels = {"at": "When", "actor": "Who", "ip": "IP address", "request_id": "Request id"}
    column_formatters = {"at": local_formatter("at"), "actor": lambda v, c, m, n: staff_name(m.actor)}

    def after_list_loaded(self, rows):
        """The names of the page's staff actors, in one query."""
        load_staff_names([row.actor for row in rows])


def load_staff_names(actors):
    """Look up the names of "staff:<id>" actors in one query, for this request."""
    ids = {a.partition(":")[2] for a in actors if a and a.startswith("staff:")}
    ids = [i for i in ids if ObjectId.is_valid(i)]
    names = g.setdefault("staff_names", {})
    for user in StaffUser.objects(id__in=ids).only("id", "name", "email", "role"):
        names[str(user.id)] = str(user)


def staff_name(actor):
    """"staff:<id>" as the staff member's name and role; other actors as they are."""
    if not actor or not actor.startswith("staff:"):
        return actor or ""
    staff_id = actor.partition(":")[2]
    names = g.setdefault("staff_names", {})
    if staff_id not in names:
        load_staff_names([actor])
    return names.get(staff_id, actor)


def booked_by_words(booked_by):
    """Who booked an appointment, in words: "Patient", a staff member's name and role, "Waitlist offer …"."""
    if (booked_by or "").startswith("staff:"):
        return staff_name(booked_by)
    return code_words("booked_by", booked_by)


def cancel_reason_words(reason):
    """A cancellation's stored reason for staff: "cancelled by staff:<id>" names the staff member."""
    head, _, actor = (reason or "").rpartition(" ")
    if actor.startswith("staff:"):
        return f"{head[:1].upper()}{head[1:]} {staff_name(actor)}".strip()
    return (reason or "")[:1].upper() + (reason or "")[1:]
