"""No-show protection (issue 27): a card on file per patient.

A Stripe Customer is made on first need (only its id is stored on the Patient). A card is saved
through a SetupIntent: the card page confirms it with Stripe.js (`confirmCardSetup`), or, in the
Checkout flow, a Checkout Session in `setup` mode collects it on Stripe's page. As everywhere in
payments, the browser's word is never proof: the SetupIntent is fetched from Stripe by its id
(`sync_setup_intent`, called by the webhook's `setup_intent.succeeded` and
`checkout.session.completed`, and by `GET /api/me/card` while a setup is pending), and only then
does the Patient get the card's brand, last four digits and expiry. Never a card number.
"""

from flask import current_app

from models.accounts.documents import Patient
from models.audit import audited, patient_record
from models.clock import utcnow
from models.errors import NotFound
from models.payments.gateway import (
    InvalidRequestError,
    _fetch_session,
    _id_of,
    _obj,
    stripe_api,
    translate_stripe_errors,
)
from models.payments.ledger import _audit, log


def ensure_customer(patient):
    """The patient's Stripe Customer id, created on first need (one per patient, race-safe)."""
    if patient.stripe_customer:
        return patient.stripe_customer
    customer = _obj(stripe_api().v1.customers.create(
        {"metadata": {"patient_id": str(patient.id)}},
        options={"idempotency_key": f"cus-create:{patient.id}"}))
    # Guarded: of two first needs at once, one Customer is kept (the other is simply unused).
    if not Patient.objects(id=patient.id, stripe_customer=None).update_one(set__stripe_customer=customer["id"]):
        patient.reload()
        return patient.stripe_customer
    patient.stripe_customer = customer["id"]
    return customer["id"]


def _page_urls():
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    return f"{base}/portal/account"


@audited("card.setup", patient_record)
@translate_stripe_errors
def start_card_setup(patient, now=None, flow="elements"):
    """Start saving a card: a SetupIntent for the card page, or a Checkout Session in `setup` mode.

    Elements: `{flow, client_secret, publishable_key, setup_intent}`; Checkout: `{flow, url, session}`.
    The pending SetupIntent (or session) is remembered so the account page can re-fetch it.
    """
    now = now or utcnow()
    customer = ensure_customer(patient)
    metadata = {"patient_id": str(patient.id), "purpose": "card_on_file"}
    client = stripe_api()
    if flow == "checkout":
        page = _page_urls()
        session = _obj(client.v1.checkout.sessions.create({
            "mode": "setup", "customer": customer, "payment_method_types": ["card"],
            "client_reference_id": str(patient.id), "metadata": metadata,
            "setup_intent_data": {"metadata": metadata},
            "success_url": f"{page}?card=saved&session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{page}?card=cancelled"}))
        Patient.objects(id=patient.id).update_one(set__card_setup=session["id"])
        return {"flow": "checkout", "url": session["url"], "session": session["id"]}
    intent = _obj(client.v1.setup_intents.create({
        "customer": customer, "usage": "off_session", "payment_method_types": ["card"],
        "metadata": metadata}))
    Patient.objects(id=patient.id).update_one(set__card_setup=intent["id"])
    return {"flow": "elements", "client_secret": intent["client_secret"],
            "publishable_key": current_app.config.get("STRIPE_PUBLISHABLE_KEY"),
            "setup_intent": intent["id"]}


def sync_setup_intent(setup_intent, actor="stripe", now=None):
    """Re-fetch a SetupIntent and, when it succeeded, make its card the patient's card on file.

    Idempotent; returns an outcome slug. The card is attached to the patient's Customer (Stripe
    does it itself; localstripe does not), and a card it replaces is detached.
    """
    client = stripe_api()
    try:
        si = _obj(client.v1.setup_intents.retrieve(_id_of(setup_intent)))
    except InvalidRequestError as exc:
        if exc.http_status == 404:
            return "unknown_setup_intent"
        raise
    patient_id = (si.get("metadata") or {}).get("patient_id")
    patient = Patient.objects(id=patient_id).first() if patient_id else None
    if patient is None or not patient.stripe_customer or _id_of(si.get("customer")) != patient.stripe_customer:
        return "unknown_patient"
    if si.get("status") != "succeeded" or not si.get("payment_method"):
        return f"setup_{si.get('status')}"
    pm_id = _id_of(si["payment_method"])
    if patient.card_payment_method == pm_id:
        Patient.objects(id=patient.id, card_setup=si["id"]).update_one(unset__card_setup=True)
        return "unchanged"
    try:
        pm = _obj(client.v1.payment_methods.attach(pm_id, {"customer": patient.stripe_customer}))
    except InvalidRequestError:
        pm = _obj(client.v1.payment_methods.retrieve(pm_id))  # already attached to it
    card = pm.get("card") or {}
    old = patient.card_payment_method
    Patient.objects(id=patient.id).update_one(
        set__card_payment_method=pm_id, set__card_brand=str(card.get("brand") or "card")[:30],
        set__card_last4=str(card.get("last4") or "")[:4], set__card_exp_month=card.get("exp_month"),
        set__card_exp_year=card.get("exp_year"), unset__card_setup=True)
    if old:
        _detach(old)
    _audit(actor, "card.saved", f"Patient:{patient.id}")
    return "card_saved"


def sync_setup_session(session, actor="stripe", now=None):
    """A Checkout Session in `setup` mode: sync the SetupIntent it made (None when not a setup session)."""
    s = _fetch_session(_id_of(session)) if not isinstance(session, dict) else session
    if not s or s.get("mode") != "setup":
        return None
    if s.get("status") != "complete" or not s.get("setup_intent"):
        return f"setup_session_{s.get('status')}"
    return sync_setup_intent(s["setup_intent"], actor, now)


def _detach(pm_id):
    try:
        stripe_api().v1.payment_methods.detach(pm_id)
    except InvalidRequestError as exc:
        log.warning("could not detach payment method %s: %s", pm_id, exc)


@translate_stripe_errors
def card_on_file(patient):
    """The card on file as the patient sees it, re-fetching a pending setup first; NotFound when none."""
    pending = getattr(patient, "card_setup", None)
    if pending:
        if pending.startswith("cs_"):
            sync_setup_session(pending, f"patient:{patient.id}")
        else:
            sync_setup_intent(pending, f"patient:{patient.id}")
        patient.reload()
    if not patient.card_payment_method:
        raise NotFound("You have no card on file.", code="no_card")
    return {"brand": patient.card_brand, "last4": patient.card_last4,
            "exp_month": patient.card_exp_month, "exp_year": patient.card_exp_year}


@audited("card.remove", patient_record)
@translate_stripe_errors
def remove_card(patient, now=None):
    """Forget the card on file (detached from the Customer at Stripe); NotFound when there is none.

    Fees already agreed for upcoming appointments then fall due by email instead of being charged.
    """
    patient.reload()
    if not patient.card_payment_method:
        raise NotFound("You have no card on file.", code="no_card")
    _detach(patient.card_payment_method)
    Patient.objects(id=patient.id).update_one(
        unset__card_payment_method=True, set__card_brand="", set__card_last4="",
        unset__card_exp_month=True, unset__card_exp_year=True)
    patient.reload()
    return {"removed": True}
