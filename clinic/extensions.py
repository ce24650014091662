"""Extension objects, created unbound and attached to the app with `init_app`."""

import mongoengine
import pymongo.errors
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
import stripe
from flask import current_app, request
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from clinic.monitoring import CommandCounter
from clinic.settings import ConfigError

jwt = JWTManager()
login_manager = LoginManager()
csrf = CSRFProtect()


class Mongo:
    """The MongoEngine connection for the app; indexes are built at start, not lazily."""

    alias = "default"

    def init_app(self, app):
        """Connect MongoEngine to `MONGODB_URI` and create every model's indexes."""
        uri = app.config["MONGODB_URI"]
        # A second app in the same process (tests) replaces the first connection.
        mongoengine.disconnect(alias=self.alias)
        # Bounded waits (issue 31): `timeoutMS` (pymongo's client-side operation timeout) caps each
        # operation with its retries, so a paused MongoDB gives 503 in ~2.5 s, `/readyz` included.
        timeout_ms = int(app.config.get("MONGODB_TIMEOUT_MS") or 2500)
        kwargs = {"host": uri, "alias": self.alias, "serverSelectionTimeoutMS": min(2000, timeout_ms),
                  "connectTimeoutMS": min(2000, timeout_ms), "timeoutMS": timeout_ms, "uuidRepresentation": "standard", "tz_aware": True,
                  "event_listeners": [CommandCounter()],
                  # Names the app's connections in MongoDB's logs (and lets fault tests target them).
                  "appname": app.config.get("MONGODB_APPNAME") or "clinic"}
        if app.config.get("MONGODB_DB"):
            kwargs["db"] = app.config["MONGODB_DB"]
        try:
            mongoengine.connect(**kwargs)
            self.client().admin.command("ping")
        except pymongo.errors.ConfigurationError as exc:
            raise ConfigError(f"MONGODB_URI is malformed or incomplete: {exc}") from None
        except pymongo.errors.InvalidURI as exc:
            raise ConfigError(f"MONGODB_URI is malformed: {exc}") from None
        except pymongo.errors.PyMongoError as exc:
            raise ConfigError(f"MongoDB at MONGODB_URI is unreachable: {_first_line(exc)}") from None
        except ValueError as exc:
            raise ConfigError(f"MONGODB_URI is malformed: {exc}") from None
        from models import ensure_indexes

        ensure_indexes()
        app.extensions["mongo"] = self

    def client(self):
        """The pymongo client behind MongoEngine."""
        return mongoengine.get_connection(self.alias)

    def database(self):
        """The pymongo database behind MongoEngine."""
        return mongoengine.get_db(self.alias)


class Redis:
    """A Redis client with short timeouts and the app's key prefix."""

    def __init__(self):
        self.client = None
        self.prefix = ""

    def init_app(self, app):
        """Connect to `REDIS_URL` and check it answers."""
        url = app.config["REDIS_URL"]
        self.prefix = app.config.get("REDIS_PREFIX", "")
        try:
            # Short timeouts: a dead Redis must turn into a 503 in seconds, not hang a worker.
            self.client = redis.Redis.from_url(
                url, socket_connect_timeout=1, socket_timeout=1.5, health_check_interval=10,
                # Issue 31: a connection that died with a restarted Redis is retried once on a new
                # one (not a 503 for the first request after the restart); a timeout is not
                # retried, so a stalled Redis still answers 503 within the socket timeout.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                retry_on_error=[redis.ConnectionError],
                decode_responses=True)
            self.client.ping()
            version = self.client.info("server").get("redis_version", "0")
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL is malformed: {exc}") from None
        except redis.RedisError as exc:
            raise ConfigError(f"Redis at REDIS_URL is unreachable: {_first_line(exc)}") from None
        if _version_tuple(version) < MIN_REDIS_VERSION:
            # The throttles use Redis 7 commands (EXPIRE ... NX); an older server would fail later,
            # request by request, so refuse it at start.
            raise ConfigError(f"Redis at REDIS_URL is version {version}; the clinic needs Redis or "
                              f"Valkey {'.'.join(map(str, MIN_REDIS_VERSION))} or newer")
        app.extensions["redis"] = self

    def key(self, *parts):
        """A namespaced Redis key."""
        return self.prefix + ":".join(str(p) for p in parts)


class RateLimits:
    """flask-limiter over the app's own Redis (its connection pool, under its key prefix).

    One Limiter per app, built in `init_app`: a Limiter keeps the storage and key prefix of the
    first app it was given, and tests build many apps against different Redis servers. No limit
    applies by default; a door declares its own (e.g. the registration limit in `portal/auth.py`).
    A Redis that does not answer raises RedisError, which answers 503 (fail closed).
    """

    def init_app(self, app):
        """Attach a Limiter keyed by the client's address, sharing the app's Redis connections."""
        client = app.extensions["redis"].client
        app.extensions["rate_limits"] = Limiter(
            key_func=lambda: request.remote_addr or "unknown",
            app=app,
            storage_uri=app.config["REDIS_URL"],
            storage_options={"connection_pool": client.connection_pool,
                             "key_prefix": app.config.get("REDIS_PREFIX", "") + "limits"},
            strategy="fixed-window",  # like the counters it replaced: the window opens at the first event
            swallow_errors=False,
        )


def get_limiter():
    """The current app's flask-limiter Limiter."""
    return current_app.extensions["rate_limits"]


class Stripe:
    """The Stripe client: explicit retries and timeouts, `STRIPE_API_BASE` honoured."""

    def __init__(self):
        self.client = None

    def init_app(self, app):
        """Build a `StripeClient` from the app's settings."""
        key = app.config.get("STRIPE_SECRET_KEY") or "sk_test_unset"
        base = app.config.get("STRIPE_API_BASE")
        self.client = stripe.StripeClient(
            key,
            base_addresses={"api": base} if base else None,
            # StripeClient retries nothing and waits 80 s unless told otherwise.
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=(5, 30)),
        )
        app.extensions["stripe"] = self


MIN_REDIS_VERSION = (7, 0)


def _version_tuple(text):
    """`"7.2.4"` as `(7, 2)`; anything unreadable as `(0, 0)`."""
    try:
        major, minor = (str(text).split(".") + ["0"])[:2]
        return int(major), int(minor)
    except ValueError:
        return (0, 0)


def _first_line(exc):
    """The first line of an exception message, for one-line start-up errors."""
    return (str(exc).splitlines() or [exc.__class__.__name__])[0][:300]


mongo = Mongo()
redis_store = Redis()
rate_limits = RateLimits()
stripe_client = Stripe()


def get_redis():
    """The current app's Redis client."""
    return current_app.extensions["redis"].client


def rkey(*parts):
    """A Redis key under the current app's prefix."""
    return current_app.extensions["redis"].key(*parts)
