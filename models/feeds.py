"""Clinicians' calendar feeds (issue 29): a secret iCalendar URL per clinician, made and revoked by staff.

- `make_feed(provider)` makes a new token (32 random bytes, URL-safe) and revokes the clinician's
  previous one: one live feed per clinician, so a leaked link is ended by making a new one. Only
  the token's SHA-256 is stored; the link is shown to staff once.
- `feed_ics(token, now)` is the feed: the clinician's appointments from 30 days back to the
  furthest booking horizon of the clinic's services, read now (so it follows every booking,
  move and cancellation); cancelled ones stay in as STATUS:CANCELLED for 30 days so subscribed
  calendars remove them. An unknown or revoked token is NotFound (404), never a hint which.
- Events say the service and the patient's initials ("Physiotherapy — Patient J.S."); full
  names only when the clinic's setting `Clinic.feed_shows_names` is on (a calendar app is not a
  place the clinic controls). LOCATION is the clinic's name and address, as in the patient's own
  `.ics` (`models.messages.rendering.clinic_location`).
"""

import hashlib
import secrets
from datetime import timedelta

from mongoengine import BooleanField, DateTimeField, Document, ObjectIdField, StringField

from models.audit import audit_here, audited
from models.booking.documents import Appointment, is_lapsed_hold
from models.catalog.documents import Clinic, Provider, Service
from models.clock import as_utc, utcnow
from models.errors import NotFound
from models.messages.rendering import clinic_location

PAST_DAYS = 30
SHOWN = ("held", "offered", "confirmed", "checked_in", "completed", "no_show", "cancelled")


class FeedToken(Document):
    """A clinician's calendar feed link, stored as the SHA-256 of its token."""

    provider = ObjectIdField(required=True)
    token_hash = StringField(required=True, unique=True, max_length=64)
    created_at = DateTimeField(default=utcnow)
    created_by = StringField(max_length=100, default="")
    revoked_at = DateTimeField()
    last_used_at = DateTimeField()
    active = BooleanField(default=True)
    meta = {"collection": "feed_tokens", "auto_create_index": False,
            "indexes": [("provider", "active")]}


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


@audited("feed.make", lambda provider_id, *a, **k: f"Provider:{provider_id}")
def make_feed(provider_id, now=None, by=""):
    """A new secret feed token for the clinician (the old one stops working); the raw token."""
    now = now or utcnow()
    if Provider.objects(id=provider_id).only("id").first() is None:
        raise NotFound("No such clinician.")
    token = secrets.token_urlsafe(32)
    FeedToken.objects(provider=provider_id, active=True).update(set__active=False, set__revoked_at=now)
    FeedToken(provider=provider_id, token_hash=_hash(token), created_at=now, created_by=by).save(force_insert=True)
    return token


@audited("feed.revoke", lambda provider_id, *a, **k: f"Provider:{provider_id}")
def revoke_feed(provider_id, now=None):
    """End the clinician's feed link; how many were live (0 or 1)."""
    return FeedToken.objects(provider=provider_id, active=True).update(set__active=False,
                                                                      set__revoked_at=now or utcnow())


def feed_status(provider_ids):
    """{provider id: the live feed's creation instant} for the providers that have one."""
    return {f.provider: f.created_at for f in FeedToken.objects(provider__in=list(provider_ids), active=True)}


def initials(name):
    """'Jane Anne Smith' → 'J.A.S.'; a name's first letters only."""
    return "".join(f"{part[0].upper()}." for part in (name or "").split() if part[:1].isalpha()) or "?"


def feed_ics(token, now=None, public_url=""):
    """The clinician's calendar as iCalendar bytes; NotFound for an unknown or revoked token.

    Every read is audited (who: the feed; about: the clinician), refusals too.
    """
    from icalendar import Calendar, Event

    now = now or utcnow()
    feed = FeedToken.objects(token_hash=_hash(token or ""), active=True).first()
    if feed is None:
        audit_here("calendar-feed", "feed.read", record="FeedToken:unknown", outcome="refused:not_found")
        raise NotFound("No such calendar feed.")
    audit_here(f"feed:{feed.id}", "feed.read", record=f"Provider:{feed.provider}")
    FeedToken.objects(id=feed.id).update_one(set__last_used_at=now)
    provider = Provider.objects(id=feed.provider).first()
    clinic = Clinic.get()
    show_names = bool(getattr(clinic, "feed_shows_names", False))
    horizon = max([s.horizon_days or 0 for s in Service.objects.only("horizon_days")] or [60])
    appts = Appointment.objects(provider=feed.provider, status__in=SHOWN,
                                start__gte=now - timedelta(days=PAST_DAYS),
                                start__lte=now + timedelta(days=horizon + 1)).order_by("start")
    cal = Calendar()
    cal.add("prodid", "-//Clinic booking//clinician feed//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{provider.name if provider else 'Clinician'} — {clinic.name if clinic else 'Clinic'}")
    cal.add("x-published-ttl", "PT15M")  # calendar apps poll; ask for every 15 minutes
    for appt in appts:
        if is_lapsed_hold(appt, now):
            continue  # a lapsed hold (or waitlist offer) is not an appointment
        who = appt.patient.name if show_names else f"Patient {initials(appt.patient.name)}"
        event = Event()
        event.add("uid", f"appointment-{appt.id}@clinic")
        event.add("sequence", appt.version or 0)
        event.add("dtstamp", as_utc(appt.updated_at or appt.created_at or now))
        event.add("dtstart", as_utc(appt.start))
        event.add("dtend", as_utc(appt.end))
        event.add("summary", f"{appt.service.name} — {who}")
        if clinic is not None:  # the same LOCATION as the patient's own .ics: name and address
            event.add("location", clinic_location(clinic))
        event.add("status", {"cancelled": "CANCELLED", "held": "TENTATIVE", "offered": "TENTATIVE"}.get(appt.status, "CONFIRMED"))
        if public_url:
            event.add("url", f"{public_url.rstrip('/')}/admin/appointments/details/?id={appt.id}")
        cal.add_component(event)
    return cal.to_ical()
