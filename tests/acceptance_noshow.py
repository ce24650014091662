"""Acceptance check for issue 27 (no-show protection), kept outside the suite (pytest does not collect it).

    .venv/bin/python tests/acceptance_noshow.py

Starts the run command's stack (`devstack.stack.start_stack`, throwaway stores: SecantusDB, Valkey,
localstripe behind the Checkout stand-in, aiosmtpd), seeds the demo clinic with `flask seed-demo`,
gives its paid service a policy as an admin would (pay at the clinic, card on file, a £20.00
late-cancellation fee inside 120 hours), serves the app under gunicorn, and then over HTTP, as a
patient's browser would:

- registers and signs in; `GET /api/services` states the policy;
- saves a card (`POST /api/me/card`, the SetupIntent confirmed at Stripe as Stripe.js does, then
  `GET /api/me/card` shows "visa 4242");
- books a time inside the window, agreeing to the policy, and cancels it late: the answer says
  the fee was charged, Stripe holds exactly one £20.00 payment for it, a second cancel is refused
  and charges nothing, and a "fee charged" receipt is queued.

Prints `ok` or `FAILED` per check; exit status 0 only when every check holds.
"""

import secrets
import subprocess
import sys
import tempfile
import uuid
from datetime import date, timedelta
from pathlib import Path

import pymongo
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.servers import free_port  # noqa: E402
from devstack.stack import start_stack  # noqa: E402
from tests.helpers import BIN, clean_env, start_gunicorn, stop_process, wait_http  # noqa: E402

PASSWORD = "amber kettle orbit"
FEE = 2000
# Long enough that the first free time (after a weekend the demo clinic is closed) is inside it.
WINDOW_HOURS = 120


class Patient:
    """A patient's browser: cookies, and the CSRF header every state change sends."""

    def __init__(self, base):
        self.base, self.http = base, requests.Session()

    def call(self, method, path, body=None):
        headers = {"X-CSRF-TOKEN": self.http.cookies.get("csrf_access_token", "")}
        return self.http.request(method, self.base + path, json=body, headers=headers, timeout=30)


def check_policy_is_public(ctx):
    services = requests.get(ctx["base"] + "/api/services", timeout=10).json()
    service = next(s for s in services if s["id"] == ctx["service_id"])
    ok = service["policy"] == {"deposit": 0, "late_cancel_fee": FEE, "no_show_fee": 0, "cancellation_hours": WINDOW_HOURS}
    return ok, f"policy {service['policy']}"


def check_card_is_saved(ctx):
    me = ctx["patient"]
    started = me.call("POST", "/api/me/card").json()
    seti = started["setup_intent"]
    # What Stripe.js `confirmCardSetup` does in the browser, with the publishable key only.
    confirmed = requests.post(f"{ctx['stripe']}/v1/setup_intents/{seti}/confirm", timeout=30, json={
        "key": started["publishable_key"], "client_secret": started["client_secret"], "use_stripe_sdk": True,
        "payment_method_data": {"type": "card", "card": {"number": "4242424242424242", "exp_month": "12",
                                                         "exp_year": "2034", "cvc": "123"}}}).json()
    card = me.call("GET", "/api/me/card")
    shown = card.json() if card.status_code == 200 else {}
    ok = confirmed.get("status") == "succeeded" and (shown.get("brand"), shown.get("last4")) == ("visa", "4242")
    return ok, f"setup {confirmed.get('status')}, card {card.status_code} {shown}"


def check_late_cancel_charges_the_fee_once(ctx):
    me = ctx["patient"]
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    slots = requests.get(ctx["base"] + "/api/slots", timeout=30,
                         params={"service": ctx["service_id"], "from": tomorrow, "days": 4}).json()
    slot = slots[0]
    refused = me.call("POST", "/api/appointments", {"service": ctx["service_id"], "provider": slot["provider"],
                                                    "start": slot["start"]})
    booked = me.call("POST", "/api/appointments", {"service": ctx["service_id"], "provider": slot["provider"],
                                                   "start": slot["start"], "agree_policy": True})
    if booked.status_code != 201:
        return False, f"booking answered {booked.status_code} {booked.text}"
    appt = booked.json()
    cancelled = me.call("POST", f"/api/appointments/{appt['id']}/cancel")
    again = me.call("POST", f"/api/appointments/{appt['id']}/cancel")
    fee = cancelled.json().get("fee") or {}
    db = ctx["db"]
    fees = list(db.payments.find({"appointment": _oid(appt["id"]),
                                  "kind": "late_cancel_fee"}))
    intents = requests.get(f"{ctx['stripe']}/v1/payment_intents", params={"limit": 100}, timeout=30,
                           headers={"Authorization": "Bearer " + ctx["secret_key"]}).json()["data"]
    charged = [pi for pi in intents if (pi.get("metadata") or {}).get("appointment_id") == appt["id"]]
    receipts = db.outbox.count_documents({"kind": "fee_charged", "appointment": _oid(appt["id"])})
    ok = (refused.status_code == 422 and refused.json()["error"]["code"] == "policy_not_agreed"
          and appt["status"] == "confirmed" and cancelled.status_code == 200
          and fee == {"kind": "late_cancel_fee", "amount": FEE, "currency": "gbp", "status": "charged"}
          and again.status_code == 409 and len(fees) == 1
          and [(pi["amount"], pi["status"]) for pi in charged] == [(FEE, "succeeded")] and receipts == 1)
    return ok, (f"without agreeing {refused.status_code}; booked {appt['status']}; cancel {cancelled.status_code} "
                f"fee {fee}; second cancel {again.status_code}; fee payments {len(fees)}; at Stripe "
                f"{[(pi['amount'], pi['status']) for pi in charged]}; receipts queued {receipts}")


def _oid(text):
    from bson import ObjectId

    return ObjectId(text)


CHECKS = [check_policy_is_public, check_card_is_saved, check_late_cancel_charges_the_fee_once]


def main():
    """Start the stack, seed, set the policy, serve under gunicorn, run every check; 0 when all hold."""
    home = tempfile.mkdtemp(prefix="clinic-acceptance-noshow-")
    stack = start_stack(home, keep=False, environ={})
    proc = None
    failed = 0
    try:
        tag = uuid.uuid4().hex[:8]
        config = dict(stack.env, MONGODB_DB=f"acceptance_{tag}", REDIS_PREFIX=f"acceptance:{tag}:",
                      SECRET_KEY=secrets.token_urlsafe(32), JWT_SECRET_KEY=secrets.token_urlsafe(32),
                      STRIPE_WEBHOOK_SECRET="whsec_" + secrets.token_urlsafe(24), COOKIE_SECURE="0")
        env = clean_env(**config)
        subprocess.run([str(Path(BIN) / "flask"), "--app", "wsgi", "seed-demo"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        client = pymongo.MongoClient(config["MONGODB_URI"], serverSelectionTimeoutMS=5000)
        db = client[config["MONGODB_DB"]]
        # The admin's policy (what the back office's service form writes), set before the app starts.
        service = db.services.find_one({"price": {"$gt": 0}}, sort=[("price", 1)])
        db.services.update_one({"_id": service["_id"]}, {"$set": {
            "late_cancel_fee": FEE, "cancellation_window_hours": WINDOW_HOURS, "pay_at_clinic": True,
            "min_notice_minutes": 0}})
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_gunicorn(env, port, workers=2)
        wait_http(f"{base}/readyz", 200, timeout=120, process=proc)
        patient = Patient(base)
        email = f"late-{tag}@example.com"
        assert patient.call("POST", "/api/auth/register", {"email": email, "password": PASSWORD,
                                                           "name": "Late Canceller"}).status_code == 201
        assert patient.call("POST", "/api/auth/login", {"email": email, "password": PASSWORD}).status_code == 200
        ctx = {"base": base, "db": db, "patient": patient, "service_id": str(service["_id"]),
               "stripe": config["STRIPE_API_BASE"], "secret_key": config["STRIPE_SECRET_KEY"]}
        for check in CHECKS:
            try:
                ok, detail = check(ctx)
            except (AssertionError, requests.RequestException, KeyError, IndexError, ValueError) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            failed += not ok
            print(f"{'ok' if ok else 'FAILED'}: {check.__name__}: {detail}", flush=True)
        client.drop_database(config["MONGODB_DB"])
        client.close()
    finally:
        if proc is not None:
            stop_process(proc)
        stack.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
