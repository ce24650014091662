"""The real servers, started once per test process through the run command's own stack builder.

`devstack.stack.start_stack` starts SecantusDB, the embedded Valkey, localstripe behind the
Checkout stand-in and aiosmtpd, exactly as `./scripts/run` composes them (only with throwaway
stores): a page that works here works for a newcomer. Under pytest-xdist every worker process has
its own stack, database and Redis key prefix.

Each worker builds its app once and reuses it while the settings a test asks for stay the same;
before every test the worker's collections are emptied (their indexes kept), its Redis keys deleted
and the process's caches forgotten. Measured on SecantusDB (2 cores): a new app with its indexes
built over a fresh database took 0.3–0.4 s a test; emptying the collections takes about 10 ms.
"""

import os
import uuid

import pymongo
import pytest
import redis

# The shared fixtures beyond the servers live in tests/support/: signed-in clients (`patient_client`,
# `staff_client`), the clinic builder (`clinic_world`) and the fake Stripe gateway (`fake_gateway`).
pytest_plugins = ["tests.support.clients", "tests.support.world", "tests.support.fake_gateway"]

TEST_SECRETS = {
    "SECRET_KEY": "test-secret-key-0123456789abcdef",
    "JWT_SECRET_KEY": "test-jwt-secret-0123456789abcdef",
    "STRIPE_SECRET_KEY": "sk_test_clinic",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_clinic",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_clinic",
    # argon2 at production cost takes 0.3-1 s a hash; the tests' hashes prove behaviour, not cost
    # (tests/test_foundation.py checks production's parameters).
    "ARGON2_PROFILE": "CHEAPEST",
}
# This process's name among pytest-xdist's workers ("gw0", "gw1", …), or "main" without xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_collection_modifyitems(config, items):
    """Files holding a test marked `slow` are handed out first, so both workers finish together."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: order within files is kept


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The one-machine stack for this test process: `./scripts/run`'s servers, with throwaway stores.

    `MONGODB_URI` or `REDIS_URL` in the environment replace the started SecantusDB or Valkey (to
    run the suite against real MongoDB or Redis); Stripe and SMTP are always the stack's own.
    """
    from devstack.stack import start_stack

    named = {k: os.environ[k] for k in ("MONGODB_URI", "REDIS_URL") if os.environ.get(k)}
    started = start_stack(str(tmp_path_factory.mktemp("stack")), keep=False, environ=named,
                          test_commands=True)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def mongo_uri(stack):
    """A real MongoDB-protocol server: `MONGODB_URI`, or the stack's SecantusDB."""
    return os.environ.get("MONGODB_URI") or stack.env["MONGODB_URI"]


@pytest.fixture(scope="session")
def redis_url(stack):
    """A real Redis-protocol server: `REDIS_URL`, or the embedded Valkey that `./scripts/run` starts."""
    return os.environ.get("REDIS_URL") or stack.env["REDIS_URL"]


@pytest.fixture(scope="session")
def stripe_base(stack):
    """Stripe as the app and the browser reach it on the run stack: the Checkout stand-in in front of localstripe."""
    return stack.env["STRIPE_API_BASE"]


@pytest.fixture(scope="session")
def localstripe_base(stack):
    """localstripe itself, behind the stand-in: only for tests that check the stand-in against it."""
    return stack.localstripe


@pytest.fixture(scope="session")
def worker_names(mongo_uri):
    """This process's database name and Redis key prefix, unique to the run and the worker."""
    tag = f"{WORKER}_{uuid.uuid4().hex[:8]}"
    yield f"test_{tag}", f"test:{tag}:"
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=3000)
    client.drop_database(f"test_{tag}")
    client.close()


@pytest.fixture
def app_config(mongo_uri, redis_url, stripe_base, worker_names, _clean_stores):
    """Settings for a test app: the worker's database and Redis key prefix, emptied before the test."""
    db_name, prefix = worker_names
    config = dict(TEST_SECRETS)
    config.update({
        "TESTING": True,
        "MONGODB_URI": mongo_uri,
        "MONGODB_DB": db_name,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "STRIPE_API_BASE": stripe_base,
        "COOKIE_SECURE": True,
    })
    return config


@pytest.fixture
def _clean_stores(mongo_uri, redis_url, worker_names):
    """Empty the worker's collections (indexes kept) and Redis keys, and forget cached state."""
    db_name, prefix = worker_names
    client = _mongo_client(mongo_uri)
    db = client[db_name]
    for name in db.list_collection_names():
        if not name.startswith("system."):
            db[name].delete_many({})
    try:
        r = _redis_client(redis_url)
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()
    except redis.RedisError:
        pass
    import web.cache

    web.cache.forget()


def _redis_client(url):
    """A client for the fixtures' housekeeping, as the app connects: RedisCluster when `url` names a
    cluster (`redis+cluster://`, or `REDIS_CLUSTER=1` in the environment), whose SCAN walks every
    primary and whose DELETE splits the keys by slot."""
    from web.extensions import cluster_client

    if "+cluster://" in url or os.environ.get("REDIS_CLUSTER", "").lower() in ("1", "true", "yes", "on"):
        return cluster_client(url, socket_connect_timeout=1)
    return redis.Redis.from_url(url, socket_connect_timeout=1)


_clients = {}


def _mongo_client(uri):
    """One pymongo client per server for the fixtures' own housekeeping."""
    if uri not in _clients:
        _clients[uri] = pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000)
    return _clients[uri]


class _AppCache:
    """The worker's last app, reused by the next test that asks for the same settings.

    Extensions keep process-wide state (MongoEngine's connection, the Redis and Stripe clients),
    so only the app built last is current: asking for other settings builds a new one, which
    then becomes the one kept. The config a test changed is put back before the next test.
    """

    def __init__(self):
        self.key, self.app, self.config = None, None, None

    def get(self, config, fresh=False):
        """An app for `config`, reused when the last one was built from the same settings.

        `fresh` builds one that is never reused (for a test that adds its own routes).
        """
        from clinic import create_app

        key = repr(sorted(config.items(), key=lambda kv: kv[0]))
        if key == self.key and self.app is not None and not fresh:
            self.app.config.clear()
            self.app.config.update(self.config)
            return self.app
        self.key = None  # a failing build leaves nothing to reuse
        app = create_app(dict(config))
        if not fresh:
            self.key, self.app, self.config = key, app, dict(app.config)
        return app


_apps = _AppCache()


@pytest.fixture
def make_app(app_config):
    """Build (or reuse) an app over the worker's database: `make_app(**overrides)`, `make_app(fresh=True)`."""

    def factory(fresh=False, **overrides):
        return _apps.get(dict(app_config, **overrides), fresh=fresh)

    return factory


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
def smtp_server(stack):
    """The stack's real SMTP server (aiosmtpd in its own process) keeping what it receives in a Maildir.

    Tests point the app at it with `make_app(SMTP_URL=smtp_server.url)` and read what arrived
    with `smtp_server.messages(to=...)` (use a recipient address of the test's own).
    """
    from tests.support.mail import SmtpBox

    return SmtpBox(stack.find("smtp"))


@pytest.fixture(scope="session")
def sms_standin(stack):
    """The stack's Twilio-compatible SMS stand-in (issue 29), keeping each text as a JSON file.

    Tests point the app at it with `make_app(SMS_URL=sms_standin.url)`; use phone numbers of the
    test's own to read what arrived (`sms_standin.messages(to=...)`).
    """
    from tests.support.sms import SmsBox

    return SmsBox(stack.find("sms"))
