"""Issue 24: a waitlist offer is a status of its own (`offered`), a hold in every rule a hold meets.

An offer made is `offered`; accepted it becomes `held` (payment due) or `confirmed` (free); lapsed,
`expired`. Staff read it as "Offered to <patient>" in the day view and the export; offers stored the
old way (`held`, marked) are converted by the start-up migration.
"""

from datetime import datetime, timedelta, timezone

from models import Appointment, Patient, ensure_indexes
from models.booking.documents import WAITLIST_OFFER
from models.booking.waitlist import WaitlistEntry
from models.sweep import sweep
from tests.support.factories import csrf_header, make_staff, staff_login
from tests.test_waitlist import full_day, setup, slots  # noqa: F401 (fixtures)


def _cancel_first(f):
    """`pat` cancels the 09:00 visit: the time is offered to `first`; the offer's appointment."""
    resp = f["pat"].post(f"/api/appointments/{f['booked'][0]['id']}/cancel", headers=csrf_header(f["pat"]))
    assert resp.status_code == 200, resp.get_json()
    entry = WaitlistEntry.objects.get(id=f["e1"])
    assert entry.status == "offered"
    return Appointment.objects.get(id=entry.offer.id)


def test_an_offer_is_offered_and_becomes_held_when_accepted(app, full_day):
    f = full_day
    offer = _cancel_first(f)
    assert offer.status == "offered" and offer.booked_by == WAITLIST_OFFER
    assert slots(f["pat"], f["consult"], f["day"]) == []  # it holds its time like a hold
    accepted = f["first"].post(f"/api/waitlist/{f['e1']}/accept", headers=csrf_header(f["first"]))
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["status"] == "held"
    stored = Appointment.objects.get(id=offer.id)
    assert stored.status == "held" and stored.booked_by == "waitlist"


def test_a_free_offer_accepted_is_confirmed(app, full_day):
    f = full_day
    offer = _cancel_first(f)
    Appointment.objects(id=offer.id).update_one(set__amount=0)  # a free service's offer
    accepted = f["first"].post(f"/api/waitlist/{f['e1']}/accept", headers=csrf_header(f["first"]))
    assert accepted.status_code == 201 and accepted.get_json()["status"] == "confirmed"
    assert Appointment.objects.get(id=offer.id).status == "confirmed"
    # Booked as any free booking is: the patient is sent its confirmation and will get reminders.
    from models.messages.documents import OutboxMessage

    assert OutboxMessage.objects(appointment=offer.id, kind="confirmed").count() == 1
    assert OutboxMessage.objects(appointment=offer.id, kind__startswith="reminder").count() >= 1
    # The sweep's repair of a missing confirmation sees it told: nothing queued twice.
    with app.app_context():
        assert str(offer.id) not in sweep(now=datetime.now(timezone.utc) + timedelta(minutes=1)).told
    assert OutboxMessage.objects(appointment=offer.id, kind="confirmed").count() == 1


def test_a_lapsed_offer_expires_and_its_time_is_free_again(app, full_day):
    f = full_day
    offer = _cancel_first(f)
    later = datetime.now(timezone.utc) + timedelta(minutes=31)
    # Lapsed but not yet swept: free times already ignore it, as they ignore a lapsed hold.
    from models.booking.rules import effective_status, is_blocking

    assert not is_blocking(offer, later) and effective_status(offer, later) == "expired"
    with app.app_context():
        sweep(now=later)
    assert Appointment.objects.get(id=offer.id).status == "expired"
    assert WaitlistEntry.objects.get(id=f["e1"]).status == "expired"
    # The lapsed offer never shows among the patient's own appointments.
    assert f["first"].get("/api/appointments").get_json() == []


def test_staff_read_an_offer_as_offered_to_the_patient(app, full_day):
    f = full_day
    offer = _cancel_first(f)
    name = Patient.objects.get(id=offer.patient.id).name
    make_staff("reception")
    staff = app.test_client()
    assert staff_login(staff, "reception@clinic.test").status_code == 302
    day = staff.get(f"/admin/day/?day={f['day'].isoformat()}").get_data(as_text=True)
    assert f'data-status="offered"' in day and f"Offered to {name}" in day
    export = staff.get("/admin/appointments/export/csv/").get_data(as_text=True)
    assert f"Offered to {name}" in export


def test_offers_stored_the_old_way_become_offered_at_start(app, full_day):
    f = full_day
    offer = _cancel_first(f)
    # As an offer was stored before issue 24: a `held` appointment with the offer's mark.
    Appointment._get_collection().update_one({"_id": offer.id}, {"$set": {"status": "held"}})
    accepted_before = Appointment.objects.get(id=f["booked"][1]["id"])
    ensure_indexes()
    ensure_indexes()  # idempotent
    assert Appointment.objects.get(id=offer.id).status == "offered"
    assert Appointment.objects.get(id=accepted_before.id).status == accepted_before.status
    # And the converted offer is accepted as any other.
    accepted = f["first"].post(f"/api/waitlist/{f['e1']}/accept", headers=csrf_header(f["first"]))
    assert accepted.status_code == 201 and accepted.get_json()["status"] == "held"


def test_staff_cancel_an_offer_without_telling_the_patient_of_a_booking(app, full_day):
    """Staff may cancel an open offer from the day view (`offered` -> `cancelled`): no cancellation
    email (nothing was booked), and the time goes to the next in line."""
    from models.booking.cancellation import cancel
    from models.messages.documents import OutboxMessage

    f = full_day
    offer = _cancel_first(f)
    with app.test_request_context():
        cancel(offer, datetime.now(timezone.utc), reason="Clinic closed that morning", by_staff=True)
    assert Appointment.objects.get(id=offer.id).status == "cancelled"
    assert not OutboxMessage.objects(kind="cancelled", subject=f"Appointment:{offer.id}").count()
    assert WaitlistEntry.objects.get(id=f["e2"]).status == "offered"
