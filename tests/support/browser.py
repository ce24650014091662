"""Browser steps shared by the Chromium tests (Playwright pages)."""

from tests.support.factories import PASSWORD


def portal_sign_in(page, base, email="pat@example.com", password=PASSWORD):
    """Sign a patient in through /portal/login, as a person would, and wait for the dashboard."""
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")
