"""One fixture per real service, started once per test session; each test gets a clean app."""

import os
import uuid

import pymongo
import pytest
import redis

from devstack.servers import start_localstripe, start_redis, start_secantus

# The shared fixtures beyond the servers live in tests/support/: signed-in clients (`patient_client`,
# `staff_client`), the clinic builder (`clinic_world`) and the fake Stripe gateway (`fake_gateway`).
pytest_plugins = ["tests.support.clients", "tests.support.world", "tests.support.fake_gateway"]

TEST_SECRETS = {
    "SECRET_KEY": "test-secret-key-0123456789abcdef",
    "JWT_SECRET_KEY": "test-jwt-secret-0123456789abcdef",
    "STRIPE_SECRET_KEY": "sk_test_clinic",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_clinic",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_clinic",
}


@pytest.fixture(scope="session")
def mongo_uri():
    """A real MongoDB-protocol server: `MONGODB_URI`, or SecantusDB in its own process."""
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    server = start_secantus(":memory:", test_commands=True)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis-protocol server: `REDIS_URL`, or the embedded Valkey that `./scripts/run` starts."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = start_redis()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def stripe_base():
    """localstripe in its own process, fresh state."""
    server = start_localstripe(from_scratch=True)
    yield server.url
    server.stop()


@pytest.fixture
def app_config(mongo_uri, redis_url, stripe_base):
    """Settings for a test app: its own database name and Redis key prefix."""
    tag = uuid.uuid4().hex[:12]
    config = dict(TEST_SECRETS)
    config.update({
        "TESTING": True,
        "MONGODB_URI": mongo_uri,
        "MONGODB_DB": f"test_{tag}",
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"test:{tag}:",
        "STRIPE_API_BASE": stripe_base,
        "COOKIE_SECURE": True,
    })
    return config


@pytest.fixture
def make_app(app_config):
    """Build an app over the test's database; drop the database and keys afterwards."""
    built = []

    def factory(**overrides):
        from clinic import create_app

        app = create_app(dict(app_config, **overrides))
        built.append(app)
        return app

    yield factory
    client = pymongo.MongoClient(app_config["MONGODB_URI"], serverSelectionTimeoutMS=3000)
    client.drop_database(app_config["MONGODB_DB"])
    client.close()
    try:
        r = redis.Redis.from_url(app_config["REDIS_URL"], socket_connect_timeout=1)
        keys = list(r.scan_iter(match=app_config["REDIS_PREFIX"] + "*", count=500))
        if keys:
            r.delete(*keys)
    except redis.RedisError:
        pass


@pytest.fixture
def app(make_app):
    """The application under test.

    No app context is kept pushed: the test client's requests must each get their own (and
    their own `g`), as real requests do. MongoEngine's connection is process-wide, so the models
    work without one.
    """
    return make_app()


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def live_server(make_app):
    """Serve a test app over a real socket in a background thread; yields its base URL."""
    import threading

    from werkzeug.serving import make_server

    from devstack.servers import free_port

    def start(port=None, **overrides):
        app = make_app(**overrides)
        port = port or free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append(server)
        return f"http://127.0.0.1:{port}", app

    started = []
    yield start
    for server in started:
        server.shutdown()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    """A fresh browser context and page; fails the test on a script error or a CSP violation."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    page.csp_errors = []
    page.script_errors = []
    page.on("console", lambda msg: page.csp_errors.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: page.script_errors.append(str(exc)))
    yield page
    context.close()
    assert not page.csp_errors, page.csp_errors
    assert not page.script_errors, page.script_errors


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory):
    """A real SMTP server (aiosmtpd in its own process) keeping what it receives in a Maildir.

    Tests point the app at it with `make_app(SMTP_URL=smtp_server.url)` and read what arrived
    with `smtp_server.messages(to=...)` (use a recipient address of the test's own).
    """
    from devstack.servers import start_smtp
    from tests.support.mail import SmtpBox

    server = start_smtp(str(tmp_path_factory.mktemp("mail")))
    yield SmtpBox(server)
    server.stop()
