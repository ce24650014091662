"""The status tables: the appointment's (models/booking/status.py) and the payment's
(models/payments/ledger.py). Every status change goes through its table, and a move it does not list
is refused before anything is written."""

import ast
import os
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from models.booking import status
from models.booking.documents import APPOINTMENT_STATUSES
from models.payments import ledger
from models.payments.documents import PAYMENT_STATUSES
from tests.helpers import ROOT

NOW = datetime(2030, 1, 7, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("old, new", [("cancelled", "confirmed"), ("completed", "checked_in"),
                                      ("no_show", "checked_in"), ("expired", "cancelled"),
                                      ("confirmed", "held")])
def test_a_forbidden_move_is_refused_before_any_write(old, new):
    """Naming a source the table does not allow raises, without touching the database."""
    assert not status.allowed(old, new)
    with pytest.raises(status.ForbiddenTransition):
        status.move(ObjectId(), new, NOW, only_from=(old,))


def test_the_table_covers_every_status_and_final_ones_go_nowhere():
    """Every stored status has a row; cancelled and completed are final; completed is reachable."""
    assert set(status.TRANSITIONS) == set(APPOINTMENT_STATUSES)
    assert status.TRANSITIONS["cancelled"] == () and status.TRANSITIONS["completed"] == ()
    assert status.sources("completed") == ("checked_in",)
    # Staff may cancel an open waitlist offer too (issue 24: it was a `held` one before).
    assert set(status.sources("cancelled")) == {"held", "offered", "confirmed", "checked_in"}


def test_a_waitlist_offer_is_a_status_that_becomes_a_booking_or_ends():
    """Issue 24: `offered` is accepted (held for payment, or confirmed when free) or ends (expired,
    cancelled); nothing else becomes an offer, and a hold never turns back into one."""
    assert set(status.TRANSITIONS["offered"]) == {"held", "confirmed", "expired", "cancelled"}
    assert status.sources("offered") == ()
    assert not status.allowed("held", "held") and not status.allowed("held", "offered")


# Every package of the app: the domain, the doors, the web infrastructure and the wiring.
APP_PACKAGES = ("models", "admin", "portal", "webhooks", "clinic", "web")
WRITES = ("update_one", "update", "modify", "update_many", "find_one_and_update", "upsert_one")


def _sets_status(call):
    """Whether a write call sets `status`: `set__status=` (or a bare `status=`), a raw
    `{"$set": {"status": …}}`, or `**` keywords (where a status could hide), except
    `**carried_update(…)`, which only adds the action's audit event (models/audit.py)."""
    if any(k.arg in ("set__status", "status") or (k.arg is None and not _carries_audit(k.value))
           for k in call.keywords):
        return True
    for arg in call.args:
        if isinstance(arg, ast.Dict):
            for key, value in zip(arg.keys, arg.values):
                if (isinstance(key, ast.Constant) and key.value == "$set" and isinstance(value, ast.Dict)
                        and any(isinstance(k, ast.Constant) and k.value == "status" for k in value.keys)):
                    return True
    return False


def _carries_audit(value):
    return isinstance(value, ast.Call) and ast.unparse(value.func) == "carried_update"


def status_writes(about, root=ROOT, packages=APP_PACKAGES, born=None):
    """Where a module writes the status of the documents `about(path, receiver)` says a write is
    about: write calls (`update_one`, `modify`, …) that set it, and `<x>.status = …` assignments;
    with `born` (a document class name), also a new document given its status (`Payment(status=…)`,
    `Payment.objects.create(status=…)`)."""
    found = []
    for package in packages:
        for base, _dirs, files in os.walk(os.path.join(root, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(base, name)
                relative = os.path.relpath(path, root)
                with open(path, encoding="utf-8") as handle:
                    tree = ast.parse(handle.read())
                for node in ast.walk(tree):
                    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                            and node.func.attr in WRITES and _sets_status(node)
                            and about(relative, ast.unparse(node.func.value))):
                        found.append((relative, node.lineno))
                    elif (born and isinstance(node, ast.Call) and _sets_status(node)
                          and ast.unparse(node.func) in (born, f"{born}.objects.create")):
                        found.append((relative, node.lineno))
                    elif isinstance(node, ast.Assign):
                        for target in node.targets:
                            if (isinstance(target, ast.Attribute) and target.attr == "status"
                                    and about(relative, ast.unparse(target.value))):
                                found.append((relative, node.lineno))
    return [f"{relative}:{line}" for relative, line in sorted(found)]


def about_appointments(path, receiver):
    return "appointment" in receiver.lower()


def about_payments(path, receiver):
    # In the payments package a raw `collection` is Payment's (`Payment._get_collection()`).
    return "payment" in receiver.lower() or (path.startswith(os.path.join("models", "payments"))
                                             and receiver == "collection")


def test_no_module_writes_an_appointment_status_but_the_table():
    """An Appointment's status is written only in models/booking/status.py (`move`)."""
    offenders = [w for w in status_writes(about_appointments)
                 if not w.startswith(os.path.join("models", "booking", "status.py") + ":")]
    assert not offenders, offenders


def test_no_module_writes_a_payment_status_but_the_ledger():
    """A Payment's status is written only in models/payments/ledger.py (`_move_payment`, and
    `new_payment` for a new Payment's first status)."""
    offenders = [w for w in status_writes(about_payments, born="Payment")
                 if not w.startswith(os.path.join("models", "payments", "ledger.py") + ":")]
    assert not offenders, offenders


def test_the_status_write_scan_finds_each_kind_of_write(tmp_path):
    """The scans above can fail: each way of writing a status is found, and only for its document."""
    module = tmp_path / "models" / "payments"
    module.mkdir(parents=True)
    (module / "rogue.py").write_text(
        "def f(payment, appointment, collection, fields):\n"
        "    Payment.objects(id=payment.id).update_one(set__status='succeeded')\n"
        "    payment.modify(query={}, **fields)\n"
        "    collection.update_one({'_id': 1}, {'$set': {'status': 'refunded'}})\n"
        "    payment.status = 'failed'\n"
        "    appointment.modify(set__status='cancelled')\n"
        "    Payment.objects(id=payment.id).update_one(set__flag='x')\n"
        "    Payment(amount=1, status='succeeded').save()\n"
        "    Payment.objects.create(status='pending')\n"
        "    Payment(amount=1).save()\n"
        "    appointments.update_one(set__start=1, **carried_update(None))\n"
        "    appointments.update_one(set__start=1, **more_changes(fields))\n")
    assert status_writes(about_payments, root=str(tmp_path), packages=("models",), born="Payment") == [
        f"{os.path.join('models', 'payments', 'rogue.py')}:{line}" for line in (2, 3, 4, 5, 8, 9)]
    # An audit event carried with a change is not a status write; any other `**` may hide one.
    assert status_writes(about_appointments, root=str(tmp_path), packages=("models",)) == [
        f"{os.path.join('models', 'payments', 'rogue.py')}:{line}" for line in (6, 12)]


def test_the_payment_table_covers_every_status_and_money_is_never_unrecorded():
    """Every Payment status has a row; a succeeded payment only ever becomes refunded; a refunded one
    is never moved by the table (a PaymentIntent reads "succeeded" after its refund too), only given
    back by a refund that failed after all."""
    assert set(ledger.TRANSITIONS) == set(PAYMENT_STATUSES)
    assert ledger.TRANSITIONS["succeeded"] == ("refunded",)
    assert ledger.TRANSITIONS["refunded"] == ()
    assert ledger.GIVEN_BACK == {"refunded": ("succeeded",)}
    # One form for both tables: the same class, the same questions.
    assert type(ledger.TABLE) is type(status.TABLE)
    assert ledger.TABLE.sources("refunded") == ("succeeded",) and ledger.TABLE.allowed("refunded", "succeeded") is False
    assert ledger.TABLE.allowed("refunded", "succeeded", named=True) is True


@pytest.mark.parametrize("old, new", [("succeeded", "failed"), ("succeeded", "pending"), ("succeeded", "canceled"),
                                      ("refunded", "pending"), ("refunded", "canceled"), ("pending", "refunded"),
                                      ("failed", "refunded")])
def test_a_forbidden_payment_move_is_refused_before_any_write(old, new):
    """Naming a source the payment table does not allow raises, without touching the database."""
    from models.payments.documents import Payment

    with pytest.raises(ledger.ForbiddenTransition):
        ledger._move_payment(Payment(id=ObjectId(), status=old), new, NOW, only_from=(old,))


@pytest.mark.parametrize("first", ["processing", "failed", "canceled", "refunded"])
def test_a_payment_is_born_only_waiting_or_paid(first):
    """The ledger gives a new Payment its first status too: pending, or succeeded (taken at the desk)."""
    assert ledger.new_payment("pending").status == "pending"
    assert ledger.new_payment("succeeded").status == "succeeded"
    with pytest.raises(ledger.ForbiddenTransition):
        ledger.new_payment(first)


def test_a_refunded_payment_is_given_back_only_when_named(app):
    """A sync that reads the refunded payment's intent as "succeeded" moves nothing; the refunds'
    own bookkeeping (a refund that failed after all) gives it back."""
    from models.booking.create import book
    from models.payments.documents import Payment
    from tests.support.factories import at, future_day, make_clinic, make_patient, make_provider, make_service

    make_clinic()
    service = make_service(price=0)
    patient = make_patient()
    with app.test_request_context():
        appointment = book(patient, str(service.id), str(make_provider([service]).id), at(future_day(), 10),
                           datetime.now(timezone.utc))
    payment = Payment(appointment=appointment, patient=patient, amount=5000, currency="gbp", status="refunded",
                      amount_refunded=5000).save()
    assert ledger._move_payment(payment, "succeeded", NOW) is False
    assert Payment.objects.get(id=payment.id).status == "refunded"
    assert ledger._move_payment(payment, "succeeded", NOW, only_from=("refunded",)) is True
    assert Payment.objects.get(id=payment.id).status == "succeeded" and payment.status == "succeeded"


def test_an_action_audits_its_own_refusal_and_its_success(app):
    """Called with `audit_as`, a front-desk action writes "refused:<code>" before the refusal reaches
    the door, and "ok" once done; a status the table refuses is never written."""
    from models import AuditEvent
    from models.booking import frontdesk
    from models.booking.create import book
    from models.errors import Conflict
    from tests.support.factories import at, future_day, make_clinic, make_patient, make_provider, make_service

    make_clinic()
    service = make_service(price=0)
    provider = make_provider([service])
    now = datetime.now(timezone.utc)
    with app.test_request_context():
        appointment = book(make_patient(), str(service.id), str(provider.id), at(future_day(), 10), now)
        with pytest.raises(Conflict):
            frontdesk.mark_no_show(appointment, now, audit_as="staff:test")  # it has not started yet
        record = f"Appointment:{appointment.id}"
        assert AuditEvent.objects(actor="staff:test", action="appointment.no_show", record=record,
                                  outcome="refused:not_started").count() == 1
        later = appointment.start.replace(tzinfo=timezone.utc) + timedelta(minutes=5)
        assert frontdesk.mark_no_show(appointment, later, audit_as="staff:test").status == "no_show"
        assert AuditEvent.objects(action="appointment.no_show", record=record, outcome="ok").count() == 1
        with pytest.raises(Conflict):  # no_show -> checked_in is not in the table: nothing moves
            frontdesk.check_in(appointment, later, "Europe/London", audit_as="staff:test")
        assert AuditEvent.objects(action="appointment.check_in", outcome="refused:bad_transition").count() == 1
        appointment.reload()
        assert appointment.status == "no_show" and appointment.version == 1


def test_no_module_flags_a_payment_disputed_but_the_ledger():
    """A Payment's dispute flag, like its status, is written only in models/payments/ledger.py
    (`_mark_disputed`): no `set__dispute=`/`unset__dispute=`, `Payment(dispute=…)` or `.dispute = …`
    anywhere else in the app."""
    offenders = []
    for package in APP_PACKAGES:
        for base, _dirs, files in os.walk(os.path.join(ROOT, package)):
            for name in (n for n in files if n.endswith(".py")):
                path = os.path.join(base, name)
                relative = os.path.relpath(path, ROOT)
                if relative == os.path.join("models", "payments", "ledger.py"):
                    continue
                with open(path, encoding="utf-8") as handle:
                    tree = ast.parse(handle.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Call) and any(
                            (k.arg or "").split("__")[-1] == "dispute" and (k.arg or "").startswith(("set__", "unset__"))
                            or (k.arg == "dispute" and ast.unparse(node.func).startswith("Payment"))
                            for k in node.keywords):
                        offenders.append(f"{relative}:{node.lineno}")
                    elif isinstance(node, ast.Assign) and any(
                            isinstance(t, ast.Attribute) and t.attr == "dispute" for t in node.targets):
                        offenders.append(f"{relative}:{node.lineno}")
    assert not offenders, offenders
