"""Acceptance check for issue 29, outside the suite: the worker sends email and texts within seconds.

    python tests/acceptance_messages.py

Starts the run command's stack with its own SMTP server and SMS stand-in and ONE worker
(`start_stack(worker_env=…)`, as ./scripts/run does), the app under gunicorn, seeds the demo
clinic, then over HTTP: registers a patient with a phone typed as people type it, asks for email
and texts, books the free service, and checks that the confirmation arrives by email and by text
within 5 s of the booking; replies STOP through the stand-in and checks the number is refused further
texts; stops the worker with SIGTERM (exit 0). Prints PASS/FAIL per check; exits 1 on any failure.
"""

import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from devstack.servers import free_port  # noqa: E402
from devstack.sms_standin import read_messages  # noqa: E402
from devstack.stack import start_stack  # noqa: E402
from tests.helpers import clean_env, start_gunicorn, stop_process, wait_http  # noqa: E402
from tests.support.factories import daytime_zone  # noqa: E402

FAILURES = []


def check(name, ok, detail=""):
    """Print one check's outcome."""
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""), flush=True)
    if not ok:
        FAILURES.append(name)


def main():
    """Run the check."""
    home = tempfile.mkdtemp(prefix="clinic-acceptance-messages-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    secrets = {"SECRET_KEY": "acceptance-secret-key-0123456789abcdef",
               "JWT_SECRET_KEY": "acceptance-jwt-secret-0123456789abcdef",
               "STRIPE_WEBHOOK_SECRET": "whsec_acceptance", "COOKIE_SECURE": "0", "PUBLIC_URL": base,
               "PYTHONUNBUFFERED": "1"}
    stack = start_stack(home, keep=False, environ={}, sms_webhook=f"{base}/webhooks/sms", worker_env=secrets)
    env = clean_env(**secrets, **stack.env)
    proc = None
    try:
        subprocess_env = dict(env)
        import subprocess

        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "seed-demo"], cwd=ROOT, env=subprocess_env,
                       check=True, capture_output=True)
        # Texts keep quiet hours (21:00-08:00 on the clinic's clock): run where it is day now, so the
        # check measures a text sent at once whatever the hour here (the demo clinic is in London).
        zone = daytime_zone()
        import pymongo

        pymongo.MongoClient(env["MONGODB_URI"]).get_default_database("clinic")["clinics"].update_many(
            {}, {"$set": {"timezone": zone}})
        print(f"clinic's zone for this run: {zone}", flush=True)
        proc = start_gunicorn(env, port, workers=2)
        wait_http(base + "/readyz", 200, timeout=90, process=proc)
        s = requests.Session()
        resp = s.post(f"{base}/api/auth/register", json={"email": "text.me@example.com", "name": "Tess Text",
                                                         "password": "a long pass phrase 29", "phone": "07700 900123"})
        check("registration stores the phone in E.164", resp.status_code == 201 and resp.json()["phone"] == "+447700900123",
              resp.text[:200])
        bad = s.post(f"{base}/api/auth/register", json={"email": "bad.phone@example.com", "name": "Bad Phone",
                                                        "password": "a long pass phrase 29", "phone": "call me"})
        check("an invalid phone is refused with 422", bad.status_code == 422, bad.text[:200])
        s.post(f"{base}/api/auth/login", json={"email": "text.me@example.com", "password": "a long pass phrase 29"})
        s.headers["X-CSRF-TOKEN"] = s.cookies.get("csrf_access_token")
        me = s.patch(f"{base}/api/me", json={"contact_by": ["email", "sms"]})
        check("PATCH /api/me sets contact_by", me.status_code == 200 and me.json()["contact_by"] == ["email", "sms"], me.text[:200])

        free_service = next(sv for sv in s.get(f"{base}/api/services").json() if sv["price"] == 0)
        day = (datetime.now(timezone.utc) + timedelta(days=7)).date()
        slots = s.get(f"{base}/api/slots", params={"service": free_service["id"], "from": day.isoformat(), "days": 7}).json()
        committed = time.time()
        booked = s.post(f"{base}/api/appointments", json={"service": free_service["id"], "provider": slots[0]["provider"],
                                                          "start": slots[0]["start"]})
        check("booking the free service is confirmed", booked.status_code == 201 and booked.json()["status"] == "confirmed",
              booked.text[:200])
        mail_new = os.path.join(stack.mail_dir, "new")
        mail_at = sms_at = None
        deadline = time.time() + 15
        while time.time() < deadline and (mail_at is None or sms_at is None):
            for name in os.listdir(mail_new):
                if mail_at is None and "text.me@example.com" in open(os.path.join(mail_new, name), errors="replace").read():
                    mail_at = os.path.getmtime(os.path.join(mail_new, name))
            texts = [t for t in read_messages(stack.sms_dir) if t["to"] == "+447700900123"]
            if texts and sms_at is None:
                sms_at, body = texts[0]["received_at"], texts[0]["body"]
            time.sleep(0.1)
        check("the confirmation email arrives within 5 s", mail_at is not None and mail_at - committed < 5,
              f"{(mail_at or 0) - committed:.2f} s")
        check("the confirmation text arrives within 5 s, one segment, with a short link",
              sms_at is not None and sms_at - committed < 5 and len(body) <= 160 and f"{base}/a/" in body,
              f"{(sms_at or 0) - committed:.2f} s: {body if sms_at else ''}")

        sms = stack.find("sms")
        reply = requests.post(f"{sms.extra['base']}/_standin/reply", json={"From": "+447700900123", "Body": "STOP"}, timeout=10)
        check("a signed STOP reply is accepted by the webhook", reply.json().get("status") == 200, reply.text)
        forged = requests.post(f"{base}/webhooks/sms", data={"From": "+447700900123", "Body": "START"},
                               headers={"X-Twilio-Signature": "forged"}, timeout=10)
        check("a forged reply is refused with 403", forged.status_code == 403, str(forged.status_code))
        appointment = booked.json()["id"]
        s.post(f"{base}/api/appointments/{appointment}/cancel", json={})
        deadline = time.time() + 8
        while time.time() < deadline and not [m for m in os.listdir(mail_new)
                                              if "cancel" in open(os.path.join(mail_new, m), errors="replace").read().lower()]:
            time.sleep(0.1)
        texts = [t for t in read_messages(stack.sms_dir) if t["to"] == "+447700900123"]
        check("after STOP the cancellation goes by email only", len(texts) == 1, f"{len(texts)} text(s)")
    finally:
        if proc is not None:
            stop_process(proc)
        worker = stack.find("worker")
        stack.stop()
        check("the worker stops cleanly on SIGTERM", worker is not None and worker.process.returncode == 0,
              str(worker.process.returncode if worker else None))
    print("acceptance_messages:", "FAIL" if FAILURES else "all checks passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
