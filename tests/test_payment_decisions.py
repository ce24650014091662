"""Settlement and refund decisions, fast: Stripe is the in-memory fake gateway, the stores are real.

What the real-localstripe tests (test_payments*.py) show end to end is decided here one rule at a
time: money that does not match is refunded and flagged, a late payment for a lost time is refunded,
refunds never exceed what was paid and are sent once per key, and Stripe failing leaves our records
as they were (or a reservation that the retry sends once).
"""

from datetime import datetime, timedelta, timezone

import pytest
import stripe

from models import Appointment, Payment, TimeClaim
from tests.support.fake_gateway import refusal, transient_error
from tests.support.payments import book_held


@pytest.fixture
def world(app, clinic_world):
    """A clinic with one £50 service (full refunds) and one provider; pat@example.com registered."""
    return clinic_world(services={"consult": dict(name="Consultation", duration=30, price=5000)},
                        providers={"provider": dict(name="Dr Fake")}, patients=["pat@example.com"])


@pytest.fixture
def ctx(app):
    """The app's context (the payment modules read the app's Redis and settings)."""
    with app.app_context():
        yield


def _now():
    return datetime.now(timezone.utc)


def _aware(value):
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def started(appt, fake, now, **intent):
    """The appointment's Payment following a PaymentIntent at the fake Stripe (what start_payment leaves)."""
    from models.payments.ledger import payment_for

    payment = payment_for(appt, "elements", now)
    pi = fake.add_intent(intent.pop("amount", payment.amount), currency=intent.pop("currency", "gbp"),
                         metadata={"payment_id": str(payment.id), "appointment_id": str(appt.id)}, **intent)
    Payment.objects(id=payment.id).update_one(set__stripe_payment_intent=pi["id"])
    payment.reload()
    return payment, pi


def paid(world, fake, now=None, **book):
    """A confirmed appointment paid in full at the fake Stripe; returns (appointment, payment)."""
    from models.payments.sync import sync_payment_intent

    now = now or _now()
    appt = book_held(world.service, world.provider, now=now, **book)
    payment, pi = started(appt, fake, now)
    assert sync_payment_intent(pi["id"], now=now).outcome == "confirmed"
    payment.reload()
    return appt, payment


# --- settlement -----------------------------------------------------------------------------------

def test_a_payment_in_full_before_the_hold_lapses_confirms_and_refunds_nothing(world, fake_gateway, ctx):
    from models.payments.sync import sync_payment_intent

    appt, payment = paid(world, fake_gateway)
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert payment.status == "succeeded" and payment.amount_refunded == 0
    assert TimeClaim.objects(appointment=appt.id, expires_at=None).count() == TimeClaim.objects(
        appointment=appt.id).count() > 0
    assert sync_payment_intent(payment.stripe_payment_intent).outcome == "already_confirmed"
    assert fake_gateway.calls_of("refunds.create") == []


@pytest.mark.parametrize("money", [dict(amount_received=4000), dict(currency="eur")],
                         ids=["short", "wrong_currency"])
def test_money_that_does_not_match_is_refunded_in_full_flagged_and_never_confirms(world, fake_gateway, ctx, money):
    from models.payments.sync import sync_payment_intent

    now = _now()
    appt = book_held(world.service, world.provider, now=now)
    payment, pi = started(appt, fake_gateway, now, amount=5000, **money)
    assert sync_payment_intent(pi["id"], now=now).outcome == "amount_mismatch_refunded"
    payment.reload()
    assert payment.flag.startswith("amount mismatch:") and payment.flag.endswith("refunded")
    assert payment.status == "failed"  # payable again in full
    assert Appointment.objects.get(id=appt.id).status == "held"
    key = f"refund:{payment.id}:{pi['id']}:mismatch"
    assert [r["metadata"]["refund_key"] for r in fake_gateway.refunds_of(pi["id"])] == [key]
    assert ["amount" in params for params, _key in fake_gateway.calls_of("refunds.create")] == [False]  # all of it
    # Synced again (the webhook and the page both ask): no second refund, the flag kept as it was.
    flag = payment.flag
    assert sync_payment_intent(pi["id"], now=now).outcome == "amount_mismatch_refunded"
    assert len(fake_gateway.refunds_of(pi["id"])) == 1 and Payment.objects.get(id=payment.id).flag == flag


def test_a_transient_error_while_refusing_mismatched_money_leaves_everything_as_it_was(world, fake_gateway, ctx):
    from models.payments.sync import sync_payment_intent

    now = _now()
    appt = book_held(world.service, world.provider, now=now)
    payment, pi = started(appt, fake_gateway, now, amount=5000, amount_received=100)
    fake_gateway.fail_next("refunds.list", transient_error())
    with pytest.raises(stripe.APIConnectionError):
        sync_payment_intent(pi["id"], now=now)
    payment.reload()
    assert (payment.status, payment.flag, payment.amount_refunded) == ("pending", "", 0)
    assert Appointment.objects.get(id=appt.id).status == "held"
    assert fake_gateway.refunds == []
    # Stripe back: the next sync makes the decision once.
    assert sync_payment_intent(pi["id"], now=now).outcome == "amount_mismatch_refunded"
    assert len(fake_gateway.refunds_of(pi["id"])) == 1


def test_a_transient_error_fetching_the_intent_changes_nothing(world, fake_gateway, ctx):
    from models.payments.sync import sync_payment_intent

    now = _now()
    appt = book_held(world.service, world.provider, now=now)
    payment, pi = started(appt, fake_gateway, now)
    fake_gateway.fail_next("payment_intents.retrieve", transient_error())
    with pytest.raises(stripe.APIConnectionError):
        sync_payment_intent(pi["id"], now=now)
    assert Payment.objects.get(id=payment.id).status == "pending"
    assert Appointment.objects.get(id=appt.id).status == "held"


def test_a_late_payment_for_a_time_someone_else_took_is_refunded_and_the_appointment_expired(
        world, fake_gateway, ctx):
    from models.payments.settlement import LATE_TAKEN_REASON
    from models.payments.sync import sync_payment_intent

    then = _now() - timedelta(minutes=30)  # the 15-minute hold lapsed long ago
    appt = book_held(world.service, world.provider, now=then)
    payment, pi = started(appt, fake_gateway, then)
    rival = book_held(world.service, world.provider, email="rival@example.com")  # takes the lapsed time
    assert sync_payment_intent(pi["id"]).outcome == "refunded_time_taken"
    late = Appointment.objects.get(id=appt.id)
    assert late.status == "expired" and late.cancel_reason == LATE_TAKEN_REASON
    assert TimeClaim.objects(appointment=appt.id).count() == 0
    assert Appointment.objects.get(id=rival.id).status == "held"
    payment.reload()
    assert payment.status == "refunded" and payment.amount_refunded == 5000
    assert [(r["amount"], r["metadata"]["refund_key"]) for r in fake_gateway.refunds_of(pi["id"])] == [
        (5000, f"refund:{payment.id}:0")]
    assert sync_payment_intent(pi["id"]).outcome == "unchanged"  # nothing twice
    assert len(fake_gateway.refunds) == 1


def test_a_late_payment_while_the_time_is_still_free_is_confirmed_late(world, fake_gateway, ctx):
    from models.payments.sync import sync_payment_intent

    then = _now() - timedelta(minutes=30)
    appt = book_held(world.service, world.provider, now=then)
    _payment, pi = started(appt, fake_gateway, then)
    assert sync_payment_intent(pi["id"]).outcome == "confirmed_late"
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert fake_gateway.refunds == []


def test_a_payment_after_the_start_time_is_refunded_not_confirmed(world, fake_gateway, ctx):
    from models.payments.sync import sync_payment_intent

    now = _now()
    appt = book_held(world.service, world.provider, now=now)
    payment, pi = started(appt, fake_gateway, now)
    after_start = _aware(appt.start) + timedelta(minutes=5)
    assert sync_payment_intent(pi["id"], now=after_start).outcome == "refunded_started"
    assert Appointment.objects.get(id=appt.id).status == "expired"
    assert Payment.objects.get(id=payment.id).amount_refunded == 5000


def test_a_payment_for_an_appointment_cancelled_meanwhile_is_refunded_in_full(world, fake_gateway, ctx):
    from models.payments.settlement import CANCELLED_BEFORE_PAID_REASON
    from models.payments.sync import sync_payment_intent

    now = _now()
    appt = book_held(world.service, world.provider, now=now)
    payment, pi = started(appt, fake_gateway, now)
    Appointment.objects(id=appt.id).update_one(set__status="cancelled")
    assert sync_payment_intent(pi["id"], now=now).outcome == "refunded_cancelled"
    payment.reload()
    assert payment.status == "refunded" and payment.refunds[0].reason == CANCELLED_BEFORE_PAID_REASON
    assert sync_payment_intent(pi["id"], now=now).outcome == "unchanged"  # refunded once
    assert len(fake_gateway.refunds) == 1


def test_a_second_intent_that_took_money_for_a_paid_payment_is_refunded_once(world, fake_gateway, ctx):
    from models.payments.sync import sync_payment_intent

    appt, payment = paid(world, fake_gateway)
    stray = fake_gateway.add_intent(5000, metadata={"payment_id": str(payment.id), "appointment_id": str(appt.id)})
    assert sync_payment_intent(stray["id"]).outcome == "duplicate_charge_refunded"
    assert sync_payment_intent(stray["id"]).outcome == "duplicate_charge_refunded"
    assert [r["metadata"]["refund_key"] for r in fake_gateway.refunds] == [f"refund:{payment.id}:{stray['id']}"]
    payment.reload()
    assert payment.status == "succeeded" and payment.amount_refunded == 0  # its own money is kept


def session_started(appt, fake, now, **session):
    """The appointment's Payment following a Checkout Session at the fake Stripe that names no intent."""
    from models.payments.ledger import payment_for

    payment = payment_for(appt, "checkout", now)
    s = fake.add_session(session.pop("amount_total", payment.amount), currency=session.pop("currency", "gbp"),
                         metadata={"payment_id": str(payment.id), "appointment_id": str(appt.id)}, **session)
    Payment.objects(id=payment.id).update_one(set__stripe_checkout_session=s["id"])
    payment.reload()
    return payment, s


def test_a_session_paid_in_full_without_an_intent_confirms(world, fake_gateway, ctx):
    from models.payments.sync import sync_checkout_session

    now = _now()
    appt = book_held(world.service, world.provider, now=now)
    payment, s = session_started(appt, fake_gateway, now)
    assert sync_checkout_session(s["id"], now=now).outcome == "confirmed"
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    assert (Payment.objects.get(id=payment.id).status, Payment.objects.get(id=payment.id).flag) == ("succeeded", "")


@pytest.mark.parametrize("money", [dict(amount_total=4000), dict(currency="eur"),
                                   dict(amount_total=0, payment_status="no_payment_required")],
                         ids=["short", "wrong_currency", "nothing_paid"])
def test_a_session_paid_without_an_intent_whose_money_does_not_match_is_flagged_and_never_confirms(
        world, fake_gateway, ctx, money):
    from models import AuditEvent
    from models.payments.sync import sync_checkout_session

    now = _now()
    appt = book_held(world.service, world.provider, now=now)
    payment, s = session_started(appt, fake_gateway, now, **money)
    assert sync_checkout_session(s["id"], now=now).outcome == "amount_mismatch_flagged"
    payment.reload()
    assert payment.flag.startswith("amount mismatch:") and "not refunded" in payment.flag
    assert payment.status == "failed"  # payable again in full; staff settle the session by hand
    assert Appointment.objects.get(id=appt.id).status == "held"
    assert fake_gateway.calls_of("refunds.create") == []  # no intent to refund through
    # Synced again (the webhook and the page both ask): flagged once, never confirmed.
    flag = payment.flag
    assert sync_checkout_session(s["id"], now=now).outcome == "amount_mismatch_flagged"
    assert Payment.objects.get(id=payment.id).flag == flag
    assert Appointment.objects.get(id=appt.id).status == "held"
    assert AuditEvent.objects(action="payment.flagged", record=f"Payment:{payment.id}").count() == 1


# --- refunds --------------------------------------------------------------------------------------

def test_partial_refunds_add_up_to_the_payment_and_never_past_it(world, fake_gateway, ctx):
    from models.payments.refunds import refund_payment

    _appt, payment = paid(world, fake_gateway)
    assert refund_payment(payment, amount=2000, reason="goodwill")["amount"] == 2000
    assert (payment.status, payment.amount_refunded) == ("succeeded", 2000)
    assert refund_payment(payment, amount=99999)["amount"] == 3000  # capped at what is left
    assert (payment.status, payment.amount_refunded) == ("refunded", 5000)
    assert refund_payment(payment) is None  # nothing left: Stripe is not asked
    assert [p["amount"] for p, _key in fake_gateway.calls_of("refunds.create")] == [2000, 3000]
    assert [key for _p, key in fake_gateway.calls_of("refunds.create")] == [
        f"refund:{payment.id}:0", f"refund:{payment.id}:1"]
    assert [(r.amount, r.status) for r in payment.refunds] == [(2000, "succeeded"), (3000, "succeeded")]


def test_an_unpaid_payment_is_never_refunded(world, fake_gateway, ctx):
    from models.payments.refunds import refund_payment

    now = _now()
    appt = book_held(world.service, world.provider, now=now)
    payment, _pi = started(appt, fake_gateway, now)
    assert refund_payment(payment) is None
    assert fake_gateway.calls_of("refunds.create") == [] and Payment.objects.get(id=payment.id).refunds == []


@pytest.mark.parametrize("rule, status_before, due", [
    ("full", "confirmed", True), ("none", "confirmed", False), ("none", "held", True)])
def test_a_cancellation_refunds_under_the_service_rule_unless_it_was_only_held(world, ctx, rule, status_before,
                                                                               due):
    from models.payments.cancellation import refund_due

    world.service.update(set__refund_rule=rule)
    appt = book_held(world.service, world.provider)
    assert refund_due(appt, status_before) is due


def test_a_transient_error_leaves_the_refund_reserved_and_the_retry_sends_it_once(world, fake_gateway, ctx):
    from models.payments.refunds import refund_payment, retry_pending_refunds

    _appt, payment = paid(world, fake_gateway)
    fake_gateway.fail_next("refunds.create", transient_error())
    with pytest.raises(stripe.APIConnectionError):
        refund_payment(payment, reason="appointment cancelled")
    payment.reload()
    # Reserved (so nobody refunds it twice), not sent: the sweeper's retry finishes it.
    assert payment.status == "succeeded" and payment.amount_refunded == 5000
    assert [(r.status, r.stripe_refund) for r in payment.refunds] == [("pending", None)]
    assert fake_gateway.refunds == []
    assert retry_pending_refunds(payment) == 1
    payment.reload()
    assert payment.status == "refunded" and [r.status for r in payment.refunds] == ["succeeded"]
    assert [key for _p, key in fake_gateway.calls_of("refunds.create")] == [f"refund:{payment.id}:0"] * 2
    assert retry_pending_refunds(payment) == 0 and len(fake_gateway.refunds) == 1


def test_a_retry_finds_a_refund_that_reached_stripe_before_the_answer_was_lost(world, fake_gateway, ctx):
    from models.payments.refunds import refund_payment, retry_pending_refunds

    _appt, payment = paid(world, fake_gateway)
    fake_gateway.fail_next("refunds.create", transient_error())
    with pytest.raises(stripe.APIConnectionError):
        refund_payment(payment)
    # Stripe did make it (the connection broke on the way back): the retry looks for its key first.
    key = f"refund:{payment.id}:0"
    fake_gateway.refunds.append({"id": "re_made_anyway", "object": "refund", "amount": 5000, "currency": "gbp",
                                 "payment_intent": payment.stripe_payment_intent, "status": "succeeded",
                                 "created": 1, "metadata": {"refund_key": key}, "_idempotency_key": key})
    payment.reload()
    assert retry_pending_refunds(payment) == 1
    payment.reload()
    assert len(fake_gateway.calls_of("refunds.create")) == 1  # only the lost attempt
    assert [(r.stripe_refund, r.status) for r in payment.refunds] == [("re_made_anyway", "succeeded")]
    assert payment.status == "refunded"


def test_a_refund_stripe_refuses_gives_the_reservation_back(world, fake_gateway, ctx):
    from models.payments.refunds import RefundFailed, refund_payment

    _appt, payment = paid(world, fake_gateway)
    fake_gateway.fail_next("refunds.create", refusal())
    with pytest.raises(RefundFailed):
        refund_payment(payment)
    payment.reload()
    assert payment.status == "succeeded" and payment.amount_refunded == 0
    assert [r.status for r in payment.refunds] == ["failed"]
    # The next refund is a new one (its own position, its own key) and goes through.
    assert refund_payment(payment)["amount"] == 5000
    payment.reload()
    assert payment.status == "refunded" and [r.status for r in payment.refunds] == ["failed", "succeeded"]


def test_a_refund_that_fails_at_stripe_is_given_back_and_the_payment_kept(world, fake_gateway, ctx):
    from models.payments.refunds import refund_payment

    _appt, payment = paid(world, fake_gateway)
    fake_gateway.refund_status = "failed"
    refund_payment(payment)
    payment.reload()
    assert payment.status == "succeeded" and payment.amount_refunded == 0
    assert [r.status for r in payment.refunds] == ["failed"]


def test_a_refund_made_in_stripes_dashboard_is_mirrored_once(world, fake_gateway, ctx):
    from models.payments.refunds import sync_refunds

    _appt, payment = paid(world, fake_gateway)
    fake_gateway.refunds.append({"id": "re_dashboard", "object": "refund", "amount": 1500, "currency": "gbp",
                                 "payment_intent": payment.stripe_payment_intent, "status": "succeeded",
                                 "created": 1, "metadata": {}, "_idempotency_key": None})
    assert sync_refunds(payment) == "refunds_updated"
    assert sync_refunds(payment) == "unchanged"
    payment.reload()
    assert payment.amount_refunded == 1500 and payment.status == "succeeded"
    assert [(r.stripe_refund, r.reason) for r in payment.refunds] == [("re_dashboard", "made in Stripe")]
