"""The catalog snapshot: the clinic, its services, providers and schedules, loaded in bulk and cached.

Availability and booking read it on every request, so it is loaded in bulk (four queries) and the
app may install a cache for it (`set_catalog_source`); the cache is invalidated by every save of
those documents (MongoEngine signals, which `changed()` reports) and by a version in Redis for the
other processes. Without a cache installed, every call loads it afresh.

The snapshot last read is kept (`_held`): `models.formatting` writes dates and money in its clinic's
locale without asking the database again.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from mongoengine import signals

from models.clock import as_utc as _utc
from models.catalog.closures import load_closures
from models.catalog.documents import Clinic, Closure, Provider, Schedule, Service, TimeOff
from models.errors import NotFound, ValidationFailed
from models.formatting import set_locale_source


@dataclass
class Catalog:
    """A consistent snapshot of the clinic, services, active providers and schedules."""

    clinic: object
    services: dict
    providers: dict
    schedules: dict = field(default_factory=dict)
    # Provider id -> [(start, end)] UTC time off that has not ended long ago; None: not loaded
    # (then the readers query it). Kept here so a booking or a free-time read needs no query for it.
    time_off: dict = None
    # Clinic profile and closures (issue 25): when the whole clinic is closed, from yesterday on
    # (`closures.Closed`: staff closures and public holidays not opened again), sorted by start.
    closures: list = field(default_factory=list)
    # Lookups built on first use (the snapshot never changes): {id text: document} of services and
    # of providers, and {provider id: ids of the services they offer}. Every free-time read asks
    # for a service and a provider by the id in its query (issue 30: no ObjectId parsed, no set
    # built per request).
    _index: dict = field(default=None, init=False, repr=False, compare=False)

    def _lookups(self):
        if self._index is None:
            self._index = {
                "services": {str(k): v for k, v in self.services.items()},
                "providers": {str(k): v for k, v in self.providers.items()},
                "offers": {k: frozenset(getattr(s, "id", s) for s in p.services) for k, p in self.providers.items()},
            }
        return self._index

    def require_clinic(self):
        """The clinic, or a clear error when none is configured."""
        if self.clinic is None:
            raise NotFound("The clinic is not set up yet.", code="clinic_missing")
        return self.clinic

    def service(self, service_id):
        """An active service by id, or NotFound."""
        service = self._lookups()["services"].get(str(service_id).lower())
        if service is None or not service.active:
            raise NotFound("That service does not exist.", code="service_not_found")
        return service

    def provider_for(self, service, provider_id):
        """An active provider who offers the service, or NotFound/ValidationFailed."""
        lookups = self._lookups()
        provider = lookups["providers"].get(str(provider_id).lower())
        if provider is None:
            raise NotFound("That provider does not exist.", code="provider_not_found")
        if service.id not in lookups["offers"][provider.id]:
            raise ValidationFailed(f"{provider.name} does not offer {service.name}.",
                                   code="service_not_offered",
                                   fields={"provider": "does not offer this service"})
        return provider

    def providers_offering(self, service):
        """Active providers who offer the service, by name."""
        return sorted((p for p in self.providers.values()
                       if service.id in {getattr(s, "id", s) for s in p.services}), key=lambda p: p.name)


def bookable_services(catalog):
    """The services a patient can book, by name: active, and offered by at least one active provider."""
    # A service nobody provides has no time to book: every door (the booking page, the waitlist
    # form, GET /api/services) lists the same ones, so none offers what another cannot book.
    return sorted((s for s in catalog.services.values() if s.active and catalog.providers_offering(s)),
                  key=lambda s: s.name)


def load_catalog():
    """Load the catalog from the database: five queries."""
    # Time off that ended more than a day ago can no longer touch a bookable time.
    recent = datetime.now(timezone.utc) - timedelta(days=1)
    time_off = {}
    for off in TimeOff.objects(end__gt=recent).only("provider", "start", "end").no_dereference():
        time_off.setdefault(off.provider.id, []).append((_utc(off.start), _utc(off.end)))
    clinic = Clinic.get()
    return Catalog(
        clinic=clinic,
        services={s.id: s for s in Service.objects()},
        providers={p.id: p for p in Provider.objects(active=True).no_dereference()},
        schedules={s.provider.id: s for s in Schedule.objects().no_dereference()},
        time_off=time_off,
        closures=load_closures(clinic, recent + timedelta(days=1)),
    )


_source = None
_held = None  # the catalog this process read last: formatting's locale comes from its clinic
_listeners = []
_with_provider = set()  # listeners that also take the provider a change concerns


def set_catalog_source(source):
    """Install the function that returns the current catalog (a cache), or None to load afresh."""
    global _source
    _source = source


def current_catalog():
    """The catalog, from the installed source or loaded afresh."""
    global _held
    _held = _source() if _source is not None else load_catalog()
    return _held


def held_locale():
    """The locale of the clinic in the catalog this process holds, or None: never a database command."""
    return getattr(getattr(_held, "clinic", None), "locale", None)


def forget_held():
    """Let go of the catalog held for formatting (the test suite empties its database between tests)."""
    global _held
    _held = None


set_locale_source(held_locale)


def on_change(listener, with_provider=False):
    """Register `listener(kind)` to hear of catalog ("catalog") and availability ("availability") changes.

    With `with_provider=True` it is called as `listener(kind, provider_id)`, the id being None
    when the change concerns every provider (a service or the clinic's settings).
    """
    if listener not in _listeners:
        _listeners.append(listener)
    if with_provider:
        _with_provider.add(listener)


def changed(kind, provider=None):
    """Tell the listeners that the catalog or the availability (of one provider, or all) changed."""
    for listener in list(_listeners):
        if listener in _with_provider:
            listener(kind, provider)
        else:
            listener(kind)


def _ref_id(value):
    """The id behind a reference field's raw value (ObjectId, DBRef or document)."""
    return getattr(value, "id", value)


def _catalog_saved(sender, document, **kwargs):
    # A provider's own record or weekly hours touch only that provider's free times.
    if isinstance(document, Provider):
        changed("catalog", provider=document.id)
    elif isinstance(document, Schedule):
        changed("catalog", provider=_ref_id(document._data.get("provider")))
    else:
        changed("catalog")


def _time_off_saved(sender, document, **kwargs):
    # Time off lives in the catalog snapshot, so it reloads; only that provider's free times move.
    changed("catalog", provider=_ref_id(document._data.get("provider")))


for _document in (Clinic, Service, Provider, Schedule):
    signals.post_save.connect(_catalog_saved, sender=_document)
    signals.post_delete.connect(_catalog_saved, sender=_document)
signals.post_save.connect(_time_off_saved, sender=TimeOff)
# A closure touches every provider's free times (issue 25).
signals.post_save.connect(_catalog_saved, sender=Closure)
signals.post_delete.connect(_catalog_saved, sender=Closure)
signals.post_delete.connect(_time_off_saved, sender=TimeOff)
