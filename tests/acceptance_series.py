"""Acceptance check for issue 28's recurring series, kept outside the suite (pytest does not collect it).

    .venv/bin/python tests/acceptance_series.py [--python PATH] [--keep]

Clones this repository's committed HEAD into a temporary folder and starts the README's run command
there with a clean environment, as tests/acceptance.py does (the clone installs its own `.venv`;
`--python PATH` instead runs the run command's program, `python -m devstack`, with an interpreter
that already has requirements-dev.txt, to skip the install). Then, over HTTP against the demo
clinic, as two new patients:

- the demo "Physiotherapy session" says `repeat_allowed`; a course of 6 weekly visits is booked at
  one time of day (201 `{series, appointments}`, every visit at the same local wall-clock time);
- a series of 13 visits, or one every 0 weeks, is 422 and books nothing;
- a second patient's series over three of those dates is 409 `series_unavailable` naming them, with
  nearest free times, and books nothing; accepting those times books the whole set;
- "this and following" on the first patient's fourth visit cancels visits 4 to 6 only;
- a third patient books a course of 3 weekly visits paid up front (`repeat.pay: "course"`): one
  payment started from any visit takes the three prices, a card (tokenised at the stack's local
  Stripe, whose address the payment page names) confirms all three, and cancelling one visit refunds
  its share.

Prints `ok` or `FAILED` per check; exit status 0 only when every check holds.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.helpers import ROOT, wait_http  # noqa: E402
from tests.test_newcomer import run_stack, stop_stack  # noqa: E402

PASSWORD = "amber kettle orbit"


def start(clone, port, python):
    """The run command in the clone (or its program under `python`), in its own process group."""
    if not python:
        return run_stack(clone, port)
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    log = open(clone / f"run-{port}.log", "a")
    return subprocess.Popen([python, "-m", "devstack", "--port", str(port)], cwd=clone, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True), log


def patient(base, label):
    """A new patient registered and signed in; a session whose posts carry the CSRF header."""
    email = f"series-{label}-{uuid.uuid4().hex[:8]}@example.com"
    s = requests.Session()
    assert s.post(f"{base}/api/auth/register", timeout=60,
                  json={"email": email, "password": PASSWORD, "name": f"Series {label}"}).status_code == 201
    assert s.post(f"{base}/api/auth/login", timeout=60, json={"email": email, "password": PASSWORD}).status_code == 200
    s.headers["X-CSRF-TOKEN"] = s.cookies.get("csrf_access_token")
    return s


def checks(base):
    """Yield (name, ok, detail) for each check, in order."""
    a, b = patient(base, "a"), patient(base, "b")
    services = requests.get(f"{base}/api/services", timeout=60).json()
    physio = next(s for s in services if s["name"] == "Physiotherapy session")
    yield "the demo physiotherapy says repeat_allowed", physio["repeat_allowed"] is True, physio["repeat_allowed"]
    provider = requests.get(f"{base}/api/providers", params={"service": physio["id"]}, timeout=60).json()[0]
    # The first week from a week ahead whose six weekly dates the clinic is open on (a run over
    # Christmas would meet its closures, and the nearest free time there is another time of day).
    closed = {c["date"] for c in requests.get(f"{base}/api/clinic", timeout=60).json()["closures"]}
    first_day = date.today() + timedelta(days=7)
    while any((first_day + timedelta(days=d)).isoformat() in closed for d in range(42)):
        first_day += timedelta(days=1)
    slots = requests.get(f"{base}/api/slots", timeout=60, params={
        "service": physio["id"], "provider": provider["id"], "from": first_day.isoformat(), "days": 7}).json()
    start_at = slots[0]["start"]

    # The demo physiotherapy asks intake questions (asked once for a series): answer the required ones.
    sample = {"yes_no": "yes", "date": "2026-01-01", "choice": None}
    answers = {q["id"]: (q["choices"][0] if q["kind"] == "choice" else sample.get(q["kind"], "Lower back pain"))
               for q in physio.get("questions", []) if q.get("required")}

    def book(session, first, repeat):
        return session.post(f"{base}/api/appointments", timeout=60, json={
            "service": physio["id"], "provider": provider["id"], "start": first, "repeat": repeat,
            "answers": answers})

    resp = book(a, start_at, {"every_weeks": 1, "count": 6})
    if resp.status_code == 409 and resp.json()["error"]["code"] == "series_unavailable":
        # A date the clinic is closed (a public holiday): take the nearest free time offered for it.
        offered = resp.json()["error"]["alternatives"]
        resp = book(a, start_at, {"every_weeks": 1, "count": 6, "instead": {k: v[0] for k, v in offered.items() if v}})
    visits = resp.json().get("appointments", []) if resp.status_code == 201 else []
    wall = {datetime.fromisoformat(v["start"]).strftime("%H:%M") for v in visits}
    yield ("6 weekly visits booked at one local time", resp.status_code == 201 and len(visits) == 6
           and len(wall) == 1, f"{resp.status_code} {sorted(wall)} {[v['start'][:10] for v in visits]}")

    bad = [book(b, start_at, r) for r in ({"every_weeks": 1, "count": 13}, {"every_weeks": 0, "count": 3})]
    mine = b.get(f"{base}/api/appointments", timeout=60).json()
    yield ("13 visits or every 0 weeks is 422, nothing booked",
           [r.status_code for r in bad] == [422, 422] and mine == [], [r.status_code for r in bad])

    over = [v["start"] for v in visits[1:4]]
    resp = book(b, over[0], {"every_weeks": 1, "count": 3})
    error = resp.json().get("error", {})
    mine = b.get(f"{base}/api/appointments", timeout=60).json()
    yield ("an overlapping series is 409 series_unavailable naming the dates, nothing booked",
           resp.status_code == 409 and error.get("code") == "series_unavailable"
           and error.get("unavailable") == over and mine == [], f"{resp.status_code} {error.get('unavailable')}")
    choices = {when: (error.get("alternatives") or {}).get(when, [None])[0] for when in over}
    resp = book(b, over[0], {"every_weeks": 1, "count": 3, "instead": choices})
    got = [v["start"] for v in resp.json().get("appointments", [])] if resp.status_code == 201 else []
    yield ("accepting the nearest free times books the whole set", resp.status_code == 201
           and got == sorted(choices.values()), f"{resp.status_code} {got}")

    resp = a.post(f"{base}/api/appointments/{visits[3]['id']}/cancel", json={"scope": "following"}, timeout=60)
    statuses = [x["status"] for x in a.get(f"{base}/api/appointments", timeout=60).json()]
    yield ("cancel this and following cancels visits 4 to 6 only", resp.status_code == 200
           and statuses == ["held"] * 3 + ["cancelled"] * 3, statuses)

    yield from course_checks(base, physio, provider, first_day, answers)


def course_checks(base, physio, provider, first_day, answers):
    """A course paid up front (issue 28): weeks after the other patients' visits, within the horizon."""
    c = patient(base, "c")
    later = requests.get(f"{base}/api/slots", timeout=60, params={
        "service": physio["id"], "provider": provider["id"], "from": (first_day + timedelta(days=42)).isoformat(),
        "days": 7}).json()
    body = {"service": physio["id"], "provider": provider["id"], "start": later[0]["start"], "answers": answers,
            "repeat": {"every_weeks": 1, "count": 3, "pay": "course"}}
    resp = c.post(f"{base}/api/appointments", json=body, timeout=60)
    if resp.status_code == 409 and resp.json()["error"]["code"] == "series_unavailable":
        body["repeat"]["instead"] = {k: v[0] for k, v in resp.json()["error"]["alternatives"].items() if v}
        resp = c.post(f"{base}/api/appointments", json=body, timeout=60)
    series = resp.json().get("series", {}) if resp.status_code == 201 else {}
    ids = [v["id"] for v in resp.json().get("appointments", [])] if resp.status_code == 201 else []
    due = series.get("amount_due")
    yield ("a course paid up front is booked with its total due", resp.status_code == 201
           and series.get("pay") == "course" and due == 3 * physio["price"], f"{resp.status_code} {series}")
    if len(ids) != 3:
        return
    started = c.post(f"{base}/api/appointments/{ids[1]}/payment", timeout=60).json()
    page = c.get(f"{base}/portal/appointments/{ids[1]}", timeout=60).text
    stripe_js = re.search(r'src="([^"]+)/js\.stripe\.com/v3/"', page)
    paid = None
    if stripe_js and started.get("publishable_key"):
        token = requests.post(f"{stripe_js.group(1)}/v1/tokens", timeout=30, data={
            "card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2034",
            "card[cvc]": "123", "key": started["publishable_key"]}).json()
        paid = c.post(f"{base}/api/appointments/{ids[1]}/payment/confirm", json={"token": token.get("id")}, timeout=60)
    statuses = [c.get(f"{base}/api/appointments/{i}", timeout=60).json()["status"] for i in ids]
    yield ("one card payment for the course confirms all 3 visits", started.get("amount") == due
           and paid is not None and paid.status_code == 200 and statuses == ["confirmed"] * 3,
           f"{started.get('amount')} {paid.status_code if paid is not None else 'no Stripe.js'} {statuses}")
    resp = c.post(f"{base}/api/appointments/{ids[2]}/cancel", timeout=60)
    refund = resp.json().get("refund") or {}
    yield ("cancelling one prepaid visit refunds its share", resp.status_code == 200
           and refund.get("amount") == physio["price"], f"{resp.status_code} {refund}")


def main(argv=None):
    """Clone, run, check; exit 0 when every check held."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="an interpreter with requirements-dev.txt: skip the clone's install")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its logs are in instance/logs)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="clinic-acceptance-series-"))
    clone = work / "clinic"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    failed = 0
    proc, log = start(clone, port, args.python)
    try:
        wait_http(f"{base}/readyz", 200, timeout=900, process=proc)
        for name, ok, detail in checks(base):
            failed += not ok
            print(f"{'ok' if ok else 'FAILED'}: {name} ({detail})", flush=True)
    finally:
        stop_stack(proc, log)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
