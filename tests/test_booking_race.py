"""Many patients race for the same times through several gunicorn workers: each time is won once."""

import threading
from collections import Counter
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import requests

from devstack.servers import free_port
from models import Appointment
from tests.support.factories import PASSWORD, make_clinic, make_patient, make_provider, make_service
from tests.helpers import clean_env, start_gunicorn, stop_process, wait_http

LONDON = ZoneInfo("Europe/London")
PATIENTS = 16


def test_concurrent_bookings_through_gunicorn_never_double_book(make_app, app_config):
    make_app()  # creates the test database's indexes
    make_clinic()
    service = make_service("Consultation", duration=30, price=5000, after=10)
    provider = make_provider([service], name="Dr Race")
    for i in range(PATIENTS):
        make_patient(email=f"racer{i}@example.com")
    port = free_port()
    env = clean_env(**{k: v for k, v in app_config.items() if k.isupper() and isinstance(v, str)},
                    COOKIE_SECURE="0")
    proc = start_gunicorn(env, port, workers=3)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/readyz", 200, timeout=60, process=proc)
        sessions = []
        for i in range(PATIENTS):
            s = requests.Session()
            resp = s.post(base + "/api/auth/login", json={"email": f"racer{i}@example.com", "password": PASSWORD},
                          timeout=30)
            assert resp.status_code == 200
            sessions.append(s)
        day = (datetime.now(timezone.utc) + timedelta(days=3)).astimezone(LONDON).date()

        def race(targets):
            barrier = threading.Barrier(PATIENTS)
            results = [None] * PATIENTS

            def attempt(i):
                s = sessions[i]
                start = targets[i % len(targets)]
                barrier.wait()
                resp = s.post(base + "/api/appointments", timeout=60,
                              headers={"X-CSRF-TOKEN": s.cookies.get("csrf_access_token")},
                              json={"service": str(service.id), "provider": str(provider.id),
                                    "start": start.isoformat()})
                results[i] = (start, resp.status_code, resp.json())

            threads = [threading.Thread(target=attempt, args=(i,)) for i in range(PATIENTS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            return results

        # Everyone wants the same time: exactly one wins.
        same = race([datetime.combine(day, time(10), LONDON)])
        statuses = Counter(code for _, code, _ in same)
        assert statuses == {201: 1, 409: PATIENTS - 1}, statuses
        assert all(body["error"]["code"] == "slot_taken" for _, code, body in same if code == 409)

        # Four overlapping times (15 minutes apart, 30 minutes long plus 10 of buffer): at most one
        # of any two overlapping wins, and none of the winners overlap.
        targets = [datetime.combine(day, time(14, m), LONDON) for m in (0, 15, 30, 45)]
        mixed = race(targets)
        assert not [code for _, code, _ in mixed if code >= 500]
        winners = sorted(start for start, code, _ in mixed if code == 201)
        assert winners, "someone must win"
        for a, b in zip(winners, winners[1:]):
            assert b - a >= timedelta(minutes=40), winners
        active = Appointment.objects(provider=provider.id, status__in=("held", "confirmed"))
        assert active.count() == 1 + len(winners)
    finally:
        stop_process(proc)
