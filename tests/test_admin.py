"""The back office by role: what each role can open and do, refused writes, audit, staff booking."""

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, AuditEvent, Patient, Service, StaffUser
from models.booking.create import book
from tests.support.factories import (
    LONDON,
    at,
    future_day,
    form_csrf,
    make_clinic,
    make_patient,
    make_provider,
    make_service,
    make_staff,
    staff_login,
)
from tests.support.clients import signed_in_staff

ADMIN, RECEPTION, PROVIDER = "admin", "reception", "provider"

# The role table: which list pages each role can open.
VIEW_ACCESS = {
    "/admin/": {ADMIN, RECEPTION, PROVIDER},
    "/admin/day/": {ADMIN, RECEPTION, PROVIDER},
    "/admin/appointments/": {ADMIN, RECEPTION, PROVIDER},
    "/admin/schedules/": {ADMIN, RECEPTION, PROVIDER},
    "/admin/time_off/": {ADMIN, RECEPTION, PROVIDER},
    "/admin/patients/": {ADMIN, RECEPTION},
    "/admin/providers/": {ADMIN, RECEPTION},
    "/admin/services/": {ADMIN, RECEPTION},
    "/admin/payments/": {ADMIN, RECEPTION},
    "/admin/stripe_events/": {ADMIN, RECEPTION},
    "/admin/staff/": {ADMIN},
    "/admin/clinic/": {ADMIN},
    "/admin/audit/": {ADMIN},
}




@pytest.fixture
def clinic(app, clinic_world):
    return clinic_world(
        services={"consult": dict(name="Consultation", duration=30, price=5000),
                  "call": dict(name="Call", duration=15, price=0)},
        providers={"one": dict(name="Dr One"), "two": dict(name="Dr Two")},
        staff=(ADMIN, RECEPTION), provider_staff="one", patients=["pat@example.com"])


@pytest.mark.parametrize("role", [ADMIN, RECEPTION, PROVIDER])
def test_role_table_of_views(app, clinic, role):
    client = signed_in_staff(app, role)
    for path, roles in VIEW_ACCESS.items():
        status = client.get(path).status_code
        assert status == (200 if role in roles else 403), (role, path, status)


def test_forbidden_create_is_refused_and_creates_nothing(app, clinic):
    client = signed_in_staff(app, RECEPTION)
    assert client.get("/admin/staff/new/").status_code == 403
    token = form_csrf(client.get("/admin/patients/new/").get_data(as_text=True))
    resp = client.post("/admin/staff/new/", data={"email": "evil@clinic.test", "role": "admin",
                                                  "password": "long enough", "csrf_token": token})
    assert resp.status_code == 403
    assert StaffUser.objects(email="evil@clinic.test").count() == 0


@pytest.mark.parametrize("path,field,value", [
    ("/admin/services/ajax/update/", "price", "1"),
    ("/admin/payments/ajax/update/", "status", "succeeded"),
])
def test_inline_edits_through_ajax_update_are_refused(app, clinic, path, field, value):
    client = signed_in_staff(app, RECEPTION)
    token = form_csrf(client.get("/admin/patients/new/").get_data(as_text=True))
    resp = client.post(path, data={"list_form_pk": str(clinic["consult"].id), field: value,
                                   "csrf_token": token})
    assert resp.status_code == 403
    assert Service.objects.get(id=clinic["consult"].id).price == 5000


def test_provider_cannot_cancel_through_actions_or_day_view(app, clinic):
    appt = book(clinic["patient"], str(clinic["call"].id), str(clinic["one"].id), at(future_day(), 10),
                datetime.now(timezone.utc))
    client = signed_in_staff(app, PROVIDER)
    model_token = form_csrf(client.get("/admin/time_off/new/").get_data(as_text=True))
    client.post("/admin/appointments/action/", data={"action": "cancel", "rowid": str(appt.id),
                                                     "csrf_token": model_token})
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    # The day view offers this provider no form at all; any Flask-WTF token of the session will do.
    day_token = form_csrf(client.get("/admin/login").get_data(as_text=True))
    resp = client.post("/admin/day/act", data={"op": "cancel", "appointment": str(appt.id),
                                               "csrf_token": day_token})
    assert resp.status_code == 403
    assert Appointment.objects.get(id=appt.id).status == "confirmed"


def test_provider_sees_only_their_own_appointments(app, clinic):
    now = datetime.now(timezone.utc)
    mine = book(clinic["patient"], str(clinic["call"].id), str(clinic["one"].id), at(future_day(), 10), now)
    other_patient = make_patient(email="other@example.com", name="Other Person")
    theirs = book(other_patient, str(clinic["call"].id), str(clinic["two"].id), at(future_day(), 11), now)
    client = signed_in_staff(app, PROVIDER)
    listing = client.get("/admin/appointments/").get_data(as_text=True)
    assert "Pat Example" in listing and "Other Person" not in listing
    detail = client.get(f"/admin/appointments/details/?id={theirs.id}")
    assert detail.status_code in (302, 404)
    assert "Other Person" not in client.get(f"/admin/appointments/details/?id={theirs.id}",
                                            follow_redirects=True).get_data(as_text=True)
    assert client.get(f"/admin/appointments/details/?id={mine.id}").status_code == 200


def test_patient_data_reads_are_audited(app, clinic):
    client = signed_in_staff(app, RECEPTION)
    client.get("/admin/patients/")
    client.get(f"/admin/patients/details/?id={clinic['patient'].id}")
    staff = StaffUser.objects.get(email="reception@clinic.test")
    actions = {(e.actor, e.action, e.record) for e in AuditEvent.objects}
    assert (f"staff:{staff.id}", "Patient.list", "Patient") in actions
    assert (f"staff:{staff.id}", "Patient.read", f"Patient:{clinic['patient'].id}") in actions


def test_patient_entered_text_is_escaped(app, clinic):
    make_patient(email="xss@example.com", name="<script>alert(1)</script>")
    page = signed_in_staff(app, RECEPTION).get("/admin/patients/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_csv_export_neutralises_formulas_and_is_role_checked(app, clinic):
    sneaky = make_patient(email="sneaky@example.com", name="=HYPERLINK(\"http://evil\")")
    book(sneaky, str(clinic["call"].id), str(clinic["one"].id), at(future_day(), 10), datetime.now(timezone.utc))
    resp = signed_in_staff(app, RECEPTION).get("/admin/appointments/export/csv/")
    assert resp.status_code == 200
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    cells = [cell for row in rows for cell in row]
    assert any(cell.startswith("'=HYPERLINK") for cell in cells), cells
    assert not any(cell.startswith("=") for cell in cells)
    provider_export = signed_in_staff(app, PROVIDER).get("/admin/appointments/export/csv/")
    assert provider_export.status_code != 200 or "HYPERLINK" not in provider_export.get_data(as_text=True)


def test_staff_booking_refuses_conflict_and_override_is_explicit_and_audited(app, clinic):
    day = future_day()
    book(clinic["patient"], str(clinic["consult"].id), str(clinic["one"].id), at(day, 10),
         datetime.now(timezone.utc))
    other = make_patient(email="walkin@example.com", name="Walk In")
    client = signed_in_staff(app, RECEPTION)
    page = client.get(f"/admin/day/new?day={day}&service={clinic['consult'].id}&provider={clinic['one'].id}"
                      f"&patient=walkin@example.com").get_data(as_text=True)
    assert "Book " in page
    token = form_csrf(page)
    form = {"csrf_token": token, "day": day.isoformat(), "patient": "walkin@example.com",
            "service": str(clinic["consult"].id), "provider": str(clinic["one"].id), "time": "10:00"}
    refused = client.post("/admin/day/book", data=form, follow_redirects=True)
    assert "That time is no longer free" in refused.get_data(as_text=True)
    assert Appointment.objects(patient=other.id).count() == 0
    no_reason = client.post("/admin/day/book", data=dict(form, override="yes"), follow_redirects=True)
    assert "An override needs a reason" in no_reason.get_data(as_text=True)
    assert Appointment.objects(patient=other.id).count() == 0
    client.post("/admin/day/book", data=dict(form, override="yes", override_reason="urgent, agreed by Dr One"))
    forced = Appointment.objects.get(patient=other.id)
    assert forced.override and forced.status == "confirmed" and "urgent" in forced.notes
    assert AuditEvent.objects(action="appointment.override", record=f"Appointment:{forced.id}").count() == 1


def test_staff_books_a_free_time_through_the_booking_rule(app, clinic):
    day = future_day()
    client = signed_in_staff(app, RECEPTION)
    page = client.get(f"/admin/day/new?day={day}&service={clinic['consult'].id}&provider={clinic['two'].id}"
                      f"&patient=pat@example.com").get_data(as_text=True)
    resp = client.post("/admin/day/book", data={
        "csrf_token": form_csrf(page), "day": day.isoformat(), "patient": "pat@example.com",
        "service": str(clinic["consult"].id), "provider": str(clinic["two"].id),
        "start": at(day, 9).isoformat()})
    assert resp.status_code == 302
    appt = Appointment.objects.get(patient=clinic["patient"].id)
    assert appt.status == "confirmed" and appt.booked_by.startswith("staff:") and not appt.override
    # Outside working hours is refused even for staff.
    client.post("/admin/day/book", data={
        "csrf_token": form_csrf(page), "day": day.isoformat(), "patient": "pat@example.com",
        "service": str(clinic["call"].id), "provider": str(clinic["two"].id), "time": "22:00"})
    assert Appointment.objects(patient=clinic["patient"].id).count() == 1


def test_reception_cancels_and_checks_in_from_the_day_view(app, clinic):
    today = datetime.now(timezone.utc).astimezone(LONDON).date()
    now = datetime.now(timezone.utc)
    later = book(clinic["patient"], str(clinic["call"].id), str(clinic["one"].id), at(future_day(), 10), now,
                 pay_online=False)
    # Today's appointment, booked earlier by staff.
    todays = Appointment(patient=clinic["patient"], provider=clinic["two"], service=clinic["call"],
                         start=now + timedelta(minutes=5), end=now + timedelta(minutes=20),
                         block_start=now + timedelta(minutes=5), block_end=now + timedelta(minutes=20),
                         status="confirmed", booked_by="staff:test").save()
    client = signed_in_staff(app, RECEPTION)
    token = form_csrf(client.get(f"/admin/day/?day={today}").get_data(as_text=True))
    client.post("/admin/day/act", data={"op": "check_in", "appointment": str(todays.id), "csrf_token": token})
    assert Appointment.objects.get(id=todays.id).status == "checked_in"
    early = client.post("/admin/day/act", data={"op": "check_in", "appointment": str(later.id),
                                                "csrf_token": token}, follow_redirects=True)
    assert "Only today" in early.get_data(as_text=True)
    client.post("/admin/day/act", data={"op": "cancel", "appointment": str(later.id), "csrf_token": token,
                                        "confirm": "yes", "reason": "patient called"})
    assert Appointment.objects.get(id=later.id).status == "cancelled"


def test_appointment_list_cost_does_not_grow_with_rows(make_app):
    app = make_app(COUNT_DB_COMMANDS=True)
    make_clinic()
    call = make_service("Call", duration=15, price=0)
    providers = [make_provider([call], name=f"Dr {i}") for i in range(4)]
    make_staff(RECEPTION)
    patients = [make_patient(email=f"p{i}@example.com", name=f"Patient {i}") for i in range(20)]

    def fill(count, offset):
        for i in range(count):
            day = future_day(2 + (offset + i) // 20)
            start = at(day, 9) + timedelta(minutes=15 * ((offset + i) % 20))
            Appointment(patient=patients[i % 20], provider=providers[i % 4], service=call, start=start,
                        end=start + timedelta(minutes=15), block_start=start,
                        block_end=start + timedelta(minutes=15), status="confirmed").save()

    client = app.test_client()
    assert staff_login(client, "reception@clinic.test").status_code == 302
    fill(20, 0)
    small = client.get("/admin/appointments/")
    assert small.status_code == 200 and small.get_data(as_text=True).count("Patient 1") >= 1
    fill(80, 20)
    large = client.get("/admin/appointments/")
    assert int(small.headers["X-DB-Commands"]) == int(large.headers["X-DB-Commands"]), (
        small.headers["X-DB-Commands"], large.headers["X-DB-Commands"])


def test_reception_registers_a_patient_through_the_secure_form(app, clinic):
    client = signed_in_staff(app, RECEPTION)
    token = form_csrf(client.get("/admin/patients/new/").get_data(as_text=True))
    resp = client.post("/admin/patients/new/", data={"csrf_token": token, "name": "Phone Booker",
                                                     "email": "Phone@Example.com", "phone": "020 7946 0123",
                                                     "active": "y"})
    assert resp.status_code == 302
    created = Patient.objects.get(email="phone@example.com")
    assert created.password_hash.startswith("$argon2id$")
    forged = client.post("/admin/patients/new/", data={"csrf_token": "forged", "name": "Forged",
                                                       "email": "forged@example.com"})
    assert forged.status_code == 200  # the form is shown again with the error
    assert Patient.objects(email="forged@example.com").count() == 0


@pytest.mark.parametrize("field, value, error", [
    # NFKC makes the full-width address pat@example.com, which the fixture's patient has.
    ("email", "\uff50\uff41\uff54@example.com", "a patient with this email exists"),
    ("email", "not-an-email", "invalid email address"),
    ("phone", "0123", "too short"),
])
def test_the_back_office_creates_a_patient_only_past_the_desks_checks(app, clinic, field, value, error):
    """The back office's "create patient" runs the front desk's new-caller rule: a duplicate (after
    normalising), an invalid email or a phone nobody can call back is refused on its field."""
    client = signed_in_staff(app, RECEPTION)
    token = form_csrf(client.get("/admin/patients/new/").get_data(as_text=True))
    data = dict({"csrf_token": token, "name": "Dee Duplicate", "email": "dee@example.com",
                 "phone": "020 7946 0000", "active": "y"}, **{field: value})
    resp = client.post("/admin/patients/new/", data=data)
    assert resp.status_code == 200  # the form again, with the error on its field
    assert re.search(rf'id="{field}-error">\s*<ul[^>]*>\s*<li>{error}</li>', resp.get_data(as_text=True))
    assert Patient.objects(name="Dee Duplicate").count() == 0


def test_time_off_is_entered_in_local_time_and_stored_in_utc(app, clinic):
    from models import TimeOff

    client = signed_in_staff(app, PROVIDER)
    token = form_csrf(client.get("/admin/time_off/new/").get_data(as_text=True))
    resp = client.post("/admin/time_off/new/", data={"csrf_token": token, "start": "2027-07-01 09:00:00",
                                                     "end": "2027-07-01 12:00:00", "reason": "Training"})
    assert resp.status_code == 302
    off = TimeOff.objects.get(reason="Training")
    assert off.provider.id == clinic["one"].id  # a provider books time off only for themselves
    assert off.start.replace(tzinfo=timezone.utc) == datetime(2027, 7, 1, 8, 0, tzinfo=timezone.utc)  # BST
    listing = client.get("/admin/time_off/").get_data(as_text=True)
    assert "Thursday 1 July 2027, 09:00 BST" in listing


@pytest.mark.parametrize("field, value", [
    ("date_of_birth", "31/02/1980"),  # no such day
    ("date_of_birth", "01/01/2100"),  # not born yet
    ("phone", "0123"),
    ("email", "PAT@example.com"),  # the fixture's patient, whatever the case
])
def test_the_flask_admin_create_form_refuses_what_the_front_desk_refuses(app, clinic, field, value):
    """A patient created in the back office's "create patient" form meets the front desk's new-caller
    checks: the same refusal, in the same words, on the same field, and no record made."""
    client = signed_in_staff(app, RECEPTION)
    typed = dict({"name": "Dee Duplicate", "email": "dee@example.com", "phone": "020 7946 0000",
                  "date_of_birth": "02/03/1984"}, **{field: value})
    day = future_day(2)
    desk_form = client.get(f"/admin/day/new?day={day}").get_data(as_text=True)
    desk = client.post("/admin/day/book", data=dict(
        typed, csrf_token=form_csrf(desk_form), patient="new", confirm_new="yes", service=str(clinic["call"].id),
        provider=str(clinic["one"].id), day=day.isoformat(), time="10:00"))
    assert desk.status_code in (409, 422)
    desk_html = desk.get_data(as_text=True)
    on_field = re.search(rf'id="{field}-error">([^<]+)</p>', desk_html).group(1)
    message = re.search(r'id="book-error">([^<]+)</div>', desk_html).group(1)

    token = form_csrf(client.get("/admin/patients/new/").get_data(as_text=True))
    # Past the duplicate question in both doors (the desk's "a new patient", the back office's "Create anyway").
    admin = client.post("/admin/patients/new/", data=dict(typed, csrf_token=token, active="y", create_anyway="yes"))
    assert admin.status_code == 200  # the form again
    admin_html = admin.get_data(as_text=True)
    assert re.search(rf'id="{field}-error">\s*<ul[^>]*>\s*<li>{re.escape(on_field)}</li>', admin_html), on_field
    assert message in admin_html
    assert Patient.objects(name="Dee Duplicate").count() == 0


def test_the_flask_admin_create_form_keeps_the_date_of_birth_and_audits_with_the_patient(app, clinic):
    """The date of birth typed in the back office is read as at the desk (DD/MM/YYYY) and kept; the
    create is audited once, by the action that made the patient."""
    from datetime import date

    client = signed_in_staff(app, RECEPTION)
    token = form_csrf(client.get("/admin/patients/new/").get_data(as_text=True))
    resp = client.post("/admin/patients/new/", data={"csrf_token": token, "name": "Bea Born", "email": "bea@example.com",
                                                     "phone": "020 7946 0456", "date_of_birth": "02/03/1984",
                                                     "active": "y"})
    assert resp.status_code == 302
    made = Patient.objects.get(email="bea@example.com")
    assert made.date_of_birth == date(1984, 3, 2)
    staff = StaffUser.objects.get(email=f"{RECEPTION}@clinic.test")
    assert [(e.actor, e.record) for e in AuditEvent.objects(action="patient.create")] == [
        (f"staff:{staff.id}", f"Patient:{made.id}")]
    # The edit form shows it the way it was typed, and an impossible one is refused there too.
    edit = client.get(f"/admin/patients/edit/?id={made.id}").get_data(as_text=True)
    assert 'value="02/03/1984"' in edit
    refused = client.post(f"/admin/patients/edit/?id={made.id}", data={
        "csrf_token": form_csrf(edit), "name": "Bea Born", "email": "bea@example.com", "phone": "020 7946 0456",
        "date_of_birth": "31/02/1984", "active": "y"})
    assert refused.status_code == 200 and "Give the date of birth as DD/MM/YYYY." in refused.get_data(as_text=True)
    assert Patient.objects.get(id=made.id).date_of_birth == date(1984, 3, 2)
