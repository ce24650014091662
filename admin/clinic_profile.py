"""The clinic's profile and closures in the back office (issue 25).

- **Clinic settings** (admin): name, address, phone, email, website, brand colour, logo upload
  (PNG/JPEG/SVG up to 512 KB, checked by `models.catalog.profile.check_logo`), holiday region, and
  how dates and money are written (the clinic's locale, one of `models.formatting.CLINIC_LOCALES`).
- **Closures** (admin and reception): whole or part days the clinic is closed, with a reason; each
  lists the appointments booked in it, with one action to message those patients.
- **Public holidays** (admin and reception): the region's holidays ahead, each closed unless opened.
"""

from datetime import date

from flask import flash, g, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_wtf.csrf import validate_csrf
from markupsafe import Markup, escape
from wtforms import BooleanField, FileField, SelectField, TextAreaField
from wtforms.validators import ValidationError

from admin.base import SecureModelView, StaffAccessMixin, clinic_zone, local_formatter, staff_actor
from admin.fields import ClinicEmailField, LocalDateTimeField, appointment_text, link, to_local_naive
from admin.roles import ADMIN_ONLY, FRONT_DESK
from admin.views import ClinicView, _to_utc_from_local, staff_name
from models.accounts.phones import display_phone
from models.booking.closing import ClosureNotices, appointments_during, message_patients
from models.catalog import current_catalog
from models.catalog.closures import HOLIDAY_YEARS_AHEAD, public_holidays, valid_region
from models.catalog.profile import (LOGO_MAX_BYTES, accent_colour, check_logo, close_holiday_again, get_clinic,
                                    remove_logo, reopen_holiday, save_logo)
from models import formatting
from models.formatting import LOCALE_NAMES
from models.clock import local_today, utcnow
from models.errors import DomainError

# Appointments a closure's list cell names before it says "and N more".
LISTED = 5


class LocaleField(SelectField):
    """The clinic's locale as a select of names in words; any other value is refused by name."""

    def pre_validate(self, form):
        """Refuse a locale the clinic cannot use with words staff can act on (WTForms says "Not a valid choice")."""
        if self.data not in LOCALE_NAMES:
            raise ValidationError(f"“{self.data or ''}” is not a locale the clinic can use; choose one of "
                                  f"{', '.join(LOCALE_NAMES.values())}.")


class ClinicProfileView(ClinicView):
    """Clinic settings with the clinic's profile: who it is, how it looks, where its holidays come from."""

    column_list = ("name", "address", "phone", "email", "website", "brand_colour", "holiday_region", "timezone",
                   "currency", "locale", "hold_minutes", "slot_step_minutes", "default_cancellation_hours",
                   "max_held", "max_upcoming")
    form_excluded_columns = ("logo_sha", "reopened_holidays")
    # The logo's hash and the re-opened holidays are bookkeeping (the logo shows in the header, the
    # holidays under Clinic → Public holidays): the details page shows what staff set.
    column_details_list = column_list + ("feed_shows_names",)
    column_labels = {**ClinicView.column_labels, "brand_colour": "Brand colour",
                     "holiday_region": "Public holidays of", "website": "Website",
                     "locale": "Dates and money written as"}
    column_descriptions = {
        **ClinicView.column_descriptions,
        "address": "Shown on every page and email, and in calendar files. One line per line of the address.",
        "brand_colour": "A colour like #0b6e4f for buttons and links. A colour too light for white text "
                        "is darkened automatically.",
        "holiday_region": "A country and region such as GB-ENG, GB-SCT, US-CA or FR. The clinic closes on "
                          "its public holidays (open a holiday again under Clinic → Public holidays). "
                          "Leave empty for none.",
        "website": "Starting with https://",
        "locale": "How dates, times and amounts read on every page, in the back office, emails and texts: "
                  "English (United Kingdom) writes “Monday 7 December 2026, 09:00”, English (United States) "
                  "“Monday, December 7, 2026, 9:00 AM”. The currency stays the clinic's (or a service's).",
    }
    column_formatters = {
        **ClinicView.column_formatters,
        "brand_colour": lambda v, c, m, n: Markup('<span class="swatch" aria-hidden="true" style="background:{0}"></span> '
                                                  '{0}{1}').format(m.brand_colour or "",
                                                                   "" if accent_colour(m.brand_colour) == (m.brand_colour or "").lower()
                                                                   else f" (shown as {accent_colour(m.brand_colour)} for contrast)"),
        "address": lambda v, c, m, n: Markup("<br>").join(escape(line) for line in (m.address or "").splitlines()),
        "locale": lambda v, c, m, n: LOCALE_NAMES.get(m.locale, m.locale),
    }
    # The clinic's email by the rule every door applies (WTForms' own refused the demo's .test address,
    # so the demo clinic's settings could not be saved at all).
    form_overrides = {**ClinicView.form_overrides, "address": TextAreaField, "locale": LocaleField,
                      "email": ClinicEmailField}
    form_args = {"locale": {"choices": list(LOCALE_NAMES.items())}}
    form_extra_fields = {
        "logo_file": FileField("Logo", description=f"A PNG, JPEG or SVG image of at most {LOGO_MAX_BYTES // 1024} KB; "
                                                   "shown beside the clinic's name."),
        "logo_remove": BooleanField("Remove the logo"),
    }

    def on_model_change(self, form, model, is_created):
        """Check the region and the logo before the clinic is saved."""
        model.holiday_region = (model.holiday_region or "").strip().upper()
        if not valid_region(model.holiday_region):
            raise DomainError(f"“{model.holiday_region}” is not a region we know holidays for; try GB-ENG.",
                              fields={"holiday_region": "Use a code like GB-ENG, GB-SCT, US-CA or FR."})
        upload = request.files.get("logo_file")
        data = upload.read(LOGO_MAX_BYTES + 1) if upload and upload.filename else b""
        if data:
            check_logo(data)  # refuses with the field's message before anything is written
        super().on_model_change(form, model, is_created)
        g.clinic_logo_upload = data  # per request: the view object is shared by every request

    def after_model_change(self, form, model, is_created):
        """Store the checked logo (or remove it) once the clinic is saved."""
        data = g.pop("clinic_logo_upload", b"")
        if data:
            save_logo(model, data, utcnow(), audit_as=staff_actor())  # audits itself
        elif form.logo_remove.data:
            remove_logo(model, audit_as=staff_actor())
        super().after_model_change(form, model, is_created)


def _booked_in(view, context, model, name):
    """The appointments booked in a closure, linked, for staff to move."""
    appts = appointments_during(model.start, model.end)
    if not appts:
        return "None"
    zone = clinic_zone()
    items = [link(url_for("appointments.details_view", id=str(a.id)),
                  f"{appointment_text(a, zone)} · {a.patient}") for a in appts[:LISTED]]
    more = f" and {len(appts) - LISTED} more" if len(appts) > LISTED else ""
    return Markup("<strong>{}</strong>: ").format(len(appts)) + Markup("; ").join(items) + more


class ClosureView(SecureModelView):
    """Closures: whole or part days the clinic is closed; times in the clinic's zone."""

    read_roles = FRONT_DESK
    write_roles = FRONT_DESK
    allow_create = True
    empty_list_message = "No closures. Public holidays close the clinic on their own (Clinic › Public holidays)."
    empty_create_hint = "Add a day the whole clinic is closed with Create."
    record_noun = "closure"
    column_list = ("start", "end", "reason", "booked")
    form_columns = ("start", "end", "reason")
    column_default_sort = ("start", False)
    column_labels = {"start": "Closed from", "end": "Open again at", "reason": "Reason",
                     "booked": "Appointments booked in it", "created_by": "Entered by"}
    column_descriptions = {"start": "Local clinic time; a whole day is 00:00 to 00:00 the next day.",
                           "end": "Local clinic time.",
                           "reason": "Patients see it on the booking page, e.g. “Staff training”."}
    column_formatters = {"start": local_formatter("start"), "end": local_formatter("end"), "booked": _booked_in,
                         "created_by": lambda v, c, m, n: staff_name(m.created_by)}
    column_details_list = ("start", "end", "reason", "booked", "created_by")
    form_overrides = {"start": LocalDateTimeField, "end": LocalDateTimeField}
    action_roles = {"message_patients": FRONT_DESK, "delete": FRONT_DESK}

    def edit_form(self, obj=None):
        """The edit form with the stored UTC instants shown as local clinic time."""
        form = super().edit_form(obj)
        for field in (form.start, form.end):
            if not field.raw_data and field.data is not None:
                field.data = to_local_naive(field.data, clinic_zone())
        return form

    def on_model_change(self, form, model, is_created):
        """Typed local times become UTC; a closure ends after it starts."""
        model.start = _to_utc_from_local(model.start)
        model.end = _to_utc_from_local(model.end)
        if model.end <= model.start:
            raise DomainError("A closure must end after it starts.", fields={"end": "The end must be after the start."})
        if is_created:
            model.created_by = staff_actor()
        super().on_model_change(form, model, is_created)

    def after_model_change(self, form, model, is_created):
        """Tell staff which appointments fall in the closure, and how to message those patients."""
        booked = appointments_during(model.start, model.end)
        if booked:
            flash(f"{len(booked)} appointment(s) are booked while the clinic is closed. Move them, or select "
                  f"this closure and choose “Message their patients”.", "warning")
        super().after_model_change(form, model, is_created)

    @action("message_patients", "Message their patients",
            "Tell every patient booked in the selected closures, by email or text as they chose, that the "
            "clinic is closed then?")
    def action_message_patients(self, ids):
        """Queue one notice about each appointment in the selected closures (never twice); say how many
        were messaged and name the patients nobody could be written to, for staff to phone."""
        from models.catalog.documents import Closure

        notices = ClosureNotices()
        for closure in Closure.objects(id__in=ids):
            notices += message_patients(closure, utcnow(), audit_as=staff_actor())  # audits itself
        if notices.told:
            flash(f"Messaged about {len(notices.told)} appointment(s): their patients will be told the clinic is "
                  f"closed then, by email or text as each chose.", "success")
        if notices.unreachable:
            zone = clinic_zone()
            names = "; ".join(f"{_who_to_call(a.patient)}, {appointment_text(a, zone)}" for a in notices.unreachable)
            flash(f"Could not message {len(notices.unreachable)} patient(s): no email or mobile number on file. "
                  f"Please phone them: {names}.", "warning")
        if not notices.told and not notices.unreachable:
            flash("No appointments are booked in the selected closures.", "info")


def _who_to_call(patient):
    """The person staff phone about a visit: the patient, or a dependant's account holder (named with them)."""
    guardian = getattr(patient, "guardian", None)  # a dependant's messages go to the account holder
    phone = display_phone((guardian or patient).phone)  # a number kept but not one that takes texts
    who = f"{guardian.name} (for {patient.name})" if guardian is not None else patient.name
    return f"{who} on {phone}" if phone else who


class HolidaysView(StaffAccessMixin, BaseView):
    """The public holidays of the clinic's region: closed unless opened again (admin and reception)."""

    read_roles = FRONT_DESK

    @expose("/", methods=("GET", "POST"))
    def index(self):
        """List the holidays ahead; POST opens one again or closes it again."""
        clinic = get_clinic()
        if request.method == "POST":
            try:
                validate_csrf(request.form.get("csrf_token", ""))
                day = date.fromisoformat(request.form.get("date", ""))
            except (ValidationError, ValueError):
                flash("That request could not be read; please try again.", "error")
                return redirect(url_for(".index"))
            if request.form.get("do") == "open":
                reopen_holiday(clinic, day, audit_as=staff_actor())  # audits itself
                flash(f"The clinic is open on {formatting.human_date(day)}: its times can be booked.", "success")
            else:
                close_holiday_again(clinic, day, audit_as=staff_actor())  # audits itself
                flash(f"The clinic is closed on {formatting.human_date(day)} again.", "success")
            return redirect(url_for(".index"))
        today = local_today(clinic.timezone, utcnow())
        holidays = [(day, name, day in (clinic.reopened_holidays or []))
                    for day, name in public_holidays(clinic.holiday_region, today.year,
                                                     today.year + HOLIDAY_YEARS_AHEAD - 2).items() if day >= today]
        current_catalog()  # warm: the page's brand header reads it
        return self.render("admin_clinic/holidays.html", clinic=clinic, holidays=holidays)


class BackOfficeName:
    """The back office's name as every page writes it: "<the clinic's name> back office", read when a
    page renders (Flask-Admin keeps one name for the app's life; the clinic can be renamed)."""

    def __str__(self):
        try:
            clinic = current_catalog().clinic
        except Exception:  # noqa: BLE001 (a page must render even when the database is down)
            clinic = None
        return f"{clinic.name if clinic else 'Clinic'} back office"

    def __html__(self):
        return str(escape(str(self)))
