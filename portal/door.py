"""What the patient's pages and the JSON API share: booking, joining the waitlist, accepting an offer and
rescheduling under the patient's throttle and one-at-a-time lock, and the free times (read through
the app's slot cache)."""

from flask import current_app

from web.audit import audit_event
from models.booking.create import book, book_first_free
from models import clock
from models.accounts.dependants import person_for
from models.booking import freetimes, series, series_move, waitlist
from models.booking.reschedule import reschedule_to_first_free
from models.catalog import current_catalog
from models.documents import utcnow
from portal.auth import booking_attempt_allowed, one_booking_at_a_time, reschedule_attempt_allowed


def book_for_patient(patient, service_id, provider_id, start, answers=None, for_=None, agree_policy=False):
    """Book through the shared rule under the patient's throttle and lock (pages and API both call this).

    `answers`: the intake answers (checked by the action); `for_`: one of the patient's dependants'
    ids (issue 28; someone else's is 404). Throttle and lock stay the account holder's.
    """
    booking_attempt_allowed(patient)
    actor = f"patient:{patient.id}"
    person = person_for(patient, for_)
    # The action audits its own refusals, the lock's included (one booking at a time per patient,
    # so the hold limits cannot be raced); its success event is `audit`, written in the booking's
    # own database command.
    return book(person, service_id, provider_id, start, utcnow(),
                        audit=audit_event(actor, "appointment.book"), audit_as=actor,
                        guard=one_booking_at_a_time(patient), answers=answers, agree_policy=agree_policy)


def book_series_for_patient(patient, service_id, provider_id, start, repeat, answers=None, for_=None,
                            agree_policy=False):
    """Book a recurring series (issue 28) under the same throttle and lock as one booking; (series id, visits).

    The intake questions are asked once for the series: the same answers are checked and kept on every visit.
    """
    booking_attempt_allowed(patient)
    actor = f"patient:{patient.id}"
    person = person_for(patient, for_)
    return series.book_series(person, service_id, provider_id, start, utcnow(), repeat["every_weeks"],
                              repeat["count"], instead=repeat.get("instead"), pay=repeat.get("pay") or "visit",
                              answers=answers,
                              agree_policy=agree_policy,
                              audit=audit_event(actor, "series.book"), audit_as=actor,
                              guard=one_booking_at_a_time(patient))


def book_any_for_patient(patient, service_id, start, answers=None, for_=None, agree_policy=False):
    """Book the time with the first clinician free then ("any clinician"), under the same throttle and lock."""
    booking_attempt_allowed(patient)
    actor = f"patient:{patient.id}"
    person = person_for(patient, for_)
    # One action, audited once whichever clinician gets it (models/booking/create.py).
    return book_first_free(person, service_id, None, start, utcnow(),
                                   audit=audit_event(actor, "appointment.book"), audit_as=actor,
                                   guard=one_booking_at_a_time(patient), answers=answers, agree_policy=agree_policy)


def join_waitlist_for_patient(patient, service_id, provider_id, date_from, date_to, for_=None, skip_free_now=False):
    """Join the waitlist (pages and API both call this), offering a time already free at once.

    `for_`: one of the patient's dependants' ids (issue 28), checked as for a booking (someone
    else's is 404): the entry is theirs. The audit's actor stays the account holder.
    """
    person = person_for(patient, for_)
    # The action audits itself (its event written with the entry).
    return waitlist.join(person, service_id, provider_id, date_from, date_to, utcnow(), skip_free_now=skip_free_now,
                         audit=audit_event(f"patient:{patient.id}", "waitlist.join"), offer_now=True)


def accept_offer_for_patient(patient, entry, agree_policy=False):
    """Accept a waitlist offer as a booking: the same throttle and one-at-a-time lock as `book_for_patient`.

    The lock makes the acceptance's own checks (the patient's overlap and hold limits) race-free
    against the patient's other bookings, as it does for a booking.
    """
    booking_attempt_allowed(patient)
    return waitlist.accept(entry, utcnow(), agree_policy=agree_policy, audit_as=f"patient:{patient.id}",
                           guard=one_booking_at_a_time(patient))


def reschedule_for_patient(patient, appointment, start, provider_ids=()):
    """Move the patient's appointment under their reschedule throttle and the booking lock.

    `provider_ids`: the clinicians to try in turn (empty: the appointment's own). The lock is the
    one bookings take, so two moves (or a move and a booking) of one patient cannot both pass the
    patient-overlap check.
    """
    reschedule_attempt_allowed(patient)
    actor = f"patient:{patient.id}"
    # The action audits itself once, done or refused (the lock's refusal included).
    return reschedule_to_first_free(appointment, start, utcnow(), list(provider_ids), actor=actor,
                                    audit_as=actor, guard=one_booking_at_a_time(patient))


def reschedule_following_for_patient(patient, appointment, start, provider_id=None, instead=None):
    """Move this visit and the later ones of its series (issue 28) under the reschedule throttle and
    the booking lock, all or nothing; answers the moved visits."""
    reschedule_attempt_allowed(patient)
    actor = f"patient:{patient.id}"
    return series_move.reschedule_following(appointment, start, utcnow(), provider_id=provider_id, instead=instead,
                                       actor=actor, audit_as=actor, guard=one_booking_at_a_time(patient))


def free_times_json(service_id, provider_id, first, days, now):
    """The free times of a service (one provider's, or all who offer it) as the API's JSON text.

    `first` None means the clinic's today. The text comes whole from the domain, parts of it from
    the app's slot cache, so the answer is never parsed and dumped again.
    """
    caches = current_app.extensions["caches"]

    def read():
        catalog = current_catalog()
        service = catalog.service(service_id)
        clinic = catalog.require_clinic()
        providers = [catalog.provider_for(service, provider_id)] if provider_id else catalog.providers_offering(service)
        return freetimes.slots_json(service, providers, clinic, first or clock.local_today(clinic.timezone, now),
                                    days, now, caches)

    # One Redis round trip when the process's catalog is current (web/cache.py `read_through`).
    return caches.read_through(read)
