"""Fault acceptance check, kept outside the suite: issue 31 replayed over HTTP on the run command's stack.

    .venv/bin/python tests/acceptance_faults.py [-k WORD]

Starts the one-machine stack (`devstack.stack.start_stack`, throwaway stores, SecantusDB with its test
commands on for `configureFailPoint`), seeds a small clinic, runs the app under gunicorn (2 workers)
and replays, as a patient would see them:

1. an idempotent booking: one `Idempotency-Key` sent four times at once and once more later books
   once and answers the same each time; the key with another body is refused (422);
2. a healed half-cancel: the workers are killed (SIGKILL) while a cancellation's second write hangs,
   leaving an appointment cancelled that still holds its time and has no email queued; the patient's
   repeated cancel answers 200 and finishes it (time free for another patient, email queued once);
3. a paused MongoDB (SIGSTOP): `/readyz` and a signed-in page answer 503 within 3 s instead of
   hanging, and answer again once it resumes (SIGCONT), without a restart.

Prints `ok` or `FAILED` per check and the figures measured; exit status 0 only when all hold.
"""

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path

import psutil
import pymongo
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.acceptance_security import Context, at, day, seed  # noqa: E402
from tests.helpers import clean_env, start_gunicorn, stop_process, wait_http  # noqa: E402


class Run:
    """What a check gets beyond the Context: the app's process, the stack and the database."""

    def __init__(self, ctx, proc, stack, config):
        self.ctx, self.proc, self.stack, self.config = ctx, proc, stack, config
        self.client = pymongo.MongoClient(config["MONGODB_URI"], appname="acceptance", serverSelectionTimeoutMS=5000)
        self.db = self.client[config["MONGODB_DB"]]

    def failpoint(self, mode, **data):
        self.client.admin.command("configureFailPoint", "failCommand", mode=mode,
                                  data=dict(appName="clinic", **data) if data else {})


def check_idempotent_booking(run):
    """Four copies of one booking sent at once, and once more: one appointment, one answer."""
    ctx = run.ctx
    patient = ctx.patient("idem")
    body = {"service": ctx.ids["call"], "provider": ctx.ids["a"], "start": at(day(5), 10).isoformat()}
    key = uuid.uuid4().hex
    answers = [None] * 4

    def send(i):
        answers[i] = patient.post(f"{ctx.base}/api/appointments", json=body, timeout=60,
                                  headers={"Idempotency-Key": key})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    later = patient.post(f"{ctx.base}/api/appointments", json=body, timeout=60, headers={"Idempotency-Key": key})
    mine = [a for a in ctx.appointments(patient) if a["status"] in ("held", "confirmed")]
    assert len(mine) == 1, f"{len(mine)} appointments from one key: {[a.status_code for a in answers]}"
    ok = [a for a in answers + [later] if a.status_code == 201]
    assert ok and all(a.json()["id"] == mine[0]["id"] for a in ok), [a.status_code for a in answers]
    assert all(a.status_code in (201, 409) for a in answers), [a.status_code for a in answers]
    assert later.status_code == 201 and later.headers.get("Idempotent-Replayed") == "true"
    other = patient.post(f"{ctx.base}/api/appointments", timeout=60, headers={"Idempotency-Key": key},
                         json=dict(body, start=at(day(5), 11).isoformat()))
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused", other.text
    print(f"       one key x4 at once: {[a.status_code for a in answers]}, later {later.status_code}, "
          f"other body {other.status_code}")


def check_healed_half_cancel(run):
    """Workers killed between a cancellation's status change and the release of its time."""
    ctx = run.ctx
    patient, other = ctx.patient("half"), ctx.patient("next")
    start = at(day(6), 10)
    booked = ctx.book(patient, "call", "a", start)
    assert booked.status_code == 201, booked.text
    appt_id = booked.json()["id"]
    from bson import ObjectId

    oid = ObjectId(appt_id)
    run.failpoint("alwaysOn", failCommands=["delete"], blockConnection=True, blockTimeMS=2000)
    try:
        threading.Thread(target=_quietly, daemon=True, args=(lambda: patient.post(
            f"{ctx.base}/api/appointments/{appt_id}/cancel", json={}, timeout=30),)).start()
        deadline = time.monotonic() + 20
        while run.db.appointments.count_documents({"_id": oid, "status": "cancelled"}) == 0:
            assert time.monotonic() < deadline, "the cancellation never reached its first write"
            time.sleep(0.02)
        for worker in psutil.Process(run.proc.pid).children():
            os.kill(worker.pid, signal.SIGKILL)
    finally:
        run.failpoint("off")
    held = run.db.time_claims.count_documents({"appointment": oid})
    mailed = run.db.outbox.count_documents({"appointment": oid, "kind": "cancelled"})
    assert held > 0 and mailed == 0, f"not half-done: {held} claims, {mailed} emails"
    taken = ctx.book(other, "call", "a", start)
    assert taken.status_code == 409, f"half-cancelled time already bookable: {taken.status_code}"
    wait_http(ctx.base + "/readyz", 200, timeout=60, process=run.proc)
    retry = patient.post(f"{ctx.base}/api/appointments/{appt_id}/cancel", json={}, timeout=30)
    assert retry.status_code == 200 and retry.json()["status"] == "cancelled", retry.text
    assert run.db.time_claims.count_documents({"appointment": oid}) == 0
    assert run.db.outbox.count_documents({"appointment": oid, "kind": "cancelled"}) == 1
    assert ctx.book(other, "call", "a", start).status_code == 201
    print(f"       half-cancel left {held} claims and no email; the retry answered {retry.status_code} "
          "and freed the time")


def check_paused_mongodb(run):
    """MongoDB stopped with SIGSTOP: 503 within 3 s, then answers again once resumed."""
    ctx = run.ctx
    patient = ctx.patient("paused")
    mongod = run.stack.find("mongodb")
    assert mongod is not None, "needs the stack's own SecantusDB"
    os.kill(mongod.process.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        ready = requests.get(f"{ctx.base}/readyz", timeout=30)
        took_ready = time.monotonic() - began
        began = time.monotonic()
        mine = patient.get(f"{ctx.base}/api/appointments", timeout=30)
        took_list = time.monotonic() - began
    finally:
        os.kill(mongod.process.pid, signal.SIGCONT)
    assert ready.status_code == 503 and took_ready < 3.0, (ready.status_code, took_ready)
    assert mine.status_code == 503 and took_list < 3.5, (mine.status_code, took_list)
    assert mine.json()["error"]["code"] == "unavailable"
    back = wait_http(f"{ctx.base}/readyz", 200, timeout=30, process=run.proc)
    assert back.status_code == 200
    assert patient.get(f"{ctx.base}/api/appointments", timeout=30).status_code == 200
    print(f"       paused: /readyz 503 in {took_ready:.2f} s, /api/appointments 503 in {took_list:.2f} s; "
          "resumed: 200")


def _quietly(call):
    try:
        call()
    except requests.RequestException:
        pass  # its worker was killed under it


CHECKS = [check_idempotent_booking, check_healed_half_cancel, check_paused_mongodb]


def main(argv=None):
    """Start the stack (test commands on) and the app, run every check, print ok/FAILED; exit 0 when all hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="run only the checks whose name contains this")
    args = parser.parse_args(argv)
    from devstack.stack import start_stack

    home = tempfile.mkdtemp(prefix="clinic-acceptance-faults-")
    stack = start_stack(home, keep=False, environ={}, test_commands=True)
    proc = None
    try:
        tag = uuid.uuid4().hex[:8]
        config = dict(stack.env, MONGODB_DB=f"acceptance_{tag}", REDIS_PREFIX=f"acceptance:{tag}:",
                      SECRET_KEY=f"acceptance-secret-{tag}-0123456789", STRIPE_WEBHOOK_SECRET="whsec_acceptance",
                      JWT_SECRET_KEY=f"acceptance-jwt-{tag}-0123456789", COOKIE_SECURE="0",
                      REGISTRATIONS_PER_HOUR="1000")
        ids = seed(config)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_gunicorn(clean_env(**config), port, workers=2)
        wait_http(base + "/readyz", 200, timeout=90, process=proc)
        run = Run(Context(base, ids), proc, stack, config)
        failed = 0
        for check in CHECKS:
            if args.k not in check.__name__:
                continue
            try:
                check(run)
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
