"""A fake Stripe gateway in memory, for fast unit tests of the payment decisions.

The payment modules reach Stripe only through `models.payments.gateway.stripe_api()` (the other
modules import that name). The `fake_gateway` fixture points every imported copy of it at a
`FakeStripe`: the PaymentIntents and refunds a test set up, what the code sent (`calls`), and
failures queued for the next calls (`fail_next`). Only Stripe is faked: MongoDB and Redis stay the
real servers of the test's app.
"""

import itertools
import sys
from types import SimpleNamespace

import pytest
import stripe

_ids = itertools.count(1)


def _new_id(prefix):
    return f"{prefix}_fake{next(_ids):06d}"


def transient_error():
    """What the SDK raises when Stripe cannot be reached (a failure worth retrying)."""
    return stripe.APIConnectionError("Network error: connection refused (fake gateway)")


def refusal(message="Charge has already been refunded.", http_status=400):
    """What the SDK raises when Stripe refuses a request for good."""
    return stripe.InvalidRequestError(message, None, http_status=http_status,
                                      json_body={"error": {"message": message}})


class FakeStripe:
    """The parts of a `StripeClient` the payment modules call, kept in dicts."""

    def __init__(self):
        self.intents = {}            # id -> PaymentIntent dict
        self.sessions = {}           # id -> Checkout Session dict
        self.refunds = []            # refund dicts, oldest first
        self.calls = []              # (operation, params, idempotency_key), in order
        self.failures = {}           # operation -> exceptions to raise on its next calls
        self.refund_status = "succeeded"  # the status new refunds get
        self.v1 = SimpleNamespace(
            refunds=SimpleNamespace(create=self._refund_create, list=self._refund_list,
                                    retrieve=self._refund_retrieve),
            payment_intents=SimpleNamespace(retrieve=self._intent_retrieve, cancel=self._intent_cancel),
            checkout=SimpleNamespace(sessions=SimpleNamespace(retrieve=self._session_retrieve)),
        )

    # --- set-up and reading, for the tests ---------------------------------------------------

    def add_intent(self, amount, currency="gbp", status="succeeded", metadata=None, amount_received=None):
        """A PaymentIntent as Stripe holds it (succeeded: all of `amount` received, unless told)."""
        pi = {"id": _new_id("pi"), "object": "payment_intent", "amount": amount, "currency": currency,
              "status": status, "metadata": dict(metadata or {}),
              "amount_received": amount if amount_received is None and status == "succeeded"
              else (amount_received or 0)}
        self.intents[pi["id"]] = pi
        return pi

    def add_session(self, amount_total, currency="gbp", status="complete", payment_status="paid",
                    payment_intent=None, metadata=None):
        """A Checkout Session as Stripe holds it (by default paid, and naming no PaymentIntent)."""
        session = {"id": _new_id("cs"), "object": "checkout.session", "amount_total": amount_total,
                   "currency": currency, "status": status, "payment_status": payment_status,
                   "payment_intent": payment_intent, "metadata": dict(metadata or {})}
        self.sessions[session["id"]] = session
        return session

    def fail_next(self, operation, error, times=1):
        """Raise `error` on the next `times` calls of `operation` (e.g. "refunds.create")."""
        self.failures.setdefault(operation, []).extend([error] * times)

    def refunds_of(self, pi_id):
        """The refunds Stripe holds for an intent."""
        return [r for r in self.refunds if r["payment_intent"] == pi_id]

    def calls_of(self, operation):
        """The calls made of `operation`, as (params, idempotency_key)."""
        return [(params, key) for op, params, key in self.calls if op == operation]

    # --- the client's methods ---------------------------------------------------------------

    def _call(self, operation, params=None, options=None):
        self.calls.append((operation, params, (options or {}).get("idempotency_key")))
        queued = self.failures.get(operation)
        if queued:
            raise queued.pop(0)

    def _refund_create(self, params, options=None):
        self._call("refunds.create", params, options)
        key = (options or {}).get("idempotency_key")
        for made in self.refunds:  # real Stripe answers a repeated key with the first refund
            if key and made["_idempotency_key"] == key:
                return dict(made)
        pi = self.intents.get(params["payment_intent"])
        if pi is None:
            raise refusal(f"No such payment_intent: '{params['payment_intent']}'", http_status=404)
        refunded = sum(r["amount"] for r in self.refunds_of(pi["id"]) if r["status"] not in ("failed", "canceled"))
        left = (pi.get("amount_received") or 0) - refunded
        amount = int(params.get("amount", left))
        if amount <= 0 or amount > left:
            raise refusal(f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})")
        refund = {"id": _new_id("re"), "object": "refund", "amount": amount, "currency": pi["currency"],
                  "payment_intent": pi["id"], "status": self.refund_status, "created": next(_ids),
                  "metadata": dict(params.get("metadata") or {}), "_idempotency_key": key}
        self.refunds.append(refund)
        return dict(refund)

    def _refund_list(self, params, options=None):
        self._call("refunds.list", params, options)
        return SimpleNamespace(data=[dict(r) for r in self.refunds_of(params.get("payment_intent"))])

    def _refund_retrieve(self, refund_id, options=None):
        self._call("refunds.retrieve", {"id": refund_id}, options)
        for refund in self.refunds:
            if refund["id"] == refund_id:
                return dict(refund)
        raise refusal(f"No such refund: '{refund_id}'", http_status=404)

    def _intent_retrieve(self, pi_id, options=None):
        self._call("payment_intents.retrieve", {"id": pi_id}, options)
        if pi_id not in self.intents:
            raise refusal(f"No such payment_intent: '{pi_id}'", http_status=404)
        return dict(self.intents[pi_id])

    def _session_retrieve(self, session_id, options=None):
        self._call("checkout.sessions.retrieve", {"id": session_id}, options)
        if session_id not in self.sessions:
            raise refusal(f"No such checkout.session: '{session_id}'", http_status=404)
        return dict(self.sessions[session_id])

    def _intent_cancel(self, pi_id, options=None):
        self._call("payment_intents.cancel", {"id": pi_id}, options)
        pi = self.intents.get(pi_id)
        if pi is None or pi["status"] in ("succeeded", "canceled"):
            raise refusal(f"This PaymentIntent's status is {pi and pi['status']}.")
        pi["status"] = "canceled"
        return dict(pi)


@pytest.fixture
def fake_gateway(monkeypatch):
    """A `FakeStripe` answering for `stripe_api()` in every domain module that imported it."""
    from models.payments import gateway

    fake = FakeStripe()
    real = gateway.stripe_api
    for name, module in list(sys.modules.items()):
        if (name == "models" or name.startswith("models.")) and getattr(module, "stripe_api", None) is real:
            monkeypatch.setattr(module, "stripe_api", lambda: fake)
    return fake
