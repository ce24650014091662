"""The back office: Flask-Admin over the MongoEngine models, guarded by staff role."""

from flask import request
from flask_admin import Admin, AdminIndexView
from flask_admin.theme import Bootstrap4Theme

from admin.base import StaffAccessMixin


class ClinicIndexView(StaffAccessMixin, AdminIndexView):
    """The back office's home page (staff only, like every view)."""


def init_admin(app):
    """Build a new Admin for this app, its views, and the staff sign-in pages."""
    from admin import auth
    from admin.day import DayView
    from admin.views import (
        AppointmentView,
        AuditEventView,
        PatientView,
        PaymentView,
        ProviderView,
        ScheduleView,
        ServiceView,
        StaffUserView,
        StripeEventView,
        TimeOffView,
    )
    from models import documents as d

    app.register_blueprint(auth.bp)
    from admin.home import HomeView

    from admin.clinic_profile import BackOfficeName  # the clinic's own name (issue 25)

    admin = Admin(app, name=BackOfficeName(), index_view=HomeView(name="Home", url="/admin"),
                  theme=Bootstrap4Theme(),
                  csp_nonce_generator=lambda: getattr(request, "csp_nonce", ""))
    admin.add_view(DayView(name="Day view", endpoint="day", url="/admin/day"))
    admin.add_view(AppointmentView(d.Appointment, name="Appointments", endpoint="appointments"))
    admin.add_view(PatientView(d.Patient, name="Patients", endpoint="patients"))
    from admin.waitlist import add_waitlist_view  # the waitlist, read-only

    add_waitlist_view(admin)
    admin.add_view(ProviderView(d.Provider, name="Providers", endpoint="providers", category="Clinic"))
    admin.add_view(ServiceView(d.Service, name="Services", endpoint="services", category="Clinic"))
    admin.add_view(ScheduleView(d.Schedule, name="Schedules", endpoint="schedules", category="Clinic"))
    admin.add_view(TimeOffView(d.TimeOff, name="Time off", endpoint="time_off", category="Clinic"))
    from admin.clinic_profile import ClosureView as _ClosureView, HolidaysView as _HolidaysView

    admin.add_view(_ClosureView(d.Closure, name="Closures", endpoint="closures", category="Clinic"))
    admin.add_view(_HolidaysView(name="Public holidays", endpoint="holidays", url="/admin/holidays", category="Clinic"))
    admin.add_view(PaymentView(d.Payment, name="Payments", endpoint="payments", category="Money"))
    admin.add_view(StripeEventView(d.StripeEvent, name="Stripe events", endpoint="stripe_events",
                                   category="Money"))
    admin.add_view(StaffUserView(d.StaffUser, name="Staff", endpoint="staff", category="Settings"))
    # Clinic profile and closures (issue 25): the profile's settings, closures, public holidays.
    from admin.clinic_profile import ClinicProfileView

    admin.add_view(ClinicProfileView(d.Clinic, name="Clinic settings", endpoint="clinic", category="Settings"))
    admin.add_view(AuditEventView(d.AuditEvent, name="Audit log", endpoint="audit", category="Settings"))
    from admin.outbox import add_outbox_view  # the email outbox (admin and reception)

    add_outbox_view(admin)
    # Model views check their own SecureForm CSRF token (forms, actions, ajax/update); Flask-WTF's
    # global check would refuse those tokens. The day view and sign-in keep Flask-WTF's.
    from admin.base import SecureModelView
    from web.extensions import csrf

    for view in admin._views:
        if isinstance(view, SecureModelView):
            csrf.exempt(view.blueprint)
    app.extensions["clinic_admin"] = admin
    return admin
