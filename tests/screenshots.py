"""Screenshots of what a clinic gets (issue 25), kept outside the suite.

    .venv/bin/python tests/screenshots.py [--python PATH] [--out docs/screens]

Clones the committed HEAD, starts the run command's stack there (as tests/acceptance_clinic.py
does), and in Chromium at 1280 and 390 px wide saves the landing page, the booking page with a
day's times, the review, a held appointment, a confirmed one, the patient's dashboard, and the back
office's home, day view and appointments list as `<page>-<width>.png`.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.acceptance_clinic import start  # noqa: E402
from tests.helpers import ROOT, wait_http  # noqa: E402

DEMO_PASSWORD = "clinic-demo-2026"
WIDTHS = {1280: 900, 390: 844}


def shoot(page, out, name, width):
    """One full-page screenshot."""
    page.wait_for_load_state("load")
    page.screenshot(path=str(out / f"{name}-{width}.png"), full_page=True)
    print(f"saved {name}-{width}.png", flush=True)


def walk(browser, base, out, width, height, used):
    """Every page at one width."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{base}/")
    shoot(page, out, "landing", width)
    # Booking: a paid service, any clinician, the first day with times that this walk has not used.
    page.get_by_role("link", name=re.compile(r"^General consultation")).click()
    days = page.locator("table.cal td.free a")
    days.nth(min(len(used), days.count() - 1)).click()
    used.append(page.url)
    page.locator("#times").scroll_into_view_if_needed()
    shoot(page, out, "booking", width)
    page.locator("a.time").nth(2).click()
    page.get_by_role("link", name="Sign in to book").click()
    page.get_by_label("Email").fill("patient@clinic.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/portal/book\?.*"))
    shoot(page, out, "review", width)
    page.get_by_role("button", name=re.compile(r"^Hold this time and pay")).click()
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    page.locator(".countdown").wait_for()
    shoot(page, out, "held", width)
    # A free follow-up call is confirmed at once.
    page.goto(f"{base}/portal/book")
    page.get_by_role("link", name=re.compile(r"^Follow-up call")).click()
    days = page.locator("table.cal td.free a")
    days.nth(min(len(used) + 2, days.count() - 1)).click()
    page.locator("a.time").nth(1).click()
    page.get_by_role("button", name="Book this time").click()
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    shoot(page, out, "confirmed", width)
    page.goto(f"{base}/portal/")
    shoot(page, out, "dashboard", width)
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill("admin@clinic.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/admin/$"))
    shoot(page, out, "admin-home", width)
    day = re.search(r"day=(\d{4}-\d\d-\d\d)", used[-1])
    page.goto(f"{base}/admin/day/" + (f"?day={day.group(1)}" if day else ""))
    shoot(page, out, "admin-day", width)
    page.goto(f"{base}/admin/appointments/")
    shoot(page, out, "admin-list", width)
    context.close()


def main(argv=None):
    """Clone, run, take every screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="run `python -m devstack` with this interpreter instead of ./scripts/run")
    parser.add_argument("--out", default=str(Path(ROOT) / "docs" / "screens"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="clinic-screens-"))
    clone = work / "clinic"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = start(clone, port, args.python)
    from playwright.sync_api import sync_playwright

    try:
        wait_http(f"{base}/readyz", 200, timeout=900, process=proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"])
            used = []
            for width, height in WIDTHS.items():
                walk(browser, base, out, width, height, used)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            log.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
