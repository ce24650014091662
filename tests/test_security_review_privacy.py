"""Issue #23's security review, privacy findings (7, 9, 10, 11, 12) and the API's empty query values,
each replayed against the real servers and shown closed.

Every test names the finding it replays.
"""

import csv
import io
import json
import logging
import os
import re
import secrets
import subprocess
import threading
from datetime import datetime, timezone

import pytest
import requests
from bson import ObjectId

from models.documents import AuditEvent, Patient, Provider, StaffUser
from tests.helpers import BIN, ROOT, clean_env, stop_process, wait_http
from tests.support.clients import signed_in, signed_in_staff
from tests.support.factories import PASSWORD, at, csrf_header, form_csrf, future_day


@pytest.fixture
def world(app, clinic_world):
    """A clinic with a paid and a free service, one provider, admin and reception, two patients."""
    return clinic_world(
        services={"paid": dict(name="Physio", duration=30, price=6000),
                  "free": dict(name="Call", duration=15, price=0)},
        providers={"one": dict(name="Dr One")},
        staff=("admin", "reception"),
        patients=["pat@example.com", "other@example.com"])


def book(client, service, provider, start):
    """Book a time through the API as the client's patient."""
    return client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat()})


def issue_reset(email="pat@example.com"):
    """A fresh reset link's raw token for the patient (as the emailed link carries it)."""
    from models.accounts.reset import issue_link
    from models.clock import utcnow

    return issue_link(Patient.objects.get(email=email), utcnow(), "reset")


# --- 7. The reset link's token: out of the URL, the Referer and the access logs ---------------------

def test_7_the_reset_token_leaves_the_url_on_first_load_and_no_page_sends_a_referrer(app, world):
    """Replays: /portal/reset/<token> answered Talisman's `strict-origin-when-cross-origin` and kept
    the token in the address bar (and so in every later request line and the history)."""
    token = issue_reset()
    client = app.test_client()
    first = client.get(f"/portal/reset/{token}")
    assert first.status_code == 303 and first.headers["Location"] == "/portal/reset"
    assert first.headers["Referrer-Policy"] == "no-referrer"
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Max-Age=1800" in cookie and "SameSite=Lax" in cookie
    page = client.get("/portal/reset")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Choose a new password" in html and 'name="password"' in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert token not in html
    done = client.post("/portal/reset", data={"csrf_token": form_csrf(html), "password": "a fresh password"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/portal/login")
    assert done.headers["Referrer-Policy"] == "no-referrer"
    assert client.get_cookie("__Host-clinic_reset") is None  # spent: the cookie goes too
    assert client.post("/api/auth/login", json={"email": "pat@example.com",
                                                "password": "a fresh password"}).status_code == 200
    # A spent or unknown link still says so, without the form.
    again = client.get(f"/portal/reset/{token}", follow_redirects=True)
    assert "expired or has already been used" in again.get_data(as_text=True)
    assert 'name="password"' not in again.get_data(as_text=True)


class _Lines(logging.Handler):
    """Collects formatted log lines; `seen` is set once `want` lines matched `pattern`."""

    def __init__(self, pattern, want):
        super().__init__()
        self.lines, self.pattern, self.want, self.seen = [], pattern, want, threading.Event()

    def emit(self, record):
        """Keep the line; signal once enough lines matched."""
        self.lines.append(record.getMessage())
        if sum(1 for line in self.lines if self.pattern in line) >= self.want:
            self.seen.set()


def test_7_werkzeug_access_log_never_holds_the_reset_token(live_server, clinic_world):
    """Replays: the dev server's access log wrote `GET /portal/reset/<token>`."""
    base, _ = live_server()
    clinic_world(patients=["pat@example.com"])
    token = issue_reset()
    lines = _Lines("/portal/reset", want=2)
    logger = logging.getLogger("werkzeug")
    logger.addHandler(lines)
    try:
        with requests.Session() as browser:
            answer = browser.get(f"{base}/portal/reset/{token}", timeout=10)
        assert answer.status_code == 200 and answer.url == f"{base}/portal/reset"
        # The server logs each request after answering it: wait for both lines (an event, not a sleep).
        assert lines.seen.wait(10), lines.lines
    finally:
        logger.removeHandler(lines)
    assert not any(token in line for line in lines.lines), lines.lines
    assert any("GET /portal/reset/[redacted] " in line and " 303 " in line for line in lines.lines), lines.lines


def test_7_gunicorn_access_log_never_holds_the_reset_token(app_config, tmp_path):
    """Replays: gunicorn's access log (`--access-logfile`) wrote `GET /portal/reset/<token>`."""
    from devstack.servers import free_port

    port, log_file = free_port(), tmp_path / "access.log"
    env = clean_env(**{k: v for k, v in app_config.items() if k.isupper() and isinstance(v, str)})
    proc = subprocess.Popen([os.path.join(BIN, "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}",
                             "--access-logfile", str(log_file), "wsgi:app"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    token = secrets.token_urlsafe(32)  # any token: the redirect does not depend on it
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", 200, timeout=60, process=proc)
        answer = requests.get(f"{base}/portal/reset/{token}", allow_redirects=False, timeout=10)
        assert answer.status_code == 303 and token not in answer.headers["Location"]
    finally:
        stop_process(proc)  # gunicorn writes (and flushes) each line before it exits
    logged = log_file.read_text()
    assert token not in logged
    assert '"GET /portal/reset/[redacted] HTTP/1.1" 303' in logged, logged


# --- 9. Erasure and export cover every collection that holds the patient's data --------------------

def _patient_in_every_collection(app, world):
    """The patient booked (a held, paid time), joined the waitlist, asked for a reset link and got
    email (one sent, one queued); returns the patient and their signed-in client."""
    from models.messages.documents import OutboxMessage
    from models.messages.outbox import enqueue

    pat = world.patients["pat@example.com"]
    client = signed_in(app, "pat@example.com")
    day = future_day(3)
    assert book(client, world["paid"], world["one"], at(day, 10)).status_code == 201
    joined = client.post("/api/waitlist", headers=csrf_header(client), json={
        "service": str(world["free"].id), "from": day.isoformat(), "to": day.isoformat()})
    assert joined.status_code == 201, joined.get_json()
    assert app.test_client().post("/api/auth/password/forgot", json={"email": "pat@example.com"}).status_code == 202
    sent = enqueue("confirmed", "pat@example.com", f"Appointment:{ObjectId()}", patient_id=pat.id)
    OutboxMessage.objects(id=sent.id).update_one(set__status="failed",
                                                 set__last_error="550 <pat@example.com>: mailbox full")
    return pat, client


def _holding(db, patient_id, email):
    """{collection: [documents]} of every collection with a document naming the patient's id or email."""
    found = {}
    for name in db.list_collection_names():
        if name.startswith("system."):
            continue
        docs = [d for d in db[name].find() if str(patient_id) in json.dumps(d, default=str)
                or email in json.dumps(d, default=str).lower()]
        if docs:
            found[name] = docs
    return found


def test_9_erasure_leaves_the_email_in_no_collection_and_sends_nothing_more(app, world):
    """Replays: after erasure the email stayed in the outbox, searchable at /admin/outbox/."""
    from models.messages.documents import OutboxMessage
    from models.accounts.documents import PasswordReset

    pat, client = _patient_in_every_collection(app, world)
    Patient.objects(id=pat.id).update_one(set__phone="+447700900123",
                                          set__date_of_birth=datetime(1980, 5, 17))
    db = Patient._get_db()
    assert "outbox" in _holding(db, pat.id, "pat@example.com")
    resp = client.post("/api/me/delete", headers=csrf_header(client), json={"password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    assert _holding(db, "-no-id-", "pat@example.com") == {}  # the address is nowhere
    erased = Patient.objects.get(id=pat.id)
    assert erased.phone == "" and erased.date_of_birth is None
    staff = signed_in_staff(app, "reception")
    found = staff.get("/admin/outbox/?search=pat%40example.com").get_data(as_text=True)
    assert "Nothing matches this search or filter." in found  # (the search box repeats the query itself)
    # Nothing is left to send; the records stay, pseudonymous.
    assert OutboxMessage.objects(patient=pat.id, status__in=("queued", "failed")).count() == 0
    assert OutboxMessage.objects(patient=pat.id, drop_reason="patient erased").count() >= 2
    assert all(m.to == f"erased-{pat.id}@erased.invalid" for m in OutboxMessage.objects(patient=pat.id))
    assert PasswordReset.objects(patient=pat.id, used_at=None).count() == 0
    from models.booking.waitlist import WaitlistEntry

    assert WaitlistEntry.objects(patient=pat.id, status__in=("waiting", "offered")).count() == 0


def test_9_export_holds_every_record_of_every_collection_with_the_patients_data(app, world):
    """Replays: the export left out the outbox's messages and the reset records."""
    pat, client = _patient_in_every_collection(app, world)
    data = client.get("/api/me/export").get_json()
    exported = {str(row["id"]) for rows in data["other_records"].values() for row in rows}
    exported |= {row["id"] for row in data["appointments"] + data["payments"]}
    exported |= {data["patient"]["id"]}
    for name, docs in _holding(Patient._get_db(), pat.id, "pat@example.com").items():
        if name == "audit_events":
            continue  # exported as the patient sees it (finding 10's test)
        missing = [d["_id"] for d in docs if str(d["_id"]) not in exported]
        assert not missing, f"{name}: {missing} not exported"
    assert {"outbox", "password_resets", "waitlist_entries"} <= set(data["other_records"])
    text = json.dumps(data)
    assert "token_hash" not in text and '"token"' not in text  # a link's secret never leaves


def _names_patient(field, patient_document):
    """True for a field that holds a reference to Patient or a patient's id."""
    from mongoengine import GenericReferenceField, ListField, ObjectIdField, ReferenceField

    inner = getattr(field, "field", None) if isinstance(field, ListField) else field
    if isinstance(inner, ReferenceField):
        return inner.document_type is patient_document
    if isinstance(inner, (GenericReferenceField, ObjectIdField)):
        return "patient" in (field.name or "")
    return False


def test_9_every_document_that_holds_patient_data_is_covered_by_export_and_erasure(app):
    """Fails when a new document references Patient (or stores a patient id) without a line in
    `models.privacy.PATIENT_DATA` saying how export finds it and what erasure does with it."""
    from mongoengine import Document
    from mongoengine.base.common import _document_registry

    from models.privacy import PATIENT_DATA

    covered = set(PATIENT_DATA) | {Patient, AuditEvent}  # the audit trail: strings, exported by record
    holding = set()
    for name in list(_document_registry):  # every document the app imported (it imports them all)
        document = _document_registry[name]
        if not issubclass(document, Document) or document._meta.get("abstract"):
            continue
        if any(_names_patient(field, Patient) for field in document._fields.values()):
            holding.add(document)
    assert holding - covered == set(), f"not covered by models/privacy.py: {holding - covered}"
    # The known ones are found by the walk (so the walk itself works).
    assert {d.__name__ for d in holding} >= {"Appointment", "Payment", "WaitlistEntry", "OutboxMessage",
                                              "PasswordReset"}
    for document, (find, _) in PATIENT_DATA.items():
        assert callable(find), document


# --- 10. The export's audit trail: roles, never staff ids or addresses ------------------------------

def test_10_the_export_names_roles_not_staff_ids_or_addresses(app, world):
    """Replays: the export listed `actor: staff:<id>`, `ip` and `request_id` of every audit event."""
    pat = Patient.objects.get(email="pat@example.com")
    staff = signed_in_staff(app, "reception")
    assert staff.get(f"/admin/patients/details/?id={pat.id}").status_code == 200
    reception = StaffUser.objects.get(email="reception@clinic.test")
    assert AuditEvent.objects(actor=f"staff:{reception.id}", record=f"Patient:{pat.id}").count() >= 1
    client = signed_in(app, "pat@example.com", REMOTE_ADDR="198.51.100.7")
    data = client.get("/api/me/export").get_json()
    text = json.dumps(data["audit_events"])
    assert str(reception.id) not in text and "198.51.100.7" not in text and "127.0.0.1" not in text
    for event in data["audit_events"]:
        assert not {"actor", "ip", "request_id"} & set(event), event
    by = {(e["action"], e["by"]) for e in data["audit_events"]}
    assert ("Patient.read", "staff (reception)") in by
    assert ("patient.login", "you") in by


# --- 11. Every back-office view that shows patient data audits its reads ----------------------------

def test_11_reading_the_waitlist_in_the_back_office_is_audited(app, world):
    """Replays: /admin/waitlist/ showed names and emails and wrote no audit event."""
    client = signed_in(app, "pat@example.com")
    day = future_day(3)
    entry = client.post("/api/waitlist", headers=csrf_header(client), json={
        "service": str(world["free"].id), "from": day.isoformat(), "to": day.isoformat()}).get_json()
    staff = signed_in_staff(app, "reception")
    assert "pat@example.com" in staff.get("/admin/waitlist/").get_data(as_text=True)
    assert staff.get(f"/admin/waitlist/details/?id={entry['id']}").status_code == 200
    actor = f"staff:{StaffUser.objects.get(email='reception@clinic.test').id}"
    actions = {(e.action, e.record) for e in AuditEvent.objects(actor=actor)}
    assert ("WaitlistEntry.list", "WaitlistEntry") in actions
    assert ("WaitlistEntry.read", f"WaitlistEntry:{entry['id']}") in actions


def test_11_every_view_over_patient_data_audits_its_reads(app):
    """A model view over a collection that holds patient data (`PATIENT_DATA`, patients) audits reads."""
    from admin.base import SecureModelView
    from models.privacy import PATIENT_DATA

    holding = set(PATIENT_DATA) | {Patient}
    views = [v for v in app.extensions["clinic_admin"]._views if isinstance(v, SecureModelView)]
    unaudited = [v.endpoint for v in views if v.model in holding and not v.audit_reads]
    assert unaudited == []
    assert {"waitlist", "outbox", "patients", "appointments", "payments"} <= {
        v.endpoint for v in views if v.model in holding}


# --- 12. Staff-typed names are one line; CSV cells are neutralised after leading spaces --------------

BCC = "Mallory\r\nBcc: everyone@example.com"


@pytest.mark.parametrize("path, fields, query", [
    ("/admin/patients/new/", {"email": "typed@example.com", "phone": "020 7946 0123", "active": "y"},
     lambda: Patient.objects(email="typed@example.com")),
    ("/admin/staff/new/", {"email": "typed@clinic.test", "role": "reception", "password": "a long new secret",
                           "active": "y"}, lambda: StaffUser.objects(email="typed@clinic.test")),
    ("/admin/providers/new/", {"email": "typed@clinic.test", "active": "y", "services": "{free}"},
     lambda: Provider.objects(email="typed@clinic.test")),
])
def test_12_staff_typed_names_are_one_line_and_trimmed(app, world, path, fields, query):
    """Replays: a name typed as "Mallory<CR><LF>Bcc: …" was stored and put a "Bcc:" line in an email."""
    from models.messages.documents import OutboxMessage

    fields = {k: v.format(free=world["free"].id) for k, v in fields.items()}
    client = signed_in_staff(app, "admin")
    token = form_csrf(client.get(path).get_data(as_text=True))
    refused = client.post(path, data=dict(fields, csrf_token=token, name=BCC))
    assert refused.status_code == 200 and "one line" in refused.get_data(as_text=True)
    assert query().count() == 0 and OutboxMessage.objects(kind="invitation").count() == 0
    kept = client.post(path, data=dict(fields, csrf_token=token, name="\u00a0  Typed Name \t"))
    assert kept.status_code == 302
    assert query().get().name == "Typed Name"


def test_12_csv_cells_are_neutralised_after_leading_spaces(app, world):
    """Replays: " =HYPERLINK(…)" (a space, a no-break space first) reached the spreadsheet as a formula."""
    from admin.base import neutralise_cell
    from models.booking.create import book as book_rule

    for sneaky in (" =1+1", "\u00a0=1+1", "\u200b+1", "  @SUM(A1)", "\t-2", " \u00a0-2"):
        assert neutralise_cell(sneaky) == "'" + sneaky
    assert neutralise_cell("  plain text") == "  plain text" and neutralise_cell(5) == 5
    # Stored before names were trimmed: the export still neutralises it.
    pat = Patient.objects.get(email="pat@example.com")
    Patient.objects(id=pat.id).update_one(set__name='\u00a0=HYPERLINK("http://evil.test")')
    book_rule(pat, str(world["free"].id), str(world["one"].id), at(future_day(), 10), datetime.now(timezone.utc))
    resp = signed_in_staff(app, "reception").get("/admin/appointments/export/csv/")
    cells = [cell for row in csv.reader(io.StringIO(resp.get_data(as_text=True))) for cell in row]
    assert any(cell.startswith("'\u00a0=HYPERLINK") for cell in cells), cells
    assert not any(cell.lstrip().startswith("=") for cell in cells)


# --- The API's document and its answers agree on empty query values --------------------------------

@pytest.mark.parametrize("path, query, field", [
    ("/api/slots", {"service": ""}, "service"),
    ("/api/slots", {"service": "{service}", "provider": ""}, "provider"),
    ("/api/slots", {"service": "{service}", "from": ""}, "from"),
    ("/api/slots", {"service": "{service}", "days": ""}, "days"),
    ("/api/providers", {"service": ""}, "service"),
])
def test_empty_query_values_are_422_naming_the_field(app, world, path, query, field):
    """Replays (schemathesis): `?service=` / `?provider=` were taken as "no filter" while the document
    says an id is 24 hex digits (and a date, a whole number)."""
    args = {k: v.format(service=world["free"].id) for k, v in query.items()}
    resp = app.test_client().get(path, query_string=args)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    error = resp.get_json()["error"]
    assert error["code"] == "invalid" and field in error["fields"] and error["fields"][field] != "required"
    document = app.test_client().get("/api/openapi.json").get_json()
    params = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
    schema = params[field]["schema"]
    # The document refuses "" too: a pattern, a format or a type that the empty string does not meet.
    assert schema.get("pattern") or schema.get("format") == "date" or schema.get("type") == "integer", schema
    if schema.get("pattern"):
        assert not re.match(schema["pattern"], "")
    # Left out, a filter is no filter.
    ok = app.test_client().get(path, query_string={k: v for k, v in args.items() if k != field and v})
    assert ok.status_code == (422 if field == "service" and path == "/api/slots" else 200)


def test_the_export_holds_the_text_opt_out_of_the_patients_number(app, world):
    """A patient whose phone replied STOP sees that in their export (it is about their number);
    another number's opt-out is not theirs to see."""
    from models.messages.sms import record_opt_out

    pat = world.patients["pat@example.com"]
    Patient.objects(id=pat.id).update_one(set__phone="+447700900123")
    record_opt_out("+447700900123", keyword="STOP")
    record_opt_out("+447700900999", keyword="STOP")
    data = signed_in(app, "pat@example.com").get("/api/me/export").get_json()
    rows = data["other_records"]["sms_opt_outs"]
    assert [(r["phone"], r["keyword"]) for r in rows] == [("+447700900123", "STOP")]
