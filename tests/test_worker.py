"""`flask --app wsgi worker` (issue 29): woken through Redis, it sends within seconds; two workers
racing send each message once; SMTP and the SMS provider down then back lose and double nothing;
SIGTERM stops it cleanly."""

import random
import time
from datetime import datetime, time as wall_time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from devstack.servers import free_port, start_worker
from models.accounts.patients import create_by_staff
from models.booking.create import book
from models.documents import Patient
from models.messages.documents import OutboxMessage
from models.worker import deliver_all
from tests.conftest import TEST_SECRETS
from tests.support.factories import at, daytime_zone, future_day, make_clinic, make_provider, make_service

pytestmark = pytest.mark.slow


def _worker_env(app_config, smtp_url, sms_url, poll=60):
    """The settings a worker process needs to work on this test's database and Redis prefix."""
    env = {k: v for k, v in TEST_SECRETS.items() if k != "ARGON2_PROFILE"}
    env.update(MONGODB_URI=app_config["MONGODB_URI"], MONGODB_DB=app_config["MONGODB_DB"],
               REDIS_URL=app_config["REDIS_URL"], REDIS_PREFIX=app_config["REDIS_PREFIX"],
               STRIPE_API_BASE=app_config["STRIPE_API_BASE"], SMTP_URL=smtp_url, SMS_URL=sms_url,
               SMS_FROM="+447700900000", PUBLIC_URL="http://clinic.test",
               # A long poll: only the Redis wake-up can make a message leave within seconds.
               WORKER_POLL_SECONDS=str(poll), PYTHONUNBUFFERED="1")
    return env


def _wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# Texts wait out quiet hours (21:00-08:00 on the clinic's clock), and this test runs on the real
# clock: its clinic lives in a zone where it is daytime now (`daytime_zone`).


def _patients(n, tag):
    out = []
    for i in range(n):
        phone = f"+4477009{random.randint(0, 99999):05d}"
        patient = create_by_staff(f"Worker Patient {i}", phone, email=f"{tag}{i}@example.com", invite=False)
        Patient.objects(id=patient.id).update_one(set__contact_by=["email", "sms"])
        out.append(Patient.objects(id=patient.id).get())
    return out


def test_two_workers_woken_through_redis_send_each_message_once_within_seconds(
        make_app, app_config, smtp_server, sms_standin, tmp_path):
    app = make_app(SMTP_URL=smtp_server.url, SMS_URL=sms_standin.url)
    tz = daytime_zone()
    make_clinic(tz=tz)
    service = make_service(name="Race", price=0, duration=15)
    provider = make_provider([service], hours=("08:00", "18:00"), lunch=("17:30", "17:45"))
    env = _worker_env(app_config, smtp_server.url, sms_standin.url)
    workers = [start_worker(env, log_path=str(tmp_path / f"worker{i}.log")) for i in range(2)]
    try:
        with app.app_context():
            patients = _patients(8, "race")
            # Both workers are up and waiting once each has answered a wake-up with a pass.
            _wait_until(lambda: all("worker: started" in (tmp_path / f"worker{i}.log").read_text()
                                    for i in range(2)))
            latencies = []
            day = (datetime.now(timezone.utc) + timedelta(days=3)).astimezone(ZoneInfo(tz)).date()
            nine = datetime.combine(day, wall_time(9), ZoneInfo(tz))
            for i, patient in enumerate(patients):
                committed = time.time()
                book(patient, service.id, provider.id, nine + timedelta(minutes=30 * i),
                     committed_now(), by_staff=True, pay_online=False)
                got = smtp_server.wait_for(1, to=patient.email, timeout=10)
                assert got, f"no email for {patient.email}"
                latencies.append(time.time() - committed)
            _wait_until(lambda: OutboxMessage.objects(kind="confirmed", status="sent").count() == 16)
    finally:
        for worker in workers:
            worker.stop()  # SIGTERM
    for worker in workers:
        assert worker.process.returncode == 0
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert all("worker: stopped" in log for log in logs)
    for patient in patients:
        assert len(smtp_server.messages(to=patient.email)) == 1
        assert len(sms_standin.messages(to=patient.phone)) == 1
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print("commit to SMTP accept, s:", [round(x, 2) for x in latencies])
    assert p95 < 5, latencies  # the poll is 60 s here: only the wake-up sends this fast


def committed_now():
    from models.clock import utcnow

    return utcnow()


def test_smtp_and_sms_down_then_back_send_each_message_once(make_app, smtp_server, sms_standin):
    dead_smtp, dead_sms = f"smtp://127.0.0.1:{free_port()}", f"http://AC1:tok@127.0.0.1:{free_port()}"
    app = make_app(SMTP_URL=dead_smtp, SMS_URL=dead_sms)
    make_clinic()
    service = make_service(name="Outage", price=0)
    provider = make_provider([service])
    day = future_day(3)
    with app.app_context():
        patients = _patients(3, "outage")
        noon = at(future_day(1), 12)
        for i, patient in enumerate(patients):
            book(patient, service.id, provider.id, at(day, 9 + i), noon, by_staff=True, pay_online=False)
        mail, texts = deliver_all(noon)
        assert mail.sent == [] and texts.sent == [] and mail.problems and texts.problems
        bookings_ok = OutboxMessage.objects(kind="confirmed", status="queued").count()
        assert bookings_ok == 6  # nothing lost, nothing failed
        assert "cannot reach" in OutboxMessage.objects(kind="confirmed", channel="sms",
                                                       last_error__ne="").first().last_error
        # Back: the next passes (after the texts' backoff) send each message once.
        app.config.update(SMTP_URL=smtp_server.url, SMS_URL=sms_standin.url)
        for step in (1, 2, 3):
            deliver_all(noon + timedelta(minutes=step))
    for patient in patients:
        assert len(smtp_server.messages(to=patient.email)) == 1
        assert len(sms_standin.messages(to=patient.phone)) == 1
    assert OutboxMessage.objects(kind="confirmed", status="sent").count() == 6
