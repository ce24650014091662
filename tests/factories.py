"""Factories for test data, written through the same domain functions the doors use."""

from models.accounts import create_staff, register_patient

PASSWORD = "correct horse battery"


def make_patient(email="pat@example.com", password=PASSWORD, name="Pat Example"):
    """A registered patient."""
    return register_patient(email, password, name)


def make_staff(role="reception", email=None, password=PASSWORD):
    """A staff user of `role`."""
    return create_staff(email or f"{role}@clinic.test", role, password)


def api_login(client, email="pat@example.com", password=PASSWORD):
    """Sign a patient in through the API; returns the response."""
    return client.post("/api/auth/login", json={"email": email, "password": password})


def csrf_header(client, refresh=False):
    """The X-CSRF-TOKEN header value from the client's CSRF cookie."""
    name = "csrf_refresh_token" if refresh else "csrf_access_token"
    cookie = client.get_cookie(name)
    return {"X-CSRF-TOKEN": cookie.value if cookie else ""}
