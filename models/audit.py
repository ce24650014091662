"""The audit trail: who read or changed patient data, when, and with what outcome."""

import logging

from models.documents import AuditEvent, utcnow

log = logging.getLogger(__name__)


def record_audit(actor, action, record="", outcome="ok", request_id="", ip="", at=None):
    """Append one audit event; never stores the data itself."""
    event = new_audit(actor, action, record=record, outcome=outcome, request_id=request_id, ip=ip, at=at)
    event.save()
    return event


def new_audit(actor, action, record="", outcome="ok", request_id="", ip="", at=None):
    """An audit event not yet written, for an action that writes it with its own change."""
    return AuditEvent(actor=actor, action=action, record=record, outcome=outcome,
                      request_id=request_id, ip=ip, at=at or utcnow())
