"""Issue 26: an admin merges a duplicate patient record into the one to keep, as one audited domain
action: appointments, payments, waitlist entries and messages move; the kept record takes the
missing phone, date of birth and email; the duplicate is deactivated and kept as a pointer.
Placeholder addresses of phone-booked patients are never shown in the back office."""

from datetime import date, datetime, timedelta, timezone

import pytest

from models import Appointment, AuditEvent, Patient, Payment
from models.booking.frontdesk import create_caller
from models.booking.waitlist import WaitlistEntry
from models.merge import merge_patients
from models.messages.outbox import OutboxMessage
from tests.support.clients import signed_in_staff
from tests.support.factories import at, form_csrf, future_day


@pytest.fixture
def world(app, clinic_world):
    return clinic_world(services={"consult": dict(name="Consultation", duration=30, price=6000)},
                        providers={"one": dict(name="Dr One")}, staff=("admin", "reception"),
                        patients=[{"email": "maria@example.com", "name": "Maria Lopez"}])


def records(world):
    """The portal record (real email, no phone) and a desk duplicate (phone, date of birth, an appointment)."""
    keep = world.patient
    dup = create_caller("Maria Lopez", "07700 900111", date_of_birth="02/03/1984", invite=False)
    start = at(future_day(3), 10)
    appt = Appointment(patient=dup, provider=world["one"], service=world["consult"], start=start,
                       end=start + timedelta(minutes=30), block_start=start, block_end=start + timedelta(minutes=30),
                       status="confirmed", amount=6000, currency="gbp").save()
    Payment(appointment=appt, patient=dup, amount=6000, currency="gbp", status="succeeded", method="cash").save()
    WaitlistEntry(patient=dup, service=world["consult"], date_from=future_day(5), date_to=future_day(6)).save()
    OutboxMessage(kind="confirmed", to=dup.email, subject=f"Appointment:{appt.id}", patient=dup.id,
                  appointment=appt.id, due_at=datetime.now(timezone.utc)).save()
    return keep, dup, appt


def test_merge_moves_everything_fills_gaps_and_keeps_a_pointer(app, world):
    keep, dup, appt = records(world)
    now = datetime.now(timezone.utc)
    with app.test_request_context():
        merged = merge_patients(keep, dup, now, audit_as="staff:admin-test").patient
    assert Appointment.objects.get(id=appt.id).patient.id == keep.id
    assert Payment.objects(patient=keep.id).count() == 1 and Payment.objects(patient=dup.id).count() == 0
    assert WaitlistEntry.objects(patient=keep.id).count() == 1
    assert OutboxMessage.objects(patient=keep.id).count() == 1
    assert merged.phone == "+447700900111" and merged.date_of_birth == date(1984, 3, 2)
    assert merged.email == "maria@example.com"
    gone = Patient.objects.get(id=dup.id)
    assert gone.merged_into == keep.id and not gone.active and gone.token_generation == 1
    assert AuditEvent.objects(action="patient.merge", record=f"Patient:{keep.id}", outcome="ok").count() == 1
    # Running it again (an interrupted merge finished) changes nothing more; merging into the pointer is refused.
    with app.test_request_context():
        merge_patients(keep, gone, now, audit_as="staff:admin-test")
        from models.errors import Conflict

        with pytest.raises(Conflict):
            merge_patients(gone, keep, now, audit_as="staff:admin-test")
    assert Appointment.objects(patient=keep.id).count() == 1


def test_admin_merges_from_the_patients_page_reception_cannot(app, world):
    keep, dup, appt = records(world)
    reception = signed_in_staff(app, "reception")
    assert reception.get(f"/admin/patients/merge/?id={keep.id}").status_code == 403
    admin = signed_in_staff(app, "admin")
    details = admin.get(f"/admin/patients/details/?id={keep.id}").get_data(as_text=True)
    assert "Merge a duplicate record into this one" in details
    found = admin.get(f"/admin/patients/merge/?id={keep.id}&q=Maria").get_data(as_text=True)
    assert "born 02/03/1984" in found and "Review merging Maria Lopez" in found
    review = admin.get(f"/admin/patients/merge/?id={keep.id}&duplicate={dup.id}").get_data(as_text=True)
    assert "1 appointments, 1 payments, 1 waitlist entries, 1 messages" in review
    done = admin.post("/admin/patients/merge/", data={"csrf_token": form_csrf(review), "id": str(keep.id),
                                                       "duplicate": str(dup.id), "confirm": "yes"})
    assert done.status_code == 302
    assert Appointment.objects.get(id=appt.id).patient.id == keep.id
    assert Patient.objects.get(id=dup.id).merged_into == keep.id


def test_no_placeholder_address_is_shown_in_the_patients_list_or_edit_form(app, world):
    caller = create_caller("Phone Only", "07700 900222", invite=False)
    admin = signed_in_staff(app, "admin")
    listing = admin.get("/admin/patients/").get_data(as_text=True)
    assert "Phone Only" in listing and "no-email.invalid" not in listing and "no email" in listing
    edit = admin.get(f"/admin/patients/edit/?id={caller.id}").get_data(as_text=True)
    assert "no-email.invalid" not in edit
    saved = admin.post(f"/admin/patients/edit/?id={caller.id}", data={
        "csrf_token": form_csrf(edit), "name": "Phone Only", "email": "", "phone": "07700 900223", "active": "y"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    stored = Patient.objects.get(id=caller.id)
    assert stored.phone == "+447700900223" and stored.email.endswith("@no-email.invalid")
