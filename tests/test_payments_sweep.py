"""The sweeper reaches the right state when no webhook comes (localstripe sends none for many)."""

from datetime import datetime, timedelta, timezone

import redis
from bson import ObjectId

from devstack.servers import free_port
from models import Appointment, Payment, TimeClaim
from tests.support.payments import (
    CARD_OK,
    api_post,
    book_held,
    card_token,
    clinic_with_service,
    confirm_at_stripe,
    signed_in,
    stripe_client,
)


def run_sweep(app, now=None):
    from models.sweep import sweep

    with app.app_context():
        return sweep(now)


def started_payment(app, service, provider, email="pat@example.com", start=None):
    appt = book_held(service, provider, email=email, start=start)
    body = api_post(signed_in(app, email), f"/api/appointments/{appt.id}/payment").get_json()
    return appt, body["payment_intent"]


def after_the_hold(appt, minutes=1):
    return appt.hold_expires_at.replace(tzinfo=timezone.utc) + timedelta(minutes=minutes)


def test_lapsed_hold_cancels_its_intent_then_expires_and_frees_the_time(app, stripe_base):
    service, provider = clinic_with_service()
    appt, pi_id = started_payment(app, service, provider)
    report = run_sweep(app, after_the_hold(appt))
    assert "sweep: 1 hold(s) expired" in report.lines()
    assert stripe_client(stripe_base).v1.payment_intents.retrieve(pi_id).status == "canceled"
    assert Appointment.objects.get(id=appt.id).status == "expired"
    assert Payment.objects.get(appointment=appt.id).status == "canceled"
    assert TimeClaim.objects(appointment=appt.id).count() == 0


def test_lapsed_hold_whose_payment_succeeded_silently_is_confirmed_not_expired(app, stripe_base):
    service, provider = clinic_with_service()
    appt, pi_id = started_payment(app, service, provider)
    confirm_at_stripe(stripe_base, pi_id)  # paid at Stripe; no webhook reaches us
    report = run_sweep(app, after_the_hold(appt))
    assert report.expired == [] and report.confirmed == [str(appt.id)]
    assert "sweep: 1 late payment(s) confirmed" in report.lines()
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert Payment.objects.get(appointment=appt.id).status == "succeeded"


def test_stuck_pending_payment_is_resynced_after_a_minute(app, stripe_base):
    service, provider = clinic_with_service()
    appt, pi_id = started_payment(app, service, provider)
    confirm_at_stripe(stripe_base, pi_id)
    now = datetime.now(timezone.utc)
    assert run_sweep(app, now).synced == []  # younger than a minute: left to the webhook
    assert Appointment.objects.get(id=appt.id).status == "held"
    report = run_sweep(app, now + timedelta(minutes=2))
    assert report.synced and Appointment.objects.get(id=appt.id).status == "confirmed"


def test_refund_left_pending_while_stripe_was_down_is_sent_once_by_the_sweeper(make_app, stripe_base):
    app = make_app()
    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    client = signed_in(app)
    api_post(client, f"/api/appointments/{appt.id}/payment")
    token = card_token(stripe_base, CARD_OK)["id"]
    assert api_post(client, f"/api/appointments/{appt.id}/payment/confirm", {"token": token}).status_code == 200
    down = make_app(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}")
    resp = api_post(signed_in(down), f"/api/appointments/{appt.id}/cancel")
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"  # the cancel stands
    payment = Payment.objects.get(appointment=appt.id)
    assert [(r.amount, r.status) for r in payment.refunds] == [(5000, "pending")]
    assert payment.amount_refunded == 5000  # reserved: nothing else can refund it meanwhile
    up = make_app()
    now = datetime.now(timezone.utc)
    assert run_sweep(up, now).refunded == []  # a refund may still be on its way: wait a minute
    report = run_sweep(up, now + timedelta(minutes=2))
    assert report.refunded == [str(appt.id)]
    run_sweep(up, now + timedelta(minutes=3))
    payment.reload()
    assert payment.status == "refunded" and payment.refunds[0].status == "succeeded"
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": payment.stripe_payment_intent}).data
    assert [r.amount for r in refunds] == [5000]


def test_hold_is_kept_when_stripe_cannot_be_asked(make_app, stripe_base):
    app = make_app()
    service, provider = clinic_with_service()
    appt, pi_id = started_payment(app, service, provider)
    down = make_app(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}")
    report = run_sweep(down, after_the_hold(appt))
    assert report.expired == [] and any("could not be checked" in p for p in report.problems)
    assert Appointment.objects.get(id=appt.id).status == "held"


def test_orphan_claims_older_than_two_minutes_are_deleted(app):
    service, provider = clinic_with_service()
    now = datetime.now(timezone.utc)
    collection = TimeClaim._get_collection()
    unit = datetime(2030, 1, 7, 10, 0, tzinfo=timezone.utc)
    old_orphan = {"_id": ObjectId.from_datetime(now - timedelta(minutes=5)), "provider": provider.id,
                  "unit": unit, "appointment": ObjectId(), "expires_at": None}
    fresh = {"_id": ObjectId(), "provider": provider.id, "unit": unit + timedelta(minutes=5),
             "appointment": ObjectId(), "expires_at": None}  # a booking in progress
    collection.insert_many([old_orphan, fresh])
    live = book_held(service, provider)
    report = run_sweep(app, now)
    assert report.orphans == 1 and "sweep: 1 stale time claim(s) deleted" in report.lines()
    assert collection.count_documents({"_id": old_orphan["_id"]}) == 0
    assert collection.count_documents({"_id": fresh["_id"]}) == 1
    assert TimeClaim.objects(appointment=live.id).count() == 6


def test_a_second_sweeper_skips_while_the_lease_is_held(app):
    from models.sweep import Lease

    service, provider = clinic_with_service()
    lapsed = book_held(service, provider, now=datetime.now(timezone.utc) - timedelta(minutes=30))
    with app.app_context():
        other = Lease()
        assert other.acquire()
        report = run_sweep(app)
        assert report.skipped and report.lines() == ["sweep: skipped: another sweep holds the lease"]
        assert Appointment.objects.get(id=lapsed.id).status == "held"
        other.release()
    assert run_sweep(app).expired == [str(lapsed.id)]
    # The lease lives in Redis under the app's prefix and is gone after the pass.
    r = redis.Redis.from_url(app.config["REDIS_URL"])
    assert not r.exists(app.config["REDIS_PREFIX"] + "lease:sweep")


def test_sweep_command_reports_late_confirmations(app, stripe_base):
    service, provider = clinic_with_service()
    appt, pi_id = started_payment(app, service, provider)
    Appointment.objects(id=appt.id).update_one(
        set__hold_expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    TimeClaim.objects(appointment=appt.id).update(
        set__expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    confirm_at_stripe(stripe_base, pi_id)
    result = app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    assert "0 hold(s) expired" in result.output and "1 late payment(s) confirmed" in result.output
    assert Appointment.objects.get(id=appt.id).status == "confirmed"


def test_a_checked_in_visit_is_completed_once_it_has_ended(app):
    from models import AuditEvent

    service, provider = clinic_with_service(price=0)
    visit = book_held(service, provider)
    waiting = book_held(service, provider, email="second@example.com",
                        start=visit.start.replace(tzinfo=timezone.utc) + timedelta(hours=1))
    Appointment.objects(id__in=[visit.id, waiting.id]).update(set__status="checked_in")
    end = visit.end.replace(tzinfo=timezone.utc)
    before = run_sweep(app, end - timedelta(minutes=1))
    assert before.completed == 0 and Appointment.objects.get(id=visit.id).status == "checked_in"
    report = run_sweep(app, end + timedelta(minutes=1))
    assert report.completed == 1 and "sweep: 1 visit(s) completed" in report.lines()
    done = Appointment.objects.get(id=visit.id)
    assert done.status == "completed" and done.version == visit.version + 1
    assert Appointment.objects.get(id=waiting.id).status == "checked_in"  # its end is still ahead
    assert AuditEvent.objects(action="appointment.complete", record=f"Appointment:{visit.id}").count() == 1
