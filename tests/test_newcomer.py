"""A newcomer's first run: a fresh clone, the README's run command, a clean environment.

The clone installs its own `.venv` with the project's pinned requirements and starts the real
one-machine stack (SecantusDB, Valkey, localstripe behind the Checkout stand-in, aiosmtpd), exactly
as a new developer would. Its install reuses the wheels pip keeps in its cache (`HOME` is passed
on), so after the suite's own install it takes seconds, and still proves the README's commands.

First run: a patient registers and books through the API, a wrong password gets 401; then, in
Chromium at a phone's size, a new patient registers at the front door, books the paid "General
consultation" and pays by card (4242…), then books again and pays with a card that asks for 3-D
Secure. Ctrl-C (SIGINT to the process group) stops every child. Second run, with
`PAYMENT_FLOW=checkout`: the data is still there, and the same paid journey goes through the
stand-in's hosted Checkout page. The journey fails on any script error, console error or failed
request (`tests/support/journeys.py`).
"""

import os
import signal
import subprocess

import pytest
import requests

from devstack.servers import free_port
from tests.helpers import ROOT, wait_http
from tests.support.journeys import paid_journey

PASSWORD = "quiet-meadow-copper-71"


def _readme_run_command():
    """The run command as README's table states it."""
    with open(os.path.join(ROOT, "README.md")) as fh:
        for line in fh:
            if line.startswith("| **run**"):
                return line.split("`")[1]
    raise AssertionError("README names no run command")


def _children_of(path):
    """Processes whose command line mentions `path` (the clone's own servers)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmd:
            found.append((int(pid), cmd))
    return found


@pytest.fixture
def clone(tmp_path):
    """A fresh `git clone` of this repository."""
    target = tmp_path / "clinic"
    subprocess.run(["git", "clone", "-q", ROOT, str(target)], check=True, timeout=120)
    return target


def run_stack(clone, port, **settings):
    """Start the README's run command in the clone with a clean environment (plus `settings`)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    command = _readme_run_command().split() + ["--port", str(port)]
    log = open(clone / f"run-{port}.log", "a")
    return subprocess.Popen(command, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True), log


def stop_stack(proc, log):
    """Ctrl-C, as a terminal sends it: SIGINT to the whole process group."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    finally:
        log.close()


@pytest.mark.slow
def test_a_fresh_clone_runs_books_pays_in_the_browser_stops_cleanly_and_keeps_its_data(clone, browser):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = run_stack(clone, port)
    try:
        # The first run installs the clone's .venv from the pinned requirements.
        wait_http(f"{base}/readyz", 200, timeout=600, process=proc)
        patient = requests.Session()
        resp = patient.post(f"{base}/api/auth/register", timeout=30, json={
            "email": "newcomer@example.com", "password": PASSWORD, "name": "Nia Newcomer"})
        assert resp.status_code == 201, resp.text
        wrong = requests.post(f"{base}/api/auth/login", timeout=30,
                              json={"email": "newcomer@example.com", "password": "not-the-password-1"})
        assert wrong.status_code == 401, wrong.text
        assert wrong.json()["error"]["code"]
        assert patient.post(f"{base}/api/auth/login", timeout=30, json={
            "email": "newcomer@example.com", "password": PASSWORD}).status_code == 200
        services = patient.get(f"{base}/api/services", timeout=10).json()
        free = next(s for s in services if s["price"] == 0)
        slots = patient.get(f"{base}/api/slots", params={"service": free["id"], "days": 14}, timeout=30).json()
        assert slots, "the demo clinic offers free times"
        booked = patient.post(f"{base}/api/appointments", timeout=30,
                              headers={"X-CSRF-TOKEN": patient.cookies["csrf_access_token"]},
                              json={"service": free["id"], "provider": slots[0]["provider"],
                                    "start": slots[0]["start"]})
        assert booked.status_code == 201, booked.text
        assert booked.json()["status"] == "confirmed"

        paid_journey(browser, base, "paying-by-card@example.com", PASSWORD, "elements",
                     shots=os.environ.get("SCREENSHOTS"))
    finally:
        stop_stack(proc, log)
    assert proc.returncode is not None
    leftovers = _children_of(str(clone))
    assert not leftovers, leftovers

    # A second run finds the patient and the appointment again, and takes payments through Checkout.
    proc, log = run_stack(clone, port, PAYMENT_FLOW="checkout")
    try:
        wait_http(f"{base}/readyz", 200, timeout=300, process=proc)
        again = requests.Session()
        assert again.post(f"{base}/api/auth/login", timeout=30, json={
            "email": "newcomer@example.com", "password": PASSWORD}).status_code == 200
        mine = again.get(f"{base}/api/appointments", timeout=10).json()
        assert [a["id"] for a in mine] == [booked.json()["id"]]

        paid_journey(browser, base, "paying-on-checkout@example.com", PASSWORD, "checkout",
                     shots=os.environ.get("SCREENSHOTS"))
    finally:
        stop_stack(proc, log)
    assert not _children_of(str(clone))
