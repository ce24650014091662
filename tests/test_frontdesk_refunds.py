"""Issue 26: staff cancel with a refund choice (full, an amount, none) and a reason; the choice goes
through the payments ledger, is audited, refused above what is left, and stated in the patient's email."""

from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, AuditEvent, Payment
from models.messages.outbox import OutboxMessage
from models.messages.rendering import render
from models.payments.desk import mark_paid_at_desk
from tests.support.clients import signed_in_staff
from tests.support.factories import at, form_csrf, future_day


@pytest.fixture
def desk(app, clinic_world):
    return clinic_world(
        services={"consult": dict(name="Consultation", duration=30, price=6000, notice=120)},
        providers={"one": dict(name="Dr One", hours=("00:00", "23:55"), lunch=None)},
        staff=("admin", "reception"), patients=["pat@example.com"])


def paid_at_desk(desk, hour):
    start = at(future_day(2), hour)
    end = start + timedelta(minutes=30)
    appt = Appointment(patient=desk["patient"], provider=desk["one"], service=desk["consult"], start=start,
                       end=end, block_start=start, block_end=end, status="confirmed", amount=6000,
                       currency="gbp", booked_by="staff:test").save()
    mark_paid_at_desk(appt, "cash", datetime.now(timezone.utc), "staff:test")
    return appt


def cancel(client, appt, **form):
    token = form_csrf(client.get("/admin/login").get_data(as_text=True))
    data = {"op": "cancel", "confirm": "yes", "appointment": str(appt.id), "csrf_token": token, **form}
    return client.post("/admin/day/act", data=data, follow_redirects=True)


def cancellation_email(app, appt):
    message = OutboxMessage.objects.get(kind="cancelled", appointment=appt.id)
    with app.app_context():
        return render(message, datetime.now(timezone.utc)).text


def test_the_form_offers_full_an_amount_or_none_with_the_rule_preselected(app, desk):
    appt = paid_at_desk(desk, 10)
    page = signed_in_staff(app, "reception").get(f"/admin/day/cancel?appointment={appt.id}").get_data(as_text=True)
    assert 'id="refund-full" value="full"\n             checked' in page or 'value="full"' in page
    for label in ("Full refund: £60.00", "Refund an amount", "No refund", "at most £60.00"):
        assert label in page


def test_a_partial_refund_is_recorded_audited_and_stated_in_the_email(app, desk):
    appt = paid_at_desk(desk, 10)
    client = signed_in_staff(app, "reception")
    done = cancel(client, appt, reason="Came late, seen briefly", refund="amount", amount="20.50")
    assert "Refund of £20.50 made." in done.get_data(as_text=True)
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.amount_refunded == 2050 and payment.status == "succeeded"  # partly given back
    stored = Appointment.objects.get(id=appt.id)
    assert stored.status == "cancelled" and stored.refund_decision == "amount"
    assert AuditEvent.objects(action="appointment.refund_decision", outcome="amount:2050").count() == 1
    text = cancellation_email(app, appt)
    assert "Refund: £20.50 of the £60.00 you paid" in text
    assert "The clinic's reason: Came late, seen briefly" in text


def test_a_refund_above_what_is_left_is_refused_and_nothing_changes(app, desk):
    appt = paid_at_desk(desk, 11)
    client = signed_in_staff(app, "reception")
    refused = cancel(client, appt, reason="x", refund="amount", amount="60.01")
    assert refused.status_code == 422
    assert "cannot be more than was paid" in refused.get_data(as_text=True)
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert Payment.objects.get(appointment=appt.id).amount_refunded == 0
    bad = cancel(client, appt, reason="x", refund="amount", amount="twenty")
    assert bad.status_code == 422 and Appointment.objects.get(id=appt.id).status == "confirmed"


def test_no_refund_keeps_the_money_and_says_so(app, desk):
    appt = paid_at_desk(desk, 12)
    done = cancel(signed_in_staff(app, "reception"), appt, reason="Third late cancellation", refund="none")
    assert "No refund given." in done.get_data(as_text=True)
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.amount_refunded == 0 and payment.status == "succeeded"
    text = cancellation_email(app, appt)
    assert "No refund: the clinic keeps the £60.00 you paid." in text
    assert "The clinic's reason: Third late cancellation" in text


def test_full_refund_gives_everything_back(app, desk):
    appt = paid_at_desk(desk, 13)
    done = cancel(signed_in_staff(app, "reception"), appt, reason="Clinician ill", refund="full")
    assert "Refund of £60.00 made." in done.get_data(as_text=True)
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.amount_refunded == 6000 and payment.status == "refunded"


def test_staff_keep_the_agreed_late_fee_and_refund_the_rest(app, desk):
    """Issue 27 with 26: a patient who agreed to a £20.00 late-cancellation fee, cancelled by staff
    with "keep the fee", gets £40.00 of £60.00 back and an email saying the fee was kept."""
    from models.booking.documents import AgreedPolicy

    appt = paid_at_desk(desk, 10)
    appt.update(set__policy=AgreedPolicy(late_cancel_fee=2000, text="…we will charge £20.00…"))
    client = signed_in_staff(app, "reception")
    page = client.get(f"/admin/day/cancel?appointment={appt.id}").get_data(as_text=True)
    assert "Keep the late-cancellation fee of £20.00 the patient agreed to: refund £40.00" in page
    done = cancel(client, appt, reason="Cancelled on the morning", refund="keep_fee")
    assert "Refund of £40.00 made." in done.get_data(as_text=True)
    assert Payment.objects.get(appointment=appt.id).amount_refunded == 4000
    email = cancellation_email(app, appt)
    assert "Refund: £40.00 of the £60.00 you paid" in email
    assert "keeps the late-cancellation fee you agreed to" in email


def test_keep_the_fee_is_offered_only_when_a_fee_was_agreed(app, desk):
    appt = paid_at_desk(desk, 11)
    client = signed_in_staff(app, "reception")
    assert "Keep the late-cancellation fee" not in client.get(f"/admin/day/cancel?appointment={appt.id}").get_data(as_text=True)
    refused = cancel(client, appt, reason="No fee here", refund="keep_fee")
    assert "no late-cancellation fee to keep" in refused.get_data(as_text=True)
    assert appt.reload().status == "confirmed"  # nothing changed
