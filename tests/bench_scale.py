"""More than one machine, measured here: two app hosts and two message workers over one MongoDB and one Redis.

    python tests/bench_scale.py [--cluster] [--patients 16]

`hosts2(stack, redis_url)` starts two app instances (separate gunicorn masters on separate ports,
2 workers each) and two message workers (`flask --app wsgi worker` through
`devstack.servers.start_worker`, as the run command and tests/test_worker.py start it; production
runs one on every host) against the same MongoDB and Redis, and drives through both hosts,
alternately and racing each other: bookings, reschedules, cancellations, waitlist offers (joined,
offered by a cancellation on the other host, accepted) and card payments (localstripe). The two
workers are woken through Redis by every queued email and race to claim it. Once the workload is
done and no email due by then is still queued or being sent, both are stopped (SIGTERM). Then it
checks what a clinic would notice:

* `double_booked`: active appointments of one clinician that overlap (must be 0);
* `lost_messages`: emails due by the end of the workload that were not delivered to the SMTP
  server (still queued/sending/failed, or marked sent with no message in the Maildir);
* `duplicate_messages`: messages delivered more than once (the same outbox Message-ID twice);
* `errors_5xx`: answers with a 5xx status;
* `worker_errors`: a worker that logged an error or did not stop cleanly (must be empty);
* what the workload did, per kind (`KINDS`): `rescheduled`, `cancelled`, `waitlist_offered` (offers
  the waiting patients saw), `waitlist_accepted`, `paid`; `missing_kinds(figures)` names any kind
  that never happened (then the run proved nothing about it). `sent_by_worker`: emails each
  worker's log says it sent.

With `redis_url` naming a cluster (`redis+cluster://…`, see `devstack.servers.start_redis_cluster`)
the same workload checks the app on a Valkey Cluster; it also signs in with wrong passwords until
the sign-in throttle answers 429 (the throttle's transaction over several keys), which must work there.
tests/bench.py reports these as `hosts2` and `valkey_cluster`.
"""

import argparse
import glob
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from devstack.servers import free_port, start_worker  # noqa: E402
from tests.helpers import clean_env, start_gunicorn, stop_process, wait_http  # noqa: E402

PASSWORD = "bench password 1"
CARD_OK = "4242424242424242"
WORKERS = 2
# What the workload does besides booking; a run where one of these never happened checked nothing about it.
KINDS = ("rescheduled", "cancelled", "waitlist_offered", "waitlist_accepted", "paid")


def missing_kinds(figures):
    """The kinds of action (KINDS) a hosts2 report says never happened."""
    return [kind for kind in KINDS if not figures.get(kind)]


def _config(stack_env, redis_url, label):
    tag = uuid.uuid4().hex[:8]
    return {"MONGODB_URI": stack_env["MONGODB_URI"], "MONGODB_DB": f"{label}_{tag}", "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"{label}:{tag}:", "STRIPE_API_BASE": stack_env["STRIPE_API_BASE"],
            "STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
            "STRIPE_WEBHOOK_SECRET": "whsec_bench", "SECRET_KEY": "bench-secret-key-0123456789abcdef",
            "JWT_SECRET_KEY": "bench-jwt-secret-0123456789abcdef", "PAYMENT_FLOW": "elements"}


def _seed(config, patients):
    """A clinic with a free 15-minute call and a paid 30-minute visit, three clinicians, patients."""
    from clinic import create_app
    from models import Break, Clinic, DayHours, Provider, Schedule, Service
    from models.accounts import hash_password
    from models.documents import Patient

    create_app(dict(config, TESTING=True))
    Clinic(name="Scale Clinic", timezone="Europe/London", currency="gbp", hold_minutes=15).save()
    call = Service(name="Call", duration_minutes=15, price=0, min_notice_minutes=0, horizon_days=60,
                   cancellation_window_hours=0).save()
    visit = Service(name="Visit", duration_minutes=30, price=5000, min_notice_minutes=0, horizon_days=60,
                    cancellation_window_hours=0).save()
    providers = []
    for name in ("Dr One", "Dr Two", "Dr Three"):
        provider = Provider(name=name, services=[call, visit]).save()
        Schedule(provider=provider, days=[DayHours(weekday=d, start="09:00", end="17:00",
                                                   breaks=[Break(start="12:00", end="13:00")])
                                          for d in range(7)]).save()
        providers.append(str(provider.id))
    pw_hash = hash_password(PASSWORD)
    Patient.objects.insert([Patient(email=f"scale{i}@example.com", name=f"Scale Patient {i}",
                                    password_hash=pw_hash) for i in range(patients)])
    return {"call": str(call.id), "visit": str(visit.id), "providers": providers}


class Hosts:
    """Two hosts' base URLs, and every answer's status counted."""

    def __init__(self, bases):
        self.bases = bases
        self.codes = Counter()
        self.lock = threading.Lock()

    def call(self, i, session, method, path, **kwargs):
        """`method path` on host `i % 2` with the patient's session."""
        resp = session.request(method, self.bases[i % len(self.bases)] + path, timeout=60, **kwargs)
        with self.lock:
            self.codes[resp.status_code] += 1
        return resp


def _login(hosts, i):
    session = requests.Session()
    resp = hosts.call(i, session, "POST", "/api/auth/login", json={"email": f"scale{i}@example.com",
                                                                   "password": PASSWORD})
    resp.raise_for_status()
    session.headers["X-CSRF-TOKEN"] = session.cookies.get("csrf_access_token")
    return session


def _at_once(n, func):
    """func(i) for i in range(n) from n threads released together; the results in order."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = func(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _workload(hosts, ids, patients, stripe_base):
    """Bookings, reschedules, cancellations, waitlist offers and payments through both hosts; how
    many of each succeeded (`bookings` and KINDS)."""
    sessions = [_login(hosts, i) for i in range(patients)]
    anon = requests.Session()
    first = (datetime.now(timezone.utc) + timedelta(days=2)).date()
    one, two, three = ids["providers"]

    def free(service, provider, day, host=0):
        return hosts.call(host, anon, "GET", "/api/slots", params={
            "service": service, "provider": provider, "from": day.isoformat(), "days": 1}).json()

    bookings = 0
    # 1. Races: two patients (one per host) for each of a few times.
    targets = [s["start"] for s in free(ids["call"], one, first)[::2][: patients // 2]]
    booked = _at_once(patients, lambda i: hosts.call(i, sessions[i], "POST", "/api/appointments", json={
        "service": ids["call"], "provider": one, "start": targets[i % len(targets)]}))
    mine = {i: r.json()["id"] for i, r in enumerate(booked) if r.status_code == 201}
    bookings += len(mine)

    # 2. Reschedules through the other host, two patients racing for each new time (one wins, 200;
    #    the other gets 409 and keeps their time).
    later = [s["start"] for s in free(ids["call"], two, first + timedelta(days=1), host=1)[::2][: len(mine)]]
    movers = sorted(mine)
    moved = _at_once(len(movers), lambda k: hosts.call(movers[k] + 1, sessions[movers[k]], "POST",
                                                       f"/api/appointments/{mine[movers[k]]}/reschedule",
                                                       json={"start": later[k // 2], "provider": two}))
    done = {"rescheduled": sum(r.status_code == 200 for r in moved)}

    # 3. Waitlist: the patients without a booking ask for Dr Two's day, which the moves filled
    #    partly; cancellations on the other host free times, offered to them; they accept.
    waiting = [i for i in range(patients) if i not in mine]
    day = first + timedelta(days=1)
    for i in waiting:
        hosts.call(i, sessions[i], "POST", "/api/waitlist", json={
            "service": ids["call"], "provider": two, "from": day.isoformat(), "to": day.isoformat()})
    # Fill Dr Two's remaining times on that day so the waitlist waits for a cancellation.
    for k, slot in enumerate(free(ids["call"], two, day)):
        r = hosts.call(k, sessions[movers[k % len(movers)]], "POST", "/api/appointments", json={
            "service": ids["call"], "provider": two, "start": slot["start"]})
        if r.status_code == 201:
            bookings += 1
            mine.setdefault(-1 - k, r.json()["id"])
    cancellers = movers[: len(waiting)]
    cancels = _at_once(len(cancellers), lambda k: hosts.call(
        cancellers[k] + 1, sessions[cancellers[k]], "POST", f"/api/appointments/{mine[cancellers[k]]}/cancel"))
    done["cancelled"] = sum(r.status_code == 200 for r in cancels)
    # A freed time of Dr Two's day is offered at once to a waiting patient, who sees it and accepts.
    done["waitlist_offered"] = done["waitlist_accepted"] = 0
    for i in waiting:
        for entry in hosts.call(i + 1, sessions[i], "GET", "/api/waitlist").json():
            if entry.get("status") == "offered":
                done["waitlist_offered"] += 1
                r = hosts.call(i, sessions[i], "POST", f"/api/waitlist/{entry['id']}/accept")
                done["waitlist_accepted"] += r.status_code == 201
    bookings += done["waitlist_accepted"]

    # 4. Payments: paid visits with Dr Three, each paid by card through the other host.
    visits = [s["start"] for s in free(ids["visit"], three, first + timedelta(days=2))][: patients // 2]

    def book_and_pay(k):
        i = patients - 1 - k  # the patients with the fewest bookings so far (a patient's holds are capped)
        r = hosts.call(i, sessions[i], "POST", "/api/appointments", json={
            "service": ids["visit"], "provider": three, "start": visits[k % len(visits)]})
        if r.status_code != 201:
            return 0
        appt = r.json()["id"]
        hosts.call(i + 1, sessions[i], "POST", f"/api/appointments/{appt}/payment")
        token = requests.post(f"{stripe_base}/v1/tokens", timeout=30, data={
            "card[number]": CARD_OK, "card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123",
            "key": "pk_test_bench"}).json()["id"]
        paid = hosts.call(i, sessions[i], "POST", f"/api/appointments/{appt}/payment/confirm", json={"token": token})
        return 1 if paid.status_code == 200 else 0

    done["paid"] = sum(_at_once(len(visits), book_and_pay))
    return dict(done, bookings=bookings + done["paid"])


def _throttle_holds(hosts):
    """Wrong passwords for one account through both hosts until 429: the throttle's transaction works."""
    session = requests.Session()
    for k in range(12):
        resp = hosts.call(k, session, "POST", "/api/auth/login", json={"email": "scale0@example.com",
                                                                      "password": "not the password"})
        if resp.status_code == 429:
            return True
    return False


def _mail_ids(mail_dir):
    """Message-IDs of the outbox messages in the SMTP server's Maildir, with how often each arrived."""
    found = Counter()
    for path in glob.glob(os.path.join(mail_dir, "new", "*")) + glob.glob(os.path.join(mail_dir, "cur", "*")):
        with open(path, "rb") as fh:
            head = fh.read(8192).decode("utf-8", "replace")
        m = re.search(r"^Message-ID:\s*<outbox-([0-9a-f]{24})@", head, re.M | re.I)
        if m:
            found[m.group(1)] += 1
    return found


def _wait_for(predicate, timeout):
    """Poll `predicate` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _unsent(last_due):
    """Emails due by `last_due` that no worker has finished with yet (queued or being sent)."""
    from models.messages.documents import OutboxMessage

    return OutboxMessage.objects(due_at__lte=last_due, status__in=("queued", "sending")).count()


def _read(path):
    """A worker's log so far."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _worker_report(workers, logs):
    """Emails each worker says it sent, and what went wrong with any of them (an error logged, an
    unclean stop)."""
    sent, errors = [], []
    for k, (worker, path) in enumerate(zip(workers, logs)):
        text = _read(path)
        sent.append(sum(int(n) for n in re.findall(r"^(?:sweep: )?mail: (\d+) sent", text, re.M)))
        bad = [line for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback")]
        if worker.process.returncode != 0 or "worker: stopped" not in text:
            bad.append(f"exit status {worker.process.returncode}; log ends: {text[-300:]!r}")
        errors += [f"worker {k + 1}: {line}" for line in bad]
    return sent, errors


def hosts2(stack, redis_url=None, patients=16, label="hosts2"):
    """Run the two-host workload against the stack (or `redis_url`); the figures a clinic would notice."""
    from clinic import create_app

    env_stack = stack.env
    redis_url = redis_url or env_stack["REDIS_URL"]
    config = _config(env_stack, redis_url, label)
    ids = _seed(config, patients)
    env = clean_env(**config, COOKIE_SECURE="0", SMTP_URL=env_stack.get("SMTP_URL", ""),
                    BOOKINGS_PER_ADDRESS_10MIN="1000000", BOOKINGS_PER_ACCOUNT_10MIN="1000000",
                    RESCHEDULES_PER_ACCOUNT_10MIN="1000000")
    ports = [free_port(), free_port()]
    log_dir = tempfile.mkdtemp(prefix=f"{label}-")
    logs = [os.path.join(log_dir, f"worker{k + 1}.log") for k in range(WORKERS)]
    procs, workers = [], []
    started = time.monotonic()
    try:
        procs = [start_gunicorn(env, port, workers=2) for port in ports]
        # Production's worker, as many as hosts, each with the app's settings (production's poll).
        workers = [start_worker(dict(env, PYTHONUNBUFFERED="1"), log_path=path) for path in logs]
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, proc in zip(bases, procs):
            wait_http(base + "/readyz", 200, timeout=120, process=proc)

        def all_up():
            return all(w.process.poll() is not None or "worker: started" in _read(path)
                       for w, path in zip(workers, logs))

        _wait_for(all_up, 120)  # both are waiting for wake-ups before the first email is queued
        hosts = Hosts(bases)
        done = _workload(hosts, ids, patients, env_stack["STRIPE_API_BASE"])
        throttled = _throttle_holds(hosts)
        last_due = datetime.now(timezone.utc)
        create_app(dict(config, TESTING=True))
        # Everything due by now goes out (the wake-ups, or a poll after a lost one), then stop.
        _wait_for(lambda: not _unsent(last_due) or any(w.process.poll() is not None for w in workers), 180)
    finally:
        for proc in procs:
            stop_process(proc)
        for worker in workers:
            worker.stop()  # SIGTERM, as systemd stops it
    sent, worker_errors = _worker_report(workers, logs)
    figures = _check(config, stack.mail_dir, hosts, throttled, last_due, time.monotonic() - started)
    return dict(figures, **done, workers=len(workers), sent_by_worker=sent, worker_errors=worker_errors)


def _check(config, mail_dir, hosts, throttled, last_due, seconds):
    """Double bookings, lost and duplicated emails and 5xx answers, from the database and the Maildir."""
    from clinic import create_app
    from models import Appointment
    from models.messages.documents import OutboxMessage

    create_app(dict(config, TESTING=True))
    double = 0
    for provider in {a.provider.id for a in Appointment.objects.no_dereference()}:
        active = sorted((a.block_start, a.block_end) for a in Appointment.objects(
            provider=provider, status__in=("held", "confirmed", "checked_in")))
        double += sum(1 for a, b in zip(active, active[1:]) if b[0] < a[1])
    delivered = _mail_ids(mail_dir)
    lost = duplicate = 0
    kinds = Counter()
    for message in OutboxMessage.objects(due_at__lte=last_due):
        kinds[(message.kind, message.status)] += 1
        if message.status in ("queued", "sending", "failed"):
            lost += 1
        elif message.status == "sent":
            n = delivered.get(str(message.id), 0)
            lost += n == 0
            duplicate += max(0, n - 1)
    return {"double_booked": double, "lost_messages": lost, "duplicate_messages": duplicate,
            "errors_5xx": sum(n for code, n in hosts.codes.items() if code >= 500),
            "throttled": throttled, "statuses": {str(k): v for k, v in sorted(hosts.codes.items())},
            "messages": {f"{k}:{s}": n for (k, s), n in sorted(kinds.items())}, "seconds": round(seconds, 1)}


def valkey_cluster(stack, patients=12):
    """The same workload with the app on a 3-primary Valkey cluster: `{ok, errors, …}`."""
    from devstack.servers import start_redis_cluster

    cluster = start_redis_cluster(tempfile.mkdtemp(prefix="clinic-cluster-"))
    try:
        figures = hosts2(stack, redis_url=cluster.url, patients=patients, label="cluster")
    finally:
        cluster.stop()
    errors = figures["errors_5xx"] + figures["double_booked"] + figures["lost_messages"] + \
        figures["duplicate_messages"] + len(figures["worker_errors"]) + len(missing_kinds(figures)) + \
        (0 if figures["throttled"] else 1) + (0 if figures["bookings"] else 1)
    return dict(figures, ok=errors == 0, errors=errors)


def main():
    """Run the two-host workload (and with --cluster the Valkey Cluster one) on a fresh stack."""
    from devstack.stack import start_stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=16)
    parser.add_argument("--cluster", action="store_true", help="also run it on a 3-primary Valkey cluster")
    args = parser.parse_args()
    named = {k: os.environ[k] for k in ("MONGODB_URI", "REDIS_URL") if os.environ.get(k)}
    stack = start_stack(tempfile.mkdtemp(prefix="clinic-scale-"), keep=False, environ=named)
    try:
        result = {"hosts2": hosts2(stack, patients=args.patients)}
        if args.cluster:
            result["valkey_cluster"] = valkey_cluster(stack, patients=args.patients)
        print(json.dumps(result))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
