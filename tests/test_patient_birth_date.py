"""Issue 26: a patient's date of birth is optional at registration, shown by GET /api/me and
changed (or cleared) by PATCH /api/me; impossible dates are refused in the contract's shape."""

from datetime import date, timedelta

from models import AuditEvent, Patient
from tests.support.clients import register_and_sign_in


def test_registration_takes_an_optional_date_of_birth(app):
    client = app.test_client()
    made = client.post("/api/auth/register", json={"email": "born@example.com", "password": "a long passphrase 1",
                                                   "name": "Maria Lopez", "date_of_birth": "1984-03-02"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["date_of_birth"] == "1984-03-02"
    assert Patient.objects.get(email="born@example.com").date_of_birth == date(1984, 3, 2)
    without = client.post("/api/auth/register", json={"email": "plain@example.com",
                                                      "password": "a long passphrase 1", "name": "No Date"})
    assert without.status_code == 201 and without.get_json()["date_of_birth"] is None


def test_registration_refuses_an_impossible_date_and_writes_nothing(app):
    client = app.test_client()
    future = (date.today() + timedelta(days=2)).isoformat()
    for bad in (future, "31/02/1990", "yesterday"):
        resp = client.post("/api/auth/register", json={"email": "x@example.com", "password": "a long passphrase 1",
                                                       "name": "X", "date_of_birth": bad})
        assert resp.status_code == 422, (bad, resp.get_json())
        assert resp.get_json()["error"]["message"]
    assert Patient.objects(email="x@example.com").count() == 0


def test_me_shows_and_patch_changes_the_date_of_birth(app):
    client = register_and_sign_in(app)
    assert client.get("/api/me").get_json()["date_of_birth"] is None
    changed = client.patch("/api/me", json={"date_of_birth": "1990-12-31"})
    assert changed.status_code == 200 and changed.get_json()["date_of_birth"] == "1990-12-31"
    assert client.get("/api/me").get_json()["date_of_birth"] == "1990-12-31"
    assert AuditEvent.objects(action="patient.update", outcome="ok").count() == 1
    refused = client.patch("/api/me", json={"date_of_birth": "1890-01-01"})
    assert refused.status_code == 422 and refused.get_json()["error"]["message"]
    assert client.get("/api/me").get_json()["date_of_birth"] == "1990-12-31"
    cleared = client.patch("/api/me", json={"date_of_birth": None})
    assert cleared.status_code == 200 and cleared.get_json()["date_of_birth"] is None


def test_patch_me_needs_a_signed_in_patient(app):
    resp = app.test_client().patch("/api/me", json={"date_of_birth": "1990-01-01"})
    assert resp.status_code == 401 and "error" in resp.get_json()
