"""Extension objects, created unbound and attached to the app with `init_app`."""

import mongoengine
import pymongo.errors
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
import stripe
from flask import current_app
from flask_jwt_extended import JWTManager
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from web.monitoring import CommandCounter
from web.settings import ConfigError

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
            kwargs.update(replica_set_options(uri))  # parses the URI: a malformed one is a ConfigError below
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


# What a replica set (or Atlas) needs, set here rather than left to the driver's defaults (docs/scaling.md,
# "Settings for more than one machine"): a claim on a time, an appointment's status, a Payment's ledger move and
# the outbox's lease are decisions other hosts act on, so each write is acknowledged by a majority
# (it survives a failover: a primary that steps down cannot take back a claim another host has seen
# refused); a write interrupted by a failover is retried once by the driver (retryable writes; every
# write of ours is idempotent at the document it guards); and every read goes to the primary, since
# our reads decide writes (is this time free, is this payment pending) and a secondary may lag.
# The URI's own `w`, `retryWrites` or `readPreference` win over these (an operator's choice).
REPLICA_SET_DEFAULTS = {"w": "majority", "retryWrites": True, "readPreference": "primary"}


def replica_set_options(uri):
    """The replica-set settings the MongoDB client gets: REPLICA_SET_DEFAULTS less those the URI names."""
    from urllib.parse import parse_qs, urlsplit

    named = {k.lower() for k in parse_qs(urlsplit(uri).query)}
    return {k: v for k, v in REPLICA_SET_DEFAULTS.items() if k.lower() not in named}


class Redis:
    """A Redis client with short timeouts and the app's key prefix."""

    def __init__(self):
        self.client = None
        self.prefix = ""
        self.url = ""
        self.cluster = False

    def init_app(self, app):
        """Connect to `REDIS_URL` (a cluster's nodes with `REDIS_CLUSTER` or `redis+cluster://`) and check it answers."""
        url = app.config["REDIS_URL"]
        self.prefix = app.config.get("REDIS_PREFIX", "")
        self.url = url
        self.cluster = is_cluster(url, app.config)
        try:
            # Short timeouts: a dead Redis must turn into a 503 in seconds, not hang a worker.
            options = {"socket_connect_timeout": 1, "socket_timeout": 1.5, "decode_responses": True}
            if self.cluster:
                self.client = cluster_client(url, **options)
                self.client.ping()
                # Every primary answers INFO; the oldest one is the cluster's version.
                infos = self.client.info("server", target_nodes=redis.RedisCluster.PRIMARIES)
                version = min((i.get("redis_version", "0") for i in infos.values()), key=_version_tuple) \
                    if isinstance(infos, dict) and infos and isinstance(next(iter(infos.values())), dict) \
                    else infos.get("redis_version", "0")
            else:
                self.client = redis.Redis.from_url(
                    url, health_check_interval=10,
                    # Issue 31: a connection that died with a restarted Redis is retried once on a new
                    # one (not a 503 for the first request after the restart); a timeout is not
                    # retried, so a stalled Redis still answers 503 within the socket timeout.
                    retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                    retry_on_error=[redis.ConnectionError],
                    **options)
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

    def tagged(self, family, *parts):
        """A key in its `family`'s hash slot: `<prefix>{<prefix><family>}:<parts>`.

        Keys a command or transaction uses together (the sign-in throttle's counters and locks,
        the cache's versions and entries) share one family, so a Redis/Valkey cluster keeps them
        in one slot, where multi-key commands are allowed. The prefix stays the key's start.
        """
        return self.prefix + "{" + self.prefix + str(family) + "}:" + ":".join(str(p) for p in parts)

    def limiter_storage(self, key_prefix):
        """The `limits` storage arguments (uri and options): this client's connections, or the same cluster's nodes."""
        if self.cluster:
            # limits' cluster storage builds its own RedisCluster client from the nodes' addresses.
            return {"uri": "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in _cluster_nodes(self.url)),
                    "key_prefix": key_prefix, "socket_connect_timeout": 1, "socket_timeout": 2}
        return {"uri": self.url, "connection_pool": self.client.connection_pool, "key_prefix": key_prefix}


def is_cluster(url, config=None):
    """True when `REDIS_URL` names a Redis/Valkey cluster (`REDIS_CLUSTER=1` or a `+cluster` scheme)."""
    return bool((config or {}).get("REDIS_CLUSTER")) or url.split("://", 1)[0].endswith("+cluster")


def _cluster_nodes(url):
    """[(host, port)] of `redis[s][+cluster]://[user:pass@]host:port[,host:port…]/…`."""
    rest = url.split("://", 1)[1]
    netloc = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.rpartition(":")
        nodes.append((host or "127.0.0.1", int(port or 6379)) if host else (part, 6379))
    return nodes


def cluster_client(url, **options):
    """redis-py's RedisCluster over the nodes `url` names (any one is enough: it finds the others).

    Multi-key commands (MGET, transactions, scripts) need their keys in one hash slot: every key
    family the app uses together carries a hash tag (`{…}`, see docs/scaling.md).
    """
    from urllib.parse import unquote, urlsplit

    scheme = url.split("://", 1)[0]
    parts = urlsplit(url.replace(scheme + "://", "redis://", 1).split(",", 1)[0])
    if parts.username or parts.password:
        options.setdefault("username", unquote(parts.username) if parts.username else None)
        options.setdefault("password", unquote(parts.password) if parts.password else None)
    if scheme.startswith("rediss"):
        options.setdefault("ssl", True)
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in _cluster_nodes(url)]
    return redis.RedisCluster(startup_nodes=nodes, **options)


class RateLimits:
    """The app's rate limiter (`models.ratelimits`, the `limits` library) over its own Redis.

    One per app, built in `init_app` (tests build many apps against different Redis servers): the
    app's connection pool, keys under `<REDIS_PREFIX>limits:`, or on a cluster the same cluster's
    nodes. The `RATE_LIMIT_STORAGE` setting names another `limits` storage (`memory://` in a test).
    No limit applies by default and nothing runs per request: each limit is counted where its rule
    is (`models.ratelimits` lists them). A Redis that does not answer raises RedisError (503).
    """

    def init_app(self, app):
        """Register the RateLimiter as `app.extensions["rate_limits"]`."""
        from models.ratelimits import RateLimiter

        uri = app.config.get("RATE_LIMIT_STORAGE")
        if uri:
            limiter = RateLimiter.from_uri(uri)
        else:
            store = app.extensions["redis"]
            limiter = RateLimiter.from_uri(**store.limiter_storage(app.config.get("REDIS_PREFIX", "") + "limits"))
        app.extensions["rate_limits"] = limiter


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


def rkey_tagged(family, *parts):
    """A Redis key under the current app's prefix in `family`'s cluster hash slot (`Redis.tagged`)."""
    return current_app.extensions["redis"].tagged(family, *parts)
