"""Caches in front of the database for the hot read path (free times), invalidated by writes.

* The catalog (clinic, services, providers, schedules) is kept per process and reloaded when a
  catalog document is saved in this process or when the catalog version in Redis moves (a save in
  another process).
* Free times are cached in Redis for `SLOTS_TTL` seconds *per provider* (and service, first date and
  number of days), each entry stamped with the two versions it was computed under: the clinic-wide
  one (bumped by service and clinic changes) and that provider's (bumped by claims and releases of
  the provider's time, and by saves of their record, weekly hours or time off). An entry counts only
  while both stamps are current, so a booking elsewhere leaves this provider's entries alone, and
  "any provider" answers are assembled from the per-provider entries. A booking bumps its
  provider's version after its appointment is written, so any read that sees the new version also
  sees the appointment: a taken time is never offered once the booking has answered. Holds that lapse
  free their time at the latest after the TTL (a stale "taken" is harmless: nobody can book it).
* When Redis does not answer, both fall back to the database: reads keep working.
"""

import logging
import threading
import time

import redis
from flask import g, has_request_context

from models import catalog as catalog_module
from models.catalog.snapshot import forget_held
from models.booking.freetimes import StoredPart

log = logging.getLogger(__name__)
SLOTS_TTL = 30
# Key lists of this many distinct free-time reads are kept per process (`Caches._keys_for`).
READ_KEYS_MEMO = 1024
# A process reloads the catalog at least this often, even if a version bump was lost.
CATALOG_MAX_AGE = 60

_lock = threading.Lock()
_local_generation = 0
_cached = {}  # (db, prefix) -> (stamp, Catalog)


class Caches:
    """The app's cache wiring: a catalog source and the version counters in Redis."""

    def __init__(self):
        self.redis = None
        self.prefix = ""
        self.db_key = ""

    def init_app(self, app):
        """Install the cached catalog source and the invalidation listener."""
        self.redis = app.extensions["redis"].client
        self.prefix = app.config.get("REDIS_PREFIX", "")
        self.db_key = f"{app.config.get('MONGODB_URI')}/{app.config.get('MONGODB_DB')}"
        self._read_keys = {}
        catalog_module.set_catalog_source(self.catalog)
        catalog_module.on_change(_on_change, with_provider=True)
        app.extensions["caches"] = self
        global _current
        _current = self

    def _key(self, *parts):
        # One hash tag for every cache key (versions and entries): they are read together in one
        # MGET, which a Redis/Valkey cluster allows only within one hash slot.
        return self.prefix + "{" + self.prefix + "cache}:" + ":".join(str(p) for p in parts)  # = Redis.tagged

    def versions(self):
        """(catalog version, clinic-wide free-time version) from Redis, or None when Redis is down.

        Read once per request: the catalog and the free-time cache both need them.
        """
        if has_request_context() and "cache_versions" in g:
            return g.cache_versions
        try:
            values = self.redis.mget(self._key("ver", "catalog"), self._key("ver", "all"))
            found = tuple(int(v or 0) for v in values)
        except redis.RedisError:
            found = None
        if has_request_context():
            g.cache_versions = found
        return found

    def read_through(self, compute):
        """`compute()` (a free-times read) in one Redis round trip when this process's catalog is current.

        The catalog this process holds is taken on trust, and its version is read in the same MGET
        as the versions and entries of the free times (`get_parts`). When that MGET shows the
        catalog moved (or Redis did not answer), nothing was computed or stored yet: the read is
        done again the ordinary way (versions first, the catalog reloaded). A refusal raised while
        trusting the catalog (a service it does not know) is checked against the versions first.
        """
        if not has_request_context() or "cache_versions" in g or self._held_catalog() is None:
            return compute()
        trusted = g.catalog_on_trust = self._held_catalog()[0][0]
        try:
            result = compute()
        except _CatalogMoved:
            result = _CatalogMoved
        except Exception:
            if not self._moved_since(trusted):
                raise
            result = _CatalogMoved
        finally:
            unverified = g.pop("catalog_on_trust", None) is not None
        if result is not _CatalogMoved and not (unverified and self._moved_since(trusted)):
            return result
        return compute()

    def _moved_since(self, trusted):
        """True when the catalog version in Redis is not `trusted` (or Redis cannot say)."""
        versions = self.versions()
        return versions is None or versions[0] != trusted

    def _held_catalog(self):
        """(stamp, Catalog) this process holds for this app, while its local generation and age allow."""
        hit = _cached.get((self.db_key, self.prefix))
        if hit and hit[0][1:] == (_local_generation, int(time.monotonic() // CATALOG_MAX_AGE)):
            return hit
        return None

    def catalog(self):
        """The catalog from the process cache when still current, else loaded from MongoDB."""
        if has_request_context() and g.get("catalog_on_trust") is not None:
            held = self._held_catalog()
            if held is not None and held[0][0] == g.catalog_on_trust:
                return held[1]
            raise _CatalogMoved()
        versions = self.versions()
        if versions is None:
            return catalog_module.load_catalog()
        stamp = (versions[0], _local_generation, int(time.monotonic() // CATALOG_MAX_AGE))
        key = (self.db_key, self.prefix)
        hit = _cached.get(key)
        if hit and hit[0] == stamp:
            return hit[1]
        loaded = catalog_module.load_catalog()
        with _lock:
            _cached[key] = (stamp, loaded)
        return loaded

    def bump(self, kind, provider=None):
        """Move the version counters after a change: the catalog's, and one provider's or everyone's."""
        if has_request_context():
            g.pop("cache_versions", None)
        try:
            pipe = self.redis.pipeline(transaction=False)
            if kind == "catalog":
                pipe.incr(self._key("ver", "catalog"))
            pipe.incr(self._key("ver", "p", provider) if provider else self._key("ver", "all"))
            pipe.execute()
        except redis.RedisError:
            # Cached free times stay until their TTL; a stale "free" time can still not be booked.
            log.warning("could not bump cache versions in Redis")

    def get_parts(self, parts, provider_ids):
        """Cached free-time entries of each provider for the request `parts`.

        One Redis round trip for the providers' versions and their entries together. Returns
        ({provider id: (starts, items)} for the current ones, {provider id: (key, stamp)} to store
        the others under), or (None, None) when Redis is down.
        """
        keys, asked, everything = self._keys_for(parts, provider_ids)
        trusted = g.get("catalog_on_trust") if has_request_context() else None
        if trusted is not None:
            # The read's one round trip: the versions ride along with the entries.
            try:
                values = self._mget(everything)
            except redis.RedisError:
                raise _CatalogMoved() from None  # the ordinary way: versions, then the database
            g.cache_versions = versions = (int(values[0] or 0), int(values[1] or 0))
            if versions[0] != trusted:
                raise _CatalogMoved()
            g.catalog_on_trust = None  # verified: nothing to check again
            values = values[2:]
            if not provider_ids:
                return None, None
        else:
            versions = self.versions()
            if versions is None or not provider_ids:
                return None, None
            try:
                values = self.redis.mget(asked)
            except redis.RedisError:
                return None, None
        n = len(provider_ids)
        found, missing = {}, {}
        for i, pid in enumerate(provider_ids):
            stamp = f"{versions[1]}.{int(values[i] or 0)}"
            entry = _decode(values[n + i], stamp)
            if entry is None:
                missing[pid] = (keys[i], stamp)
            else:
                found[pid] = entry
        return found, missing

    def _keys_for(self, parts, provider_ids):
        """(entry keys, provider versions + entries, catalog and clinic versions + both) of a read.

        Kept for the requests asked lately (bounded): the booking page asks for the same weeks
        over and over, and building the keys was a tenth of a cached read.
        """
        memo = (parts, tuple(provider_ids))
        found = self._read_keys.get(memo)
        if found is None:
            keys = [self._key("slots", *parts, pid) for pid in provider_ids]
            asked = [self._key("ver", "p", pid) for pid in provider_ids] + keys
            found = (keys, asked, [self._key("ver", "catalog"), self._key("ver", "all")] + asked)
            if len(self._read_keys) >= READ_KEYS_MEMO:
                self._read_keys.clear()
            self._read_keys[memo] = found
        return found

    def _mget(self, keys):
        """MGET `keys`: on one Redis, straight through a pooled connection of the client.

        redis-py's command path (retry wrapper, metrics hooks, options) cost as much as the round
        trip itself on the hot read; this is the same command on the same pooled connections. A
        failure (a connection Redis dropped, a timeout) closes that connection and raises: the
        caller then reads the ordinary way, whose client retries a dropped connection once.
        A cluster client (keys in one slot) goes the ordinary way.
        """
        client = self.redis
        if not isinstance(client, redis.Redis):
            return client.mget(keys)
        pool = client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_command("MGET", *keys)
            return conn.read_response()
        except BaseException:
            conn.disconnect()  # its reply may still come: never read it as another command's
            raise
        finally:
            pool.release(conn)

    def put_parts(self, missing, entries):
        """Store freshly computed entries {provider id: (starts, items)} under keys from `get_parts`."""
        if not missing:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for pid, (key, stamp) in missing.items():
                if pid in entries:
                    pipe.set(key, _encode(stamp, *entries[pid]), ex=SLOTS_TTL)
            pipe.execute()
        except redis.RedisError:
            pass


def _encode(stamp, starts, items):
    """One provider's entry: its stamp, its start instants, then one rendered JSON object a line."""
    return "\n".join([stamp, ",".join(map(str, starts))] + items)


def _decode(raw, stamp):
    """The part (a `StoredPart`: starts, items) in an entry made by `_encode`, or None when absent
    or stamped otherwise. Nothing is parsed yet: a cached answer mostly needs none of it."""
    if not raw or not raw.startswith(stamp + "\n"):
        return None
    _stamp, starts_text, *rest = raw.split("\n", 2)
    return StoredPart(starts_text, rest[0] if rest else "")


class _CatalogMoved(Exception):
    """The catalog taken on trust by `read_through` is not the current one: read again."""


_current = None
caches = Caches()


def forget():
    """Drop this process's cached catalogs (the test suite empties its database between tests)."""
    global _local_generation
    with _lock:
        _cached.clear()
        _local_generation += 1
    forget_held()  # and the clinic formatting read its locale from


def _on_change(kind, provider=None):
    global _local_generation
    if kind == "catalog":
        with _lock:
            _local_generation += 1
    if _current is not None and _current.redis is not None:
        _current.bump(kind, provider)
