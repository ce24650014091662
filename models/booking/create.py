"""Making a booking: the checks a new appointment passes, then its claims, the appointment and its
audit event written together (one command on MongoDB 8.0), and its confirmation queued.

No double booking: see `models/booking/claims.py` (the one writer of time claims).
"""

from dataclasses import replace
from datetime import timedelta

import pymongo.errors
from bson import ObjectId
from flask import current_app, has_app_context
from mongoengine import signals

from models import crashpoints
from models.audit import as_events, audited, event_like
from models.booking.availability import why_not_bookable
from models.booking.claims import _claim, _claim_docs, drop_claims, release_time
from models.booking.documents import ACTIVE_STATUSES, HOLDING_STATUSES, AgreedPolicy, Appointment, TimeClaim
from models.catalog.policy import policy_sentence
from models.booking.intake import check_answers
from models.booking.rules import (REASONS, _time_off, checked_start, clinic_closed, free_providers_at, is_blocking,
                                  schedule_days, service_rules)
from models.accounts.dependants import household_ids
from models.catalog.snapshot import changed, current_catalog
from models.clock import _utc, local_today
from models.errors import Conflict, ValidationFailed
from models.messages.outbox import appointment_confirmed  # confirmation, reminders: sent by the sweep
from models.messages.rendering import appointment_ics


def _provider_record(patient, service_id, provider_id, *args, **kwargs):
    # A refused booking has no appointment yet: its event is about the provider asked for.
    return f"Provider:{provider_id}"


# Audited with `audit_as`: its refusals that are conflicts (a taken time, the patient's own overlap,
# the door's one-at-a-time lock); its success event is `audit`, written with the booking itself.
@audited("appointment.book", _provider_record, on_success=False, refused_on=Conflict)
def book(patient, service_id, provider_id, start, now, hold_minutes=None, booked_by="patient",
         pay_online=True, override=False, by_staff=False, notes="", audit=None, answers=None, series=None,
         write=True, agree_policy=False):
    """Book a time: `confirmed` at once when free of charge, else `held` until the hold expires.

    Staff bookings pass `pay_online=False` (confirmed at once, paid at the desk) and may pass
    `override=True` to book over a conflict: such an appointment claims every unit of its time that
    nobody else holds (so later bookings still cannot land on it), is marked `override`, and its
    "appointment.override" event is written with the booking's own. Hours, grid, notice and horizon
    still apply.

    `by_staff=True` (any staff booking) lifts the minimum notice and the booking grid, and admits
    a walk-in that already started today; working hours, time off and the horizon still apply.
    `notes` (e.g. the override's reason) is written with the appointment itself.
    `audit`, an unsaved AuditEvent (or a list of them: the first is the booking's, others are of the
    same request, e.g. the new caller's "patient.create"), is written with the booking (a record
    left empty is the appointment) in the same database command when the server allows.
    Series (models/booking/series.py): `series` is the series' id written on the appointment, and
    `write=False` runs every check and answers the appointment unsaved, for the series to claim.
    `answers` `{question_id: value}`: the service's intake questions, checked here (422
    `answers_required` / `invalid_answer`) and stored with the appointment. `patient` may be a
    dependant (issue 28): the overlap rule is theirs alone, the hold caps count the household.

    No-show protection: a patient booking a service with a deposit or fees must have agreed
    (`agree_policy=True`, else 422 `policy_not_agreed`) and, when a fee could be charged or the
    visit is paid at the clinic, have a card on file (409 `card_required`); the policy as agreed
    (its sentence and time included) is stored with the appointment. A deposit is then what is
    paid online; a "pay at the clinic" service is confirmed at once.
    """
    start = checked_start(start)
    catalog = current_catalog()
    clinic = catalog.require_clinic()
    service = catalog.service(service_id)
    given = check_answers(service, answers)
    provider = catalog.provider_for(service, provider_id)
    rules = service_rules(service, clinic)
    week, overrides = schedule_days(catalog.schedules.get(provider.id))
    time_off = _time_off(catalog, [provider.id], start - rules.buffer_before,
                         start + rules.duration + rules.buffer_after)[provider.id]
    closed = clinic_closed(catalog, start - rules.buffer_before, start + rules.duration + rules.buffer_after)
    # Busy time is not read here: the claim below is the guard, and it cannot race.
    check_now = now
    if by_staff:
        rules = replace(rules, min_notice=timedelta(0))
        if start < now and local_today(clinic.timezone, start) == local_today(clinic.timezone, now):
            check_now = start  # a walk-in who already started today
    reason = why_not_bookable(tz=clinic.timezone, days=week, overrides=overrides, time_off=time_off,
                              busy=[], rules=rules, now=check_now, start=start, closures=closed)
    if reason == "off_grid" and by_staff:
        away = any(s < start + rules.duration + rules.buffer_after and e > start - rules.buffer_before
                   for s, e in time_off)
        # A clinic closure refuses even staff's off-grid times (the closure is the guard, not the grid).
        reason = "closed" if closed else "busy" if away else None
    if reason == "busy" and not override:
        raise Conflict("The provider is away at that time.", code="provider_away")
    if reason and reason != "busy":
        raise ValidationFailed(REASONS[reason], code=f"not_bookable_{reason}", fields={"start": reason})
    end = start + rules.duration
    # One read of the household's live appointments serves the overlap check and the hold limits.
    live, own = household_live(patient, now)
    if not override:
        check_patient_overlap(own, start, end)
    agreed = None if by_staff else agreed_policy(patient, service, now, agree_policy)
    paid = service.price > 0 and pay_online and not (agreed and agreed.pay_at_clinic)
    if not str(booked_by).startswith("staff"):
        check_hold_limits(live, clinic, paid)
    hold_minutes = hold_minutes or clinic.hold_minutes or 15
    hold_expires_at = now + timedelta(minutes=hold_minutes) if paid else None
    appointment = Appointment(
        id=ObjectId(), patient=patient, provider=provider, service=service, start=start, end=end,
        block_start=start - rules.buffer_before, block_end=end + rules.buffer_after,
        status="held" if paid else "confirmed", hold_expires_at=hold_expires_at,
        amount=service.price, currency=service.currency, created_at=now, updated_at=now,
        booked_by=booked_by, override=override, notes=notes[:2000], answers=given, series=series,
        policy=agreed)
    if not write:
        return appointment
    events = as_events(audit)
    if override and events:
        events.append(event_like(events[0], "appointment.override", record=""))  # staff's explicit override
    _write_booking(appointment, provider.id, hold_expires_at, now, override, events)
    crashpoints.reached("book.written")  # issue 31: what follows the commit must not fail the answer
    if appointment.status == "confirmed":
        appointment_confirmed(appointment, now, fresh=True)
    return appointment


def card_holder(patient):
    """Whose card on file pays for `patient`'s visits: a dependant's guardian, else the patient."""
    guardian = getattr(patient, "guardian", None)
    return guardian if guardian is not None else patient


def agreed_policy(patient, service, now, agree_policy):
    """The policy a patient agrees to by booking `service` (None when it has none), or why not yet."""
    policy = service.policy
    if not (policy.deposit or policy.needs_card):
        return None
    # A dependant's visit is charged to the account holder's card (they agreed, they pay).
    patient = card_holder(patient)
    if policy.needs_card and not getattr(patient, "card_payment_method", None):
        raise Conflict("This service needs a card on file (for its fees, or because you pay at the "
                       "clinic). Please save a card in your account, then book again.", code="card_required")
    text = policy_sentence(policy, service.currency, getattr(patient, "card_last4", None))
    if not agree_policy:
        raise ValidationFailed(f"Please agree to the clinic's policy to book: {text}",
                               code="policy_not_agreed", fields={"agree_policy": "required"})
    return AgreedPolicy(deposit=policy.deposit, late_cancel_fee=policy.late_cancel_fee,
                        no_show_fee=policy.no_show_fee, cancellation_hours=policy.cancellation_hours,
                        pay_at_clinic=policy.pay_at_clinic, text=text[:500], agreed_at=now)


def _service_record(patient, service_id, *args, **kwargs):
    # "Any clinician" names no one provider: a refusal's event is about the service asked for.
    return f"Service:{service_id}"


@audited("appointment.book", _service_record, on_success=False, refused_on=Conflict)
def book_first_free(patient, service_id, providers, start, now, audit=None, **options):
    """Book `start` with the first of `providers` (None: any who offers the service) free then, via `book`.

    One action, audited once like `book`: its refusal (409 `slot_taken` when nobody is free, or
    the last clinician's), or its success event `audit` written with the booking. Each try is a
    whole `book` with its guards; `options` are book's (hold_minutes, booked_by, pay_online …).
    """
    start = checked_start(start)
    catalog = current_catalog()
    service = catalog.service(service_id)
    candidates = free_providers_at(service, start, now, providers, catalog.require_clinic())
    events = as_events(audit)
    records = [event.record for event in events]

    def attempt(provider):
        for event, record in zip(events, records):
            event.record = record  # a lost try named its own appointment; the next names its own
        return book(patient, service_id, str(provider.id), start, now, audit=events, **options)

    return first_free(candidates, attempt)


def first_free(candidates, attempt):
    """`attempt(candidate)` for each in turn until one is not taken; only 409 `slot_taken` moves on."""
    # Shared by "any clinician" booking (above) and reschedule's first free clinician: another
    # refusal (the patient's own overlap, a hold limit) would be the same with every clinician.
    if not candidates:
        raise Conflict("That time is no longer free. Please choose another.", code="slot_taken")
    for n, candidate in enumerate(candidates):
        try:
            return attempt(candidate)
        except Conflict as exc:
            if exc.code != "slot_taken" or n == len(candidates) - 1:
                raise


# The patient's own rules, shared by every way an appointment is made or moved for a patient: a
# booking (here), a waitlist offer and its acceptance (waitlist.py), a reschedule (reschedule.py).

def live_appointments(patient_id, now, exclude=None):
    """The patient's appointments that hold their time now (open waitlist offers included), one read.

    `exclude` leaves one appointment out: the one being moved, or the offer being accepted.
    `patient_id` may be a list of ids (a household: the account holder and their dependants).
    """
    if isinstance(patient_id, (list, tuple)):
        query = Appointment.objects(patient__in=list(patient_id), status__in=ACTIVE_STATUSES, end__gt=now)
    else:
        query = Appointment.objects(patient=patient_id, status__in=ACTIVE_STATUSES, end__gt=now)
    if exclude is not None:
        query = query.filter(id__ne=exclude)
    return [a for a in query.only("status", "hold_expires_at", "start", "end", "patient", "series").no_dereference()
            if is_blocking(a, now)]


def household_live(patient, now, exclude=None):
    """One read for the patient's own rules: (the household's live appointments, the person's own).

    Issue 28: the hold caps count the whole household (the account holder and their dependants),
    the overlap rule is per person (a parent and a child may be seen at once by two clinicians).
    `patient` is a Patient document (its `guardian` and `has_dependants` say who the household is).
    """
    live = live_appointments(household_ids(patient), now, exclude=exclude)
    return live, [a for a in live if _patient_id(a) == patient.id]


def _patient_id(appointment):
    return getattr(appointment.patient, "id", appointment.patient)


def check_patient_overlap(live, start, end):
    """Refuse (409 patient_overlap) a time that overlaps one of the patient's live appointments."""
    if any(_utc(a.start) < end and _utc(a.end) > start for a in live):
        raise Conflict("You already have an appointment at that time.", code="patient_overlap")


def check_hold_limits(live, clinic, creates_hold):
    """Refuse (409 too_many_holds) past the clinic's MAX_HELD unpaid holds or MAX_UPCOMING appointments."""
    max_held, max_upcoming = clinic.max_held or 2, clinic.max_upcoming or 6
    # A series (models/booking/series.py) counts as one hold and one upcoming booking.
    live = list({getattr(a, "series", None) or a.id: a for a in live}.values())
    # An open waitlist offer counts as a hold (HOLDING_STATUSES): accepting it makes one.
    if creates_hold and sum(1 for a in live if a.status in HOLDING_STATUSES) >= max_held:
        raise Conflict(f"You already have {max_held} bookings waiting for payment. Pay for or cancel one "
                       "before booking another.", code="too_many_holds")
    if len(live) >= max_upcoming:
        raise Conflict(f"You already have {max_upcoming} upcoming appointments, the most that can be booked "
                       "online. Please call the clinic to book more.", code="too_many_holds")


# MongoDB 8.0's client-level bulkWrite lets the claims, the appointment and its audit event go in one
# ordered command; False once the server turned out older (then one command each).
_one_batch = True


def _write_booking(appointment, provider_id, expires_at, now, override, events):
    """Write a booking's claims, then the appointment, then its audit events; tell the caches last.

    The caches hear of it only once the appointment is written, so a free-time read that sees the
    new version also sees the appointment. Raises Conflict (nothing written) when the time is taken.
    """
    global _one_batch
    for event in events:
        event.record = event.record or f"Appointment:{appointment.id}"
    done = False
    if _one_batch and not override:
        try:
            done = _write_in_one_batch(appointment, provider_id, expires_at, events)
        except pymongo.errors.InvalidOperation:  # the server is older than MongoDB 8.0
            _one_batch = False
    if not done:
        # Some unit is claimed already (perhaps by a lapsed hold, which may be taken over) or the
        # server cannot batch across collections: claim with takeovers, then write the rest.
        _claim(provider_id, appointment.id, appointment.block_start, appointment.block_end,
               expires_at, now, partial=override)
        try:
            appointment.save(force_insert=True)
        except Exception:
            release_time(appointment.id)
            raise
        for event in events:
            event.save()
    changed("availability", provider=provider_id)


def _write_in_one_batch(appointment, provider_id, expires_at, events):
    """One ordered bulkWrite: claims, appointment, audit events. True when written; False when a unit was
    taken (whatever landed is given back); raises on other failures, leaving nothing behind."""
    # Written without save(), so MongoEngine's save signals are sent here, as save() would.
    signals.pre_save.send(Appointment, document=appointment)
    appointment.validate()
    db = Appointment._get_db()
    claims_ns = f"{db.name}.{TimeClaim._get_collection_name()}"
    docs = _claim_docs(provider_id, appointment.id, appointment.block_start, appointment.block_end, expires_at)
    ops = [pymongo.InsertOne(d, namespace=claims_ns) for d in docs]
    ops.append(pymongo.InsertOne(appointment.to_mongo(), namespace=f"{db.name}.{Appointment._get_collection_name()}"))
    for event in events:
        event.id = event.id or ObjectId()
        event.validate()
        ops.append(pymongo.InsertOne(event.to_mongo(), namespace=f"{db.name}.{type(event)._get_collection_name()}"))
    try:
        db.client.bulk_write(ops, ordered=True)
    except pymongo.errors.ClientBulkWriteException as exc:
        first = min(exc.write_errors or [], key=lambda e: e["idx"], default=None)
        failed = first["idx"] if first else None
        first_event = len(ops) - len(events)
        if events and failed is not None and failed >= first_event and exc.error is None:
            # Only an audit event failed: the booking stands; write the events that did not land alone.
            _mark_written(appointment)
            signals.post_save.send(Appointment, document=appointment, created=True)
            for event in events[failed - first_event:]:
                event.save()
            return True
        _undo_batch(appointment)
        if failed is not None and failed < len(docs) and exc.error is None and first.get("code") == 11000:
            return False
        raise
    except pymongo.errors.InvalidOperation:
        raise  # nothing was sent
    except pymongo.errors.PyMongoError:
        _undo_batch(appointment)
        raise
    _mark_written(appointment)
    signals.post_save.send(Appointment, document=appointment, created=True)
    for event in events:
        _mark_written(event)
        signals.post_save.send(type(event), document=event, created=True)
    return True


def _undo_batch(appointment):
    """Best effort: remove whatever part of a failed batch landed (the sweeper covers the rest)."""
    try:
        drop_claims(appointment.id)
        Appointment._get_collection().delete_one({"_id": appointment.id})
    except pymongo.errors.PyMongoError:
        pass


def _mark_written(document):
    """Let a document inserted outside save() behave as saved (later saves update it)."""
    document._created = False
    document._clear_changed_fields()


def ics_for(appointment, clinic):
    """An iCalendar (.ics) document for one appointment (the same file the confirmation email carries)."""
    public_url = current_app.config.get("PUBLIC_URL", "") if has_app_context() else ""
    return appointment_ics(appointment, clinic, public_url)
