"""The back office's "Re-sync from Stripe" action on the Stripe event log, through the real forms."""

import pytest

from devstack.servers import free_port
from models import Appointment, AuditEvent, Payment, StaffUser, StripeEvent
from models.errors import NotFound
from tests.support.clients import signed_in_staff
from tests.support.factories import form_csrf
from tests.support.payments import (
    api_post,
    book_held,
    clinic_with_service,
    confirm_at_stripe,
    make_event,
    post_event,
    signed_in,
    stripe_client,
)


@pytest.fixture
def stuck(make_app, stripe_base):
    """A payment that went through at Stripe while our Stripe calls failed: the webhook's event is
    stored as failed, the appointment still held. Returns (app, appointment, event)."""
    app = make_app()
    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    pi_id = api_post(signed_in(app), f"/api/appointments/{appt.id}/payment").get_json()["payment_intent"]
    confirm_at_stripe(stripe_base, pi_id)
    event = make_event("payment_intent.succeeded", {"id": pi_id, "object": "payment_intent"})
    down = make_app(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}")
    assert post_event(down.test_client(), event).status_code == 503
    up = make_app()  # Stripe answers again; Stripe itself will not redeliver soon
    assert Appointment.objects.get(id=appt.id).status == "held"
    assert Payment.objects.get(appointment=appt.id).status == "pending"
    return up, appt, StripeEvent.objects.get(event_id=event["id"])


def resync(client, event):
    token = form_csrf(client.get("/admin/stripe_events/").get_data(as_text=True))
    return client.post("/admin/stripe_events/action/", data={
        "action": "resync", "rowid": str(event.id), "csrf_token": token}, follow_redirects=True)


def test_reception_resyncs_a_stuck_payment_and_it_is_confirmed(stuck):
    app, appt, event = stuck
    assert event.outcome == "failed: transient" and event.processed_at is None
    staff = signed_in_staff(app, "reception", create=True)
    page = resync(staff, event)
    assert page.status_code == 200
    assert "1 event(s) re-synced from Stripe." in page.get_data(as_text=True)
    assert Payment.objects.get(appointment=appt.id).status == "succeeded"
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    event.reload()
    assert event.outcome == "resynced: confirmed" and event.processed_at is not None
    reception = StaffUser.objects.get(email="reception@clinic.test")
    assert AuditEvent.objects(actor=f"staff:{reception.id}", action="stripe_event.resync",
                              record=f"StripeEvent:{event.id}", outcome="confirmed").count() == 1
    assert AuditEvent.objects(actor=f"staff:{reception.id}", action="appointment.confirm",
                              record=f"Appointment:{appt.id}").count() == 1
    # The patient sees it too.
    assert signed_in(app).get(f"/api/appointments/{appt.id}").get_json()["status"] == "confirmed"


def test_provider_staff_cannot_resync(stuck):
    app, appt, event = stuck
    staff = signed_in_staff(app, "provider", create=True)
    assert staff.get("/admin/stripe_events/").status_code == 403
    token = form_csrf(staff.get("/admin/time_off/new/").get_data(as_text=True))
    staff.post("/admin/stripe_events/action/", data={"action": "resync", "rowid": str(event.id),
                                                     "csrf_token": token})
    assert Payment.objects.get(appointment=appt.id).status == "pending"
    assert Appointment.objects.get(id=appt.id).status == "held"
    assert AuditEvent.objects(action="stripe_event.resync").count() == 0


def test_resync_of_an_event_for_no_payment_says_so(app):
    clinic_with_service()
    post_event(app.test_client(), make_event("customer.created", {"id": "cus_123", "object": "customer"}))
    event = StripeEvent.objects.get(object_id="cus_123")
    page = resync(signed_in_staff(app, "reception", create=True), event).get_data(as_text=True)
    assert "can be re-synced from Stripe" in page and "event(s) re-synced" not in page
    assert AuditEvent.objects(action="stripe_event.resync", outcome="refused:not_resyncable").count() == 1


def test_resync_object_routes_charges_and_refunds_to_the_payments_refunds(app, stripe_base):
    from models.payments.sync import resync_object

    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    client = signed_in(app)
    pi_id = api_post(client, f"/api/appointments/{appt.id}/payment").get_json()["payment_intent"]
    confirm_at_stripe(stripe_base, pi_id)
    api = stripe_client(stripe_base)
    charge_id = api.v1.payment_intents.retrieve(pi_id).latest_charge
    charge_id = getattr(charge_id, "id", charge_id)
    with app.app_context():
        assert resync_object(pi_id) == "confirmed"
        refund = api.v1.refunds.create({"payment_intent": pi_id, "amount": 1500})  # in Stripe's dashboard
        assert resync_object(refund.id) == "refunds_updated"
        assert resync_object(charge_id) == "unchanged"
        for unknown in ("cus_123", "", None, "pi_doesnotexist", "re_doesnotexist"):
            with pytest.raises(NotFound):
                resync_object(unknown)
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.amount_refunded == 1500 and [r.stripe_refund for r in payment.refunds] == [refund.id]


def test_reception_cancels_a_paid_appointment_from_the_list_and_it_is_refunded(app, stripe_base):
    from models import Appointment, AuditEvent
    from tests.support.factories import form_csrf, make_staff, staff_login
    from tests.test_payments import _paid

    _client, appt, payment = _paid(app, stripe_base)
    make_staff("reception")
    desk = app.test_client()
    assert staff_login(desk, "reception@clinic.test").status_code == 302
    token = form_csrf(desk.get("/admin/appointments/").get_data(as_text=True))
    resp = desk.post("/admin/appointments/action/", data={"action": "cancel", "rowid": str(appt.id),
                                                         "csrf_token": token})
    assert resp.status_code == 302
    assert Appointment.objects.get(id=appt.id).status == "cancelled"
    payment.reload()
    assert payment.status == "refunded" and payment.amount_refunded == payment.amount == 5000
    cancels = AuditEvent.objects(action="appointment.cancel", record=f"Appointment:{appt.id}")
    assert [e.actor.split(":")[0] for e in cancels] == ["staff"]
    refunds = AuditEvent.objects(action="payment.refund", record=f"Payment:{payment.id}")
    assert [e.actor for e in refunds] == [cancels[0].actor]  # the staff member who cancelled
