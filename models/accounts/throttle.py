"""Sign-in throttling kept in Redis: attempts are counted before the password is checked.

Every attempt first increments, in one MULTI transaction, the counters of its account (the
normalised email, hashed), of its client address, of the pair (account, address), and of its
device cookie when it has one. Only then is the password checked, so a burst of concurrent
guesses cannot all reach argon2: past `account_limit` attempts inside `window` the rest are
refused with 429 without hashing anything.

Lockout that an outsider cannot impose (OWASP "account lockout" with device cookies): after
`account_limit` failures the account is locked with a backoff that doubles per further failure
(capped at `max_lock`). While the failures come from one address, the lock applies to the clients
that took part in them: a client with a valid device cookie for the account (issued at an earlier
successful sign-in), or coming from an address that has no failure for this account, still gets
its password checked, and one failure puts that address in the failing set too.

Once attempts without a device cookie come from two or more addresses besides the client's own
(and none of them has since signed in), the account is under attack: the guessing is spread, so
locking the addresses that took part cannot stop it (issue 23 finding 4: 60 wrong passwords from 60
new addresses were all checked). Then the lock applies to every client without a valid device
cookie for the account; familiar devices keep signing in. Those addresses are a Redis set per
account, joined in the same transaction that counts the attempt and left at a successful sign-in;
it lives for `window`.

An address is locked after `ip_limit` attempts that failed, whatever the accounts. Unknown emails
count exactly like known ones, so the answers do not reveal which emails exist.
"""

import hashlib
from dataclasses import dataclass

from models.accounts.users import normalise_email
from models.errors import Throttled, ValidationFailed

LOCKED_MESSAGE = "Too many sign-in attempts. Please wait and try again."


@dataclass
class Attempt:
    """One counted attempt: the keys it touched and the counts it saw."""

    keys: dict
    account_count: int
    ip_count: int
    trusted: bool


class LoginThrottle:
    """Counts sign-in attempts and refuses them while an account or address is locked."""

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
    def account_id(email):
        """The hashed, normalised account name (look-alike spellings share one counter)."""
        # Hashed, so Redis never holds the email itself.
        try:
            raw = normalise_email(email)
        except ValidationFailed:
            raw = (email if isinstance(email, str) else "").strip().lower()
        return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:32]

    def _keys(self, scope, account, ip, device):
        address = ip or "unknown"
        keys = {
            "acct": self.key("login", scope, "fail-acct", account),
            "lock_acct": self.key("login", scope, "lock-acct", account),
            "pair": self.key("login", scope, "fail-pair", account, address),
            "ip": self.key("login", scope, "fail-ip", address),
            "lock_ip": self.key("login", scope, "lock-ip", address),
            "addrs": self.key("login", scope, "fail-addrs", account),
            "address": address,  # the client's address itself (a member of "addrs"), not a key
        }
        if device:
            keys["dev"] = self.key("login", scope, "fail-dev", device)
        return keys

    def begin(self, scope, email, ip, device=None):
        """Count an attempt before its password is checked; raise Throttled when it may not go on.

        `device` is the id from a valid device cookie issued to this account, or None.
        """
        keys = self._keys(scope, self.account_id(email), ip, device)
        pipe = self.redis.pipeline(transaction=True)
        pipe.ttl(keys["lock_ip"])
        pipe.get(keys["ip"])
        pipe.ttl(keys["lock_acct"])
        if device is None:
            # The address joins the account's unfamiliar addresses in the same transaction that
            # reads their number, so a burst from many new addresses at once sees itself spread
            # (counted before any password is checked, like every other counter here).
            pipe.sadd(keys["addrs"], keys["address"])
            pipe.expire(keys["addrs"], self.window, nx=True)
        pipe.scard(keys["addrs"])
        for name in ("acct", "pair") + (("dev",) if device else ()):
            # SET NX EX then INCR: the window starts with the first attempt (works on Redis 6 too).
            pipe.set(keys[name], 0, ex=self.window, nx=True)
            pipe.incr(keys[name])
        results = pipe.execute()
        ip_lock, ip_failed, acct_lock = results[0], int(results[1] or 0), results[2]
        rest = results[3:] if device is not None else results[5:]
        addresses, acct_count, pair_count = rest[0], rest[2], rest[4]
        dev_count = rest[6] if device else None
        if (ip_lock and ip_lock > 0) or ip_failed >= self.ip_limit:
            self._undo(keys, device)
            raise Throttled(ip_lock if ip_lock and ip_lock > 0 else self.max_lock, LOCKED_MESSAGE)
        trusted = device is not None and dev_count <= self.account_limit
        # A trusted device goes on to the password check whatever the account's lock. While the
        # other unfamiliar attempts come from one address, so does an address with no failure for
        # this account (a colleague, the patient at home); once they come from two or more other
        # addresses the guessing is spread, and every client without a device cookie waits the
        # lock out.
        others = addresses - (1 if device is None else 0)
        spread = others >= 2
        subject = not trusted and (pair_count > 1 or device is not None or spread)
        if subject and acct_count > self.account_limit:
            locked = acct_lock is not None and acct_lock > 0
            if not locked:
                # Past the limit with no lock in force (it lapsed, or a burst outran the first
                # failure): one attempt per backoff period claims the lock and is checked.
                locked = not self.redis.set(keys["lock_acct"], 1, ex=self._backoff(acct_count), nx=True)
                acct_lock = self.redis.ttl(keys["lock_acct"]) if locked else acct_lock
            if locked:
                self._undo(keys, device)
                raise Throttled(acct_lock if acct_lock and acct_lock > 0 else self.base_lock, LOCKED_MESSAGE)
        elif subject and acct_lock is not None and acct_lock > 0:
            self._undo(keys, device)
            raise Throttled(acct_lock, LOCKED_MESSAGE)
        return Attempt(keys=keys, account_count=acct_count, ip_count=ip_failed, trusted=trusted)

    def _backoff(self, count):
        return int(min(self.base_lock * 2 ** max(0, count - self.account_limit), self.max_lock))

    def _undo(self, keys, device):
        # A refused attempt was not checked: it does not lengthen anyone's lock.
        pipe = self.redis.pipeline(transaction=True)
        pipe.decr(keys["acct"])
        pipe.decr(keys["pair"])
        if device:
            pipe.decr(keys["dev"])
        pipe.execute()

    def _as_attempt(self, attempt, email, ip):
        if isinstance(attempt, Attempt):
            return attempt
        # Older call style failure(scope, email, ip): count it as an attempt now.
        keys = self._keys(attempt, self.account_id(email), ip, None)
        pipe = self.redis.pipeline(transaction=True)
        for name in ("acct", "pair"):
            pipe.set(keys[name], 0, ex=self.window, nx=True)
            pipe.incr(keys[name])
        counts = pipe.execute()
        return Attempt(keys=keys, account_count=counts[1], ip_count=0, trusted=False)

    def failure(self, attempt, email=None, ip=None):
        """The password was wrong: count the address, lock the account with backoff past the limit."""
        attempt = self._as_attempt(attempt, email, ip)
        keys = attempt.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys["ip"], 0, ex=self.window, nx=True)
        pipe.incr(keys["ip"])
        ip_count = pipe.execute()[1]
        if attempt.account_count >= self.account_limit:
            self.redis.set(keys["lock_acct"], 1, ex=self._backoff(attempt.account_count))
        if ip_count >= self.ip_limit:
            self.redis.set(keys["lock_ip"], 1, ex=self.max_lock)

    def success(self, attempt, email=None, ip=None):
        """The password was right: this client's failures are forgiven; the account's attempt is undone.

        The account's own count (which an outsider may be raising) is not reset by a success, so
        a correct sign-in from elsewhere does not hand the outsider a fresh set of guesses.
        """
        attempt = self._as_attempt(attempt, email, ip)
        keys = attempt.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.decr(keys["acct"])
        if attempt.trusted:
            # The device proved itself, not its address: others there (an outsider on the same
            # network) stay in the failing set.
            pipe.decr(keys["pair"])
            pipe.delete(keys["dev"])
        else:
            # This address proved itself: it no longer counts among the account's unfamiliar ones.
            pipe.delete(keys["pair"])
            pipe.srem(keys["addrs"], keys["address"])
        pipe.execute()

    # Older call style (check, then failure/success by email): kept for callers outside this area.
    def check(self, scope, email, ip):
        """Raise Throttled while the account or the address is locked (no attempt counted)."""
        keys = self._keys(scope, self.account_id(email), ip, None)
        pipe = self.redis.pipeline(transaction=False)
        pipe.ttl(keys["lock_acct"])
        pipe.ttl(keys["lock_ip"])
        remaining = [t for t in pipe.execute() if t and t > 0]
        if remaining:
            raise Throttled(max(remaining), LOCKED_MESSAGE)

