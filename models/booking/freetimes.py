"""The free-times read path behind `GET /api/slots`: per-provider parts, cached, combined.

Each provider's free times for a (service, first date, number of days) are one *part*: the start
instants as integer microseconds since the epoch (UTC) and, beside them, each time already rendered
as its JSON object. Parts come from the cache when current (see web/cache.py) and the missing
ones are computed together from one database query, whatever the number of providers. An answer is
the parts' rendered objects joined into a JSON array, so a cached answer is never parsed and
re-serialised; "any provider" interleaves the parts by start time (ties by provider name).
"""

import json
from bisect import bisect_left
from datetime import date, datetime, time, timedelta, timezone
from operator import itemgetter
from zoneinfo import ZoneInfo

from models.booking.availability import EPOCH, free_starts
from models.booking.rules import load_window, schedule_days, service_rules
from models.catalog.snapshot import current_catalog

UTC = timezone.utc
_US = 1_000_000
_DAY_US = 86_400 * _US
# Offsets are looked up once per quarter hour of UTC; a quarter hour holding a clock change is
# formatted the slow, exact way.
_BUCKET_US = 900 * _US


def _us(dt):
    return (dt - EPOCH) // timedelta(microseconds=1)


def free_times(service, providers, clinic, first, days, now):
    """{provider id: sorted free start instants in epoch microseconds} on `days` local dates from `first`.

    One database query for all the providers (their appointments); schedules and time off come
    from the catalog snapshot.
    """
    zone = ZoneInfo(clinic.timezone)
    last = first + timedelta(days=days - 1)
    rules = service_rules(service, clinic)
    # Pad the span by a day each side: local dates straddle UTC days, and buffers reach outside.
    span_start = datetime.combine(first - timedelta(days=1), time(0), zone).astimezone(UTC)
    span_end = datetime.combine(last + timedelta(days=2), time(0), zone).astimezone(UTC)
    window = load_window([p.id for p in providers], span_start, span_end, now)
    catalog = current_catalog()
    # The schedules as the core's values, worked out once per catalog snapshot (which is not changed
    # in place: a save loads a new one).
    core_days = catalog.__dict__.setdefault("_core_days", {})
    found = {}
    for provider in providers:
        schedule = window.schedules.get(provider.id)
        key = (provider.id, id(schedule))
        if key not in core_days:
            core_days[key] = schedule_days(schedule)
        week, overrides = core_days[key]
        found[provider.id] = free_starts(tz=clinic.timezone, days=week, overrides=overrides,
                                         time_off=window.time_off[provider.id], busy=window.busy[provider.id],
                                         rules=rules, now=now, first=first, last=last,
                                         closures=window.closures)
    return found


_MINUTES = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(24 * 60)]


class LocalIso:
    """Formats epoch microseconds as ISO 8601 in a zone, with its offset, as datetime.isoformat() does."""

    def __init__(self, tz):
        self.zone = ZoneInfo(tz)
        self.offsets = {}
        self.dates = {}
        self.done = {}  # an answer's slots mostly end where the next one starts

    def _exact(self, us):
        return (EPOCH + timedelta(microseconds=us)).astimezone(self.zone).isoformat()

    def _offset(self, bucket):
        at = EPOCH + timedelta(microseconds=bucket * _BUCKET_US)
        begin = at.astimezone(self.zone)
        end = (at + timedelta(microseconds=_BUCKET_US - 1)).astimezone(self.zone)
        steady = begin.utcoffset() == end.utcoffset()
        offset = (begin.utcoffset() // timedelta(microseconds=1), begin.isoformat()[19:]) if steady else False
        self.offsets[bucket] = offset
        return offset

    def __call__(self, us):
        """The instant as local ISO 8601 text."""
        text = self.done.get(us)
        if text is not None:
            return text
        bucket = us // _BUCKET_US
        offset = self.offsets.get(bucket)
        if offset is None:
            offset = self._offset(bucket)
        if offset is False or us % _US:
            text = self._exact(us)
        else:
            day, rest = divmod(us + offset[0], _DAY_US)
            prefix = self.dates.get(day)
            if prefix is None:
                prefix = self.dates[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat() + "T"
            minute, second = divmod(rest // _US, 60)
            clock = _MINUTES[minute] if not second else f"{minute // 60:02d}:{minute % 60:02d}:{second:02d}"
            text = prefix + clock + offset[1]
        self.done[us] = text
        return text


def render(provider, starts, length_us, iso, tails=None):
    """Each free time of a provider as its JSON object text (the API's slot shape).

    `tails` (start -> its rendered times) is shared between the providers of one answer: they
    mostly share the booking grid, so each instant is formatted once.
    """
    head = '{"provider":"%s","provider_name":%s,"start":"' % (provider.id, json.dumps(provider.name))
    tails = {} if tails is None else tails
    for s in starts:
        if s not in tails:
            tails[s] = f'{iso(s)}","end":"{iso(s + length_us)}"}}'
    return [head + tails[s] for s in starts]


class StoredPart:
    """A part as the cache keeps it: its starts (comma-separated microseconds) and its rendered
    objects (one a line), parsed only as far as an answer needs.

    A cached answer that keeps every time (none has come inside the service's notice since the
    part was computed) is its lines joined with commas: no start parsed, no list built. Parsing
    the starts was a quarter of a cached /api/slots (issue 30).
    """

    __slots__ = ("starts_text", "items_text")

    def __init__(self, starts_text, items_text):
        self.starts_text = starts_text
        self.items_text = items_text

    def __iter__(self):
        """(starts, items), like a freshly computed part."""
        return iter((self.starts(), self.items()))

    def starts(self):
        """The start instants (epoch microseconds), in order."""
        return [int(t) for t in self.starts_text.split(",")] if self.starts_text else []

    def items(self):
        """The rendered JSON objects, in the starts' order."""
        return self.items_text.split("\n") if self.items_text else []

    def json_from(self, earliest):
        """The JSON array of the objects whose start is `earliest` or later."""
        if not self.starts_text:
            return "[]"
        comma = self.starts_text.find(",")
        if int(self.starts_text if comma < 0 else self.starts_text[:comma]) >= earliest:
            return "[" + self.items_text.replace("\n", ",") + "]"
        starts, items = self.starts(), self.items()
        return "[" + ",".join(items[bisect_left(starts, earliest):]) + "]"


def slots_json(service, providers, clinic, first, days, now, cache=None):
    """The API's JSON array of free times of the service with `providers` (sorted by name).

    Parts are taken from `cache` (web.cache.Caches) when it has them current; the rest are
    computed in one go and stored. Times that have come inside the service's notice since a part
    was computed are dropped here.
    """
    parts_key = ("v2", service.id, first.isoformat(), days)
    ids = [p.id for p in providers]
    found, missing = cache.get_parts(parts_key, ids) if cache is not None else (None, None)
    if found is None:
        found, missing = {}, None
    todo = [p for p in providers if p.id not in found]
    if todo:
        length = service_rules(service, clinic).duration // timedelta(microseconds=1)
        iso = LocalIso(clinic.timezone)
        by_id, tails = {p.id: p for p in todo}, {}
        fresh = {pid: (starts, render(by_id[pid], starts, length, iso, tails))
                 for pid, starts in free_times(service, todo, clinic, first, days, now).items()}
        found.update(fresh)
        if cache is not None and missing:
            cache.put_parts(missing, fresh)
    earliest = _us(now + timedelta(minutes=service.min_notice_minutes or 0))
    if len(ids) == 1:
        part = found[ids[0]]
        if isinstance(part, StoredPart):
            return part.json_from(earliest)
        starts, items = part
        return "[" + ",".join(items[bisect_left(starts, earliest):]) + "]"
    all_starts, all_items = [], []
    for pid in ids:  # in provider-name order; the stable sort below keeps it for equal starts
        starts, items = found[pid]
        k = bisect_left(starts, earliest)
        all_starts.extend(starts[k:])
        all_items.extend(items[k:])
    if len(all_starts) < 2:
        return "[" + ",".join(all_items) + "]"
    order = sorted(range(len(all_starts)), key=all_starts.__getitem__)
    return "[" + ",".join(itemgetter(*order)(all_items)) + "]"
