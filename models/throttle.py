"""Sign-in throttling: failure counters per account and per client address, kept in Redis.

After `account_limit` failures for one email inside the window the account is locked for a
backoff that doubles with every further failure (capped); an address is locked after
`ip_limit` failures. Unknown emails count exactly like known ones, so the answers do not reveal
which emails exist. A correct password during a lock still gets 429 (soft lockout).
"""

import hashlib

from models.accounts import normalise_email
from models.errors import Throttled, ValidationFailed


class LoginThrottle:
    """Counts sign-in failures and refuses attempts while an account or address is locked."""

    def __init__(self, redis, key, account_limit=5, ip_limit=20, window=900,
                 base_lock=30, max_lock=900):
        self.redis = redis
        self.key = key  # callable building a namespaced key from parts
        self.account_limit = account_limit
        self.ip_limit = ip_limit
        self.window = window
        self.base_lock = base_lock
        self.max_lock = max_lock

    @staticmethod
    def _account(email):
        # The same normalisation as sign-in, so look-alike spellings share one counter; hashed,
        # so Redis never holds the email itself.
        try:
            raw = normalise_email(email)
        except ValidationFailed:
            raw = (email if isinstance(email, str) else "").strip().lower()
        return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:32]

    def _keys(self, scope, email, ip):
        account, address = self._account(email), ip or "unknown"
        return (self.key("login", scope, "fail-acct", account), self.key("login", scope, "lock-acct", account),
                self.key("login", scope, "fail-ip", address), self.key("login", scope, "lock-ip", address))

    def check(self, scope, email, ip):
        """Raise Throttled while the account or the address is locked."""
        _, lock_acct, _, lock_ip = self._keys(scope, email, ip)
        pipe = self.redis.pipeline(transaction=False)
        pipe.ttl(lock_acct)
        pipe.ttl(lock_ip)
        remaining = [t for t in pipe.execute() if t and t > 0]
        if remaining:
            raise Throttled(max(remaining), "Too many sign-in attempts. Please wait and try again.")

    def failure(self, scope, email, ip):
        """Count a failed attempt; lock with backoff past the limits."""
        fail_acct, lock_acct, fail_ip, lock_ip = self._keys(scope, email, ip)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(fail_acct)
        pipe.expire(fail_acct, self.window, nx=True)
        pipe.incr(fail_ip)
        pipe.expire(fail_ip, self.window, nx=True)
        acct_count, _, ip_count, _ = pipe.execute()
        if acct_count >= self.account_limit:
            lock = min(self.base_lock * 2 ** (acct_count - self.account_limit), self.max_lock)
            self.redis.set(lock_acct, 1, ex=int(lock))
        if ip_count >= self.ip_limit:
            self.redis.set(lock_ip, 1, ex=self.max_lock)

    def success(self, scope, email, ip):
        """Clear the account's failure count after a successful sign-in."""
        fail_acct, _, _, _ = self._keys(scope, email, ip)
        self.redis.delete(fail_acct)


def rate_limit(redis, key, limit, window):
    """Count one attempt under `key`; raise Throttled past `limit` attempts in `window` seconds."""
    pipe = redis.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, window, nx=True)
    pipe.ttl(key)
    count, _, ttl = pipe.execute()
    if count > limit:
        raise Throttled(ttl if ttl and ttl > 0 else window, "Too many attempts from your network. "
                                                            "Please wait and try again.")
