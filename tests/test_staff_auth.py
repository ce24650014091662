"""Staff sign-in to the back office with Flask-Login: CSRF form, cookie flags, throttling, audit."""

import pytest

from models import AuditEvent, StaffUser
from tests.support.factories import PASSWORD, api_login, form_csrf, make_patient, make_staff, staff_login


def test_back_office_sends_anonymous_visitors_to_sign_in(client):
    resp = client.get("/admin/")
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]


def test_staff_sign_in_sets_a_safe_session_cookie_and_opens_admin(client):
    make_staff("reception")
    resp = staff_login(client)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/")
    session_cookie = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("session=")][-1]
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie and "Secure" in session_cookie
    assert client.get("/admin/").status_code == 200


def test_sign_in_without_csrf_token_is_refused(client):
    make_staff("admin")
    resp = client.post("/admin/login", data={"email": "admin@clinic.test", "password": PASSWORD})
    assert resp.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_wrong_password_and_unknown_email_read_the_same(client):
    make_staff("admin")
    wrong = staff_login(client, "admin@clinic.test", "wrong password")
    unknown = staff_login(client, "ghost@clinic.test", "wrong password")
    assert wrong.status_code == unknown.status_code == 401
    assert b"Email or password is not correct." in wrong.data and b"Email or password is not correct." in unknown.data


def test_staff_throttled_after_repeated_failures(client):
    make_staff("admin")
    for _ in range(5):
        assert staff_login(client, "admin@clinic.test", "wrong password").status_code == 401
    locked = staff_login(client, "admin@clinic.test", PASSWORD)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert client.get("/admin/").status_code == 302


def test_logout_ends_the_staff_session(client):
    make_staff("reception")
    staff_login(client)
    token = form_csrf(client.get("/admin/login").get_data(as_text=True))
    resp = client.post("/admin/logout", data={"csrf_token": token})
    assert resp.status_code == 302
    assert client.get("/admin/").status_code == 302


def test_deactivated_staff_cannot_sign_in_or_keep_a_session(client):
    staff = make_staff("reception")
    staff_login(client)
    assert client.get("/admin/").status_code == 200
    StaffUser.objects(id=staff.id).update_one(set__active=False)
    assert client.get("/admin/").status_code == 302
    assert staff_login(client).status_code == 401


def test_patient_jwt_never_opens_the_back_office(client):
    make_patient()
    assert api_login(client).status_code == 200
    resp = client.get("/admin/")
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]


def test_staff_sign_ins_are_audited(client):
    staff = make_staff("admin")
    staff_login(client, "admin@clinic.test", "wrong password")
    staff_login(client, "admin@clinic.test")
    actions = {(e.action, e.outcome, e.actor) for e in AuditEvent.objects}
    assert ("staff.login", "failure", "anonymous") in actions
    assert ("staff.login", "ok", f"staff:{staff.id}") in actions


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin"])
def test_next_parameter_cannot_leave_the_back_office(client, target):
    make_staff("admin")
    token = form_csrf(client.get("/admin/login").get_data(as_text=True))
    resp = client.post(f"/admin/login?next={target}",
                       data={"email": "admin@clinic.test", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/")
