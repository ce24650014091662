"""The audit trail: who read or changed patient data, when, and with what outcome."""

import logging

from mongoengine import DateTimeField, Document, StringField

from models.clock import utcnow

log = logging.getLogger(__name__)


class AuditEvent(Document):
    """An append-only record of who read or changed what (never the data itself)."""

    at = DateTimeField(default=utcnow, required=True)
    actor = StringField(required=True)  # "patient:<id>", "staff:<id>", "stripe", "system", "anonymous"
    action = StringField(required=True)
    record = StringField(default="")  # "Appointment:<id>"
    outcome = StringField(default="ok")
    request_id = StringField(default="")
    ip = StringField(default="")
    meta = {"collection": "audit_events", "auto_create_index": False,
            "indexes": ["-at", ("actor", "-at"), ("record", "-at")]}


def record_audit(actor, action, record="", outcome="ok", request_id="", ip="", at=None):
    """Append one audit event; never stores the data itself."""
    event = new_audit(actor, action, record=record, outcome=outcome, request_id=request_id, ip=ip, at=at)
    event.save()
    return event


def new_audit(actor, action, record="", outcome="ok", request_id="", ip="", at=None):
    """An audit event not yet written, for an action that writes it with its own change."""
    return AuditEvent(actor=actor, action=action, record=record, outcome=outcome,
                      request_id=request_id, ip=ip, at=at or utcnow())
