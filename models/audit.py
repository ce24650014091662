"""The audit trail: who read or changed patient data, when, and with what outcome.

Actions audit themselves: one decorated with `@audited(...)` and called with `audit_as=<actor>`
writes "refused:<code>" when it refuses (a DomainError, which then goes on to the door) and, unless
it writes its own event with its change, "ok" when it is done. The doors keep no copies of that.
"""

import functools
import logging

import pymongo
import pymongo.errors
from bson import ObjectId
from mongoengine import DateTimeField, Document, NotUniqueError, StringField, signals

from flask import g, has_request_context, request

from models.clock import utcnow
from models.errors import DomainError

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


def as_events(audit):
    """An action's `audit` argument as a list: None, one unsaved event, or several."""
    if audit is None:
        return []
    return [e for e in audit if e is not None] if isinstance(audit, (list, tuple)) else [audit]


def event_like(audit, action, record=None):
    """Another event of the same request as `audit` (actor, request id, address), for one more action."""
    return new_audit(audit.actor, action, record=audit.record if record is None else record,
                     request_id=audit.request_id, ip=audit.ip, at=audit.at)


def insert_with_audit(document, events):
    """Insert a new document and its audit events in one ordered command (MongoDB 8.0's client
    bulkWrite); on an older server the document first, then the events.

    An action's change and its audit then land together: a crash between them cannot leave a
    change nobody audited. A refused insert (a unique index) raises as `save()` would, and
    writes no event.
    """
    global _one_batch
    events = as_events(events)
    if _one_batch and events:
        kind = type(document)
        signals.pre_save.send(kind, document=document)
        document.id = document.id or ObjectId()
        document.validate()
        db = kind._get_db()
        ops = [pymongo.InsertOne(document.to_mongo(), namespace=f"{db.name}.{kind._get_collection_name()}")]
        for event in events:
            event.id = event.id or ObjectId()
            event.validate()
            ops.append(pymongo.InsertOne(event.to_mongo(), namespace=f"{db.name}.{AuditEvent._get_collection_name()}"))
        try:
            db.client.bulk_write(ops, ordered=True)
        except pymongo.errors.InvalidOperation:  # older than MongoDB 8.0: nothing was sent
            _one_batch = False
        except pymongo.errors.ClientBulkWriteException as exc:
            failed = min((e["idx"] for e in exc.write_errors or []), default=None)
            if failed == 0 and exc.error is None:
                if any(e.get("code") == 11000 for e in exc.write_errors):
                    raise NotUniqueError(str(exc)) from None
                raise
            if failed is None or exc.error is not None:
                raise
            # Only an event failed: the change stands; write the events that did not land alone.
            _saved(document)
            for event in events[failed - 1:]:
                event.save()
            return document
        else:
            _saved(document)
            for event in events:
                _saved(event)
            return document
    document.save(force_insert=True)
    for event in events:
        event.save()
    return document


# False once the server turned out older than MongoDB 8.0 (no client-level bulkWrite).
_one_batch = True


def _saved(document):
    """Let a document inserted outside save() behave as saved (later saves update it)."""
    document._created = False
    document._clear_changed_fields()
    signals.post_save.send(type(document), document=document, created=True)


def audit_here(actor, action, record="", outcome="ok"):
    """Write an audit event; inside a request it carries the request's id and client address."""
    request_id, ip = "", ""
    if has_request_context():
        request_id, ip = g.get("request_id", ""), request.remote_addr or ""
    return record_audit(actor, action, record=record, outcome=outcome, request_id=request_id, ip=ip)


def audited(action, record, on_success=True, outcome=None, done_record=None, refused_on=DomainError,
            refusal=None):
    """Make an action audit itself when called with `audit_as=<actor>` (see the module's docstring).

    `record(*args, **kwargs)` names what the event is about from the action's own arguments (a
    caller may name it instead with `audit_record=`); `outcome(result)` the success's outcome
    ("ok" by default) and `done_record(result)` its record when the result is another document
    (an accepted waitlist offer is an appointment); `on_success=False` for an action that writes
    its success event itself. `refused_on` narrows which DomainErrors are the action's audited
    refusals, and `refusal(exc)` names their outcome ("refused:<code>" by default).

    A door's guard (a throttle, a lock: a context manager) passed as `guard=` is entered inside
    the audit, so a refusal of the guard's is audited like the action's own.
    """
    def decorate(function):
        @functools.wraps(function)
        def action_audited(*args, audit_as=None, audit_record=None, guard=None, **kwargs):
            def run():
                if guard is None:
                    return function(*args, **kwargs)
                with guard:
                    return function(*args, **kwargs)

            if audit_as is None:
                return run()
            about = audit_record or record(*args, **kwargs)
            try:
                result = run()
            except refused_on as exc:
                audit_here(audit_as, action, about, outcome=refusal(exc) if refusal else f"refused:{exc.code}")
                raise
            if on_success:
                audit_here(audit_as, action, done_record(result) if done_record else about,
                           outcome=outcome(result) if outcome else "ok")
            return result
        return action_audited
    return decorate


def appointment_record(appointment, *args, **kwargs):
    """The audit record of an action whose first argument is an appointment."""
    return f"Appointment:{appointment.id}"


def patient_record(patient, *args, **kwargs):
    """The audit record of an action whose first argument is a patient."""
    return f"Patient:{patient.id}"
