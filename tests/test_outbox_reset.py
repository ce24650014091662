"""Password reset over the API, with the link read from a real SMTP server: same answer for any
email, token stored hashed, single use, 30 minutes, every session ends, throttled."""

import re
from datetime import timedelta

import pytest

from models.documents import utcnow
from models.messages.outbox import OutboxMessage
from models.accounts.reset import PasswordReset, reset_password
from models.errors import ValidationFailed
from models.sweep import sweep
from tests.support.factories import PASSWORD, api_login, make_clinic, make_patient

LINK = re.compile(r"http://clinic\.test/portal/reset/([A-Za-z0-9_\-]+)")


@pytest.fixture
def mail_app(make_app, smtp_server):
    app = make_app(SMTP_URL=smtp_server.url, PUBLIC_URL="http://clinic.test")
    make_clinic()
    return app


def _link(smtp_server, app, email):
    with app.app_context():
        sweep()
    received = smtp_server.wait_for(1, email)
    assert received, "the reset email arrived"
    body = received[-1].get_body(preferencelist=("plain",)).get_content()
    return LINK.search(body).group(1), received[-1]


def test_forgot_answers_the_same_for_any_email_and_only_the_account_gets_a_link(mail_app, smtp_server):
    make_patient("known@example.com", name="Known Patient")
    client = mail_app.test_client()
    known = client.post("/api/auth/password/forgot", json={"email": "Known@Example.com"})
    unknown = client.post("/api/auth/password/forgot", json={"email": "nobody-here@example.com"})
    invalid = client.post("/api/auth/password/forgot", json={"email": "not an email"})
    assert known.status_code == unknown.status_code == invalid.status_code == 202
    assert known.get_json() == unknown.get_json() == invalid.get_json()
    token, message = _link(smtp_server, mail_app, "known@example.com")
    assert message["Subject"] == "Reset your password for Test Clinic"
    assert smtp_server.messages("nobody-here@example.com") == []
    # Only a hash of the token is stored, and the outbox forgets it once the email left.
    stored = PasswordReset.objects.get()
    assert token not in stored.token_hash and len(stored.token_hash) == 64
    sent = OutboxMessage.objects.get(kind="password_reset")
    assert sent.status == "sent" and "token" not in sent.context


def test_reset_sets_the_password_once_and_ends_every_session(mail_app, smtp_server):
    make_patient("reset@example.com")
    old_session = mail_app.test_client()
    assert api_login(old_session, "reset@example.com").status_code == 200
    assert old_session.get("/api/me").status_code == 200
    client = mail_app.test_client()
    client.post("/api/auth/password/forgot", json={"email": "reset@example.com"})
    token, _ = _link(smtp_server, mail_app, "reset@example.com")

    short = client.post("/api/auth/password/reset", json={"token": token, "password": "short"})
    assert short.status_code == 422  # a too-short password does not spend the link
    resp = client.post("/api/auth/password/reset", json={"token": token, "password": "brand new secret"})
    assert resp.status_code == 200
    assert old_session.get("/api/me").status_code == 401  # signed out everywhere
    assert api_login(client, "reset@example.com", PASSWORD).status_code == 401
    assert api_login(client, "reset@example.com", "brand new secret").status_code == 200

    again = client.post("/api/auth/password/reset", json={"token": token, "password": "another secret"})
    assert again.status_code == 422
    assert again.get_json()["error"]["code"] == "invalid_token"
    assert api_login(mail_app.test_client(), "reset@example.com", "brand new secret").status_code == 200


def test_a_link_expires_after_30_minutes(mail_app, smtp_server):
    make_patient("late@example.com")
    mail_app.test_client().post("/api/auth/password/forgot", json={"email": "late@example.com"})
    token, _ = _link(smtp_server, mail_app, "late@example.com")
    with pytest.raises(ValidationFailed):
        reset_password(token, "too late now", utcnow() + timedelta(minutes=31))
    assert reset_password(token, "just in time", utcnow() + timedelta(minutes=29)).email == "late@example.com"


def test_reset_requests_are_throttled_per_address_and_per_account(mail_app, smtp_server):
    make_patient("flood@example.com")
    client = mail_app.test_client()
    answers = [client.post("/api/auth/password/forgot", json={"email": "flood@example.com"}).status_code
               for _ in range(4)]
    assert answers == [202, 202, 202, 202]  # the same answer …
    assert OutboxMessage.objects(kind="password_reset").count() == 3  # … but at most 3 emails an hour
    for i in range(6):
        assert client.post("/api/auth/password/forgot", json={"email": f"x{i}@example.com"}).status_code == 202
    throttled = client.post("/api/auth/password/forgot", json={"email": "y@example.com"})
    assert throttled.status_code == 429
    assert throttled.get_json()["error"]["code"] == "too_many_requests"
    assert int(throttled.headers["Retry-After"]) > 0


def test_bad_reset_bodies_get_clear_errors(mail_app):
    client = mail_app.test_client()
    assert client.post("/api/auth/password/reset", data="nope").status_code == 400
    missing = client.post("/api/auth/password/reset", json={"token": "abc"})
    assert missing.status_code == 422
    wrong = client.post("/api/auth/password/reset", json={"token": 5, "password": "long enough"})
    assert wrong.status_code == 422 and wrong.get_json()["error"]["code"] == "invalid_token"
