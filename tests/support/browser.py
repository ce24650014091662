"""Browser steps shared by the Chromium tests (Playwright pages)."""

import re

from models.seed import DEMO_PASSWORD
from tests.support.factories import PASSWORD


def portal_sign_in(page, base, email="pat@example.com", password=PASSWORD):
    """Sign a patient in through /portal/login, as a person would, and wait for the dashboard."""
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")


def enter_card(page, number="4242424242424242", submit=False):
    """Type a card into the payment page's card element, each field found by its label.

    With `submit`, Enter in the last field sends the form (no mouse needed).
    """
    page.get_by_label("Card number").fill(number)  # as typed: groups of four are fine
    page.get_by_label("Expiry month (MM)").fill("12")
    page.get_by_label("Expiry year (YY)").fill("34")
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_label("Postcode").fill("12345")
    if submit:
        page.get_by_label("Postcode").press("Enter")


def sign_in_to(page, base, path, email="pat@example.com", password=PASSWORD):
    """Sign a patient in through /portal/login?next=`path` and wait to land there."""
    page.goto(f"{base}/portal/login?next={path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}{path}")


def staff_sign_in(page, base, email, password=DEMO_PASSWORD):
    """Sign a member of staff in through /admin/login, as they would, and wait for the back office's home."""
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/") + r"$"))
