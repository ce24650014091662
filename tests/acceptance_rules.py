"""Acceptance check for issue 24 (one rule, one place), kept outside the suite (pytest does not collect it).

    .venv/bin/python tests/acceptance_rules.py [--python PATH] [--keep]

Clones this repository's committed HEAD into a temporary folder and starts the README's run command
there with a clean environment, as tests/acceptance_series.py does (`--python PATH` runs the run
command's program, `python -m devstack`, with an interpreter that already has requirements-dev.txt,
to skip the clone's install). Then, against the demo clinic:

- (a) the API and the pages list the same services: an admin creates, through the back office's own
  form, an archived service and an active one no clinician offers; `GET /api/services`, the booking
  page (`/portal/book`) and the waitlist form (`/portal/waitlist`) then list exactly the same
  services, neither of the two new ones, while the back office lists both;
- (b) money reads the same everywhere: a new patient books and pays the "General consultation" by
  card (tokenised at the stack's local Stripe); the receipt email in the stack's Maildir
  (`instance/mail/new`), the portal's appointment page and the back office's appointment and
  payments pages all write "£60.00", and none writes "60.00 GBP";
- (c) none of the removed names remain in the clone's code (the app's packages, templates,
  requirements and `.importlinter`): the lazy fronts (`lazy_exports`, `models.facade`), the modules
  that moved from `clinic/` to `web/`, flask-limiter, and money written by hand (`"%.2f"`,
  `:.2f`, `/ 100.0`) anywhere but `models/formatting.py`.

Prints `ok` or `FAIL` per check; exit status 0 only when every check holds.
"""

import argparse
import email
import email.policy
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.acceptance_series import start  # noqa: E402
from tests.helpers import ROOT, wait_http  # noqa: E402
from tests.test_newcomer import stop_stack  # noqa: E402

PASSWORD = "amber kettle orbit"
DEMO_PASSWORD = "clinic-demo-2026"
ARCHIVED, NOBODY = "Acceptance: archived service", "Acceptance: nobody offers this"
# The service form's fields as a clinic fills them (as tests/test_admin_crawl.py posts them).
SERVICE_FORM = {"duration_minutes": "30", "price": "40.00", "currency": "gbp", "refund_rule": "full",
                "buffer_before_minutes": "0", "buffer_after_minutes": "0", "min_notice_minutes": "0",
                "horizon_days": "30", "cancellation_window_hours": "0"}
# What issue 24 removed, by the name a leftover would still carry.
REMOVED_NAMES = ["lazy_exports", "models.facade", "models/facade", "clinic.errors", "clinic/errors",
                 "clinic.audit", "clinic/audit", "clinic.extensions", "clinic/extensions", "clinic.settings",
                 "clinic.security", "clinic.idempotency", "clinic.cache", "clinic.monitoring", "clinic.apidoc",
                 "flask_limiter", "flask-limiter"]
REMOVED_FILES = ["models/facade.py", "clinic/errors.py", "clinic/audit.py", "clinic/extensions.py",
                 "clinic/settings.py", "clinic/security.py", "clinic/idempotency.py", "clinic/cache.py"]
# Money written by hand: a two-decimal format or a division by 100 meant for people.
HAND_MONEY = r"%\.2f|:\.2f|:,\.2f|/ ?100\.0|\| ?round\(2\)|%d\.%02d"
CODE = ["clinic", "web", "models", "portal", "admin", "webhooks", "devstack", "templates", "wsgi.py"]


def form_csrf(html):
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    return match.group(1) if match else ""


def staff(base):
    """The demo admin, signed in through the back office's form."""
    s = requests.Session()
    token = form_csrf(s.get(f"{base}/admin/login", timeout=60).text)
    resp = s.post(f"{base}/admin/login", timeout=60, data={"csrf_token": token, "email": "admin@clinic.test",
                                                             "password": DEMO_PASSWORD})
    assert resp.status_code == 200 and "/admin/login" not in resp.url, "the demo admin signs in"
    return s


def patient(base, label):
    """A new patient registered and signed in; a session whose posts carry the CSRF header."""
    address = f"rules-{label}-{uuid.uuid4().hex[:8]}@example.com"
    s = requests.Session()
    assert s.post(f"{base}/api/auth/register", timeout=60,
                  json={"email": address, "password": PASSWORD, "name": f"Rules {label}"}).status_code == 201
    assert s.post(f"{base}/api/auth/login", timeout=60, json={"email": address, "password": PASSWORD}).status_code == 200
    s.headers["X-CSRF-TOKEN"] = s.cookies.get("csrf_access_token")
    s.address = address
    return s


def post_service(admin, base, **fields):
    """Create a service through the back office's form, as an admin's browser posts it."""
    path = f"{base}/admin/services/new/"
    token = form_csrf(admin.get(path, timeout=60).text)
    return admin.post(path, data=dict(SERVICE_FORM, csrf_token=token, **fields), timeout=60, allow_redirects=False)


def booking_page_services(html):
    """The services the booking page offers: its service links (`?service=ID`, no clinician chosen yet)."""
    return {sid for sid in re.findall(r'<a href="[^"]*[?&]service=([0-9a-f]{24})(?:&amp;tz=[^"]*)?"', html)}


def waitlist_services(html):
    """The services the waitlist form offers: the options of its service select."""
    select = re.search(r'<select[^>]*name="service"[^>]*>(.*?)</select>', html, re.S)
    return set(re.findall(r'<option[^>]*value="([0-9a-f]{24})"', select.group(1))) if select else set()


def service_checks(base):
    """(a): the API and the pages list the same services."""
    admin = staff(base)
    made = [post_service(admin, base, name=ARCHIVED).status_code,  # "active" left unticked: archived
            post_service(admin, base, name=NOBODY, active="y").status_code]
    listed = admin.get(f"{base}/admin/services/", timeout=60).text
    yield ("the back office creates an archived service and one no clinician offers, and lists both",
           made == [302, 302] and ARCHIVED in listed and NOBODY in listed, made)
    api = requests.get(f"{base}/api/services", timeout=60).json()
    api_ids = {s["id"] for s in api}
    names = {s["name"] for s in api}
    book = booking_page_services(requests.get(f"{base}/portal/book", timeout=60).text)
    someone = patient(base, "lists")
    waitlist = waitlist_services(someone.get(f"{base}/portal/waitlist", timeout=60).text)
    yield ("GET /api/services lists neither new service", bool(api_ids) and not names & {ARCHIVED, NOBODY},
           sorted(names))
    yield ("the booking page lists the same services as the API", book == api_ids,
           f"page {len(book)}, API {len(api_ids)}, only on the page {sorted(book - api_ids)}, "
           f"only in the API {sorted(api_ids - book)}")
    yield ("the waitlist form lists the same services as the API", waitlist == api_ids,
           f"form {len(waitlist)}, API {len(api_ids)}")


def maildir_text(clone, address):
    """Every email to `address` in the stack's Maildir, as decoded text (plain and HTML parts)."""
    texts = []
    for path in sorted((clone / "instance" / "mail" / "new").glob("*")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address not in str(message.get("To", "")):
            continue
        parts = [p for p in message.walk() if p.get_content_type() in ("text/plain", "text/html")]
        texts.append((str(message["Subject"]), "\n".join(p.get_content() for p in parts)))
    return texts


def money_checks(base, clone):
    """(b): one paid booking reads "£60.00" in the email, the portal and the back office."""
    p = patient(base, "money")
    consult = next(s for s in requests.get(f"{base}/api/services", timeout=60).json()
                   if s["name"] == "General consultation")
    slots = requests.get(f"{base}/api/slots", timeout=60, params={
        "service": consult["id"], "from": (date.today() + timedelta(days=3)).isoformat(), "days": 14}).json()
    booked = p.post(f"{base}/api/appointments", timeout=60, json={
        "service": consult["id"], "provider": slots[0]["provider"], "start": slots[0]["start"]})
    appt = booked.json()
    yield ("the patient books the General consultation (6000 pence)", booked.status_code == 201
           and appt.get("amount") == 6000, f"{booked.status_code} {appt.get('status')} {appt.get('amount')}")
    started = p.post(f"{base}/api/appointments/{appt['id']}/payment", timeout=60).json()
    page = p.get(f"{base}/portal/appointments/{appt['id']}", timeout=60).text
    stripe_js = re.search(r'src="([^"]+)/js\.stripe\.com/v3/"', page)
    paid = None
    if stripe_js and started.get("publishable_key"):
        token = requests.post(f"{stripe_js.group(1)}/v1/tokens", timeout=60, data={
            "card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2034",
            "card[cvc]": "123", "key": started["publishable_key"]}).json()
        paid = p.post(f"{base}/api/appointments/{appt['id']}/payment/confirm", json={"token": token.get("id")},
                      timeout=60)
    status = p.get(f"{base}/api/appointments/{appt['id']}", timeout=60).json().get("status")
    yield ("a card payment confirms it", paid is not None and paid.status_code == 200 and status == "confirmed",
           f"{paid.status_code if paid is not None else 'no Stripe.js'} {status}")

    deadline, mails = time.monotonic() + 120, []
    while time.monotonic() < deadline:  # the worker sends within seconds; poll the Maildir, no fixed sleep
        mails = maildir_text(clone, p.address)
        if any("£60.00" in body for _, body in mails):
            break
        time.sleep(0.1)
    portal = p.get(f"{base}/portal/appointments/{appt['id']}", timeout=60).text
    admin = staff(base)
    details = admin.get(f"{base}/admin/appointments/details/", params={"id": appt["id"]}, timeout=60).text
    payments = admin.get(f"{base}/admin/payments/", params={"search": started.get("payment_intent", "")},
                         timeout=60).text
    places = {"email": "\n".join(body for _, body in mails), "portal": portal, "back office appointment": details,
              "back office payments": payments}
    for where, text in places.items():
        amounts = sorted(set(re.findall(r"£\d[\d,]*\.\d\d", text)))
        yield (f"the {where} writes £60.00", "£60.00" in text, f"amounts {amounts}"
               + (f"; subjects {[s for s, _ in mails]}" if where == "email" else ""))
    stray = [where for where, text in places.items() if re.search(r"60\.00\s*GBP|GBP\s*60", text)]
    yield ("nowhere writes 60.00 GBP", not stray, stray)


def removed_names_checks(clone):
    """(c): none of the removed names remain in the clone's code."""
    code = [c for c in CODE + ["requirements.txt", "requirements-dev.txt", "requirements-test.txt", ".importlinter"]
            if (clone / c).exists()]
    for name in REMOVED_NAMES:
        found = subprocess.run(["git", "grep", "-n", "-i", "-F", name, "--", *code], cwd=clone,
                               capture_output=True, text=True).stdout.strip()
        yield f"no {name} in the code", not found, found.splitlines()[:3]
    left = [f for f in REMOVED_FILES if (clone / f).exists()]
    yield "the removed modules are gone", not left, left
    found = subprocess.run(["git", "grep", "-n", "-E", HAND_MONEY, "--", *CODE, ":!models/formatting.py"], cwd=clone,
                           capture_output=True, text=True).stdout.strip()
    yield "no money written by hand outside models/formatting.py", not found, found.splitlines()[:5]


def main(argv=None):
    """Clone, run, check; exit 0 when every check held."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="an interpreter with requirements-dev.txt: skip the clone's install")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its logs are in instance/logs)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="clinic-acceptance-rules-"))
    clone = work / "clinic"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    failed = 0

    def report(name, ok, detail):
        nonlocal failed
        failed += not ok
        print(f"{'ok' if ok else 'FAIL'}: {name} ({detail})", flush=True)

    for check in removed_names_checks(clone):
        report(*check)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = start(clone, port, args.python)
    try:
        wait_http(f"{base}/readyz", 200, timeout=900, process=proc)
        for group in (service_checks(base), money_checks(base, clone)):
            try:
                for check in group:
                    report(*check)
            except (AssertionError, requests.RequestException, KeyError, IndexError, ValueError) as exc:
                report("the checks ran to the end", False, f"{type(exc).__name__}: {exc}")
    finally:
        stop_stack(proc, log)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {clone}")
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
