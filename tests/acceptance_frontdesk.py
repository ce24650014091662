"""Front-desk acceptance check (issue 26), kept outside the suite: the back office in Chromium.

    .venv/bin/python tests/acceptance_frontdesk.py [--shots DIR] [--keep]

Clones this repository's committed HEAD, starts the README's run command there (the one-machine
stack with the demo clinic, as tests/acceptance.py does) and, signed in as the demo receptionist,
books two phone callers back to back (15:45 and 16:30 with Dr Amira Shah on the next weekday at
least two days ahead) from free times in the day grid, then checks what the issue asked:

- back-to-back actions clickable: every action of the opened 15:45 appointment is the element a
  mouse at its centre would hit (not the 16:30 card under it), and clicking it does that action;
- patient search shows dates of birth;
- partial refund recorded: the 15:45 appointment, paid in cash, is cancelled with £20.00 of £60.00
  refunded; the patient's payments show £20.00 refunded.

Prints `ok` or `FAILED` per check; exit status 0 only when all hold.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.helpers import ROOT, wait_http  # noqa: E402
from tests.test_newcomer import run_stack, stop_stack  # noqa: E402

DEMO_PASSWORD = "clinic-demo-2026"
ZONE = ZoneInfo("Europe/London")


def booking_day():
    """The next weekday (when Dr Amira Shah works) at least two days ahead, in the clinic's zone."""
    day = (datetime.now(timezone.utc) + timedelta(days=2)).astimezone(ZONE).date()
    while day.weekday() > 4:
        day += timedelta(days=1)
    return day


class Run:
    """The browser page, the app's address and what the checks found."""

    def __init__(self, page, base, shots):
        self.page, self.base, self.shots = page, base, shots
        # A letter first: five hex digits that happen to be all digits ("77822") are searched as a phone
        # number, not a name, so the search for the two callers would find neither.
        self.tag = "k" + uuid.uuid4().hex[:5]
        self.day = booking_day()
        self.first = f"Maria Acceptance {self.tag}"
        self.second = f"Next Caller {self.tag}"
        self.failed = []

    def shot(self, name):
        if self.shots:
            self.page.screenshot(path=os.path.join(self.shots, name), full_page=True)

    def check(self, name, fn):
        """Run one check; print ok or FAILED with what was seen."""
        try:
            fn()
        except Exception:  # noqa: BLE001 — a failed check is reported, the next one still runs
            self.failed.append(name)
            print(f"FAILED: {name}\n{traceback.format_exc()}", flush=True)
        else:
            print(f"ok: {name}", flush=True)

    # --- steps ---------------------------------------------------------------------------------

    def sign_in(self):
        page = self.page
        page.goto(f"{self.base}/admin/login")
        page.get_by_label("Email").fill("reception@clinic.test")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.base}/admin/")

    def book_caller(self, hhmm, name, phone, born=""):
        page = self.page
        page.goto(f"{self.base}/admin/day/?day={self.day}")
        page.get_by_role("link", name=f"Book Dr Amira Shah at {hhmm}").click()
        page.wait_for_url(re.compile(r"/admin/day/new"))
        page.get_by_label("Service").select_option(label="General consultation (30 min, £60.00)")
        page.get_by_label("Name").fill(name)
        page.get_by_label("Phone").fill(phone)
        if born:
            page.get_by_label(re.compile("Date of birth")).fill(born)
        page.get_by_role("button", name="Book", exact=True).click()
        page.wait_for_url(re.compile(r"/admin/day/\?day="))
        assert f"Booked {name} for General consultation with Dr Amira Shah" in page.locator(".alert").first.inner_text()

    def open_card(self, hhmm):
        page = self.page
        page.goto(f"{self.base}/admin/day/?day={self.day}")
        card = page.locator(".fd-appt", has=page.locator("summary", has_text=hhmm)).first
        card.locator("summary").click()
        return card

    def mouse_click(self, control):
        """Click at the control's centre with the mouse, after checking it is what lies on top there."""
        page = self.page
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        on_top = page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y); "
                               "return e && (e.closest('button, a') || e).textContent.trim(); }", [x, y])
        assert on_top == control.inner_text().strip(), f"a click there lands on {on_top!r}"
        page.mouse.click(x, y)

    # --- checks --------------------------------------------------------------------------------

    def back_to_back_actions(self):
        page = self.page
        self.book_caller("15:45", self.first, "07700 900551", "02/03/1984")
        self.book_caller("16:30", self.second, "07700 900552")
        card = self.open_card("15:45")
        self.shot("day-grid-open-card.png")
        self.mouse_click(card.get_by_role("link", name=re.compile(f"Move {self.first}")))
        page.wait_for_url(re.compile(r"/admin/day/move"))
        assert self.first in page.locator("h1").inner_text()
        card = self.open_card("15:45")
        self.mouse_click(card.get_by_role("link", name=re.compile(f"Cancel {self.first}")))
        page.wait_for_url(re.compile(r"/admin/day/cancel"))
        assert self.first in page.locator("h1").inner_text()
        card = self.open_card("15:45")
        self.mouse_click(card.get_by_role("button", name=re.compile(f"Paid in cash {self.first}")))
        page.wait_for_url(re.compile(r"/admin/day/\?day="))
        assert f"Payment recorded: £60.00 by cash from {self.first}" in page.locator(".alert").first.inner_text()
        card = self.open_card("16:30")
        self.mouse_click(card.get_by_role("link", name=re.compile(f"Move {self.second}")))
        page.wait_for_url(re.compile(r"/admin/day/move"))
        assert self.second in page.locator("h1").inner_text()

    def search_shows_birth_dates(self):
        page = self.page
        page.goto(f"{self.base}/admin/?q={self.tag}")
        results = page.locator(".fd-results").inner_text()
        self.shot("patient-search.png")
        assert f"{self.first} · born 02/03/1984 · 07700 900551" in results, results
        assert f"{self.second} · no date of birth" in results, results
        assert "no-email.invalid" not in page.content()

    def partial_refund(self):
        page = self.page
        card = self.open_card("15:45")
        self.mouse_click(card.get_by_role("link", name=re.compile(f"Cancel {self.first}")))
        page.wait_for_url(re.compile(r"/admin/day/cancel"))
        page.get_by_label("Refund an amount").check()
        page.get_by_label(re.compile("Amount to refund")).fill("20.00")
        page.get_by_label(re.compile("Reason for the cancellation")).fill("Clinician ill; part of the fee kept")
        self.shot("cancel-partial-refund.png")
        page.get_by_role("button", name="Cancel the appointment").click()
        page.wait_for_url(re.compile(r"/admin/day/\?day="))
        assert "Refund of £20.00 made." in page.locator(".alert").first.inner_text()
        page.goto(f"{self.base}/admin/?q={self.tag}")
        page.get_by_role("link", name=self.first, exact=True).click()
        payments = page.locator("table[aria-labelledby='patient-payments']").inner_text()
        self.shot("patient-payments.png")
        assert "£60.00" in payments and "£20.00" in payments, payments


def main(argv=None):
    """Clone, run, drive the back office; exit 0 when every check holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", help="folder for screenshots of each step")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its logs are in instance/logs)")
    args = parser.parse_args(argv)
    if args.shots:
        os.makedirs(args.shots, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="clinic-acceptance-frontdesk-"))
    clone = work / "clinic"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    from playwright.sync_api import sync_playwright

    failed = ["the run"]
    proc, log = run_stack(clone, port)
    try:
        wait_http(f"{base}/readyz", 200, timeout=900, process=proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(15000)
            run = Run(page, base, args.shots)
            run.sign_in()
            run.check("back-to-back actions clickable with the mouse (15:45 then 16:30)", run.back_to_back_actions)
            run.check("patient search shows dates of birth", run.search_shows_birth_dates)
            run.check("partial refund recorded (£20.00 of £60.00)", run.partial_refund)
            failed = run.failed
            browser.close()
    finally:
        stop_stack(proc, log)
        if args.keep:
            print(f"clone kept at {clone}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("all checks hold" if not failed else f"{len(failed)} check(s) FAILED", flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
