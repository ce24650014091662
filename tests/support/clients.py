"""Signed-in test clients: patients through the API, staff through the real /admin/login form.

Fixtures: `patient_client` (a patient registered and signed in through the API, its CSRF header
sent on every request) and `staff_client(role)` (a staff user of that role, made if missing,
signed in at /admin/login). The plain functions are for tests that sign in several people.
"""

import pytest

from tests.support.factories import PASSWORD, api_login, csrf_header, staff_login

PATIENT_EMAIL = "pat@example.com"  # the factories' default patient


def signed_in(app, email=PATIENT_EMAIL, **environ):
    """A test client signed in through the API as an existing patient (`environ`: e.g. REMOTE_ADDR)."""
    client = app.test_client()
    if environ:
        client.environ_base.update(environ)
    assert api_login(client, email=email).status_code == 200
    return client


def signed_in_staff(app, role, create=False):
    """A test client signed in at /admin/login as `<role>@clinic.test` (made first when `create`)."""
    if create:
        from tests.support.factories import make_staff

        make_staff(role)
    client = app.test_client()
    assert staff_login(client, f"{role}@clinic.test").status_code == 302
    return client


def register_and_sign_in(app, email=PATIENT_EMAIL, name="Pat Example", password=PASSWORD):
    """A client for a patient registered through the API if new, then signed in; its requests carry
    the CSRF header (read again after a refresh: the token changes with the access cookie)."""
    from models import Patient

    client = app.test_client()
    if Patient.objects(email=email).first() is None:
        resp = client.post("/api/auth/register", json={"email": email, "password": password, "name": name})
        assert resp.status_code == 201, resp.get_json()
    assert api_login(client, email=email, password=password).status_code == 200
    client.environ_base["HTTP_X_CSRF_TOKEN"] = csrf_header(client)["X-CSRF-TOKEN"]
    return client


@pytest.fixture
def patient_client(app):
    """The test app's client, signed in as the patient pat@example.com (registered through the API)."""
    return register_and_sign_in(app)


@pytest.fixture
def staff_client(app):
    """`staff_client(role)`: a client of the test app signed in as that role's staff user (made if missing)."""

    def sign_in(role):
        from models import StaffUser

        return signed_in_staff(app, role, create=StaffUser.objects(email=f"{role}@clinic.test").first() is None)

    return sign_in
