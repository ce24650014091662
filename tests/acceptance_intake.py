"""Acceptance check for issue 28 (intake questions and dependants), kept outside the suite.

    .venv/bin/python tests/acceptance_intake.py [--keep]

Clones this repository's committed HEAD into a temporary folder, starts the README's run command
there with a clean environment (like tests/acceptance.py), and through the public API
(shared/CONTRACT.md): reads the demo physiotherapy service's two intake questions (one required),
is refused a booking without the required answer (422 `answers_required`), adds a child as a
dependant, books the child's visit with answers (`for`, `answers`), sees it listed for the child,
checks that another patient gets 404 booking for that child, that the export holds the child and
the answers, and that the clinician's appointment page in the back office shows the answers. Exit
status 0 means every step passed.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.helpers import ROOT, wait_http  # noqa: E402
from tests.test_newcomer import run_stack, stop_stack  # noqa: E402

PASSWORD = "a-long-acceptance-password-28"
DEMO_PASSWORD = "clinic-demo-2026"


def check(condition, what):
    """Fail loudly, naming the step."""
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}", flush=True)


def patient(base, email, name):
    """A registered, signed-in patient session with its CSRF header."""
    session = requests.Session()
    resp = session.post(f"{base}/api/auth/register", json={"email": email, "password": PASSWORD, "name": name}, timeout=30)
    assert resp.status_code == 201, resp.text
    assert session.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=30).status_code == 200
    session.headers["X-CSRF-TOKEN"] = session.cookies.get("csrf_access_token")
    return session


def journey(base):
    """The steps, against a running stack at `base`."""
    parent = patient(base, "parent-28@example.com", "Pat Parent")
    services = parent.get(f"{base}/api/services", timeout=30).json()
    physio = next(s for s in services if s["name"] == "Physiotherapy session")
    questions = physio["questions"]
    check(len(questions) == 2 and sum(q["required"] for q in questions) == 1,
          "the demo physiotherapy service asks two questions, one required")
    required = next(q for q in questions if q["required"])
    other = next(q for q in questions if not q["required"])
    slots = parent.get(f"{base}/api/slots", params={"service": physio["id"], "days": 21}, timeout=60).json()
    check(len(slots) >= 1, "physiotherapy has free times")
    slot = slots[0]
    body = {"service": physio["id"], "provider": slot["provider"], "start": slot["start"]}
    refused = parent.post(f"{base}/api/appointments", json={**body, "answers": {other["id"]: "yes"}}, timeout=30)
    check(refused.status_code == 422 and refused.json()["error"]["code"] == "answers_required",
          "a booking without the required answer is refused with 422 answers_required")
    long = parent.post(f"{base}/api/appointments", json={**body, "answers": {required["id"]: "x" * 5000}}, timeout=30)
    check(long.status_code == 422, "an answer over the length limit is refused with 422")
    added = parent.post(f"{base}/api/me/dependants", json={"name": "Kim Parent", "date_of_birth": "2017-06-01"},
                        timeout=30)
    check(added.status_code == 201 and added.json()["name"] == "Kim Parent", "the parent adds a child (201)")
    kid = added.json()
    listed = parent.get(f"{base}/api/me/dependants", timeout=30).json()
    check([d["id"] for d in listed] == [kid["id"]], "GET /api/me/dependants lists the child")
    answers = {required["id"]: "Sprained <b>wrist</b>", other["id"]: "no", "no-such-question": "ignored"}
    booked = parent.post(f"{base}/api/appointments", json={**body, "answers": answers, "for": kid["id"]}, timeout=30)
    check(booked.status_code == 201, f"the parent books for the child (201): {booked.text[:200]}")
    appt = booked.json()
    check(appt["for"]["id"] == kid["id"] and appt["status"] == "held", "the booking is the child's, held for payment")
    check([a["value"] for a in appt["answers"]] == ["Sprained <b>wrist</b>", "no"],
          "the answers are stored as given; the unknown one is ignored")
    mine = parent.get(f"{base}/api/appointments", timeout=30).json()
    check(any(a["id"] == appt["id"] and a["for"]["name"] == "Kim Parent" for a in mine),
          "the parent's appointment list shows the child's visit")
    stranger = patient(base, "stranger-28@example.com", "Sam Stranger")
    later = slots[-1]
    not_yours = stranger.post(f"{base}/api/appointments", json={
        "service": physio["id"], "provider": later["provider"], "start": later["start"],
        "answers": {required["id"]: "x"}, "for": kid["id"]}, timeout=30)
    check(not_yours.status_code == 404, "booking for someone else's dependant is 404")
    export = parent.get(f"{base}/api/me/export", timeout=30).json()
    check([d["name"] for d in export["dependants"]] == ["Kim Parent"], "the export holds the child")
    check(any(a.get("answers") for a in export["appointments"]), "the export holds the answers")
    # The clinician's appointment page shows the answers, escaped.
    staff = requests.Session()
    form = staff.get(f"{base}/admin/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form) or \
        re.search(r'name="csrf_token" value="([^"]+)"', form)
    signed = staff.post(f"{base}/admin/login", data={"csrf_token": token.group(1), "email": "admin@clinic.test",
                                                     "password": DEMO_PASSWORD}, timeout=30)
    check(signed.status_code == 200 and "/admin/login" not in signed.url, "an admin signs in to the back office")
    page = staff.get(f"{base}/admin/appointments/details/", params={"id": appt["id"]}, timeout=30).text
    check("Sprained &lt;b&gt;wrist&lt;/b&gt;" in page and "Kim Parent" in page,
          "the appointment page shows the child and the answers, escaped")


def main(argv=None):
    """Clone, run, walk the steps; exit 0 when every step passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone (its logs are in instance/logs)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="clinic-acceptance-28-"))
    clone = work / "clinic"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        proc, log = run_stack(clone, port)
        try:
            wait_http(f"{base}/readyz", 200, timeout=900, process=proc)
            journey(base)
        finally:
            stop_stack(proc, log)
    finally:
        if args.keep:
            print(f"clone kept at {clone}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("acceptance_intake: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
