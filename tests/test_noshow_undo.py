"""Undoing a no-show undoes its fee (issue 27's follow-up), and a fee's text links to its pay page
(issue 29's follow-up): against the stack's localstripe, MongoDB, Redis, SMTP server and SMS stand-in."""

import random
import re
from datetime import datetime, timezone

from models import Appointment, Payment
from models.audit import AuditEvent
from models.messages.documents import OutboxMessage
from tests.support.clients import signed_in_staff
from tests.support.factories import at, csrf_header, daytime_zone, form_csrf, future_day
from tests.support.payments import CARD_ALWAYS_3DS, CARD_OK, api_post, save_card, signed_in, stripe_client
from tests.test_noshow import FEES, _intents_for, _started_appointment_with_fee, book, soon, world


def _no_show_with_fee(app, stripe_base, card):
    """A visit that started 30 minutes ago, marked a no-show at the day view with its £25.00 fee
    charged to `card`; returns (desk client, its form token, appointment, fee Payment)."""
    # A visit that started 30 minutes ago is today's in a clinic where it is daytime now.
    made = world(tz=daytime_zone(), fees=dict(FEES, no_show_fee=2500, pay_at_clinic=True))
    save_card(signed_in(app), stripe_base, card)
    from models import Patient

    appt = _started_appointment_with_fee(Patient.objects.get(email="pat@example.com"), made.services["fees"],
                                         made.providers["dr"])
    desk = signed_in_staff(app, "reception", create=True)
    token = form_csrf(desk.get("/admin/login").get_data(as_text=True))
    marked = desk.post("/admin/day/act", data={"op": "no_show", "appointment": str(appt.id), "csrf_token": token,
                                               "confirm": "yes", "fee": "charge"})
    assert marked.status_code == 302 and Appointment.objects.get(id=appt.id).status == "no_show"
    return desk, token, appt, Payment.objects.get(appointment=appt.id, kind="no_show_fee")


def _undo(desk, token, appt):
    """Staff click "Undo no-show" in the day view; the page they land on."""
    return desk.post("/admin/day/act", data={"op": "undo_no_show", "appointment": str(appt.id), "csrf_token": token},
                     follow_redirects=True).get_data(as_text=True)


def test_undoing_a_no_show_refunds_its_taken_fee_once(app, stripe_base):
    desk, token, appt, fee = _no_show_with_fee(app, stripe_base, CARD_OK)
    assert fee.status == "succeeded"
    page = _undo(desk, token, appt)
    assert "No-show undone for Pat Example" in page and "the £25.00 fee was refunded." in page
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    fee.reload()
    assert (fee.status, fee.amount_refunded) == ("refunded", 2500)
    assert re.search(r"No-show fee £25\.00:\s+refunded\.", page)  # the day grid, for the next look
    # The patient is told, by email, that the money is on its way back.
    from models.messages.rendering import render

    [told] = OutboxMessage.objects(kind="fee_returned", appointment=appt.id)
    with app.app_context():
        words = render(told, datetime.now(timezone.utc))
    assert words.subject == "Refunded: £25.00 missed-appointment fee"
    assert "We have refunded the missed-appointment fee of £25.00 to the card it was charged to" in " ".join(words.text.split())
    assert "is no longer marked as missed" in words.html
    # Undoing twice does nothing more: refused, and Stripe holds one refund of the one charge.
    again = _undo(desk, token, appt)
    assert "nothing to undo" in again
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": fee.stripe_payment_intent}).data
    assert [r.amount for r in refunds] == [2500]
    assert [pi["status"] for pi in _intents_for(stripe_base, fee.id)] == ["succeeded"]
    assert Payment.objects.get(id=fee.id).amount_refunded == 2500
    # Marked a no-show again after all: the fee was charged once and is not charged again.
    remarked = desk.post("/admin/day/act", data={"op": "no_show", "appointment": str(appt.id), "csrf_token": token,
                                                 "confirm": "yes", "fee": "charge"}, follow_redirects=True)
    assert "No-show fee £25.00 refunded earlier, not charged again." in remarked.get_data(as_text=True)
    assert len(_intents_for(stripe_base, fee.id)) == 1
    done = AuditEvent.objects(action="appointment.undo_no_show", record=f"Appointment:{appt.id}")
    assert sorted(e.outcome for e in done) == ["refunded", "refused:bad_transition"]
    assert AuditEvent.objects(action="payment.fee_refund", record=f"Payment:{fee.id}").count() == 1


def test_undoing_a_no_show_whose_fee_is_due_stops_asking_for_it(make_app, stripe_base, smtp_server):
    from models.glance import attention
    from models.messages.delivery import deliver_due

    app = make_app(SMTP_URL=smtp_server.url)
    desk, token, appt, fee = _no_show_with_fee(app, stripe_base, CARD_ALWAYS_3DS)
    assert (fee.status, fee.fee_state) == ("pending", "authentication_required")
    patient = signed_in(app)
    pay_link = f"/portal/appointments/{appt.id}/fee/{fee.id}"
    assert "Confirm and pay £25.00" in patient.get(pay_link).get_data(as_text=True)
    assert any(p.id == fee.id for p, _ in attention(datetime.now(timezone.utc)))

    page = _undo(desk, token, appt)
    assert "No-show undone for Pat Example" in page and "the £25.00 fee is no longer due" in page
    fee.reload()
    assert (fee.status, fee.fee_state, fee.waived_reason) == ("canceled", "waived", "the no-show was undone")
    assert not any(p.id == fee.id for p, _ in attention(datetime.now(timezone.utc)))  # gone from "fees due"
    # The emailed pay link says the fee is no longer owed, and offers no payment.
    shown = patient.get(pay_link).get_data(as_text=True)
    assert "You no longer owe this fee" in shown and "Confirm and pay" not in shown
    answer = patient.get(f"/api/fees/{fee.id}").get_json()
    assert (answer["status"], answer["client_secret"]) == ("waived", None)
    assert stripe_client(stripe_base).v1.payment_intents.retrieve(fee.stripe_payment_intent).status == "canceled"
    # A pay-link email not yet sent is not sent now.
    with app.app_context():
        deliver_due(datetime.now(timezone.utc))
    asked = OutboxMessage.objects.get(kind="fee_due", appointment=appt.id)
    assert asked.status == "dropped" and "no longer due" in asked.drop_reason
    # Instead the patient is emailed that they owe nothing (through the stack's SMTP server).
    told = OutboxMessage.objects.get(kind="fee_returned", appointment=appt.id)
    assert told.status == "sent"
    [email] = [m for m in smtp_server.wait_for(1, "pat@example.com") if m["Subject"].startswith("No longer due")]
    assert email["Subject"] == "No longer due: £25.00 missed-appointment fee"
    assert "You no longer owe the missed-appointment fee of £25.00" in " ".join(
        email.get_body(preferencelist=("plain",)).get_content().split())
    assert "nothing to undo" in _undo(desk, token, appt)
    assert AuditEvent.objects(action="payment.fee_waive", record=f"Payment:{fee.id}").count() == 1


def test_a_fee_due_text_links_to_the_fee_s_pay_page(make_app, stripe_base, sms_standin):
    from models.messages.rendering import render
    from models.messages.sms import deliver_sms_due

    public = "http://clinic.test"
    app = make_app(SMS_URL=sms_standin.url, SMS_FROM="+447700900000", PUBLIC_URL=public)
    made = world(fees=dict(FEES, late_cancel_fee=2000, pay_at_clinic=True))
    client = signed_in(app)
    phone = f"+4477009{random.randint(0, 99999):05d}"  # Ofcom's drama range, this test's own
    changed = client.patch("/api/me", headers=csrf_header(client), json={"phone": phone, "contact_by": ["email", "sms"]})
    assert changed.status_code == 200, changed.get_json()
    save_card(client, stripe_base, CARD_ALWAYS_3DS)  # the bank asks for authentication off-session
    appt_id = book(client, made.services["fees"], made.providers["dr"], soon()).get_json()["id"]
    assert api_post(client, f"/api/appointments/{appt_id}/cancel").get_json()["fee"]["status"] == "due"
    fee = Payment.objects.get(appointment=appt_id, kind="late_cancel_fee")
    pay_link = f"{public}/portal/appointments/{appt_id}/fee/{fee.id}"
    with app.app_context():
        deliver_sms_due(at(future_day(1), 12).astimezone(timezone.utc))  # daytime: no quiet hours
        email = OutboxMessage.objects.get(kind="fee_due", appointment=appt_id, channel="email")
        assert pay_link in render(email, datetime.now(timezone.utc)).text
    texts = sms_standin.messages(to=phone)
    fee_texts = [t["body"] for t in texts if "£20.00" in t["body"]]
    assert len(fee_texts) == 1 and pay_link in fee_texts[0], [t["body"] for t in texts]
    assert OutboxMessage.objects.get(kind="fee_due", appointment=appt_id, channel="sms").status == "sent"
    assert client.get(pay_link.removeprefix(public)).status_code == 200
