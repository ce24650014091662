"""A Stripe Checkout stand-in in front of localstripe, for the one-machine stack and the tests.

localstripe has no Checkout Sessions. This small server answers them and passes every other request
through to localstripe unchanged, so the app needs one `STRIPE_API_BASE` and never knows:

- `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions[/<id>]`, `POST …/<id>/expire`, in
  Stripe's JSON shapes; errors in Stripe's body (`{"error": {"type": "invalid_request_error", …}}`),
  so the app reads an unknown session as unknown. A repeated `Idempotency-Key` answers the first
  answer again, as Stripe does.
- `GET /checkout/pay/<id>` is the hosted page (marked on screen as a local test page). The card
  typed there goes through a real localstripe PaymentIntent (3-D Secure included), then the browser
  is sent to the session's `success_url` or `cancel_url`.
- `checkout.session.completed` and `checkout.session.expired` events are signed with the webhook
  secret and delivered to the webhook registered through `POST /_config/webhooks/<id>` (which is
  also passed on to localstripe), retried a few times like Stripe's deliveries.
- `GET /_standin/requests` lists the Checkout requests received (tests check what the app sent).

Run it as `python -m devstack.checkout_standin --port P --localstripe URL [--state FILE]`; with
`--state` its sessions survive a restart.
"""

import argparse
import html
import json
import os
import re
import threading
import time
import uuid
from decimal import Decimal
from urllib.parse import parse_qsl

from babel.numbers import format_currency, get_currency_precision
import requests
import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SESSIONS = "/v1/checkout/sessions"
HOSTED = "/checkout/pay/"
# Stripe keeps a session open for 24 hours unless told otherwise.
DEFAULT_LIFETIME = 24 * 3600


def parse_stripe_form(pairs):
    """Stripe's form encoding (`a[b][0][c]=v`) as nested dicts; list indexes stay dict keys."""
    out = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


# Hop-by-hop headers belong to one connection, not to the answer (RFC 9110 §7.6.1); Date and Server
# are written by the stand-in's own HTTP server; Host names the stand-in itself.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade"})
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length"}
_NOT_RETURNED = HOP_BY_HOP | {"date", "server"}


def money(minor, currency):
    """An amount in minor units as Stripe's page shows it to a British buyer: "£60.00", "€15.50".

    Babel's CLDR data, as the clinic's own pages use; the stand-in plays Stripe, so it does not
    import the clinic's code.
    """
    code = currency.upper()
    return format_currency(Decimal(int(minor)).scaleb(-get_currency_precision(code)), code, locale="en_GB")


def passed_headers(items):
    """The headers of an upstream answer that a proxy passes on (every end-to-end one)."""
    return [(k, v) for k, v in items if k.lower() not in _NOT_RETURNED]


def stripe_error(status, message, param=None, code=None):
    """A Stripe-shaped JSON error answer."""
    body = {"error": {"type": "invalid_request_error", "message": message}}
    if param:
        body["error"]["param"] = param
    if code:
        body["error"]["code"] = code
    return status, body


class CheckoutStandIn:
    """The stand-in's state and behaviour; `wsgi` is the WSGI entry."""

    def __init__(self, localstripe, public_base, state_path=None):
        self.localstripe = localstripe.rstrip("/")
        self.public_base = public_base.rstrip("/")
        self.state_path = state_path
        self.lock = threading.RLock()
        self.sessions, self.idempotent, self.log, self.webhooks = {}, {}, [], {}
        if state_path and os.path.exists(state_path):
            with open(state_path) as fh:
                saved = json.load(fh)
            self.sessions, self.webhooks = saved.get("sessions", {}), saved.get("webhooks", {})

    # --- state -------------------------------------------------------------------------------

    def _save(self):
        if self.state_path:
            tmp = self.state_path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump({"sessions": self.sessions, "webhooks": self.webhooks}, fh)
            os.replace(tmp, self.state_path)

    def _lapse(self, session, now=None):
        """An open session past its `expires_at` expires (and says so to the webhook)."""
        if session["status"] == "open" and session["expires_at"] <= (now or time.time()):
            self._expire(session)

    def _expire(self, session):
        session["status"] = "expired"
        self._save()
        self.deliver("checkout.session.expired", session)

    def sweep(self):
        """Expire every open session whose time has passed."""
        with self.lock:
            for session in list(self.sessions.values()):
                self._lapse(session)

    # --- the API -------------------------------------------------------------------------------

    def api(self, method, path, form, query, idempotency_key, authorization=None):
        """Answer a Checkout Sessions API request: `(status, body)`."""
        parts = path[len(SESSIONS):].strip("/").split("/") if path != SESSIONS else []
        with self.lock:
            if method == "POST" and not parts:
                if idempotency_key and idempotency_key in self.idempotent:
                    return self.idempotent[idempotency_key]
                answer = self._create(form, authorization)
                if idempotency_key:
                    self.idempotent[idempotency_key] = answer
                return answer
            if method == "GET" and not parts:
                return self._list(query)
            session = self.sessions.get(parts[0])
            if session is None:
                return stripe_error(404, f"No such checkout.session: '{parts[0]}'", param="session",
                                    code="resource_missing")
            self._lapse(session)
            if method == "POST" and parts[1:] == ["expire"]:
                if session["status"] != "open":
                    return stripe_error(400, f"Only Checkout Sessions with a status in ['open'] can be "
                                             f"expired. This Checkout Session has a status of "
                                             f"'{session['status']}'.")
                self._expire(session)
                return 200, session
            if method == "GET" and len(parts) == 1:
                return 200, session
        return stripe_error(404, f"Unrecognized request URL ({method}: {path}).")

    def _create(self, form, authorization):
        data = parse_stripe_form(form)
        items = data.get("line_items") or {}
        if data.get("mode") == "setup":
            return self._create_setup(data, authorization)
        if data.get("mode") != "payment":
            return stripe_error(400, "Only mode=payment and mode=setup are supported here.", param="mode")
        if not items or not data.get("success_url"):
            return stripe_error(400, "Missing required param: line_items and success_url.",
                                param="line_items" if not items else "success_url")
        try:
            lines = [items[k] for k in sorted(items, key=int)]
            amount = sum(int(line["price_data"]["unit_amount"]) * int(line.get("quantity", 1))
                         for line in lines)
            currency = lines[0]["price_data"]["currency"].lower()
            name = lines[0]["price_data"].get("product_data", {}).get("name", "Payment")
        except (KeyError, ValueError, TypeError):
            return stripe_error(400, "Each line item needs price_data[unit_amount], [currency] and "
                                     "a quantity.", param="line_items")
        now = int(time.time())
        expires_at = int(data.get("expires_at") or now + DEFAULT_LIFETIME)
        if not now + 1800 - 60 <= expires_at <= now + DEFAULT_LIFETIME + 60:
            return stripe_error(400, "expires_at must be between 30 minutes and 24 hours from now.",
                                param="expires_at")
        sid = f"cs_test_{uuid.uuid4().hex}"
        session = {
            "id": sid, "object": "checkout.session", "created": now, "livemode": False,
            "mode": "payment", "status": "open", "payment_status": "unpaid",
            "url": f"{self.public_base}{HOSTED}{sid}", "payment_intent": None,
            "amount_total": amount, "amount_subtotal": amount, "currency": currency,
            "metadata": data.get("metadata") or {},
            "client_reference_id": data.get("client_reference_id"),
            "customer_email": data.get("customer_email"),
            "expires_at": expires_at, "success_url": data["success_url"],
            "cancel_url": data.get("cancel_url"),
            "payment_method_types": list((data.get("payment_method_types") or {"0": "card"}).values()),
            # Not a field Stripe returns; kept so the hosted page's intent carries it.
            "_intent_metadata": (data.get("payment_intent_data") or {}).get("metadata") or {},
            "_line_name": name,
            # The hosted page pays with the key of the account that opened the session.
            "_auth": authorization,
        }
        self.sessions[sid] = session
        self._save()
        return 200, self.public(session)

    def _create_setup(self, data, authorization):
        """A session in `setup` mode: saves a card for a Customer through a localstripe SetupIntent."""
        if not data.get("success_url"):
            return stripe_error(400, "Missing required param: success_url.", param="success_url")
        if not data.get("customer"):
            return stripe_error(400, "Missing required param: customer.", param="customer")
        now = int(time.time())
        expires_at = int(data.get("expires_at") or now + DEFAULT_LIFETIME)
        sid = f"cs_test_{uuid.uuid4().hex}"
        session = {
            "id": sid, "object": "checkout.session", "created": now, "livemode": False,
            "mode": "setup", "status": "open", "payment_status": "no_payment_required",
            "url": f"{self.public_base}{HOSTED}{sid}", "payment_intent": None, "setup_intent": None,
            "amount_total": None, "amount_subtotal": None, "currency": None,
            "customer": data["customer"], "metadata": data.get("metadata") or {},
            "client_reference_id": data.get("client_reference_id"),
            "expires_at": expires_at, "success_url": data["success_url"],
            "cancel_url": data.get("cancel_url"),
            "payment_method_types": list((data.get("payment_method_types") or {"0": "card"}).values()),
            "_setup_metadata": (data.get("setup_intent_data") or {}).get("metadata") or {},
            "_line_name": "Save a card", "_auth": authorization,
        }
        self.sessions[sid] = session
        self._save()
        return 200, self.public(session)

    def save_card(self, sid, card_number, authorization):
        """A setup session's page: save `card_number` through a localstripe SetupIntent."""
        session = self.sessions[sid]
        headers = {"Authorization": authorization}
        form = {"customer": session["customer"], "usage": "off_session", "payment_method_types[]": "card"}
        for key, value in session["_setup_metadata"].items():
            form[f"metadata[{key}]"] = value
        si = self._ls("POST", "/v1/setup_intents", form, headers)
        if "error" in si:
            return "declined", si["error"].get("message") or "The card could not be saved."
        pm = self._ls("POST", "/v1/payment_methods", {
            "type": "card", "card[number]": card_number.replace(" ", ""), "card[exp_month]": "12",
            "card[exp_year]": "2034", "card[cvc]": "123"}, headers)
        if "error" in pm:
            return "declined", pm["error"].get("message") or "The card number is not valid."
        si = self._ls("POST", f"/v1/setup_intents/{si['id']}/confirm", {"payment_method": pm["id"]}, headers)
        return self._settle_setup(sid, si)

    def authenticate_setup(self, sid, success, authorization):
        """Answer the 3-D Secure prompt of a setup session's SetupIntent."""
        session = self.sessions[sid]
        si_id = session.get("_pending_setup")
        if not si_id:
            return "missing", "Nothing is waiting for authentication."
        headers = {"Authorization": authorization}
        action = "confirm" if success else "cancel"
        return self._settle_setup(sid, self._ls("POST", f"/v1/setup_intents/{si_id}/{action}", {}, headers))

    def _settle_setup(self, sid, si):
        if "error" in si:
            return "declined", si["error"].get("message") or "Your card was declined."
        with self.lock:
            session = self.sessions[sid]
            if si.get("status") == "requires_action":
                session["_pending_setup"] = si["id"]
                self._save()
                return "requires_action", si["id"]
            if si.get("status") != "succeeded":
                return "declined", "The card could not be saved."
            session.update(status="complete", setup_intent=si["id"])
            session.pop("_pending_setup", None)
            self._save()
        self.deliver("checkout.session.completed", session)
        return "paid", session

    def _list(self, query):
        raw = str(query.get("limit") or "10")
        limit = min(max(int(raw), 1), 100) if raw.isascii() and raw.isdigit() else 10
        rows = sorted(self.sessions.values(), key=lambda s: s["created"], reverse=True)
        if query.get("payment_intent"):
            rows = [s for s in rows if s["payment_intent"] == query["payment_intent"]]
        return 200, {"object": "list", "url": SESSIONS, "has_more": len(rows) > limit,
                     "data": [self.public(s) for s in rows[:limit]]}

    @staticmethod
    def public(session):
        """The session as Stripe shows it (without the stand-in's own bookkeeping)."""
        return {k: v for k, v in session.items() if not k.startswith("_")}

    # --- the hosted page -----------------------------------------------------------------------

    def pay(self, sid, card_number, authorization):
        """Charge `card_number` for the session through a localstripe PaymentIntent.

        Returns `("paid", session)`, `("requires_action", intent_id)` or `("declined", message)`.
        """
        with self.lock:
            session = self.sessions.get(sid)
            if session is None:
                return "missing", "This payment page does not exist."
            self._lapse(session)
            if session["status"] != "open":
                return "closed", f"This payment page has {session['status']}."
        headers = {"Authorization": authorization}
        pi_id = session.get("_pending_intent")
        if not pi_id:
            form = {"amount": session["amount_total"], "currency": session["currency"],
                    "payment_method_types[]": "card"}
            for key, value in session["_intent_metadata"].items():
                form[f"metadata[{key}]"] = value
            pi = self._ls("POST", "/v1/payment_intents", form, headers)
            if "error" in pi:
                return "declined", pi["error"].get("message") or "The payment could not be started."
            pi_id = pi["id"]
            with self.lock:
                # As Stripe does since API 2022-08-01: the intent is made when the patient first
                # pays, and the session names it from then on (a declined attempt included).
                session["_pending_intent"] = session["payment_intent"] = pi_id
                session["_client_secret"] = pi["client_secret"]
                self._save()
        pm = self._ls("POST", "/v1/payment_methods", {
            "type": "card", "card[number]": card_number.replace(" ", ""), "card[exp_month]": "12",
            "card[exp_year]": "2034", "card[cvc]": "123"}, headers)
        if "error" in pm:
            return "declined", pm["error"].get("message") or "The card number is not valid."
        self._ls("POST", f"/v1/payment_intents/{pi_id}", {"payment_method": pm["id"]}, headers)
        pi = self._ls("POST", f"/v1/payment_intents/{pi_id}/confirm", {}, headers)
        if "error" in pi:
            # localstripe cannot confirm an intent again after a decline (Stripe can): the next
            # attempt gets a new intent, which the session names from then on.
            with self.lock:
                session.pop("_pending_intent", None)
                self._save()
        return self._settle(sid, pi)

    def authenticate(self, sid, success, authorization):
        """Answer the 3-D Secure prompt for the session's pending intent."""
        session = self.sessions.get(sid)
        if session is None or not session.get("_pending_intent"):
            return "missing", "Nothing is waiting for authentication."
        pi_id = session["_pending_intent"]
        headers = {"Authorization": authorization}
        # As localstripe's Stripe.js prompt does it: the publishable key and the client secret.
        requests.post(f"{self.localstripe}/v1/payment_intents/{pi_id}/_authenticate",
                      params={"success": "true" if success else "false"}, timeout=30,
                      json={"key": "pk_test_checkout_standin", "client_secret": session["_client_secret"]})
        return self._settle(sid, self._ls("GET", f"/v1/payment_intents/{pi_id}", None, headers))

    def _settle(self, sid, pi):
        if "error" in pi:
            return "declined", pi["error"].get("message") or "Your card was declined."
        if pi.get("status") == "requires_action":
            return "requires_action", pi["id"]
        if pi.get("status") != "succeeded":
            error = (pi.get("last_payment_error") or {}).get("message")
            return "declined", error or "Your card was declined."
        with self.lock:
            session = self.sessions[sid]
            session.update(status="complete", payment_status="paid", payment_intent=pi["id"])
            session.pop("_pending_intent", None)
            self._save()
        self.deliver("checkout.session.completed", session)
        return "paid", session

    def _ls(self, method, path, form, headers):
        resp = requests.request(method, self.localstripe + path, data=form, headers=headers, timeout=30)
        try:
            return resp.json()
        except ValueError:
            return {"error": {"message": f"localstripe answered {resp.status_code}"}}

    # --- webhooks -------------------------------------------------------------------------------

    def deliver(self, event_type, session):
        """Sign and send an event to every registered webhook, in the background, with retries."""
        event = {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
                 "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
                 "data": {"object": self.public(session)}}
        payload = json.dumps(event)
        for hook in list(self.webhooks.values()):
            threading.Thread(target=self._send, args=(hook, payload), daemon=True).start()

    @staticmethod
    def _send(hook, payload, attempts=4):
        for attempt in range(attempts):
            header = stripe.WebhookSignature.generate_signature_header(
                payload, hook["secret"], timestamp=int(time.time()))
            try:
                resp = requests.post(hook["url"], data=payload, timeout=10, headers={
                    "Content-Type": "application/json", "Stripe-Signature": header})
                if resp.status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5 * 2 ** attempt)

    # --- WSGI ----------------------------------------------------------------------------------

    def wsgi(self, environ, start_response):
        """The WSGI application."""
        request = Request(environ)
        path = request.path
        if path.startswith(HOSTED):
            response = self.page(request, path[len(HOSTED):].strip("/"))
        elif path == SESSIONS or path.startswith(SESSIONS + "/"):
            form = list(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
            self.log.append({"method": request.method, "path": path, "form": dict(form),
                             "query": dict(request.args),
                             "idempotency_key": request.headers.get("Idempotency-Key")})
            if not request.headers.get("Authorization"):
                status, body = 401, {"error": {"type": "invalid_request_error",
                                               "message": "You did not provide an API key."}}
            else:
                status, body = self.api(request.method, path, form, dict(request.args),
                                        request.headers.get("Idempotency-Key"),
                                        request.headers.get("Authorization"))
            response = Response(json.dumps(body), status=status, mimetype="application/json")
        elif path == "/_standin/requests":
            response = Response(json.dumps(self.log), mimetype="application/json")
        else:
            if path.startswith("/_config/webhooks/") and request.method == "POST":
                # Parsed from the raw body, which is then passed on to localstripe as it came.
                form = dict(parse_qsl(request.get_data(as_text=True)))
                with self.lock:
                    self.webhooks[path.rsplit("/", 1)[-1]] = {"url": form.get("url"),
                                                             "secret": form.get("secret")}
                    self._save()
            response = self.forward(request)
        return response(environ, start_response)

    def forward(self, request):
        """Pass a request through to localstripe and its answer back, as a transparent proxy would.

        Method, path, query, headers and body go out as they came; the status, every end-to-end
        header (CORS's `Access-Control-*`, `Stripe-*`, caching, content type and length) and the
        body come back unchanged and streamed. A browser (Stripe.js tokenising a card) talks to the
        stand-in exactly as it would to localstripe, preflight `OPTIONS` included.
        """
        try:
            upstream = requests.request(
                request.method, self.localstripe + request.full_path.rstrip("?"), data=request.get_data(),
                headers={k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED},
                timeout=60, stream=True, allow_redirects=False)
        except requests.RequestException:
            # localstripe is down: answer as Stripe does when it cannot serve (a JSON api_error), not
            # with a traceback page.
            body = {"error": {"type": "api_error", "message": "The Stripe API is not reachable."}}
            return Response(json.dumps(body), status=502, mimetype="application/json")
        # The raw bytes, not requests' decoded text: a compressed body keeps its Content-Encoding.
        response = Response(upstream.raw.stream(64 * 1024, decode_content=False),
                            status=upstream.status_code, direct_passthrough=True,
                            headers=passed_headers(upstream.raw.headers.items()))
        response.call_on_close(upstream.close)
        return response

    def page(self, request, rest):
        """The hosted payment page: show, pay, authenticate."""
        sid, _, action = rest.partition("/")
        session = self.sessions.get(sid)
        if session is None:
            return self._html("Payment page not found", "<p>This payment page does not exist.</p>", 404)
        auth = session.get("_auth") or "Bearer sk_test_checkout_standin"
        error = ""
        setup = session.get("mode") == "setup"
        if request.method == "POST":
            self._lapse(session)
            if setup and session["status"] != "open":
                outcome, detail = "closed", f"This page has {session['status']}."
            elif action == "authenticate":
                success = request.form.get("result") == "success"
                outcome, detail = (self.authenticate_setup(sid, success, auth) if setup
                                   else self.authenticate(sid, success, auth))
            elif setup:
                outcome, detail = self.save_card(sid, request.form.get("card", ""), auth)
            else:
                outcome, detail = self.pay(sid, request.form.get("card", ""), auth)
            if outcome == "paid":
                return self._redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", sid))
            if outcome == "requires_action":
                return self._html("Authenticate this payment", (
                    '<p>Your bank asks you to confirm this payment (3-D Secure test).</p>'
                    f'<form method="post" action="{HOSTED}{sid}/authenticate">'
                    '<button name="result" value="success">Complete authentication</button> '
                    '<button name="result" value="fail" class="secondary">Fail authentication</button>'
                    '</form>'))
            error = detail
        if session["status"] != "open":
            back = session.get("cancel_url") or session["success_url"]
            return self._html("Payment page closed", f'<p>This payment page has {session["status"]}.</p>'
                              f'<p><a href="{html.escape(back)}">Return to the clinic</a></p>')
        if setup:
            cancel = (f'<p><a href="{html.escape(session["cancel_url"])}">Cancel and return to the clinic</a></p>'
                      if session.get("cancel_url") else "")
            body = ((f'<p role="alert" class="error">{html.escape(error)}</p>' if error else "")
                    + f'<p>Save a card for later payments. Nothing is charged now.</p>'
                    f'<form method="post" action="{HOSTED}{sid}">'
                    '<label for="card">Card number</label>'
                    '<input id="card" name="card" inputmode="numeric" autocomplete="cc-number" required '
                    'value="4242 4242 4242 4242">'
                    '<p class="hint">Test cards: 4242 4242 4242 4242 is saved; 4000 0025 0000 3155 asks for '
                    '3-D Secure when charged.</p>'
                    '<button type="submit">Save card</button></form>' + cancel)
            return self._html("Save a card", body)
        amount = money(session["amount_total"], session["currency"])
        cancel = (f'<p><a href="{html.escape(session["cancel_url"])}">Cancel and return to the clinic</a></p>'
                  if session.get("cancel_url") else "")
        body = (
            f'<p class="item">{html.escape(session["_line_name"])}</p><p class="amount">{amount}</p>'
            + (f'<p role="alert" class="error">{html.escape(error)}</p>' if error else "")
            + f'<form method="post" action="{HOSTED}{sid}">'
            '<label for="card">Card number</label>'
            '<input id="card" name="card" inputmode="numeric" autocomplete="cc-number" required '
            'value="4242 4242 4242 4242">'
            '<p class="hint">Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0341 is declined; '
            '4000 0025 0000 3155 asks for 3-D Secure.</p>'
            f'<button type="submit">Pay {amount}</button></form>' + cancel)
        return self._html(f"Pay {amount}", body)

    @staticmethod
    def _redirect(url):
        return Response("", status=303, headers={"Location": url})

    @staticmethod
    def _html(title, body, status=200):
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:0 auto;padding:1rem;color:#1a1a1a}}
.banner{{background:#fff3cd;border:1px solid #8a6d00;padding:.5rem .75rem;border-radius:.25rem}}
.amount{{font-size:1.75rem;font-weight:700}} label{{display:block;font-weight:600;margin-top:1rem}}
input{{font-size:1.1rem;padding:.5rem;width:100%;box-sizing:border-box}} .hint{{color:#4a4a4a;font-size:.9rem}}
button{{font-size:1rem;padding:.6rem 1rem;background:#1d4ed8;color:#fff;border:0;border-radius:.25rem}}
button.secondary{{background:#4a4a4a}} .error{{color:#a10000;font-weight:600}}</style></head>
<body><main><p class="banner"><strong>Local test page.</strong> This is the clinic's offline stand-in
for Stripe Checkout: no real card is charged.</p><h1>{html.escape(title)}</h1>{body}</main></body></html>"""
        return Response(page, status=status, mimetype="text/html")


def serve(localstripe, host="127.0.0.1", port=0, state_path=None, public_base=None):
    """Start the stand-in on `host:port` in a background thread; return (server, stand_in)."""
    server = make_server(host, port, None, threaded=True)
    base = public_base or f"http://{host}:{server.server_port}"
    stand_in = CheckoutStandIn(localstripe, base, state_path)
    server.app = stand_in.wsgi
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, stand_in


def main(argv=None):
    """Serve the stand-in until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--localstripe", required=True)
    parser.add_argument("--state")
    args = parser.parse_args(argv)
    server, stand_in = serve(args.localstripe, args.host, args.port, args.state)
    try:
        while True:
            time.sleep(30)
            stand_in.sweep()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
