"""The doors (the portal's, and the back office's and the webhook's) keep no audit copies: each action
they call audits itself, so a refused and a done request each leave exactly one audit event (a door's
throttle refusing included)."""

import ast
import os

import pytest

from models import Appointment, AuditEvent
from models.booking.waitlist import WaitlistEntry
from tests.helpers import ROOT
from tests.support.clients import signed_in
from tests.support.factories import at, csrf_header, form_csrf, future_day


@pytest.fixture
def world(app, clinic_world):
    return clinic_world(
        clinic={"max_held": 10},
        services={"consult": dict(name="Consultation", duration=30, price=6000, cancel_hours=0),
                  "free": dict(name="Call", duration=15, price=0, cancel_hours=0)},
        providers={"one": dict(name="Dr One"), "two": dict(name="Dr Two")},
        patients=["pat@example.com", "other@example.com"])


def book(client, service, provider, start):
    resp = client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat()})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def events(action):
    return [(e.outcome, e.record, e.actor) for e in AuditEvent.objects(action=action).order_by("at")]


def test_cancel_done_and_refused_each_leave_one_event(app, world):
    client = signed_in(app)
    appt = book(client, world["free"], world["one"], at(future_day(3), 10))
    actor = f"patient:{Appointment.objects.get(id=appt['id']).patient.id}"
    assert client.post(f"/api/appointments/{appt['id']}/cancel", headers=csrf_header(client)).status_code == 200
    again = client.post(f"/api/appointments/{appt['id']}/cancel", headers=csrf_header(client))
    assert again.status_code == 409
    record = f"Appointment:{appt['id']}"
    assert events("appointment.cancel") == [("ok", record, actor),
                                            (f"refused:{again.get_json()['error']['code']}", record, actor)]


def test_the_reschedule_page_tries_each_clinician_and_audits_once(app, world):
    """The page's "any clinician" move tries each in turn: one event for the move, not one per try."""
    day = future_day(4)
    client, other = signed_in(app), signed_in(app, "other@example.com")
    mine = book(client, world["consult"], world["one"], at(day, 10))
    book(other, world["consult"], world["one"], at(day, 14))  # Dr One is taken at 14:00, Dr Two is free

    def move(providers):
        form = client.get("/portal/password").get_data(as_text=True)
        return client.post(f"/portal/appointments/{mine['id']}/reschedule", data={
            "csrf_token": form_csrf(form), "jwt_csrf": client.get_cookie("csrf_access_token").value,
            "start": at(day, 14).isoformat(), "provider": [str(p.id) for p in providers]})

    assert move([world["one"], world["two"]]).status_code == 302
    moved = Appointment.objects.get(id=mine["id"])
    assert moved.provider.id == world["two"].id
    record = f"Appointment:{mine['id']}"
    assert [(o, r) for o, r, _a in events("appointment.reschedule")] == [("ok", record)]
    assert move([world["one"]]).status_code == 302  # only Dr One: refused, the page says so
    assert [(o, r) for o, r, _a in events("appointment.reschedule")] == [("ok", record),
                                                                          ("refused:slot_taken", record)]


def test_a_password_change_refused_by_the_throttle_is_audited_once_too(app, world):
    client = signed_in(app)
    statuses = [client.post("/api/auth/password", headers=csrf_header(client),
                            json={"current_password": "not my password", "new_password": "a-new-long-password"}
                            ).status_code for _ in range(6)]
    assert statuses[-1] == 429 and 429 not in statuses[:-1]
    # Each request, the throttle's 429 included, leaves one event (refusals read "failure").
    assert [o for o, _r, _a in events("patient.password_change")] == ["failure"] * 6


def test_payment_start_done_and_refused_each_leave_one_event(app, world):
    client = signed_in(app)
    free = book(client, world["free"], world["one"], at(future_day(3), 11))
    paid = book(client, world["consult"], world["one"], at(future_day(3), 14))
    refused = client.post(f"/api/appointments/{free['id']}/payment", headers=csrf_header(client))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "nothing_to_pay"
    started = client.post(f"/api/appointments/{paid['id']}/payment", headers=csrf_header(client))
    assert started.status_code == 200, started.get_json()
    assert [(o, r) for o, r, _a in events("payment.start")] == [
        ("refused:nothing_to_pay", f"Appointment:{free['id']}"), ("ok", f"Appointment:{paid['id']}")]


def test_waitlist_accept_done_and_refused_each_leave_one_event(app, world):
    client = signed_in(app)
    day = future_day(5)
    joined = client.post("/api/waitlist", headers=csrf_header(client), json={
        "service": str(world["consult"].id), "from": day.isoformat(), "to": day.isoformat()})
    assert joined.status_code == 201
    entry = joined.get_json()["id"]
    assert WaitlistEntry.objects.get(id=entry).status == "offered"  # a time is free: offered at once
    accepted = client.post(f"/api/waitlist/{entry}/accept", headers=csrf_header(client))
    assert accepted.status_code == 201, accepted.get_json()
    again = client.post(f"/api/waitlist/{entry}/accept", headers=csrf_header(client))
    assert again.status_code == 409
    # Done, the event is about the appointment it became; refused, about the entry.
    assert [(o, r) for o, r, _a in events("waitlist.accept")] == [
        ("ok", f"Appointment:{accepted.get_json()['id']}"), ("refused:offer_closed", f"WaitlistEntry:{entry}")]


def test_a_staff_booking_done_and_refused_each_leave_one_event(app, world):
    """The day view's booking door keeps no copies either: the booking rule audits its conflict, and
    writes its success event with the booking."""
    from models import Patient, StaffUser
    from tests.support.clients import signed_in_staff

    client = signed_in_staff(app, "reception", create=True)
    actor = f"staff:{StaffUser.objects.get(email='reception@clinic.test').id}"
    day = future_day(3)
    first, second = Patient.objects.get(email="pat@example.com"), Patient.objects.get(email="other@example.com")
    form = client.get(f"/admin/day/new?day={day}").get_data(as_text=True)
    data = {"csrf_token": form_csrf(form), "service": str(world["free"].id), "provider": str(world["one"].id),
            "day": day.isoformat(), "time": "10:00"}
    assert client.post("/admin/day/book", data=dict(data, patient=str(first.id))).status_code == 302
    refused = client.post("/admin/day/book", data=dict(data, patient=str(second.id)))
    assert refused.status_code == 409
    done = Appointment.objects.get(patient=first.id)
    assert events("appointment.book") == [("ok", f"Appointment:{done.id}", actor),
                                          ("refused:slot_taken", f"Provider:{world['one'].id}", actor)]


DOORS = ("portal", "admin", "webhooks")


def refusals_written_in(folder, root=ROOT):
    """Calls under `folder` that pass a "refused:…" outcome (by keyword or position), as path:line."""
    found = []
    for base, _dirs, files in os.walk(os.path.join(root, folder)):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(base, name)
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                values = list(node.args) + [k.value for k in node.keywords]
                if any("refused:" in ast.unparse(value) for value in values):
                    found.append(f"{os.path.relpath(path, root)}:{node.lineno}")
    return found


def test_no_door_module_writes_a_refusal_itself():
    """A door (portal, admin, webhooks) never writes `outcome=f"refused:…"`: the action it calls
    audits its own refusals, the same way whichever door called it."""
    offenders = [hit for door in DOORS for hit in refusals_written_in(door)]
    assert not offenders, offenders


def test_the_refusal_scan_finds_a_door_writing_one(tmp_path):
    """The scan above can fail: an audit call with a refusal outcome, by keyword or by position."""
    door = tmp_path / "door"
    door.mkdir()
    (door / "views.py").write_text(
        "def view(exc):\n"
        "    audit('staff:1', 'appointment.book', outcome=f'refused:{exc.code}')\n"
        "    audit('staff:1', 'appointment.book', 'Provider:1', 'refused:slot_taken')\n"
        "    audit('staff:1', 'appointment.book', outcome='ok')\n")
    assert refusals_written_in("door", root=str(tmp_path)) == ["door/views.py:2", "door/views.py:3"]


def audit_calls_in(folder, root=ROOT):
    """`audit(…)` calls under `folder` (the doors' own event writer), as {(path, action text): count}."""
    found = {}
    for base, _dirs, files in os.walk(os.path.join(root, folder)):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(base, name)
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and "audit" in (getattr(node.func, "id", None),
                                                               getattr(node.func, "attr", None)):
                    action = node.args[1] if len(node.args) > 1 else next(
                        (k.value for k in node.keywords if k.arg == "action"), None)
                    key = (os.path.relpath(path, root), ast.unparse(action) if action is not None else "")
                    found[key] = found.get(key, 0) + 1
    return found


READ = "an audit of a read: patient data seen (HIPAA §164.312(b)); no action changes anything"
SESSION = "a session event: the door owns the cookie or Flask-Login session; nothing in the domain changes"
ADMIN_SAVE = "Flask-Admin's own save of a model form: no domain action sits between the form and the save"
# The only `audit(…)` calls a door may make, each with its reason. Every action that changes an
# appointment, a payment, a patient made by staff or the waitlist (book, book-first-free, staff
# booking and its override, cancel, reschedule, check-in, desk payment, create-by-staff, register,
# deactivate, waitlist join/accept/leave) writes its own event, with its change where it can.
DOOR_AUDITS = {
    ("portal/account.py", "'patient.export'"): READ,
    ("portal/api.py", "'appointment.list'"): READ,
    ("portal/api.py", "'appointment.read'"): READ,
    ("portal/api_selfservice.py", "'waitlist.list'"): READ,
    ("portal/booking_pages.py", "'appointment.list'"): READ,
    ("portal/booking_pages.py", "'appointment.receipt'"): READ,
    ("portal/dependants.py", "'dependant.list'"): READ,
    ("portal/pages.py", "'appointment.read'"): READ,
    ("portal/payment.py", "'payment.read'"): READ,
    ("admin/base.py", "f'{self.model.__name__}.list'"): READ,
    ("admin/base.py", "f'{self.model.__name__}.read'"): READ,
    ("admin/base.py", "f'{self.model.__name__}.export'"): READ,
    ("admin/day.py", "'Appointment.day_view'"): READ,
    ("admin/day.py", "'Appointment.week_view'"): READ,
    ("admin/day.py", "'Appointment.day_sheet'"): READ,
    ("admin/day.py", "'Patient.search'"): READ,
    ("admin/day.py", "'appointment.answers_read'"): READ,
    ("admin/home.py", "'Patient.search'"): READ,
    ("admin/merge.py", "'Patient.merge_view'"): READ,
    ("admin/merge.py", "'Patient.search'"): READ,
    ("admin/patients.py", "'Patient.search'"): READ,
    ("admin/views.py", "'appointment.answers_read'"): READ,
    ("portal/api.py", "'patient.logout'"): SESSION,
    ("portal/pages.py", "'patient.logout'"): SESSION,
    ("portal/auth.py", "'patient.login'"): SESSION,
    ("admin/auth.py", "'staff.login'"): SESSION,
    ("admin/auth.py", "'staff.logout'"): SESSION,
    ("admin/auth.py", "'staff.session_end'"): SESSION,
    ("admin/base.py", "f'{self.model.__name__}.edit'"): ADMIN_SAVE,
    ("admin/views.py", "'staff_user.create' if is_created else 'staff_user.update'"): ADMIN_SAVE,
    ("admin/views.py", "'schedule.create' if created else 'schedule.update'"): ADMIN_SAVE,
    ("admin/views.py", "'patient.update'"): ADMIN_SAVE,
}


def test_doors_audit_only_reads_sessions_and_form_saves():
    """A door (portal, admin, webhooks) writes an audit event itself only for what no domain action
    does (DOOR_AUDITS, each with its reason): the actions that change things audit themselves."""
    found = {}
    for door in DOORS:
        found.update(audit_calls_in(door))
    strays = sorted(key for key in found if key not in DOOR_AUDITS)
    assert not strays, f"audit calls in a door: move them into the action it calls: {strays}"
    gone = sorted(key for key in DOOR_AUDITS if key not in found)
    assert not gone, f"no longer in a door: drop from DOOR_AUDITS {gone}"


def test_the_door_audit_scan_finds_every_form_of_call(tmp_path):
    """The scan above can fail: plain and attribute calls, positional or keyword action."""
    door = tmp_path / "door"
    door.mkdir()
    (door / "views.py").write_text(
        "def view(appointment):\n"
        "    audit('staff:1', 'appointment.check_in', record='Appointment:1')\n"
        "    audit.audit('staff:1', action='waitlist.join')\n"
        "    audit_event('staff:1', 'appointment.book')\n")
    assert audit_calls_in("door", root=str(tmp_path)) == {("door/views.py", "'appointment.check_in'"): 1,
                                                          ("door/views.py", "'waitlist.join'"): 1}


def test_joining_and_leaving_the_waitlist_each_leave_one_event_by_the_action(app, world):
    """Join writes its event with the entry and offers a free time itself; leave audits itself."""
    client = signed_in(app)
    day = future_day(5)
    joined = client.post("/api/waitlist", headers=csrf_header(client), json={
        "service": str(world["consult"].id), "from": day.isoformat(), "to": day.isoformat()})
    assert joined.status_code == 201 and joined.get_json()["status"] == "offered"  # the follow-up ran
    entry = joined.get_json()["id"]
    assert client.delete(f"/api/waitlist/{entry}", headers=csrf_header(client)).status_code == 204
    actor = f"patient:{WaitlistEntry.objects.get(id=entry).patient.id}"
    assert events("waitlist.join") == [("ok", f"WaitlistEntry:{entry}", actor)]
    assert events("waitlist.leave") == [("ok", f"WaitlistEntry:{entry}", actor)]


def test_a_new_caller_refused_a_time_leaves_no_patient_and_no_create_event(app, world):
    """The staff booking of a new caller writes "patient.create" with the booking: a refused time
    writes neither (nor the patient); a booked one writes both, once."""
    from models import Patient
    from tests.support.clients import signed_in_staff

    client = signed_in_staff(app, "reception", create=True)
    day = future_day(3)
    book(signed_in(app), world["free"], world["one"], at(day, 10))  # Dr One is taken at 10:00
    form = client.get(f"/admin/day/new?day={day}").get_data(as_text=True)
    data = {"csrf_token": form_csrf(form), "service": str(world["free"].id), "provider": str(world["one"].id),
            "day": day.isoformat(), "time": "10:00", "patient": "new", "name": "Nia Caller",
            "phone": "07700 900123", "confirm_new": "yes"}
    assert client.post("/admin/day/book", data=data).status_code == 409
    assert Patient.objects(name="Nia Caller").count() == 0 and events("patient.create") == []
    assert client.post("/admin/day/book", data=dict(data, time="11:00")).status_code == 302
    made = Patient.objects.get(name="Nia Caller")
    assert [r for _o, r, _a in events("patient.create")] == [f"Patient:{made.id}"]


def test_password_reset_audits_itself_once_per_request(app, world):
    """Issue 24: the reset actions (models/accounts/reset.py) write their own events, one per request,
    from the API and the pages alike; the door writes none."""
    from datetime import timedelta

    from models import Patient
    from models.accounts import reset
    from models.documents import utcnow
    from models.messages.documents import OutboxMessage

    pat = Patient.objects.get(email="pat@example.com")
    client = app.test_client()
    for email in ("pat@example.com", "nobody@example.com"):
        assert client.post("/api/auth/password/forgot", json={"email": email}).status_code == 202
    assert events("patient.password_reset_request") == [("sent", f"Patient:{pat.id}", "anonymous"),
                                                       ("no_email", "", "anonymous")]
    token = OutboxMessage.objects.get(kind="password_reset").context["token"]
    # A dead link opened on the page: one event.
    client.get("/portal/reset/not-a-real-token")
    assert client.get("/portal/reset").status_code == 200
    assert events("patient.password_reset") == [("invalid_link", "", "anonymous")]
    done = client.post("/api/auth/password/reset", json={"token": token, "password": "a fresh long passphrase"})
    assert done.status_code == 200, done.get_json()
    assert events("patient.password_reset")[1:] == [("ok", f"Patient:{pat.id}", f"patient:{pat.id}")]
    # Called without any door, the action still audits itself.
    with app.test_request_context():
        reset.request_reset("pat@example.com", "192.0.2.1", utcnow(), audit_as="anonymous")
    token = OutboxMessage.objects(kind="password_reset").order_by("-created_at").first().context["token"]
    reset.reset_password(token, "another long passphrase", utcnow() + timedelta(minutes=1))
    assert [e[0] for e in events("patient.password_reset")] == ["invalid_link", "ok", "ok"]
    assert len(events("patient.password_reset_request")) == 3
