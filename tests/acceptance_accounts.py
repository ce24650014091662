"""Acceptance check for issue 23's accounts findings 3 and 4, kept outside the suite (pytest does not collect it).

    .venv/bin/python tests/acceptance_accounts.py [--workers N]

Starts the one-machine stack (`devstack.stack.start_stack`, throwaway stores) and the app under
gunicorn with production's settings (argon2 at production cost, `TRUSTED_PROXIES=1` so the app
takes client addresses from `X-Forwarded-For`, as behind the clinic's proxy), then replays over
HTTP:

- finding 3: 60 concurrent registrations from one address make at most `REGISTRATIONS_PER_HOUR`
  accounts;
- finding 4: after one address locks an account, wrong passwords from 60 new addresses (sent
  together) are refused before any check, the right password from yet another new address waits
  too, and the patient's own browser (device cookie of an earlier sign-in) still signs in.

Prints `ok` or `FAILED` per check; exit status 0 only when every check holds.
"""

import argparse
import secrets
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pymongo
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from devstack.stack import start_stack  # noqa: E402
from tests.helpers import clean_env, start_gunicorn, stop_process, wait_http  # noqa: E402

PASSWORD = "amber kettle orbit"
REGISTRATIONS_PER_HOUR = 10  # the production default the checks hold the app to


def concurrent(n, func):
    """Run `func(i)` in n threads released together by a barrier; return the results in order."""
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        """Wait for the others, then call."""
        barrier.wait()
        try:
            results[i] = func(i)
        except requests.RequestException as exc:  # a dropped request is a result too, not a crash
            results[i] = repr(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return results


def register(base, email, address, password=PASSWORD, name="Acceptance Patient"):
    """POST /api/auth/register as a client at `address` (through the trusted proxy's header)."""
    return requests.post(f"{base}/api/auth/register", timeout=120, headers={"X-Forwarded-For": address},
                         json={"email": email, "password": password, "name": name})


def login(base, email, password, address, session=None):
    """POST /api/auth/login as a client at `address`; returns the response."""
    return (session or requests).post(f"{base}/api/auth/login", timeout=120, headers={"X-Forwarded-For": address},
                                      json={"email": email, "password": password})


def check_3_concurrent_registrations_stay_within_the_limit(ctx):
    """Finding 3: 60 registrations at once from one address make at most the limit's accounts."""
    statuses = concurrent(60, lambda i: register(ctx["base"], f"racer{i}@example.com", "203.0.113.50").status_code)
    made = ctx["db"].patients.count_documents({"email": {"$regex": "^racer"}})
    ok = statuses.count(201) <= REGISTRATIONS_PER_HOUR and made == statuses.count(201) \
        and statuses.count(429) == 60 - statuses.count(201)
    return ok, f"{statuses.count(201)} created ({made} stored), {statuses.count(429)} refused with 429, " \
               f"limit {REGISTRATIONS_PER_HOUR}"


def check_4_spread_guessing_is_locked_for_every_unfamiliar_client(ctx):
    """Finding 4: after a lock, 60 new addresses guessing together are refused; the right one waits; the owner gets in."""
    base, email = ctx["base"], "spread@example.com"
    assert register(base, email, "192.0.2.10").status_code == 201
    mine = requests.Session()  # the patient's own browser: its sign-in leaves a device cookie
    if login(base, email, PASSWORD, "192.0.2.10", mine).status_code != 200:
        return False, "the patient could not sign in to begin with"
    first = [login(base, email, "wrong password", "203.0.113.1").status_code for _ in range(5)]
    spread = concurrent(60, lambda i: login(base, email, "wrong password", f"198.51.100.{i + 1}").status_code)
    right = login(base, email, PASSWORD, "198.51.100.200").status_code
    own = login(base, email, PASSWORD, "192.0.2.10", mine).status_code
    ok = first == [401] * 5 and spread.count(401) <= 1 and spread.count(429) >= 59 and right == 429 and own == 200
    return ok, (f"one address: {first}; 60 new addresses: {spread.count(401)} checked, {spread.count(429)} refused; "
                f"right password from a new address: {right}; the patient's own browser: {own}")


CHECKS = [check_3_concurrent_registrations_stay_within_the_limit,
          check_4_spread_guessing_is_locked_for_every_unfamiliar_client]


def main(argv=None):
    """Start the stack and gunicorn, run every check, print ok/FAILED; 0 when all hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (the concurrency is across them)")
    args = parser.parse_args(argv)
    home = tempfile.mkdtemp(prefix="clinic-acceptance-accounts-")
    stack = start_stack(home, keep=False, environ={})
    proc = None
    failed = 0
    try:
        tag = uuid.uuid4().hex[:8]
        config = dict(stack.env, MONGODB_DB=f"acceptance_{tag}", REDIS_PREFIX=f"acceptance:{tag}:",
                      SECRET_KEY=secrets.token_urlsafe(32), JWT_SECRET_KEY=secrets.token_urlsafe(32),
                      STRIPE_WEBHOOK_SECRET="whsec_" + secrets.token_urlsafe(24),
                      COOKIE_SECURE="0", TRUSTED_PROXIES="1", REGISTRATIONS_PER_HOUR=str(REGISTRATIONS_PER_HOUR))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_gunicorn(clean_env(**config), port, workers=args.workers)
        wait_http(f"{base}/readyz", 200, timeout=120, process=proc)
        client = pymongo.MongoClient(config["MONGODB_URI"], serverSelectionTimeoutMS=5000)
        ctx = {"base": base, "db": client[config["MONGODB_DB"]]}
        for check in CHECKS:
            try:
                ok, detail = check(ctx)
            except (AssertionError, requests.RequestException) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            failed += not ok
            print(f"{'ok' if ok else 'FAILED'}: {check.__name__}: {detail}", flush=True)
        client.drop_database(config["MONGODB_DB"])
        client.close()
    finally:
        if proc is not None:
            stop_process(proc)
        stack.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
