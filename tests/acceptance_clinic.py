"""Acceptance check for issue 25 (the clinic's own front door), kept outside the suite.

    .venv/bin/python tests/acceptance_clinic.py [--python PATH] [--keep]

Clones this repository's committed HEAD into a temporary folder and starts the README's run command
there (`./scripts/run`, which installs the clone's own `.venv`; `--python` runs the same program,
`python -m devstack`, with an interpreter that already has the requirements, to skip the install).
Against the demo clinic it then checks, over HTTP as a visitor and a new patient would:

- `/` without signing in is the booking page, with the clinic's name, address and phone;
- `GET /api/clinic` lists 25 December 2026 and 1 January 2027 as closed (England's public holidays),
  and `GET /api/slots` offers no time on either day for any service, while the days around them
  have times;
- a booking's confirmation email (read from the stack's Maildir, `instance/mail/`) comes from the
  clinic's name, its footer names the address and phone, and its `.ics` LOCATION is the address.

Prints `ok` or `FAILED` per check; exit status 0 only when every check holds.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from email import policy
from email.parser import BytesParser
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.helpers import ROOT, wait_http  # noqa: E402

CLOSED_DAYS = (date(2026, 12, 25), date(2027, 1, 1))
OPEN_DAYS = (date(2026, 12, 24), date(2027, 1, 4))
CLINIC = "Riverside Clinic"
ADDRESS = "12 River Street"
PASSWORD = "amber kettle orbit"
failures = []


def check(ok, what):
    """Print one check's outcome and remember a failure."""
    print(f"{'ok' if ok else 'FAILED'}: {what}", flush=True)
    if not ok:
        failures.append(what)
    return ok


def start(clone, port, python):
    """The run command in the clone (or its program with `python`), in its own process group."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    command = [python, "-m", "devstack"] if python else ["./scripts/run"]
    log = open(clone / f"run-{port}.log", "a")
    return subprocess.Popen(command + ["--port", str(port)], cwd=clone, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True), log


def mails(clone, to):
    """Messages the stack's SMTP server kept for `to`."""
    found = []
    for sub in ("new", "cur"):
        folder = clone / "instance" / "mail" / sub
        for path in folder.glob("*") if folder.exists() else ():
            message = BytesParser(policy=policy.default).parse(path.open("rb"))
            if to in str(message["To"]):
                found.append(message)
    return found


def walk(base, clone):
    """Every check of the issue's "Done when" against the running stack."""
    visitor = requests.Session()
    front = visitor.get(f"{base}/", timeout=30, allow_redirects=False)
    page = front.text
    check(front.status_code == 200 and "Book an appointment" in page and f"· {CLINIC}</title>" in page,
          "/ without signing in is the booking page, titled with the clinic's name")
    check(ADDRESS in page and "020 7946 0123" in page, "/ shows the clinic's address and phone")

    profile = visitor.get(f"{base}/api/clinic", timeout=30).json()
    closed = {c["date"]: c["reason"] for c in profile["closures"]}
    check(profile["name"] == CLINIC and ADDRESS in profile["address"], "GET /api/clinic names the clinic and its address")
    for day in CLOSED_DAYS:
        check(day.isoformat() in closed, f"GET /api/clinic lists {day} as closed ({closed.get(day.isoformat())})")
    services = visitor.get(f"{base}/api/services", timeout=30).json()
    for day in CLOSED_DAYS:
        offered = [s for svc in services for s in visitor.get(
            f"{base}/api/slots", params={"service": svc["id"], "from": day.isoformat(), "days": 1}, timeout=30).json()]
        check(offered == [], f"no service has a free time on {day}")
    around = sum(len(visitor.get(f"{base}/api/slots", params={"service": svc["id"], "from": day.isoformat(), "days": 1},
                                 timeout=30).json()) for svc in services for day in OPEN_DAYS)
    check(around > 0, f"the days around them ({', '.join(map(str, OPEN_DAYS))}) have free times")

    email = f"acceptance-{int(time.time())}@example.com"
    patient = requests.Session()
    registered = patient.post(f"{base}/api/auth/register", timeout=60,
                              json={"email": email, "password": PASSWORD, "name": "Ada Acceptance"})
    check(registered.status_code == 201, "a new patient registers")
    signed = patient.post(f"{base}/api/auth/login", timeout=60, json={"email": email, "password": PASSWORD})
    check(signed.status_code == 200, "and signs in")
    free = next(s for s in services if s["price"] == 0)
    slot = patient.get(f"{base}/api/slots", params={"service": free["id"], "days": 14}, timeout=30).json()[0]
    booked = patient.post(f"{base}/api/appointments", timeout=30,
                          headers={"X-CSRF-TOKEN": patient.cookies.get("csrf_access_token", "")},
                          json={"service": free["id"], "provider": slot["provider"], "start": slot["start"]})
    check(booked.status_code == 201 and booked.json()["status"] == "confirmed",
          f"the patient books a free time ({booked.status_code} {booked.text[:200]})")
    deadline = time.monotonic() + 150  # the stack's worker sends in seconds; a loaded machine may be slower
    while not mails(clone, email) and time.monotonic() < deadline:
        time.sleep(0.1)  # a Maildir listing: cheap to look often
    received = mails(clone, email)
    if not check(bool(received), "the confirmation email arrives"):
        return
    message = received[0]
    check(str(message["From"]).startswith(f"{CLINIC} <"), f"its From header names the clinic: {message['From']}")
    text = message.get_body(preferencelist=("plain",)).get_content()
    check(ADDRESS in text and "020 7946 0123" in text, "its footer names the address and phone")
    ics = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    location = ""
    if ics:
        unfolded = ics[0].get_payload(decode=True).decode().replace("\r\n ", "")
        location = next((line for line in unfolded.splitlines() if line.startswith("LOCATION")), "")
    check(ADDRESS in location, f"its .ics LOCATION is the address: {location}")


def main(argv=None):
    """Clone, run, check; exit 0 when every check passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="run `python -m devstack` with this interpreter instead of ./scripts/run")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its logs are in instance/logs)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="clinic-acceptance-25-"))
    clone = work / "clinic"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = start(clone, port, args.python)
    try:
        wait_http(f"{base}/readyz", 200, timeout=900, process=proc)
        walk(base, clone)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it
        try:
            proc.wait(timeout=60)
        finally:
            log.close()
        if args.keep:
            print(f"clone kept at {clone}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("ALL OK" if not failures else f"{len(failures)} check(s) FAILED")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
