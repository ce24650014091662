"""The domain's handle on the app's Redis store, without importing the wiring (`clinic`).

`web.extensions.Redis.init_app` registers itself as `app.extensions["redis"]`; the domain
reads it from there, so the layering contract (`.importlinter`) holds: models never import clinic.
"""

import logging
import threading
from contextlib import contextmanager

import redis
from flask import current_app
from redis.exceptions import LockError

log = logging.getLogger(__name__)


def get_redis():
    """The current app's Redis client."""
    return current_app.extensions["redis"].client


def rkey(*parts):
    """A Redis key under the current app's prefix."""
    return current_app.extensions["redis"].key(*parts)


class Lease:
    """A Redis lease (redis-py's `Lock`: SET NX with the holder's token) renewed while its holder works.

    The one shape of every lock the app takes (a patient's booking, a payment attempt, the sweep's
    pass): short, so one left behind by a killed process or kept over a Redis restart (AOF) costs
    seconds, not minutes (issue 31), and renewed at a third of its length from a thread while
    `held()` runs, so slow work keeps it. `wait` seconds: how long `acquire` waits (None: not at all).
    """

    def __init__(self, key, seconds, wait=None):
        self.seconds = seconds
        self.lock = get_redis().lock(key, timeout=seconds, blocking=wait is not None,
                                     blocking_timeout=wait)

    def acquire(self):
        """Take the lease; False when another holder keeps it (redis.RedisError when Redis is away)."""
        return bool(self.lock.acquire())

    def release(self):
        """Give the lease back, best effort: after the work is done, never an error (issue 31)."""
        try:
            self.lock.release()
        except LockError:
            pass  # it lapsed (another holder may have it now): nothing of ours to release
        except redis.RedisError as exc:
            log.warning("lease %s not released (it lapses by itself): %s", self.lock.name, exc)

    @contextmanager
    def held(self):
        """Run the block holding the (already acquired) lease, renewing it, and release it after."""
        done = threading.Event()

        def renew():
            while not done.wait(self.seconds / 3):
                try:
                    self.lock.reacquire()
                except Exception:  # lost it (lapsed) or Redis is away: nothing more to renew
                    return

        renewer = threading.Thread(target=renew, daemon=True, name="lease-renewal")
        renewer.start()
        try:
            yield self
        finally:
            done.set()
            renewer.join(timeout=2)
            self.release()
