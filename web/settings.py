"""Every setting the application reads from the environment, in one place.

`load_settings()` reads the process environment (after a `.env` file, when one exists) and
returns a plain dict of Flask config keys. `create_app(config)` overlays a caller's dict on top,
which is how tests and the one-machine stack inject the addresses of the servers they started.
"""

import os
from datetime import timedelta
from urllib.parse import urlsplit

from dotenv import load_dotenv

# Secrets without which a production process must refuse to start.
REQUIRED_SECRETS = (
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
)
# Signing keys shorter than this are refused outside the dev stack: HMAC-SHA256 keys (sessions, JWTs,
# device cookies) should carry at least the hash's 256 bits (RFC 7518 §3.2 for HS256).
MIN_SIGNING_KEY_BYTES = 32
SIGNING_KEYS = ("SECRET_KEY", "JWT_SECRET_KEY")
PAYMENT_FLOWS = ("elements", "checkout")
# argon2-cffi profiles (argon2.profiles) a deployment may choose; CHEAPEST is for the test suite only.
ARGON2_PROFILES = ("RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY")
TEST_ARGON2_PROFILES = ("CHEAPEST",)


class ConfigError(SystemExit):
    """A configuration problem: the process exits with one clear line, not a traceback."""

    def __init__(self, message):
        super().__init__(f"clinic: configuration error: {message}")


def _flag(value, default):
    """Read a boolean environment value ("1/0", "true/false", "yes/no", "on/off")."""
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(env, name, default):
    """Read an integer environment value, naming the variable when it is malformed."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def load_settings(env=None):
    """Return the Flask config read from the environment (and `.env`)."""
    if env is None:
        # A .env in the working directory fills in what the real environment leaves unset.
        load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
        env = os.environ
    return {
        "DEV_STACK": _flag(env.get("CLINIC_DEV_STACK"), False),
        "SECRET_KEY": env.get("SECRET_KEY"),
        "JWT_SECRET_KEY": env.get("JWT_SECRET_KEY"),
        "MONGODB_URI": env.get("MONGODB_URI") or "mongodb://127.0.0.1:27017/clinic",
        "MONGODB_DB": env.get("MONGODB_DB") or None,
        "REDIS_URL": env.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        # Redis/Valkey in cluster mode (issue 30): redis-py's RedisCluster client. Also on when
        # REDIS_URL's scheme is redis+cluster:// or rediss+cluster://.
        "REDIS_CLUSTER": _flag(env.get("REDIS_CLUSTER"), False),
        # Every Redis key the app writes starts with this, so tests and tenants can share a server.
        "REDIS_PREFIX": env.get("REDIS_PREFIX", "clinic:"),
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY"),
        "STRIPE_PUBLISHABLE_KEY": env.get("STRIPE_PUBLISHABLE_KEY"),
        # A comma-separated list, so the old and new secret both verify during a rotation.
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET"),
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "PAYMENT_FLOW": (env.get("PAYMENT_FLOW") or "elements").strip().lower(),
        "COOKIE_SECURE": _flag(env.get("COOKIE_SECURE"), True),
        "HOLD_MINUTES": _int(env, "HOLD_MINUTES", 15),
        "WAITLIST_OFFER_MINUTES": _int(env, "WAITLIST_OFFER_MINUTES", 30),  # how long a waitlist offer holds its time
        # How many proxies in front of the app set X-Forwarded-For/-Proto (1 behind nginx or a load
        # balancer). Client addresses (sign-in throttling, audit) and https (HSTS, Secure cookies)
        # come from those headers only when this says the proxy is trusted.
        "TRUSTED_PROXIES": _int(env, "TRUSTED_PROXIES", 0),
        "ACCESS_TOKEN_MINUTES": _int(env, "ACCESS_TOKEN_MINUTES", 15),
        "SESSION_MAX_HOURS": _int(env, "SESSION_MAX_HOURS", 12),
        "PUBLIC_URL": env.get("PUBLIC_URL") or "http://127.0.0.1:5000",
        # Security limits (docs/security.md): staff sessions, argon2 concurrency, throttles.
        "STAFF_IDLE_MINUTES": _int(env, "STAFF_IDLE_MINUTES", 30),
        "STAFF_SESSION_HOURS": _int(env, "STAFF_SESSION_HOURS", 12),
        "ARGON2_MAX_CONCURRENT": _int(env, "ARGON2_MAX_CONCURRENT", 4),
        # argon2-cffi's parameter profile for new password hashes; only tests may pick a cheaper one.
        "ARGON2_PROFILE": env.get("ARGON2_PROFILE") or "RFC_9106_LOW_MEMORY",
        # Registrations per client address, and per email, per hour (README "Configuration" says why).
        "REGISTRATIONS_PER_HOUR": _int(env, "REGISTRATIONS_PER_HOUR", 10),
        "REGISTRATIONS_PER_EMAIL_HOUR": _int(env, "REGISTRATIONS_PER_EMAIL_HOUR", 3),
        "BOOKINGS_PER_ACCOUNT_10MIN": _int(env, "BOOKINGS_PER_ACCOUNT_10MIN", 20),
        "BOOKINGS_PER_ADDRESS_10MIN": _int(env, "BOOKINGS_PER_ADDRESS_10MIN", 60),
        # A reschedule re-sends a notice and new reminders: its own, smaller budget per patient.
        "RESCHEDULES_PER_ACCOUNT_10MIN": _int(env, "RESCHEDULES_PER_ACCOUNT_10MIN", 10),
        # Issue 31: bounded waits. Every MongoDB operation (retries included) gives up after this
        # many ms, so a stalled database answers 503 in seconds instead of hanging a worker.
        "MONGODB_TIMEOUT_MS": _int(env, "MONGODB_TIMEOUT_MS", 2500),
        # Adds X-DB-Commands (MongoDB commands per request) to every answer: tests and benchmark.
        "COUNT_DB_COMMANDS": _flag(env.get("COUNT_DB_COMMANDS"), False),
        # Outgoing email: smtp://user:pass@host:587?starttls=1 or smtps://user:pass@host:465.
        # Unset, messages wait in the outbox (the one-machine stack starts its own server).
        "SMTP_URL": env.get("SMTP_URL") or None,
        "MAIL_FROM": env.get("MAIL_FROM") or "Clinic <no-reply@clinic.localhost>",
        # Text messages (issue 29): a Twilio-compatible Messages API, https://SID:TOKEN@api.host;
        # unset, texts wait in the outbox. SMS_FROM: the sender number or id. PHONE_REGION: where
        # numbers typed without a country code are read when the clinic names no region.
        "SMS_URL": env.get("SMS_URL") or None,
        "SMS_FROM": env.get("SMS_FROM") or "",
        "PHONE_REGION": (env.get("PHONE_REGION") or "GB").upper(),
        # The worker (issue 29): how long it waits on Redis between looks at the outbox.
        "WORKER_POLL_SECONDS": _int(env, "WORKER_POLL_SECONDS", 5),
    }


def validate_settings(config):
    """Stop start-up with a message naming the variable when the configuration cannot work."""
    if not config.get("DEV_STACK") and not config.get("TESTING"):
        for name in REQUIRED_SECRETS:
            if not config.get(name):
                raise ConfigError(
                    f"{name} is not set; set it in the environment or in .env "
                    "(the one-machine stack `python -m devstack` generates dev values)"
                )
    if not config.get("DEV_STACK"):
        for name in SIGNING_KEYS:
            value = config.get(name)
            if value and len(value.encode("utf-8") if isinstance(value, str) else value) < MIN_SIGNING_KEY_BYTES:
                raise ConfigError(f"{name} is shorter than {MIN_SIGNING_KEY_BYTES} bytes; use a random value, "
                                  "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    if config.get("PAYMENT_FLOW") not in PAYMENT_FLOWS:
        raise ConfigError(f"PAYMENT_FLOW must be one of {', '.join(PAYMENT_FLOWS)}")
    uri = config.get("MONGODB_URI") or ""
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(f"MONGODB_URI must start with mongodb:// or mongodb+srv://, got {uri!r}")
    redis_scheme = urlsplit(config.get("REDIS_URL") or "").scheme
    if redis_scheme not in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"):
        raise ConfigError("REDIS_URL must start with redis://, rediss://, unix://, redis+cluster:// "
                          "or rediss+cluster://")
    if config.get("SMTP_URL") and urlsplit(config["SMTP_URL"]).scheme not in ("smtp", "smtps"):
        raise ConfigError("SMTP_URL must start with smtp:// or smtps://")
    sms = urlsplit(config.get("SMS_URL") or "")
    if config.get("SMS_URL") and (sms.scheme not in ("http", "https") or not sms.username or not sms.password):
        raise ConfigError("SMS_URL must look like https://ACCOUNT_SID:AUTH_TOKEN@api.host")
    profile = config.get("ARGON2_PROFILE") or "RFC_9106_LOW_MEMORY"
    if profile not in ARGON2_PROFILES and not (config.get("TESTING") and profile in TEST_ARGON2_PROFILES):
        raise ConfigError(f"ARGON2_PROFILE must be one of {', '.join(ARGON2_PROFILES)}")
    if config.get("HOLD_MINUTES", 15) < 1:
        raise ConfigError("HOLD_MINUTES must be at least 1")


def derived_settings(config):
    """Settings computed from the others (cookie flags, token lifetimes)."""
    secure = bool(config.get("COOKIE_SECURE", True))
    return {
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": secure,
        "JWT_TOKEN_LOCATION": ["cookies"],
        # Over HTTPS the token cookies carry the __Host- prefix: Secure, path /, no Domain, so no
        # sibling subdomain can set or shadow them. (The CSRF cookies keep their names: pages read them.)
        "JWT_ACCESS_COOKIE_NAME": "__Host-access_token" if secure else "access_token_cookie",
        "JWT_REFRESH_COOKIE_NAME": "__Host-refresh_token" if secure else "refresh_token_cookie",
        "JWT_COOKIE_SECURE": secure,
        "JWT_COOKIE_SAMESITE": "Lax",
        "JWT_COOKIE_CSRF_PROTECT": True,
        "JWT_CSRF_CHECK_FORM": True,
        # Portal forms carry Flask-WTF's `csrf_token` too; the JWT double-submit field is separate.
        "JWT_ACCESS_CSRF_FIELD_NAME": "jwt_csrf",
        "JWT_REFRESH_CSRF_FIELD_NAME": "jwt_csrf",
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=config.get("ACCESS_TOKEN_MINUTES", 15)),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(hours=config.get("SESSION_MAX_HOURS", 12)),
        # Browser-session cookies: they go when the browser closes (the JWTs inside still expire).
        "JWT_SESSION_COOKIE": True,
        # Flask refuses a session cookie signed longer ago than this (the staff absolute limit).
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=config.get("STAFF_SESSION_HOURS", 12)),
        # A body over 1 MB is refused (413) before any view reads it.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": None,
    }
