"""No-show protection (issue 27), the patient's doors: the card on file and paying a fee on-line.

- `POST /api/me/card`: start saving a card (a SetupIntent's secret for Stripe.js, or in the Checkout
  flow the URL of a Checkout Session in `setup` mode); `GET /api/me/card` the card (brand, last
  four, expiry; re-fetched from Stripe while a setup is under way) or 404; `DELETE /api/me/card`.
- `GET /api/fees/<id>`: a fee the patient was emailed about (`fee_due`), with the intent's client
  secret while the bank asks for authentication (Stripe.js `confirmCardPayment` completes it);
  404 for anyone else's.
- Pages: the card section of `/portal/account` (`/portal/account/card` to add one, a form to
  remove it), and `/portal/appointments/<id>/fee/<fee id>`, the page the emailed link opens.
"""

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_jwt_extended import jwt_required

from models.payments.cards import card_on_file, remove_card, start_card_setup
from models.payments.fees import start_fee_payment
from models.documents import utcnow
from models.errors import DomainError
from portal import openapi
from portal.auth import current_patient, patient_page
from portal.payment import is_local_stripe, payment_page, stripe_js_url
from portal.schemas import CardRemovedSchema, CardSchema, CardSetupSchema, FeePaymentSchema

api_bp = openapi.Blueprint("card_api", __name__, url_prefix="/api", description="Card on file and fees")
page_bp = Blueprint("card", __name__, url_prefix="/portal")


def _flow():
    return current_app.config.get("PAYMENT_FLOW") or "elements"


def _start(patient):
    actor = f"patient:{patient.id}"
    return start_card_setup(patient, utcnow(), flow=_flow(), audit_as=actor)  # audits itself


@api_bp.route("/me/card", methods=["POST"])
@api_bp.errors(401, 403, 503)
@jwt_required()
@api_bp.response(200, CardSetupSchema)
def save_card():
    """Start saving a card on file for deposits and fees."""
    return _start(current_patient())


@api_bp.route("/me/card")
@api_bp.errors(401, 404, 503)
@jwt_required()
@api_bp.response(200, CardSchema)
def show_card():
    """The card on file (404 when there is none)."""
    return card_on_file(current_patient())


@api_bp.route("/me/card", methods=["DELETE"])
@api_bp.errors(401, 403, 404, 503)
@jwt_required()
@api_bp.response(200, CardRemovedSchema)
def delete_card():
    """Remove the card on file."""
    patient = current_patient()
    return remove_card(patient, utcnow(), audit_as=f"patient:{patient.id}")


@api_bp.route("/fees/<payment_id>")
@api_bp.errors(401, 404, 503)
@jwt_required()
@api_bp.response(200, FeePaymentSchema)
def show_fee(payment_id):
    """A fee of the patient's own, with what Stripe.js needs to pay it on-line."""
    return start_fee_payment(current_patient(), payment_id, utcnow())


def card_for_page(patient):
    """The card on file for a page, or None (no card, or Stripe not answering right now)."""
    try:
        return card_on_file(patient)
    except DomainError:
        return None


@page_bp.get("/account/card")
@patient_page
@payment_page
def add_card_page():
    """Add a card: the card field (Stripe.js `confirmCardSetup`), or off to Checkout's setup page."""
    if _flow() == "checkout":
        return render_template("portal/card.html", setup=None, flow="checkout")
    try:
        setup = _start(g.patient)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("account.account"))
    return render_template("portal/card.html", setup=setup, flow="elements", stripe_js=stripe_js_url(),
                           local_test=is_local_stripe(current_app.config.get("STRIPE_API_BASE")))


@page_bp.post("/account/card/checkout")
@patient_page
def add_card_checkout():
    """The no-JavaScript way to save a card in the Checkout flow: off to Stripe's setup page."""
    try:
        answer = _start(g.patient)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("account.account"))
    return redirect(answer.get("url") or url_for("card.add_card_page"), code=303)


@page_bp.post("/account/card/remove")
@patient_page
def remove_card_page():
    """Remove the card on file."""
    try:
        remove_card(g.patient, utcnow(), audit_as=f"patient:{g.patient.id}")
        flash("Your card is removed.", "info")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for("account.account"))


@page_bp.get("/appointments/<appointment_id>/fee/<payment_id>")
@patient_page
@payment_page
def fee_page(appointment_id, payment_id):
    """The emailed pay link: the fee, and a button that confirms it with the bank (3-D Secure)."""
    # The domain checks the fee is this appointment's and the patient's (404 otherwise).
    fee = start_fee_payment(g.patient, payment_id, utcnow(), appointment_id=appointment_id)
    return render_template("portal/fee.html", fee=fee, appointment_id=appointment_id,
                           stripe_js=stripe_js_url(), paid=request.args.get("paid"))
