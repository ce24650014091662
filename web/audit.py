"""Request-side helpers that fill in the audit context (actor, request id, address)."""

import re
import uuid

from flask import current_app, g, request

from models.audit import audit_here, new_audit


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id():
    """The id of the current request: our own, or `X-Request-ID` from a trusted proxy (TRUSTED_PROXIES)."""
    if "request_id" not in g:
        # Any client can send the header; only a proxy we trust may name the request in the audit.
        incoming = request.headers.get("X-Request-ID", "") if current_app.config.get("TRUSTED_PROXIES") else ""
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    return g.request_id


def audit(actor, action, record="", outcome="ok"):
    """Write an audit event for the current request."""
    request_id()  # named (or taken from a trusted proxy) before the event reads it
    return audit_here(actor, action, record=record, outcome=outcome)


def audit_event(actor, action, record="", outcome="ok"):
    """An audit event of the current request, not yet written (an action writes it with its change)."""
    return new_audit(actor, action, record=record, outcome=outcome, request_id=request_id(),
                     ip=request.remote_addr or "")
