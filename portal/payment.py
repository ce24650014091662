"""Payment doors: the JSON endpoints the payment page calls, and the Checkout form route.

- `POST /api/appointments/<id>/payment` starts (or resumes) payment: the PaymentIntent's client
  secret and publishable key (`PAYMENT_FLOW=elements`), or the Checkout Session's URL.
- `POST /api/appointments/<id>/payment/confirm` `{token}`: the card tokenised by Stripe.js in the
  browser is attached to the PaymentIntent and confirmed on the server; a 3-D Secure next action
  is answered with `requires_action` and the client secret for `stripe.confirmCardPayment`.
- `GET /api/appointments/<id>/payment` and `POST …/payment/sync`: the payment's state,
  re-fetched from Stripe while it is under way (what a page shows after Stripe.js returns).
- `POST /portal/appointments/<id>/checkout`: the no-JavaScript form that sends the patient to
  Stripe Checkout.

Each door serves only the configured `PAYMENT_FLOW`: the Checkout form route while the page takes
cards, or a card token while payments go through Checkout, answers 409 `wrong_payment_flow` (the
contract's error shape) and creates nothing, so a Payment never has two live ways to pay. (When
the configuration itself changes while a payment is under way, `models.payments` stops the old
flow's PaymentIntent or Checkout Session before starting the new one.)

The payment page itself is `portal.appointment`; `PAYMENT_PAGE_CSP` widens its CSP (and only
its CSP) to the configured Stripe origins.
"""

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, request, url_for
from flask_jwt_extended import jwt_required

from web.audit import audit
from web.security import stripe_csp
from models.booking.rules import effective_status, get_patient_appointment
from models.payments.ledger import course_due
from models.payments.start import pay_with_token, start_payment
from models.payments.sync import page_state
from models.documents import utcnow
from models.errors import DomainError
from portal import openapi
from portal.auth import current_patient, patient_page
from portal.schemas import CardTokenBody, PaymentConfirmSchema, PaymentStartSchema, PaymentStateSchema, payment_view

api_bp = openapi.Blueprint("payment_api", __name__, url_prefix="/api", description="Paying for an appointment")
page_bp = Blueprint("payment_pages", __name__, url_prefix="/portal")


class _StripePageCSP(Mapping):
    """The payment page's CSP, read from the app's `STRIPE_API_BASE` at answer time."""

    def _policy(self):
        return stripe_csp(current_app.config.get("STRIPE_API_BASE"))

    def __getitem__(self, key):
        return self._policy()[key]

    def __iter__(self):
        return iter(self._policy())

    def __len__(self):
        return len(self._policy())


PAYMENT_PAGE_CSP = _StripePageCSP()


def payment_page(view):
    """Decorate the payment page's view: its CSP allows the configured Stripe origins."""
    from web.security import talisman

    return talisman(content_security_policy=PAYMENT_PAGE_CSP)(view)


def stripe_js_url():
    """Stripe.js from the configured Stripe (localstripe serves its stand-in under the same path)."""
    base = current_app.config.get("STRIPE_API_BASE")
    return f"{base.rstrip('/')}/js.stripe.com/v3/" if base else "https://js.stripe.com/v3/"


def is_local_stripe(api_base):
    """True when `api_base` is a Stripe stand-in on this machine (loopback or *.localhost), never real Stripe."""
    host = (urlsplit(api_base).hostname or "").rstrip(".").lower() if api_base else ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def confirming(payment, returned):
    """True while money is on its way to a still-held appointment: the page waits, it offers no Pay.

    The webhook and the page's own re-fetch may settle a payment at the same moment; between the
    Payment turning `succeeded` and its appointment turning `confirmed`, or right after Checkout
    sent the patient back, the page says it is confirming and checks again by itself
    (`static/confirming.js`), instead of offering to pay again what was just paid.
    """
    if payment is None:
        return False
    return payment.status == "succeeded" or (returned == "success" and payment.status in ("pending", "processing"))


def payment_context(appt, now, actor):
    """What the appointment page needs to show and take the payment (None when nothing is due)."""
    payment = page_state(appt, now, actor) if appt.amount else None
    status = effective_status(appt, now)
    returned = request.args.get("checkout")
    due = course_due(appt, now) if status == "held" else None
    return {
        "payment": payment,
        # Issue 28: a course paid up front: (total, visits) while due; the page then takes the whole course.
        "course": due,
        "paid_in_course": bool(payment is not None and payment.course and payment.status in ("succeeded", "refunded")),
        "payable": status == "held" and bool(appt.amount),
        "confirming": status == "held" and confirming(payment, returned),
        "flow": current_app.config.get("PAYMENT_FLOW") or "elements",
        "stripe_js": stripe_js_url(),
        "publishable_key": current_app.config.get("STRIPE_PUBLISHABLE_KEY") or "",
        "returned": returned,
        # The page names the test cards only where no real card can be charged.
        "local_test": is_local_stripe(current_app.config.get("STRIPE_API_BASE")),
    }


@api_bp.route("/appointments/<appointment_id>/payment", methods=["POST"])
@api_bp.errors(400, 401, 403, 404, 409, 422, 503)
@jwt_required()
@api_bp.response(200, PaymentStartSchema)
def start(appointment_id):
    """Start paying for one of the patient's own held appointments."""
    patient = current_patient()
    appt = get_patient_appointment(patient, appointment_id)
    actor = f"patient:{patient.id}"
    return start_payment(appt, utcnow(), actor=actor, audit_as=actor)  # audits itself


@api_bp.route("/appointments/<appointment_id>/payment/confirm", methods=["POST"])
@api_bp.errors(400, 401, 402, 403, 404, 409, 413, 415, 503)
@jwt_required()
@api_bp.arguments(CardTokenBody)
@api_bp.response(200, PaymentConfirmSchema)
def confirm(body, appointment_id):
    """Confirm the PaymentIntent with a card token from Stripe.js (402 when declined)."""
    patient = current_patient()
    appt = get_patient_appointment(patient, appointment_id)
    actor = f"patient:{patient.id}"
    # Audits itself: the payment's status when done, "refused:<code>" when not.
    return pay_with_token(appt, body["token"], utcnow(), actor=actor, audit_as=actor)


def _payment_state(appointment_id):
    """The patient's payment for one of their appointments, re-fetched from Stripe while under way."""
    patient = current_patient()
    appt = get_patient_appointment(patient, appointment_id)
    now = utcnow()
    payment = page_state(appt, now, f"patient:{patient.id}")
    audit(f"patient:{patient.id}", "payment.read", record=f"Appointment:{appt.id}")
    return payment_view(payment, appt, now)


@api_bp.route("/appointments/<appointment_id>/payment")
@api_bp.errors(401, 404, 503)
@jwt_required()
@api_bp.response(200, PaymentStateSchema)
def show(appointment_id):
    """The payment's state as Stripe has it now (re-fetched while it is under way)."""
    return _payment_state(appointment_id)


@api_bp.route("/appointments/<appointment_id>/payment/sync", methods=["POST"])
@api_bp.errors(400, 401, 403, 404, 503)
@jwt_required()
@api_bp.response(200, PaymentStateSchema)
def sync(appointment_id):
    """Same as GET, for pages that return from Stripe and want the server to look now."""
    return _payment_state(appointment_id)


@page_bp.post("/appointments/<appointment_id>/checkout")
@patient_page
def checkout(appointment_id):
    """Send the patient to Stripe Checkout for a held appointment (works without JavaScript)."""
    from flask import flash

    appt = get_patient_appointment(g.patient, appointment_id)
    actor = f"patient:{g.patient.id}"
    try:
        # The action checks the flow first and audits itself, done or refused.
        answer = start_payment(appt, utcnow(), actor=actor, flow="checkout", audit_as=actor)
    except DomainError as exc:
        if exc.code == "wrong_payment_flow":
            raise  # not a flash and a redirect: the page never offers this form in the other flow
        flash(exc.message, "error")
        return redirect(url_for("portal.appointment", appointment_id=appt.id))
    return redirect(answer["url"], code=303)
