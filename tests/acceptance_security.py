"""Security acceptance check, kept outside the suite: issue #23's findings replayed over HTTP.

    .venv/bin/python tests/acceptance_security.py [-k WORD]

Starts the one-machine stack (`devstack.stack.start_stack`, throwaway stores; `MONGODB_URI` /
`REDIS_URL` in the environment are used instead when set), seeds a small clinic in its own database,
runs the app under gunicorn (2 workers) and replays each finding against it as an attacker would,
over HTTP. Prints `ok` or `FAILED` per finding; exit status 0 only when every check holds.

Each check is a function in `CHECKS`, called with a `Context` (the base URL, the seeded ids, a way
to make signed-in patients); it raises AssertionError with what it saw when the finding is open.
Append the checks of further findings to `CHECKS`.
"""

import argparse
import os
import sys
import tempfile
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.helpers import clean_env, start_gunicorn, stop_process, wait_http  # noqa: E402

PASSWORD = "quiet lantern meadow 42"
ZONE = ZoneInfo("Europe/London")


@dataclass
class Context:
    """What a check gets: the app's address, the seeded clinic's ids, and patients on demand."""

    base: str
    ids: dict
    made: list = field(default_factory=list)

    def patient(self, tag):
        """A new patient, registered and signed in over the API: a requests session sending its CSRF header."""
        email = f"{tag}-{uuid.uuid4().hex[:6]}@example.com"
        session = requests.Session()
        resp = session.post(f"{self.base}/api/auth/register", timeout=60,
                            json={"email": email, "password": PASSWORD, "name": "Acceptance Patient"})
        assert resp.status_code == 201, f"register {email}: {resp.status_code} {resp.text[:200]}"
        resp = session.post(f"{self.base}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=60)
        assert resp.status_code == 200, f"login {email}: {resp.status_code} {resp.text[:200]}"
        session.headers["X-CSRF-TOKEN"] = session.cookies.get("csrf_access_token")
        session.email = email
        self.made.append(email)
        return session

    def book(self, session, service, provider, start):
        """POST /api/appointments; the response."""
        return session.post(f"{self.base}/api/appointments", timeout=60, json={
            "service": self.ids[service], "provider": self.ids[provider], "start": start.isoformat()})

    def join(self, session, service, first, last=None):
        """POST /api/waitlist for local dates `first`..`last`; the response."""
        return session.post(f"{self.base}/api/waitlist", timeout=60, json={
            "service": self.ids[service], "from": str(first), "to": str(last or first)})

    def accept(self, session, entry_id):
        """POST /api/waitlist/ID/accept; the response."""
        return session.post(f"{self.base}/api/waitlist/{entry_id}/accept", timeout=60)

    def appointments(self, session):
        """The patient's own appointments (GET /api/appointments)."""
        return session.get(f"{self.base}/api/appointments", timeout=60).json()


def day(offset):
    """A local date in the clinic's zone `offset` days ahead."""
    return (datetime.now(timezone.utc) + timedelta(days=offset)).astimezone(ZONE).date()


def at(local_day, hh, mm=0):
    """A wall-clock time in the clinic's zone."""
    return datetime.combine(local_day, datetime.min.time().replace(hour=hh, minute=mm), ZONE)


# --- the checks -----------------------------------------------------------------------------------

def check_finding_1_waitlist_obeys_the_booking_limits(ctx):
    """Finding 1: the waitlist bypassed MAX_UPCOMING, MAX_HELD and the patient-overlap check."""
    # At 6 confirmed, join + accept 10 times for the free service (the report got 16 confirmed).
    hoarder = ctx.patient("hoarder")
    for hour in (9, 10, 11, 13, 14, 15):
        resp = ctx.book(hoarder, "call", "a", at(day(3), hour))
        assert resp.status_code == 201, f"setup booking: {resp.status_code} {resp.text[:200]}"
    accepted = 0
    for n in range(10):
        entry = ctx.join(hoarder, "call", day(4 + n))
        assert entry.status_code in (201, 409), f"join: {entry.status_code} {entry.text[:200]}"
        if entry.status_code == 201 and entry.json()["status"] == "offered":
            accepted += ctx.accept(hoarder, entry.json()["id"]).status_code == 201
    confirmed = [a for a in ctx.appointments(hoarder) if a["status"] == "confirmed"]
    assert len(confirmed) == 6 and accepted == 0, \
        f"at 6 upcoming, the waitlist gave {accepted} more: {len(confirmed)} confirmed (limit 6)"
    # A new patient on the paid service: the report got 5 held (limit 2).
    newcomer = ctx.patient("newcomer")
    for n in range(5):
        entry = ctx.join(newcomer, "physio", day(4 + n))
        if entry.status_code == 201 and entry.json()["status"] == "offered":
            ctx.accept(newcomer, entry.json()["id"])
    held = [a for a in ctx.appointments(newcomer) if a["status"] == "held"]
    assert len(held) <= 2, f"the waitlist gave a new patient {len(held)} unpaid holds (limit 2)"
    # Never an offer that overlaps the patient's own appointment (the report: two at 09:00 with two clinicians).
    busy = ctx.patient("busy")
    mine = ctx.book(busy, "call", "a", at(day(20), 9))
    assert mine.status_code == 201, f"setup booking: {mine.status_code} {mine.text[:200]}"
    entry = ctx.join(busy, "call", day(20))
    assert entry.status_code == 201, f"join: {entry.status_code} {entry.text[:200]}"
    offer = entry.json()["offer"]
    if offer is not None:
        start, end = datetime.fromisoformat(offer["start"]), datetime.fromisoformat(offer["end"])
        assert not (start < at(day(20), 9, 15) and end > at(day(20), 9)), \
            f"offered {offer['start']} with {offer['provider']['name']}: overlaps the patient's own 09:00"


def check_finding_2_far_off_waitlist_dates(ctx):
    """Finding 2: one entry for 9999-12-01..9999-12-31 stopped every offer for every patient."""
    patient = ctx.patient("faroff")
    resp = ctx.join(patient, "call", "9999-12-01", "9999-12-31")
    assert resp.status_code == 422, f"join for 9999-12: {resp.status_code} {resp.text[:200]}"
    error = resp.json()["error"]
    assert error["code"] == "invalid" and set(error.get("fields", {})) & {"from", "to"}, \
        f"422 without the field named: {error}"
    # An entry like it that predates the check (written straight into MongoDB), first in line:
    # the next patient to join is still offered a free time at once.
    from models import Patient
    from models.booking.waitlist import WaitlistEntry

    made = datetime.now(timezone.utc) - timedelta(hours=1)
    WaitlistEntry._get_collection().insert_one({
        "patient": Patient.objects.get(email=patient.email).id, "service": ctx.ids["call_oid"],
        "date_from": datetime(9999, 12, 1), "date_to": datetime(9999, 12, 31), "status": "waiting",
        "created_at": made, "updated_at": made, "declined": [], "note": ""})
    other = ctx.patient("behind")
    entry = ctx.join(other, "call", day(30))
    assert entry.status_code == 201, f"join: {entry.status_code} {entry.text[:200]}"
    assert entry.json()["status"] == "offered", \
        f"with a far-off entry first in line, a free time was not offered: {entry.json()}"


CHECKS = [
    check_finding_1_waitlist_obeys_the_booking_limits,
    check_finding_2_far_off_waitlist_dates,
]


# --- the stack, the seed, the run ------------------------------------------------------------------

def seed(config):
    """The clinic in the run's own database, written in-process through the domain; its ids by name."""
    from clinic import create_app
    from models import Break, Clinic, DayHours, Provider, Schedule, Service

    create_app(dict(config))
    Clinic(name="Acceptance Clinic", timezone="Europe/London", currency="gbp", phone="+44 20 7946 0123",
           hold_minutes=15, slot_step_minutes=15).save()
    call = Service(name="Call", duration_minutes=15, price=0, currency="gbp", horizon_days=60,
                   cancellation_window_hours=0).save()
    physio = Service(name="Physio", duration_minutes=30, price=6000, currency="gbp", horizon_days=60,
                     cancellation_window_hours=0).save()
    ids = {"call": str(call.id), "physio": str(physio.id), "call_oid": call.id}
    for key, name in (("a", "Dr A"), ("b", "Dr B")):
        provider = Provider(name=name, email=f"{key}@acceptance.test", services=[call, physio]).save()
        Schedule(provider=provider, days=[DayHours(weekday=d, start="09:00", end="17:00",
                                                   breaks=[Break(start="12:00", end="13:00")])
                                          for d in range(7)]).save()
        ids[key] = str(provider.id)
    return ids


def main(argv=None):
    """Start the stack and the app, run every check, print ok/FAILED each; exit 0 when all hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="run only the checks whose name contains this")
    args = parser.parse_args(argv)
    from devstack.stack import start_stack

    home = tempfile.mkdtemp(prefix="clinic-acceptance-security-")
    named = {k: os.environ[k] for k in ("MONGODB_URI", "REDIS_URL") if os.environ.get(k)}
    stack = start_stack(home, keep=False, environ=named)
    proc = None
    try:
        tag = uuid.uuid4().hex[:8]
        config = dict(stack.env, **named, MONGODB_DB=f"acceptance_{tag}", REDIS_PREFIX=f"acceptance:{tag}:",
                      SECRET_KEY=f"acceptance-secret-{tag}-0123456789", STRIPE_WEBHOOK_SECRET="whsec_acceptance",
                      JWT_SECRET_KEY=f"acceptance-jwt-{tag}-0123456789", COOKIE_SECURE="0",
                      # Every patient registers from this one address.
                      REGISTRATIONS_PER_HOUR="1000")
        ids = seed(config)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_gunicorn(clean_env(**config), port, workers=2)
        wait_http(base + "/readyz", 200, timeout=90, process=proc)
        ctx = Context(base, ids)
        failed = 0
        for check in CHECKS:
            if args.k not in check.__name__:
                continue
            try:
                check(ctx)
            except AssertionError as exc:
                failed += 1
                print(f"FAILED {check.__name__}: {exc}", flush=True)
            except Exception:  # noqa: BLE001 — a crash is a failure of that check, the others still run
                failed += 1
                print(f"FAILED {check.__name__}: {traceback.format_exc(limit=3)}", flush=True)
            else:
                print(f"ok     {check.__name__}", flush=True)
        return 1 if failed else 0
    finally:
        if proc is not None:
            stop_process(proc)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
