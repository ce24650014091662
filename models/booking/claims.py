"""Time claims, and the one module that writes them (bookings, payments, reschedules, the waitlist
and the sweep all call it).

No double booking: every appointment claims its provider's time, buffers included, as 5-minute
`TimeClaim` units under a unique index on (provider, unit). Claims are inserted before the
appointment becomes visible; the loser of a race hits the index and gets a Conflict. An unpaid
hold's claims carry the hold's expiry: once lapsed, a new booking may take them over with a
guarded update, so an expired hold never blocks a time. There is no read-then-insert anywhere.
"""

from datetime import datetime, timedelta, timezone

import pymongo.errors
from bson import ObjectId

from models.booking.documents import ACTIVE_STATUSES, Appointment, TimeClaim
from models.booking.rules import REASONS
from models.catalog.snapshot import changed
from models.clock import as_utc as _utc
from models.errors import Conflict

UNIT = timedelta(minutes=5)


def claim_units(block_start, block_end):
    """The 5-minute units a blocked span covers."""
    units, unit = [], _floor_unit(block_start)
    while unit < block_end:
        units.append(unit)
        unit += UNIT
    return units


def _floor_unit(dt):
    dt = _utc(dt)
    return dt - timedelta(minutes=dt.minute % 5, seconds=dt.second, microseconds=dt.microsecond)


def claim_time(provider_id, appointment_id, block_start, block_end, expires_at, now, partial=False):
    """Atomically claim the provider's time for an appointment, or raise Conflict and claim nothing.

    With `partial=True` (a staff override) the units another appointment holds are left to it and
    every other unit is claimed, so the overriding appointment still blocks later bookings.
    """
    _claim(provider_id, appointment_id, block_start, block_end, expires_at, now, partial)
    changed("availability", provider=provider_id)


def _claim_docs(provider_id, appointment_id, block_start, block_end, expires_at):
    return [{"provider": provider_id, "unit": u, "appointment": appointment_id, "expires_at": expires_at}
            for u in claim_units(block_start, block_end)]


def _claim(provider_id, appointment_id, block_start, block_end, expires_at, now, partial=False):
    """claim_time without telling the caches (the caller does, once the appointment is written)."""
    docs = _claim_docs(provider_id, appointment_id, block_start, block_end, expires_at)
    if not partial:
        # All or nothing, in unit order: the first unit held for good stops the claim (see
        # claim_exact_units), so two racing claimers never both lose.
        _claim_in_order(TimeClaim._get_collection(), docs, provider_id, appointment_id, expires_at, now)
        return
    collection = TimeClaim._get_collection()
    try:
        collection.insert_many(docs, ordered=False)
        return
    except pymongo.errors.BulkWriteError as exc:
        taken = [docs[err["index"]]["unit"] for err in exc.details.get("writeErrors", []) if err.get("code") == 11000]
        others = [err for err in exc.details.get("writeErrors", []) if err.get("code") != 11000]
        if others:
            release_time(appointment_id)
            raise
    except pymongo.errors.PyMongoError:
        _give_back(appointment_id)
        raise
    # An override leaves the units others hold to them, but takes over lapsed holds and orphans.
    for unit in taken:
        _take_over(collection, provider_id, unit, appointment_id, expires_at, now)


def _give_back(owner_id):
    """Best effort after a failed command: the sweeper removes claims of appointments that never appeared."""
    try:
        release_time(owner_id)
    except pymongo.errors.PyMongoError:
        pass


def _take_over(collection, provider_id, unit, owner_id, expires_at, now):
    """Take over one taken unit when its holder lapsed (an expired hold) or died (an orphan); True when ours."""
    moved = collection.find_one_and_update(
        {"provider": provider_id, "unit": unit, "expires_at": {"$ne": None, "$lte": now}},
        {"$set": {"appointment": owner_id, "expires_at": expires_at}})
    return moved is not None or not _take_over_orphans(collection, provider_id, [unit], owner_id, expires_at, now)


def _claim_in_order(collection, docs, provider_id, owner_id, expires_at, now, give_back=None):
    """Insert claim `docs` in unit order, taking over lapsed or orphaned units; all, or none and Conflict.

    `give_back` undoes a failed claim (default: release every claim of `owner_id`); a reschedule
    claiming under the appointment's own id gives back only the units it was adding (issue 31).
    """
    undo = give_back or (lambda: release_time(owner_id))
    pending = sorted(docs, key=lambda d: d["unit"])
    while pending:
        try:
            collection.insert_many(pending, ordered=True)
            return
        except pymongo.errors.BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or errors[0].get("code") != 11000:
                undo()
                raise
            index = errors[0]["index"]
        except pymongo.errors.PyMongoError:
            # The command failed as a whole (or the connection dropped mid-way): give back what landed.
            try:
                undo()
            except pymongo.errors.PyMongoError:
                pass  # best effort: the sweep removes what is left (orphans, or an unfinished reschedule)
            raise
        if not _take_over(collection, provider_id, pending[index]["unit"], owner_id, expires_at, now):
            undo()
            raise Conflict(REASONS["busy"], code="slot_taken")
        pending = pending[index + 1:]


# A booking writes its claims, then its appointment, within one request; claims older than this
# whose appointment never appeared were left by a process that died in between, and a new booking
# may take them over. (The sweep deletes such claims later: DELETE_ORPHANS_AFTER.)
TAKE_OVER_ORPHANS_AFTER = timedelta(seconds=60)


def _take_over_orphans(collection, provider_id, units, appointment_id, expires_at, now):
    """Take over claims whose appointment was never written; return the units still held."""
    claims = list(collection.find({"provider": provider_id, "unit": {"$in": units}},
                                  {"_id": 1, "unit": 1, "appointment": 1}))
    owners = {c["appointment"] for c in claims}
    alive = {a["_id"] for a in Appointment._get_collection().find({"_id": {"$in": list(owners)}}, {"_id": 1})}
    cutoff = ObjectId.from_datetime(now - TAKE_OVER_ORPHANS_AFTER)
    held = set(units)
    for claim in claims:
        if claim["appointment"] in alive or claim["_id"] >= cutoff:
            continue
        if collection.find_one_and_update({"_id": claim["_id"], "appointment": claim["appointment"]},
                                          {"$set": {"appointment": appointment_id, "expires_at": expires_at}}):
            held.discard(claim["unit"])
    return [u for u in units if u in held]


def release_time(appointment_id, now=None, only_expiring=False):
    """Give back every unit an appointment claimed (or only its lapsing hold's units).

    A staff override that overlapped this appointment could not claim the units this one held;
    it claims them now, so the time it covers stays blocked.
    """
    collection = TimeClaim._get_collection()
    query = {"appointment": appointment_id}
    if only_expiring:
        # Claims secured by a payment (expires_at None) stay.
        query["expires_at"] = {"$ne": None}
    claims = list(collection.find(query, {"provider": 1, "unit": 1}))
    if not claims:
        return
    collection.delete_many(query)
    provider_id = claims[0]["provider"]
    changed("availability", provider=provider_id)
    first = min(c["unit"] for c in claims)
    last = max(c["unit"] for c in claims) + UNIT
    for other in Appointment.objects(provider=provider_id, override=True, status__in=ACTIVE_STATUSES,
                                     block_start__lt=last, block_end__gt=first, id__ne=appointment_id):
        claim_time(provider_id, other.id, _utc(other.block_start), _utc(other.block_end),
                   None, now or datetime.now(timezone.utc), partial=True)


def claim_exact_units(provider_id, owner_id, units, expires_at, now, give_back=None):
    """Claim exactly these units for `owner_id`, taking over lapsed holds; all or nothing.

    The units are claimed in ascending order and the first one held for good stops the claim (an
    ordered insert), as a booking's batch does: of two claimers racing for overlapping time, the
    one that gets the earliest shared unit gets them all. (An unordered insert let each take some
    units, so both failed and nobody got the time.)
    """
    if not units:
        return
    docs = [{"provider": provider_id, "unit": u, "appointment": owner_id, "expires_at": expires_at}
            for u in units]
    _claim_in_order(TimeClaim._get_collection(), docs, provider_id, owner_id, expires_at, now, give_back)
    changed("availability")


def hand_over(from_owner, to_appointment):
    """Give every unit `from_owner` claimed to `to_appointment` (a reschedule's new time)."""
    TimeClaim._get_collection().update_many({"appointment": from_owner}, {"$set": {"appointment": to_appointment}})


def drop_claims(owner, provider_id=None, units=None):
    """Delete an owner's claims (only these units of this provider when given); no cache news."""
    query = {"appointment": owner}
    if provider_id is not None:
        query["provider"] = provider_id
    if units is not None:
        query["unit"] = {"$in": list(units)}
    return TimeClaim._get_collection().delete_many(query).deleted_count


def trim_claims(appointment):
    """Give back every claim of the appointment outside its current provider and blocked span;
    how many (a reschedule cut off mid-way leaves the old time's or the new time's units, issue 31)."""
    provider_id = getattr(appointment.provider, "id", appointment.provider)
    keep = claim_units(appointment.block_start, appointment.block_end)
    collection = TimeClaim._get_collection()
    stray = {"appointment": appointment.id, "$or": [{"provider": {"$ne": provider_id}}, {"unit": {"$nin": keep}}]}
    deleted = collection.delete_many(stray).deleted_count
    if deleted:
        changed("availability")
    return deleted


def make_permanent(appointment_id):
    """A paid or confirmed appointment's claims never lapse: `expires_at` None on every one."""
    TimeClaim._get_collection().update_many({"appointment": appointment_id}, {"$set": {"expires_at": None}})


def extend_claims(appointment_id, until, live_after=None):
    """Move the lapse of an appointment's lapsing claims to `until`.

    With `live_after` only claims still live then are moved, and the answer says whether every
    claim was (a waitlist offer is accepted only while all its claims hold); else it is True.
    """
    collection = TimeClaim._get_collection()
    if live_after is None:
        collection.update_many({"appointment": appointment_id, "expires_at": {"$ne": None}},
                               {"$set": {"expires_at": until}})
        return True
    total = collection.count_documents({"appointment": appointment_id})
    extended = collection.update_many({"appointment": appointment_id, "expires_at": {"$gt": live_after}},
                                      {"$set": {"expires_at": until}}).matched_count
    # Matched, not modified: a claim already lapsing at `until` (an accepted offer keeps its
    # longer hold, issue 26) is still live and counts.
    return bool(total) and extended >= total


def secure_time(appointment, now):
    """Make the appointment's claims permanent; re-claim the time when some lapsed and went.

    Returns False when the time now belongs to someone else. Claims with `expires_at` None can
    never be taken over, so once this returns True the time is the appointment's for good.
    """
    collection = TimeClaim._get_collection()
    units = claim_units(appointment.block_start, appointment.block_end)
    make_permanent(appointment.id)
    if collection.count_documents({"appointment": appointment.id}) == len(units):
        return True
    release_time(appointment.id)
    provider_id = getattr(appointment.provider, "id", appointment.provider)
    try:
        claim_time(provider_id, appointment.id, appointment.block_start, appointment.block_end, None, now)
    except Conflict:
        return False
    return True


# Orphan claims (appointment never written) are deleted once older than this: later than a booking
# may take them over (TAKE_OVER_ORPHANS_AFTER), so the two never act on a claim at once.
DELETE_ORPHANS_AFTER = timedelta(minutes=2)
RECENT = timedelta(days=1)


def tidy_claims(now):
    """The sweep's part: delete claims left by a process that died mid-booking, and the lapsing
    claims of closed appointments; returns (claims deleted, problems to report)."""
    collection = TimeClaim._get_collection()
    deleted, problems = 0, []
    # Claims made in the last day but over two minutes ago: a pass a minute sees each of them.
    window = {"$gte": ObjectId.from_datetime(now - RECENT), "$lt": ObjectId.from_datetime(now - DELETE_ORPHANS_AFTER)}
    ids = {c["appointment"] for c in collection.find({"_id": window}, {"appointment": 1})}
    if not ids:
        return deleted, problems
    existing = {a["_id"]: a.get("status") for a in Appointment._get_collection().find(
        {"_id": {"$in": list(ids)}}, {"status": 1})}
    orphans = [i for i in ids if i not in existing]
    if orphans:
        deleted += collection.delete_many({"appointment": {"$in": orphans}, "_id": window}).deleted_count
    closed = [i for i, status in existing.items() if status in ("cancelled", "expired")]
    if closed:
        deleted += collection.delete_many(
            {"appointment": {"$in": closed}, "expires_at": {"$ne": None}}).deleted_count
        for aid in closed:
            if collection.count_documents({"appointment": aid}, limit=1):
                problems.append(f"closed appointment {aid} still holds time secured by a payment")
    return deleted, problems
