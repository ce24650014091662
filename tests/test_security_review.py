"""Issue #14's hostile review, replayed item by item against the real servers, each shown closed.

Every test names the finding it replays. They use the real MongoDB-protocol server, Redis and
localstripe; the concurrency findings go over real sockets to a threaded server.
"""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
import time_machine

from models.documents import Appointment, AuditEvent, Patient, StaffUser
from tests.support.factories import (
    PASSWORD,
    api_login,
    at,
    csrf_header,
    form_csrf,
    future_day,
    make_clinic,
    make_patient,
    make_provider,
    make_service,
    make_staff,
    staff_login,
)
from tests.helpers import concurrently
from tests.support.clients import signed_in


def book(client, service, provider, start):
    return client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat()})


def free_starts(client, service, provider, first, days):
    resp = client.get("/api/slots", query_string={"service": str(service.id), "provider": str(provider.id),
                                                  "from": first.isoformat(), "days": days})
    assert resp.status_code == 200
    return [slot["start"] for slot in resp.get_json()]


@pytest.fixture
def diary(app, clinic_world):
    return clinic_world(
        services={"paid": dict(name="Physio", duration=30, price=6000),
                  "free": dict(name="Call", duration=15, price=0)},
        providers={"provider": dict(name="Dr Busy")},
        patients=[*(dict(email=f"hoarder{n}@example.com", name=f"Hoarder {n}") for n in range(3)),
                  "pat@example.com"])


# --- 1. One patient can take every time ----------------------------------------------------------

def test_1_three_accounts_cannot_take_every_paid_time(app, diary):
    """Replays: three accounts took all 91 free paid times for 3 days in 92 requests."""
    hoarders = [signed_in(app, f"hoarder{n}@example.com") for n in range(3)]
    day = future_day(2)
    starts = free_starts(hoarders[0], diary["paid"], diary["provider"], day, 3)
    assert len(starts) > 40
    outcomes = {}
    for i, start in enumerate(starts[:60]):
        client = hoarders[i % 3]
        resp = client.post("/api/appointments", headers=csrf_header(client), json={
            "service": str(diary["paid"].id), "provider": str(diary["provider"].id), "start": start})
        code = resp.status_code if resp.status_code == 201 else resp.get_json()["error"]["code"]
        outcomes[code] = outcomes.get(code, 0) + 1
    # Two unpaid holds each, then a clear refusal; the rest of the diary stays free for others.
    assert outcomes[201] == 6, outcomes
    assert outcomes.get("too_many_holds", 0) >= 40, outcomes
    assert Appointment.objects(status="held").count() == 6
    refused = hoarders[0].post("/api/appointments", headers=csrf_header(hoarders[0]), json={
        "service": str(diary["paid"].id), "provider": str(diary["provider"].id), "start": starts[-1]})
    assert refused.status_code in (409, 429)
    left = free_starts(signed_in(app), diary["paid"], diary["provider"], day, 3)
    assert len(left) >= len(starts) - 6 * 2  # each 30-minute hold covers two 15-minute starts


def test_1_one_account_cannot_hold_forty_appointments(app, diary):
    """Replays: one account held 40 appointments; on the free service 28 confirmed at once."""
    client = signed_in(app, "hoarder0@example.com")
    day = future_day(2)
    made = [book(client, diary["free"], diary["provider"], at(day, hour)) for hour in (9, 10, 11, 13, 14, 15, 16)]
    assert [r.status_code for r in made[:6]] == [201] * 6
    refused = made[6]
    assert refused.status_code == 409
    body = refused.get_json()["error"]
    assert body["code"] == "too_many_holds" and "6 upcoming appointments" in body["message"]
    assert Appointment.objects(status="confirmed").count() == 6
    # Cancelling one frees a place again.
    first = made[0].get_json()["id"]
    assert client.post(f"/api/appointments/{first}/cancel", headers=csrf_header(client)).status_code == 200
    assert book(client, diary["free"], diary["provider"], at(day, 16, 30)).status_code == 201


def test_1_limits_are_clinic_settings_and_staff_bookings_are_exempt(app, diary):
    """The limits come from the clinic's settings; staff at the desk are not held to them."""
    from models.booking import create
    from models.documents import Clinic, utcnow

    Clinic.objects.update(set__max_held=1)
    client = signed_in(app, "hoarder0@example.com")
    day = future_day(2)
    assert book(client, diary["paid"], diary["provider"], at(day, 9)).status_code == 201
    second = book(client, diary["paid"], diary["provider"], at(day, 10))
    assert second.status_code == 409 and "1 bookings waiting for payment" in second.get_json()["error"]["message"]
    patient = Patient.objects(email="hoarder0@example.com").first()
    with app.app_context():
        for start in (at(day, h) for h in (10, 11, 13, 14, 15, 16)):
            create.book(patient, str(diary["paid"].id), str(diary["provider"].id), start,
                         utcnow(), booked_by="staff:desk", pay_online=False)
    assert Appointment.objects(patient=patient.id).count() == 7


def test_1_booking_attempts_are_rate_limited_per_account_and_address(make_app, diary):
    """Replays the churn: 92 requests in 2.6 s. Attempts count per account and per address."""
    app = make_app(BOOKINGS_PER_ACCOUNT_10MIN=5, BOOKINGS_PER_ADDRESS_10MIN=8)
    day = future_day(2)
    first = signed_in(app, "hoarder0@example.com")
    statuses = [book(first, diary["paid"], diary["provider"], at(day, 9) + timedelta(minutes=15 * n)).status_code
                for n in range(6)]
    assert statuses[-1] == 429 and statuses.count(429) == 1
    # Another account from the same address has the address's remaining attempts only.
    second = signed_in(app, "hoarder1@example.com")
    statuses = [book(second, diary["free"], diary["provider"], at(day + timedelta(days=1), 9 + n)).status_code
                for n in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    # Someone at another address is not affected.
    other = signed_in(app, "pat@example.com", REMOTE_ADDR="198.51.100.7")
    assert book(other, diary["free"], diary["provider"], at(day + timedelta(days=2), 9)).status_code == 201


# --- 2. Staff sessions do not end -----------------------------------------------------------------

def _copy_session(source, target):
    cookie = source.get_cookie("session")
    target.set_cookie("session", cookie.value)


def test_2_a_copied_staff_cookie_stops_working_at_sign_out(app):
    """Replays: a copied staff session cookie still worked after sign-out."""
    make_staff("admin")
    browser, thief = app.test_client(), app.test_client()
    assert staff_login(browser, "admin@clinic.test").status_code == 302
    _copy_session(browser, thief)
    assert thief.get("/admin/").status_code == 200  # the copy works while the session is live
    token = form_csrf(browser.get("/admin/login").get_data(as_text=True))
    assert browser.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    replay = thief.get("/admin/")
    assert replay.status_code == 302 and "/admin/login" in replay.headers["Location"]
    assert StaffUser.objects.first().session_version == 1


def _aged_session(app, client, since, seen):
    """The client's session cookie re-signed with older sign-in and last-seen times."""
    from flask.sessions import SecureCookieSessionInterface

    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    data = serializer.loads(client.get_cookie("session").value)
    data.update(staff_since=since, staff_seen=seen)
    client.set_cookie("session", serializer.dumps(data))


def test_2_idle_staff_session_ends_after_30_minutes(app):
    make_staff("reception")
    client = app.test_client()
    staff_login(client, "reception@clinic.test")
    now = time.time()
    _aged_session(app, client, now - 3600, now - 29 * 60)
    assert client.get("/admin/").status_code == 200  # 29 idle minutes: still signed in
    _aged_session(app, client, now - 3600, now - 31 * 60)
    resp = client.get("/admin/")
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]
    assert AuditEvent.objects(action="staff.session_end", outcome="timeout_idle").count() == 1


def test_2_staff_session_ends_12_hours_after_sign_in_however_active(app):
    make_staff("reception")
    client = app.test_client()
    staff_login(client, "reception@clinic.test")
    now = time.time()
    _aged_session(app, client, now - 12 * 3600 - 60, now - 10)
    resp = client.get("/admin/")
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]


def test_2_a_cookie_signed_25_days_ago_is_refused(app, monkeypatch):
    """Replays: a cookie signed 25 days ago was accepted (Flask's 31-day default)."""
    import itsdangerous.timed

    make_staff("reception")
    client = app.test_client()
    staff_login(client, "reception@clinic.test")
    from flask.sessions import SecureCookieSessionInterface

    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    data = serializer.loads(client.get_cookie("session").value)
    then = time.time() - 25 * 86400
    data.update(staff_since=then + 10 * 86400 * 3, staff_seen=then + 10 * 86400 * 3)  # forged "recent" times
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: then)
    old_cookie = serializer.dumps(data)
    monkeypatch.undo()
    client.set_cookie("session", old_cookie)
    resp = client.get("/admin/")
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]


# --- 3. Open redirect in the back office --------------------------------------------------------

@pytest.mark.parametrize("target", ["http:evil.test/x", "https://evil.test/", "//evil.test", "/\\evil.test",
                                    "javascript:alert(1)", "/portal/", "/admin//evil.test"])
def test_3_admin_url_and_next_only_follow_admin_paths(app, target):
    """Replays: /admin/patients/edit/?id=…&url=http:evil.test/x sent the browser to evil.test."""
    make_staff("admin")
    patient = make_patient()
    client = app.test_client()
    resp = client.post(f"/admin/login?next={requests.utils.quote(target)}",
                       data={"email": "admin@clinic.test", "password": PASSWORD,
                             "csrf_token": form_csrf(client.get("/admin/login").get_data(as_text=True))})
    assert resp.status_code == 302 and resp.headers["Location"] in ("/admin/", "http://localhost/admin/")
    edit = client.get("/admin/patients/edit/", query_string={"id": str(patient.id), "url": target})
    assert edit.status_code == 302
    assert edit.headers["Location"].split("localhost")[-1].startswith("/admin/patients/")
    # A genuine back-office return path still works.
    ok = client.get("/admin/patients/edit/", query_string={"id": str(patient.id), "url": "/admin/patients/?page=1"})
    assert ok.status_code == 200


# --- 4, 5, 6. Throttles ----------------------------------------------------------------------------

def test_4_concurrent_wrong_passwords_are_counted_before_the_check(live_server):
    """Replays: 25 concurrent wrong passwords for one account were all checked (25 × 401, no 429)."""
    base, app = live_server(ARGON2_MAX_CONCURRENT=2)
    make_patient()
    statuses = concurrently(25, lambda _: requests.post(f"{base}/api/auth/login", timeout=120, json={
        "email": "pat@example.com", "password": "wrong password"}).status_code)
    assert statuses.count(401) <= 6 and statuses.count(429) >= 19, statuses
    assert AuditEvent.objects(action="patient.login", outcome="failure").count() == statuses.count(401)


def test_4_argon2_checks_per_process_are_capped(app):
    """At most ARGON2_MAX_CONCURRENT argon2 computations run at once in a process."""
    import models.accounts.users as accounts

    running, peak, lock = [0], [0], threading.Lock()
    # At production cost, so the eight checks really overlap (the suite's CHEAPEST takes 0.1 ms).
    accounts.set_hash_profile(accounts.PRODUCTION_PROFILE)
    real = accounts.hasher

    class Counting:
        """The real argon2 hasher, counting how many of its checks run at once."""

        def verify(self, *args):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                return real.verify(*args)
            finally:
                with lock:
                    running[0] -= 1

    stored = accounts.hash_password("a long enough password")
    accounts.set_hash_concurrency(2)
    accounts.hasher = Counting()
    try:
        results = concurrently(8, lambda _: accounts.check_password(stored, "a long enough password"))
    finally:
        accounts.hasher = real
        accounts.set_hash_concurrency(app.config["ARGON2_MAX_CONCURRENT"])
        accounts.set_hash_profile(app.config["ARGON2_PROFILE"])
    assert results == [True] * 8 and peak[0] == 2


def test_5_an_outsider_cannot_lock_the_admin_out(app):
    """Replays: five wrong passwords for admin@… gave the real admin a 429 growing to 900 s."""
    make_staff("admin", email="admin@clinic.test")
    admin = app.test_client()
    assert staff_login(admin, "admin@clinic.test").status_code == 302  # earlier sign-in: device cookie
    admin.post("/admin/logout", data={"csrf_token": form_csrf(admin.get("/admin/login").get_data(as_text=True))})
    outsider = app.test_client()
    outsider.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    for _ in range(5):
        assert staff_login(outsider, "admin@clinic.test", "wrong password").status_code == 401
    assert staff_login(outsider, "admin@clinic.test", PASSWORD).status_code == 429  # the outsider waits
    # The real admin, with the device cookie of an earlier sign-in, gets in at once...
    assert staff_login(admin, "admin@clinic.test").status_code == 302
    # ...and so does a colleague's browser at an address that has not failed.
    fresh = app.test_client()
    fresh.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert staff_login(fresh, "admin@clinic.test").status_code == 302
    # From the outsider's address, without the device cookie, the lock still holds.
    assert staff_login(outsider, "admin@clinic.test", PASSWORD).status_code == 429


def test_5_a_patient_with_a_device_cookie_signs_in_through_a_lock(app):
    make_patient()
    mine = app.test_client()
    assert api_login(mine).status_code == 200
    attacker = app.test_client()  # same address (a shared network), no device cookie
    for _ in range(5):
        api_login(attacker, password="wrong password")
    assert api_login(attacker).status_code == 429
    assert api_login(mine).status_code == 200
    # A forged device cookie is worth nothing.
    attacker.set_cookie("__Host-clinic_device_patient", "forged.value.here")
    assert api_login(attacker).status_code == 429


def test_6_password_change_is_throttled_like_sign_in(app):
    """Replays: 30 guesses of the current password were answered in 3.5 s."""
    make_patient()
    client = signed_in(app)
    statuses = [client.post("/api/auth/password", headers=csrf_header(client), json={
        "current_password": f"guess number {n}", "new_password": "a brand new secret"}).status_code
        for n in range(8)]
    assert statuses[:5] == [422] * 5 and set(statuses[5:]) == {429}
    # Even the right current password waits out the lock from this client.
    right = client.post("/api/auth/password", headers=csrf_header(client), json={
        "current_password": PASSWORD, "new_password": "a brand new secret"})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0


def test_9_registration_counts_successes_not_failures(app):
    """Replays: ten failed registration attempts an hour locked out a waiting-room tablet."""
    tablet = app.test_client()
    for n in range(15):
        weak = tablet.post("/api/auth/register", json={"email": f"new{n}@example.com", "password": "password1",
                                                        "name": f"New {n}"})
        assert weak.status_code == 422
    for n in range(10):
        ok = tablet.post("/api/auth/register", json={"email": f"new{n}@example.com",
                                                      "password": "a long enough password", "name": f"New {n}"})
        assert ok.status_code == 201
    over = tablet.post("/api/auth/register", json={"email": "new10@example.com",
                                                    "password": "a long enough password", "name": "New 10"})
    assert over.status_code == 429


# --- 7. Weak passwords ---------------------------------------------------------------------------

@pytest.mark.parametrize("weak", ["12345678", "password", "aaaaaaaa", "password1", "Qwerty2026!",
                                  "hoarder9@example.com", "my hoarder9 pass", "Nightingale Florence"])
def test_7_weak_passwords_are_refused_for_patients(client, weak):
    resp = client.post("/api/auth/register", json={"email": "hoarder9@example.com", "password": weak,
                                                   "name": "Florence Nightingale"})
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "weak_password" and "password" in error["fields"]
    assert Patient.objects.count() == 0


def test_7_weak_passwords_are_refused_for_staff_and_on_the_field(app):
    from models.accounts import create_staff
    from models.errors import ValidationFailed

    for weak in ("12345678", "password", "aaaaaaaa", "boss@clinic.test"):
        with pytest.raises(ValidationFailed):
            create_staff("boss@clinic.test", "admin", weak)
    assert StaffUser.objects.count() == 0
    # On the portal's form the message sits on the password field.
    client = app.test_client()
    page = client.get("/portal/register").get_data(as_text=True)
    resp = client.post("/portal/register", data={"csrf_token": form_csrf(page), "name": "Pat Example",
                                                  "email": "pat@example.com", "password": "password"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="password-error"' in html and "too common" in html


def test_7_the_common_list_is_shipped_and_large():
    from models.accounts.passwords import common_passwords

    assert len(common_passwords()) >= 10000
    assert {"123456", "password", "qwerty", "letmein"} <= common_passwords()


# --- 10. Money verified on fulfilment -----------------------------------------------------------

@pytest.mark.parametrize("amount, currency", [(100, "gbp"), (5000, "usd")])
def test_10_a_short_or_foreign_payment_never_confirms_and_is_refunded_and_flagged(app, stripe_base, amount,
                                                                                  currency):
    """Pays a short (or wrong-currency) amount through localstripe against a real Payment."""
    from models.payments import sync
    from models.documents import Payment
    from tests.support.payments import (api_post, book_held, clinic_with_service, confirm_at_stripe,
                                        stripe_client)

    service, provider = clinic_with_service(price=5000)
    held = book_held(service, provider)
    client = signed_in(app)
    assert api_post(client, f"/api/appointments/{held.id}/payment").status_code == 200
    payment = Payment.objects.get(appointment=held.id)
    # An intent for less (or in another currency) that claims to pay this appointment.
    short = stripe_client(stripe_base).v1.payment_intents.create({
        "amount": amount, "currency": currency, "payment_method_types": ["card"],
        "metadata": {"appointment_id": str(held.id), "payment_id": str(payment.id)}}).id
    assert confirm_at_stripe(stripe_base, short).status == "succeeded"
    with app.app_context():
        assert sync.sync_payment_intent(short).outcome == "amount_mismatch_refunded"
        assert sync.sync_payment_intent(short).outcome == "amount_mismatch_refunded"  # redelivered
    assert Appointment.objects.get(id=held.id).status == "held"
    payment.reload()
    assert payment.status != "succeeded" and payment.flag.startswith("amount mismatch")
    refunds = stripe_client(stripe_base).v1.refunds.list({"payment_intent": short}).data
    assert [r.amount for r in refunds] == [amount]  # given back once, all of it
    assert AuditEvent.objects(action="payment.flagged", record=f"Payment:{payment.id}").count() == 1
    # Staff see the flag in the back office's payment list.
    make_staff("reception")
    staff = app.test_client()
    staff_login(staff, "reception@clinic.test")
    assert "amount mismatch" in staff.get("/admin/payments/").get_data(as_text=True)


# --- Patient data rights (GDPR) ------------------------------------------------------------------

def test_gdpr_export_returns_everything_stored_and_is_audited(app, diary):
    client = signed_in(app)
    day = future_day(2)
    booked = book(client, diary["free"], diary["provider"], at(day, 9)).get_json()
    resp = client.get("/api/me/export")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["patient"]["email"] == "pat@example.com" and data["patient"]["name"] == "Pat Example"
    assert "password_hash" not in json_text(data) and PASSWORD not in json_text(data)
    assert [a["id"] for a in data["appointments"]] == [booked["id"]]
    assert any(e["action"] == "patient.login" for e in data["audit_events"])
    assert AuditEvent.objects(action="patient.export").count() == 1
    # Nobody else's data is in it.
    assert "hoarder0@example.com" not in json_text(data)
    assert app.test_client().get("/api/me/export").status_code == 401


def json_text(data):
    import json

    return json.dumps(data)


def test_gdpr_delete_needs_the_password_erases_the_person_and_keeps_the_records(app, diary):
    client = signed_in(app)
    patient = Patient.objects(email="pat@example.com").first()
    day = future_day(2)
    past_like = book(client, diary["free"], diary["provider"], at(day, 9)).get_json()
    client.post(f"/api/appointments/{past_like['id']}/cancel", headers=csrf_header(client))
    hold = book(client, diary["paid"], diary["provider"], at(day, 10)).get_json()
    wrong = client.post("/api/me/delete", headers=csrf_header(client), json={"password": "not my password"})
    assert wrong.status_code == 422 and "password" in wrong.get_json()["error"]["fields"]
    assert Patient.objects(id=patient.id).first().email == "pat@example.com"  # nothing changed
    resp = client.post("/api/me/delete", headers=csrf_header(client), json={"password": PASSWORD})
    assert resp.status_code == 200
    erased = Patient.objects(id=patient.id).first()
    assert erased.name == "Erased patient" and erased.email.endswith("@erased.invalid") and not erased.phone
    assert not erased.active
    # Sign-in ends, here and everywhere; the old email no longer signs in.
    assert client.get("/api/me").status_code == 401
    assert api_login(app.test_client()).status_code == 401
    # The clinic's records stay, pseudonymised; the unpaid hold was given back.
    assert Appointment.objects(patient=patient.id).count() == 2
    assert Appointment.objects.get(id=hold["id"]).status == "cancelled"
    assert AuditEvent.objects(action="patient.erase", outcome="ok", actor=f"patient:{patient.id}").count() == 1
    assert AuditEvent.objects(actor=f"patient:{patient.id}", action="patient.login").count() >= 1


def test_gdpr_delete_refuses_while_a_confirmed_visit_is_upcoming(app, diary):
    client = signed_in(app)
    book(client, diary["free"], diary["provider"], at(future_day(2), 9))
    resp = client.post("/api/me/delete", headers=csrf_header(client), json={"password": PASSWORD})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "upcoming_appointments"
    assert Patient.objects(email="pat@example.com").first().active


def test_gdpr_account_page_offers_password_export_and_delete(app, diary):
    client = signed_in(app)
    page = client.get("/portal/account")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Change your password" in html and "Download your data" in html and "Delete my account" in html
    download = client.get("/portal/account/export")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    assert b"pat@example.com" in download.data
    wrong = client.post("/portal/account/delete", data={
        "csrf_token": form_csrf(html), "jwt_csrf": client.get_cookie("csrf_access_token").value,
        "password": "not my password"})
    assert wrong.status_code == 422 and 'id="password-error"' in wrong.get_data(as_text=True)
    done = client.post("/portal/account/delete", data={
        "csrf_token": form_csrf(html), "jwt_csrf": client.get_cookie("csrf_access_token").value,
        "password": PASSWORD})
    assert done.status_code == 302 and "/portal/login" in done.headers["Location"]
    assert client.get("/portal/account").status_code == 302
    assert Patient.objects(name="Erased patient").count() == 1


# --- 9. Lower severity -----------------------------------------------------------------------------

def test_9_sign_out_after_the_access_token_expired_revokes_the_refresh_token(make_app):
    """Replays: sign-out after the access token expired left the refresh token valid for 12 hours."""
    app = make_app()  # the real 15-minute access tokens
    make_patient()
    # The access token's expiry is checked in this process, against the clock time-machine moves.
    # The blocklist entry sign-out writes lives in Redis, whose clock does not move: its TTL is the
    # refresh token's remaining life (hours), so the replay below is refused by the entry, not by a
    # lapse.
    with time_machine.travel(datetime.now(timezone.utc), tick=True) as traveller:
        client = signed_in(app)
        refresh = client.get_cookie("__Host-refresh_token").value
        refresh_csrf = client.get_cookie("csrf_refresh_token").value
        traveller.shift(app.config["JWT_ACCESS_TOKEN_EXPIRES"] + timedelta(seconds=1))
        assert client.get("/api/me").get_json()["error"]["code"] == "token_expired"
        assert client.post("/api/auth/logout", headers={"X-CSRF-TOKEN": "forged"}).status_code == 403
        assert client.post("/api/auth/logout", headers=csrf_header(client)).status_code == 200
        client.set_cookie("__Host-refresh_token", refresh)
        client.set_cookie("csrf_refresh_token", refresh_csrf)
        replay = client.post("/api/auth/refresh", headers={"X-CSRF-TOKEN": refresh_csrf})
        assert replay.status_code == 401 and replay.get_json()["error"]["code"] == "token_revoked"


def test_9_jwt_cookies_are_session_scoped_with_the_host_prefix(make_app):
    """Replays: the JWT cookies lived for one year and had no __Host- prefix."""
    secure_app = make_app()
    make_patient()
    secure = signed_in(secure_app)
    login = secure.post("/api/auth/login", json={"email": "pat@example.com", "password": PASSWORD})
    headers = {h.split("=", 1)[0]: h for h in login.headers.getlist("Set-Cookie")}
    for name in ("__Host-access_token", "__Host-refresh_token"):
        header = headers[name]
        assert "Secure" in header and "Path=/" in header and "Domain" not in header
        assert "Max-Age" not in header and "Expires" not in header
    plain = make_app(COOKIE_SECURE=False).test_client()
    login = plain.post("/api/auth/login", json={"email": "pat@example.com", "password": PASSWORD})
    assert any(h.startswith("access_token_cookie=") and "Expires" not in h for h in login.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize("prefix", ["+", " ", ""])
def test_9_a_future_signature_timestamp_is_refused_however_written(client, prefix):
    """Replays: a `t=+<future>` signature timestamp slipped past the future-timestamp check."""
    import stripe

    from tests.support.payments import WEBHOOK_SECRET

    payload = '{"id": "evt_future", "object": "event", "type": "charge.succeeded", "data": {"object": {}}}'
    future = int(time.time()) + 3600
    signature = stripe.WebhookSignature._compute_signature(f"{future}.{payload}", WEBHOOK_SECRET)
    resp = client.post("/webhooks/stripe", data=payload, content_type="application/json",
                       headers={"Stripe-Signature": f"t={prefix}{future},v1={signature}"})
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "bad_signature"


def test_9_x_request_id_is_taken_only_from_a_trusted_proxy(make_app):
    """Replays: X-Request-ID from any client was written into the audit record."""
    direct = make_app().test_client()
    make_patient()
    direct.post("/api/auth/login", json={"email": "pat@example.com", "password": "wrong password"},
                headers={"X-Request-ID": "forged-by-client"})
    assert AuditEvent.objects(request_id="forged-by-client").count() == 0
    proxied = make_app(TRUSTED_PROXIES=1).test_client()
    proxied.post("/api/auth/login", json={"email": "pat@example.com", "password": "wrong password"},
                 headers={"X-Request-ID": "proxy-7f3a", "X-Forwarded-For": "203.0.113.9"})
    assert AuditEvent.objects(request_id="proxy-7f3a").count() == 1
    proxied.post("/api/auth/login", json={"email": "pat@example.com", "password": "wrong password"},
                 headers={"X-Request-ID": "<script>", "X-Forwarded-For": "203.0.113.9"})
    assert AuditEvent.objects(request_id="<script>").count() == 0


def test_9_the_payment_refetch_from_stripe_is_capped(app, stripe_base, monkeypatch):
    """Replays: GET /api/appointments/ID/payment called Stripe on every request, without limit."""
    from models.payments import sync as payments  # where page_state calls sync_payment
    from tests.support.payments import api_post, book_held, clinic_with_service

    service, provider = clinic_with_service()
    held = book_held(service, provider)
    client = signed_in(app)
    assert api_post(client, f"/api/appointments/{held.id}/payment").status_code == 200
    calls = []
    real = payments.sync_payment
    monkeypatch.setattr(payments, "sync_payment", lambda *a, **k: calls.append(1) or real(*a, **k))
    answers = [client.get(f"/api/appointments/{held.id}/payment").status_code for _ in range(30)]
    assert answers == [200] * 30
    assert len(calls) == payments.PAGE_REFETCHES_PER_MINUTE


def test_gdpr_account_page_in_the_browser(live_server, page):
    """In Chromium: from the dashboard to the account page; a wrong password shows on its field."""
    base, _app = live_server(COOKIE_SECURE=False)
    make_clinic()
    make_patient()
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill("pat@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")
    page.get_by_role("link", name="Your account").click()
    page.wait_for_url(f"{base}/portal/account")
    assert page.get_by_role("link", name="Download your data (JSON)").is_visible()
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Delete my account").click()
    field = page.get_by_label("Your password")
    assert field.get_attribute("aria-invalid") == "true"
    assert page.locator("#password-error").inner_text() == "The password is not correct."
    field.fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/portal/login")
    assert page.get_by_text("Your account is deleted.").is_visible()
    assert Patient.objects(name="Erased patient").count() == 1


def test_1_parallel_bookings_from_one_account_cannot_outrun_the_hold_limit(live_server):
    """The hoarding replay in parallel: 12 simultaneous bookings from one account."""
    base, app = live_server(COOKIE_SECURE=False)
    make_clinic()
    paid = make_service("Physio", duration=30, price=6000)
    provider = make_provider([paid], name="Dr Busy")
    make_patient()
    session = requests.Session()
    assert session.post(f"{base}/api/auth/login", json={"email": "pat@example.com", "password": PASSWORD},
                        timeout=60).status_code == 200
    token = session.cookies.get("csrf_access_token")
    day = future_day(2)
    starts = [at(day, h, m) for h in (9, 10, 11, 13, 14, 15) for m in (0, 30)]
    statuses = concurrently(len(starts), lambda i: session.post(
        f"{base}/api/appointments", timeout=60, headers={"X-CSRF-TOKEN": token}, json={
            "service": str(paid.id), "provider": str(provider.id), "start": starts[i].isoformat()}).status_code)
    assert statuses.count(201) == 2 and statuses.count(409) == len(starts) - 2, statuses
    assert Appointment.objects(status="held").count() == 2


def test_7_create_staff_command_refuses_a_weak_password_with_the_reason(app, monkeypatch):
    runner = app.test_cli_runner()
    monkeypatch.setenv("STAFF_PASSWORD", "password123")
    weak = runner.invoke(args=["create-staff", "--email", "boss@clinic.test", "--role", "admin"])
    assert weak.exit_code != 0 and "too common" in weak.output
    monkeypatch.setenv("STAFF_PASSWORD", "boss-clinic-2026")
    personal = runner.invoke(args=["create-staff", "--email", "boss@clinic.test", "--role", "admin"])
    assert personal.exit_code != 0 and "email address or your name" in personal.output
    monkeypatch.setenv("STAFF_PASSWORD", "amber kettle orbit")
    ok = runner.invoke(args=["create-staff", "--email", "boss@clinic.test", "--role", "admin"])
    assert ok.exit_code == 0 and StaffUser.objects(email="boss@clinic.test").count() == 1
