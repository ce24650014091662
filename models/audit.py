"""The audit trail: who read or changed patient data, when, and with what outcome.

Actions audit themselves: one decorated with `@audited(...)` and called with `audit_as=<actor>`
writes "refused:<code>" when it refuses (a DomainError, which then goes on to the door) and, unless
it writes its own event with its change, "ok" when it is done. The doors keep no copies of that.

An action's success event is written in the same command as its change (issue 24), so no change
lands unaudited: an insert goes with its events in one bulkWrite (`insert_with_audit`); a guarded
update carries the event inside the changed document (`take_carried` / `carried_update`, an
`audit_pending` list, the transactional-outbox pattern), from where `settle_carried` copies it into
the trail at once, or the sweep (`flush_carried`) after a crash in between.
"""

import contextvars
import functools
import logging

import pymongo
import pymongo.errors
from bson import ObjectId
from mongoengine import DateTimeField, Document, NotUniqueError, StringField, signals

from flask import g, has_request_context, request

from models import crashpoints
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
    carried = take_carried(f"{type(document).__name__}:{document.id}" if document.id else "")
    try:
        return _insert_with_events(document, as_events(events) + as_events(carried))
    except Exception:
        settle_carried(type(document), document.id, carried, landed=False)
        raise


def _insert_with_events(document, events):
    global _one_batch
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


def _request_marks():
    """The request's id and client address, inside a request ("" outside)."""
    if has_request_context():
        return g.get("request_id", ""), request.remote_addr or ""
    return "", ""


def audit_here(actor, action, record="", outcome="ok"):
    """Write an audit event; inside a request it carries the request's id and client address."""
    request_id, ip = _request_marks()
    return record_audit(actor, action, record=record, outcome=outcome, request_id=request_id, ip=ip)


class _Carry:
    """The success event of the audited action running now, until one of its writes carries it."""

    def __init__(self, event):
        self.event, self.taken = event, False


_running = contextvars.ContextVar("audited_action", default=None)


def take_carried(record):
    """The running audited action's success event, for the guarded write that makes its change to
    carry in the same command; None when no audited action runs or one of its writes took it already.

    `record` names the written document: the event's record when the action names its record only
    from its result (an accepted waitlist offer is the appointment written).
    """
    carry = _running.get()
    if carry is None or carry.taken:
        return None
    carry.taken = True
    carry.event.record = carry.event.record or record
    carry.event.id = carry.event.id or ObjectId()
    return carry.event


def carried_update(event):
    """The update operator that stores `event` (from `take_carried`; None: nothing) in the written
    document; it never touches another field."""
    return {} if event is None else {"push__audit_pending": event.to_mongo().to_dict()}


def settle_carried(kind, document_id, events, landed):
    """After a guarded write that carried `events`: when it landed, copy them into the trail and drop
    them from the document (a crash in between leaves them for `flush_carried`); when it did not,
    give the running action's event back to it."""
    events = as_events(events)
    if not landed:
        carry = _running.get()
        if carry is not None and any(event is carry.event for event in events):
            carry.taken = False
        return
    crashpoints.reached("audit.carried")  # the change and its event are stored; the copy is not
    try:
        _move_to_trail(kind, document_id, [event.to_mongo().to_dict() for event in events])
    except pymongo.errors.PyMongoError:  # the change and its events are stored; the sweep copies them
        log.warning("audit events of %s %s left for the sweep", kind.__name__, document_id, exc_info=True)
        return
    for event in events:
        _saved(event)


def _move_to_trail(kind, document_id, raws):
    """Copy carried events (stored form) into the trail, then drop them from their document. An event
    copied already (the action and the sweep both got to it) keeps its one copy: same id."""
    for raw in raws:
        try:
            AuditEvent._get_collection().insert_one(raw)
        except pymongo.errors.DuplicateKeyError:
            pass
    kind._get_collection().update_one({"_id": document_id},
                                      {"$pull": {"audit_pending": {"_id": {"$in": [r["_id"] for r in raws]}}}})


def flush_carried(kind):
    """Copy into the trail the audit events `kind`'s documents still carry (an action cut off
    between its change and the copy), and drop them from the documents; how many were carried.
    The query is the sparse `audit_pending._id` index's, so a pass reads only those documents."""
    count = 0
    for doc in kind._get_collection().find({"audit_pending._id": {"$exists": True}}, {"audit_pending": 1}):
        _move_to_trail(kind, doc["_id"], doc["audit_pending"])
        count += len(doc["audit_pending"])
    return count


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
            # A plain success event ("ok") rides on the action's change; one worded from the result waits.
            carry = None
            if on_success and outcome is None:
                request_id, ip = _request_marks()
                carry = _Carry(new_audit(audit_as, action, "" if done_record else about,
                                         request_id=request_id, ip=ip))
            running = _running.set(carry)
            try:
                result = run()
            except refused_on as exc:
                audit_here(audit_as, action, about, outcome=refusal(exc) if refusal else f"refused:{exc.code}")
                raise
            finally:
                _running.reset(running)
            if on_success and not (carry and carry.taken):
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
