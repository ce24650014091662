"""Property tests for the free-time cache: random interleavings of reads and of the changes that move
free time (bookings, cancellations, time off, weekly hours, service settings), against the real
database and Redis. After every change has answered, what `/api/slots` says through the cache is
exactly what a fresh computation says: a booking is never hidden, a taken time never offered."""

import threading
from datetime import datetime, time, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Appointment, Schedule, Service, TimeClaim, TimeOff
from models.catalog import changed
from models.errors import Conflict
from tests.support.factories import LONDON, future_day, make_clinic, make_patient, make_provider, make_service

UTC = timezone.utc
DAYS = 3  # local dates the reads cover, from `first`

operation = st.one_of(
    st.tuples(st.just("read"), st.sampled_from([0, 1, 2, "any"])),
    st.tuples(st.just("book"), st.integers(0, 2), st.integers(0, 10**6)),
    st.tuples(st.just("cancel"), st.integers(0, 10**6)),
    st.tuples(st.just("time_off"), st.integers(0, 2), st.integers(0, DAYS - 1), st.integers(8, 17)),
    st.tuples(st.just("hours"), st.integers(0, 2), st.integers(8, 11)),
    st.tuples(st.just("buffer"), st.sampled_from([0, 5, 10])),
)


def _setup():
    make_clinic()
    service = make_service("Check-up", duration=30, price=0, after=5, notice=0, horizon=30, cancel_hours=0)
    providers = [make_provider([service], name=f"Dr Cache {i}") for i in range(3)]
    patients = [make_patient(email=f"cache{i}@example.com") for i in range(4)]
    return service, providers, patients


def _reset():
    """Empty calendars; the direct deletes bypass the domain, so tell the caches as a change would."""
    Appointment.objects.delete()
    TimeClaim.objects.delete()
    TimeOff.objects.delete()
    changed("catalog")


def _api(client, service, provider, first):
    query = {"service": str(service.id), "from": first.isoformat(), "days": DAYS}
    if provider is not None:
        query["provider"] = str(provider.id)
    resp = client.get("/api/slots", query_string=query)
    assert resp.status_code == 200
    return resp.get_json()


def _fresh(app, service, providers, first):
    """The same answer computed from the database, bypassing the cache."""
    import json

    from models.booking import freetimes
    from models.catalog import current_catalog

    with app.test_request_context():
        catalog = current_catalog()
        service = catalog.service(service.id)
        chosen = sorted((catalog.providers[p.id] for p in providers), key=lambda p: p.name)
        body = freetimes.slots_json(service, chosen, catalog.require_clinic(), first, DAYS,
                                    datetime.now(UTC), cache=None)
    return json.loads(body)


def _assert_current(app, client, service, providers, first):
    for provider in providers + [None]:
        cached = _api(client, service, provider, first)
        fresh = _fresh(app, service, [provider] if provider else providers, first)
        assert cached == fresh, f"stale free times for {provider.name if provider else 'any provider'}"
    active = Appointment.objects(status__in=("held", "confirmed"))
    offered = _api(client, service, None, first)
    for appt in active:
        start, end = appt.block_start.replace(tzinfo=UTC), appt.block_end.replace(tzinfo=UTC)
        for slot in offered:
            if slot["provider"] != str(appt.provider.id):
                continue
            s = datetime.fromisoformat(slot["start"])
            e = datetime.fromisoformat(slot["end"])
            assert not (s < end and e > start), f"{slot['start']} offered over a booking"


def test_cached_free_times_follow_every_change(app):
    from models.booking.cancellation import cancel
    from models.booking.create import book

    service, providers, patients = _setup()
    client = app.test_client()
    first = future_day(3)

    @given(ops=st.lists(operation, min_size=1, max_size=12))
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(ops):
        _reset()
        for provider in providers:  # warm the cache, so the changes below have entries to make stale
            _api(client, service, provider, first)
        _api(client, service, None, first)
        for op in ops:
            kind = op[0]
            now = datetime.now(UTC)
            if kind == "read":
                _api(client, service, None if op[1] == "any" else providers[op[1]], first)
                continue
            if kind == "book":
                offered = _fresh(app, service, [providers[op[1]]], first)
                if offered:
                    slot = offered[op[2] % len(offered)]
                    try:
                        book(patients[op[2] % len(patients)], str(service.id), str(providers[op[1]].id),
                             datetime.fromisoformat(slot["start"]), now)
                    except Conflict:
                        pass  # the patient is busy then: refused, nothing changed
            elif kind == "cancel":
                active = list(Appointment.objects(status="confirmed").order_by("id"))
                if active:
                    cancel(active[op[1] % len(active)], now, by_staff=True)
            elif kind == "time_off":
                day = first + timedelta(days=op[2])
                start = datetime.combine(day, time(op[3]), LONDON).astimezone(UTC)
                TimeOff(provider=providers[op[1]], start=start, end=start + timedelta(hours=1)).save()
            elif kind == "hours":
                schedule = Schedule.objects.get(provider=providers[op[1]].id)
                for d in schedule.days:
                    d.start = f"{op[2]:02d}:00"
                schedule.save()
            elif kind == "buffer":
                fresh_service = Service.objects.get(id=service.id)
                fresh_service.buffer_after_minutes = op[1]
                fresh_service.save()
            _assert_current(app, client, service, providers, first)

    run()


def test_reads_racing_bookings_never_offer_a_time_booked_before_they_began(app):
    """Readers and bookers in threads: any read that starts after a booking answered leaves it out."""
    from models.booking.create import book

    service, providers, patients = _setup()
    first = future_day(3)
    provider = providers[0]
    offered = _fresh(app, service, [provider], first)
    targets = [datetime.fromisoformat(s["start"]) for s in offered[::3][:12]]
    booked = []  # (time the booking answered, block start, block end)
    lock = threading.Lock()
    failures = []

    def booker(index):
        with app.app_context():
            for k, start in enumerate(targets):
                if k % 2 != index:
                    continue
                appt = book(patients[index], str(service.id), str(provider.id), start, datetime.now(UTC))
                with lock:
                    booked.append((datetime.now(UTC), appt.block_start.replace(tzinfo=UTC),
                                   appt.block_end.replace(tzinfo=UTC)))

    def reader():
        client = app.test_client()
        for _ in range(40):
            with lock:
                known = list(booked)
            for slot in _api(client, service, provider, first):
                s = datetime.fromisoformat(slot["start"])
                e = datetime.fromisoformat(slot["end"])
                for _, b_start, b_end in known:
                    if s < b_end and e > b_start:
                        failures.append(slot["start"])

    threads = [threading.Thread(target=booker, args=(i,)) for i in range(2)] + \
        [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(booked) == len(targets)
    assert not failures, f"times offered after they were booked: {sorted(set(failures))}"
    client = app.test_client()
    assert _api(client, service, provider, first) == _fresh(app, service, [provider], first)
