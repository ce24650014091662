"""The one rate-limit seam (`models.ratelimits`, issue 24): moving windows on the `limits` library,
one atomic hit per attempt, a refusal in the contract's shape with Retry-After; tests can run it over
`memory://`; and no module counts attempts by hand beside it."""

import ast
import os
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from models.errors import Throttled
from models.ratelimits import Limit, RateLimiter
from tests.helpers import ROOT

THREE_A_MINUTE = Limit("test-three", 3, 60, "Slow down, please.")


def test_a_moving_window_refuses_the_attempt_past_the_limit_until_the_oldest_leaves():
    """Three in any minute: the fourth is refused with the seconds until the first one leaves; later
    there is room for one more, not for a fresh three (no burst at a window's edge)."""
    start = datetime(2030, 1, 7, 9, 0, tzinfo=timezone.utc)
    limiter = RateLimiter.from_uri("memory://")
    with time_machine.travel(start, tick=False) as clock:
        limiter.hit(THREE_A_MINUTE, "pat")
        clock.move_to(start + timedelta(seconds=20))
        limiter.hit(THREE_A_MINUTE, "pat")
        limiter.hit(THREE_A_MINUTE, "pat")
        with pytest.raises(Throttled) as refused:
            limiter.hit(THREE_A_MINUTE, "pat")
        assert refused.value.retry_after == 40 and refused.value.message == "Slow down, please."
        assert limiter.used(THREE_A_MINUTE, "pat") == 3  # the refused attempt was not counted
        limiter.hit(THREE_A_MINUTE, "someone else")  # a counter of its own
        clock.move_to(start + timedelta(seconds=61))
        limiter.hit(THREE_A_MINUTE, "pat")  # the first attempt left the window
        with pytest.raises(Throttled) as again:
            limiter.hit(THREE_A_MINUTE, "pat")
        assert again.value.retry_after == 19


def test_spend_is_silent_and_check_counts_nothing():
    """`spend` answers False past the limit instead of raising; `check` refuses without counting."""
    limiter = RateLimiter.from_uri("memory://")
    limiter.check(THREE_A_MINUTE, "x")
    assert limiter.used(THREE_A_MINUTE, "x") == 0
    assert [limiter.spend(THREE_A_MINUTE, "x") for _ in range(4)] == [True, True, True, False]
    with pytest.raises(Throttled):
        limiter.check(THREE_A_MINUTE, "x")


def test_a_limit_follows_its_setting(make_app):
    """A limit with a setting reads the app's number (the security review sets them low)."""
    app = make_app(BOOKINGS_PER_ACCOUNT_10MIN=2)
    from portal.auth import BOOKINGS_PER_ACCOUNT

    with app.app_context():
        assert BOOKINGS_PER_ACCOUNT.number() == 2
    assert BOOKINGS_PER_ACCOUNT.amount == 20 and BOOKINGS_PER_ACCOUNT.seconds == 600


def test_the_app_counts_in_memory_when_told_and_answers_429_in_the_contract_shape(make_app, app_config):
    """`RATE_LIMIT_STORAGE=memory://`: the registration limit refuses with 429, the contract's error
    shape and Retry-After, and nothing is written to Redis."""
    import redis

    app = make_app(fresh=True, RATE_LIMIT_STORAGE="memory://", REGISTRATIONS_PER_HOUR=1)
    client = app.test_client()

    def register(n):
        return client.post("/api/auth/register", json={"email": f"mem{n}@example.com", "password": "long enough",
                                                      "name": f"Mem {n}"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})

    assert register(0).status_code == 201
    refused = register(1)
    assert refused.status_code == 429 and 3590 <= int(refused.headers["Retry-After"]) <= 3600
    assert set(refused.get_json()["error"]) >= {"code", "message"}
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    r = redis.Redis.from_url(app_config["REDIS_URL"], decode_responses=True)
    assert not list(r.scan_iter(match=app_config["REDIS_PREFIX"] + "limits*"))


# Redis counters written by hand are the sign-in throttle's lockout (models/accounts/throttle.py,
# which `limits` cannot express) and the cache's version numbers (not a limit).
HAND_COUNTERS_ALLOWED = {os.path.join("models", "accounts", "throttle.py"), os.path.join("web", "cache.py")}


def test_no_module_counts_attempts_in_redis_by_hand():
    """No `incr`/`incrby` on Redis outside the lockout and the cache: a new limit goes through the seam."""
    found = []
    for package in ("models", "clinic", "web", "portal", "admin", "webhooks"):
        for base, _dirs, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                path = os.path.join(base, name)
                relative = os.path.relpath(path, ROOT)
                if not name.endswith(".py") or relative in HAND_COUNTERS_ALLOWED:
                    continue
                with open(path, encoding="utf-8") as handle:
                    tree = ast.parse(handle.read())
                found += [f"{relative}:{node.lineno}" for node in ast.walk(tree)
                          if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                          and node.func.attr in ("incr", "incrby", "incrbyfloat")]
    assert not found, found
