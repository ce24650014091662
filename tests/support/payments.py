"""Stripe helpers for the payment tests: a booked appointment, cards, signed events, Stripe stand-ins.

Everything talks to the real localstripe the `stripe_base` fixture started; the only thing a test
does "behind the app's back" is what a browser or Stripe itself would do (tokenise a card, confirm
an intent with Stripe.js, complete 3-D Secure, refund in Stripe's dashboard).
"""

import json
import time as clock
import uuid
from datetime import datetime, timezone

import requests
import stripe

from tests.support.clients import signed_in  # noqa: F401 — the payment tests import it from here
from tests.support.factories import (
    at,
    csrf_header,
    future_day,
    make_patient,
)
from tests.support.world import build_world

WEBHOOK_SECRET = "whsec_test_clinic"  # tests/conftest.py TEST_SECRETS
PUBLISHABLE_KEY = "pk_test_clinic"
CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"
CARD_3DS = "4000002500003155"
CARD_ALWAYS_3DS = "4000002760003184"  # asks for authentication even off-session (no-show fees)


def start_at(days=3, hour=10):
    """A local start time `days` ahead of the real clock."""
    return at(future_day(days), hour)


def clinic_with_service(price=5000, cancel_hours=24, refund_rule="full"):
    """A clinic, a paid service and a provider (`clinic_world`'s builder); returns (service, provider)."""
    consult = dict(name="Consultation", duration=30, price=price, cancel_hours=cancel_hours)
    if refund_rule != "full":
        consult["refund_rule"] = refund_rule
    world = build_world(services={"consult": consult}, providers={"provider": dict(name="Dr Pay")})
    return world.service, world.provider


def book_held(service, provider, email="pat@example.com", start=None, now=None):
    """A held appointment for a (new) patient, booked through the shared rule."""
    from models.booking.create import book
    from models import Patient

    patient = Patient.objects(email=email).first() or make_patient(email=email)
    return book(patient, str(service.id), str(provider.id), start or start_at(),
                now or datetime.now(timezone.utc))


def api_post(client, path, body=None):
    """POST JSON as the patient's browser does, with the CSRF header of its cookie."""
    return client.post(path, headers=csrf_header(client), json=body or {})


def stripe_client(stripe_base):
    """A Stripe client of our own: what Stripe.js, the dashboard or a test does at Stripe."""
    return stripe.StripeClient("sk_test_clinic", base_addresses={"api": stripe_base})


def card_token(stripe_base, number):
    """Tokenise a card the way Stripe.js `createToken` does (publishable key only)."""
    resp = requests.post(f"{stripe_base}/v1/tokens", timeout=10, data={
        "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034",
        "card[cvc]": "123", "key": PUBLISHABLE_KEY})
    resp.raise_for_status()
    return resp.json()


def confirm_at_stripe(stripe_base, pi_id, number=CARD_OK):
    """Confirm an intent directly at Stripe, as Stripe.js does in a browser; our app is not told."""
    client = stripe_client(stripe_base)
    client.v1.payment_intents.update(pi_id, {"payment_method": card_token(stripe_base, number)["card"]["id"]})
    try:
        return client.v1.payment_intents.confirm(pi_id)
    except stripe.CardError:
        return client.v1.payment_intents.retrieve(pi_id)


def authenticate_3ds(stripe_base, pi_id, client_secret, success=True):
    """Complete (or fail) localstripe's 3-D Secure step, as its Stripe.js prompt does."""
    resp = requests.post(f"{stripe_base}/v1/payment_intents/{pi_id}/_authenticate",
                         params={"success": "true" if success else "false"},
                         json={"key": PUBLISHABLE_KEY, "client_secret": client_secret}, timeout=10)
    resp.raise_for_status()
    return resp.json()


def save_card(client, stripe_base, number=CARD_OK):
    """A card on file (no-show protection), saved as the account page does: a SetupIntent, confirmed by Stripe.js."""
    started = api_post(client, "/api/me/card")
    assert started.status_code == 200, started.get_json()
    body = started.get_json()
    seti = body["setup_intent"]
    # Stripe.js `confirmCardSetup` (localstripe's stand-in posts JSON with the publishable key).
    resp = requests.post(f"{stripe_base}/v1/setup_intents/{seti}/confirm", timeout=10, json={
        "key": PUBLISHABLE_KEY, "client_secret": body["client_secret"], "use_stripe_sdk": True,
        "payment_method_data": {"type": "card", "card": {"number": number, "exp_month": "12",
                                                         "exp_year": "2034", "cvc": "123"}}})
    assert resp.status_code == 200, resp.text
    if resp.json()["status"] == "requires_action":  # the patient completes 3-D Secure in Stripe.js's prompt
        resp = requests.post(f"{stripe_base}/v1/setup_intents/{seti}/confirm", timeout=10, json={
            "key": PUBLISHABLE_KEY, "client_secret": body["client_secret"], "use_stripe_sdk": True})
        assert resp.json()["status"] == "succeeded", resp.text
    shown = client.get("/api/me/card")
    assert shown.status_code == 200, shown.get_json()
    return shown.get_json()


def make_event(event_type, obj, event_id=None, created=None):
    """A Stripe event envelope around `obj`."""
    return {"id": event_id or f"evt_test_{uuid.uuid4().hex[:16]}", "object": "event", "type": event_type,
            "api_version": "2024-06-20", "created": int(created or clock.time()), "livemode": False,
            "data": {"object": obj}}


def post_event(client, event, secret=WEBHOOK_SECRET, timestamp=None, header=True):
    """Deliver an event to the webhook, signed as Stripe signs it."""
    body = json.dumps(event)
    headers = {"Content-Type": "application/json"}
    if header:
        headers["Stripe-Signature"] = stripe.WebhookSignature.generate_signature_header(
            body, secret, timestamp=timestamp or int(clock.time()))
    return client.post("/webhooks/stripe", data=body, headers=headers)


def wait_until(check, timeout=10.0, interval=0.1):
    """Poll `check()` until it is truthy; return its value or fail."""
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        value = check()
        if value:
            return value
        clock.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def appointment_status(app_client, appointment_id):
    """The status the patient sees through the API."""
    return app_client.get(f"/api/appointments/{appointment_id}").get_json()["status"]


class StripeProxy:
    """A Stripe API server of our own in front of localstripe, for what localstripe cannot do.

    Every request goes through to localstripe unless `answer(method, path, query, form)` returns
    `(status, body)` for it; `requests` records what our Stripe client sent. Tests use it where
    localstripe lacks a behaviour real Stripe has (Checkout Sessions, refunds that fail).
    """

    def __init__(self, localstripe, answer=None):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qsl, urlsplit

        self.localstripe, self.answer, self.requests = localstripe, answer, []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                form, query = dict(parse_qsl(raw.decode())), dict(parse_qsl(url.query))
                proxy.requests.append({"method": method, "path": url.path, "form": form, "query": query,
                                       "idempotency_key": self.headers.get("Idempotency-Key")})
                answered = proxy.answer(method, url.path, query, form) if proxy.answer else None
                if answered is not None:
                    return self._send(*answered)
                upstream = requests.request(method, proxy.localstripe + self.path, data=raw, timeout=30,
                                            headers={k: v for k, v in self.headers.items()
                                                     if k.lower() not in ("host", "content-length")})
                return self._send(upstream.status_code, upstream.content,
                                  upstream.headers.get("Content-Type", "application/json"))

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class CheckoutStandIn:
    """The stack's Checkout stand-in (`devstack.checkout_standin`, in front of localstripe), as one test sees it.

    `url` is the `stripe_base` every app of the test process uses; `requests` lists only the
    Checkout requests made since this view was opened; `pay()` posts a card to the hosted page as
    a patient would. With `webhook_url` the stand-in (and localstripe behind it) deliver events there.
    """

    def __init__(self, url, webhook_url=None, secret=WEBHOOK_SECRET):
        from devstack.servers import register_localstripe_webhook

        self.url = url
        self._since = len(self._log())
        if webhook_url:
            register_localstripe_webhook(self.url, webhook_url, secret)

    def _log(self):
        return requests.get(f"{self.url}/_standin/requests", timeout=10).json()

    @property
    def requests(self):
        """The Checkout requests our Stripe client sent during this test, in order."""
        return self._log()[self._since:]

    def session(self, session_id):
        """The session as Stripe would answer it now."""
        return self._api("GET", f"/v1/checkout/sessions/{session_id}")

    def expire(self, session_id):
        """Expire an open session through the API."""
        return self._api("POST", f"/v1/checkout/sessions/{session_id}/expire")

    def pay(self, session_id, number=CARD_OK):
        """Pay on the hosted page with `number`; return the session afterwards."""
        resp = requests.post(f"{self.url}/checkout/pay/{session_id}", data={"card": number},
                             allow_redirects=False, timeout=30)
        assert resp.status_code in (200, 303), resp.status_code
        return self.session(session_id)

    def _api(self, method, path):
        resp = requests.request(method, self.url + path, timeout=10,
                                headers={"Authorization": "Bearer sk_test_clinic"})
        assert resp.status_code == 200, resp.text
        return resp.json()

