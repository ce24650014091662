"""In real Chromium: forgot password → the emailed link (read from the SMTP server) → a new
password → signed in with it; the same link a second time is refused."""

import re

from playwright.sync_api import expect

from models.sweep import sweep
from tests.support.factories import make_clinic, make_patient

LINK = re.compile(r"https?://[^/\s]+(/portal/reset/[A-Za-z0-9_\-]+)")


def test_password_reset_end_to_end_in_the_browser(live_server, page, smtp_server):
    base, app = live_server(COOKIE_SECURE=False, SMTP_URL=smtp_server.url)
    make_clinic()
    make_patient("browser-reset@example.com", name="Rita Reset")

    page.goto(f"{base}/portal/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("browser-reset@example.com")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account exists for that email")

    with app.app_context():
        sweep()  # what the stack's sweeper does every minute
    received = smtp_server.wait_for(1, "browser-reset@example.com")
    assert len(received) == 1
    path = LINK.search(received[0].get_body(preferencelist=("plain",)).get_content()).group(1)

    page.goto(f"{base}{path}")
    assert page.get_by_role("heading", name="Choose a new password").is_visible()
    field = page.get_by_label("New password (at least 8 characters)")
    field.fill("short")
    page.get_by_role("button", name="Set new password").click()
    field = page.get_by_label("New password (at least 8 characters)")
    assert field.get_attribute("aria-invalid") == "true"  # the error is on the field; link still good
    field.fill("a fresh password")
    page.get_by_role("button", name="Set new password").click()
    page.wait_for_url(f"{base}/portal/login")
    assert "Sign in with your new password" in page.get_by_role("status").inner_text()

    page.get_by_label("Email").fill("browser-reset@example.com")
    page.get_by_label("Password").fill("a fresh password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")
    assert page.get_by_role("heading", name="Hello, Rita Reset").is_visible()

    # The link a second time: refused, with a way to ask for a new one.
    page.goto(f"{base}{path}")
    assert "expired or has already been used" in page.get_by_role("alert").inner_text()
    assert page.get_by_role("link", name="Email me a new link").is_visible()
    assert page.get_by_label("New password (at least 8 characters)").count() == 0
