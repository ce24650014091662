"""Starting a payment: the card page's PaymentIntent (Elements, card tokens) or a Checkout Session."""

import re
from datetime import timedelta

from flask import current_app

from models.audit import appointment_record, audited
from models.booking.claims import extend_claims
from models.booking.documents import online_amount
from models.booking.rules import effective_status
from models.clock import _utc
from models.errors import Conflict, ValidationFailed
from models.payments.gateway import (
    CardError,
    InvalidRequestError,
    PaymentDeclined,
    StripeError,
    _fetch_intent,
    _fetch_session,
    _id_of,
    _obj,
    _payment_method_from_token,
    is_transient,
    stripe_api,
    translate_stripe_errors,
)
from models.payments.documents import Payment
from models.payments.ledger import (
    CONFIRMED_STATUSES,
    _audit,
    _move_payment,
    _payment_lock,
    _ref_id,
    course_shares,
    follow_lead,
    log,
    payment_for,
)
from models.payments.settlement import settle_paid
from models.payments.sync import _apply_intent, sync_checkout_session, sync_payment_intent


# Stripe refuses a Checkout Session that expires less than 30 minutes after it is created.
CHECKOUT_MIN_LIFETIME = timedelta(minutes=30)

CHECKOUT_MARGIN = timedelta(minutes=1)

TOKEN_RE = re.compile(r"^tok_[A-Za-z0-9_]{6,64}$")


def _check_payable(appointment, now):
    if not appointment.amount:
        raise Conflict("This appointment is free of charge; there is nothing to pay.",
                       code="nothing_to_pay")
    status = effective_status(appointment, now)
    if status == "held":
        return
    if status in CONFIRMED_STATUSES:
        raise Conflict("This appointment is already paid and confirmed.", code="already_paid")
    if status == "expired":
        raise Conflict("The hold on this time has expired. Please book a time again.",
                       code="hold_expired")
    raise Conflict(f"This appointment is {status.replace('_', ' ')} and cannot be paid.",
                   code="not_payable")


def _refuse_if_settled(payment, appointment, actor, now):
    """409 when the payment already went through (after bringing the appointment up to date)."""
    if payment.status in ("succeeded", "refunded"):
        if payment.status == "succeeded":
            settle_paid(payment, actor, now, first_time=False)
        raise Conflict("This appointment is already paid.", code="already_paid")
    if payment.status == "processing":
        raise Conflict("A payment for this appointment is already being processed.",
                       code="payment_processing")


def configured_flow():
    """The payment flow this deployment offers (`PAYMENT_FLOW`): "elements" or "checkout"."""
    return current_app.config.get("PAYMENT_FLOW") or "elements"


def require_flow(flow):
    """409 `wrong_payment_flow` unless `flow` is the configured one.

    A Payment has one live way to pay: a door of the other flow (the Checkout form while the page
    takes cards, a card token while payments go through Checkout) would open a second one.
    """
    if flow != configured_flow():
        raise Conflict("This clinic does not take payments that way; please reload the "
                       "appointment page and pay from there.", code="wrong_payment_flow")


@audited("payment.start", appointment_record)  # outermost: it audits Stripe's errors as translated
@translate_stripe_errors
def start_payment(appointment, now, actor="system", flow=None):
    """Create or reuse the appointment's Payment and its PaymentIntent or Checkout Session.

    Only the configured flow can be started (`require_flow`). Elements: `{flow, client_secret,
    publishable_key, payment_intent, amount, currency}`. Checkout: `{flow, url, session}`.
    """
    if flow is not None:
        require_flow(flow)
    flow = configured_flow()
    _check_payable(appointment, now)
    payment = payment_for(appointment, flow, now)
    _refuse_if_settled(payment, appointment, actor, now)
    if flow == "checkout":
        return _start_checkout(payment, appointment, actor, now)
    pi = _usable_intent(payment, appointment, actor, now)
    return {"flow": "elements", "client_secret": pi["client_secret"],
            "publishable_key": current_app.config.get("STRIPE_PUBLISHABLE_KEY"),
            "payment_intent": pi["id"], "amount": pi["amount"], "currency": pi["currency"]}


def _shares(payment, appointment, now):
    """The Payments one Stripe object pays for: this one, or every held visit's share of its course."""
    if not payment.course:
        return [payment]
    return course_shares(appointment, payment.flow, now) or [payment]


def _intent_params(payment, appointment, shares=None):
    # localstripe rejects automatic_payment_methods, description and receipt_email; Stripe accepts this.
    # The metadata names the lead Payment and its own appointment (a course's first held visit).
    amount = sum(p.amount for p in shares) if shares else online_amount(appointment)
    metadata = {"appointment_id": str(_ref_id(payment.appointment)), "payment_id": str(payment.id), "flow": "elements"}
    if payment.course:
        metadata["course"] = str(payment.course)
    return {"amount": amount, "currency": appointment.currency, "payment_method_types": ["card"],
            "metadata": metadata}


def _from_checkout(pi, session_intent=None):
    """Whether an intent was created by a Checkout Session: Stripe closes it with its session and
    refuses to cancel it directly (so does the app: it is never reused on the card page)."""
    return pi["id"] == session_intent or (pi.get("metadata") or {}).get("flow") == "checkout"


def _stop_checkout_session(payment, appointment, actor, now):
    """Expire the Payment's Checkout Session before it is paid by card on our page.

    Returns the id of the session's own PaymentIntent (None when it has none): Stripe closes that
    one with the session and refuses to cancel it directly. A session that completed meanwhile is
    synced first, so money it took settles the payment (409 `already_paid`) instead.
    """
    session_id = payment.stripe_checkout_session
    if not session_id:
        return None
    session = _fetch_session(session_id)
    if session is None:
        return None
    if session.get("status") == "open":
        try:
            stripe_api().v1.checkout.sessions.expire(session_id)
        except InvalidRequestError:
            session = _fetch_session(session_id) or session  # completed while we looked
        else:
            _audit(actor, "payment.checkout_expired", f"Payment:{payment.id}", outcome="flow_changed")
            return _id_of(session.get("payment_intent"))
    if session.get("status") == "complete":
        sync_checkout_session(session_id, actor, now)
        payment.reload()
        _refuse_if_settled(payment, appointment, actor, now)
    return _id_of(session.get("payment_intent"))


def _usable_intent(payment, appointment, actor, now):
    """The Payment's PaymentIntent when it can still take a card; otherwise a new one.

    An intent that was declined, whose 3-D Secure was abandoned, or that was cancelled is
    replaced (and cancelled first, so it can never take money later). Stripe could retry a
    declined intent, localstripe cannot; replacing works on both. A Checkout Session the Payment
    still has open (the flow was switched while it was under way) is expired first.
    """
    client = stripe_api()
    session_intent = _stop_checkout_session(payment, appointment, actor, now)
    shares = _shares(payment, appointment, now)
    old_id = payment.stripe_payment_intent
    key = f"pi-create:{payment.id}"
    if old_id:
        pi = _fetch_intent(old_id)
        if pi is not None:
            if pi["status"] in ("succeeded", "processing", "requires_capture"):
                _apply_intent(payment, pi, actor, now)
                _refuse_if_settled(payment, appointment, actor, now)
            checkout_made = _from_checkout(pi, session_intent)
            # A course's intent is replaced when the visits it pays for changed (one was cancelled).
            same_money = pi["amount"] == sum(p.amount for p in shares) and all(
                p.stripe_payment_intent == old_id for p in shares)
            if (pi["status"] in ("requires_payment_method", "requires_confirmation")
                    and not pi.get("last_payment_error") and not checkout_made and same_money):
                return pi
            if pi["status"] != "canceled" and not checkout_made:
                try:
                    client.v1.payment_intents.cancel(old_id)
                except InvalidRequestError:
                    # It moved on while we looked (it may have succeeded): the sync decides.
                    sync_payment_intent(old_id, actor, now)
                    payment.reload()
                    _refuse_if_settled(payment, appointment, actor, now)
                    raise Conflict("This payment changed while we were starting a new one; "
                                   "please try again.", code="payment_changed") from None
        key = f"pi-create:{payment.id}:{old_id}"
    if payment.course:
        key += f":{len(shares)}"  # the same intent key never answers for another set of visits
    created = _obj(client.v1.payment_intents.create(_intent_params(payment, appointment, shares),
                                                    options={"idempotency_key": key}))
    moved = _move_payment(payment, "pending", now, only_from=("pending", "failed", "canceled"),
                          where={"stripe_payment_intent": old_id}, set__stripe_payment_intent=created["id"])
    if moved:
        follow_lead(payment, shares, now, set__stripe_payment_intent=created["id"])
        return created
    # Someone else replaced it first (a double click): use theirs, and make ours harmless.
    if payment.stripe_payment_intent != created["id"]:
        try:
            client.v1.payment_intents.cancel(created["id"])
        except StripeError:
            log.warning("could not cancel surplus PaymentIntent %s", created["id"])
    _refuse_if_settled(payment, appointment, actor, now)
    current = _fetch_intent(payment.stripe_payment_intent)
    if current is None:
        raise Conflict("Please try the payment again.", code="payment_changed")
    return current


@audited("payment.confirm", appointment_record, outcome=lambda answer: answer["status"])
@translate_stripe_errors
def pay_with_token(appointment, token, now, actor="system"):
    """Attach a tokenised card to the PaymentIntent and confirm it on the server.

    Answers `{status, appointment_status, requires_action, client_secret?}`; the browser
    completes a 3-D Secure next action with `stripe.confirmCardPayment(client_secret)`.
    A declined card raises PaymentDeclined (402) and leaves the appointment held and payable.
    """
    require_flow("elements")
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ValidationFailed("The card token is missing or malformed.", fields={"token": "invalid"})
    _check_payable(appointment, now)
    payment = payment_for(appointment, "elements", now)
    _refuse_if_settled(payment, appointment, actor, now)
    client = stripe_api()
    with _payment_lock(payment):
        pi = _usable_intent(payment, appointment, actor, now)
        pm_id = _payment_method_from_token(token)
        # localstripe answers 500 to confirm(payment_method=…): attach first, then confirm.
        client.v1.payment_intents.update(pi["id"], {"payment_method": pm_id},
                                         options={"idempotency_key": f"pi-attach:{pi['id']}:{token}"})
        try:
            client.v1.payment_intents.confirm(pi["id"],
                                              options={"idempotency_key": f"pi-confirm:{pi['id']}:{token}"})
        except CardError as exc:
            sync_payment_intent(pi["id"], actor, now)  # records the failure; the hold stays
            raise PaymentDeclined(exc.user_message or "Your card was declined.") from None
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Sent, but no answer: the card may have been charged. Never "try again" for that.
            return _answer_from_database(payment, appointment, pi, now, exc)
        try:
            result = sync_payment_intent(pi["id"], actor, now)
            fresh = _fetch_intent(pi["id"]) or pi
        except Exception as exc:
            if not is_transient(exc):
                raise
            return _answer_from_database(payment, appointment, pi, now, exc)
    appointment.reload()
    answer = {"status": result.payment.status if result.payment else payment.status,
              "intent_status": fresh["status"],
              "appointment_status": effective_status(appointment, now),
              "requires_action": fresh["status"] == "requires_action"}
    if answer["requires_action"]:
        answer["client_secret"] = fresh["client_secret"]
    return answer


def _answer_from_database(payment, appointment, pi, now, exc):
    """The answer after Stripe was asked to confirm but did not answer, or the re-fetch failed
    (issue 31): what the database knows ("processing" until Stripe says otherwise, "succeeded" when
    the webhook got there first), never a 503. The payment is marked for an immediate re-sync
    (`resync_due`), which the next sweep or worker pass does."""
    log.warning("payment %s: confirmation sent, Stripe's answer lost (%s); re-synced on the next pass",
                payment.id, exc)
    try:
        Payment.objects(id=payment.id).update_one(set__resync_due=now)
        payment.reload()
        appointment.reload()
    except Exception as db_exc:  # the database hiccuped too: the sweep's stuck-payment pass still finds it
        log.warning("payment %s: could not mark it for re-sync: %s", payment.id, db_exc)
    # Only money known to have landed changes the answer; anything else is still being checked.
    stored = payment.status if payment.status in ("succeeded", "refunded") else "processing"
    return {"status": stored, "intent_status": "succeeded" if stored != "processing" else "processing",
            "appointment_status": effective_status(appointment, now), "requires_action": False}


def checkout_expiry(appointment, now):
    """When the Checkout Session should expire: the hold's end, but never under Stripe's minimum.

    Stripe requires `expires_at` at least 30 minutes ahead; a hold is usually shorter (15
    minutes). We extend the hold to the session's expiry (plus nothing more), so a patient who
    pays on Stripe's page within its lifetime always finds the time still theirs.
    """
    return max(_utc(appointment.hold_expires_at), now + CHECKOUT_MIN_LIFETIME + CHECKOUT_MARGIN)


def _extend_hold(appointment, until, now):
    """Move a live hold's end (and its claims' lapse) to `until`; Conflict when it lapsed."""
    old = _utc(appointment.hold_expires_at)
    if until <= old:
        return
    # Guarded and refreshed in one command (the document in hand is the one just written).
    moved = old > now and appointment.modify(query={"status": "held", "hold_expires_at": old},
                                             set__hold_expires_at=until, set__updated_at=now)
    if not moved:
        raise Conflict("The hold on this time has expired. Please book a time again.",
                       code="hold_expired")
    extend_claims(appointment.id, until)


def _stop_own_intent(payment, appointment, actor, now, session_intent):
    """Cancel a live PaymentIntent we created for the card page before sending the patient to
    Checkout (the flow was switched while it was under way). An intent that already took the
    money settles the payment instead (409 `already_paid`); a Checkout Session's own intent is
    left to its session."""
    pi_id = payment.stripe_payment_intent
    if not pi_id or pi_id == session_intent:
        return
    pi = _fetch_intent(pi_id)
    if pi is None or pi["status"] == "canceled":
        return
    if pi["status"] in ("succeeded", "processing", "requires_capture"):
        _apply_intent(payment, pi, actor, now)
        _refuse_if_settled(payment, appointment, actor, now)
    if _from_checkout(pi):
        return
    try:
        stripe_api().v1.payment_intents.cancel(pi_id)
    except InvalidRequestError:
        # It moved on while we looked (it may have succeeded): the sync decides.
        sync_payment_intent(pi_id, actor, now)
        payment.reload()
        _refuse_if_settled(payment, appointment, actor, now)
        raise Conflict("This payment changed while we were starting a new one; "
                       "please try again.", code="payment_changed") from None
    _audit(actor, "payment.intent_canceled", f"Payment:{payment.id}", outcome="flow_changed")


def _start_checkout(payment, appointment, actor, now):
    """The Payment's open Checkout Session, or a new one (after stopping any other way to pay)."""
    client = stripe_api()
    old_id = payment.stripe_checkout_session
    key = f"cs-create:{payment.id}"
    session = _fetch_session(old_id) if old_id else None
    session_intent = _id_of(session.get("payment_intent")) if session else None
    _stop_own_intent(payment, appointment, actor, now, session_intent)
    if old_id:
        if session is not None:
            if session.get("status") == "open" and session.get("url"):
                return {"flow": "checkout", "url": session["url"], "session": session["id"]}
            if session.get("status") == "complete":
                sync_checkout_session(session["id"], actor, now)
                payment.reload()
                _refuse_if_settled(payment, appointment, actor, now)
        key = f"cs-create:{payment.id}:{old_id}"
    shares = _shares(payment, appointment, now)
    if payment.course:
        key += f":{len(shares)}"
    expires = checkout_expiry(appointment, now)
    visits = [appointment] if not payment.course else [s.appointment for s in shares]
    for visit in visits:  # a course's holds are extended together, so they lapse together
        _extend_hold(visit, expires, now)
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    page = f"{base}/portal/appointments/{appointment.id}"
    metadata = {"appointment_id": str(_ref_id(payment.appointment)), "payment_id": str(payment.id), "flow": "checkout"}
    service = appointment.service
    name = service.name + (" (deposit)" if online_amount(appointment) != appointment.amount else "")
    if payment.course:
        metadata["course"] = str(payment.course)
        name = f"{service.name}: course of {len(shares)} visits" + (
            " (deposits)" if online_amount(appointment) != appointment.amount else "")
    params = {
        "mode": "payment",
        "payment_method_types": ["card"],
        "line_items": [{"quantity": 1, "price_data": {
            "currency": appointment.currency, "unit_amount": sum(p.amount for p in shares),
            "product_data": {"name": name}}}],
        "client_reference_id": str(_ref_id(payment.appointment)),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "expires_at": int(expires.timestamp()),
        "success_url": f"{page}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{page}?checkout=cancelled",
    }
    session = _obj(client.v1.checkout.sessions.create(params, options={"idempotency_key": key}))
    moved = _move_payment(payment, "pending", now, only_from=("pending", "failed", "canceled"),
                          where={"stripe_checkout_session": old_id}, set__stripe_checkout_session=session["id"])
    if moved:
        follow_lead(payment, shares, now, set__stripe_checkout_session=session["id"])
    payment.reload()
    if not moved and payment.stripe_checkout_session != session["id"]:
        current = _fetch_session(payment.stripe_checkout_session)
        if current and current.get("url"):
            return {"flow": "checkout", "url": current["url"], "session": current["id"]}
    return {"flow": "checkout", "url": session["url"], "session": session["id"]}
