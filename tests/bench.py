"""Benchmark: the app under gunicorn on the one-machine stack, loaded from this separate process.

    python tests/bench.py [--seconds 5] [--workers 4] [--threads 8]

Starts the run command's stack (`devstack.stack.start_stack`, throwaway stores; MONGODB_URI / REDIS_URL when set), seeds a
clinic, starts gunicorn with several workers, and measures, in the same run and under the same
load: requests per second on /healthz (the cheapest route), on /api/slots (one provider, 7 days,
with appointments booked) and on POST /api/appointments (distinct free times); MongoDB commands per
request (pymongo command monitoring, reported by the app in X-DB-Commands); a race of many
patients for a few times through all workers; and, with a `flask worker` running, a message's commit
to SMTP accept and how fast the worker drains a backlog of confirmations queued at once (issue 31).
Human-readable figures first, one JSON object last.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from devstack.servers import free_port  # noqa: E402
from devstack.stack import start_stack  # noqa: E402
from tests.helpers import clean_env, start_gunicorn, stop_process, wait_http  # noqa: E402

PASSWORD = "bench password 1"
ANY_SIZES = (4, 20, 50)
MIXED_PATIENTS = 20


def seed(config, patients):
    """Create the clinic data in the benchmark database, in-process."""
    from clinic import create_app
    from models import Break, Clinic, DayHours, Provider, Schedule, Service, StaffUser
    from models.accounts import create_staff, hash_password
    from models.documents import Patient

    create_app(dict(config, TESTING=True))
    Clinic(name="Bench Clinic", timezone="Europe/London", currency="gbp", hold_minutes=15).save()
    call = Service(name="Call", duration_minutes=15, price=0, min_notice_minutes=0, horizon_days=120).save()
    consult = Service(name="Consultation", duration_minutes=30, price=5000, buffer_after_minutes=5,
                      min_notice_minutes=0, horizon_days=120).save()
    providers = []
    for name in ("Dr Slots", "Dr Book", "Dr Race", "Dr Admin"):
        provider = Provider(name=name, services=[call, consult]).save()
        Schedule(provider=provider, days=[DayHours(weekday=d, start="08:00", end="18:00",
                                                   breaks=[Break(start="12:00", end="13:00")])
                                          for d in range(7)]).save()
        providers.append(provider)
    # "Any provider" at three clinic sizes: Any 4, Any 20 and Any 50 are offered by the first 4, 20
    # and 50 of fifty more providers. Each starts a minute later than the one before, so no two share
    # weekly hours (or times): nothing computed for one provider can serve another.
    any_services = {n: Service(name=f"Any {n}", duration_minutes=15, price=0, min_notice_minutes=0,
                               horizon_days=400).save() for n in ANY_SIZES}
    for i in range(max(ANY_SIZES)):
        provider = Provider(name=f"Dr Any {i:02d}", services=[s for n, s in any_services.items() if i < n]).save()
        Schedule(provider=provider, days=[DayHours(weekday=d, start=f"07:{i:02d}", end="18:00",
                                                   breaks=[Break(start="12:00", end="13:00")])
                                          for d in range(7)]).save()
    mixed = Provider(name="Dr Mixed", services=[call]).save()
    Schedule(provider=mixed, days=[DayHours(weekday=d, start="08:00", end="18:00") for d in range(7)]).save()
    providers.append(mixed)
    pw_hash = hash_password(PASSWORD)
    Patient.objects.insert([Patient(email=f"bench{i}@example.com", name=f"Bench Patient {i}",
                                    password_hash=pw_hash) for i in range(patients)])
    create_staff("reception@bench.test", "reception", PASSWORD)
    return {"call": str(call.id), "consult": str(consult.id),
            "any": {n: str(svc.id) for n, svc in any_services.items()},
            "providers": {p.name: str(p.id) for p in providers}}, StaffUser


def login(base, email):
    """A signed-in requests session."""
    session = requests.Session()
    resp = session.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    resp.raise_for_status()
    session.headers["X-CSRF-TOKEN"] = session.cookies.get("csrf_access_token")
    return session


def load(fn, seconds, threads):
    """Call fn(thread_index, n) from `threads` threads for `seconds`; return (rps, status counts)."""
    stop = time.monotonic() + seconds
    counts = Counter()
    lock = threading.Lock()

    def worker(index):
        n = 0
        local = Counter()
        while time.monotonic() < stop:
            local[fn(index, n)] += 1
            n += 1
        with lock:
            counts.update(local)

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    elapsed = time.monotonic() - started
    return sum(counts.values()) / elapsed, counts


def main():
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description="Clinic booking benchmark")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--race-patients", type=int, default=40)
    parser.add_argument("--race-slots", type=int, default=5)
    parser.add_argument("--any-repeats", type=int, default=5, help="runs per 'any provider' figure (median)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating /healthz and /api/slots windows")
    parser.add_argument("--scale-patients", type=int, default=16,
                        help="patients of the two-host and Valkey Cluster workloads (0 skips them)")
    args = parser.parse_args()

    # The run command's stack (throwaway stores), or MONGODB_URI / REDIS_URL when set.
    named = {k: os.environ[k] for k in ("MONGODB_URI", "REDIS_URL") if os.environ.get(k)}
    stack = start_stack(tempfile.mkdtemp(prefix="clinic-bench-"), keep=False, environ=named)
    mongo_uri = named.get("MONGODB_URI") or stack.env["MONGODB_URI"]
    redis_url = named.get("REDIS_URL") or stack.env["REDIS_URL"]
    tag = uuid.uuid4().hex[:8]
    config = {"MONGODB_URI": mongo_uri, "MONGODB_DB": f"bench_{tag}", "REDIS_URL": redis_url,
              "REDIS_PREFIX": f"bench:{tag}:", "STRIPE_API_BASE": stack.env["STRIPE_API_BASE"],
              "STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
              "STRIPE_WEBHOOK_SECRET": "whsec_bench", "SECRET_KEY": "bench-secret-key-0123456789abcdef",
              "JWT_SECRET_KEY": "bench-jwt-secret-0123456789abcdef"}
    patients = max(args.race_patients, 60)
    ids, _ = seed(config, patients + MIXED_PATIENTS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Every request comes from one address and few patients: lift the booking-attempt limits.
    env = clean_env(**config, COOKIE_SECURE="0", COUNT_DB_COMMANDS="1", BOOKINGS_PER_ADDRESS_10MIN="1000000",
                    BOOKINGS_PER_ACCOUNT_10MIN="1000000")
    # Login throttling counts failures only, but the benchmark signs many patients in from one address.
    proc = start_gunicorn(env, port, workers=args.workers)
    try:
        wait_http(base + "/readyz", 200, timeout=90, process=proc)
        print(f"gunicorn: {args.workers} workers at {base}; load: {args.threads} threads x {args.seconds:.0f} s")
        sessions = [login(base, f"bench{i}@example.com") for i in range(patients + MIXED_PATIENTS)]
        now = datetime.now(timezone.utc)

        # Busy calendar for the slots figure: book a spread of times for Dr Slots.
        slot_provider = ids["providers"]["Dr Slots"]
        first_day = (now + timedelta(days=1)).date()
        week = requests.get(f"{base}/api/slots", params={"service": ids["call"], "provider": slot_provider,
                                                        "from": first_day.isoformat(), "days": 7}, timeout=30).json()
        for i, slot in enumerate(week[::6][:30]):
            # The last patients, so the booking phase's patients have no overlapping appointments.
            sessions[patients - 1 - i % 10].post(f"{base}/api/appointments", timeout=30, json={
                "service": ids["call"], "provider": slot_provider, "start": slot["start"]})

        hello = requests.Session()
        slot_params = {"service": ids["consult"], "provider": slot_provider, "from": first_day.isoformat(), "days": 7}
        # The address with its query string, encoded once: this client shares the machine's two
        # cores with the server (it uses most of one), so encoding the parameters on every request
        # would charge the client's work to /api/slots' figure (issue 30).
        slots_url = requests.Request("GET", f"{base}/api/slots", params=slot_params).prepare().url
        hello_url = f"{base}/healthz"
        # /healthz and cached /api/slots in short alternating windows (`--rounds` of each): on a
        # shared, noisy machine the load moves from second to second, and alternating often gives
        # both the same share of it. The ratio is that of the totals; each pair's is the spread.
        hello_codes, slot_codes, pairs = Counter(), Counter(), []
        client_cpu = {"hello": 0.0, "slots": 0.0}  # this process's CPU seconds in each one's windows

        def window(kind, url):
            started = os.times()
            rps, codes = load(lambda i, n: hello.get(url, timeout=30).status_code,
                              args.seconds / args.rounds, args.threads)
            ended = os.times()
            client_cpu[kind] += ended.user - started.user + ended.system - started.system
            return rps, codes

        for _ in range(args.rounds):
            rps_h, codes = window("hello", hello_url)
            hello_codes.update(codes)
            rps_s, codes = window("slots", slots_url)
            slot_codes.update(codes)
            pairs.append((rps_h, rps_s))
        import statistics

        hello_rps = statistics.mean(h for h, _ in pairs)
        slots_rps = statistics.mean(s for _, s in pairs)
        ratios = sorted(s / h for h, s in pairs)
        # Equal time on each, so the ratio of the totals; the pairs' own ratios are the spread.
        slots_vs_hello = slots_rps / hello_rps
        # The client's own CPU per request (µs): it runs on the same cores as the server.
        client_us = {"hello": round(1e6 * client_cpu["hello"] / max(1, sum(hello_codes.values()))),
                     "slots": round(1e6 * client_cpu["slots"] / max(1, sum(slot_codes.values())))}

        # The same figure while 2 more clients book another provider's times as fast as they go
        # (every booking bumps that provider's version only, so this provider's answers stay cached).
        mixed_provider = ids["providers"]["Dr Mixed"]
        mixed_free = []
        for month in range(4):
            mixed_free += requests.get(f"{base}/api/slots", timeout=60, params={
                "service": ids["call"], "provider": mixed_provider, "days": 31,
                "from": (first_day + timedelta(days=31 * month)).isoformat()}).json()
        mixed_cursor = iter(range(len(mixed_free)))
        counter_lock = threading.Lock()
        mixed_codes = Counter()
        stop_booking = threading.Event()

        def book_mixed():
            local = Counter()
            while not stop_booking.is_set():
                with counter_lock:
                    k = next(mixed_cursor, None)
                if k is None:
                    break
                # Patients of their own, so no booking here overlaps one of theirs elsewhere.
                local[sessions[patients + k % MIXED_PATIENTS].post(f"{base}/api/appointments", timeout=30, json={
                    "service": ids["call"], "provider": mixed_provider,
                    "start": mixed_free[k]["start"]}).status_code] += 1
            with counter_lock:
                mixed_codes.update(local)

        bookers = [threading.Thread(target=book_mixed) for _ in range(2)]
        for t in bookers:
            t.start()
        mixed_started = time.monotonic()
        mixed_misses = Counter()

        def slots_while_booking(i, n):
            resp = hello.get(slots_url, timeout=30)
            # A request that sent MongoDB commands computed its answer: the cache missed.
            mixed_misses[int(resp.headers.get("X-DB-Commands", "0")) > 0] += 1
            return resp.status_code

        mixed_rps, mixed_slot_codes = load(slots_while_booking, args.seconds, args.threads)
        stop_booking.set()
        for t in bookers:
            t.join()
        mixed_book_rps = sum(mixed_codes.values()) / (time.monotonic() - mixed_started)

        # The same figure with the cache defeated: every request asks for a window nobody asked for
        # (a global counter walks 119 start days x 7 lengths before anything repeats).
        counter = iter(range(10**9))

        def uncached(i, n):
            with counter_lock:
                k = next(counter)
            start = first_day + timedelta(days=k % 119)
            return hello.get(f"{base}/api/slots", timeout=30, params=dict(
                slot_params, **{"from": start.isoformat(), "days": 7 + (k // 119) % 7})).status_code

        uncached_rps, uncached_codes = load(uncached, args.seconds, args.threads)

        # Distinct free times of Dr Book over four months, shared out to the threads.
        book_provider = ids["providers"]["Dr Book"]
        free = requests.get(f"{base}/api/slots", params={"service": ids["call"], "provider": book_provider,
                                                        "from": first_day.isoformat(), "days": 31}, timeout=60).json()
        more = requests.get(f"{base}/api/slots", params={"service": ids["call"], "provider": book_provider,
                                                        "from": (first_day + timedelta(days=31)).isoformat(),
                                                        "days": 31}, timeout=60).json()
        free = free + more
        cursor = iter(range(len(free)))
        cursor_lock = threading.Lock()

        def book_one(i, n):
            with cursor_lock:
                k = next(cursor, None)
            if k is None:
                return "exhausted"
            session = sessions[k % patients]
            return session.post(f"{base}/api/appointments", timeout=30, json={
                "service": ids["call"], "provider": book_provider, "start": free[k]["start"]}).status_code

        book_rps, book_codes = load(book_one, args.seconds, args.threads)

        # Database commands per request.
        db = {}
        # A cache miss (a week nobody asked for), then the same request again from the cache.
        # (14 days: the uncached figure above asked for 7 to 13.)
        miss_params = dict(slot_params, **{"from": (first_day + timedelta(days=100)).isoformat(), "days": 14})
        db["slots"] = int(hello.get(f"{base}/api/slots", params=miss_params, timeout=30).headers["X-DB-Commands"])
        db["slots_cached"] = int(hello.get(f"{base}/api/slots", params=miss_params,
                                           timeout=30).headers["X-DB-Commands"])
        # ...and the Redis commands of that cached read (issue 30: one MGET, nothing else).
        redis_cached = redis_commands_per_read(redis_url, f"{base}/api/slots", miss_params, hello)
        k = next(cursor)
        probe = sessions[0].post(f"{base}/api/appointments", timeout=30, json={
            "service": ids["call"], "provider": book_provider, "start": free[k]["start"]})
        db["book"] = int(probe.headers["X-DB-Commands"])
        db["webhook"] = webhook_commands(base, config["STRIPE_WEBHOOK_SECRET"])
        db["admin_list_20"], db["admin_list_100"] = admin_list_commands(base, ids, sessions)

        any_ms, any_commands = slots_any(base, ids, first_day, args.any_repeats)
        db["slots_any_4"], db["slots_any_50"] = any_commands[4], any_commands[50]

        race = run_race(base, ids, sessions[: args.race_patients], args.race_slots, first_day + timedelta(days=2))
        mail_p95, sms_p95, drain = message_latency(base, ids, sessions[:MIXED_PATIENTS], stack, config, env,
                                                   first_day + timedelta(days=60))
        rss = worker_rss_mb(proc.pid)
        stop_process(proc)  # the machine's cores go to the two-host runs
        scale = {}
        if args.scale_patients:
            from tests import bench_scale

            scale["hosts2"] = bench_scale.hosts2(stack, redis_url=redis_url, patients=args.scale_patients)
            scale["valkey_cluster"] = bench_scale.valkey_cluster(stack, patients=args.scale_patients)

        print(f"hello   /healthz            {hello_rps:8.1f} req/s  {dict(hello_codes)}")
        print(f"slots   /api/slots 7 days   {slots_rps:8.1f} req/s  {dict(slot_codes)}")
        print(f"slots   uncached (cache off) {uncached_rps:7.1f} req/s  {dict(uncached_codes)}")
        print(f"book    POST /appointments  {book_rps:8.1f} req/s  {dict(book_codes)}")
        print(f"slots   while 2 book others {mixed_rps:8.1f} req/s  {dict(mixed_slot_codes)}; "
              f"bookings {mixed_book_rps:.1f}/s {dict(mixed_codes)}; cache misses {mixed_misses[True]}")
        print(f"slots/hello ratio           {slots_vs_hello:8.3f}  ({len(ratios)} alternating pairs: "
              f"{', '.join(f'{r:.3f}' for r in ratios)}; aim >= 0.85)")
        print(f"client CPU per request      {client_us} µs (the load generator shares the cores)")
        print(f"slots mixed/idle ratio      {mixed_rps / slots_rps:8.3f}  (aim >= 0.6)")
        print("any provider, 31 days       " + ", ".join(f"{n}: {ms:.0f} ms" for n, ms in any_ms.items())
              + f"  scaling {any_ms[50] / any_ms[4] / 12.5:.3f} (aim <= 1.2)")
        print(f"MongoDB commands/request    {db}  (aim: slots <= 3, book <= 4, admin lists equal)")
        print(f"Redis commands, cached slots {redis_cached}  (aim: 1, the one MGET)")
        print(f"workers' resident memory    {rss} MB")
        print(f"race                        {race}")
        print(f"messages commit->accept p95 email {mail_p95} s, text {sms_p95} s  (aim < 5)")
        print(f"backlog drain               {drain['per_s']} messages/s ({drain['messages']} of {BACKLOG} "
              f"accepted in {drain['seconds']} s; issue 31: ~3.7/s)")
        for name, figures in scale.items():
            print(f"{name:<27} {figures}")
        result = {"hello_rps": round(hello_rps, 1), "slots_rps": round(slots_rps, 1),
                  "slots_uncached_rps": round(uncached_rps, 1),
                  "book_rps": round(book_rps, 1), "slots_vs_hello": round(slots_vs_hello, 3),
                  "slots_vs_hello_pairs": [round(r, 3) for r in ratios], "client_cpu_us": client_us,
                  "slots_mixed_rps": round(mixed_rps, 1), "slots_mixed_vs_idle": round(mixed_rps / slots_rps, 3),
                  "mixed_book_rps": round(mixed_book_rps, 1), "mixed_slots_misses": mixed_misses[True],
                  "mixed_errors_5xx": sum(n for code, n in list(mixed_codes.items()) + list(mixed_slot_codes.items())
                                          if isinstance(code, int) and code >= 500),
                  "slots_any_ms": {str(n): round(ms, 1) for n, ms in any_ms.items()},
                  "any_scaling": round(any_ms[50] / any_ms[4] / 12.5, 3),
                  "book_db_commands": db["book"], "worker_rss_mb": rss, "redis_commands_slots_cached": redis_cached,
                  "db_commands": db, "race": race, "mail_p95_s": mail_p95, "sms_p95_s": sms_p95,
                  "backlog_drain_per_s": drain["per_s"], "backlog_drain": drain, **scale}
        print(json.dumps(result))
    finally:
        stop_process(proc)
        stack.stop()


def slots_any(base, ids, first_day, repeats):
    """Median ms of an uncached "any provider" answer over 31 days at each clinic size, and the
    MongoDB commands of such a request per size.

    Each request starts on a date nobody asked for yet, so every provider's part is a miss. The
    commands are the fewest seen over the runs and two more requests: a worker reloads its catalog
    snapshot (5 commands) once a minute, whatever request it happens to be serving.
    """
    import statistics

    timings, commands = {}, {}
    offset = 130
    for n in ANY_SIZES:
        runs, counts = [], []
        for k in range(repeats + 2):
            offset += 1
            started = time.perf_counter()
            resp = requests.get(f"{base}/api/slots", timeout=120, params={
                "service": ids["any"][n], "from": (first_day + timedelta(days=offset)).isoformat(), "days": 31})
            if k < repeats:
                runs.append((time.perf_counter() - started) * 1000)
            resp.raise_for_status()
            counts.append(int(resp.headers["X-DB-Commands"]))
        timings[n], commands[n] = statistics.median(runs), min(counts)
    return timings, commands


def redis_commands_per_read(redis_url, url, params, session, reads=20):
    """Redis commands one cached read sends: the server's command counts around `reads` of them
    (INFO itself and the connections' periodic health-check PING left out), on the benchmark's own
    Redis; None on a cluster (counted per node)."""
    import redis

    from web.extensions import is_cluster

    if is_cluster(redis_url, {"REDIS_CLUSTER": os.environ.get("REDIS_CLUSTER", "") not in ("", "0")}):
        return None
    client = redis.Redis.from_url(redis_url)

    def calls():
        return sum(v["calls"] for k, v in client.info("commandstats").items()
                   if k not in ("cmdstat_info", "cmdstat_ping"))

    session.get(url, params=params, timeout=30)  # cached now, in whichever worker
    before = calls()
    for _ in range(reads):
        session.get(url, params=params, timeout=30).raise_for_status()
    return round((calls() - before) / reads, 2)


def worker_rss_mb(master_pid):
    """Resident memory (MB) of each gunicorn worker, read from /proc."""
    sizes = []
    try:
        with open(f"/proc/{master_pid}/task/{master_pid}/children") as f:
            children = f.read().split()
    except OSError:
        return []
    for pid in children:
        try:
            with open(f"/proc/{pid}/status") as f:
                rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            sizes.append(round(rss_kb / 1024, 1))
        except (OSError, StopIteration):
            pass
    return sizes


def webhook_commands(base, secret):
    """Commands for one signed Stripe event of a type the app stores but has nothing to move."""
    import stripe

    payload = json.dumps({"id": f"evt_bench_{uuid.uuid4().hex[:10]}", "object": "event",
                          "type": "customer.created", "created": int(time.time()),
                          "data": {"object": {"id": "cus_bench", "object": "customer"}}})
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=int(time.time()))
    resp = requests.post(f"{base}/webhooks/stripe", data=payload, timeout=30,
                         headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    resp.raise_for_status()
    return int(resp.headers["X-DB-Commands"])


def admin_list_commands(base, ids, sessions):
    """Commands for the appointments list page with 20 rows, then with 100 rows (page of 25)."""
    import re

    from models import Appointment

    staff = requests.Session()
    page = staff.get(f"{base}/admin/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    staff.post(f"{base}/admin/login", timeout=30, data={"email": "reception@bench.test", "password": PASSWORD,
                                                         "csrf_token": token})

    def count_for(rows):
        existing = Appointment.objects.count()
        provider = ids["providers"]["Dr Admin"]
        day = datetime.now(timezone.utc).date() + timedelta(days=40)
        free = requests.get(f"{base}/api/slots", params={"service": ids["call"], "provider": provider,
                                                        "from": day.isoformat(), "days": 14}, timeout=60).json()
        for i, slot in enumerate(free[: max(0, rows - existing)]):
            sessions[i % len(sessions)].post(f"{base}/api/appointments", timeout=30, json={
                "service": ids["call"], "provider": provider, "start": slot["start"]})
        return int(staff.get(f"{base}/admin/appointments/", timeout=30).headers["X-DB-Commands"])

    Appointment.objects.delete()
    from models import TimeClaim

    TimeClaim.objects.delete()
    return count_for(20), count_for(100)


def message_latency(base, ids, sessions, stack, config, env, day):
    """p95 seconds from a booking's commit to the SMTP server's and the SMS stand-in's accept, with
    one `flask --app wsgi worker` running (issue 29). Commit is taken as the moment the booking
    request was sent (an upper bound on the latency); accept as the Maildir file's / text's time."""
    from devstack.servers import start_worker
    from devstack.sms_standin import read_messages
    from models.documents import Patient

    worker = start_worker(dict(env, SMTP_URL=stack.env["SMTP_URL"], SMS_URL=stack.env["SMS_URL"],
                               SMS_FROM="+447700900000", PYTHONUNBUFFERED="1"))
    try:
        mail_new = os.path.join(stack.mail_dir, "new")
        emails = [f"bench{i}@example.com" for i in range(len(sessions))]
        phones = [f"+4477009{i:05d}" for i in range(len(sessions))]
        for email, phone in zip(emails, phones):
            Patient.objects(email=email).update_one(set__phone=phone, set__contact_by=["email", "sms"])
        # The load above queued hundreds of messages with no worker running: let the worker drain
        # that backlog first, so the figure is one booking's latency, not the backlog's.
        from models.clock import utcnow
        from models.messages.documents import OutboxMessage

        drain_deadline = time.time() + 300
        while time.time() < drain_deadline and OutboxMessage.objects(
                status__in=("queued", "sending"), due_at__lte=utcnow()).count():
            time.sleep(0.1)
        provider = ids["providers"]["Dr Mixed"]
        free = requests.get(f"{base}/api/slots", params={"service": ids["call"], "provider": provider,
                                                        "from": day.isoformat(), "days": 7}, timeout=60).json()
        sent = {}
        for i, session in enumerate(sessions):
            sent[i] = time.time()
            resp = session.post(f"{base}/api/appointments", timeout=30, json={
                "service": ids["call"], "provider": provider, "start": free[i * 3]["start"]})
            resp.raise_for_status()
            booked = resp.json()["id"]
            time.sleep(0.2)  # one booking at a time: latency, not throughput
        deadline = time.time() + 60
        mail_at, sms_at = {}, {}
        # Texts wait out quiet hours (21:00-08:00 on the clinic's clock): at night there is no text
        # latency to measure, and the figure says so (None) rather than a minute's timeout.
        from models.documents import Clinic
        from models.messages.quiet import in_quiet_hours

        quiet = in_quiet_hours(utcnow(), Clinic.objects.first().timezone)
        want_texts = 0 if quiet else len(sessions)
        while time.time() < deadline and (len(mail_at) < len(sessions) or len(sms_at) < want_texts):
            for name in os.listdir(mail_new):
                path = os.path.join(mail_new, name)
                with open(path, "rb") as fh:
                    head = fh.read(4096).decode("utf-8", "replace")
                for i, email in enumerate(emails):
                    if f"To: {email}" in head and "Booked" in head:
                        mail_at.setdefault(i, os.path.getmtime(path))
            for text in read_messages(stack.sms_dir):
                if text["to"] in phones:
                    sms_at.setdefault(phones.index(text["to"]), text["received_at"])
            time.sleep(0.2)

        def p95(arrived):
            values = sorted(arrived[i] - sent[i] for i in arrived) or [float("inf")]
            return round(values[int(0.95 * (len(values) - 1))], 2)

        # The same worker, now warm, drains a backlog queued all at once (issue 31).
        drain = backlog_drain(stack, config, booked)
        return p95(mail_at), (None if quiet else p95(sms_at)), drain
    finally:
        worker.stop()


BACKLOG = 150  # messages: at ~12/s on the shared 2-core machine this adds ~13 s to the bench


def backlog_drain(stack, config, appointment_id, count=BACKLOG, timeout=60):
    """Messages per second the running worker gets accepted by the stack's SMTP server from a backlog
    of `count` due confirmations queued in one insert and announced by one wake-up (issue 31 measured
    ~3.7/s, when only the minute's sweep pass sent: 870 took 5 minutes). Timed from the insert to the
    SMTP server's accept of the last one (its Maildir file); {"messages", "seconds", "per_s"}.

    Each is a real confirmation of one booked appointment (read, rendered with its `.ics`, sent), told
    apart by its variant and sent to an address of its own, so the Maildir shows which arrived."""
    import redis

    from models import Appointment
    from models.clock import utcnow
    from models.messages.documents import OutboxMessage

    appt = Appointment.objects.get(id=appointment_id)
    tag = uuid.uuid4().hex[:8]
    now = utcnow()
    docs = [OutboxMessage(kind="confirmed", to=f"backlog-{tag}-{i}@example.com", subject=f"Appointment:{appt.id}",
                          version=appt.version or 0, variant=f"backlog-{tag}-{i}", due_at=now, channel="email",
                          appointment=appt.id, created_at=now).to_mongo() for i in range(count)]
    mail_new = os.path.join(stack.mail_dir, "new")
    before = set(os.listdir(mail_new))
    started = time.time()
    OutboxMessage._get_collection().insert_many(docs)
    # What every queuing path does after its insert (models.messages.outbox.wake): one push wakes the worker.
    redis.Redis.from_url(config["REDIS_URL"]).lpush(config["REDIS_PREFIX"] + "outbox:wake", "1")
    accepted, seen = [], set(before)
    deadline = started + timeout
    while len(accepted) < count and time.time() < deadline:
        for name in set(os.listdir(mail_new)) - seen:
            seen.add(name)
            path = os.path.join(mail_new, name)
            with open(path, "rb") as fh:
                if f"backlog-{tag}-".encode() in fh.read(4096):
                    accepted.append(os.path.getmtime(path))
        time.sleep(0.1)
    seconds = (max(accepted) - started) if accepted else float("inf")
    return {"messages": len(accepted), "seconds": round(seconds, 2),
            "per_s": round(len(accepted) / seconds, 1) if accepted else 0.0}


def run_race(base, ids, sessions, slots, day):
    """Many patients at once for `slots` times; each time must be won exactly once."""
    provider = ids["providers"]["Dr Race"]
    free = requests.get(f"{base}/api/slots", params={"service": ids["consult"], "provider": provider,
                                                    "from": day.isoformat(), "days": 1}, timeout=30).json()
    # Times far enough apart that they do not overlap each other.
    targets = [slot["start"] for slot in free[::4][:slots]]
    barrier = threading.Barrier(len(sessions))
    results = []
    lock = threading.Lock()

    def attempt(i):
        barrier.wait()
        resp = sessions[i].post(f"{base}/api/appointments", timeout=60, json={
            "service": ids["consult"], "provider": provider, "start": targets[i % len(targets)]})
        with lock:
            results.append((targets[i % len(targets)], resp.status_code))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = Counter(start for start, code in results if code == 201)
    from models import Appointment

    active = sorted((a.block_start, a.block_end) for a in Appointment.objects(
        provider=provider, status__in=("held", "confirmed")))
    double = sum(1 for a, b in zip(active, active[1:]) if b[0] < a[1])
    return {"attempts": len(results), "slots": len(targets), "won": sum(won.values()),
            "double_booked": double, "errors_5xx": sum(1 for _, code in results if code >= 500)}


if __name__ == "__main__":
    main()
