"""Rate limits ("so many per so long") on the `limits` library: the one seam both doors and the domain count through.

A `Limit` names its key family, its number (or the setting that overrides it), its window and the
sentence a refused client reads. Every limit is a moving window ("no more than N in any `seconds`",
with no burst at a window's edge), and one attempt is one atomic `hit` (a Lua script on Redis): a
burst of concurrent requests cannot all read a count under the limit. A refusal is `Throttled`, which
the doors answer with 429 in the contract's error shape and `Retry-After` (the seconds until the
oldest counted attempt leaves the window).

The limits of the app, each declared next to its rule: the booking and reschedule limits and the
registration limits (`portal/auth.py`), the calendar feed's (`portal/feeds.py`), the password-reset
limits (`models/accounts/reset.py`), the payment page's re-fetches (`models/payments/sync.py`).
What `limits` cannot express stays domain code: the sign-in throttle's lockout (device cookies,
doubling backoff, spread guessing: `models/accounts/throttle.py`).

The counters live in the storage `web.extensions` registers as `app.extensions["rate_limits"]`:
the app's Redis (its connection pool, keys under `<REDIS_PREFIX>limits:`; each command touches one
key, so a Valkey Cluster takes them as they are), or any `limits` storage URI in the
`RATE_LIMIT_STORAGE` setting (`memory://` in a test). A storage that does not answer raises its own
error (RedisError: 503, fail closed), unless the caller fails open (`portal/auth.py`).
"""

import time
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from models.errors import Throttled

DEFAULT_MESSAGE = "Too many attempts from your network. Please wait and try again."


@dataclass(frozen=True)
class Limit:
    """One limit: `amount` attempts (or the app setting `setting`, when set) in any `seconds`, per identifiers."""

    name: str
    amount: int
    seconds: int
    message: str = DEFAULT_MESSAGE
    setting: str = None

    def number(self):
        """The number of attempts allowed: the app's setting when it has one, else `amount`."""
        if self.setting:
            return int(current_app.config.get(self.setting) or self.amount)
        return self.amount

    def item(self):
        """This limit as a `limits` item (its key names the family, the number and the window)."""
        return RateLimitItemPerSecond(self.number(), self.seconds)


class RateLimiter:
    """Moving-window limits over one `limits` storage."""

    def __init__(self, storage):
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)

    @classmethod
    def from_uri(cls, uri, **options):
        """A limiter over the storage `uri` names ("memory://", "redis://…", "redis+cluster://…")."""
        return cls(storage_from_string(uri, **options))

    @staticmethod
    def _ids(limit, identifiers):
        return (limit.name, *(str(i) for i in identifiers))

    def hit(self, limit, *identifiers):
        """Count one attempt; raise Throttled (nothing counted) when the window is full."""
        if not self.spend(limit, *identifiers):
            raise Throttled(self.retry_after(limit, *identifiers), limit.message)

    def spend(self, limit, *identifiers):
        """Count one attempt when the window has room; True when it was counted (a silent limit)."""
        return self.strategy.hit(limit.item(), *self._ids(limit, identifiers))

    def check(self, limit, *identifiers):
        """Raise Throttled when the window is full, counting nothing (refuse early, count later)."""
        if not self.strategy.test(limit.item(), *self._ids(limit, identifiers)):
            raise Throttled(self.retry_after(limit, *identifiers), limit.message)

    def used(self, limit, *identifiers):
        """How many attempts the window holds now."""
        item = limit.item()
        return item.amount - self.strategy.get_window_stats(item, *self._ids(limit, identifiers)).remaining

    def retry_after(self, limit, *identifiers):
        """Whole seconds until the window has room again (at least 1)."""
        reset_at = self.strategy.get_window_stats(limit.item(), *self._ids(limit, identifiers)).reset_time
        return max(1, int(reset_at - time.time() + 0.999))

    def clear(self, limit, *identifiers):
        """Forget the window's attempts (staff lifting a limit, a test starting afresh)."""
        self.strategy.clear(limit.item(), *self._ids(limit, identifiers))


def limiter():
    """The current app's RateLimiter."""
    return current_app.extensions["rate_limits"]


def hit(limit, *identifiers):
    """Count one attempt against the current app's limiter; raise Throttled past the limit."""
    limiter().hit(limit, *identifiers)


def spend(limit, *identifiers):
    """Count one attempt when there is room; True when counted (nothing is raised)."""
    return limiter().spend(limit, *identifiers)


def check(limit, *identifiers):
    """Raise Throttled when the limit is used up, counting nothing."""
    limiter().check(limit, *identifiers)


def used(limit, *identifiers):
    """How many attempts the limit's window holds now."""
    return limiter().used(limit, *identifiers)
