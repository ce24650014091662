"""Acceptance check, kept outside the suite: a fresh clone's run command, and a patient paying in Chromium.

    .venv/bin/python tests/acceptance.py [--shots DIR] [--keep]

Clones this repository's committed HEAD into a temporary folder, starts the README's run command
there with a clean environment (so the clone installs its own `.venv`), and walks the paid journey
of `tests/support/journeys.py` at phone size: register at the front door, book "General
consultation", pay with 4242 4242 4242 4242, book again and pay with a 3-D Secure card. Then it
stops the stack with Ctrl-C, starts it again with `PAYMENT_FLOW=checkout` and walks the same journey
through the hosted Checkout page. Phone-size screenshots of each step go to `--shots`. Exit status
0 means a newcomer can pay.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.servers import free_port  # noqa: E402
from tests.helpers import ROOT, wait_http  # noqa: E402
from tests.support.journeys import paid_journey  # noqa: E402
from tests.test_newcomer import PASSWORD, run_stack, stop_stack  # noqa: E402


def main(argv=None):
    """Clone, run, pay in both flows; exit 0 when every step passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", help="folder for phone-size screenshots of each step")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its logs are in instance/logs)")
    args = parser.parse_args(argv)
    if args.shots:
        os.makedirs(args.shots, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="clinic-acceptance-"))
    clone = work / "clinic"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
            for flow, settings in (("elements", {}), ("checkout", {"PAYMENT_FLOW": "checkout"})):
                proc, log = run_stack(clone, port, **settings)
                try:
                    wait_http(f"{base}/readyz", 200, timeout=900, process=proc)
                    paid_journey(browser, base, f"acceptance-{flow}@example.com", PASSWORD, flow, shots=args.shots)
                    print(f"ok: a new patient paid by {flow} on {base}", flush=True)
                finally:
                    stop_stack(proc, log)
            browser.close()
    finally:
        if args.keep:
            print(f"clone kept at {clone}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
