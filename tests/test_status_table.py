"""The appointment status table (models/booking/status.py): every status change goes through it,
and a move it does not list is refused before anything is written."""

import ast
import os
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from models.booking import status
from models.booking.documents import APPOINTMENT_STATUSES
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
    assert set(status.sources("cancelled")) == {"held", "confirmed", "checked_in"}


def test_no_module_writes_an_appointment_status_but_the_table():
    """`set__status` on an Appointment appears only in models/booking/status.py."""
    offenders = []
    for base, _dirs, files in os.walk(os.path.join(ROOT, "models")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(base, name)
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("update_one", "update", "modify", "update_many")):
                    continue
                keys = {k.arg for k in node.keywords}
                text = ast.unparse(node.func.value)
                if "set__status" in keys and "Appointment" in text:
                    offenders.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_an_action_audits_its_own_refusal_and_its_success(app):
    """Called with `audit_as`, a front-desk action writes "refused:<code>" before the refusal reaches
    the door, and "ok" once done; a status the table refuses is never written."""
    from models import AuditEvent
    from models.booking import book, frontdesk
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
