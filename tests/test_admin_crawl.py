"""Every back-office page for every role, on seeded data: each role gets exactly the status the role
table says (README's back-office table, admin/roles.py): 200 where it may, 403 where its role may
not open the view, a redirect (302) where it may open the view but not that page (a form it may not
use, an export it may not take, a record not its own). Never a server error, and never a secret
(password hash, token generation)."""

from datetime import datetime, timedelta, timezone

import pytest

from models import Patient, Payment, StaffUser, TimeOff
from models.booking.create import book
from models.documents import Schedule
from models.seed import DEMO_PASSWORD
from tests.support.factories import at, demo_paid_visit, form_csrf, staff_login

ROLES = {"admin": "admin@clinic.test", "reception": "reception@clinic.test",
         "provider": "provider@clinic.test"}
SECRETS = ("$argon2", "password_hash", "Password Hash", "token_generation", "Token Generation")
# The service form's fields as the tests fill them unless they say otherwise.
SERVICE_FORM = {"duration_minutes": "30", "currency": "gbp", "refund_rule": "full", "buffer_before_minutes": "0",
                "buffer_after_minutes": "0", "min_notice_minutes": "0", "horizon_days": "30",
                "cancellation_window_hours": "0"}

OK, NO, AWAY = 200, 403, 302  # opens; refused (the role may not open the view); sent back to the list
# Every page the crawl opens and what each role gets: (admin, reception, provider). `{name}` is a
# record of the seeded data (see `crawl_ids`); "own" and "other" are the provider role's own
# provider (Dr Amira Shah) and another one's (Dr Tom Evans). A provider reaches another provider's
# record as if it did not exist: sent back to the list.
EXPECTED = {
    # Home: today at a glance (a provider sees its own day, no money) and patient search.
    "/admin/": (OK, OK, OK),
    "/admin/?q=pat": (OK, OK, OK),
    # The day view: every role reads it (a provider its own column); only the front desk books,
    # cancels and moves.
    "/admin/day/": (OK, OK, OK),
    "/admin/day/?day={day}": (OK, OK, OK),
    "/admin/day/week?day={day}": (OK, OK, OK),
    "/admin/day/print?day={day}": (OK, OK, OK),
    "/admin/day/new?day={day}": (OK, OK, NO),
    "/admin/day/cancel?appointment={appointment}": (OK, OK, NO),
    "/admin/day/move?appointment={appointment}": (OK, OK, NO),
    # No-show protection: the confirm step before a no-show with a fee; every role marks no-shows.
    "/admin/day/no-show?appointment={appointment}": (OK, OK, OK),
    # Appointments: everyone reads (a provider its own); booked from the day view, never created or
    # edited here; the front desk exports.
    "/admin/appointments/": (OK, OK, OK),
    "/admin/appointments/?search=pat": (OK, OK, OK),
    "/admin/appointments/new/": (AWAY, AWAY, AWAY),
    "/admin/appointments/export/csv/": (OK, OK, AWAY),
    "/admin/appointments/details/?id={appointment}": (OK, OK, OK),
    "/admin/appointments/details/?id={other_appointment}": (OK, OK, AWAY),
    "/admin/appointments/edit/?id={appointment}": (AWAY, AWAY, AWAY),
    # Patients: the front desk searches, creates and edits; no export; not the provider role.
    "/admin/patients/": (OK, OK, NO),
    "/admin/patients/?search=pat": (OK, OK, NO),
    "/admin/patients/new/": (OK, OK, NO),
    "/admin/patients/export/csv/": (AWAY, AWAY, NO),
    "/admin/patients/details/?id={patient}": (OK, OK, NO),
    "/admin/patients/edit/?id={patient}": (OK, OK, NO),
    "/admin/patients/merge/?id={patient}": (OK, NO, NO),  # issue 26: merging records is the admin's
    # Waitlist: read-only, for the front desk.
    "/admin/waitlist/": (OK, OK, NO),
    "/admin/waitlist/?search=pat": (OK, OK, NO),
    "/admin/waitlist/new/": (AWAY, AWAY, NO),
    "/admin/waitlist/export/csv/": (AWAY, AWAY, NO),
    "/admin/waitlist/details/?id={waitlist}": (OK, OK, NO),
    "/admin/waitlist/edit/?id={waitlist}": (AWAY, AWAY, NO),
    # Closures and public holidays (issue 25): the front desk enters closures and re-opens holidays.
    "/admin/closures/": (OK, OK, NO),
    "/admin/closures/new/": (OK, OK, NO),
    "/admin/closures/export/csv/": (AWAY, AWAY, NO),
    "/admin/closures/details/?id={closure}": (OK, OK, NO),
    "/admin/closures/edit/?id={closure}": (OK, OK, NO),
    "/admin/holidays/": (OK, OK, NO),
    # Providers and services: admins edit, reception reads.
    "/admin/providers/": (OK, OK, NO),
    "/admin/providers/?search=pat": (OK, OK, NO),
    "/admin/providers/new/": (OK, AWAY, NO),
    "/admin/providers/export/csv/": (AWAY, AWAY, NO),
    "/admin/providers/details/?id={provider}": (OK, OK, NO),
    "/admin/providers/edit/?id={provider}": (OK, AWAY, NO),
    "/admin/services/": (OK, OK, NO),
    "/admin/services/?search=pat": (OK, OK, NO),
    "/admin/services/new/": (OK, AWAY, NO),
    "/admin/services/export/csv/": (AWAY, AWAY, NO),
    "/admin/services/details/?id={service}": (OK, OK, NO),
    "/admin/services/edit/?id={service}": (OK, AWAY, NO),
    # Schedules: admins edit any, reception reads, a provider edits its own (it has hours already,
    # so "new" opens those).
    "/admin/schedules/": (OK, OK, OK),
    "/admin/schedules/?search=pat": (OK, OK, OK),
    "/admin/schedules/new/": (OK, AWAY, AWAY),
    "/admin/schedules/export/csv/": (AWAY, AWAY, AWAY),
    "/admin/schedules/details/?id={schedule}": (OK, OK, OK),
    "/admin/schedules/details/?id={other_schedule}": (OK, OK, AWAY),
    "/admin/schedules/edit/?id={schedule}": (OK, AWAY, OK),
    "/admin/schedules/edit/?id={other_schedule}": (OK, AWAY, AWAY),
    # Time off: admins and reception enter anyone's, a provider its own.
    "/admin/time_off/": (OK, OK, OK),
    "/admin/time_off/?search=pat": (OK, OK, OK),
    "/admin/time_off/new/": (OK, OK, OK),
    "/admin/time_off/export/csv/": (AWAY, AWAY, AWAY),
    "/admin/time_off/details/?id={time_off}": (OK, OK, OK),
    "/admin/time_off/details/?id={other_time_off}": (OK, OK, AWAY),
    "/admin/time_off/edit/?id={time_off}": (OK, OK, OK),
    "/admin/time_off/edit/?id={other_time_off}": (OK, OK, AWAY),
    # Payments ledger and Stripe events: read by the front desk (payments exported), written by nobody.
    "/admin/payments/": (OK, OK, NO),
    "/admin/payments/?search=pat": (OK, OK, NO),
    "/admin/payments/new/": (AWAY, AWAY, NO),
    "/admin/payments/export/csv/": (OK, OK, NO),
    "/admin/payments/details/?id={payment}": (OK, OK, NO),
    "/admin/payments/edit/?id={payment}": (AWAY, AWAY, NO),
    "/admin/stripe_events/": (OK, OK, NO),
    "/admin/stripe_events/?search=pat": (OK, OK, NO),
    "/admin/stripe_events/new/": (AWAY, AWAY, NO),
    "/admin/stripe_events/export/csv/": (AWAY, AWAY, NO),
    "/admin/stripe_events/details/?id={stripe_event}": (OK, OK, NO),
    "/admin/stripe_events/edit/?id={stripe_event}": (AWAY, AWAY, NO),
    # Outbox: read by the front desk (resend is an action), written by nobody.
    "/admin/outbox/": (OK, OK, NO),
    "/admin/outbox/?search=pat": (OK, OK, NO),
    "/admin/outbox/new/": (AWAY, AWAY, NO),
    "/admin/outbox/export/csv/": (AWAY, AWAY, NO),
    "/admin/outbox/details/?id={outbox}": (OK, OK, NO),
    "/admin/outbox/edit/?id={outbox}": (AWAY, AWAY, NO),
    # Staff, clinic settings and the audit log: admins only; the clinic is never created here, the
    # audit log never written.
    "/admin/staff/": (OK, NO, NO),
    "/admin/staff/?search=pat": (OK, NO, NO),
    "/admin/staff/new/": (OK, NO, NO),
    "/admin/staff/export/csv/": (AWAY, NO, NO),
    "/admin/staff/details/?id={staff}": (OK, NO, NO),
    "/admin/staff/edit/?id={staff}": (OK, NO, NO),
    "/admin/clinic/": (OK, NO, NO),
    "/admin/clinic/?search=pat": (OK, NO, NO),
    "/admin/clinic/new/": (AWAY, NO, NO),
    "/admin/clinic/export/csv/": (AWAY, NO, NO),
    "/admin/clinic/details/?id={clinic}": (OK, NO, NO),
    "/admin/clinic/edit/?id={clinic}": (OK, NO, NO),
    "/admin/audit/": (OK, NO, NO),
    "/admin/audit/?search=pat": (OK, NO, NO),
    "/admin/audit/new/": (AWAY, NO, NO),
    "/admin/audit/export/csv/": (AWAY, NO, NO),
    "/admin/audit/details/?id={audit}": (OK, NO, NO),
    "/admin/audit/edit/?id={audit}": (AWAY, NO, NO),
}
ROLE_ORDER = ("admin", "reception", "provider")
# GET endpoints of the back office's views that the crawl does not open, and why.
NOT_CRAWLED = {
    "ajax_lookup": "Flask-Admin's lookup for ajax form fields: no view configures one (form_ajax_refs)",
    "api_file_view": "Flask-Admin's GridFS file download: no document has a file field",
    "static": "Flask-Admin's own CSS and scripts",
}


def post_form(client, path, data):
    """Post a back-office form as a browser does, with the CSRF token of the page it was opened on."""
    token = form_csrf(client.get(path).get_data(as_text=True))
    return client.post(path, data=dict(data, csrf_token=token))


def post_service(client, path="/admin/services/new/", **fields):
    """Post the service form (create, or edit at `path`): `fields` over SERVICE_FORM."""
    return post_form(client, path, dict(SERVICE_FORM, **fields))


@pytest.fixture
def seeded(app):
    """The demo clinic plus an appointment, a payment, time off and an audit trail to look at."""
    visit = demo_paid_visit(stripe_payment_intent="pi_test_crawl")
    patient, amira, day = visit["patient"], visit["amira"], visit["day"]
    from models import Service

    call = Service.objects.get(name="Follow-up call")
    paid = visit["appointment"]
    free = book(patient, str(call.id), str(amira.id), at(day, 11), datetime.now(timezone.utc))
    TimeOff(provider=amira, start=at(day + timedelta(days=1), 9), end=at(day + timedelta(days=1), 12),
            reason="Training").save()
    return {"patient": patient, "paid": paid, "free": free, "day": day}


def first_id(model, **query):
    """The id of one stored record (any record) of a model."""
    doc = model.objects(**query).first()
    return str(doc.id) if doc else None


def crawl_ids(seeded):
    """A record of every view for the crawl's pages; for the provider-scoped views (appointments,
    schedules, time off) one of the provider role's own provider and one of another provider."""
    from models import AuditEvent, Clinic, Provider, Service, StripeEvent
    from models.booking.waitlist import WaitlistEntry
    from models.messages.outbox import OutboxMessage

    amira = Provider.objects.get(email="amira.shah@clinic.test")
    tom = Provider.objects.get(email="tom.evans@clinic.test")
    call = Service.objects.get(name="Follow-up call")
    day = seeded["day"]
    other_appointment = book(seeded["patient"], str(call.id), str(tom.id), at(day, 15), datetime.now(timezone.utc))
    other_time_off = TimeOff(provider=tom, start=at(day + timedelta(days=2), 9), end=at(day + timedelta(days=2), 12),
                             reason="Conference").save()
    waitlist = WaitlistEntry(patient=seeded["patient"], service=call, date_from=day, date_to=day).save()
    ids = {
        "day": day.isoformat(), "appointment": str(seeded["paid"].id), "other_appointment": str(other_appointment.id),
        "patient": str(seeded["patient"].id), "waitlist": str(waitlist.id), "provider": first_id(Provider),
        "service": first_id(Service), "schedule": first_id(Schedule, provider=amira.id),
        "other_schedule": first_id(Schedule, provider=tom.id), "time_off": first_id(TimeOff, provider=amira.id),
        "other_time_off": str(other_time_off.id), "payment": first_id(Payment), "stripe_event": first_id(StripeEvent),
        "outbox": first_id(OutboxMessage), "staff": first_id(StaffUser), "clinic": first_id(Clinic),
        "audit": first_id(AuditEvent), "closure": _a_closure(),
    }
    missing = sorted(name for name, value in ids.items() if value is None)
    assert not missing, f"no record to crawl for: {missing}"
    return ids


def uncovered_pages(app):
    """GET endpoints of the back office's views that no page of EXPECTED opens (NOT_CRAWLED aside),
    and views with no page in EXPECTED at all."""
    views = {view.endpoint for view in app.extensions["clinic_admin"]._views}
    adapter = app.url_map.bind("localhost")
    crawled = {adapter.match(path.split("?")[0])[0] for path in EXPECTED}
    missing_views = sorted(views - {endpoint.split(".")[0] for endpoint in crawled})
    missing_pages = sorted(
        rule.endpoint for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in views and "GET" in rule.methods
        and rule.endpoint.split(".")[-1] not in NOT_CRAWLED and rule.endpoint not in crawled)
    return missing_views, missing_pages


def test_the_crawl_states_a_status_for_every_page_of_every_view(app):
    """A view or a page added to the back office fails here until EXPECTED says who may open it."""
    missing_views, missing_pages = uncovered_pages(app)
    assert not missing_views, f"views with no expected statuses in EXPECTED: {missing_views}"
    assert not missing_pages, f"pages with no expected statuses in EXPECTED: {missing_pages}"


@pytest.mark.parametrize("role", ROLE_ORDER)
def test_every_page_answers_each_role_as_the_role_table_says(app, seeded, role):
    """Each page of EXPECTED answers this role with exactly its status, and shows no secret."""
    from models import AuditEvent

    # An audit event and a Stripe event exist, so their details pages are crawled too.
    from models import StripeEvent

    StripeEvent(event_id="evt_crawl", type="payment_intent.succeeded", object_id="pi_test_crawl").save()
    AuditEvent(actor="system", action="crawl.start").save()
    ids = crawl_ids(seeded)
    client = app.test_client()
    assert staff_login(client, ROLES[role], DEMO_PASSWORD).status_code == 302
    wrong = []
    for template, statuses in EXPECTED.items():
        path = template.format(**ids)
        expected = statuses[ROLE_ORDER.index(role)]
        resp = client.get(path)
        if resp.status_code != expected:
            wrong.append(f"{path}: {resp.status_code}, expected {expected}")
        body = resp.get_data(as_text=True)
        for secret in SECRETS:
            assert secret not in body, (role, path, secret)
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def test_admin_saves_every_create_form(app, seeded):
    """Each create form, filled as an admin would, saves (no 500, no raw error)."""
    from models import Provider, Service

    client = app.test_client()
    assert staff_login(client, ROLES["admin"], DEMO_PASSWORD).status_code == 302

    def post(path, data):
        return post_form(client, path, data)

    consult = Service.objects.get(name="General consultation")
    massage_form = dict(name="Massage", duration_minutes="60", price="55.00", active="y", min_notice_minutes="60",
                        horizon_days="60", cancellation_window_hours="24")
    resp = post_service(client, **massage_form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    massage = Service.objects.get(name="Massage")
    assert massage.price == 5500
    edit = client.get(f"/admin/services/edit/?id={massage.id}").get_data(as_text=True)
    assert 'value="55.00"' in edit
    resp = post_service(client, f"/admin/services/edit/?id={massage.id}", **dict(massage_form, price="57.50"))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert Service.objects.get(id=massage.id).price == 5750
    from models import Clinic

    clinic = Clinic.get()
    resp = post(f"/admin/clinic/edit/?id={clinic.id}", {
        "name": "Riverside Clinic", "timezone": "Europe/Londres", "currency": "gbp", "hold_minutes": "15",
        "slot_step_minutes": "15", "default_cancellation_hours": "24", "phone": "+44 20 7946 0123"})
    assert resp.status_code == 200 and "is not an IANA timezone" in resp.get_data(as_text=True)
    assert Clinic.get().timezone == "Europe/London"
    resp = post("/admin/providers/new/", {"name": "Dr New", "email": "new@clinic.test",
                                          "services": [str(consult.id)], "active": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    new = Provider.objects.get(name="Dr New")
    assert [s.id for s in new.services] == [consult.id]
    resp = post("/admin/time_off/new/", {"provider": str(new.id), "start": "2027-07-01T09:00",
                                         "end": "2027-07-01T17:00", "reason": "Conference"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    off = TimeOff.objects.get(reason="Conference")
    assert off.start.replace(tzinfo=timezone.utc) == datetime(2027, 7, 1, 8, 0, tzinfo=timezone.utc)
    edit = client.get(f"/admin/time_off/edit/?id={off.id}").get_data(as_text=True)
    assert 'type="datetime-local"' in edit and 'value="2027-07-01T09:00"' in edit  # shown in local time
    assert "Local time in Europe/London." in edit
    resp = post("/admin/staff/new/", {"email": "Nurse@Clinic.test", "name": "Nurse", "role": "reception",
                                      "password": "a long enough pass", "active": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert StaffUser.objects.get(email="nurse@clinic.test").role == "reception"


def test_duplicate_and_invalid_input_is_explained_on_the_field(app, seeded):
    from models import Service

    client = app.test_client()
    assert staff_login(client, ROLES["admin"], DEMO_PASSWORD).status_code == 302
    resp = post_service(client, name="General consultation", price="12.5x")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "E11000" not in page
    assert "A service named “General consultation” already exists." in page
    assert "Enter an amount like 55.00" in page
    assert Service.objects(name="General consultation").count() == 1


def test_exports_and_patient_forms_are_audited_without_secrets(app, seeded):
    from models import AuditEvent

    client = app.test_client()
    assert staff_login(client, ROLES["reception"], DEMO_PASSWORD).status_code == 302
    staff = StaffUser.objects.get(email=ROLES["reception"])
    actor = f"staff:{staff.id}"
    # Each export streams: read it to its end before the next request, as a browser would.
    appointments = client.get("/admin/appointments/export/csv/")
    assert appointments.status_code == 200 and "Pat Demo" in appointments.get_data(as_text=True)
    payments = client.get("/admin/payments/export/csv/")
    assert payments.status_code == 200
    assert "60.00" in payments.get_data(as_text=True) and "GBP" in payments.get_data(as_text=True)
    assert "General consultation with Dr Amira Shah" in payments.get_data(as_text=True)
    client.get(f"/admin/patients/edit/?id={seeded['patient'].id}")
    client.get(f"/admin/payments/details/?id={first_id(Payment)}")
    events = {(e.actor, e.action, e.record) for e in AuditEvent.objects(actor=actor)}
    assert (actor, "Appointment.export", "Appointment") in events
    assert (actor, "Payment.export", "Payment") in events
    assert (actor, "Patient.edit", f"Patient:{seeded['patient'].id}") in events
    assert (actor, "Payment.read", f"Payment:{first_id(Payment)}") in events
    # The provider role may not export: refused, and nothing exported is recorded.
    provider = app.test_client()
    assert staff_login(provider, ROLES["provider"], DEMO_PASSWORD).status_code == 302
    assert provider.get("/admin/appointments/export/csv/").status_code in (302, 403)
    provider_staff = StaffUser.objects.get(email=ROLES["provider"])
    assert AuditEvent.objects(actor=f"staff:{provider_staff.id}", action="Appointment.export").count() == 0


def test_lists_read_like_a_clinic(app, seeded):
    client = app.test_client()
    assert staff_login(client, ROLES["reception"], DEMO_PASSWORD).status_code == 302
    payments = client.get("/admin/payments/").get_data(as_text=True)
    assert "£60.00" in payments and "6000" not in payments
    assert "General consultation with Dr Amira Shah" in payments
    assert str(seeded["paid"].id) + "<" not in payments  # the appointment is named, not an id
    appointments = client.get("/admin/appointments/").get_data(as_text=True)
    assert "£60.00" in appointments and ("GMT" in appointments or "BST" in appointments)
    patients = client.get("/admin/patients/").get_data(as_text=True)
    assert 'placeholder="Search name, email or phone"' in patients
    assert 'placeholder="None"' not in patients
    # A patient's page lists their appointments and payments.
    detail = client.get(f"/admin/patients/details/?id={seeded['patient'].id}").get_data(as_text=True)
    assert "Appointments" in detail and "Payments" in detail
    assert "General consultation" in detail and "Follow-up call" in detail and "£60.00" in detail
    # Appointments can be filtered by patient (name, email or phone).
    other = Patient(email="other@example.com", name="Olive Other", password_hash="x").save()
    from models import Provider, Service

    book(other, str(Service.objects.get(name="Follow-up call").id),
         str(Provider.objects.get(email="tom.evans@clinic.test").id), at(seeded["day"], 15),
         datetime.now(timezone.utc))
    from admin.views import FilterPatientText

    view = next(v for v in app.extensions["clinic_admin"]._views if getattr(v, "endpoint", "") == "appointments")
    index = next(i for i, f in enumerate(view._filters) if isinstance(f, FilterPatientText))
    filtered = client.get(f"/admin/appointments/?flt0_{view.get_filter_arg(index, view._filters[index])}=olive")
    text = filtered.get_data(as_text=True)
    assert "Olive Other" in text and "Pat Demo" not in text


def test_a_rule_of_the_model_is_shown_on_its_field(app, seeded):
    from models import Service

    client = app.test_client()
    assert staff_login(client, ROLES["admin"], DEMO_PASSWORD).status_code == 302
    resp = post_service(client, name="Odd length", duration_minutes="32", price="10.00")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'id="duration_minutes-error"' in page and "duration_minutes must be a multiple of 5" in page
    assert Service.objects(name="Odd length").count() == 0


def test_edit_forms_save_for_the_roles_that_may_use_them(app, seeded):
    from models import Provider

    def signed_in(role):
        client = app.test_client()
        assert staff_login(client, ROLES[role], DEMO_PASSWORD).status_code == 302
        return client

    post = post_form
    patient = seeded["patient"]
    resp = post(signed_in("reception"), f"/admin/patients/edit/?id={patient.id}",
                {"name": "Pat Demo", "email": "patient@clinic.test", "phone": "+44 20 7946 9999", "active": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert Patient.objects.get(id=patient.id).phone == "+442079469999"  # stored E.164 (issue 29)

    admin = signed_in("admin")
    amira = Provider.objects.get(email="amira.shah@clinic.test")
    nurse = StaffUser.objects.get(email=ROLES["reception"])
    resp = post(admin, f"/admin/staff/edit/?id={nurse.id}",
                {"email": nurse.email, "name": "Rita R.", "role": "reception", "provider": "__None", "active": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert StaffUser.objects.get(id=nurse.id).name == "Rita R."
    resp = post(admin, f"/admin/providers/edit/?id={amira.id}",
                {"name": "Dr Amira Shah", "email": "Amira.Shah@Clinic.test",
                 "services": [str(s.id) for s in amira.services], "active": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert Provider.objects.get(id=amira.id).email == "amira.shah@clinic.test"
    # A second patient may not take the first one's email: said on the field.
    other = Patient(email="other@example.com", name="Olive Other", password_hash="x").save()
    resp = post(signed_in("reception"), f"/admin/patients/edit/?id={other.id}",
                {"name": "Olive Other", "email": "Patient@Clinic.test", "phone": "", "active": "y"})
    assert resp.status_code == 200
    assert "Another patient already has this email (Patient@Clinic.test)." in resp.get_data(as_text=True)

    off = TimeOff.objects.get(reason="Training")
    resp = post(signed_in("provider"), f"/admin/time_off/edit/?id={off.id}",
                {"start": "2027-01-04T09:00", "end": "2027-01-04T08:00", "reason": "Training"})
    assert resp.status_code == 200 and "The end must be after the start." in resp.get_data(as_text=True)
    resp = post(signed_in("provider"), f"/admin/time_off/edit/?id={off.id}",
                {"start": "2027-01-04T09:00", "end": "2027-01-04T13:00", "reason": "Training"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert TimeOff.objects.get(id=off.id).start.replace(tzinfo=timezone.utc) == datetime(
        2027, 1, 4, 9, 0, tzinfo=timezone.utc)  # GMT in January


def test_a_malformed_record_id_says_it_does_not_exist(make_app):
    """/admin/…/details/?id=zzz: the plain "Record does not exist.", not MongoDB's ObjectId error."""
    from models.seed import DEMO_PASSWORD, seed_demo
    from tests.support.factories import staff_login

    app = make_app()
    with app.app_context():
        seed_demo()
    client = app.test_client()
    assert staff_login(client, "admin@clinic.test", DEMO_PASSWORD).status_code == 302
    for view in ("patients", "outbox", "appointments", "payments"):
        resp = client.get(f"/admin/{view}/details/?id=zzz", follow_redirects=True)
        body = resp.get_data(as_text=True)
        assert resp.status_code == 200, (view, resp.status_code)
        assert "Record does not exist" in body and "not a valid ObjectId" not in body, view


def _a_closure():
    """A closure for the crawl's pages (issue 25)."""
    from datetime import datetime, timedelta, timezone

    from models.catalog.documents import Closure

    start = datetime.now(timezone.utc) + timedelta(days=40)
    return str(Closure(start=start, end=start + timedelta(hours=3), reason="Staff training").save().id)
