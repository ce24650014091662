"""The worker (`flask --app wsgi worker`, issue 29): sends each queued message within seconds.

Why: the sweep ran once a minute, so a reset link took up to a minute (42 s measured) and a
confirmation about as long. Now:

- Every queuing path pushes to a Redis list (`models.messages.outbox.wake`) after its MongoDB
  insert. The worker waits on that list with BLPOP; a push wakes it and it runs a delivery pass
  (email, then texts), claiming each message in MongoDB exactly as the sweep does. The outbox
  stays the record: a lost push (Redis restarted, a worker down) is caught by the next poll,
  every `WORKER_POLL_SECONDS` (5) even with no push, so reminders falling due go out too.
- Once a minute it runs the sweep's pass (`models.sweep.sweep`, under the sweep's lease, so
  several workers still run it once).
- Any number may run at once: a message is claimed by one `find_one_and_update` (status
  `queued` → `sending`, with a lease), so each is sent once.
- SIGTERM or SIGINT stops it: while waiting, at once; while sending, after the current pass.
"""

import logging
import time

from redis.exceptions import RedisError

from models.clock import utcnow
from models.messages.delivery import BATCH, deliver_due
from models.messages.outbox import wake_key
from models.messages.sms import deliver_sms_due
from models.stores import get_redis
from models.sweep import sweep

log = logging.getLogger(__name__)

SWEEP_SECONDS = 60
BLOCK_SECONDS = 1  # below the Redis client's 2 s socket timeout; also how fast a stop is noticed


def deliver_all(now=None):
    """One delivery pass over both channels; (email report, text report)."""
    now = now or utcnow()
    return deliver_due(now), deliver_sms_due(now)


class Worker:
    """The loop behind `flask --app wsgi worker`; `stop()` ends it after the current step."""

    def __init__(self, poll_seconds=5, sweep_seconds=SWEEP_SECONDS, echo=None, monotonic=time.monotonic):
        self.poll_seconds, self.sweep_seconds = poll_seconds, sweep_seconds
        self.echo = echo or (lambda line: log.info(line))
        self.monotonic = monotonic
        self.stopping = False
        self.passes = 0
        self.more = False  # the last pass stopped at its batch limit: go again at once

    def stop(self, *_):
        """Ask the loop to end (safe from a signal handler)."""
        self.stopping = True

    def _wait(self, seconds):
        """Wait up to `seconds` for a wake-up; True when one came."""
        deadline = self.monotonic() + seconds
        while not self.stopping and self.monotonic() < deadline:
            try:
                if get_redis().blpop([wake_key()], timeout=BLOCK_SECONDS) is not None:
                    # A burst of pushes needs one pass, not one each: drop the others.
                    get_redis().delete(wake_key())
                    return True
            except RedisError as exc:  # Redis down: fall back to polling the outbox
                log.warning("worker: Redis not answering (%s); polling", exc.__class__.__name__)
                time.sleep(BLOCK_SECONDS)
        return False

    def run(self):
        """Deliver, wait for a wake-up or the poll, sweep once a minute; until `stop()`."""
        next_sweep = self.monotonic()
        while not self.stopping:
            if self.monotonic() >= next_sweep:
                next_sweep = self.monotonic() + self.sweep_seconds
                self._step("sweep", lambda: sweep().lines())
            self._step("deliver", self._deliver)
            if self.more:
                continue  # a backlog: keep sending rather than wait for the next push
            self._wait(min(self.poll_seconds, max(0.0, next_sweep - self.monotonic())) or 0.01)
        self.echo("worker: stopped")

    def _deliver(self):
        self.passes += 1
        lines = []
        reports = deliver_all()
        self.more = any(len(r.sent) + len(r.dropped) + len(r.failed) >= BATCH for r in reports)
        for report in reports:
            if report.sent or report.failed or report.dropped or report.retrying or report.problems:
                lines += report.lines()
        return lines

    def _step(self, name, step):
        try:
            for line in step():
                self.echo(line)
        except Exception:  # a database hiccup: keep running, the outbox keeps the messages
            log.exception("worker: %s failed; trying again on the next pass", name)
