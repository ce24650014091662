"""Faults: Redis stopping mid-run, MongoDB commands failing (SecantusDB failpoints), a gunicorn
worker killed mid-request. Nothing half-written, retries succeed, recovery without a restart."""

import os
import signal
import threading
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import psutil
import pymongo
import pytest
import requests

from devstack.servers import free_port, start_redis
from models import Appointment, TimeClaim
from tests.support.factories import (
    PASSWORD,
    api_login,
    csrf_header,
    make_clinic,
    make_patient,
    make_provider,
    make_service,
)
from tests.helpers import clean_env, start_gunicorn, stop_process, wait_http
from tests.support.payments import (
    api_post,
    book_held,
    clinic_with_service,
    confirm_at_stripe,
    make_event,
    post_event,
    wait_until,
)

LONDON = ZoneInfo("Europe/London")


def at(days, hh, mm=0):
    day = (datetime.now(timezone.utc) + timedelta(days=days)).astimezone(LONDON).date()
    return datetime.combine(day, time(hh, mm), LONDON)


class FailPoint:
    """SecantusDB's configureFailPoint, scoped to the app's connections (appName "clinic")."""

    def __init__(self, uri):
        self.client = pymongo.MongoClient(uri, appname="fault-tests", serverSelectionTimeoutMS=3000)

    def fail(self, commands, mode, **data):
        self.client.admin.command("configureFailPoint", "failCommand", mode=mode,
                                  data=dict(failCommands=commands, appName="clinic", **data))

    def off(self):
        self.client.admin.command("configureFailPoint", "failCommand", mode="off")


@pytest.fixture
def failpoint(mongo_uri):
    if os.environ.get("MONGODB_URI"):
        pytest.skip("failpoints need the SecantusDB the suite starts with --enable-test-commands")
    fp = FailPoint(mongo_uri)
    yield fp
    fp.off()
    fp.client.close()


@pytest.fixture
def booking_setup(app, clinic_world, patient_client):
    world = clinic_world(services={"call": dict(name="Call", duration=15, price=0, notice=0)},
                         providers={"provider": dict(name="Dr Fault")})
    return patient_client, world["call"], world["provider"]


def post_booking(client, service, provider, start):
    return client.post("/api/appointments", headers=csrf_header(client), json={
        "service": str(service.id), "provider": str(provider.id), "start": start.isoformat()})


# Code 50 (MaxTimeMSExpired): the database gave up on the command, as an overloaded one does.
SHUTDOWN = {"errorCode": 50}


def test_claims_insert_failing_leaves_nothing_and_the_retry_books(failpoint, booking_setup):
    client, service, provider = booking_setup
    # "bulkWrite": claims, appointment and audit event go in one command on MongoDB 8.0 and later.
    failpoint.fail(["insert", "bulkWrite"], {"times": 4}, **SHUTDOWN)
    resp = post_booking(client, service, provider, at(3, 10))
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "unavailable"
    failpoint.off()
    assert Appointment.objects.count() == 0 and TimeClaim.objects.count() == 0
    retry = post_booking(client, service, provider, at(3, 10))
    assert retry.status_code == 201


def test_appointment_insert_failing_releases_the_claims(failpoint, booking_setup, monkeypatch):
    client, service, provider = booking_setup
    # One command per collection, as on servers older than MongoDB 8.0 (no client-level bulkWrite).
    monkeypatch.setattr("models.booking.create._one_batch", False)
    # Let the claims through, then fail the appointment's own insert (and pymongo's retry).
    failpoint.fail(["insert"], {"skip": 1, "times": 4}, **SHUTDOWN)
    resp = post_booking(client, service, provider, at(3, 11))
    failpoint.off()
    assert resp.status_code == 503
    assert Appointment.objects.count() == 0
    assert TimeClaim.objects.count() == 0, "claims of a booking that failed must be released"
    assert post_booking(client, service, provider, at(3, 11)).status_code == 201


def test_payment_sync_failing_midway_is_retried_by_stripe_and_lands_once(failpoint, app, stripe_base):
    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    make_patient(email="other@example.com")
    client = app.test_client()
    assert api_login(client).status_code == 200
    pi_id = api_post(client, f"/api/appointments/{appt.id}/payment").get_json()["payment_intent"]
    confirm_at_stripe(stripe_base, pi_id)
    event = make_event("payment_intent.succeeded", {"id": pi_id, "object": "payment_intent",
                                                    "status": "succeeded", "amount": 5000, "currency": "gbp"})
    # The first update while handling this delivery fails: the event must not be taken as handled.
    failpoint.fail(["update", "findAndModify"], {"times": 1}, **SHUTDOWN)
    first = post_event(app.test_client(), event)
    failpoint.off()
    assert first.status_code >= 500
    assert Appointment.objects.get(id=appt.id).status == "held"
    # Stripe delivers again: processed now, and only once.
    second = post_event(app.test_client(), event)
    assert second.status_code == 200
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    from models import Payment

    payment = Payment.objects.get(appointment=appt.id)
    assert payment.status == "succeeded" and payment.amount_refunded == 0
    assert post_event(app.test_client(), event).get_json().get("duplicate") is True


def test_webhook_whose_failure_could_not_be_recorded_is_taken_over_later(failpoint, app, stripe_base):
    from models import StripeEvent

    service, provider = clinic_with_service()
    appt = book_held(service, provider)
    client = app.test_client()
    assert api_login(client).status_code == 200
    pi_id = api_post(client, f"/api/appointments/{appt.id}/payment").get_json()["payment_intent"]
    confirm_at_stripe(stripe_base, pi_id)
    event = make_event("payment_intent.succeeded", {"id": pi_id, "object": "payment_intent"})
    failpoint.fail(["update", "findAndModify"], "alwaysOn", **SHUTDOWN)
    assert post_event(app.test_client(), event).status_code >= 500
    failpoint.off()
    # Delivered again at once, it is still "being processed": 409, so Stripe tries later.
    assert post_event(app.test_client(), event).status_code == 409
    # Later (the stuck delivery is stale), the retry takes it over and the money lands.
    StripeEvent.objects(event_id=event["id"]).update_one(
        set__received_at=datetime.now(timezone.utc) - timedelta(minutes=5))
    assert post_event(app.test_client(), event).status_code == 200
    assert Appointment.objects.get(id=appt.id).status == "confirmed"


def test_redis_stopping_mid_run_fails_closed_keeps_serving_reads_and_recovers(make_app):
    own_redis = start_redis()
    try:
        app = make_app(REDIS_URL=own_redis.url)
        make_clinic()
        service = make_service("Call", duration=15, price=0, notice=0)
        provider = make_provider([service], name="Dr Redis")
        make_patient()
        client = app.test_client()
        assert api_login(client).status_code == 200
        slots_query = {"service": str(service.id), "provider": str(provider.id), "from": at(3, 0).date().isoformat()}
        assert client.get("/api/slots", query_string=slots_query).status_code == 200

        own_redis.stop()
        # Fail closed where a revocation check or a throttle is needed...
        assert client.get("/api/me").status_code == 503
        assert api_login(app.test_client()).status_code == 503
        assert post_booking(client, service, provider, at(3, 10)).status_code == 503
        # ...and keep serving what does not need Redis.
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        slots = client.get("/api/slots", query_string=slots_query)
        assert slots.status_code == 200 and slots.get_json()
        assert client.get("/api/services").status_code == 200

        # Redis comes back on the same address: no restart of the app needed.
        own_redis = start_redis(port=own_redis.port)
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=15, interval=0.2)
        assert client.get("/api/me").status_code == 200
        assert post_booking(client, service, provider, at(3, 10)).status_code == 201
    finally:
        own_redis.stop()


@pytest.mark.slow
def test_killing_a_worker_mid_request_loses_or_duplicates_nothing(failpoint, make_app, app_config):
    from models.sweep import sweep

    app = make_app()
    make_clinic()
    service = make_service("Call", duration=15, price=0, notice=0)
    provider = make_provider([service], name="Dr Kill")
    patients = [make_patient(email=f"k{i}@example.com") for i in range(6)]
    port = free_port()
    env = clean_env(**{k: v for k, v in app_config.items() if k.isupper() and isinstance(v, str)},
                    COOKIE_SECURE="0")
    proc = start_gunicorn(env, port, workers=2)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/readyz", 200, timeout=60, process=proc)
        sessions = []
        for patient in patients:
            s = requests.Session()
            assert s.post(base + "/api/auth/login", json={"email": patient.email, "password": PASSWORD},
                          timeout=30).status_code == 200
            s.headers["X-CSRF-TOKEN"] = s.cookies.get("csrf_access_token")
            sessions.append(s)
        starts = [at(4, 9) + timedelta(minutes=15 * i) for i in range(len(sessions))]
        # Inserts hang for a while, so the bookings are mid-request when the workers die.
        failpoint.fail(["insert", "bulkWrite"], "alwaysOn", blockConnection=True, blockTimeMS=4000)
        results = [None] * len(sessions)

        def attempt(i):
            try:
                r = sessions[i].post(base + "/api/appointments", timeout=30, json={
                    "service": str(service.id), "provider": str(provider.id), "start": starts[i].isoformat()})
                results[i] = r.status_code
            except requests.RequestException:
                results[i] = "dropped"

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(sessions))]
        for t in threads:
            t.start()
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        # Each (sync) worker is mid-booking once it holds a patient's booking lock in Redis: the
        # booking takes it before its insert, which the failpoint then holds for 4 s.
        redis_keys = app.extensions["redis"]
        locks = [redis_keys.key("book-lock", patient.id) for patient in patients]
        wait_until(lambda: redis_keys.client.exists(*locks) == len(workers), timeout=20, interval=0.02)
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
        for t in threads:
            t.join(timeout=60)
        failpoint.off()
        assert "dropped" in results, results  # the kill really cut requests off mid-way
        wait_http(base + "/readyz", 200, timeout=60, process=proc)

        # Every request that was answered 201 has its appointment; nothing is duplicated.
        for i, code in enumerate(results):
            mine = Appointment.objects(patient=patients[i].id, status__in=("held", "confirmed"))
            if code == 201:
                assert mine.count() == 1
            assert mine.count() <= 1
        # The sweeper tidies claims a dying worker left without their appointment...
        with app.app_context():
            sweep(now=datetime.now(timezone.utc) + timedelta(minutes=5))
        # ...and clients retry what was dropped: each retry either books or finds it already booked.
        for i, code in enumerate(results):
            if code != 201:
                retry = sessions[i].post(base + "/api/appointments", timeout=30, json={
                    "service": str(service.id), "provider": str(provider.id), "start": starts[i].isoformat()})
                assert retry.status_code in (201, 409), retry.text
        for i, patient in enumerate(patients):
            assert Appointment.objects(patient=patient.id, status__in=("held", "confirmed")).count() == 1
        claimed = {c.appointment.id for c in TimeClaim.objects(provider=provider.id).no_dereference()}
        assert claimed == {a.id for a in Appointment.objects(provider=provider.id)}
    finally:
        failpoint.off()
        stop_process(proc)


def test_claims_left_by_a_dead_request_do_not_block_a_later_booking(booking_setup):
    from bson import ObjectId

    client, service, provider = booking_setup
    start = at(3, 10).astimezone(timezone.utc)
    # What a worker killed between its two inserts leaves: claims, and no appointment.
    old = ObjectId.from_datetime(datetime.now(timezone.utc) - timedelta(minutes=5))
    ghost = ObjectId()
    TimeClaim._get_collection().insert_many([
        {"_id": ObjectId.from_datetime(datetime.now(timezone.utc) - timedelta(minutes=5 - i)),
         "provider": provider.id, "unit": start + timedelta(minutes=5 * i), "appointment": ghost,
         "expires_at": None} for i in range(3)])
    assert old
    resp = post_booking(client, service, provider, at(3, 10))
    assert resp.status_code == 201
    owners = {c.appointment.id for c in TimeClaim.objects(provider=provider.id).no_dereference()}
    assert owners == {ObjectId(resp.get_json()["id"])}
