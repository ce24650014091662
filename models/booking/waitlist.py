"""The waitlist: patients ask for a service (optionally a provider) between two dates; freed times are
offered to the first patient in line, held for them with the ordinary hold mechanism.

An offer is an Appointment of the waiting patient in status `offered` (issue 24: a status of its
own, one of the booking's HOLDING_STATUSES; `booked_by=WAITLIST_OFFER` until accepted) whose time
claims lapse with the offer (`WAITLIST_OFFER_MINUTES`, default 30). While it holds, the time is busy
for everybody else (not offered, its booking hits the claims' unique index: 409), so one time is
never offered to two patients at once.

- Accepting makes the offer an ordinary booking: `confirmed` (and emailed) when free, else `held` to pay.
- An offer that lapses (or is declined by leaving the waitlist) moves `offered` -> `expired`, marks
  the entry `expired` and the time goes to the next patient in line.
- Who is offered what: entries are served first come, first served; each gets the earliest free
  time of its service (and provider, if named) inside its date range. So a time freed by a
  cancellation, a lapsed hold, a reschedule or new working hours reaches the first matching patient.
  `offer_free_times` is called right after a time is freed and by every sweep pass.
- An offer is a booking made for the patient, so it passes the patient's own rules that every
  booking passes (`models/booking/create.py`): never a time that overlaps the patient's own
  appointments, and never past the clinic's MAX_HELD / MAX_UPCOMING (an open offer counts as a
  hold). A patient whom those rules stop is skipped, and the time goes to the next in line.
  Accepting checks them again, under the door's one-booking-at-a-time lock.
- Entries: at most `MAX_ENTRIES_PER_PATIENT` open at once, and `MAX_ENTRIES_PER_WINDOW` made in
  any `ENTRY_WINDOW`, whatever became of them (booked, expired, left), so join + accept cannot be
  repeated without end. Leaving keeps the entry (hidden from the patient) for that count.
- A patient told only by text is passed over at night: texts wait out quiet hours (21:00–08:00)
  and the offer would lapse first (`notify.offer_reaches_in_time`); they are first again at 08:00.
- One entry that fails (bad data, a bug) is logged and skipped; it never stops offers to others.
- Issue 28: an entry may be a dependant's (as a booking for them); the account holder handles it.
"""

import logging
from datetime import date, timedelta

from bson import ObjectId
from mongoengine import DateField, DateTimeField, Document, ListField, ReferenceField, StringField

from models.accounts.dependants import household_ids
from models.accounts.documents import Patient
from models.audit import audited, insert_with_audit
from models.booking import status
from models.booking.claims import claim_time, extend_claims, release_time
from models.booking.create import agreed_policy, check_hold_limits, check_patient_overlap, household_live
from models.booking.documents import OFFERED, WAITLIST_OFFER, Appointment
from models.booking.rules import find_slots, service_rules
from models.catalog.documents import Provider, Service
from models.catalog.snapshot import changed, current_catalog
from models.clock import _utc, local_today, utcnow
from models.errors import Conflict, NotFound, ValidationFailed
from models.messages import notify, outbox

log = logging.getLogger(__name__)
WAITLIST_STATUSES = ("waiting", "offered", "booked", "expired")
DEFAULT_OFFER_MINUTES = 30
MAX_RANGE_DAYS = 92
MAX_ENTRIES_PER_PATIENT = 10  # open (waiting or offered) at once
# Entries made in a rolling window, whatever their status now (booked, expired, left): a booked
# entry stops being open, so the open cap alone let join + accept repeat without end.
MAX_ENTRIES_PER_WINDOW = 20
ENTRY_WINDOW = timedelta(days=30)


class WaitlistEntry(Document):
    """One patient waiting for a time of a service (optionally with one provider) between two local dates."""

    patient = ReferenceField(Patient, required=True)
    service = ReferenceField(Service, required=True)
    provider = ReferenceField(Provider)  # None: any provider who offers the service
    date_from = DateField(required=True)  # local dates in the clinic's zone, inclusive
    date_to = DateField(required=True)
    status = StringField(required=True, choices=WAITLIST_STATUSES, default="waiting")
    created_at = DateTimeField(default=utcnow)  # place in line
    updated_at = DateTimeField(default=utcnow)
    offer = ReferenceField(Appointment)  # the `offered` appointment of the current (or last) offer
    offer_expires_at = DateTimeField()
    declined = ListField(DateTimeField())  # starts offered to this entry before: never offered again
    note = StringField(default="")  # why it ended, for the patient
    left_at = DateTimeField()  # the patient left: hidden from them, still counted against the window cap
    meta = {"collection": "waitlist_entries",
            "indexes": [("status", "created_at"), ("patient", "created_at")]}


def offer_minutes():
    """How long an offer holds its time: `WAITLIST_OFFER_MINUTES` of the app, else 30."""
    try:
        from flask import current_app

        return int(current_app.config.get("WAITLIST_OFFER_MINUTES") or DEFAULT_OFFER_MINUTES)
    except RuntimeError:  # outside an app (a script): the default
        return DEFAULT_OFFER_MINUTES


def join(patient, service_id, provider_id, date_from, date_to, now, skip_free_now=False, audit=None,
         offer_now=False):
    """Put the patient in line for a service (and provider) between two local dates.

    `patient` may be a dependant (issue 28; the door checks they are on the account): the entry is
    theirs, and the entry caps count the whole household, as the hold caps do.
    `skip_free_now` (issue 26: the patient was shown the times free now and still chose to wait):
    those times are marked as seen, so only a time freed later is offered and held. Without it (the
    API) a free time is offered at once and the answer states the offer.
    `audit`, the unsaved "waitlist.join" event of the request, is written with the entry in one
    command. `offer_now=True` (a patient joining through a door) runs the follow-up here too: a
    time free already is offered at once, first in line permitting, and the entry returned states
    that offer. Without it the entry only waits for the next freed time or sweep.
    """
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    service = catalog.service(service_id)
    provider = catalog.provider_for(service, provider_id) if provider_id else None
    today = local_today(clinic.timezone, now)
    if not isinstance(date_from, date) or not isinstance(date_to, date):
        raise ValidationFailed("Dates look like 2026-12-01.", fields={"from": "invalid date"})
    if date_to < date_from:
        raise ValidationFailed("The last day comes before the first.", fields={"to": "before from"})
    if date_to < today:
        raise ValidationFailed("Those dates are in the past.", fields={"to": "past"})
    # Nothing past the service's booking horizon could ever be offered (and a far-off year once
    # overflowed the date arithmetic of every sweep's offers).
    last = last_bookable_day(service, clinic, now)
    if date_from > last:
        raise ValidationFailed(f"The first day is too far ahead: times can be booked up to {last.isoformat()}.",
                               fields={"from": "beyond the booking horizon"})
    if date_to > last:
        raise ValidationFailed(f"The last day is too far ahead: times can be booked up to {last.isoformat()}.",
                               fields={"to": "beyond the booking horizon"})
    if (date_to - max(date_from, today)).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(f"Choose at most {MAX_RANGE_DAYS} days.", fields={"to": "too long"})
    # The household's entries: adding dependants does not multiply what one account may ask for.
    household = household_ids(patient)
    if WaitlistEntry.objects(patient__in=household, status__in=("waiting", "offered"),
                             left_at=None).count() >= MAX_ENTRIES_PER_PATIENT:
        raise Conflict("You are already waiting for many times; leave one first.", code="too_many_entries")
    if WaitlistEntry.objects(patient__in=household, created_at__gt=now - ENTRY_WINDOW).count() >= MAX_ENTRIES_PER_WINDOW:
        raise Conflict(f"You have joined the waitlist {MAX_ENTRIES_PER_WINDOW} times in the last "
                       f"{ENTRY_WINDOW.days} days, the most allowed online. Please call the clinic.",
                       code="too_many_entries")
    # Issue 26: times the patient saw free and passed over are never held for them unasked.
    seen = [start for start, _end, _p in free_times(service, provider, date_from, date_to, now)] if skip_free_now else []
    entry = WaitlistEntry(id=ObjectId(), patient=patient, service=service, provider=provider, date_from=date_from,
                          date_to=date_to, created_at=now, updated_at=now, declined=seen)
    if audit is not None:
        audit.record = audit.record or f"WaitlistEntry:{entry.id}"
    insert_with_audit(entry, audit)
    if offer_now:
        time_freed(None, now)
        entry.reload()
    return entry


def free_times(service, provider, date_from, date_to, now, limit=500):
    """The times free now for a waitlist's service (and provider) between two local dates: [(start, end, provider)].

    What the waitlist page shows before a patient joins (book one instead?), and what joining
    leaves out of the offers.
    """
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    service = catalog.service(getattr(service, "id", service))
    providers = catalog.providers_offering(service)
    if provider is not None:
        providers = [p for p in providers if str(p.id) == str(getattr(provider, "id", provider))]
    first = max(date_from, local_today(clinic.timezone, now))
    last = min(date_to, last_bookable_day(service, clinic, now))
    if not providers or last < first:
        return []
    found = []
    for slot in find_slots(service, providers, clinic, first, (last - first).days + 1, now):
        found.append(slot)
        if len(found) >= limit:
            break
    return found


def last_bookable_day(service, clinic, now):
    """The last local date on which the service can be booked now (its booking horizon)."""
    return local_today(clinic.timezone, now + service_rules(service, clinic).horizon)


def entries_of(patient):
    """The waitlist entries of the patient's account (theirs and their dependants'; not those left), newest first."""
    return list(WaitlistEntry.objects(patient__in=household_ids(patient), left_at=None).order_by("-created_at"))


def get_entry(patient, entry_id):
    """One of the entries of the patient's account (theirs or a dependant's), or NotFound (also for anyone else's)."""
    entry = (WaitlistEntry.objects(id=entry_id, patient__in=household_ids(patient), left_at=None).first()
             if ObjectId.is_valid(str(entry_id)) else None)
    if entry is None:
        raise NotFound("That waitlist entry does not exist.", code="waitlist_not_found")
    return entry


def offer_is_open(entry, now):
    """True while the entry's offer still holds its time."""
    if entry.status != "offered" or entry.offer is None or entry.offer_expires_at is None:
        return False
    return _utc(entry.offer_expires_at) > now


def leave(entry, now, audit=None):
    """Leave the waitlist; an open offer is given back and goes to the next patient in line.

    The entry is kept, hidden from the patient, so it still counts against the window cap.
    `audit`, the unsaved "waitlist.leave" event, is written by the action right after the entry
    is left (a guarded update cannot share one command with an insert).
    """
    # Guarded: an offer made meanwhile is seen here (the old document comes back), or the offer's
    # own guarded update sees the entry gone and gives its time back.
    before = WaitlistEntry.objects(id=entry.id, left_at=None, status__in=("waiting", "offered")).modify(
        set__status="expired", set__left_at=now, set__updated_at=now, set__note="You left the waitlist.")
    if before is None:
        WaitlistEntry.objects(id=entry.id, left_at=None).update_one(set__left_at=now, set__updated_at=now)
    if audit is not None:
        audit.record = audit.record or f"WaitlistEntry:{entry.id}"
        audit.save()
    if before is not None and before.status == "offered" and before.offer is not None:
        _end_offer(before.offer.id, now, "declined")
        # The offer's email, if it has not left yet, must not tell them of a time they gave back.
        outbox.drop_queued(f"WaitlistEntry:{entry.id}", "waitlist_offer", "the patient left the waitlist")
        offer_free_times(now)


@audited("waitlist.accept", lambda entry, *args, **kwargs: f"WaitlistEntry:{entry.id}",
         done_record=lambda appointment: f"Appointment:{appointment.id}")
def accept(entry, now, agree_policy=False):
    """Book the offered time: confirmed when free of charge, else held for payment as usual.

    The service's no-show policy applies as to any booking (`create.agreed_policy`): a card on
    file when it asks for one (409 `card_required`), the patient's agreement (422
    `policy_not_agreed`), stored with the appointment; a "pay at the clinic" visit is confirmed.
    """
    if not offer_is_open(entry, now):
        raise Conflict("This offer is no longer open.", code="offer_closed")
    appt = Appointment.objects(id=entry.offer.id).first()
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    agreed = agreed_policy(appt.patient, catalog.service(appt.service.id), now, agree_policy)
    paid = (appt.amount or 0) > 0 and not (agreed and agreed.pay_at_clinic)
    # The patient's own rules, as for any booking: the offer itself is left out (it becomes this booking).
    live, own = household_live(appt.patient, now, exclude=appt.id)
    check_patient_overlap(own, _utc(appt.start), _utc(appt.end))
    check_hold_limits(live, clinic, paid)
    hold_expires_at = now + timedelta(minutes=clinic.hold_minutes or 15) if paid else None
    if hold_expires_at is not None and appt.hold_expires_at is not None:
        # Issue 26: accepting never shortens the hold the offer already gave the patient.
        hold_expires_at = max(hold_expires_at, _utc(appt.hold_expires_at))
    # The claims are extended first, and only while the offer still holds them.
    if not extend_claims(appt.id, hold_expires_at, live_after=now):
        raise Conflict("This offer is no longer open.", code="offer_closed")
    # The offer becomes the patient's own booking; not a new version (nothing was queued for the offer).
    moved = status.move(appt.id, "held" if paid else "confirmed", now, only_from=(OFFERED,), bump=False,
                        where={"hold_expires_at__gt": now}, set__hold_expires_at=hold_expires_at,
                        set__booked_by="waitlist", set__policy=agreed)
    if not moved:
        raise Conflict("This offer is no longer open.", code="offer_closed")
    WaitlistEntry.objects(id=entry.id, status="offered").update_one(
        set__status="booked", set__updated_at=now, set__note="You accepted the offered time.")
    changed("availability")
    status.adopt(appt, moved)
    if not paid:  # confirmed now (free, or paid at the clinic)
        outbox.appointment_confirmed(appt, now)
    entry.reload()
    return appt


def _end_offer(appointment_id, now, why):
    """Close an offer's appointment (`offered` -> `expired`) and give its time back (a guarded update)."""
    moved = status.move(appointment_id, "expired", now, only_from=(OFFERED,), bump=False,
                        set__cancel_reason=f"Waitlist offer {why}.")
    release_time(appointment_id, now=now, only_expiring=True)
    return moved


def expire_lapsed(now):
    """Close lapsed offers (the entry becomes `expired`) and entries whose dates have passed."""
    ended = 0
    for entry in WaitlistEntry.objects(status="offered"):
        appt = Appointment.objects(id=entry.offer.id).only("status").first() if entry.offer else None
        still_offered = appt is not None and appt.status == OFFERED
        if still_offered and entry.offer_expires_at and _utc(entry.offer_expires_at) > now:
            continue
        if still_offered:
            _end_offer(appt.id, now, "lapsed")
        WaitlistEntry.objects(id=entry.id, status="offered").update_one(
            set__status="expired", set__updated_at=now,
            set__note="The offered time was not accepted in time; it went to the next patient in line.")
        ended += 1
    clinic = current_catalog().clinic
    if clinic is not None:
        today = local_today(clinic.timezone, now)
        ended += WaitlistEntry.objects(status="waiting", date_to__lt=today).update(
            set__status="expired", set__updated_at=now, set__note="The dates you asked for have passed.")
    return ended


def offer_free_times(now, provider_id=None, problems=None):
    """Offer free times to waiting patients, first in line first; return the entries offered a time.

    With `provider_id` only the entries that this provider could serve are considered (the hook
    after a time of theirs was freed); the sweep passes none and considers everyone. An entry that
    fails is logged (and named in `problems`, a list, when given) and the next one is served.
    """
    catalog = current_catalog()
    clinic = catalog.clinic
    if clinic is None:
        return []
    today = local_today(clinic.timezone, now)
    offered = []
    for entry in WaitlistEntry.objects(status="waiting", left_at=None).order_by("created_at", "id").no_dereference():
        try:
            if _serve_entry(entry, catalog, clinic, today, now, provider_id):
                offered.append(entry)
        except Exception as exc:  # noqa: BLE001 — one bad entry must not stop offers to everyone behind it
            log.exception("waitlist: no offer made for entry %s", entry.id)
            if problems is not None:
                problems.append(f"waitlist entry {entry.id}: no offer made ({exc.__class__.__name__})")
    return offered


def _serve_entry(entry, catalog, clinic, today, now, provider_id):
    """Offer the entry the earliest free time its patient may have; True when one was offered."""
    try:
        service = catalog.service(entry.service.id)
    except NotFound:
        return False
    if entry.provider is not None:
        providers = [p for p in catalog.providers_offering(service) if p.id == entry.provider.id]
    else:
        providers = catalog.providers_offering(service)
    if provider_id is not None:
        providers = [p for p in providers if p.id == provider_id]
    first = max(entry.date_from, today)
    # Never past the horizon: nothing there is bookable (and entries made before join checked it
    # may name far-off years).
    last = min(entry.date_to, last_bookable_day(service, clinic, now))
    if not providers or last < first:
        return False
    # The patient's own rules, exactly as a booking applies them (an open offer is a hold).
    person = Patient.objects(id=entry.patient.id).only("id", "guardian", "has_dependants").no_dereference().first()
    if person is None:
        return False
    live, own = household_live(person, now)
    try:
        check_hold_limits(live, clinic, service.price > 0)
    except Conflict:
        return False  # at their limits: skipped, the time goes to the next in line
    if not notify.offer_reaches_in_time(person.id, now, now + timedelta(minutes=offer_minutes()), clinic.timezone):
        return False  # told only by text, at night: skipped till texts go out again, first in line then
    declined = {_utc(d) for d in entry.declined or []}
    for start, end, provider in find_slots(service, providers, clinic, first, (last - first).days + 1, now):
        if start in declined:
            continue
        try:
            check_patient_overlap(own, start, end)
        except Conflict:
            continue  # the patient is busy then: a later time, or the next in line
        if _make_offer(entry, service, provider, start, end, clinic, now):
            return True
    return False


def _make_offer(entry, service, provider, start, end, clinic, now):
    """Hold one time for the entry's patient; False when someone took it first."""
    rules = service_rules(service, clinic)
    expires = now + timedelta(minutes=offer_minutes())
    appt = Appointment(
        id=ObjectId(), patient=entry.patient.id, provider=provider.id, service=service.id, start=start, end=end,
        block_start=start - rules.buffer_before, block_end=end + rules.buffer_after, status=OFFERED,
        hold_expires_at=expires, amount=service.price, currency=service.currency, created_at=now,
        updated_at=now, booked_by=WAITLIST_OFFER)
    try:
        claim_time(provider.id, appt.id, appt.block_start, appt.block_end, expires, now)
    except Conflict:
        return False
    try:
        appt.save(force_insert=True)
    except Exception:
        release_time(appt.id)
        raise
    moved = WaitlistEntry.objects(id=entry.id, status="waiting").update_one(
        set__status="offered", set__offer=appt.id, set__offer_expires_at=expires, set__updated_at=now,
        push__declined=start, set__note="")
    if not moved:  # the patient left meanwhile: give the time back
        _end_offer(appt.id, now, "withdrawn")
        return False
    entry.reload()
    notify.waitlist_offer(entry, service, provider, start, end, now)
    return True


def time_freed(provider_id, now):
    """A provider's time was freed (cancel, lapsed hold, reschedule): offer it to the first in line.

    Never lets a failure here undo the change that freed the time: the sweep tries again.
    """
    try:
        return offer_free_times(now, provider_id=provider_id)
    except Exception:  # noqa: BLE001 — the sweep retries; the caller's change stands
        log.exception("waitlist: offering freed time of provider %s failed; the sweep will retry", provider_id)
        return []


def sweep_waitlist(now, report=None):
    """The sweep's waitlist step: close lapsed offers and passed entries, then offer free times."""
    try:
        expire_lapsed(now)
        offered = offer_free_times(now, problems=report.problems if report is not None else None)
    except Exception as exc:  # noqa: BLE001 — reported; the next pass tries again
        log.exception("waitlist sweep failed")
        if report is not None:
            report.problems.append(f"waitlist offers not made ({exc.__class__.__name__})")
        return []
    return offered


