"""Patient accounts over the JSON API: registration, sign-in, cookies, CSRF, revocation, throttling."""

import statistics
import time
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from devstack.servers import start_redis
from models import AuditEvent, Patient
from tests.support.factories import PASSWORD, api_login, csrf_header, make_patient


def set_cookies(resp):
    """Parse Set-Cookie headers into {name: header}."""
    return {h.split("=", 1)[0]: h for h in resp.headers.getlist("Set-Cookie")}


def test_register_creates_patient_with_argon2id_hash(client):
    resp = client.post("/api/auth/register", json={"email": "New@Example.com", "password": "eight chr",
                                                   "name": "New Patient", "phone": "07700 900123"})
    assert resp.status_code == 201
    assert resp.get_json()["email"] == "new@example.com"
    patient = Patient.objects.get(email="new@example.com")
    assert patient.password_hash.startswith("$argon2id$")
    assert "eight chr" not in patient.password_hash


def test_register_duplicate_email_is_409_and_creates_nothing(client):
    make_patient()
    resp = client.post("/api/auth/register", json={"email": "PAT@example.com", "password": "another long one",
                                                   "name": "Twin"})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "email_taken"
    assert Patient.objects.count() == 1


@pytest.mark.parametrize("body,status", [
    ({"email": "a@example.com", "password": "short", "name": "A"}, 422),
    ({"email": "a@example.com", "name": "A"}, 422),
    ({"email": 123, "password": "long enough", "name": "A"}, 422),
    ({"email": "a@example.com", "password": ["long enough"], "name": "A"}, 422),
    ({"email": "a@example.com", "password": "long enough", "name": {"$ne": None}}, 422),
    ({"email": "аdmin@example.com", "password": "long enough", "name": "Cyrillic a"}, 422),
    ({"email": "ad\u200bmin@example.com", "password": "long enough", "name": "Zero width"}, 422),
    ({"email": "admin@exam ple.com", "password": "long enough", "name": "Space"}, 422),
    ({"email": "a@example.com", "password": "long enough", "name": "Bell\x07"}, 422),
    ([1, 2, 3], 400),
])
def test_register_bad_input_gets_error_shape_and_creates_nothing(client, body, status):
    resp = client.post("/api/auth/register", json=body)
    assert resp.status_code == status
    error = resp.get_json()["error"]
    assert error["code"] and error["message"]
    assert Patient.objects.count() == 0


def test_malformed_json_and_huge_body(client):
    bad = client.post("/api/auth/login", data="{not json", content_type="application/json")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "malformed_json"
    huge = client.post("/api/auth/register", data="x" * (10 * 1024 * 1024), content_type="application/json")
    assert huge.status_code == 413 and huge.get_json()["error"]["code"] == "payload_too_large"
    assert Patient.objects.count() == 0


def test_fullwidth_lookalike_email_maps_to_the_same_account(client):
    make_patient()
    resp = client.post("/api/auth/register", json={"email": "ｐａｔ@example.com", "password": "long enough",
                                                   "name": "Look-alike"})
    assert resp.status_code == 409
    assert Patient.objects.count() == 1


def test_login_sets_httponly_samesite_secure_cookies(client):
    make_patient()
    resp = api_login(client)
    assert resp.status_code == 200
    cookies = set_cookies(resp)
    for name in ("__Host-access_token", "__Host-refresh_token"):
        header = cookies[name]
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" in header
    for name in ("csrf_access_token", "csrf_refresh_token"):
        # The CSRF cookies are read by the page's script, so not HttpOnly, but still Secure and Lax.
        assert "HttpOnly" not in cookies[name] and "Secure" in cookies[name]


def test_cookie_secure_off_for_local_http(make_app):
    app = make_app(COOKIE_SECURE=False)
    make_patient()
    resp = api_login(app.test_client())
    assert "Secure" not in set_cookies(resp)["access_token_cookie"]


def test_me_requires_sign_in_and_returns_own_profile(client):
    make_patient()
    anonymous = client.get("/api/me")
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["code"] == "unauthorized"
    api_login(client)
    me = client.get("/api/me")
    assert me.status_code == 200 and me.get_json()["email"] == "pat@example.com"


def test_state_change_without_csrf_token_is_refused(client):
    make_patient()
    api_login(client)
    refused = client.post("/api/auth/logout")
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    assert client.get("/api/me").status_code == 200  # still signed in: nothing happened
    wrong = client.post("/api/auth/logout", headers={"X-CSRF-TOKEN": "forged"})
    assert wrong.status_code == 403


def test_logout_revokes_tokens_on_the_server(client):
    make_patient()
    api_login(client)
    stolen_access = client.get_cookie("__Host-access_token").value
    stolen_refresh = client.get_cookie("__Host-refresh_token").value
    stolen_csrf = client.get_cookie("csrf_refresh_token").value
    assert client.post("/api/auth/logout", headers=csrf_header(client)).status_code == 200
    assert client.get("/api/me").status_code == 401
    # Replaying the old cookies after logout does not work either.
    client.set_cookie("__Host-access_token", stolen_access)
    replay = client.get("/api/me")
    assert replay.status_code == 401 and replay.get_json()["error"]["code"] == "token_revoked"
    client.set_cookie("__Host-refresh_token", stolen_refresh)
    client.set_cookie("csrf_refresh_token", stolen_csrf)
    assert client.post("/api/auth/refresh", headers={"X-CSRF-TOKEN": stolen_csrf}).status_code == 401


def test_refresh_issues_a_new_access_token(app, client):
    make_patient()
    # The tokens' expiry is checked in this process (PyJWT against the clock time-machine moves);
    # refreshing touches no Redis key that would have to expire.
    with time_machine.travel(datetime.now(timezone.utc), tick=True) as traveller:
        api_login(client)
        old = client.get_cookie("__Host-access_token").value
        traveller.shift(app.config["JWT_ACCESS_TOKEN_EXPIRES"] + timedelta(seconds=1))
        expired = client.get("/api/me")
        assert expired.status_code == 401 and expired.get_json()["error"]["code"] == "token_expired"
        resp = client.post("/api/auth/refresh", headers=csrf_header(client, refresh=True))
        assert resp.status_code == 200
        assert client.get_cookie("__Host-access_token").value != old
        assert client.get("/api/me").status_code == 200


def test_session_has_an_absolute_limit(make_app):
    """A session ends SESSION_MAX_HOURS after sign-in however it is refreshed: a refresh just before
    the limit works, but the access token it gives ends at the limit too, and no refresh after it."""
    app = make_app()  # the real limits: 15-minute access tokens, 12-hour sessions
    make_patient()
    client = app.test_client()
    limit = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    # Only JWT expiry (checked in this process) is at stake: time-machine cannot move Redis's clock,
    # and nothing here waits for a Redis key to lapse.
    with time_machine.travel(datetime.now(timezone.utc), tick=True) as traveller:
        api_login(client)
        assert client.get("/api/me").status_code == 200
        traveller.shift(limit - timedelta(minutes=1))
        assert client.get("/api/me").status_code == 401  # the first access token lapsed long ago
        assert client.post("/api/auth/refresh", headers=csrf_header(client, refresh=True)).status_code == 200
        assert client.get("/api/me").status_code == 200
        traveller.shift(timedelta(minutes=1, seconds=1))
        capped = client.get("/api/me")  # a fresh access token, yet past the session's limit
        assert capped.status_code == 401 and capped.get_json()["error"]["code"] == "token_expired"
        assert client.post("/api/auth/refresh", headers=csrf_header(client, refresh=True)).status_code == 401


def test_password_change_revokes_other_sessions(app):
    make_patient()
    laptop, phone = app.test_client(), app.test_client()
    api_login(laptop)
    api_login(phone)
    resp = laptop.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "a new secret"},
                       headers=csrf_header(laptop))
    assert resp.status_code == 200
    assert phone.get("/api/me").status_code == 401
    assert laptop.get("/api/me").status_code == 200  # this browser got new-generation tokens
    assert api_login(app.test_client()).status_code == 401
    assert api_login(app.test_client(), password="a new secret").status_code == 200


def test_password_change_with_wrong_current_password_changes_nothing(client):
    patient = make_patient()
    api_login(client)
    resp = client.post("/api/auth/password", json={"current_password": "not it!!", "new_password": "a new secret"},
                       headers=csrf_header(client))
    assert resp.status_code == 422
    assert Patient.objects.get(id=patient.id).password_hash == patient.password_hash
    assert client.get("/api/me").status_code == 200


def test_wrong_password_and_unknown_email_answer_identically(client):
    make_patient()
    wrong = api_login(client, password="wrong password")
    unknown = api_login(client, email="nobody@example.com", password="wrong password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert "__Host-access_token" not in set_cookies(wrong)


def test_wrong_password_and_unknown_email_take_similar_time(make_app):
    # Separate accounts per attempt so throttling does not kick in.
    app = make_app()
    for i in range(6):
        make_patient(email=f"p{i}@example.com")
    client = app.test_client()
    known, unknown = [], []
    for i in range(6):
        t = time.perf_counter()
        api_login(client, email=f"p{i}@example.com", password="wrong password")
        known.append(time.perf_counter() - t)
        t = time.perf_counter()
        api_login(client, email=f"ghost{i}@example.com", password="wrong password")
        unknown.append(time.perf_counter() - t)
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)


@pytest.mark.parametrize("email", ["pat@example.com", "nobody@example.com"])
def test_burst_of_failures_gets_429_with_retry_after(client, email):
    make_patient()
    statuses = [api_login(client, email=email, password="wrong password").status_code for _ in range(5)]
    assert statuses == [401] * 5
    throttled = api_login(client, email=email, password="wrong password")
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert throttled.get_json()["error"]["code"] == "too_many_requests"
    # Even the right password waits out the lock (soft lockout).
    assert api_login(client, email=email).status_code == 429


def test_sign_in_events_are_audited_without_secrets(client):
    patient = make_patient()
    api_login(client, password="wrong password")
    api_login(client)
    client.post("/api/auth/logout", headers=csrf_header(client))
    actions = [(e.action, e.outcome) for e in AuditEvent.objects.order_by("at")]
    assert ("patient.login", "failure") in actions
    assert ("patient.login", "ok") in actions and ("patient.logout", "ok") in actions
    for event in AuditEvent.objects:
        assert PASSWORD not in repr(event.to_mongo()) and "wrong password" not in repr(event.to_mongo())
        assert event.request_id
    assert AuditEvent.objects(action="patient.logout").first().record == f"Patient:{patient.id}"


def test_redis_down_fails_closed_with_503(make_app):
    own_redis = start_redis()
    try:
        app = make_app(REDIS_URL=own_redis.url)
        make_patient()
        client = app.test_client()
        api_login(client)
        assert client.get("/api/me").status_code == 200
        own_redis.stop()
        resp = client.get("/api/me")
        assert resp.status_code == 503
        assert resp.get_json()["error"]["code"] == "unavailable"
        login = api_login(app.test_client())
        assert login.status_code == 503
    finally:
        own_redis.stop()


def test_lookalike_spellings_of_an_email_share_one_lockout(client):
    make_patient()
    for _ in range(5):
        assert api_login(client, password="wrong password").status_code == 401
    assert api_login(client, password="wrong password").status_code == 429
    fullwidth = "\uff50at@example.com"  # NFKC-normalises to pat@example.com
    assert api_login(client, email=fullwidth, password="wrong password").status_code == 429
    assert api_login(client, email="PAT@EXAMPLE.COM").status_code == 429


def test_behind_a_trusted_proxy_each_client_address_has_its_own_counter(make_app):
    app = make_app(TRUSTED_PROXIES=1)
    make_patient()
    for i in range(25):
        # 25 different people mistype their own (unknown) emails through the same proxy.
        resp = app.test_client().post("/api/auth/login", json={"email": f"user{i}@example.com",
                                                               "password": "wrong password"},
                                      headers={"X-Forwarded-For": f"203.0.113.{i}"})
        assert resp.status_code == 401
    # Nobody else was locked out by their failures, and the audit records the real address.
    assert api_login(app.test_client()).status_code == 200
    assert AuditEvent.objects(action="patient.login", outcome="failure", ip="203.0.113.7").count() == 1
    secure = app.test_client().get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "max-age" in secure.headers.get("Strict-Transport-Security", "")


def test_registrations_from_one_address_are_limited(client):
    for i in range(10):
        resp = client.post("/api/auth/register", json={"email": f"new{i}@example.com", "password": "long enough",
                                                       "name": f"New {i}"})
        assert resp.status_code == 201
    refused = client.post("/api/auth/register", json={"email": "eleventh@example.com", "password": "long enough",
                                                      "name": "Eleventh"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert Patient.objects(email="eleventh@example.com").count() == 0
