"""Request-side helpers that fill in the audit context (actor, request id, address)."""

import uuid

from flask import g, request

from models.audit import new_audit, record_audit


def request_id():
    """The id of the current request (from `X-Request-ID` when a proxy set one)."""
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming[:64] if incoming.isascii() and incoming else uuid.uuid4().hex
    return g.request_id


def audit(actor, action, record="", outcome="ok"):
    """Write an audit event for the current request."""
    return record_audit(actor, action, record=record, outcome=outcome,
                        request_id=request_id(), ip=request.remote_addr or "")


def audit_event(actor, action, record="", outcome="ok"):
    """An audit event of the current request, not yet written (an action writes it with its change)."""
    return new_audit(actor, action, record=record, outcome=outcome, request_id=request_id(),
                     ip=request.remote_addr or "")
