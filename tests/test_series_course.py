"""A course paid up front (issue 28): one PaymentIntent (or Checkout Session) for every visit of a
series, reconciled into all of them, and each cancelled visit's share refunded by the policy.
Against the stack's real localstripe (behind the Checkout stand-in), MongoDB and Redis."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, AuditEvent, Payment, Service
from models.messages.documents import OutboxMessage
from tests.support.factories import at, future_day
from tests.support.payments import (
    CARD_OK,
    CheckoutStandIn,
    api_post,
    card_token,
    confirm_at_stripe,
    make_event,
    post_event,
    save_card,
    signed_in,
    stripe_client,
)
from tests.support.world import build_world


def world(**extra):
    """A clinic with a repeatable £60.00 physiotherapy (policy fields from `extra`) and one clinician."""
    made = build_world(services={"physio": dict(name="Physiotherapy", duration=45, price=6000,
                                                cancel_hours=extra.pop("cancel_hours", 24))},
                       providers={"dr": dict(name="Dr Course", services=["physio"])},
                       patients=["pat@example.com", "other@example.com"])
    Service.objects(id=made.services["physio"].id).update_one(set__repeat_allowed=True,
                                                              **{f"set__{k}": v for k, v in extra.items()})
    return made


def book_course(client, made, count=3, pay="course", first=None, agree=False):
    """Book a weekly series; answers the 201 body."""
    resp = api_post(client, "/api/appointments", {
        "service": str(made.services["physio"].id), "provider": str(made.providers["dr"].id),
        "start": (first or at(future_day(3), 10)).isoformat(), "agree_policy": agree,
        "repeat": {"every_weeks": 1, "count": count, "pay": pay}})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def pay_course(client, stripe_base, visit_id):
    """What the payment page does from any visit: start, tokenise a card, let the server confirm."""
    started = api_post(client, f"/api/appointments/{visit_id}/payment")
    assert started.status_code == 200, started.get_json()
    token = card_token(stripe_base, CARD_OK)["id"]
    paid = api_post(client, f"/api/appointments/{visit_id}/payment/confirm", {"token": token})
    assert paid.status_code == 200, paid.get_json()
    return started.get_json(), paid.get_json()


def statuses(body):
    return [Appointment.objects.get(id=a["id"]).status for a in body["appointments"]]


def test_paying_a_course_confirms_every_visit_with_one_intent_and_one_confirmation(app, stripe_base):
    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=3)
    assert body["series"]["pay"] == "course" and body["series"]["amount_due"] == 18000
    assert {a["pay"] for a in body["appointments"]} == {"course"} and set(statuses(body)) == {"held"}
    series_page = client.get(f"/portal/series/{body['series']['id']}").get_data(as_text=True)
    assert "Pay £180.00 now for all 3 visits" in series_page and "Pay £60.00" not in series_page
    first, second, third = (a["id"] for a in body["appointments"])
    # Starting from any visit starts the same payment, for the three visits' sum.
    from_first = api_post(client, f"/api/appointments/{first}/payment").get_json()
    started, paid = pay_course(client, stripe_base, third)
    assert started["payment_intent"] == from_first["payment_intent"] and started["amount"] == 18000
    pi = stripe_client(stripe_base).v1.payment_intents.retrieve(started["payment_intent"])
    assert (pi.amount, pi.status) == (18000, "succeeded")
    assert paid["status"] == "succeeded"
    assert set(statuses(body)) == {"confirmed"}
    shares = Payment.objects(appointment__in=[first, second, third])
    assert sorted((p.amount, p.status, p.stripe_payment_intent) for p in shares) == [
        (6000, "succeeded", pi.id)] * 3
    assert {str(p.course) for p in shares} == {body["series"]["id"]}
    # One confirmation (the first visit's, listing every date) and one receipt for £180.00.
    confirmations = OutboxMessage.objects(kind="confirmed")
    assert [str(m.appointment) for m in confirmations] == [first]
    receipts = OutboxMessage.objects(kind="receipt")
    assert receipts.count() == 1
    with app.app_context():
        from models.messages.rendering import render

        now = datetime.now(timezone.utc)
        text = render(confirmations[0], now).text
        assert text.count(" 10:00") >= 3 and "course of 3" in text
        receipt = render(receipts[0], now).text
        assert "£180.00" in receipt and "a course of 3 visits" in receipt
    # Paying again from another visit is refused: the course is paid.
    again = api_post(client, f"/api/appointments/{second}/payment")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_paid"
    # The pages say so.
    page = client.get(f"/portal/appointments/{second}").get_data(as_text=True)
    assert "Paid as part of a course" in page and 'id="pay-form"' not in page
    receipt_page = client.get(f"/portal/appointments/{second}/receipt").get_data(as_text=True)
    assert "£60.00 by card" in receipt_page and "Paid as part of a course" in receipt_page
    series_page = client.get(f"/portal/series/{body['series']['id']}").get_data(as_text=True)
    assert "Paid as part of a course" in series_page and "Pay £" not in series_page


def test_the_webhook_reconciles_a_course_payment_into_every_visit_once(app, stripe_base):
    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=3)
    pi_id = api_post(client, f"/api/appointments/{body['appointments'][1]['id']}/payment").get_json()["payment_intent"]
    assert confirm_at_stripe(stripe_base, pi_id).status == "succeeded"  # Stripe.js confirmed it at Stripe
    hook = app.test_client()
    event = make_event("payment_intent.succeeded", {"id": pi_id, "object": "payment_intent"})
    first = post_event(hook, event)
    assert first.status_code == 200 and first.get_json()["outcome"] == "confirmed"
    assert set(statuses(body)) == {"confirmed"}
    assert post_event(hook, event).get_json()["duplicate"] is True
    resent = post_event(hook, make_event("payment_intent.succeeded", {"id": pi_id, "object": "payment_intent"}))
    assert resent.get_json()["outcome"] == "already_confirmed"
    assert AuditEvent.objects(action="appointment.confirm", actor="stripe").count() == 3
    assert OutboxMessage.objects(kind="confirmed").count() == 1 and OutboxMessage.objects(kind="receipt").count() == 1


def test_cancelling_prepaid_visits_refunds_each_share_never_more_than_paid(app, stripe_base):
    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=4)
    ids = [a["id"] for a in body["appointments"]]
    started, _paid = pay_course(client, stripe_base, ids[0])
    one = api_post(client, f"/api/appointments/{ids[1]}/cancel").get_json()
    assert one["status"] == "cancelled" and one["refund"]["amount"] == 6000 and one["refund"]["status"] == "refunded"
    # "This and following" from the third visit: the third's and the fourth's shares.
    following = api_post(client, f"/api/appointments/{ids[2]}/cancel", {"scope": "following"})
    assert following.status_code == 200, following.get_json()
    assert statuses(body) == ["confirmed", "cancelled", "cancelled", "cancelled"]
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": started["payment_intent"]}).data
    assert sorted(r.amount for r in refunds) == [6000, 6000, 6000]
    shares = {str(p.appointment.id): p for p in Payment.objects(appointment__in=ids)}
    assert [(shares[i].status, shares[i].amount_refunded) for i in ids] == [
        ("succeeded", 0), ("refunded", 6000), ("refunded", 6000), ("refunded", 6000)]
    # The first visit's share does not take its siblings' refunds for its own, and nothing more goes back.
    from models.payments.refunds import refund_payment, sync_refunds

    with app.app_context():
        assert sync_refunds(shares[ids[0]]) == "unchanged"
        for i in ids[1:]:
            assert refund_payment(shares[i]) is None
    total = sum(r.amount for r in stripe_client(stripe_base).v1.refunds.list(
        {"payment_intent": started["payment_intent"]}).data)
    assert total == 18000 <= 24000


def test_a_late_cancel_of_a_prepaid_visit_keeps_the_fee_and_refunds_the_rest_of_its_share(app, stripe_base):
    # The first visit (three days ahead) is inside a 96-hour window; the second, a week later, is not.
    made = world(cancel_hours=96, late_cancel_fee=2000)
    client = signed_in(app)
    save_card(client, stripe_base)
    body = book_course(client, made, count=2, agree=True)
    first, second = (a["id"] for a in body["appointments"])
    started, _paid = pay_course(client, stripe_base, first)
    late = api_post(client, f"/api/appointments/{first}/cancel").get_json()
    assert late["refund"]["amount"] == 4000  # £60.00 paid for this visit, the £20.00 fee kept
    on_time = api_post(client, f"/api/appointments/{second}/cancel").get_json()
    assert on_time["refund"]["amount"] == 6000 and on_time["fee"] is None
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": started["payment_intent"]}).data
    assert sorted(r.amount for r in refunds) == [4000, 6000]
    # The fee came out of what was paid: no second charge to the card.
    assert Payment.objects(kind="late_cancel_fee", status="succeeded").count() == 0


def test_cancelling_an_unpaid_visit_of_a_course_leaves_the_rest_payable_for_their_sum(app, stripe_base):
    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=3)
    ids = [a["id"] for a in body["appointments"]]
    old = api_post(client, f"/api/appointments/{ids[0]}/payment").get_json()["payment_intent"]
    assert api_post(client, f"/api/appointments/{ids[0]}/cancel").status_code == 200
    assert stripe_client(stripe_base).v1.payment_intents.retrieve(old).status == "canceled"
    started, paid = pay_course(client, stripe_base, ids[2])
    assert started["payment_intent"] != old and started["amount"] == 12000
    assert statuses(body) == ["cancelled", "confirmed", "confirmed"]


def test_paying_per_visit_stays_as_before(app, stripe_base):
    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=2, pay="visit")
    assert body["series"]["pay"] == "visit" and "amount_due" not in body["series"]
    started, _paid = pay_course(client, stripe_base, body["appointments"][0]["id"])
    assert started["amount"] == 6000
    assert statuses(body) == ["confirmed", "held"]
    bad = api_post(client, "/api/appointments", {
        "service": str(made.services["physio"].id), "provider": str(made.providers["dr"].id),
        "start": at(future_day(4), 10).isoformat(), "repeat": {"every_weeks": 1, "count": 2, "pay": "all"}})
    assert bad.status_code == 422 and "repeat" in bad.get_json()["error"]["fields"]


@pytest.fixture
def stand_in(stripe_base):
    return CheckoutStandIn(stripe_base)


def test_a_course_paid_on_checkout_confirms_every_visit(make_app, stand_in, stripe_base):
    app = make_app(PAYMENT_FLOW="checkout", STRIPE_API_BASE=stand_in.url)
    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=3)
    ids = [a["id"] for a in body["appointments"]]
    started = api_post(client, f"/api/appointments/{ids[1]}/payment").get_json()
    assert started["flow"] == "checkout"
    form = stand_in.requests[-1]["form"]
    assert form["line_items[0][price_data][unit_amount]"] == "18000"
    assert form["line_items[0][price_data][product_data][name]"] == "Physiotherapy: course of 3 visits"
    # Every visit's hold is extended to the session's life, so they still lapse together.
    holds = {Appointment.objects.get(id=i).hold_expires_at for i in ids}
    assert len(holds) == 1
    session = stand_in.pay(started["session"])
    # The intent's event may arrive before the session's: it alone reconciles every visit.
    hook = app.test_client()
    first = post_event(hook, make_event("payment_intent.succeeded", {"id": session["payment_intent"],
                                                                     "object": "payment_intent"}))
    assert first.status_code == 200 and first.get_json()["outcome"] == "confirmed"
    assert set(statuses(body)) == {"confirmed"}
    event = make_event("checkout.session.completed", {"id": session["id"], "object": "checkout.session",
                                                      "status": session["status"], "metadata": session["metadata"]})
    resp = post_event(hook, event)
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "already_confirmed"
    assert {p.stripe_payment_intent for p in Payment.objects(appointment__in=ids)} == {session["payment_intent"]}
    assert api_post(client, f"/api/appointments/{ids[2]}/cancel").get_json()["refund"]["amount"] == 6000
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": session["payment_intent"]}).data
    assert [r.amount for r in refunds] == [6000]


def test_holds_of_an_unpaid_course_lapse_together(app, stripe_base):
    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=3)
    api_post(client, f"/api/appointments/{body['appointments'][0]['id']}/payment")
    holds = {a["hold_expires_at"] for a in body["appointments"]}
    assert len(holds) == 1

    from models.sweep import sweep

    with app.app_context():
        sweep(datetime.fromisoformat(holds.pop()) + timedelta(minutes=1))
    assert set(statuses(body)) == {"expired"}
    assert {p.status for p in Payment.objects(appointment__in=[a["id"] for a in body["appointments"]])} == {"canceled"}


def test_staff_cancelling_a_prepaid_visit_refunds_its_share_in_full(app, stripe_base):
    from models.booking.cancellation import cancel as cancel_visit

    made = world(cancel_hours=96, late_cancel_fee=2000)
    client = signed_in(app)
    save_card(client, stripe_base)
    body = book_course(client, made, count=2, agree=True)
    first, second = (a["id"] for a in body["appointments"])
    started, _paid = pay_course(client, stripe_base, second)
    with app.test_request_context():
        # The clinic cancels inside the patient's late window: no fee, the visit's whole share back.
        cancel_visit(Appointment.objects.get(id=first), datetime.now(timezone.utc), reason="clinician ill",
                       by_staff=True, actor="staff")
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": started["payment_intent"]}).data
    assert [r.amount for r in refunds] == [6000]
    assert Appointment.objects.get(id=second).status == "confirmed"
    assert Payment.objects.get(appointment=second).amount_refunded == 0


def test_a_course_of_a_service_with_a_deposit_pays_the_deposits_now(app, stripe_base):
    made = world(deposit_amount=1500)
    client = signed_in(app)
    body = book_course(client, made, count=3, agree=True)
    assert body["series"]["amount_due"] == 4500
    started, _paid = pay_course(client, stripe_base, body["appointments"][0]["id"])
    assert started["amount"] == 4500 and set(statuses(body)) == {"confirmed"}
    shares = Payment.objects(appointment__in=[a["id"] for a in body["appointments"]])
    assert sorted((p.kind, p.amount, p.status) for p in shares) == [("deposit", 1500, "succeeded")] * 3


def test_the_openapi_document_describes_the_course_choice(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    repeat = next(s for name, s in spec["components"]["schemas"].items() if name.startswith("Repeat"))
    assert repeat["properties"]["pay"]["enum"] == ["visit", "course"]
    assert "one payment" in repeat["properties"]["pay"]["description"]


def test_a_late_course_payment_confirms_the_visits_still_free_and_refunds_the_share_of_one_taken(app, stripe_base):
    from models.booking.create import book
    from models.booking import series
    from models.payments.start import start_payment
    from models.payments.sync import sync_payment_intent

    made = world()
    service, provider = str(made.services["physio"].id), str(made.providers["dr"].id)
    then = datetime.now(timezone.utc) - timedelta(minutes=30)  # the course's holds lapsed 15 minutes ago
    first = at(future_day(3), 10)
    _sid, visits = series.book_series(made.patients["pat@example.com"], service, provider, first, then, 1, 3,
                                      pay="course")
    with app.test_request_context():
        pi_id = start_payment(visits[0], then)["payment_intent"]
    rival = book(made.patients["other@example.com"], service, provider, visits[1].start,
                         datetime.now(timezone.utc))  # takes over the lapsed second visit's time
    confirm_at_stripe(stripe_base, pi_id)
    with app.test_request_context():
        assert sync_payment_intent(pi_id).outcome == "confirmed_late"
        assert sync_payment_intent(pi_id).outcome == "already_confirmed"  # again: nothing twice
    assert [Appointment.objects.get(id=v.id).status for v in visits] == ["confirmed", "expired", "confirmed"]
    assert Appointment.objects.get(id=rival.id).status == "held"
    shares = {p.appointment.id: p for p in Payment.objects(appointment__in=[v.id for v in visits])}
    assert [(shares[v.id].status, shares[v.id].amount_refunded) for v in visits] == [
        ("succeeded", 0), ("refunded", 6000), ("succeeded", 0)]
    assert [r.amount for r in stripe_client(stripe_base).v1.refunds.list({"payment_intent": pi_id}).data] == [6000]
    assert OutboxMessage.objects(kind="confirmed").count() == 1


def test_a_paid_course_is_confirmed_as_a_whole_and_each_visit_says_where_it_stands(app, stripe_base):
    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=4)
    ids = [a["id"] for a in body["appointments"]]
    pay_course(client, stripe_base, ids[0])
    page = client.get(f"/portal/appointments/{ids[1]}").get_data(as_text=True)
    assert "Your 4 visits are confirmed" in page and "Your appointment is confirmed" not in page
    assert 'id="series-position">Visit 2 of 4<' in page
    # Right after paying it says the confirmation went; later views of a visit page do not.
    assert "We have emailed your confirmation" in page
    OutboxMessage.objects(kind="confirmed").update(set__created_at=datetime.now(timezone.utc) - timedelta(minutes=11))
    page = client.get(f"/portal/appointments/{ids[1]}").get_data(as_text=True)
    assert "We have emailed your confirmation" not in page and "Your 4 visits are confirmed" in page
    # The cancel step says what this visit gives back, and what this and the later ones give back in all.
    step = client.get(f"/portal/appointments/{ids[1]}?cancel=1").get_data(as_text=True)
    assert "You will be refunded £60.00 to the card you paid with." in step
    assert "If you cancel this and the 2 later visits, you will be refunded £180.00 in all." in step
    # The desk's cancel step says the same total for "Also cancel the later visits".
    from tests.support.clients import signed_in_staff

    desk = signed_in_staff(app, "reception", create=True)
    desk_step = desk.get(f"/admin/day/cancel?appointment={ids[1]}").get_data(as_text=True)
    assert re.search(r'id="refund-following">With the later visits, the service(&#39;|\')s rule refunds £180\.00 in all\.',
                     desk_step)


def test_the_desk_cancelling_this_and_the_later_visits_gives_the_refund_staff_chose(app, stripe_base):
    """Staff choose "No refund" and tick "Also cancel the later visits": no visit is refunded (the
    service's rule would have given each share back), and the day view says so."""
    from tests.support.clients import signed_in_staff
    from tests.support.factories import form_csrf

    made = world()
    client = signed_in(app)
    body = book_course(client, made, count=4)
    ids = [a["id"] for a in body["appointments"]]
    started, _paid = pay_course(client, stripe_base, ids[0])
    desk = signed_in_staff(app, "reception", create=True)
    step = desk.get(f"/admin/day/cancel?appointment={ids[1]}").get_data(as_text=True)
    assert "The refund you choose applies to each later visit too" in step
    resp = desk.post("/admin/day/act", data={
        "csrf_token": form_csrf(step), "op": "cancel", "confirm": "yes", "appointment": ids[1],
        "reason": "Course stopped at the patient's request", "refund": "none", "scope": "following"})
    assert resp.status_code == 302
    assert statuses(body) == ["confirmed", "cancelled", "cancelled", "cancelled"]
    assert stripe_client(stripe_base).v1.refunds.list({"payment_intent": started["payment_intent"]}).data == []
    assert [Payment.objects.get(appointment=i).amount_refunded or 0 for i in ids] == [0, 0, 0, 0]
    day = desk.get(resp.headers["Location"]).get_data(as_text=True)
    assert "and the 2 later visits of the series. No refund given." in day
    # "Full refund" from the first visit gives back its share only: the others are cancelled already.
    step = desk.get(f"/admin/day/cancel?appointment={ids[0]}").get_data(as_text=True)
    desk.post("/admin/day/act", data={
        "csrf_token": form_csrf(step), "op": "cancel", "confirm": "yes", "appointment": ids[0],
        "reason": "Clinician away", "refund": "full", "scope": "following"})
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": started["payment_intent"]}).data
    assert [r.amount for r in refunds] == [6000]


def test_the_cancellation_email_of_a_prepaid_visit_states_its_share_and_its_refund(make_app, smtp_server, stripe_base):
    """QA walk: the email of one cancelled visit of a course paid up front says that visit's share of
    the course payment and what comes back for it (by the policy: inside the late window the fee is kept
    out of the share), read from the real SMTP server's Maildir."""
    from models.sweep import sweep

    app = make_app(SMTP_URL=smtp_server.url)
    made = world(cancel_hours=96, late_cancel_fee=2000)
    client = signed_in(app)
    save_card(client, stripe_base)
    body = book_course(client, made, count=2, agree=True)
    first, second = (a["id"] for a in body["appointments"])
    pay_course(client, stripe_base, first)
    with app.app_context():
        sweep()  # the course's confirmation and receipt go first (SMTP answers once each is kept)
    seen = len(smtp_server.messages("pat@example.com"))
    assert api_post(client, f"/api/appointments/{first}/cancel").get_json()["refund"]["amount"] == 4000  # late
    assert api_post(client, f"/api/appointments/{second}/cancel").get_json()["refund"]["amount"] == 6000
    with app.app_context():
        sweep()
    mails = [m for m in smtp_server.wait_for(seen + 2, "pat@example.com")[seen:] if m["Subject"].startswith("Cancelled")]
    assert len(mails) == 2, [m["Subject"] for m in mails]
    texts = [(" ".join(m.get_body(preferencelist=("plain",)).get_content().split()), m) for m in mails]
    (late, _), (on_time, on_time_mail) = sorted(texts, key=lambda t: "£40.00" not in t[0])
    share = "This visit's share of your course payment (£120.00 for 2 visits): £60.00."
    assert share in late and share in on_time
    assert "Refund for this visit: £40.00 of the £60.00 you paid for it goes back to the card you paid with." in late
    assert "The rest of this visit's share is kept as the late-cancellation fee you agreed to when booking." in late
    assert "Refund for this visit: £60.00 goes back to the card you paid with." in on_time
    assert "£120.00 you paid" not in late + on_time and "kept as the late" not in on_time
    html = on_time_mail.get_body(preferencelist=("html",)).get_content()
    assert "Refund for this visit: £60.00</strong>" in html and "(£120.00 for 2 visits): £60.00." in html
