"""The payment lock and the sweep lease are `models.stores.Lease`s (redis-py Locks) with their keys, and
short: one left behind by a killed worker holds a payment back for seconds (issue 31), not half a minute."""

import pytest
import redis
from bson import ObjectId

from models.errors import Conflict


class _Payment:
    def __init__(self):
        self.id = ObjectId()


def test_a_second_payment_attempt_is_refused_at_once_and_the_lock_goes_with_the_first(app):
    from models.payments.ledger import PAYMENT_LOCK_SECONDS, _payment_lock

    payment = _Payment()
    key = f"{app.config['REDIS_PREFIX']}payment-lock:{payment.id}"
    r = redis.Redis.from_url(app.config["REDIS_URL"])
    with app.app_context():
        with _payment_lock(payment):
            assert 0 < r.pttl(key) <= PAYMENT_LOCK_SECONDS * 1000 <= 5000
            with pytest.raises(Conflict) as refused:
                with _payment_lock(payment):
                    pass
            assert refused.value.code == "payment_in_progress"
        assert not r.exists(key)
        # A lock that lapsed and was taken by another attempt is left to that attempt.
        with _payment_lock(payment):
            r.set(key, "someone else's token")
        assert r.get(key) == b"someone else's token"


def test_the_sweep_lease_lapses_after_its_length(app):
    from models.sweep import LEASE_SECONDS, Lease

    r = redis.Redis.from_url(app.config["REDIS_URL"])
    with app.app_context():
        lease = Lease()
        assert lease.acquire() and not Lease().acquire()
        assert LEASE_SECONDS * 1000 - 5000 < r.pttl(app.config["REDIS_PREFIX"] + "lease:sweep") <= LEASE_SECONDS * 1000 <= 60000
        lease.release()
        assert Lease().acquire()
